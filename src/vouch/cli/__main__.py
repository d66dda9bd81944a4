"""``python -m vouch.cli``: what ``vouch serve`` starts the background worker with."""

from vouch.cli import main

raise SystemExit(main())
