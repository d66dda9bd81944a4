"""Search as recruiters type, for `make bench` (section "search").

One live `vouch serve` (granian, TLS, --workers processes, the embedded SQLite default
unless --services), a company owner signed in through the login form, SEEDED candidates
in the company written as the app writes them: ``Candidate`` rows through
``bulk_create`` (every personal field encrypted in ``pre_save``) and their search rows
through ``name_index.index_names`` (whole words and the keyed prefix index), in one
transaction. About one name in seven has a word starting "Mar" (Maria, Marek, Marsh).

Then, interleaved in the same rounds, with wrk:
- /livez (a constant view) and the unfiltered /candidates/ (the first 50 of the
  10,000, decrypted): the baselines of this run;
- the Candidates search as htmx asks for it while a recruiter types (the results
  fragment, ``HX-Request``/``HX-Target`` headers), wrk rotating through what is typed
  on the way to a name: "mar", "mari", "maria", "maria smi", "kow", ... (a Lua script);
  once with one connection (one recruiter typing: the time of a search alone) and
  once with four.

The search runs at most ``search`` admission slots at once per company (P3: 4 with the
default VOUCH_COMPANY_AT_ONCE=2), and one more is a 429; so the other runs here use
that many connections too (four recruiters typing at once in one company), and every
answer must be a 200 in the server's log. Before measuring, the fragment for "mar" must list
the number of candidates the seeding counted. Last, the same pages inside one Django
process (no TLS, no wrk beside it): wall and CPU time per request, the steadier figure
on a machine others share.

Run alone: .venv/bin/python bench/search.py   (quick: --duration 3s --rounds 1)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import textwrap
import uuid
from pathlib import Path

import harness
from harness import RouteLog, helpers, load_text, say, verdict_of

TARGET_P99_MS = 50.0
CANDIDATES = 10_000
# What recruiters type on their way to a name, one key at a time from the third.
TYPED = ("mar", "mari", "maria", "maria smi", "mare", "marek", "kow", "kowa", "nov", "tak", "gar", "okaf")
# Four recruiters typing at once: the company's search slots (admission.KINDS, P3).
SEARCH_CONNECTIONS = 4
COST_REQUESTS = 40
RESULTS_TARGET = "candidate-results"

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import django
    django.setup()
    from django.db import connections, router, transaction
    from vouch.accounts.models import User
    from vouch.core.context import company_context
    from vouch.references.candidates.name_index import index_names
    from vouch.references.models import Candidate
    from vouch.references.request_models import NamePrefix, SearchTerm
    from vouch.tenancy.models import Company
    from vouch.vault.normalise import name_words

    FIRST = ["Alice", "Bashir", "Chen", "Dagny", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Joanna",
             "Maria", "Marek", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tomasz", "Yuki"]
    LAST = ["Smith", "Okafor", "Nguyen", "Larsen", "Kowalski", "Haddad", "Moreau", "Tanaka", "Silva", "Brown",
            "Marsh", "Novak", "Patel", "Ramos", "Schmidt", "Takahashi", "Dubois", "Müller", "Öztürk", "García"]

    def seed(company_id, email, count):
        company, owner = Company.objects.get(pk=company_id), User.objects.get(email=email)
        started, batch, mar = time.perf_counter(), 1000, 0
        with company_context(company):
            with transaction.atomic(using=router.db_for_write(Candidate)):
                for first_index in range(0, count, batch):
                    candidates = []
                    for i in range(first_index, min(count, first_index + batch)):
                        name = f"{FIRST[i % 20]} {LAST[(i // 20) % 20]}"
                        mar += any(word.startswith("mar") for word in name_words(name, query=True))
                        candidates.append(Candidate(
                            name=name, email=f"candidate-{i}@example.org", phone=f"+44 7700 9{i:05d}",
                            created_by_id=owner.pk,
                        ))
                    Candidate.objects.bulk_create(candidates)
                    index_names(candidates)
            connection = connections[router.db_for_write(Candidate)]
            if connection.vendor == "postgresql":  # as autovacuum would within minutes of such a load
                with connection.cursor() as cursor:
                    for model in (Candidate, SearchTerm, NamePrefix):
                        cursor.execute(f'VACUUM ANALYZE "{model._meta.db_table}"')
            print(json.dumps({
                "candidates": Candidate.objects.count(), "prefix_rows": NamePrefix.objects.count(),
                "term_rows": SearchTerm.objects.count(), "mar": mar, "seconds": time.perf_counter() - started,
            }))

    def cost(email, count, typed):
        # In one process (Django's test client: no TLS, no server, no wrk beside it), the
        # wall and CPU time of the unfiltered list and of the fragment for each typed query:
        # on a machine others share, CPU time per request is the steadier figure.
        import statistics
        from django.test import Client
        client = Client(HTTP_HOST="localhost")
        client.force_login(User.objects.get(email=email))
        htmx = {"HX-Request": "true", "HX-Target": "candidate-results"}
        def measure(query, headers):
            def get():
                response = client.get("/candidates/", {"q": query} if query else {}, secure=True, headers=headers)
                assert response.status_code == 200, response.status_code
            for _ in range(5):
                get()
            wall, cpu = [], []
            for _ in range(count):
                started, cpu_started = time.perf_counter(), time.process_time()
                get()
                cpu.append((time.process_time() - cpu_started) * 1000)
                wall.append((time.perf_counter() - started) * 1000)
            return {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}
        found = {"list": measure("", {})}
        per_query = {query: measure(query, htmx) for query in typed}
        found["typed"] = per_query
        found["typed_cpu_ms"] = statistics.median(m["cpu_ms"] for m in per_query.values())
        found["typed_wall_ms"] = statistics.median(m["wall_ms"] for m in per_query.values())
        print(json.dumps(found))

    if sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        cost(sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]))
    """
)

# wrk: each request the next typed query, as a fragment for the results element.
LUA = textwrap.dedent(
    """
    local paths = {{{paths}}}
    local n = 0
    function setup(thread)
      thread:set("offset", n * 5)
      n = n + 1
    end
    function init(args)
      i = offset
      -- Beside the command line's headers (the session cookie): headers given to
      -- wrk.format would replace them.
      wrk.headers["HX-Request"] = "true"
      wrk.headers["HX-Target"] = "{target}"
    end
    function request()
      i = i + 1
      return wrk.format("GET", paths[(i % #paths) + 1])
    end
    """
)


def _lua(directory: str | Path, paths: list[str]) -> str:
    """The Lua script, in the server's own throwaway data directory."""
    script = Path(directory) / "search-typing.lua"
    script.write_text(LUA.format(paths=", ".join(f'"{p}"' for p in paths), target=RESULTS_TARGET))
    return str(script)


def measure(args: argparse.Namespace) -> dict:
    from urllib.parse import urlencode

    results: dict = {"cpus": os.cpu_count(), "load_start": os.getloadavg()}
    extra_env = dict(item.split("=", 1) for item in args.env)
    results["server_env"] = extra_env
    runs_args = argparse.Namespace(**{**vars(args), "connections": SEARCH_CONNECTIONS})
    alone_args = argparse.Namespace(**{**vars(args), "connections": 1, "threads": 1})
    with harness.serving(harness.make_server(extra_env=extra_env, workers=args.workers)) as server:
        server.start()
        tag = uuid.uuid4().hex[:8]
        email = f"bench-search-{tag}@example.com"
        member = helpers.create_member(server, email, f"Search Bench {tag}")
        session = helpers.session_cookie(server, email)
        cookie = f"__Host-vouch_session={session}"
        say(f"seeding {CANDIDATES} candidates with their search rows ({load_text()})")
        env = {**server.env, "DJANGO_SETTINGS_MODULE": "vouch.settings", "VOUCH_LOG_LEVEL": "WARNING"}
        argv = ["seed", member["company_id"], email, str(CANDIDATES)]
        seeded = harness.run_script(SCRIPT, argv, env, what="search bench seeding", timeout=1800)
        say(f"  {seeded['candidates']} candidates, {seeded['prefix_rows']} prefix rows in {seeded['seconds']:.1f}s")
        results["seeding"] = seeded
        # The answer the recruiter sees for "mar": every candidate the seeding counted.
        fragment = helpers.request(
            server,
            "GET",
            "/candidates/?q=mar",
            headers={"HX-Request": "true", "HX-Target": RESULTS_TARGET},
            cookies={"__Host-vouch_session": session},
        )
        shown = re.search(r"([\d,]+) candidates? match", fragment.text)
        if fragment.status != 200 or "<html" in fragment.text or not shown:
            raise RuntimeError(f"the search fragment is not what htmx gets: {fragment.status} {fragment.text[:300]}")
        if int(shown.group(1).replace(",", "")) != seeded["mar"] or fragment.text.count('<tr id="candidate-') != 50:
            raise RuntimeError(f"'mar' shows {shown.group(1)} candidates, the seeding made {seeded['mar']}")
        script = _lua(server.data_dir, ["/candidates/?" + urlencode({"q": typed}) for typed in TYPED])
        targets = {
            "livez": (f"{server.url}/livez", None, None, "livez", runs_args),
            "list": (f"{server.url}/candidates/", cookie, None, "candidates/", runs_args),
            "alone": (f"{server.url}/candidates/", cookie, script, "candidates/", alone_args),
            "typing": (f"{server.url}/candidates/", cookie, script, "candidates/", runs_args),
        }
        for name, (url, cookie_value, lua, _, wrk_args) in targets.items():
            say(f"warm-up {name} ({args.warmup:g}s), {load_text()}")
            harness.run_wrk(url, wrk_args, args.warmup, cookie_value, script=lua)
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        for round_number in range(1, args.rounds + 1):
            for name, (url, cookie_value, lua, route, wrk_args) in targets.items():
                cursor = RouteLog(server.log_path)
                measured = harness.run_wrk(url, wrk_args, args.duration, cookie_value, script=lua)
                statuses = cursor.statuses(route, "GET")
                harness.check_statuses(name, statuses, measured, {200}, complete=True)
                measured["round"] = round_number
                runs[name].append(measured)
                say(
                    f"round {round_number} {name:<7} {measured['requests_per_s']:9.1f} req/s  "
                    f"p50 {measured['p50_ms']:7.2f} ms  p99 {measured['p99_ms']:7.2f} ms  ({load_text()})"
                )
        say(f"in-process cost of the list and of each typed search ({COST_REQUESTS} each), {load_text()}")
        results["in_process"] = harness.run_script(
            SCRIPT, ["cost", email, str(COST_REQUESTS), json.dumps(TYPED)], env, what="search bench cost", timeout=1800
        )
    results["runs"] = runs
    results["median"] = {name: harness.median_of(found) for name, found in runs.items()}
    results["connections"] = SEARCH_CONNECTIONS
    results["load_end"] = os.getloadavg()
    results["targets"] = {
        "p99_ms": TARGET_P99_MS,
        "met": {
            "typing_alone_10k_p99": results["median"]["alone"]["p99_ms"] < TARGET_P99_MS,
            "typing_10k_p99": results["median"]["typing"]["p99_ms"] < TARGET_P99_MS,
        },
    }
    return results


def table_rows(results: dict) -> list[str]:
    """Rows for bench/run.py's table (ratio: to /livez of this run)."""
    m = results["median"]
    base = m["livez"]["requests_per_s"] or 1.0
    k = CANDIDATES // 1000
    return [
        harness.server_row("livez (search run)", m["livez"], 1.0),
        harness.server_row(f"candidates/ {k}k", m["list"], m["list"]["requests_per_s"] / base),
        harness.server_row(f"search typed, 1 conn {k}k", m["alone"], m["alone"]["requests_per_s"] / base),
        harness.server_row(f"search typed, 4 conn {k}k", m["typing"], m["typing"]["requests_per_s"] / base),
    ]


def describe(results: dict) -> list[str]:
    met, m, s, c = results["targets"]["met"], results["median"], results["seeding"], results["in_process"]
    slowest = max(c["typed"], key=lambda query: c["typed"][query]["cpu_ms"])
    return [
        f"search as recruiters type ({results['cpus']} CPUs; load average at start "
        f"{harness.loads(results['load_start'], '.2f')}, at end {harness.loads(results['load_end'], '.2f')}: "
        "wrk and other processes share this machine)",
        f"  {s['candidates']} candidates in one company ({s['prefix_rows']} prefix rows, {s['term_rows']} word rows; "
        f"seeded in {s['seconds']:.1f}s); the htmx fragment for what is typed ({', '.join(TYPED[:4])}, ...; "
        f"'mar' finds {s['mar']}):",
        f"    one recruiter typing (1 connection): p50 {m['alone']['p50_ms']:.1f} ms, "
        f"p99 {m['alone']['p99_ms']:.1f} ms (target < {TARGET_P99_MS:g}: {verdict_of(met, 'typing_alone_10k_p99')})",
        f"    four at once ({results['connections']} connections, the company's search slots): p50 "
        f"{m['typing']['p50_ms']:.1f} ms, p99 {m['typing']['p99_ms']:.1f} ms (target < {TARGET_P99_MS:g}: "
        f"{verdict_of(met, 'typing_10k_p99')})",
        f"    baselines of the same run, 4 connections: the unfiltered list p50 {m['list']['p50_ms']:.1f} ms, "
        f"p99 {m['list']['p99_ms']:.1f} ms; /livez p99 {m['livez']['p99_ms']:.1f} ms",
        f"    in one process, median per request: the unfiltered list {c['list']['wall_ms']:.1f} ms wall / "
        f"{c['list']['cpu_ms']:.1f} ms CPU; a typed search's fragment {c['typed_wall_ms']:.1f} ms wall / "
        f"{c['typed_cpu_ms']:.1f} ms CPU (median over the {len(c['typed'])} queries; slowest "
        f"'{slowest}' {c['typed'][slowest]['cpu_ms']:.1f} ms CPU)",
    ]


if __name__ == "__main__":
    harness.run_alone(measure, table_rows, describe)
