"""`python -m devstack`: the `erp` command."""

from devstack.cli import main

raise SystemExit(main())
