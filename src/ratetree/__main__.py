"""``python -m ratetree`` runs the ``ratetree`` command line."""

from ratetree.cli.main import main

raise SystemExit(main())
