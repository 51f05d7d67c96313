"""The simulator's own tests (a package, so that its conftest is ``sim.conftest`` to mypy)."""
