"""``python -m bayescramp`` runs the command line."""

from .cli import main

raise SystemExit(main())
