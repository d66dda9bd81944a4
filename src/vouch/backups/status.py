"""``vouch backup status``: the one place an operator sees how safe the data is.

For each PostgreSQL server: its standbys with their lag, and its WAL archiving; then
every data-safety item /healthz shows (backups, mirror, drills, replication, archiving).
Exit 0 when nothing is degraded, 1 otherwise (for monitoring)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from vouch.backups import health, replication
from vouch.core.text_table import print_table


def cli_status(args: argparse.Namespace | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    found = replication.readings(max_age=0)  # read now; report() below reuses these readings
    if found:
        print("PostgreSQL servers", file=out)
        for reading in found:
            _server(reading, out)
        print(file=out)
    items = health.report()
    print("Data safety", file=out)
    print_table(
        ["item", "state", "detail"], [[name, item["state"], item["detail"]] for name, item in items.items()], out, 2
    )
    bad = health.degraded(items)
    print(file=out)
    print(f"Status: degraded ({', '.join(bad)})" if bad else "Status: ok", file=out)
    return 1 if bad else 0


def _server(reading: replication.Reading, out: TextIO) -> None:
    server = reading.server
    print(f"  {server.label} ({server.address})", file=out)
    if reading.error:
        print(f"    cannot connect: {reading.error}", file=out)
        return
    role = "standby (in recovery)" if reading.in_recovery else "primary"
    print(f"    role: {role}", file=out)
    if reading.standbys:
        rows = [
            [
                s.name,
                s.client,
                s.state or "?",
                s.sync_state or "?",
                replication.seconds_text(s.write_lag),
                replication.seconds_text(s.flush_lag),
                replication.seconds_text(s.replay_lag),
                replication.bytes_text(s.bytes_behind),
            ]
            for s in reading.standbys
        ]
        headers = ["standby", "client", "state", "sync", "write lag", "flush lag", "replay lag", "behind"]
        print_table(headers, rows, out, 4)
    else:
        print("    standbys: none", file=out)
    if not reading.privileged:
        print("    (Vouch's account is not in pg_monitor: lag and waiting WAL cannot be seen)", file=out)
    archiver = reading.archiver
    assert archiver is not None
    print(f"    archive_mode: {archiver.mode}", file=out)
    print_table(
        ["archiving", "count", "last WAL", "at"],
        [
            [
                "archived",
                str(archiver.archived_count),
                archiver.last_archived_wal or "-",
                _time(archiver.last_archived_time),
            ],
            ["failed", str(archiver.failed_count), archiver.last_failed_wal or "-", _time(archiver.last_failed_time)],
            [
                "waiting",
                "?" if archiver.waiting is None else str(archiver.waiting),
                "-",
                _time(archiver.oldest_waiting) + (" (oldest)" if archiver.waiting else ""),
            ],
        ],
        out,
        4,
    )


def _time(moment) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
