"""``python -m artemis_core.cli`` runs the ``artemis`` command."""

from . import main

main()
