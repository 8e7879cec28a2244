"""``python -m ratetree`` runs the ``ratetree`` command line."""

from ._cli import main

raise SystemExit(main())
