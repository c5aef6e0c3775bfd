"""``python -m minitransformer ...`` runs the command line (see minitransformer/cli.py)."""

from minitransformer.cli import main

raise SystemExit(main())
