"""The mirror's cost as companies grow, for `make bench` (vouch.backups.mirror_scale).

Company databases are copies of one really provisioned company (``provisioning.provision``
in a Django process: Vouch's company template, 316 KiB), each with its own id in its
identity row, in WAL mode, last written an hour ago (as most companies are at any
moment). Every mirror here copies to a local directory (the cost measured is Litestream's
and Vouch's, not a network's). For each arrangement, once its first copy of every
database is done: resident memory (VmRSS summed over the process tree), idle CPU (utime
+ stime from /proc/<pid>/stat over ``--mirror-idle`` seconds, in % of one core), open
files (/proc/<pid>/fd), and how long the first copy took.

1. Baseline: Litestream over 1 company database, configured as vouch.backups.mirror.plan
   configures a region (directory replication, 200 ms monitor and sync intervals).
2. Directory replication over 1,000 company databases: the same configuration, what a
   region costs without the live set. (Not run at 10,000 unless --mirror-dir-10k: it
   needs about 60,000 open files, more than this machine's limit, and more cores than
   it has; docs/mirroring.md has the figures.)
3. The live set (mirror_scale.LiveSet + one Litestream) over 1,000 and 10,000: the
   first start (each database copied once), idle; a restart (the state file says
   nothing changed: nothing is copied again); then the recovery point of a first write
   to a database that is not live (commit to its new LTX file in the mirror, 20
   companies one after another); then 100 companies written, measured while live.

Run alone: .venv/bin/python bench/run.py --only mirror_scale   (or python bench/mirror_scale.py)
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TARGET_RSS_MB = 1024.0
TARGET_IDLE_CPU_PCT = 5.0
SIZES = (1000, 10_000)
WAKE_SAMPLES = 20
ACTIVE = 100
LITESTREAM = Path(sys.executable).with_name("litestream")
MONITOR_INTERVAL = SYNC_INTERVAL = "200ms"  # as vouch.backups.mirror.plan


_T0 = time.monotonic()


def say(text: str) -> None:
    harness.say(f"[{time.monotonic() - _T0:6.1f} s] {text}")


# --- company databases ------------------------------------------------------------------


def provisioned_company(scratch: Path) -> Path:
    """One company really provisioned in a fresh data directory; its database file."""
    data = scratch / "provision"
    env = harness.django_env(data)
    script = textwrap.dedent(
        """
        import uuid, django
        django.setup()
        from vouch.tenancy import connections, provisioning
        from vouch import regions
        region = regions.all_regions()[0]
        company = uuid.uuid4()
        provisioning.provision(company, region.name)
        print(connections.sqlite_path(company, region))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"provisioning failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def make_companies(template: Path, directory: Path, count: int) -> list[Path]:
    """``count`` copies of ``template`` in WAL mode, each its own company id, an hour old."""
    directory.mkdir(parents=True, exist_ok=True)
    wal = directory.parent / f".template-{os.getpid()}.sqlite3"
    shutil.copyfile(template, wal)
    connection = sqlite3.connect(wal)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    an_hour_ago = time.time() - 3600

    def one(_: int) -> Path:
        company = uuid.uuid4()
        path = directory / f"{company}.sqlite3"
        shutil.copyfile(wal, path)
        connection = sqlite3.connect(path)
        connection.execute("UPDATE vouch_company_identity SET company_id = ?", (str(company),))
        connection.commit()
        connection.close()  # the last connection: the WAL is checkpointed and removed
        os.utime(path, (an_hour_ago, an_hour_ago))
        return path

    with ThreadPoolExecutor(4) as pool:  # the copy and the update are C code (GIL released)
        made = list(pool.map(one, range(count)))
    wal.unlink()
    return made


# --- measuring a process tree -------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
                pids += tree(int(child))
    except FileNotFoundError:
        pass
    return pids


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def open_files(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids)


def idle_cost(pid: int, seconds: float) -> dict:
    """Memory, open files and CPU of ``pid``'s tree over ``seconds`` with nothing written."""
    pids = tree(pid)
    cpu0, t0 = harness.cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    pids = tree(pid)
    cpu = harness.cpu_seconds(pids) - cpu0
    return {
        "rss_mb": round(rss_mb(pids), 1),
        # Which process holds it: the live set's Python process (the supervisor, in Vouch)
        # and Litestream.
        "rss_mb_by_process": {
            f"{Path(f'/proc/{p}/comm').read_text().strip()}[{p}]": round(rss_mb([p]), 1) for p in pids
        },
        "idle_cpu_pct": round(100 * cpu / (time.monotonic() - t0), 3),
        "open_files": open_files(pids),
        "processes": len(pids),
        "window_s": seconds,
    }


def copied(mirror: Path) -> int:
    """Databases with at least one LTX file in the mirror (directory layout)."""
    count = 0
    for entry in os.scandir(mirror) if mirror.exists() else ():
        level0 = os.path.join(entry.path, "ltx", "0")
        if os.path.isdir(level0) and any(os.scandir(level0)):
            count += 1
    return count


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (Litestream uploads what it has), then SIGINT (skip that), then SIGKILL."""
    for sig, wait in ((15, 30), (2, 15), (9, 15)):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- 1 and 2: Litestream with directory replication ---------------------------------------------------


def directory_replication(companies: Path, mirror: Path, count: int, idle: float, work: Path) -> dict:
    config = {
        "logging": {"level": "warn"},
        "dbs": [
            {
                "dir": str(companies),
                "pattern": "*.sqlite3",
                "watch": True,
                "monitor-interval": MONITOR_INTERVAL,
                "replica": {"type": "file", "path": str(mirror), "sync-interval": SYNC_INTERVAL},
            }
        ],
    }
    path = work / f"dir-{count}.yml"
    path.write_text(json.dumps(config))
    with (work / f"dir-{count}.log").open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen([str(LITESTREAM), "replicate", "-config", str(path)], stdout=log, stderr=log)
        try:
            wait_for(lambda: copied(mirror) >= count or process.poll() is not None, 600, f"{count} databases copied")
            if process.poll() is not None:
                return {"companies": count, "failed": f"Litestream exited {process.returncode} (see {log.name})"}
            first_copy = time.monotonic() - started
            time.sleep(5)  # its first compaction and checkpoint pass
            return {"companies": count, "first_copy_s": round(first_copy, 1)} | idle_cost(process.pid, idle)
        finally:
            stop(process)


# --- 3: the live set ------------------------------------------------------------------------------------

DRIVER = textwrap.dedent(
    """
    import json, signal, subprocess, sys, threading, time
    from pathlib import Path
    import django
    django.setup()
    from vouch.backups import mirror_scale

    companies, mirror, work, litestream = map(Path, sys.argv[1:5])
    base = {"logging": {"level": "warn"}, "dbs": [{"dir": str(companies), "pattern": "*.sqlite3", "watch": True,
            "replica": {"type": "file", "path": str(mirror)}}]}
    config, live = mirror_scale.live_set(base, work)
    (work / "live.yml").write_text(json.dumps(config))
    log = (work / "live.log").open("ab")
    command = [str(litestream), "replicate", "-config", str(work / "live.yml")]
    process = subprocess.Popen(command, stdout=log, stderr=log)
    while True:
        try:
            live.control.registered()
            break
        except mirror_scale.LitestreamUnavailable:
            time.sleep(0.05)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    def report():
        while not stopping.wait(0.25):
            summary = live.summary() | {"ready": live.ready.is_set(), "litestream_pid": process.pid}
            (work / ".summary.json").write_text(json.dumps(summary))
            (work / ".summary.json").replace(work / "summary.json")
    threading.Thread(target=report, daemon=True).start()
    try:
        live.run(stopping)
    finally:
        process.terminate()
        process.wait(60)
    """
)


class Driver:
    """A process running a LiveSet and its Litestream, as the mirror's supervisor would."""

    def __init__(self, companies: Path, mirror: Path, work: Path) -> None:
        self.work = work
        (work / "summary.json").unlink(missing_ok=True)
        env = harness.django_env(work / "data", log_level="WARNING")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(companies), str(mirror), str(work), str(LITESTREAM)],
            env=env,
            stdout=(work / "driver.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def summary(self) -> dict:
        if self.process.poll() is not None:
            raise RuntimeError(f"the live set driver exited {self.process.returncode} (see {self.work / 'driver.log'})")
        try:
            return json.loads((self.work / "summary.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def settled(self, count: int) -> dict | None:
        """The summary once every database was looked at, and none is live, waiting or being copied."""
        s = self.summary()
        done = s.get("ready") and s.get("databases") == count
        return s if done and s.get("live") == 0 and s.get("waiting") == 0 and s.get("in_flight") == 0 else None

    def stop(self) -> None:
        stop(self.process)


def newest_txid(mirror: Path, database: Path) -> str:
    level0 = mirror / database.name / "ltx" / "0"
    names = [entry.name for entry in os.scandir(level0)] if level0.exists() else []
    return max(names, default="")


def wake_latency(databases: list[Path], mirror: Path) -> dict:
    """Commit to the new LTX file in the mirror, for a database that is not live."""
    samples = []
    for n, database in enumerate(databases):
        before = newest_txid(mirror, database)
        connection = sqlite3.connect(database, timeout=20)
        connection.execute("CREATE TABLE IF NOT EXISTS bench_probe (n INTEGER)")
        connection.execute("INSERT INTO bench_probe VALUES (?)", (n,))
        connection.commit()
        committed = time.perf_counter()
        wait_for(lambda d=database, b=before: newest_txid(mirror, d) > b, 30, f"{database.name}'s write", 0.002)
        samples.append((time.perf_counter() - committed) * 1000)
        connection.close()
    return harness.summarise(samples, "ms")


def live_set(companies: Path, mirror: Path, databases: list[Path], idle: float, work: Path) -> dict:
    count = len(databases)
    result: dict = {"companies": count}
    driver = Driver(companies, mirror, work)
    try:
        # First start: nothing recorded, so every database is copied once and let go.
        summary = wait_for(lambda: driver.settled(count), 1800, f"{count} databases copied once")
        result["first_copy_s"] = round(time.monotonic() - driver.started, 1)
        say(f"    first copy done in {result['first_copy_s']} s")
        result["first_copy_registrations"] = summary["registered"]
        result["first_copy_in_mirror"] = copied(mirror)
        time.sleep(2)
        result["idle"] = idle_cost(driver.process.pid, idle)
    finally:
        driver.stop()
    # A restart: the state file says every database is in the mirror and unchanged.
    driver = Driver(companies, mirror, work)
    try:
        summary = wait_for(lambda: driver.settled(count), 600, "the restarted live set's first look", 0.05)
        result["restart_s"] = round(time.monotonic() - driver.started, 2)
        result["restart_registrations"] = summary["registered"]
        say(f"    restarted in {result['restart_s']} s")
        result["wake_ms"] = wake_latency(databases[:WAKE_SAMPLES], mirror)
        say(f"    first writes: median {result['wake_ms']['median']:.0f} ms")
        # ACTIVE companies written: live for idle_after (5 min), each costing what Litestream
        # spends on a database it replicates.
        active = databases[WAKE_SAMPLES : WAKE_SAMPLES + ACTIVE]
        for n, database in enumerate(active):
            connection = sqlite3.connect(database, timeout=20)
            connection.execute("CREATE TABLE IF NOT EXISTS bench_probe (n INTEGER)")
            connection.execute("INSERT INTO bench_probe VALUES (?)", (n,))
            connection.commit()
            connection.close()
        live = WAKE_SAMPLES + len(active)
        wait_for(lambda: driver.summary().get("live", 0) >= live, 120, f"{len(active)} more live")
        time.sleep(2)
        result["active"] = idle_cost(driver.process.pid, min(idle, 30.0)) | {"live": driver.summary()["live"]}
    finally:
        driver.stop()
    return result


# --- the section -------------------------------------------------------------------------------------------


def measure(idle: float = 60.0, sizes: tuple[int, ...] = SIZES, directory_10k: bool = False) -> dict:
    started = time.monotonic()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    results: dict = {
        "cpus": os.cpu_count(),
        "load_start": harness.load(),
        "open_files_limit": hard,
        "inotify_max_user_watches": int(Path("/proc/sys/fs/inotify/max_user_watches").read_text()),
        "inotify_max_user_instances": int(Path("/proc/sys/fs/inotify/max_user_instances").read_text()),
        "idle_window_s": idle,
    }
    with harness.scratch_dir("vouch-bench-mirror-scale-") as scratch_name:
        scratch = Path(scratch_name)
        template = provisioned_company(scratch)
        results["company_database_kib"] = template.stat().st_size // 1024
        one = scratch / "one"
        make_companies(template, one / "companies", 1)
        say(f"  baseline: Litestream over 1 company database ({harness.load()})")
        results["baseline"] = directory_replication(one / "companies", one / "mirror", 1, idle, one)
        results["directory"], results["live_set"] = {}, {}
        for count in sizes:
            where = scratch / str(count)
            say(f"  {count} company databases: copying the template ({harness.load()})")
            made, databases = harness.once(lambda w=where, c=count: make_companies(template, w / "companies", c))
            results.setdefault("make_s", {})[count] = round(made, 1)
            if count <= 1000 or directory_10k:
                say(f"  directory replication over {count} ({harness.load()})")
                results["directory"][count] = directory_replication(
                    where / "companies", where / "dir-mirror", count, min(idle, 30.0), where
                )
                for meta in (where / "companies").glob(".*-litestream"):
                    shutil.rmtree(meta)  # the live set starts without Litestream's local state
                an_hour_ago = time.time() - 3600
                for path in (where / "companies").iterdir():
                    os.utime(path, (an_hour_ago, an_hour_ago))  # as written an hour ago, as before
            say(f"  live set over {count} ({harness.load()})")
            results["live_set"][count] = live_set(where / "companies", where / "mirror", databases, idle, where)
            shutil.rmtree(where, ignore_errors=True)
    largest = results["live_set"][max(sizes)]["idle"]
    results["targets"] = {
        "rss_mb": TARGET_RSS_MB,
        "idle_cpu_pct": TARGET_IDLE_CPU_PCT,
        "met": {
            f"mirror_rss_{max(sizes)}": largest["rss_mb"] <= TARGET_RSS_MB,
            f"mirror_idle_cpu_{max(sizes)}": largest["idle_cpu_pct"] <= TARGET_IDLE_CPU_PCT,
        },
    }
    results["load_end"] = harness.load()
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def _ratio(value: float, base: float) -> str:
    return f"{value / base:>7.1f}" if base else f"{'-':>7}"


def table_rows(results: dict) -> list[str]:
    """The mirror's block of bench/run.py's table: its own columns under a sub-header."""
    base = results["baseline"]
    header = f"{'mirror cost (idle)':<30} {'RSS MB':>8} {'x base':>7} {'CPU %':>7} {'x base':>7} {'files':>7}"
    header += "  first copy"
    rows = ["", header, "-" * (len(header) + 4)]

    def row(name: str, r: dict, first: str = "") -> None:
        rows.append(
            f"{name:<30} {r['rss_mb']:>8.1f} {_ratio(r['rss_mb'], base['rss_mb'])} {r['idle_cpu_pct']:>7.2f} "
            f"{_ratio(r['idle_cpu_pct'], base['idle_cpu_pct'])} {r['open_files']:>7}  {first}".rstrip()
        )

    row("Litestream, 1 db (baseline)", base, f"{base.get('first_copy_s', '')} s")
    for count, r in results["directory"].items():
        if "failed" in r:
            rows.append(f"{f'directory replication {count}':<30} {r['failed']}")
        else:
            row(f"directory replication {int(count):,}", r, f"{r['first_copy_s']} s")
    met = results["targets"]["met"]
    for count, r in results["live_set"].items():
        verdicts = [v for k, v in met.items() if k.endswith(f"_{count}")]
        target = f" target <= {TARGET_RSS_MB:.0f} MB, <= {TARGET_IDLE_CPU_PCT:g}%: " if verdicts else ""
        if verdicts:
            target += "MET" if all(verdicts) else "MISSED"
        row(f"live set {int(count):,}", r["idle"], f"{r['first_copy_s']} s;{target}")
        row(f"  {r['active']['live']} live (written < 5 min)", r["active"])
    return rows


def describe(results: dict) -> list[str]:
    lines = [
        f"mirror cost as companies grow ({results['cpus']} CPUs; load {results['load_start']} at start, "
        f"{results['load_end']} at end; company database {results['company_database_kib']} KiB; CPU from "
        f"utime+stime over {results['idle_window_s']:g} s idle; open-files limit {results['open_files_limit']}, "
        f"inotify watches {results['inotify_max_user_watches']}, instances {results['inotify_max_user_instances']})"
    ]
    for count, r in results["live_set"].items():
        wake = r["wake_ms"]
        lines.append(
            f"  live set {int(count):,}: first start copied each once in {r['first_copy_s']} s "
            f"({r['first_copy_registrations']} registrations, {r['first_copy_in_mirror']} in the mirror); "
            f"restart {r['restart_s']} s with {r['restart_registrations']} copied again; first write to a "
            f"database not live in the mirror after median {wake['median']:.0f} ms (p90 {wake['p90']:.0f}, "
            f"max {wake['max']:.0f}; {wake['count']} companies); {r['active']['live']} live cost "
            f"{r['active']['rss_mb']:.0f} MB and {r['active']['idle_cpu_pct']:.1f}% CPU"
        )
    return lines


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=60.0, help="idle CPU window in seconds (default 60)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--directory-10k", action="store_true", help="directory replication at 10,000 too")
    options = parser.parse_args()
    measured = measure(options.idle, tuple(options.sizes), options.directory_10k)
    print("\n".join(table_rows(measured)))
    print("\n".join(describe(measured)))
    print(json.dumps(measured, indent=2))
