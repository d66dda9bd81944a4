"""Reference-check workflow figures for `make bench` (vouch.references, issue #5).

One live `vouch serve` (granian, TLS, --workers processes, the embedded SQLite default
unless --services), a company owner signed in through the login form (as
bench/run.py's dashboard row), then:

1. The referee's questionnaire. REFEREES referees are nominated through the workflow
   itself (``request_flows.create_request`` and ``candidate_flows.nominate``, in a Django process
   against the server's data; the private links are read from the emails Vouch
   sent), and each confirms their details (``referee_flows.confirm_referee``) so their
   link opens on the questions, and has saved a first answer (the first save of a
   reference also writes its timeline line and the request's status, once; what is
   measured is the saving that goes on while a referee types). A CSRF cookie and form token are taken from one
   questionnaire page, as a browser would, and each referee's browser keeps
   its own link-device cookie (see ``lua_script``). wrk then rotates through every referee's
   link (a Lua script, each thread starting at a different referee):
   - GET r/<token>/answers/ (the questionnaire page), and
   - POST r/<token>/answers/ with ``X-Vouch-Autosave: 1`` (progress saved as the
     referee types: a few answers, the form's CSRF token, Origin and Referer).
   /livez (a constant view) is the baseline, measured interleaved in the same
   rounds. Every request must succeed: the server's log is counted per route, wrk's
   non-2xx/socket errors must be zero, and afterwards every referee's saved answers
   are read back.
2. The dashboard (/requests/) with DASHBOARD_REQUESTS requests in the company: the
   candidates and requests written with ``bulk_create`` (which runs the vault fields'
   ``pre_save``: every personal field is encrypted, the blind indexes computed, and the
   name search rows written by the app's own ``name_index.index_names``) in one
   transaction, their creation
   times spread over a year and their statuses, progress and flags varied; the
   seeding time is reported. On PostgreSQL the tables are then vacuumed, as autovacuum
   does within minutes of such a load. Measured like the main dashboard row.
3. The PDF of a completed report with 5 referees (``report_pdf.generate_pdf``): one
   request, five referees nominated, confirmed and submitted through the workflow,
   then the PDF generated PDF_ROUNDS times (after one warm-up); median and p90.

Run alone: .venv/bin/python bench/run.py --only workflow   (quick: --duration 3s --rounds 1)
Some parts only: VOUCH_BENCH_WORKFLOW_PARTS=questionnaire,dashboard,pdf (any of them).
"""

from __future__ import annotations

import json
import os
import secrets
import textwrap
import time
import uuid
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import harness
from harness import RouteLog, helpers, load_text, say, verdict_of

TARGET_P99_MS = 50.0  # questionnaire page and answer submission
TARGET_SUBMIT_RPS = 500.0
TARGET_DASHBOARD_P99_MS = 100.0
REFEREES = 400
DASHBOARD_REQUESTS = 10_000
PDF_ROUNDS = 7
COST_REQUESTS = 200
AUTOSAVE_HEADER = "X-Vouch-Autosave"
PARTS = ("questionnaire", "dashboard", "pdf")

# What a referee has typed so far: valid answers to the built-in "general professional"
# questionnaire, some of them (an autosave carries whatever is filled in).
PARTIAL_ANSWERS = {
    "q-relationship": "I managed them",
    "q-dates": "2021 to 2024, as senior analyst in the finance team.",
    "q-reliability": "4",
    "q-quality": "5",
    "q-strengths": "Careful with numbers, explains them plainly to people who are not.",
}

# Runs in a Django process with the server's environment (its data).
SCRIPT = textwrap.dedent(
    """
    import json, re, statistics, sys, time
    from datetime import timedelta
    import django
    django.setup()
    from django.conf import settings
    from django.core import mail
    from django.db import connections, router, transaction
    from django.utils import timezone
    from vouch.accounts.models import User
    from vouch.references.questionnaires import services as questionnaires
    from vouch.references.candidates import flows as candidate_flows
    from vouch.references.referees import flows as referee_flows
    from vouch.references.requests import flows as request_flows
    from vouch.references.models import Candidate
    from vouch.references.request_models import (
        NamePrefix, Reference, ReferenceRequest, RequestStatus, SearchTerm,
    )
    from vouch.core.context import company_context
    from vouch.tenancy.models import Company
    from vouch.vault.fields import blind_index
    from vouch.references.candidates.name_index import index_names

    # The links are read from the emails, as a referee would; kept in memory here.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    LINK = re.compile(r"https?://[^\\s\\"<>]+/(c|r)/([A-Za-z0-9_-]{20,128})/")
    QUESTIONNAIRE = "builtin:general-professional"
    FIRST = ["Alice", "Bashir", "Chen", "Dagny", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Joanna"]
    LAST = ["Smith", "Okafor", "Nguyen", "Larsen", "Kowalski", "Haddad", "Moreau", "Tanaka", "Silva", "Brown"]
    ROLES = ["Head of Finance", "Data Analyst", "Site Manager", "Nurse Practitioner", "Account Director"]

    def say(text):
        print(text, file=sys.stderr, flush=True)

    def token_for(address, kind):
        found = [t for m in mail.outbox if address in m.to for k, t in LINK.findall(m.body) if k == kind]
        assert found, f"no {kind} link mailed to {address}"
        return found[-1]

    def person(i):
        first, last = FIRST[i % 10], LAST[(i // 10) % 10]
        return first, last

    def referee_values(i, tag):
        first, last = person(i + 3)
        return {
            "name": f"{first} {last} Referee {i}",
            "email": f"referee-{tag}-{i}@acme-widgets.example",
            "phone": f"+44 7700 8{i:05d}",
            "relationship": "manager" if i % 2 else "peer",
            "organisation": "Acme Widgets",
            "worked_from": "2021-01",
            "worked_to": "2024-06",
        }

    def confirm(reference):
        referee_flows.confirm_referee(
            reference, job_title="Finance Director", organisation="Acme Widgets",
            candidate_title="Senior Analyst", candidate_from="2021-01", candidate_to="2024-06",
        )

    def referees(company_id, email, count, per_request, tag):
        # ``count`` referees, ``per_request`` to a request, each confirmed: their
        # link opens on the questionnaire.
        company, owner = Company.objects.get(pk=company_id), User.objects.get(email=email)
        started, tokens = time.perf_counter(), []
        with company_context(company):
            for r in range(0, count, per_request):
                first, last = person(r)
                request = request_flows.create_request(
                    actor=owner, name=f"{first} {last} {r}", email=f"candidate-{tag}-{r}@example.org",
                    role=ROLES[r % len(ROLES)], questionnaire=QUESTIONNAIRE,
                    deadline=timezone.now() + timedelta(days=30), referees_required=per_request,
                )
                for i in range(r, min(count, r + per_request)):
                    values = referee_values(i, tag)
                    reference = candidate_flows.nominate(request, **values)
                    confirm(reference)
                    # The referee has started: the measured autosaves are the saves that follow
                    # (the first one also writes the timeline and the request's status).
                    referee_flows.save_answers(reference, {"relationship": "I managed them"})
                    tokens.append(token_for(values["email"], "r"))
                if len(tokens) % 100 == 0:
                    say(f"  {len(tokens)}/{count} referees nominated and confirmed")
        print(json.dumps({"tokens": tokens, "seconds": time.perf_counter() - started}))

    def saved(company_id, tag):
        # How many of the bench referees have progress saved, with the answers the bench sent.
        with company_context(Company.objects.get(pk=company_id)):
            refs = Reference.objects.filter(email_index__in=[
                blind_index("email", f"referee-{tag}-{i}@acme-widgets.example") for i in range(int(sys.argv[4]))
            ])
            answers = [r.answers or {} for r in refs]
        print(json.dumps({
            "referees": len(answers),
            "with_answers": sum(1 for a in answers if a.get("reliability") == 4 and a.get("strengths")),
        }))

    def requests(company_id, email, count):
        # ``count`` requests (each with its own candidate) in one transaction; the vault
        # fields encrypt in bulk_create's pre_save, the name search terms as the
        # workflow computes them.
        company, owner = Company.objects.get(pk=company_id), User.objects.get(email=email)
        statuses = [RequestStatus.AWAITING_CANDIDATE, RequestStatus.AWAITING_REFEREES, RequestStatus.IN_PROGRESS,
                    RequestStatus.COMPLETED, RequestStatus.IN_PROGRESS, RequestStatus.EXPIRED,
                    RequestStatus.CANCELLED, RequestStatus.AWAITING_REFEREES]
        started = time.perf_counter()
        with company_context(company):
            version = questionnaires.version_for_request(QUESTIONNAIRE, actor=owner)
            now, batch, made = timezone.now(), 1000, []
            with transaction.atomic(using=router.db_for_write(ReferenceRequest)):
                for first_index in range(0, count, batch):
                    indexes = range(first_index, min(count, first_index + batch))
                    candidates = []
                    for i in indexes:
                        first, last = person(i)
                        candidates.append(Candidate(
                            name=f"{first} {last} {i:05d}", email=f"{first.lower()}.{last.lower()}.{i}@example.org",
                            phone=f"+44 7700 9{i:05d}", created_by_id=owner.pk,
                        ))
                    Candidate.objects.bulk_create(candidates)
                    # The app's own writer of the name search rows (whole words and starts).
                    index_names(candidates)
                    rows = []
                    for i, c in zip(indexes, candidates):
                        status = statuses[i % len(statuses)]
                        closed = status in (RequestStatus.COMPLETED, RequestStatus.EXPIRED, RequestStatus.CANCELLED)
                        flags = (i % 7 == 0) + (i % 11 == 0)
                        rows.append(ReferenceRequest(
                            created_by_id=owner.pk, candidate=c, role=ROLES[i % len(ROLES)],
                            questionnaire_version=version, referees_required=2 + i % 2,
                            guidance="A manager from the last two years", deadline=now + timedelta(days=14),
                            status=status, closed_at=now if closed else None,
                            references_completed=2 if status == RequestStatus.COMPLETED else (i % 2),
                            open_flags=flags, flag_count=flags + (i % 13 == 0), last_activity_at=now,
                        ))
                    ReferenceRequest.objects.bulk_create(rows)
                    made += rows
                # auto_now_add stamped them all now: spread them over a year, newest first.
                # The closed ones closed days after they were made, as requests do.
                for i, row in enumerate(made):
                    row.created_at = now - timedelta(seconds=i * 3150)
                    if row.closed_at:
                        row.closed_at = min(now, row.created_at + timedelta(days=3, seconds=i % 86400))
                ReferenceRequest.objects.bulk_update(made, ["created_at", "closed_at"], batch_size=batch)
            # Ten thousand rows written at once, then each rewritten: PostgreSQL's autovacuum
            # tidies such a table within a minute or two (its insert and update thresholds),
            # but not before the first measured round. A company whose requests accrued over
            # months has a vacuumed table: vacuum it now, as autovacuum would, so the page is
            # measured in that steady state (counting a just-loaded table is about 4x slower).
            connection = connections[router.db_for_write(ReferenceRequest)]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    for model in (ReferenceRequest, Candidate, SearchTerm, NamePrefix):
                        cursor.execute(f'VACUUM ANALYZE "{model._meta.db_table}"')
            total = ReferenceRequest.objects.count()
            sealed = ReferenceRequest.objects.values_list("role", flat=True).first()
        print(json.dumps({
            "made": len(made), "requests_in_company": total, "seconds": time.perf_counter() - started,
            "role_sealed": type(sealed).__name__ == "Sealed",
        }))

    def pdf(company_id, email, rounds, tag):
        # A request completed by five referees, then its PDF generated ``rounds`` times.
        try:
            from vouch.references.reports import pdf as report_pdf
        except ImportError:
            print(json.dumps({"skipped": "vouch.references.reports.pdf is not there yet"}))
            return
        company, owner = Company.objects.get(pk=company_id), User.objects.get(email=email)
        with company_context(company):
            request = request_flows.create_request(
                actor=owner, name="Casey Candidate", email=f"casey-{tag}@example.org", role="Head of Finance",
                questionnaire=QUESTIONNAIRE, deadline=timezone.now() + timedelta(days=30), referees_required=5,
            )
            for i in range(5):
                reference = candidate_flows.nominate(request, **referee_values(10_000 + i, tag))
                confirm(reference)
                errors = referee_flows.submit_answers(reference, {
                    "relationship": "I managed them" if i % 2 else "Peer or colleague",
                    "dates": f"From 2019 to 2024, referee {i + 1} worked with Casey in the finance team.",
                    "reliability": 3 + i % 3, "quality": 5 - i % 2,
                    "strengths": f"Referee {i + 1}: careful, plain-spoken, good with numbers and with people. " * 3,
                    "develop": "Delegating earlier in a project.", "rehire": "yes",
                    "anything_else": "A long answer, as referees write them. " * 12,
                })
                assert not errors, errors
            request.refresh_from_db()
            assert request.status == RequestStatus.COMPLETED, request.status
            generate = report_pdf.generate_pdf
            started = time.perf_counter()
            first = generate(request)
            first_ms = (time.perf_counter() - started) * 1000
            data = first if isinstance(first, bytes | bytearray) else getattr(first, "read", lambda: b"")()
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                generate(request)
                times.append((time.perf_counter() - started) * 1000)
        # What the PDF says: the candidate and a referee's answer, read back with pypdf.
        import io
        from pypdf import PdfReader
        text = " ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(bytes(data))).pages)
        text = " ".join(text.split())
        print(json.dumps({
            "has_text": "Casey Candidate" in text and "Delegating earlier in a project." in text,
            "pages": len(PdfReader(io.BytesIO(bytes(data))).pages),
            "first_ms": first_ms, "times_ms": times, "median_ms": statistics.median(times),
            "min_ms": min(times), "max_ms": max(times), "bytes": len(data) if data else None,
            "is_pdf": bool(data) and bytes(data[:5]) == b"%PDF-",
        }))

    def cost(tokens_path, count):
        # The cost of one questionnaire page and one autosave inside one process (Django's
        # test client: no TLS, no server), in wall-clock and CPU time: on a machine other
        # processes share, the CPU time per request is the steadier figure.
        from urllib.parse import urlencode
        from django.test import Client
        tokens = json.loads(open(tokens_path).read())
        client = Client(HTTP_HOST="localhost")
        body = urlencode(json.loads(sys.argv[4]))
        def get(i):
            response = client.get(f"/r/{tokens[i % len(tokens)]}/answers/", secure=True)
            assert response.status_code == 200, response.status_code
        def post(i):
            response = client.post(
                f"/r/{tokens[i % len(tokens)]}/answers/", body, content_type="application/x-www-form-urlencoded",
                secure=True, HTTP_X_VOUCH_AUTOSAVE="1",
            )
            assert 200 <= response.status_code < 300, response.status_code
        found = {}
        for name, fn in (("questionnaire", get), ("autosave", post)):
            for i in range(min(count, 30)):
                fn(i)
            wall, cpu = [], []
            for i in range(count):
                started, cpu_started = time.perf_counter(), time.process_time()
                fn(i)
                cpu.append((time.process_time() - cpu_started) * 1000)
                wall.append((time.perf_counter() - started) * 1000)
            found[name] = {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu),
                           "wall_p90_ms": statistics.quantiles(wall, n=10)[8], "requests": count}
        print(json.dumps(found))

    def cost_dashboard(email, count, path):
        # ``path`` for a signed-in owner inside one process, as ``cost`` does for the referee.
        from django.test import Client
        client = Client(HTTP_HOST="localhost")
        client.force_login(User.objects.get(email=email))
        def get():
            response = client.get(path, secure=True)
            assert response.status_code == 200, response.status_code
        for _ in range(10):
            get()
        wall, cpu = [], []
        for _ in range(count):
            started, cpu_started = time.perf_counter(), time.process_time()
            get()
            cpu.append((time.process_time() - cpu_started) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
        print(json.dumps({"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu),
                          "wall_p90_ms": statistics.quantiles(wall, n=10)[8], "requests": count}))

    mode = sys.argv[1]
    if mode == "cost_dashboard":
        cost_dashboard(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode == "cost":
        cost(sys.argv[2], int(sys.argv[3]))
    elif mode == "referees":
        referees(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    elif mode == "saved":
        saved(sys.argv[2], sys.argv[3])
    elif mode == "requests":
        requests(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "pdf":
        pdf(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    """
)


def django(env: dict[str, str], *argv: str, timeout: float = 1800) -> dict:
    """Run SCRIPT with ``env`` (progress on our stderr); its last stdout line as JSON."""
    env = {**env, "DJANGO_SETTINGS_MODULE": "vouch.settings", "VOUCH_LOG_LEVEL": "WARNING"}
    return harness.run_script(SCRIPT, argv, env, what=f"workflow bench step {argv[0]}", timeout=timeout)


# --- wrk scripts ------------------------------------------------------------------------

LUA = textwrap.dedent(
    """
    local tokens = {{{tokens}}}
    local devices = {{{devices}}}
    local threads = 0
    function setup(thread)
      thread:set("offset", threads * {spacing})
      threads = threads + 1
    end
    local requests, n = {{}}, 0
    function init(args)
      local headers = {headers}
      for i, token in ipairs(tokens) do
        local path = "/r/" .. token .. "/answers/"
        headers["Referer"] = "{origin}" .. path
        headers["Cookie"] = {cookie} .. "; __Host-vouch_link_device=" .. devices[i]
        requests[i] = wrk.format("{method}", path, headers, {body})
      end
      n = offset
    end
    function request()
      n = n + 1
      return requests[(n % #requests) + 1]
    end
    """
)


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here (ASCII)


def lua_script(tokens: list[str], *, origin: str, threads: int, method: str, cookie: str, body: str = "") -> str:
    """Each referee's requests come from their own browser, which keeps its cookies: the
    CSRF cookie and the link-device cookie Vouch sets (one per referee, made here in the
    form Vouch makes it). Without the device cookie every save in a new minute would look
    like a new device and run the fraud checks, which a browser never causes."""
    headers: dict[str, str] = {}
    if method == "POST":
        headers |= {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": origin,
            AUTOSAVE_HEADER: "1",
        }
    table = "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()) + "}"
    return LUA.format(
        tokens=", ".join(_lua_string(t) for t in tokens),
        devices=", ".join(_lua_string(secrets.token_urlsafe(16)) for _ in tokens),
        cookie=_lua_string(cookie),
        spacing=len(tokens) // max(1, threads),
        headers=table,
        origin=origin,
        method=method,
        body=_lua_string(body) if body else "nil",
    )


# --- the parts ----------------------------------------------------------------------------


def _route_of(server, path_prefix: str) -> str | None:
    """The route the server logged for the newest request whose path starts so (the
    log names the URL pattern, e.g. "r/<str:token>/answers/")."""
    for entry in harness.request_entries(reversed(server.log().splitlines())):
        if str(entry.get("path", "")).startswith(path_prefix):
            return entry.get("route")
    return None


def questionnaire_setup(args, server, company_id: str, email: str, tag: str) -> dict:
    say(f"nominating and confirming {REFEREES} referees through the workflow ({load_text()})")
    seeded = django(server.env, "referees", company_id, email, str(REFEREES), "2", tag)
    tokens = seeded["tokens"]
    if len(set(tokens)) != REFEREES:
        raise RuntimeError(f"expected {REFEREES} distinct referee links, got {len(set(tokens))}")
    # One questionnaire page, as a browser loads it: the CSRF cookie and the form's token.
    path = f"/r/{tokens[0]}/answers/"
    page = helpers.request(server, "GET", path)
    if page.status != 200:
        raise RuntimeError(f"GET {path} gave {page.status}: {page.text[:800]}")
    cookies = page.cookies()
    csrf_cookie = cookies.get("__Host-csrftoken")
    match = helpers._CSRF_INPUT.search(page.text)
    if csrf_cookie is None or match is None:
        raise RuntimeError("the questionnaire page set no CSRF cookie or has no form token")
    form_token = unescape(match.group(1))
    for question in ("q-reliability", "q-strengths"):
        if f'name="{question}"' not in page.text:
            raise RuntimeError(f"the questionnaire page has no {question} field")
    cookie = f"__Host-csrftoken={csrf_cookie.value}"
    # Other cookies the page set (a device cookie) go along, as a browser would send them.
    for name, value in cookies.items():
        if name != "__Host-csrftoken" and value.value:
            cookie += f"; {name}={value.value}"
    body = urlencode({"csrfmiddlewaretoken": form_token, **PARTIAL_ANSWERS})
    saved = helpers.request(
        server,
        "POST",
        path,
        body=body.encode(),
        headers={
            "Cookie": cookie,
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": server.url,
            "Referer": f"{server.url}{path}",
            AUTOSAVE_HEADER: "1",
        },
    )
    if not 200 <= saved.status < 300:
        raise RuntimeError(f"an autosave POST gave {saved.status}: {saved.text[:800]}")
    route = _route_of(server, path) or "r/<str:token>/answers/"
    directory = Path(server.data_dir)
    scripts = {}
    for method in ("GET", "POST"):
        script = directory / f"referees-{method.lower()}.lua"
        script.write_text(
            lua_script(
                tokens,
                origin=server.url,
                threads=args.threads,
                method=method,
                cookie=cookie,
                body=body if method == "POST" else "",
            )
        )
        scripts[method] = str(script)
    return {
        "tokens": tokens,
        "seed_seconds": seeded["seconds"],
        "route": route,
        "scripts": scripts,
        "autosave_status": saved.status,
        "page_bytes": len(page.body),
    }


def measure_questionnaire(args, server, setup: dict) -> dict:
    url = f"{server.url}/r/{setup['tokens'][0]}/answers/"
    targets = {
        "livez": (f"{server.url}/livez", None, ("livez", "GET"), {200}),
        "questionnaire": (url, setup["scripts"]["GET"], (setup["route"], "GET"), {200}),
        "autosave": (url, setup["scripts"]["POST"], (setup["route"], "POST"), {setup["autosave_status"]}),
    }
    for name, (target, script, _, _) in targets.items():
        say(f"warm-up {name} ({args.warmup:g}s), {load_text()}")
        harness.run_wrk(target, args, args.warmup, script=script)
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    for round_number in range(1, args.rounds + 1):
        for name, (target, script, route, expected) in targets.items():
            cursor = RouteLog(server.log_path)
            measured = harness.run_wrk(target, args, args.duration, script=script)
            statuses = cursor.statuses(*route)
            harness.check_statuses(name, statuses, measured, expected, complete=True)
            measured["round"], measured["statuses"] = round_number, statuses
            runs[name].append(measured)
            say(
                f"round {round_number} {name:<13} {measured['requests_per_s']:9.1f} req/s  "
                f"p50 {measured['p50_ms']:7.2f} ms  p99 {measured['p99_ms']:7.2f} ms  ({load_text()})"
            )
    return {name: {"median": harness.median_of(found), "runs": found} for name, found in runs.items()}


def measure_dashboard(args, server, cookie: str, company_id: str, email: str) -> dict:
    say(f"seeding {DASHBOARD_REQUESTS} requests in one company ({load_text()})")
    seeded = django(server.env, "requests", company_id, email, str(DASHBOARD_REQUESTS))
    if seeded["requests_in_company"] < DASHBOARD_REQUESTS or not seeded["role_sealed"]:
        raise RuntimeError(f"seeding the dashboard went wrong: {seeded}")
    say(f"  {seeded['made']} requests in {seeded['seconds']:.1f}s")
    page = helpers.request(server, "GET", "/requests/", cookies={"__Host-vouch_session": cookie.split("=", 1)[1]})
    if page.status != 200:
        raise RuntimeError(f"/requests/ gave {page.status}: {page.text[:500]}")
    if "Alice Smith" not in page.text and "Smith" not in page.text:
        raise RuntimeError("the dashboard does not show the seeded candidates")
    say(f"dashboard: warm-up ({args.warmup:g}s), {load_text()}")
    runs = _signed_in_rounds(args, server, "/requests/", cookie, "dashboard 10k")
    say(f"in-process cost of /requests/ ({COST_REQUESTS // 2} requests), {load_text()}")
    in_process = django(server.env, "cost_dashboard", email, str(COST_REQUESTS // 2), "/requests/")
    return {
        "seeding": seeded,
        "page_bytes": len(page.body),
        "median": harness.median_of(runs),
        "runs": runs,
        "in_process": in_process,
        "desk": measure_desk(args, server, cookie, email),
    }


def measure_desk(args, server, cookie: str, email: str) -> dict:
    """The recruiter's home (/dashboard/: counts by status, what needs action, recent
    activity, turnaround) of the same company of 10,000 requests, for its owner (the
    company view). Its turnaround figures are cached for minutes, as between visits."""
    session = {"__Host-vouch_session": cookie.split("=", 1)[1]}
    page = helpers.request(server, "GET", "/dashboard/", cookies=session)
    if page.status != 200 or "needs your action" not in page.text.lower():
        raise RuntimeError(f"/dashboard/ gave {page.status} without its action list: {page.text[:300]}")
    runs = _signed_in_rounds(args, server, "/dashboard/", cookie, "desk 10k")
    say(f"in-process cost of /dashboard/ ({COST_REQUESTS // 2} requests), {load_text()}")
    in_process = django(server.env, "cost_dashboard", email, str(COST_REQUESTS // 2), "/dashboard/")
    return {"page_bytes": len(page.body), "median": harness.median_of(runs), "runs": runs, "in_process": in_process}


def _signed_in_rounds(args, server, path: str, cookie: str, label: str) -> list[dict]:
    """A warm-up, then ``args.rounds`` wrk runs of a signed-in GET of ``path``, every answer
    checked to be a 200 in the server's log."""
    route = _route_of(server, path) or path.strip("/") + "/"
    url = f"{server.url}{path}"
    harness.run_wrk(url, args, args.warmup, cookie)
    runs = []
    for round_number in range(1, args.rounds + 1):
        cursor = RouteLog(server.log_path)
        measured = harness.run_wrk(url, args, args.duration, cookie)
        harness.check_statuses(label, cursor.statuses(route, "GET"), measured, {200}, complete=True)
        measured["round"] = round_number
        runs.append(measured)
        say(
            f"round {round_number} {path} {DASHBOARD_REQUESTS} {measured['requests_per_s']:9.1f} req/s  "
            f"p50 {measured['p50_ms']:7.2f} ms  p99 {measured['p99_ms']:7.2f} ms  ({load_text()})"
        )
    return runs


def measure(args) -> dict:
    """Every figure (the server, wrk and log helpers from bench/harness.py)."""
    results: dict = {"cpus": os.cpu_count(), "load_start": os.getloadavg(), "seconds": {}}
    extra_env = dict(item.split("=", 1) for item in args.env)  # --env KEY=VALUE: server settings to try
    results["server_env"] = extra_env
    with harness.serving(harness.make_server(extra_env=extra_env, workers=args.workers)) as server:
        server.start()
        tag = uuid.uuid4().hex[:8]
        email, company = f"bench-workflow-{tag}@example.com", f"Workflow Bench {tag}"
        member = helpers.create_member(server, email, company)
        session = helpers.session_cookie(server, email)
        cookie = f"__Host-vouch_session={session}"
        company_id = member["company_id"]

        parts = [p for p in os.environ.get("VOUCH_BENCH_WORKFLOW_PARTS", ",".join(PARTS)).split(",") if p in PARTS]
        started = time.perf_counter()
        try:
            if "questionnaire" not in parts:
                raise LookupError
            setup = questionnaire_setup(args, server, company_id, email, tag)
        except RuntimeError as exc:
            if "gave 404" not in str(exc):
                raise
            results["questionnaire"] = {"skipped": "the referee's questionnaire page is not there yet (404)"}
        except LookupError:
            pass
        else:
            results["questionnaire"] = measure_questionnaire(args, server, setup)
            results["questionnaire"] |= {
                "referees": len(setup["tokens"]),
                "seed_seconds": setup["seed_seconds"],
                "page_bytes": setup["page_bytes"],
                "autosave_status": setup["autosave_status"],
                "saved": django(server.env, "saved", company_id, tag, str(REFEREES)),
            }
            tokens_file = Path(server.data_dir) / "referee-tokens.json"
            tokens_file.write_text(json.dumps(setup["tokens"]))
            say(f"in-process cost per request ({COST_REQUESTS} each), {load_text()}")
            results["questionnaire"]["in_process"] = django(
                server.env, "cost", str(tokens_file), str(COST_REQUESTS), json.dumps(PARTIAL_ANSWERS)
            )
            # wrk walks the referees in order from each thread's starting point: every one it
            # reached must have the answers it sent (all of them, once it went round).
            posted = max(run["requests"] for run in results["questionnaire"]["autosave"]["runs"])
            reached = min(REFEREES, posted // max(1, args.threads))
            saved = results["questionnaire"]["saved"]
            if saved["with_answers"] < reached:
                raise RuntimeError(
                    f"progress missing: {saved}, {posted} autosaves in one run should have reached {reached}"
                )
        results["seconds"]["questionnaire"] = time.perf_counter() - started

        started = time.perf_counter()
        probe = helpers.request(server, "GET", "/requests/", cookies={"__Host-vouch_session": session})
        if probe.status == 404:
            results["dashboard"] = {"skipped": "the /requests/ page is not there yet"}
        elif "dashboard" in parts:
            results["dashboard"] = measure_dashboard(args, server, cookie, company_id, email)
        results["seconds"]["dashboard"] = time.perf_counter() - started

        started = time.perf_counter()
        if "pdf" in parts:
            say(f"PDF of a 5-referee report, {PDF_ROUNDS} runs ({load_text()})")
            results["pdf"] = django(server.env, "pdf", company_id, email, str(PDF_ROUNDS), tag)
            pdf = results["pdf"]
            if "median_ms" in pdf and not (pdf["is_pdf"] and pdf["has_text"]):
                raise RuntimeError(f"the report PDF is not a PDF showing the candidate and the answers: {pdf}")
        results["seconds"]["pdf"] = time.perf_counter() - started
    results["load_end"] = os.getloadavg()
    results["targets"] = _targets(results)
    return results


def _targets(results: dict) -> dict:
    met: dict[str, bool] = {}
    q = results.get("questionnaire", {})
    if "questionnaire" in q:
        met["questionnaire_p99"] = q["questionnaire"]["median"]["p99_ms"] < TARGET_P99_MS
        met["autosave_p99"] = q["autosave"]["median"]["p99_ms"] < TARGET_P99_MS
        met["autosave_rps"] = q["autosave"]["median"]["requests_per_s"] >= TARGET_SUBMIT_RPS
    d = results.get("dashboard", {})
    if "median" in d:
        met["dashboard_10k_p99"] = d["median"]["p99_ms"] < TARGET_DASHBOARD_P99_MS
    if "desk" in d:
        met["desk_10k_p99"] = d["desk"]["median"]["p99_ms"] < TARGET_DASHBOARD_P99_MS
    return {
        "p99_ms": TARGET_P99_MS,
        "submit_rps": TARGET_SUBMIT_RPS,
        "dashboard_p99_ms": TARGET_DASHBOARD_P99_MS,
        "met": met,
    }


# --- the report -----------------------------------------------------------------------------


def table_rows(results: dict) -> list[str]:
    """Rows for bench/run.py's table (name, req/s, p50, p99, ratio to livez of this run)."""
    rows = []
    q = results.get("questionnaire", {})
    if "livez" in q:
        base = q["livez"]["median"]["requests_per_s"] or 1.0
        for name, label in (
            ("livez", "livez (workflow run)"),
            ("questionnaire", "referee page GET"),
            ("autosave", "referee autosave POST"),
        ):
            m = q[name]["median"]
            rows.append(harness.server_row(label, m, m["requests_per_s"] / base))
    elif q:
        rows.append(f"referee pages: {q.get('skipped')}")
    d = results.get("dashboard", {})
    if "median" in d:
        m = d["median"]
        ratio = m["requests_per_s"] / (q["livez"]["median"]["requests_per_s"] or 1.0) if "livez" in q else ""
        rows.append(harness.server_row(f"requests/ {DASHBOARD_REQUESTS // 1000}k", m, ratio))
        if "desk" in d:
            m = d["desk"]["median"]
            ratio = m["requests_per_s"] / (q["livez"]["median"]["requests_per_s"] or 1.0) if "livez" in q else ""
            rows.append(harness.server_row(f"dashboard/ {DASHBOARD_REQUESTS // 1000}k", m, ratio))
    elif d:
        rows.append(f"dashboard 10k: {d.get('skipped')}")
    return rows


def describe(results: dict) -> list[str]:
    met = results["targets"]["met"]
    lines = [
        f"reference workflow ({results['cpus']} CPUs; load average at start "
        f"{harness.loads(results['load_start'], '.2f')}, at end "
        f"{harness.loads(results['load_end'], '.2f')}: wrk and other processes share this machine)"
    ]
    q = results.get("questionnaire", {})
    if "questionnaire" in q:
        lines.append(
            f"  referee questionnaire, {q['referees']} referees' links rotated ({q['seed_seconds']:.1f}s to nominate "
            f"and confirm them through the workflow), page {q['page_bytes']} bytes: GET p99 "
            f"{q['questionnaire']['median']['p99_ms']:.1f} ms (target < {TARGET_P99_MS:g}: "
            f"{verdict_of(met, 'questionnaire_p99')}); autosave POST (status {q['autosave_status']}) "
            f"{q['autosave']['median']['requests_per_s']:.0f}/s (target >= {TARGET_SUBMIT_RPS:g}: "
            f"{verdict_of(met, 'autosave_rps')}), p99 {q['autosave']['median']['p99_ms']:.1f} ms "
            f"({verdict_of(met, 'autosave_p99')}); referees whose saved answers were read back: "
            f"{q['saved']['with_answers']} of {q['saved']['referees']}"
        )
        cost = q.get("in_process")
        if cost:
            lines.append(
                "  in one process (test client, no TLS), median per request: questionnaire page "
                f"{cost['questionnaire']['wall_ms']:.1f} ms wall / {cost['questionnaire']['cpu_ms']:.1f} ms CPU, "
                f"autosave {cost['autosave']['wall_ms']:.1f} ms wall / {cost['autosave']['cpu_ms']:.1f} ms CPU "
                f"(2 cores at that CPU cost: at most {2000 / cost['autosave']['cpu_ms']:.0f} autosaves/s)"
            )
    elif q:
        lines.append(f"  referee questionnaire: {q.get('skipped')}")
    d = results.get("dashboard", {})
    if "median" in d:
        s = d["seeding"]
        lines.append(
            f"  dashboard /requests/ with {s['requests_in_company']} requests in one company (seeded in "
            f"{s['seconds']:.1f}s, encrypted, one transaction): p50 {d['median']['p50_ms']:.1f} ms, p99 "
            f"{d['median']['p99_ms']:.1f} ms (target < {TARGET_DASHBOARD_P99_MS:g}: "
            f"{verdict_of(met, 'dashboard_10k_p99')}), {d['median']['requests_per_s']:.0f} req/s"
        )
        if d.get("in_process"):
            lines.append(
                f"  in one process, median per /requests/ page: {d['in_process']['wall_ms']:.1f} ms wall / "
                f"{d['in_process']['cpu_ms']:.1f} ms CPU"
            )
        if "desk" in d:
            m = d["desk"]["median"]
            lines.append(
                f"  the recruiter's home /dashboard/ (counts, needs your action, activity, turnaround) of the same "
                f"company: p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms (target < {TARGET_DASHBOARD_P99_MS:g}: "
                f"{verdict_of(met, 'desk_10k_p99')}), {m['requests_per_s']:.0f} req/s"
            )
            if d["desk"].get("in_process"):
                cost = d["desk"]["in_process"]
                lines.append(
                    f"  in one process, median per /dashboard/ page: {cost['wall_ms']:.1f} ms wall / "
                    f"{cost['cpu_ms']:.1f} ms CPU"
                )
    elif d:
        lines.append(f"  dashboard: {d.get('skipped')}")
    p = results.get("pdf", {})
    if "median_ms" in p:
        lines.append(
            f"  PDF of a completed 5-referee report (report_pdf.generate_pdf): median {p['median_ms']:.0f} ms over "
            f"{len(p['times_ms'])} runs (min {p['min_ms']:.0f}, max {p['max_ms']:.0f}; first {p['first_ms']:.0f} ms), "
            f"{p['bytes']} bytes, {p['pages']} pages"
        )
    elif p:
        lines.append(f"  PDF: {p.get('skipped')}")
    lines.append("  time: " + ", ".join(f"{k} {v:.0f}s" for k, v in results["seconds"].items()))
    return lines


if __name__ == "__main__":
    harness.run_alone(measure, table_rows, describe)
