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

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import timing  # noqa: E402

COMPANIES = 1000
ROUNDS = 3
FILE_BYTES = 20_000
# Backups run hourly by default: 1,000 companies must take a small part of that hour.
TARGET_SECONDS = 300.0


def worker(companies: int, rounds: int) -> dict:
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.db import transaction

    from vouch.accounts.models import Membership, User
    from vouch.accounts.policy import Role
    from vouch.activity.services import log
    from vouch.backups.sets import schedule
    from vouch.tenancy import connections, provisioning, regions
    from vouch.tenancy.context import company_context
    from vouch.tenancy.models import Company
    from vouch.vault import keyring
    from vouch.vault.files import encrypted_storage

    call_command("migrate", verbosity=0, interactive=False)
    region = "eu"
    ids = [uuid.uuid4() for _ in range(companies)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda cid: provisioning.provision(cid, region), ids))
    users = [
        User(email=f"bench-backup-{i}@example.com", full_name=f"Owner {i}", password=make_password(None))
        for i in range(companies)
    ]
    with transaction.atomic():
        User.objects.bulk_create(users)
        EmailAddress.objects.bulk_create(
            [EmailAddress(user=u, email=u.email, primary=True, verified=True) for u in users]
        )
        Company.objects.bulk_create(
            [Company(id=cid, name=f"Bench {i:05d}", region=region) for i, cid in enumerate(ids)]
        )
        Membership.objects.bulk_create(
            [Membership(user=u, company_id=cid, role=Role.OWNER) for u, cid in zip(users, ids, strict=True)]
        )
        keyring.create_keys_for_companies(ids)
    payload = os.urandom(FILE_BYTES)
    for company in Company.objects.all():
        with company_context(company):
            log("settings_changed", "Bench company set up")
            encrypted_storage.save(f"attachments/{uuid.uuid4()}.pdf", ContentFile(payload))
    connections.release_kept()

    data_dir = Path(settings.DATA_DIR)
    control = Path(settings.DATABASES["default"]["NAME"])
    sources = [connections.sqlite_path(cid, regions.get(region)) for cid in ids]
    sources += [p for cid in ids for p in provisioning.files_dir(cid, region).rglob("*") if p.is_file()]
    sources.append(control)
    source_bytes = sum(p.stat().st_size for p in sources)

    def baseline(n: int) -> float:
        target = data_dir / f"plain-copy-{n}"
        target.mkdir()
        started = time.perf_counter()
        for i, path in enumerate(sources):
            shutil.copyfile(path, target / f"{i}")
        spent = time.perf_counter() - started
        shutil.rmtree(target)
        return spent

    backup_times, copy_times, sets = [], [], 0
    for n in range(rounds):
        copy_times.append(baseline(n))
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
        "backup_s": timing.summarise(backup_times, "s"),
        "plain_copy_s": timing.summarise(copy_times, "s"),
    }


def measure(companies: int = COMPANIES, rounds: int = ROUNDS) -> dict:
    data_dir = tempfile.mkdtemp(prefix="vouch-bench-backups-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {
        "DJANGO_SETTINGS_MODULE": "vouch.settings",
        "VOUCH_DATA_DIR": data_dir,
        "VOUCH_LOG_LEVEL": "ERROR",
        "PYTHONPATH": str(ROOT / "src"),
    }
    load_start = timing.load()
    try:
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "worker", str(companies), str(rounds)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            timeout=3600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"backups bench failed (exit {result.returncode}):\n{result.stdout[-2000:]}")
        found = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    backup, copy = found["backup_s"]["median"], found["plain_copy_s"]["median"]
    found |= {
        "ratio": backup / copy if copy else None,
        "ms_per_company": backup * 1000 / companies,
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "load_end": timing.load(),
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
        f"{' '.join(map(str, results['load_start']))} -> {' '.join(map(str, results['load_end']))}.",
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        print(json.dumps(worker(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        measured = measure(*(int(a) for a in sys.argv[1:3]))
        print("\n".join(table_rows(measured)))
        print("\n".join(describe(measured)))
