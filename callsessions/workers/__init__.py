"""Pulls spread over many processes or machines: arq jobs (one per window), the coordinator,
and the rate limiter that all workers of one token share through Redis."""
