"""Tests of the pieces that run pulls on workers (arq, Redis)."""
