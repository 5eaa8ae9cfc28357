"""``python -m conveyor``: the same as the ``conveyor`` command."""

from conveyor.cli.app import main

raise SystemExit(main())
