"""``python -m kiwoom_rt``: the same as the ``kiwoom-rt`` command."""

from .cli import main

raise SystemExit(main())
