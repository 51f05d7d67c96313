"""``python -m callsessions``: the command line (see ``callsessions.cli``)."""

from .cli import main

raise SystemExit(main())
