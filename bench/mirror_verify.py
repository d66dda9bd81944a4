"""What the live set's check of a copy costs (vouch.backups.mirror_verify), for
docs/mirroring.md "The mirror is checked".

One company-like database of about 10 MB: a really provisioned company (Vouch's whole
schema, bench/mirror_scale.provisioned_company) grown with 40,000 rows of 250 bytes of
text (about the size of a company with a few years of references). A real Litestream and
a LiveSet (idle_after 1 s) copy it to a local directory; each round writes one row, waits
for the let-go and its check, and reads the check's time from the live set's counters
(restore of the copy into a temporary file + both digests). The comparison alone is
timed apart.

Run: .venv/bin/python bench/mirror_verify.py [rounds]
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import mirror_scale as scale_bench  # noqa: E402  (bench/mirror_scale.py: the provisioned company)
from vouch.backups import mirror_scale, mirror_verify  # noqa: E402
from vouch.backups.mirror import plan, restore  # noqa: E402

ROWS, ROW_BYTES = 40_000, 250


def grown(template: Path, target: Path) -> Path:
    connection = sqlite3.connect(template)
    connection.execute("VACUUM INTO ?", (str(target),))
    connection.close()
    connection = sqlite3.connect(target)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE bench_history (id INTEGER PRIMARY KEY, at TEXT, body TEXT)")
    rows = ((n, f"2026-01-01T00:00:{n % 60:02d}", os.urandom(ROW_BYTES // 2).hex()) for n in range(ROWS))
    connection.executemany("INSERT INTO bench_history VALUES (?, ?, ?)", rows)
    connection.commit()
    connection.close()
    return target


def measure(rounds: int = 10) -> dict:
    with tempfile.TemporaryDirectory(prefix="vouch-bench-verify-") as scratch:
        root = Path(scratch)
        companies = root / "companies"
        companies.mkdir()
        database = grown(scale_bench.provisioned_company(root), companies / "company.sqlite3")
        control = root / "control.sqlite3"
        sqlite3.connect(control).close()
        base = {
            "dbs": [
                {"path": str(control), "replica": {"type": "file", "path": str(root / "mirror" / "control")}},
                {
                    "dir": str(companies),
                    "pattern": "*.sqlite3",
                    "watch": True,
                    "replica": {"type": "file", "path": str(root / "mirror" / "companies")},
                },
            ]
        }
        config, live = mirror_scale.live_set(base, root, idle_after=1.0)
        (root / "litestream.yml").write_text(json.dumps(config | {"logging": {"level": "warn"}}))
        process = subprocess.Popen(
            [str(plan.litestream_binary()), "replicate", "-config", str(root / "litestream.yml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stop = threading.Event()
        thread = threading.Thread(target=live.run, args=(stop,), daemon=True)
        try:
            scale_bench.wait_for(lambda: os.path.exists(config["socket"]["path"]), 10, "Litestream's socket", 0.05)
            thread.start()
            counters = live.counters
            scale_bench.wait_for(lambda: counters.verified >= 1, 60, "the first copy checked", 0.05)
            for n in range(rounds):
                connection = sqlite3.connect(database)
                connection.execute("INSERT INTO bench_history (at, body) VALUES ('now', ?)", (str(n),))
                connection.commit()
                connection.close()
                scale_bench.wait_for(lambda n=n: counters.verified >= n + 2, 60, f"round {n} checked", 0.05)
            copy = root / "copy.sqlite3"
            started = time.monotonic()
            restore.restore_copy(live.watched[0].store_url(database), copy)
            restore_ms = (time.monotonic() - started) * 1000
            started = time.monotonic()
            assert mirror_verify.compare(database, copy) == ()
            compare_ms = (time.monotonic() - started) * 1000
            checks = list(counters.verify_ms)[1:]  # the rounds' (not the first copy's)
            return {
                "database_mb": round(database.stat().st_size / 2**20, 1),
                "rounds": rounds,
                "verify_ms_p50": round(statistics.median(checks), 1),
                "verify_ms_max": round(max(checks), 1),
                "restore_ms": round(restore_ms, 1),
                "compare_ms": round(compare_ms, 1),
                "diverged": counters.diverged,
                "unsure": counters.unsure,
            }
        finally:
            stop.set()
            thread.join(30)
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10), indent=2))
