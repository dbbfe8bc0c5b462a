"""``python -m sharedstate``: the same as the ``sharedstate`` command."""

from .cli import main

main()
