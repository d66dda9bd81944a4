"""Company isolation figures for `make bench` (vouch.tenancy).

(a) The dashboard with 10 companies and with --companies (default 10,000): one live
    `vouch serve` on the embedded default (SQLite). A company owner signs in through
    the login form (as bench/run.py's dashboard row), 9 more companies are made, the
    dashboard is measured with the same wrk settings as the main row; then companies
    are added up to the total and it is measured again. The extra companies are made
    in a Django process against the server's own data directory: each one really
    provisioned (``provisioning.provision``: the template cloned into its own SQLite
    file, identity row, files directory), then its owner, Company and Membership rows
    written in bulk (``services.create_company`` does the same one at a time).
(b) Time to provision a company, one after another in a fresh data directory: the
    median and p90 of ``provisioning.provision`` and of ``services.create_company``
    (provisioning plus the control-database rows), on SQLite and on the local
    PostgreSQL (127.0.0.1:5432, user postgres) when it answers; there the company
    databases get a bench-only name prefix and are dropped afterwards.
(c) `vouch tenants migrate` (the real command, default workers) over 1,000 SQLite
    company databases that are behind by one migration: the template's latest
    company-app migration is rolled back before they are provisioned, as
    tests/tenancy/test_operations.py does, and checked to be the one missing.
(d) A load test across the same 1,000 companies: each has an owner signed in (a
    session made in-process, with the keys a sign-in writes), and wrk rotates through
    the 1,000 session cookies on /activity/, which reads the company's own database.
    Meanwhile the open company-database files of every server process (granian and
    its workers: /proc/<pid>/fd links to regions/*/companies/*.sqlite3) are counted
    every 50 ms; the peak is reported.

Run alone (quick): .venv/bin/python bench/tenancy.py --companies 200 --duration 3s --rounds 1
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import harness
from harness import load_text, say, verdict

TARGET_RATIO = 0.10  # (a): 10k companies within 10% of 10
TARGET_PROVISION_MS = {"sqlite": 250.0, "postgresql": 2000.0}
TARGET_MIGRATE_S = 120.0
SMALL = 10  # companies for the first dashboard measurement
MIGRATE_COMPANIES = 1000
PROVISION_SAMPLES = 50

# Runs in a Django process against a server's data directory (its environment).
SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time, uuid
    from concurrent.futures import ThreadPoolExecutor
    import django
    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from allauth.account.models import EmailAddress
    from vouch.accounts.models import Membership, User
    from vouch.accounts.policy import Role
    from vouch.tenancy import provisioning, regions, schema
    from vouch.tenancy.models import Company
    from vouch.vault import keyring

    REGION = "eu"

    def say(text):
        print(text, file=sys.stderr, flush=True)

    def roll_back_template():
        # The template (and so every company provisioned from it) without the latest
        # migration of the first company app: exactly one migration behind.
        from django.core.management import call_command
        from django.db.migrations.loader import MigrationLoader
        from vouch.tenancy.operations import migrate
        leaf = schema.targets()[0]
        graph = MigrationLoader(None, ignore_no_migrations=True).graph
        parents = [p for p in graph.node_map[leaf].parents if p.key[0] == leaf[0]]
        target = parents[0].key[1] if parents else "zero"
        migrate.migrate_templates([REGION])
        with migrate.template_connection(regions.get(REGION)) as alias:
            call_command("migrate", leaf[0], target, database=alias, verbosity=0)
            missing = schema.pending(alias)
        assert missing == [f"{leaf[0]}.{leaf[1]}"], missing
        # migrate_templates left the template marked as checked in this process, so the
        # provisioning below clones it as it is now (as the operations tests do).
        return missing

    def bulk(total, tag, behind):
        # Companies up to ``total`` in all: each provisioned for real, then its owner,
        # Company and Membership rows written in bulk (create_company does the same
        # one by one). Provisioning overlaps in threads: the copy is SQLite's C code.
        missing = roll_back_template() if behind else []
        have = Company.objects.count()
        started, made, batch = time.perf_counter(), 0, 500
        with ThreadPoolExecutor(4) as pool:
            while have + made < total:
                n = min(batch, total - have - made)
                ids = [uuid.uuid4() for _ in range(n)]
                list(pool.map(lambda cid: provisioning.provision(cid, REGION), ids))
                first = have + made
                users = [
                    User(email=f"bench-{tag}-{first + i}@example.com", full_name=f"Bench Owner {first + i}",
                         password=make_password(None))
                    for i in range(n)
                ]
                with transaction.atomic():
                    User.objects.bulk_create(users)
                    EmailAddress.objects.bulk_create(
                        [EmailAddress(user=u, email=u.email, primary=True, verified=True) for u in users]
                    )
                    Company.objects.bulk_create(
                        [Company(id=cid, name=f"Bench {tag} {first + i:05d}", region=REGION)
                         for i, cid in enumerate(ids)]
                    )
                    Membership.objects.bulk_create(
                        [Membership(user=u, company_id=cid, role=Role.OWNER) for u, cid in zip(users, ids)]
                    )
                    keyring.create_keys_for_companies(ids)
                made += n
                if made % 2000 == 0 or have + made >= total:
                    spent = time.perf_counter() - started
                    say(f"  provisioned {have + made}/{total} companies ({made / spent:.0f}/s)")
        files = len(list(regions.get(REGION).companies_dir.glob("*.sqlite3")))
        result = {"companies": Company.objects.count(), "made": made, "seconds": time.perf_counter() - started,
                  "sqlite_files": files, "missing": missing}
        if behind:
            from vouch.tenancy.operations.probe import probe_many
            found = probe_many([(str(c), r) for c, r in Company.objects.values_list("id", "region")])
            result["behind"] = sum(1 for p in found.values() if p.identity_ok and p.pending == missing)
        print(json.dumps(result))

    def sessions(tag):
        # A signed-in session per bench owner, as a sign-in leaves it (auth keys,
        # session clocks and limits, current company), and one activity entry each.
        from importlib import import_module
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from vouch.accounts.middleware import AUTH_AT, LIMITS, SEEN_AT, _limits_for
        from vouch.activity.services import log
        from vouch.core.context import company_context
        from vouch.tenancy.services import SESSION_COMPANY_KEY
        store_class = import_module(settings.SESSION_ENGINE).SessionStore
        keys = []
        memberships = Membership.objects.filter(user__email__startswith=f"bench-{tag}-")
        memberships = memberships.select_related("user", "company")
        for membership in memberships.order_by("user_id"):
            user, now = membership.user, int(time.time())
            store = store_class()
            store[SESSION_KEY] = str(user.pk)
            store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store[AUTH_AT] = store[SEEN_AT] = now
            store[LIMITS] = _limits_for(user)
            store[SESSION_COMPANY_KEY] = str(membership.company_id)
            store.create()
            keys.append(store.session_key)
            with company_context(membership.company):
                log("settings_changed", "Bench company set up", actor=user)
        print(json.dumps({"keys": keys}))

    def timings(count):
        # One after another, after a first provisioning that makes the template.
        from django.core.management import call_command
        from vouch.tenancy.services import create_company
        call_command("migrate", verbosity=0, interactive=False)
        owner = User.objects.create_user("bench-timing@example.com", None, full_name="Bench")
        started = time.perf_counter()
        provisioning.provision(uuid.uuid4(), REGION)
        first_ms = (time.perf_counter() - started) * 1000
        def timed(fn):
            times = []
            for i in range(count):
                started = time.perf_counter()
                fn(i)
                times.append((time.perf_counter() - started) * 1000)
            return {"median_ms": statistics.median(times), "p90_ms": statistics.quantiles(times, n=10)[8],
                    "min_ms": min(times), "max_ms": max(times), "count": len(times)}
        result = {
            "backend": "postgresql" if regions.get(REGION).uses_postgresql else "sqlite",
            "first_ms": first_ms,
            "provision": timed(lambda i: provisioning.provision(uuid.uuid4(), REGION)),
            "create_company": timed(lambda i: create_company(f"Timed {i}", REGION, owner)),
        }
        print(json.dumps(result))

    mode = sys.argv[1]
    if mode == "bulk":
        bulk(int(sys.argv[2]), sys.argv[3], sys.argv[4] == "behind")
    elif mode == "sessions":
        sessions(sys.argv[2])
    elif mode == "timings":
        timings(int(sys.argv[2]))
    """
)


def django(env: dict[str, str], *argv: str, timeout: float = 1800) -> dict:
    """Run SCRIPT with ``env`` (progress on our stderr); its last stdout line as JSON."""
    env = {**env, "DJANGO_SETTINGS_MODULE": "vouch.settings", "VOUCH_LOG_LEVEL": "WARNING"}
    return harness.run_script(SCRIPT, argv, env, what=f"tenancy bench step {argv[0]}", timeout=timeout)


@contextmanager
def embedded_default():
    """make_server on SQLite even when the bench runs with --services."""
    saved = os.environ.pop("VOUCH_TEST_SERVICES", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["VOUCH_TEST_SERVICES"] = saved


def make_sqlite_server(workers: int):
    with embedded_default():
        server = harness.make_server(workers=workers)
    server.env.pop("VOUCH_TEST_SERVICES", None)
    return server


# --- (a) the dashboard at 10 and at N companies ------------------------------------------


def measure_dashboard(args, server, cookie: str, label: str) -> dict:
    url = f"{server.url}/dashboard/"
    say(f"{label}: warm-up ({args.warmup:g}s), {load_text()}")
    harness.run_wrk(url, args, args.warmup, cookie)
    runs = []
    for round_number in range(1, args.rounds + 1):
        cursor = harness.LogCursor(server.log_path)
        measured = harness.run_wrk(url, args, args.duration, cookie)
        time.sleep(0.3)  # the last log lines reach the file
        harness.check_statuses(label, cursor.statuses("dashboard/"), measured)
        measured["round"] = round_number
        runs.append(measured)
        say(
            f"{label} round {round_number}: {measured['requests_per_s']:.1f} req/s, "
            f"p99 {measured['p99_ms']:.2f} ms, {load_text()}"
        )
    return {"median": harness.median_of(runs), "runs": runs, "load_after": os.getloadavg()}


def dashboard_at_scale(args) -> dict:
    with harness.serving(make_sqlite_server(args.workers)) as server:
        server.start()
        company, cookie = harness.prepare_member(server)
        tag = uuid.uuid4().hex[:6]
        django(server.env, "bulk", str(SMALL), tag, "current")
        small = measure_dashboard(args, server, cookie, f"dashboard, {SMALL} companies")
        say(f"provisioning up to {args.companies} companies ({load_text()})")
        made = django(server.env, "bulk", str(args.companies), tag, "current")
        if made["companies"] != args.companies or made["sqlite_files"] < args.companies:
            raise RuntimeError(f"expected {args.companies} companies with databases, got {made}")
        large = measure_dashboard(args, server, cookie, f"dashboard, {args.companies} companies")
        return {"small": small, "large": large, "bulk_provisioning": made, "companies": args.companies}


# --- (b) provisioning time --------------------------------------------------------------


def provisioning_times(count: int = PROVISION_SAMPLES) -> dict:
    results: dict[str, dict] = {}
    base = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    for backend in ("sqlite", "postgresql"):
        prefix = None
        with harness.scratch_dir("vouch-bench-tenancy-") as data_dir:
            env = {**base, "VOUCH_DATA_DIR": data_dir}
            if backend == "postgresql":
                why = harness.postgres_reachable()
                if why:
                    results[backend] = {"reachable": False, "reason": why}
                    continue
                prefix = f"vouch_bench_{uuid.uuid4().hex[:8]}"
                env |= {"VOUCH_COMPANY_DATABASE_URL": harness.PG_URL, "VOUCH_COMPANY_DATABASE_PREFIX": prefix}
            try:
                say(f"provisioning times, {backend}: {count} provision() + {count} create_company() ({load_text()})")
                results[backend] = django(env, "timings", str(count)) | {"reachable": True}
            finally:
                if prefix:
                    harness.drop_pg_databases_with_prefix(prefix + "_")
    return results


# --- (c) vouch tenants migrate, (d) connections under load ---------------------------------


class FdSampler(threading.Thread):
    """Counts the company-database files the server's processes hold open."""

    def __init__(self, root_pid: int, regions_dir: Path, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.interval = root_pid, interval
        self.prefix = str(regions_dir.resolve()) + os.sep
        self.stopping = threading.Event()
        self.samples: list[int] = []
        self.per_process_peak: dict[int, int] = {}
        self.seen: set[str] = set()

    def descendants(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    # The parent pid follows the command name, which may hold spaces: split after ")".
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.root_pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def count(self, pids: list[int]) -> int:
        total = 0
        for pid in pids:
            n = 0
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith(self.prefix) and target.endswith(".sqlite3") and "/companies/" in target:
                    n += 1
                    self.seen.add(target)
            self.per_process_peak[pid] = max(self.per_process_peak.get(pid, 0), n)
            total += n
        return total

    def run(self) -> None:
        pids, rescan = self.descendants(), time.monotonic() + 1
        while not self.stopping.is_set():
            if time.monotonic() > rescan:  # a worker may have been restarted
                pids, rescan = self.descendants(), time.monotonic() + 1
            self.samples.append(self.count(pids))
            self.stopping.wait(self.interval)

    def stop(self) -> dict:
        self.stopping.set()
        self.join(timeout=5)
        return {
            "peak": max(self.samples, default=0),
            "mean": statistics.fmean(self.samples) if self.samples else 0.0,
            "samples": len(self.samples),
            "distinct_files_seen": len(self.seen),
            "processes_holding_any": sum(1 for n in self.per_process_peak.values() if n),
        }


LUA = textwrap.dedent(
    """
    local keys = {{{keys}}}
    local threads = 0
    function setup(thread)
      thread:set("offset", threads * {spacing})
      threads = threads + 1
    end
    local requests, n = {{}}, 0
    function init(args)
      for i, key in ipairs(keys) do
        requests[i] = wrk.format("GET", "{path}", {{["Cookie"] = "__Host-vouch_session=" .. key}})
      end
      n = offset
    end
    function request()
      n = n + 1
      return requests[(n % #requests) + 1]
    end
    """
)


def migrate_and_load(args) -> dict:
    count = min(MIGRATE_COMPANIES, args.companies)
    with harness.serving(make_sqlite_server(args.workers)) as server:
        server.vouch("migrate")
        tag = uuid.uuid4().hex[:6]
        say(f"provisioning {count} companies one migration behind ({load_text()})")
        made = django(server.env, "bulk", str(count), tag, "behind")
        if made["companies"] != count or made.get("behind") != count:
            raise RuntimeError(f"expected {count} companies behind by {made['missing']}, got {made}")
        say(f"vouch tenants migrate over {count} companies ({load_text()})")
        load_before = os.getloadavg()
        started = time.perf_counter()
        migrated = subprocess.run(
            [str(Path(sys.executable).with_name("vouch")), "tenants", "migrate"],
            env=server.env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        seconds = time.perf_counter() - started
        summary = f"{count} companies: 0 already current, {count} migrated, 0 failed."
        if migrated.returncode != 0 or summary not in migrated.stdout:
            raise RuntimeError(f"vouch tenants migrate:\n{migrated.stdout[-2000:]}\n{migrated.stderr[-2000:]}")
        migrate_result = {
            "companies": count,
            "seconds": seconds,
            "missing": made["missing"],
            "output": migrated.stdout.strip().splitlines()[-1],
            "load_before": load_before,
            "load_after": os.getloadavg(),
        }
        say(f"  {migrate_result['output']} in {seconds:.1f}s")

        keys = django(server.env, "sessions", tag)["keys"]
        if len(keys) != count:
            raise RuntimeError(f"expected {count} sessions, got {len(keys)}")
        server.start()
        page = harness.helpers.request(server, "GET", "/activity/", cookies={"__Host-vouch_session": keys[0]})
        if page.status != 200 or "Bench company set up" not in page.text:
            raise RuntimeError(f"/activity/ did not show the company's log to its owner (status {page.status})")
        script = Path(server.data_dir) / "companies.lua"
        script.write_text(
            LUA.format(keys=", ".join(f'"{k}"' for k in keys), spacing=count // max(1, args.threads), path="/activity/")
        )
        url = f"{server.url}/activity/"
        say(f"load across {count} companies: warm-up ({args.warmup:g}s), {load_text()}")
        harness.run_wrk(url, args, args.warmup, script=str(script))
        runs, connections = [], []
        regions_dir = Path(server.data_dir) / "regions"
        for round_number in range(1, args.rounds + 1):
            cursor = harness.LogCursor(server.log_path)
            sampler = FdSampler(server.process.pid, regions_dir)
            sampler.start()
            measured = harness.run_wrk(url, args, args.duration, script=str(script))
            sampled = sampler.stop()
            time.sleep(0.3)
            harness.check_statuses("activity across companies", cursor.statuses("activity/"), measured)
            measured["round"], measured["connections"] = round_number, sampled
            runs.append(measured)
            connections.append(sampled)
            say(
                f"activity across {count} companies round {round_number}: {measured['requests_per_s']:.1f} req/s, "
                f"p99 {measured['p99_ms']:.2f} ms, open company databases peak {sampled['peak']} "
                f"({sampled['samples']} samples, {sampled['distinct_files_seen']} distinct seen), {load_text()}"
            )
        load_result = {
            "companies": count,
            "median": harness.median_of(runs),
            "runs": runs,
            "peak_open_company_databases": max(c["peak"] for c in connections),
            "distinct_company_databases_seen": max(c["distinct_files_seen"] for c in connections),
            "server_processes_holding_any": max(c["processes_holding_any"] for c in connections),
        }
        return {"migrate": migrate_result, "load": load_result}


# --- all of it ----------------------------------------------------------------------------


def measure(args) -> dict:
    """Every figure (the server, wrk and log helpers from bench/harness.py)."""
    results: dict = {"cpus": os.cpu_count(), "load_start": os.getloadavg(), "seconds": {}}
    started = time.perf_counter()
    results["dashboard"] = dashboard_at_scale(args)
    results["seconds"]["dashboard"] = time.perf_counter() - started
    started = time.perf_counter()
    results["provisioning"] = provisioning_times()
    results["seconds"]["provisioning"] = time.perf_counter() - started
    started = time.perf_counter()
    results |= migrate_and_load(args)
    results["seconds"]["migrate_and_load"] = time.perf_counter() - started
    results["load_end"] = os.getloadavg()
    small, large = results["dashboard"]["small"]["median"], results["dashboard"]["large"]["median"]
    rps_ratio = large["requests_per_s"] / small["requests_per_s"] if small["requests_per_s"] else 0.0
    p99_ratio = large["p99_ms"] / small["p99_ms"] if small["p99_ms"] else 0.0
    results["dashboard"]["ratio"] = {"requests_per_s": rps_ratio, "p99": p99_ratio}
    met = {
        "dashboard_rps_within_10pct": abs(rps_ratio - 1) <= TARGET_RATIO,
        "dashboard_p99_within_10pct": abs(p99_ratio - 1) <= TARGET_RATIO,
        "migrate_under_2_min": results["migrate"]["seconds"] < TARGET_MIGRATE_S,
    }
    for backend, target in TARGET_PROVISION_MS.items():
        timing = results["provisioning"][backend]
        if timing.get("reachable"):
            met[f"provision_{backend}"] = timing["create_company"]["median_ms"] < target
    results["targets"] = {"met": met}
    return results


def table_rows(results: dict) -> list[str]:
    """Rows for bench/run.py's table (name, req/s, p50, p99, ratio)."""
    d = results["dashboard"]
    small, large, load_median = d["small"]["median"], d["large"]["median"], results["load"]["median"]
    return [
        harness.server_row(f"dashboard {SMALL} cos", small, 1.0),
        harness.server_row(f"dashboard {d['companies']} cos", large, d["ratio"]["requests_per_s"]),
        harness.server_row(f"activity {results['load']['companies']} cos", load_median),
    ]


def describe(results: dict) -> list[str]:
    d, met = results["dashboard"], results["targets"]["met"]
    bulk = d["bulk_provisioning"]
    lines = [
        f"company isolation ({results['cpus']} CPUs; load average at start "
        f"{harness.loads(results['load_start'], '.2f')}, at end "
        f"{harness.loads(results['load_end'], '.2f')}: other processes share this machine)",
        f"(a) dashboard {d['companies']} vs {SMALL} companies: req/s ratio {d['ratio']['requests_per_s']:.3f}, "
        f"p99 ratio {d['ratio']['p99']:.3f}; target within 10%: req/s {verdict(met['dashboard_rps_within_10pct'])}, "
        f"p99 {verdict(met['dashboard_p99_within_10pct'])}",
        f"    {bulk['made']} companies provisioned in {bulk['seconds']:.1f}s ({bulk['made'] / bulk['seconds']:.0f}/s, "
        f"4 threads, with owner/company/membership rows)",
    ]
    for backend, timing in results["provisioning"].items():
        if not timing.get("reachable"):
            lines.append(f"(b) provisioning, {backend}: not reachable ({timing.get('reason', '')})")
            continue
        p, c = timing["provision"], timing["create_company"]
        lines.append(
            f"(b) provisioning, {backend} ({c['count']} each): create_company median {c['median_ms']:.1f} ms "
            f"(p90 {c['p90_ms']:.1f}), provision() alone median {p['median_ms']:.1f} ms (p90 {p['p90_ms']:.1f}); "
            f"first (makes the template) {timing['first_ms']:.0f} ms; target < {TARGET_PROVISION_MS[backend]:g} ms: "
            f"{verdict(met[f'provision_{backend}'])}"
        )
    m = results["migrate"]
    lines.append(
        f"(c) vouch tenants migrate, {m['companies']} SQLite companies behind by {', '.join(m['missing'])}: "
        f"{m['seconds']:.1f}s (default workers); target < {TARGET_MIGRATE_S:g}s: {verdict(met['migrate_under_2_min'])}"
    )
    lo = results["load"]
    lines.append(
        f"(d) load across {lo['companies']} companies (/activity/, each request a different company's session): "
        f"peak {lo['peak_open_company_databases']} open company databases (SQLite files held by the server's "
        f"processes, sampled every 50 ms), {lo['distinct_company_databases_seen']} distinct seen open"
    )
    seconds = results["seconds"]
    lines.append(
        "    time: "
        + ", ".join(f"{name} {value:.0f}s" for name, value in seconds.items())
        + f", total {sum(seconds.values()):.0f}s"
    )
    return lines


if __name__ == "__main__":
    harness.run_alone(measure, table_rows, describe)
