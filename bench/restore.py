"""Restore and drill figures for `make bench` (vouch.backups.restore, vouch.backups.drills).

In a Django process of its own, in a throwaway data directory on the embedded default
(SQLite):

- drill: 1,000 small companies (really provisioned, one activity entry and one 20 KB file
  each) are backed up once (``schedule.run_round``); then ``vouch backup drill --all``'s
  work (``drills.run_drills``) restores every company's set into scratch space and runs
  every check (integrity, identity, schema, row counts, encrypted values, files). Baseline
  in the same run: a plain copy (``shutil.copyfile``) of the same stored set objects.
- one company of about 10 MB (ten 1 MB files and a database with 2,000 activity entries)
  restored from its set into a directory (``restore_to``) and in place
  (``restore_in_place``: offline, kept aside, swapped, online), --rounds times each;
  baseline: a plain copy of that set's stored objects.

Run alone: .venv/bin/python bench/run.py --only restore   (or .venv/bin/python bench/restore.py)
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

COMPANIES = 1000
ROUNDS = 5
FILE_BYTES = 20_000
BIG_FILES = 10
BIG_FILE_BYTES = 1_000_000
TARGET_DRILL_S = 300.0
TARGET_RESTORE_S = 10.0


def worker(companies: int, rounds: int) -> dict:
    import uuid

    import django

    django.setup()
    from django.conf import settings
    from django.core.files.base import ContentFile

    from vouch.activity.services import log
    from vouch.backups import drills, restore
    from vouch.backups.models import DrillOutcome
    from vouch.backups.sets import schedule, write_company_set
    from vouch.core.context import company_context
    from vouch.tenancy import connections, provisioning
    from vouch.tenancy.models import Company
    from vouch.vault import keyring
    from vouch.vault.files import encrypted_storage

    region = "eu"
    harness.seed_small_companies(companies, region=region, file_bytes=FILE_BYTES)
    result = schedule.run_round()
    assert result.ok, (result.pending, result.failed)
    target = Path(settings.VOUCH_BACKUP_URL)
    data_dir = Path(settings.DATA_DIR)
    stored = [p for p in target.rglob("*") if p.is_file() and "/companies/" in str(p)]

    # 1. Drill of every company, against a plain copy of the same stored objects.
    drill_copy = harness.plain_copy(stored, data_dir / "plain-drill")
    started = time.perf_counter()
    runs = drills.run_drills(list(Company.objects.all()), control=False)
    drill_s = time.perf_counter() - started
    failed = [r.problem for r in runs if r.outcome != DrillOutcome.PASSED]
    assert not failed, failed[:3]
    rto = sorted(r.restore_seconds for r in runs)

    # 2. One company of about 10 MB.
    big_id = uuid.uuid4()
    provisioning.provision(big_id, region)
    big = Company.objects.create(id=big_id, name="Big Bench", region=region)
    keyring.create_company_keys(big_id)
    with company_context(big):
        for n in range(BIG_FILES):
            encrypted_storage.save(f"attachments/big-{n}.pdf", ContentFile(os.urandom(BIG_FILE_BYTES)))
        for n in range(2000):
            log("settings_changed", f"Bench entry {n} " + "x" * 200)
    connections.release_kept()
    row = write_company_set(big)
    assert row.status == "complete", row.error
    big_objects = [p for p in (target / "regions" / region / row.location).rglob("*") if p.is_file()]
    big_bytes = sum(p.stat().st_size for p in big_objects)
    copy_times, to_dir_times, in_place_times = [], [], []
    for n in range(rounds):
        copy_times.append(harness.plain_copy(big_objects, data_dir / f"plain-big-{n}"))
        into = data_dir / f"restored-{n}"
        started = time.perf_counter()
        restore.restore_to(big, into, set_id=str(row.pk))
        to_dir_times.append(time.perf_counter() - started)
        shutil.rmtree(into)
        started = time.perf_counter()
        _, rollback = restore.restore_in_place(big, set_id=str(row.pk))
        in_place_times.append(time.perf_counter() - started)
        shutil.rmtree(rollback)
    return {
        "companies": companies,
        "rounds": rounds,
        "drill_s": drill_s,
        "drill_plain_copy_s": drill_copy,
        "drill_stored_bytes": sum(p.stat().st_size for p in stored),
        "rto_median_s": rto[len(rto) // 2],
        "rto_max_s": rto[-1],
        "big_stored_bytes": big_bytes,
        "big_plain_copy_s": harness.summarise(copy_times, "s"),
        "big_restore_to_s": harness.summarise(to_dir_times, "s"),
        "big_restore_in_place_s": harness.summarise(in_place_times, "s"),
    }


def measure(companies: int = COMPANIES, rounds: int = ROUNDS) -> dict:
    load_start = harness.load()
    found = harness.run_worker(
        Path(__file__).resolve(),
        [str(companies), str(rounds)],
        prefix="vouch-bench-restore-",
        what="restore bench",
        timeout=3600,
        PYTHONPATH=str(harness.ROOT / "src"),
    )
    big = found["big_restore_in_place_s"]["median"]
    found |= {
        "drill_ratio": found["drill_s"] / found["drill_plain_copy_s"] if found["drill_plain_copy_s"] else None,
        "big_ratio": big / found["big_plain_copy_s"]["median"] if found["big_plain_copy_s"]["median"] else None,
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "load_end": harness.load(),
        "targets": {
            "drill_max_s": TARGET_DRILL_S,
            "restore_max_s": TARGET_RESTORE_S,
            "met": {
                "drill_1000_companies": found["drill_s"] <= TARGET_DRILL_S,
                "restore_10mb_company": big <= TARGET_RESTORE_S,
            },
        },
    }
    return found


def table_rows(results: dict) -> list[str]:
    header = f"{'restore and drills':<40} {'median':>10} {'ratio':>7}  target"
    rows = [header, "-" * len(header)]
    n = results["companies"]
    rows.append(f"{'plain copy of ' + str(n) + ' sets (baseline)':<40} {results['drill_plain_copy_s']:>9.2f}s")
    ratio = f"{results['drill_ratio']:.0f}x" if results["drill_ratio"] else ""
    rows.append(f"{'drill of ' + str(n) + ' companies':<40} {results['drill_s']:>9.2f}s {ratio:>7}  <= 300 s")
    mb = results["big_stored_bytes"] / 1e6
    rows.append(f"{f'plain copy of a {mb:.0f} MB set (baseline)':<40} {results['big_plain_copy_s']['median']:>9.3f}s")
    rows.append(f"{'restore it --to a directory':<40} {results['big_restore_to_s']['median']:>9.3f}s")
    ratio = f"{results['big_ratio']:.0f}x" if results["big_ratio"] else ""
    rows.append(
        f"{'restore it --in-place':<40} {results['big_restore_in_place_s']['median']:>9.3f}s {ratio:>7}  <= 10 s"
    )
    return rows


def describe(results: dict) -> list[str]:
    return [
        f"restore: drill of {results['companies']} small companies (SQLite, one 20 KB file each, every check), "
        f"restore part per company median {results['rto_median_s'] * 1000:.0f} ms, "
        f"max {results['rto_max_s'] * 1000:.0f} ms; a {results['big_stored_bytes'] / 1e6:.1f} MB company "
        f"restored {results['rounds']} times each way; "
        f"{results['cpus']} CPUs, load {harness.loads(results['load_start'])} -> "
        f"{harness.loads(results['load_end'])}.",
    ]


if __name__ == "__main__":
    harness.worker_or_report(worker, measure, table_rows, describe)
