"""``python -m callsessions.sim``."""

from ._cli import main

main()
