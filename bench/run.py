"""`make bench`: throughput and latency of the real server, and the cost of one password check.

Starts its own `vouch serve` (granian, TLS, embedded SQLite default) with 2 workers,
signs a company owner in through the real login form, then runs `wrk` over HTTPS
against /livez (a constant view: the baseline) and /dashboard/ (a signed-in page),
interleaved for several rounds, and reports medians. Results go to the terminal and
to bench/results/latest.json.

    make bench BENCH_ARGS="--duration 5s --rounds 1"
    .venv/bin/python bench/run.py --env VOUCH_WORKERS=3   # try server settings
    .venv/bin/python bench/run.py --only vault             # one section (repeatable)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import textwrap
import time
from pathlib import Path

import harness
from harness import (
    ROOT,
    LogCursor,
    check_statuses,
    git_commit,
    make_server,
    median_of,
    now_iso,
    parse_duration,
    prepare_member,
    run_wrk,
    serving,
    verdict,
)

TARGET_RPS = 1000.0
TARGET_P99_MS = 50.0
RESULTS = ROOT / "bench" / "results"
# server: livez/dashboard under wrk and the password check; the others are bench/<name>.py.
SECTIONS = (
    "server",
    "tenancy",
    "vault",
    "risk",
    "shield",
    "bruteforce",
    "workflow",
    "backups",
    "mirror",
    "restore",
    "mirror_scale",
    "flood",
    "event_flood",
    "api",
    "webhooks",
    "search",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=parse_duration, default=10.0, help="each wrk run (default 10s)")
    parser.add_argument("--warmup", type=parse_duration, default=2.0, help="unmeasured run first (default 2s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--hash-iterations", type=int, default=30)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--companies",
        type=int,
        default=10000,
        help="companies for the second dashboard measurement (default 10000; bench/tenancy.py); "
        "the migrate and load parts use min(1000, this)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section (repeatable; one of {', '.join(SECTIONS)}); its results replace "
        "that section's in --output, the rest of the file is kept",
    )
    parser.add_argument(
        "--services",
        action="store_true",
        help="PostgreSQL + Redis as in production (VOUCH_TEST_DATABASE_URL / VOUCH_TEST_REDIS_URL) instead of SQLite",
    )
    return parser.parse_args(argv)


# --- password hashing -------------------------------------------------------------

HASH_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import django
    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import check_password, get_hasher, make_password
    hasher = get_hasher()
    assert type(hasher).__module__ + "." + type(hasher).__name__ == settings.PASSWORD_HASHERS[0]
    encoded = make_password("correct horse battery staple 42")
    assert check_password("correct horse battery staple 42", encoded)  # warm-up, and a sanity check
    times = []
    for _ in range(int(sys.argv[1])):
        started = time.perf_counter()
        ok = check_password("correct horse battery staple 42", encoded)
        times.append((time.perf_counter() - started) * 1000)
        assert ok
    print(json.dumps({
        "hasher": settings.PASSWORD_HASHERS[0],
        "params": {"time_cost": hasher.time_cost, "memory_cost_kib": hasher.memory_cost,
                   "parallelism": hasher.parallelism},
        "encoded_prefix": "$".join(encoded.split("$")[:4]),
        "iterations": len(times),
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
    }))
    """
)


def measure_password_check(iterations: int) -> dict:
    with harness.scratch_dir("vouch-bench-hash-") as data_dir:
        env = harness.django_env(data_dir)
        return harness.run_script(
            HASH_SCRIPT, [str(iterations)], env, what="password check benchmark", timeout=600, quiet=True
        )


# --- the run ----------------------------------------------------------------------


def benchmark(args: argparse.Namespace) -> dict:
    extra_env = dict(item.split("=", 1) for item in args.env)
    # The embedded default (SQLite, database cache) unless --services, whatever the calling shell says.
    if args.services:
        os.environ["VOUCH_TEST_SERVICES"] = "1"
    else:
        os.environ.pop("VOUCH_TEST_SERVICES", None)
    with serving(make_server(extra_env=extra_env, workers=args.workers)) as server:
        server.start()
        company, cookie = prepare_member(server)
        targets = {
            "livez": (f"{server.url}/livez", None, "livez"),
            "dashboard": (f"{server.url}/dashboard/", cookie, "dashboard/"),
        }
        for name, (url, cookie_value, _) in targets.items():
            print(f"warm-up {name} ({args.warmup:g}s)", flush=True)
            run_wrk(url, args, args.warmup, cookie_value)
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        for round_number in range(1, args.rounds + 1):
            for name, (url, cookie_value, route) in targets.items():
                cursor = LogCursor(server.log_path)
                measured = run_wrk(url, args, args.duration, cookie_value)
                time.sleep(0.3)  # let the last log lines reach the file before counting them
                statuses = cursor.statuses(route)
                check_statuses(name, statuses, measured)
                measured["round"] = round_number
                runs[name].append(measured)
                print(
                    f"round {round_number} {name:<9} {measured['requests_per_s']:9.1f} req/s  "
                    f"p50 {measured['p50_ms']:7.2f} ms  p99 {measured['p99_ms']:7.2f} ms",
                    flush=True,
                )
        return {"company": company, "runs": runs, "server_env": extra_env}


def report(args: argparse.Namespace, measured: dict, password: dict, extra_rows: list[str] | None = None) -> dict:
    livez = median_of(measured["runs"]["livez"])
    dashboard = median_of(measured["runs"]["dashboard"])
    ratio = dashboard["requests_per_s"] / livez["requests_per_s"] if livez["requests_per_s"] else 0.0
    meets = {
        "dashboard_rps": dashboard["requests_per_s"] >= TARGET_RPS,
        "dashboard_p99": dashboard["p99_ms"] < TARGET_P99_MS,
    }
    print()
    print(
        f"Vouch bench: {args.rounds} round(s) x {args.duration:g}s, wrk -t{args.threads} -c{args.connections} "
        f"over HTTPS, {args.workers} server workers, {os.cpu_count()} CPUs (wrk shares them), medians"
    )
    print("\n".join(harness.server_header()))
    print(harness.server_row("livez (baseline)", livez, 1.0))
    print(harness.server_row("dashboard (signed in)", dashboard, ratio))
    for row in extra_rows or []:
        print(row)
    print()
    print(
        f"password check ({password['hasher'].rsplit('.', 1)[-1]}, {password['encoded_prefix']}): "
        f"median {password['median_ms']:.1f} ms over {password['iterations']} "
        f"(min {password['min_ms']:.1f}, max {password['max_ms']:.1f})"
    )
    print()
    print(
        f"target dashboard >= {TARGET_RPS:.0f} req/s at {args.connections} connections: "
        f"{verdict(meets['dashboard_rps'])} ({dashboard['requests_per_s']:.0f})"
    )
    print(
        f"target dashboard p99 < {TARGET_P99_MS:.0f} ms: "
        f"{verdict(meets['dashboard_p99'])} ({dashboard['p99_ms']:.1f} ms)"
    )
    return {
        "when": now_iso(),
        "commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "wrk_threads": args.threads,
            "connections": args.connections,
            "server_workers": args.workers,
            "server_env": measured["server_env"],
            "database": "postgresql + redis" if args.services else "sqlite (embedded default)",
        },
        "median": {"livez": livez, "dashboard": dashboard, "dashboard_to_livez_ratio": ratio},
        "runs": measured["runs"],
        "password_check": password,
        "targets": {"dashboard_min_rps": TARGET_RPS, "dashboard_max_p99_ms": TARGET_P99_MS, "met": meets},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = args.only or list(SECTIONS)
    # A terminated bench still stops its server (the `finally` in benchmark()).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    uses_wrk = {"server", "tenancy", "bruteforce", "workflow", "mirror", "flood", "api", "search"}
    if uses_wrk & set(sections) and shutil.which("wrk") is None:
        print("bench needs wrk (apt-get install wrk; `make bench` installs it)", file=sys.stderr)
        return 2
    sectioned: dict = {}
    rows: list[str] = []
    if "server" in sections:
        print(f"password check: {args.hash_iterations} iterations", flush=True)
        password = measure_password_check(args.hash_iterations)
        measured = benchmark(args)
    # Company isolation: dashboard at 10 vs --companies companies, provisioning, tenants migrate,
    # open company databases under load (bench/tenancy.py); its throughput rows join the table.
    if "tenancy" in sections:
        import tenancy

        print(f"\ncompany isolation (--companies {args.companies})", flush=True)
        sectioned["tenancy"] = tenancy.measure(args)
        rows += tenancy.table_rows(sectioned["tenancy"])
    # Encryption at rest: per-field cost, an encrypted list vs plaintext, file MB/s vs openssl,
    # master key rotation over 10,000 companies (bench/vault.py); its rows join the table too.
    if "vault" in sections:
        import vault

        print("\nencryption at rest (bench/vault.py)", flush=True)
        sectioned["vault"] = vault.measure()
        rows += vault.table_rows(sectioned["vault"])
    # The reference workflow: the referee's questionnaire page and autosave, the request
    # dashboard with 10,000 requests, a 5-referee report's PDF (bench/workflow.py).
    if "workflow" in sections:
        import workflow as workflow_bench

        print("\nreference workflow (bench/workflow.py)", flush=True)
        sectioned["workflow"] = workflow_bench.measure(args)
        rows += workflow_bench.table_rows(sectioned["workflow"])
    # Encrypted backups: a round of 1,000 companies vs a plain copy of the same files (bench/backups.py).
    if "backups" in sections:
        import backups as backups_bench

        print("\nencrypted backups (bench/backups.py)", flush=True)
        sectioned["backups"] = backups_bench.measure()
        rows += backups_bench.table_rows(sectioned["backups"])
    # The constant mirror: recovery point under the autosave load, autosave throughput with
    # the mirror on vs off (bench/mirror.py); its throughput rows join the table.
    if "mirror" in sections:
        import mirror as mirror_bench

        print("\nconstant mirror (bench/mirror.py)", flush=True)
        sectioned["mirror"] = mirror_bench.measure(args)
        rows += mirror_bench.table_rows(sectioned["mirror"])
    # Restore and drills: 1,000 companies drilled, one 10 MB company restored, each beside a
    # plain copy of the same stored bytes (bench/restore.py).
    if "restore" in sections:
        import restore as restore_bench

        print("\nrestore and drills (bench/restore.py)", flush=True)
        sectioned["restore"] = restore_bench.measure()
        rows += restore_bench.table_rows(sectioned["restore"])
    # The mirror's cost as companies grow: memory, idle CPU and open files at 1,000 and 10,000
    # companies, directory replication against the live set (bench/mirror_scale.py).
    if "mirror_scale" in sections:
        import mirror_scale as mirror_scale_bench

        print("\nmirror cost as companies grow (bench/mirror_scale.py)", flush=True)
        sectioned["mirror_scale"] = mirror_scale_bench.measure()
        rows += mirror_scale_bench.table_rows(sectioned["mirror_scale"])
    # The REST API: a request read, the list, creation, beside /livez of its own server run,
    # and the key check's cost per call (bench/api.py); its throughput rows join the table.
    if "api" in sections:
        import api as api_bench

        print("\nREST API (bench/api.py)", flush=True)
        sectioned["api"] = api_bench.measure(args)
        rows += api_bench.table_rows(sectioned["api"])
    # Search as recruiters type: the Candidates search fragment over 10,000 candidates beside
    # /livez and the unfiltered list of the same run (bench/search.py); its rows join the table.
    if "search" in sections:
        import search as search_bench

        print("\nsearch as recruiters type (bench/search.py)", flush=True)
        sectioned["search"] = search_bench.measure(args)
        rows += search_bench.table_rows(sectioned["search"])
    if "server" in sections:
        results = report(args, measured, password, rows)
    else:
        results = {}
        # Their rows have the server table's columns.
        if {"tenancy", "workflow", "mirror", "api", "search"} & set(sectioned):
            print("\n" + "\n".join(harness.server_header()))
        print("\n".join(rows))
    if "tenancy" in sectioned:
        print("\n" + "\n".join(tenancy.describe(sectioned["tenancy"])))
    if "vault" in sectioned:
        print("\n" + "\n".join(vault.describe(sectioned["vault"])))
    if "workflow" in sectioned:
        print("\n" + "\n".join(workflow_bench.describe(sectioned["workflow"])))
    if "backups" in sectioned:
        print("\n" + "\n".join(backups_bench.describe(sectioned["backups"])))
    if "mirror" in sectioned:
        print("\n" + "\n".join(mirror_bench.describe(sectioned["mirror"])))
    if "restore" in sectioned:
        print("\n" + "\n".join(restore_bench.describe(sectioned["restore"])))
    if "mirror_scale" in sectioned:
        print("\n" + "\n".join(mirror_scale_bench.describe(sectioned["mirror_scale"])))
    if "api" in sectioned:
        print("\n" + "\n".join(api_bench.describe(sectioned["api"])))
    if "search" in sectioned:
        print("\n" + "\n".join(search_bench.describe(sectioned["search"])))
    # Suspicious-login protection: the risk engine's cost per login (bench/risk.py).
    if "risk" in sections:
        import risk as risk_bench

        sectioned["risk_scoring"] = risk_bench.measure_risk_scoring()
        print("\n" + risk_bench.describe(sectioned["risk_scoring"]))
    # Intrusion detection: its cost per request, and the time to block a scanner (bench/shield.py).
    if "shield" in sections:
        import shield as shield_bench

        print("\nintrusion detection", flush=True)
        sectioned["shield"] = shield_bench.measure()
        print("\n".join(shield_bench.describe(sectioned["shield"])))
    # Brute-force defence: the decision per login, and a login flood with protections on vs off.
    if "bruteforce" in sections:
        import bruteforce

        print("\nbrute-force decision and login flood", flush=True)
        decision = bruteforce.measure_decision(services=args.services)
        logins = bruteforce.measure_login_rps(args)
        print("\n".join(bruteforce.describe(decision, logins)))
        sectioned["bruteforce"] = {"decision": decision, "login_flood": logins}
    # A flood from thousands of addresses beside a normal client (bench/flood.py).
    if "flood" in sections:
        import flood

        print("\nflood and a normal client", flush=True)
        sectioned["flood"] = flood.measure(args)
        print("\n".join(flood.describe(sectioned["flood"])))
    # A flood of token-less POSTs (security events) beside sign-ins (bench/event_flood.py).
    if "event_flood" in sections:
        import event_flood

        print("\nsecurity-event flood and sign-in", flush=True)
        sectioned["event_flood"] = event_flood.measure(args)
        print("\n".join(event_flood.describe(sectioned["event_flood"])))
    # Webhook deliveries per second from one worker to a local receiver (bench/webhooks.py).
    if "webhooks" in sections:
        import webhooks as webhooks_bench

        print("\nwebhook deliveries (bench/webhooks.py)", flush=True)
        sectioned["webhooks"] = webhooks_bench.measure_deliveries()
        print(webhooks_bench.describe(sectioned["webhooks"]))
    results |= sectioned
    checked = [
        results.get("targets", {}),
        sectioned.get("vault", {}).get("targets", {}),
        sectioned.get("workflow", {}).get("targets", {}),
        sectioned.get("backups", {}).get("targets", {}),
        sectioned.get("mirror", {}).get("targets", {}),
        sectioned.get("restore", {}).get("targets", {}),
        sectioned.get("mirror_scale", {}).get("targets", {}),
        sectioned.get("flood", {}).get("targets", {}),
        sectioned.get("event_flood", {}).get("targets", {}),
        sectioned.get("api", {}).get("targets", {}),
        sectioned.get("search", {}).get("targets", {}),
        {"met": {"webhook_deliveries": sectioned["webhooks"]["met"]}} if "webhooks" in sectioned else {},
    ]
    missed = [name for targets in checked for name, ok in targets.get("met", {}).items() if not ok]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.only:
        # A partial run updates its sections and keeps the rest of the last full run.
        if args.output.exists():
            with contextlib.suppress(ValueError):
                results = json.loads(args.output.read_text()) | results
        stamp = {"when": now_iso(), "commit": git_commit()}
        results.setdefault("sections_updated", {}).update({name: stamp for name in sections})
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    if args.strict and missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
