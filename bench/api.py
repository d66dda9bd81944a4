"""The REST API's figures for `make bench` (vouch.api, issue #19).

One live `vouch serve` (granian, TLS, --workers processes, the embedded SQLite default
unless --services), a company with SEEDED reference requests (seeded as bench/workflow.py
seeds its dashboard: encrypted, one transaction) and an API key with the request scopes,
made by ``vouch.api.keys.services.create_key`` in a Django process against the server's
data. wrk then sends, with ``Authorization: Bearer <key>``, interleaved for several
rounds beside /livez (a constant view: the baseline of the same run):

- GET /api/v1/requests/{id} (one request, its references and statuses), rotating
  through READ_IDS of the seeded requests;
- GET /api/v1/requests (the list's first page, newest first);
- POST /api/v1/requests (a new request and candidate each), each call with its own
  ``Idempotency-Key``; every one must be answered 201 (the server's log is counted).
  The candidate's email and the request's planning are the background worker's (one
  task each): after each creation round the bench waits until the worker has run every
  task due, and also reports creations per second counting that time.

The key's limits are lifted for the run: ``VOUCH_API_KEY_RATE_LIMIT=0`` (600 a minute
by default) and the company's api_overuse threshold at its highest (1,000,000 calls an
hour): both are still counted on every call, what is measured is their cost, not
their refusal. The key check's own cost (parse, company, ``services.check``) is timed
in one process, per call.

Run alone: .venv/bin/python bench/run.py --only api   (quick: --duration 3s --rounds 1)
"""

from __future__ import annotations

import json
import os
import statistics
import textwrap
import time
import uuid
from pathlib import Path

import harness
from harness import RouteLog, helpers, load_text, say, verdict_of
from mirror_scale import tree
from workflow import django as workflow_django

TARGET_P99_MS = 50.0
TARGET_RPS = 1000.0
TARGET_CREATE_RPS = 200.0
SEEDED = 1000
READ_IDS = 200
CHECK_CALLS = 2000
SCOPES = ("requests:read", "requests:write")

SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import django
    django.setup()
    from django.test import RequestFactory
    from vouch.abuse import thresholds
    from vouch.abuse.rules import API_OVERUSE
    from vouch.accounts.models import Membership
    from vouch.api.keys import services
    from vouch.core.context import company_context
    from vouch.references.request_models import ReferenceRequest
    from vouch.tenancy.models import Company

    def key(company_id, email, scopes, count):
        company = Company.objects.get(pk=company_id)
        membership = Membership.objects.select_related("user", "company").get(company=company, user__email=email)
        thresholds.save(company, membership, {API_OVERUSE.name: API_OVERUSE.high})
        with company_context(company):
            _key, token = services.create_key(None, membership, name="Bench ATS", scopes=scopes.split(","))
            newest = ReferenceRequest.objects.order_by("-created_at").values_list("pk", flat=True)[:count]
            ids = [str(pk) for pk in newest]
        print(json.dumps({"token": token, "ids": ids}))

    def check_cost(token, count):
        # What the API's middleware does before a view: parse the key, find its company,
        # check it (hash, status, networks, the creator's role, the rate counter, last use).
        request = RequestFactory().get("/api/v1/requests", HTTP_AUTHORIZATION=f"Bearer {token}",
                                       REMOTE_ADDR="127.0.0.1", secure=True)
        def once():
            parsed = services.parse(token)
            company = services.company_for(parsed)
            with company_context(company):
                return services.check(request, parsed, company)
        parsed = services.parse(token)
        company = services.company_for(parsed)
        for _ in range(20):
            assert once().has("requests:read")
        whole, check_only = [], []
        with company_context(company):
            for _ in range(count):
                started = time.perf_counter()
                services.check(request, parsed, company)
                check_only.append((time.perf_counter() - started) * 1e6)
        for _ in range(count):
            started = time.perf_counter()
            once()
            whole.append((time.perf_counter() - started) * 1e6)
        # A whole call in one process (the test client: no TLS, no server), wall and CPU.
        from django.test import Client
        client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
        with company_context(company):
            first = str(ReferenceRequest.objects.order_by("-created_at").values_list("pk", flat=True)[0])
        calls = {}
        for name, path in (("read", f"/api/v1/requests/{first}"), ("list", "/api/v1/requests")):
            wall, cpu = [], []
            for i in range(count // 10 + 10):
                started, cpu_started = time.perf_counter(), time.process_time()
                response = client.get(path, secure=True)
                if i >= 10:  # the first ten warm up
                    cpu.append((time.process_time() - cpu_started) * 1000)
                    wall.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.status_code
            calls[name] = {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}
        print(json.dumps({"calls": count, "check_median_us": statistics.median(check_only),
                          "check_p90_us": statistics.quantiles(check_only, n=10)[8],
                          "whole_median_us": statistics.median(whole),
                          "whole_p90_us": statistics.quantiles(whole, n=10)[8], "in_process": calls}))

    def drain(timeout):
        # Wait until the server's background worker has run every task due now (the
        # creations leave it each request's email and planning): what creation costs in all.
        # A task queued to run at once has django-tasks-db's far-future run_after (its
        # get_date_max): counted as due, as its worker counts it.
        from django.db.models import Q
        from django.utils import timezone
        from django_tasks_db.models import DBTaskResult, get_date_max
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            due = Q(run_after__lte=timezone.now()) | Q(run_after=get_date_max())
            if not DBTaskResult.objects.filter(due, status__in=("READY", "RUNNING")).exists():
                break
            time.sleep(0.2)
        print(json.dumps({"seconds": time.perf_counter() - started}))

    if sys.argv[1] == "key":
        key(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == "drain":
        drain(float(sys.argv[2]))
    else:
        check_cost(sys.argv[2], int(sys.argv[3]))
    """
)

HEADERS_LUA = textwrap.dedent(
    """
    wrk.headers["Authorization"] = {auth}
    wrk.headers["Accept"] = "application/json"
    """
)

READ_LUA = textwrap.dedent(
    """
    local ids = {{{ids}}}
    local threads = 0
    function setup(thread)
      thread:set("offset", threads * {spacing})
      threads = threads + 1
    end
    local n = 0
    function init(args) n = offset end
    function request()
      n = n + 1
      return wrk.format("GET", "/api/v1/requests/" .. ids[(n % #ids) + 1])
    end
    """
)

CREATE_LUA = textwrap.dedent(
    """
    local threads = 0
    function setup(thread)
      thread:set("tid", threads)
      threads = threads + 1
    end
    local n = 0
    local run = {run}
    function request()
      n = n + 1
      local i = tid .. "-" .. n
      local body = '{{"candidate": {{"name": "Api Candidate ' .. i .. '", "email": "api-' .. run .. '-' .. i ..
        '@example.org"}}, "role": "Data Analyst", "questionnaire": "builtin:general-professional", ' ..
        '"deadline": "{deadline}", "referees_required": 2, "external_id": "ats-' .. i .. '"}}'
      -- wrk.format's own headers replace wrk.headers: the key goes again
      local headers = {{Authorization = wrk.headers["Authorization"], Accept = "application/json"}}
      headers["Content-Type"] = "application/json"
      headers["Idempotency-Key"] = run .. "-" .. i
      return wrk.format("POST", "/api/v1/requests", headers, body)
    end
    """
)


def django(env: dict[str, str], *argv: str, timeout: float = 900) -> dict:
    env = {**env, "DJANGO_SETTINGS_MODULE": "vouch.settings", "VOUCH_LOG_LEVEL": "WARNING"}
    return harness.run_script(SCRIPT, argv, env, what=f"api bench step {argv[0]}", timeout=timeout)


def _script(directory: Path, name: str, token: str, body: str = "") -> str:
    path = directory / f"bench-api-{name}.lua"
    path.write_text(HEADERS_LUA.format(auth=json.dumps(f"Bearer {token}")) + body)
    return str(path)


def _with_server_cpu(server, url: str, args, script: str | None) -> dict:
    """One wrk run's figures, with the CPU the server's processes (its workers and the
    background worker) spent per answered call meanwhile: the cost of a call on this
    machine, whatever else shares it (wrk's own CPU is not in it)."""
    pids = tree(server.process.pid)
    before = harness.cpu_seconds(pids)
    measured = harness.run_wrk(url, args, args.duration, script=script)
    spent = harness.cpu_seconds([pid for pid in pids if Path(f"/proc/{pid}").exists()]) - before
    measured["server_cpu_ms_per_call"] = 1000 * spent / max(1, measured["requests"])
    return measured


def measure(args) -> dict:
    results: dict = {"cpus": os.cpu_count(), "load_start": os.getloadavg()}
    extra_env = {"VOUCH_API_KEY_RATE_LIMIT": "0"} | dict(item.split("=", 1) for item in args.env)
    results["server_env"] = extra_env
    with harness.serving(harness.make_server(extra_env=extra_env, workers=args.workers)) as server:
        server.start()
        tag = uuid.uuid4().hex[:8]
        email = f"bench-api-{tag}@example.com"
        company_id = helpers.create_member(server, email, f"Api Bench {tag}")["company_id"]
        say(f"seeding {SEEDED} requests ({load_text()})")
        seeded = workflow_django(server.env, "requests", company_id, email, str(SEEDED))
        made = django(server.env, "key", company_id, email, ",".join(SCOPES), str(READ_IDS))
        token, ids = made["token"], made["ids"]
        auth = {"Authorization": f"Bearer {token}"}
        probe = helpers.request(server, "GET", f"/api/v1/requests/{ids[0]}", headers=auth)
        listed = helpers.request(server, "GET", "/api/v1/requests", headers=auth)
        if probe.status != 200 or listed.status != 200:
            raise RuntimeError(f"the API answered {probe.status} / {listed.status}: {probe.text[:300]}")
        # The routes as the server's log names them (its URL patterns).
        read_route, list_route = "api/v1/requests/<request_id>", "api/v1/requests"
        directory = Path(server.data_dir)
        deadline = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
        spacing = len(ids) // max(1, args.threads)
        targets = {
            "livez": (f"{server.url}/livez", None, "livez", "GET", {200}),
            "read": (
                server.url,
                _script(
                    directory,
                    "read",
                    token,
                    READ_LUA.format(ids=", ".join(json.dumps(i) for i in ids), spacing=spacing),
                ),
                read_route,
                "GET",
                {200},
            ),
            "list": (f"{server.url}/api/v1/requests", _script(directory, "list", token), list_route, "GET", {200}),
        }
        for url, script, _route, _method, _ok in targets.values():
            harness.run_wrk(url, args, args.warmup, script=script)
        runs: dict[str, list[dict]] = {name: [] for name in (*targets, "create")}
        for round_number in range(1, args.rounds + 1):
            for name, (url, script, route, method, ok) in targets.items():
                cursor = RouteLog(server.log_path)
                measured = _with_server_cpu(server, url, args, script)
                harness.check_statuses(f"api {name}", cursor.statuses(route, method), measured, ok, complete=True)
                measured["round"] = round_number
                runs[name].append(measured)
                say(
                    f"round {round_number} api {name:<6} {measured['requests_per_s']:9.1f} req/s  "
                    f"p50 {measured['p50_ms']:7.2f} ms  p99 {measured['p99_ms']:7.2f} ms  "
                    f"server CPU {measured['server_cpu_ms_per_call']:.2f} ms a call  ({load_text()})"
                )
            # Creation last in a round: the list it adds to is measured first each round.
            script = _script(
                directory, "create", token, CREATE_LUA.format(run=json.dumps(f"{tag}{round_number}"), deadline=deadline)
            )
            cursor = RouteLog(server.log_path)
            measured = _with_server_cpu(server, server.url, args, script)
            harness.check_statuses("api create", cursor.statuses(list_route, "POST"), measured, {201}, complete=True)
            measured["round"] = round_number
            # The worker's share: the next round starts once it has sent every email and
            # planned every request, and creation counts that time too.
            waited = django(server.env, "drain", "300")["seconds"]
            measured["drain_seconds"] = waited
            measured["with_worker_per_s"] = measured["requests"] / (args.duration + waited)
            runs["create"].append(measured)
            say(
                f"round {round_number} api create {measured['requests_per_s']:9.1f} req/s  "
                f"p50 {measured['p50_ms']:7.2f} ms  p99 {measured['p99_ms']:7.2f} ms  "
                f"server CPU {measured['server_cpu_ms_per_call']:.2f} ms a call; the worker's share "
                f"done {waited:.1f} s later: {measured['with_worker_per_s']:.1f} created/s in all  ({load_text()})"
            )
        say(f"key check cost in one process ({CHECK_CALLS} calls), {load_text()}")
        results["key_check"] = django(server.env, "check", token, str(CHECK_CALLS))
    results["seeded"] = seeded["requests_in_company"]
    results["runs"] = runs
    results["median"] = {name: harness.median_of(values) for name, values in runs.items()}
    results["server_cpu_ms_per_call"] = {
        name: statistics.median(run["server_cpu_ms_per_call"] for run in values) for name, values in runs.items()
    }
    results["create_in_all"] = {
        "per_s": statistics.median(run["with_worker_per_s"] for run in runs["create"]),
        "drain_seconds": statistics.median(run["drain_seconds"] for run in runs["create"]),
    }
    results["load_end"] = os.getloadavg()
    results["targets"] = _targets(results)
    return results


def _targets(results: dict) -> dict:
    m = results["median"]
    met = {
        "read_p99": m["read"]["p99_ms"] < TARGET_P99_MS,
        "read_rps": m["read"]["requests_per_s"] >= TARGET_RPS,
        "list_p99": m["list"]["p99_ms"] < TARGET_P99_MS,
        "list_rps": m["list"]["requests_per_s"] >= TARGET_RPS,
        "create_rps": m["create"]["requests_per_s"] >= TARGET_CREATE_RPS,
    }
    return {"p99_ms": TARGET_P99_MS, "rps": TARGET_RPS, "create_rps": TARGET_CREATE_RPS, "met": met}


def table_rows(results: dict) -> list[str]:
    m = results["median"]
    base = m["livez"]["requests_per_s"] or 1.0
    labels = (
        ("livez", "livez (api run)"),
        ("read", "api GET request"),
        ("list", "api GET requests"),
        ("create", "api POST request"),
    )
    return [harness.server_row(label, m[name], m[name]["requests_per_s"] / base) for name, label in labels]


def describe(results: dict) -> list[str]:
    met, m, k = results["targets"]["met"], results["median"], results["key_check"]
    return [
        f"REST API ({results['cpus']} CPUs; load average at start {harness.loads(results['load_start'], '.2f')}, "
        f"at end {harness.loads(results['load_end'], '.2f')}; {results['seeded']} requests in the company, "
        "the key's rate limits lifted but counted)",
        f"  GET /api/v1/requests/{{id}}: {m['read']['requests_per_s']:.0f} req/s (target >= {TARGET_RPS:g}: "
        f"{verdict_of(met, 'read_rps')}), p99 {m['read']['p99_ms']:.1f} ms (target < {TARGET_P99_MS:g}: "
        f"{verdict_of(met, 'read_p99')})",
        f"  GET /api/v1/requests: {m['list']['requests_per_s']:.0f} req/s ({verdict_of(met, 'list_rps')}), "
        f"p99 {m['list']['p99_ms']:.1f} ms ({verdict_of(met, 'list_p99')})",
        f"  POST /api/v1/requests (each with its own Idempotency-Key, all 201): {m['create']['requests_per_s']:.0f} "
        f"req/s (target >= {TARGET_CREATE_RPS:g}: {verdict_of(met, 'create_rps')}), "
        f"p99 {m['create']['p99_ms']:.1f} ms; with the worker's share (each email and planning, done "
        f"{results['create_in_all']['drain_seconds']:.1f} s after the round): "
        f"{results['create_in_all']['per_s']:.0f} created/s in all",
        "  the server's CPU per call (its workers and background worker, median of the rounds): "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in results["server_cpu_ms_per_call"].items()),
        f"  key check in one process: services.check median {k['check_median_us']:.0f} µs (p90 "
        f"{k['check_p90_us']:.0f}); with parsing and the company lookup {k['whole_median_us']:.0f} µs "
        f"(p90 {k['whole_p90_us']:.0f}), over {k['calls']} calls",
        "  a whole call in one process (test client, no TLS), median: "
        + ", ".join(
            f"{name} {c['wall_ms']:.1f} ms wall / {c['cpu_ms']:.1f} ms CPU" for name, c in k["in_process"].items()
        ),
    ]


if __name__ == "__main__":
    harness.run_alone(measure, table_rows, describe)
