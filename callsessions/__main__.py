"""``python -m callsessions``: the command line (see ``callsessions.cli``)."""

from callsessions.cli import entry

entry()
