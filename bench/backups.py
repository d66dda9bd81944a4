"""Encrypted backup figures for `make bench` (vouch.backups.sets).

In a Django process of its own, in a throwaway data directory on the embedded default
(SQLite), 1,000 small companies are made as bench/tenancy.py makes them (each really
provisioned: the template cloned into its own SQLite file; then owners, Company and
Membership rows and keys in bulk), each with one activity entry and one 20 KB file in
its encrypted storage. Then, interleaved for --rounds rounds:

- baseline: a plain copy (``shutil.copyfile``) of every company database and file and of
  the control database into a directory: what any backup has to read and write at least;
- backup: ``vouch backup run``'s round (``schedule.run_round``) into a local directory
  target: per company a consistent snapshot (SQLite backup API), row counts, AES-256-GCM
  encryption into the spool, the upload (here a copy) with the manifest last; plus the
  control database's set, retention and the security event.

Reported: medians of both, their ratio, and milliseconds per company.

Run alone: .venv/bin/python bench/run.py --only backups   (or .venv/bin/python bench/backups.py)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

COMPANIES = 1000
ROUNDS = 3
FILE_BYTES = 20_000
# Backups run hourly by default: 1,000 companies must take a small part of that hour.
TARGET_SECONDS = 300.0


def worker(companies: int, rounds: int) -> dict:
    import django

    django.setup()
    from django.conf import settings

    from vouch import regions
    from vouch.backups.sets import schedule
    from vouch.tenancy import connections

    region = "eu"
    ids = harness.seed_small_companies(companies, region=region, file_bytes=FILE_BYTES, owners="bench-backup")

    data_dir = Path(settings.DATA_DIR)
    control = Path(settings.DATABASES["default"]["NAME"])
    sources = [connections.sqlite_path(cid, regions.get(region)) for cid in ids]
    sources += [p for cid in ids for p in regions.files_dir(cid, region).rglob("*") if p.is_file()]
    sources.append(control)
    source_bytes = sum(p.stat().st_size for p in sources)

    backup_times, copy_times, sets = [], [], 0
    for n in range(rounds):
        copy_times.append(harness.plain_copy(sources, data_dir / f"plain-copy-{n}"))
        started = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            profile = cProfile.Profile()
            result = profile.runcall(schedule.run_round)
            profile.dump_stats(os.environ["BENCH_PROFILE"])
        else:
            result = schedule.run_round()
        backup_times.append(time.perf_counter() - started)
        assert result.ok and len(result.complete) == companies + 1, (result.pending, result.failed)
        sets += len(result.complete)
    target = Path(settings.VOUCH_BACKUP_URL)
    stored = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return {
        "companies": companies,
        "rounds": rounds,
        "source_bytes": source_bytes,
        "stored_bytes_all_rounds": stored,
        "sets": sets,
        "backup_s": harness.summarise(backup_times, "s"),
        "plain_copy_s": harness.summarise(copy_times, "s"),
    }


def measure(companies: int = COMPANIES, rounds: int = ROUNDS) -> dict:
    load_start = harness.load()
    found = harness.run_worker(
        Path(__file__).resolve(),
        [str(companies), str(rounds)],
        prefix="vouch-bench-backups-",
        what="backups bench",
        timeout=3600,
        PYTHONPATH=str(harness.ROOT / "src"),
    )
    backup, copy = found["backup_s"]["median"], found["plain_copy_s"]["median"]
    found |= {
        "ratio": backup / copy if copy else None,
        "ms_per_company": backup * 1000 / companies,
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "load_end": harness.load(),
        "targets": {"backup_max_s": TARGET_SECONDS, "met": {"backup_round_1000_companies": backup <= TARGET_SECONDS}},
    }
    return found


def table_rows(results: dict) -> list[str]:
    header = f"{'backups':<34} {'median':>10} {'min':>9} {'max':>9} {'ratio':>7}  target"
    rows = [header, "-" * len(header)]
    for label, key in (("plain copy (baseline)", "plain_copy_s"), ("backup round", "backup_s")):
        s = results[key]
        ratio = f"{results['ratio']:.1f}x" if key == "backup_s" and results["ratio"] else ""
        target = f"<= {TARGET_SECONDS:.0f} s" if key == "backup_s" else ""
        rows.append(
            f"{label + ' (' + str(results['companies']) + ')':<34} {s['median']:>9.2f}s {s['min']:>8.2f}s "
            f"{s['max']:>8.2f}s {ratio:>7}  {target}"
        )
    return rows


def describe(results: dict) -> list[str]:
    return [
        f"backups: {results['companies']} small companies (SQLite, one 20 KB file each) and the control database, "
        f"{results['rounds']} rounds; {results['source_bytes'] / 1e6:.1f} MB read per round; "
        f"{results['ms_per_company']:.1f} ms per company; {results['cpus']} CPUs, load "
        f"{harness.loads(results['load_start'])} -> {harness.loads(results['load_end'])}.",
    ]


if __name__ == "__main__":
    harness.worker_or_report(worker, measure, table_rows, describe)
