"""`python -m services.devstack`: the `erp` command."""

from services.devstack.cli import main

raise SystemExit(main())
