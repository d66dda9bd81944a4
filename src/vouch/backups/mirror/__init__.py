"""The embedded default's constant mirror (P7): Litestream copies every committed write
of every SQLite database (the control database, each company's) to a second place.

- :mod:`.plan`: what is mirrored where; Litestream's configuration.
- :mod:`.process`: running Litestream under ``vouch serve`` or ``vouch mirror run``.
- :mod:`.state`: the supervisor's recorded state, and ``health()`` from it.
- :mod:`.lag`: ``vouch mirror status``, how far behind each database is.
- :mod:`.restore`: ``restore_database()``, a database as of now or a past moment.
- :mod:`.purge`: a purged company's copy goes too.

docs/mirroring.md is the operator's side."""

from vouch.backups.mirror.lag import cli_status
from vouch.backups.mirror.process import cli_run
from vouch.backups.mirror.purge import remove_company_mirror
from vouch.backups.mirror.restore import NoMirror, RestoreError, TooEarly, restore_database
from vouch.backups.mirror.state import health

__all__ = [
    "NoMirror",
    "RestoreError",
    "TooEarly",
    "cli_run",
    "cli_status",
    "health",
    "remove_company_mirror",
    "restore_database",
]
