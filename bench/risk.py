"""The cost of scoring one sign-in (the risk engine of vouch.guard.risk), for `make bench`.

Runs in a subprocess with its own throwaway data directory: migrates a fresh control
database, gives an account a realistic history (30 completed sign-ins from two
countries, a known device), then times ``risk.assess`` — everything the engine does
per login: the location lookup, the history, failure and credential-stuffing queries,
the anonymising-list check and the scoring — for sign-ins from a few countries.
Recording the SignIn row and sending emails are not part of the decision and are left
out. The location database is loaded before timing (once per process in the server)."""

from __future__ import annotations

import sys
import textwrap

import harness

RISK_SCRIPT = textwrap.dedent(
    """
    import datetime, json, statistics, sys, tempfile, time
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    from django.test import RequestFactory
    from django.utils import timezone
    from vouch.accounts.models import User
    from vouch.guard import geo, risk
    from vouch.guard.models import SignIn

    listing = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    listing.write("\\n".join(f"198.51.{i // 256}.{i % 256}/32" for i in range(2000)))
    listing.close()
    from django.conf import settings
    settings.VOUCH_ANONYMISING_NETWORKS = listing.name

    user = User.objects.create_user("bench.risk@example.com", "not used in this bench", full_name="Bench")
    now = timezone.now()
    for i in range(30):
        ip = "85.214.132.117" if i % 3 else "80.67.169.12"
        where = geo.locate(ip)
        SignIn.objects.create(
            user=user, occurred_at=now - datetime.timedelta(hours=5 * i + 1), completed_at=now, ip=ip,
            country=where.country, asn=where.asn, latitude=where.latitude, longitude=where.longitude,
            device_hash="d" * 64, user_agent_family="Firefox on Windows",
        )
    factory = RequestFactory()
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
    addresses = ["85.214.132.117", "139.130.4.5", "8.8.8.8", "2a00:1450:4001:80b::200e", "193.0.6.139"]
    requests = [factory.post("/accounts/login/", REMOTE_ADDR=ip, HTTP_USER_AGENT=agent) for ip in addresses]
    for request in requests:
        risk.assess(request, user)  # warm-up: location database, query plans
    times, cpu_times, score_times, decisions = [], [], [], {}
    for i in range(int(sys.argv[1])):
        request = requests[i % len(requests)]
        started, cpu_started = time.perf_counter(), time.thread_time()
        ctx, assessment = risk.assess(request, user)
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.thread_time() - cpu_started) * 1000)
        started = time.perf_counter()
        risk.score(ctx)
        score_times.append((time.perf_counter() - started) * 1000)
        decisions[assessment.decision] = decisions.get(assessment.decision, 0) + 1
    print(json.dumps({
        "iterations": len(times),
        "median_ms": statistics.median(times),
        "p99_ms": sorted(times)[int(len(times) * 0.99) - 1],
        "cpu_median_ms": statistics.median(cpu_times),
        "score_only_median_ms": statistics.median(score_times),
        "decisions": decisions,
    }))
    """
)

TARGET_MS = 1.0


def measure_risk_scoring(iterations: int = 2000) -> dict:
    with harness.scratch_dir("vouch-bench-risk-") as data_dir:
        env = harness.django_env(data_dir)
        measured = harness.run_script(
            RISK_SCRIPT, [str(iterations)], env, what="risk scoring benchmark", timeout=900, quiet=True
        )
    measured["target_ms"] = TARGET_MS
    measured["met"] = measured["median_ms"] < TARGET_MS
    return measured


def describe(measured: dict) -> str:
    return (
        f"risk scoring per login: median {measured['median_ms']:.3f} ms over {measured['iterations']} "
        f"(p99 {measured['p99_ms']:.3f} ms; CPU {measured['cpu_median_ms']:.3f} ms; "
        f"scoring alone {measured['score_only_median_ms'] * 1000:.1f} µs); "
        f"target < {measured['target_ms']:g} ms: {harness.verdict(measured['met'])}"
    )


if __name__ == "__main__":
    print(describe(measure_risk_scoring(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
