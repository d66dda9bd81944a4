"""Encrypted offsite backups (P8, docs/security/promises.md#p8): one set per company, one for the control database.

A set is a consistent snapshot of one database (SQLite's online backup API, or
``pg_dump -Fc`` in an exported snapshot on PostgreSQL), the company's files as stored
(already encrypted with its data key), and a manifest: set id, scope, company id,
region, time, schema version (applied migrations), row counts per table, size and
SHA-256 of every object, and for the control database the security log's chain head.
Everything is encrypted client-side (AES-256-GCM, streamed in 1 MiB chunks) under a
per-set key derived from ``vouch.vault.backup_keys``; the format is in
:mod:`vouch.backups.sets.format`.

Where: a company's sets go to its region's ``backup_url`` only; the control database's
to ``join(VOUCH_BACKUP_URL, "control")``. Layout in a target::

    companies/<company id>/<YYYYMMDDTHHMMSSZ>-<set id>/objects/<n>   0 = database, 1.. = files
    companies/<company id>/<YYYYMMDDTHHMMSSZ>-<set id>/manifest      written last
    control/<YYYYMMDDTHHMMSSZ>-<set id>/...

Writer API (control database records in ``vouch.backups.models.BackupSet``)::

    write_company_set(company, now=None) -> BackupSet     # complete, pending or failed
    write_control_set(now=None) -> BackupSet
    company_target(region_name) -> url;  control_target() -> url

Reader API (for restore and drills; needs no control database)::

    store = open_store(company_target(region))            # or control_target()
    list_sets(store, company_prefix(company_id)) -> [SetInfo]   # oldest first; .complete
    latest_set(store, prefix, at=None) -> SetInfo | None        # newest complete (<= at)
    opened = open_set(store, info.location, region=None)  # manifest authenticated -> OpenedSet
    opened.manifest            # dict: set_id, scope, company_id, region, taken_at,
                               #   database {"kind": "sqlite"|"pg_dump"}, objects [{number,
                               #   kind "database"|"file", name, size, sha256}], row_counts,
                               #   migrations, schema_version, chain_head {seq, hash, authentic}
    opened.extract(to_dir, progress=None) -> Extracted(database, files_dir, manifest)
        # to_dir/database.sqlite3 or to_dir/database.pgdump, to_dir/files/<name>;
        # progress(n_bytes) per chunk (tqdm's update fits)
    opened.verify(progress=None)                         # read and check, write nothing
    opened.iter_object(entry, progress=None)             # one object's verified plaintext

Errors (``format.BackupError`` and subclasses, messages safe to show):
``BackupDamaged(what, detail)`` names the part (``manifest``, ``object 3 (file x.pdf)``):
altered, truncated, swapped between companies, renamed to another time, missing;
``BackupIncomplete`` (a set with no manifest); ``BackupKeyMissing`` (e.g. a purged
company's set: undecryptable by design).

``schema_version(migrations)`` and ``facts_of(cursor, vendor)`` (vouch.backups.sets.snapshot)
compute what the manifest records, for drills to compare a restored database.

Schedule, retention, targets that are down, purge: vouch.backups.sets.schedule and
vouch.backups.sets.retention; ``vouch backup run`` / ``list``: vouch.backups.sets.cli.
"""

from __future__ import annotations

from vouch.backups.sets.format import (
    BackupDamaged,
    BackupError,
    BackupIncomplete,
    BackupKeyMissing,
    company_prefix,
    control_prefix,
    parse_location,
)
from vouch.backups.sets.reader import Extracted, OpenedSet, SetInfo, latest_set, list_sets, open_set
from vouch.backups.sets.snapshot import facts_of, schema_version
from vouch.backups.sets.writer import company_target, control_target, write_company_set, write_control_set

__all__ = [
    "BackupDamaged",
    "BackupError",
    "BackupIncomplete",
    "BackupKeyMissing",
    "Extracted",
    "OpenedSet",
    "SetInfo",
    "cli_list",
    "cli_run",
    "company_prefix",
    "company_target",
    "control_prefix",
    "control_target",
    "facts_of",
    "health",
    "latest_set",
    "list_sets",
    "open_set",
    "parse_location",
    "schema_version",
    "write_company_set",
    "write_control_set",
]


def cli_run(args) -> int:
    # imported here: the command's module loads for `vouch backup run` only, not with the sets
    from vouch.backups.sets.cli import cli_run as run

    return run(args)


def cli_list(args) -> int:
    # imported here: the command's module loads for `vouch backup list` only, not with the sets
    from vouch.backups.sets.cli import cli_list as run

    return run(args)


def health() -> dict[str, dict[str, str]]:
    # imported here: the schedule (and retention) loads when health is asked, not with the sets
    from vouch.backups.sets.schedule import health as check

    return check()
