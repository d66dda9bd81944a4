"""Brute-force defence figures for `make bench` (vouch.guard.throttle).

1. The decision per login: ``throttle.before_password_check`` timed in a subprocess with
   its own throwaway data directory (migrated SQLite control database; the cache is the
   embedded database cache, or Redis with --services, as in production). The decision
   (``throttle.decide``: reads only) for a guess refused because the account is
   throttled (what a flood costs per request), an allowed guess at an unknown address
   and one at a real account; then, separately, the writes an allowed guess makes before
   its password check (``throttle.account_for``: gates, the distinct-accounts count, the
   reservation in AccountState).
2. Login requests/s with all protections on vs off, in the same run: two `vouch serve`
   instances (the second with the benchmark switch VOUCH_BENCH_PROTECTIONS_OFF=1), each
   flooded by wrk with wrong passwords for one account from 400 forwarded addresses
   (VOUCH_TRUSTED_PROXIES=127.0.0.1). With protections on, nearly every guess is refused
   before any hash; off, every guess costs an Argon2 check."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path
from urllib.parse import urlencode

import harness
from harness import helpers, verdict

DECISION_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    from django.test import RequestFactory
    from vouch.accounts.models import User
    from vouch.guard import throttle

    iterations = int(sys.argv[1])
    factory = RequestFactory()
    def request(n):
        address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        return factory.post("/accounts/login/", HTTP_HOST="localhost", REMOTE_ADDR=address)

    def timed(fn):
        started = time.perf_counter()
        fn()
        return (time.perf_counter() - started) * 1000

    user = User.objects.create_user("bench.victim@example.com", "not used here", full_name="Bench")
    real = User.objects.create_user("bench.real@example.com", "not used here", full_name="Bench")
    # Throttle the victim: five failures from five addresses.
    for n in range(5):
        attempt = throttle.before_password_check(request(n), user.email)
        throttle.password_failed(request(n), attempt)
        throttle.after_password_check(attempt)

    # The hold lasts 15 s; on a loaded machine the timed loops can outlast it. The clock
    # stands still from here (the decision reads it, the measured code is the same).
    frozen = throttle.now()
    throttle.now = lambda: frozen

    def refused(n):
        try:
            throttle.before_password_check(request(1000 + n), user.email)
        except throttle.Throttled:
            return
        raise AssertionError("expected a refusal")

    def allowed_unknown(n):
        throttle.decide(request(100000 + n), f"nobody{n}@example.org")

    def allowed_real(n):
        throttle.decide(request(200000 + n), real.email)

    def accounting(n):
        # The writes of an allowed guess before its check (gates, distinct count, reservation);
        # the clean-up after it is not timed.
        r = request(300000 + n)
        attempt = throttle.decide(r, real.email)
        started = time.perf_counter()
        throttle.account_for(r, attempt)
        spent = (time.perf_counter() - started) * 1000
        throttle.after_password_check(attempt)
        throttle.password_succeeded(r, attempt, real)
        return spent

    results = {}
    for name, fn in (("refused", refused), ("allowed_unknown", allowed_unknown), ("allowed_account", allowed_real)):
        for n in range(20):
            fn(n + iterations)  # warm-up
        times = [timed(lambda n=n: fn(n)) for n in range(iterations)]
        results[name] = {"median_ms": statistics.median(times), "p99_ms": statistics.quantiles(times, n=100)[98]}
    times = [accounting(n) for n in range(iterations)]
    results["accounting"] = {"median_ms": statistics.median(times), "p99_ms": statistics.quantiles(times, n=100)[98]}
    from django.conf import settings
    results["cache"] = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    results["iterations"] = iterations
    print(json.dumps(results))
    """
)


def measure_decision(iterations: int = 2000, services: bool = False) -> dict:
    with harness.scratch_dir("vouch-bench-bf-") as data_dir:
        env = harness.django_env(data_dir)
        if services:
            env["VOUCH_REDIS_URL"] = os.environ.get("VOUCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
            env["VOUCH_REDIS_KEY_PREFIX"] = f"vouch_bench_{uuid.uuid4().hex[:8]}"
        return harness.run_script(
            DECISION_SCRIPT, [str(iterations)], env, what="brute-force decision benchmark", timeout=900, quiet=True
        )


LUA = textwrap.dedent(
    """
    wrk.method = "POST"
    wrk.body = "{body}"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.headers["Cookie"] = "__Host-csrftoken={csrf}"
    wrk.headers["Referer"] = "{url}/accounts/login/"
    wrk.headers["Origin"] = "{url}"
    local n = 0
    request = function()
      n = n + 1
      local a = n % 400
      local b, c = math.floor(a / 200), math.floor(a / 20) % 10
      wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", b, c, a % 20 + 1)
      return wrk.format(nil, "/accounts/login/")
    end
    """
)


def _login_flood(server, args, duration: float) -> dict:
    tag = uuid.uuid4().hex[:8]
    email = f"bench-victim-{tag}@example.com"
    helpers.create_member(server, email, f"Bench Victim {tag}")
    csrf_cookie, token, _ = helpers.csrf_form(server, "/accounts/login/")
    body = urlencode({"csrfmiddlewaretoken": token, "login": email, "password": "wrong wrong wrong 123"})
    script = Path(server.data_dir) / "login_flood.lua"
    script.write_text(LUA.format(body=body, csrf=csrf_cookie, url=server.url))
    offset = server.log_path.stat().st_size
    measured = harness.run_wrk(f"{server.url}/accounts/login/", args, duration, script=str(script))
    checks = server.log()[offset:].count("bruteforce password_failed")
    measured["password_checks"] = checks
    return measured


def measure_login_rps(args) -> dict:
    """Login req/s (a wrong-password flood on one account) with protections on, then off."""
    results = {}
    for name, extra in (("on", {}), ("off", {"VOUCH_BENCH_PROTECTIONS_OFF": "1"})):
        env = {"VOUCH_TRUSTED_PROXIES": "127.0.0.1", **extra}
        with harness.serving(harness.make_server(extra_env=env, workers=args.workers)) as server:
            server.start()
            print(f"login flood, protections {name} ({args.duration:g}s)", flush=True)
            results[name] = _login_flood(server, args, args.duration)
    return results


def describe(decision: dict, logins: dict) -> list[str]:
    on, off = logins["on"], logins["off"]
    ratio = on["requests_per_s"] / off["requests_per_s"] if off["requests_per_s"] else 0.0
    met = all(decision[k]["median_ms"] < 1 for k in ("refused", "allowed_unknown", "allowed_account"))
    return [
        f"brute-force decision per login ({decision['cache']}, {decision['iterations']} each): median "
        f"{decision['refused']['median_ms']:.3f} ms refused, {decision['allowed_unknown']['median_ms']:.3f} ms "
        f"allowed (unknown address), {decision['allowed_account']['median_ms']:.3f} ms allowed (account); "
        f"target < 1 ms median: {verdict(met)}",
        f"  then, for an allowed guess only, its accounting before the hash (gates, distinct count, database "
        f"reservation): median {decision['accounting']['median_ms']:.3f} ms",
        f"login flood (wrong passwords, one account, 400 addresses): protections on {on['requests_per_s']:.1f} req/s "
        f"(p99 {on['p99_ms']:.1f} ms, {on['password_checks']} password checks), off {off['requests_per_s']:.1f} req/s "
        f"(p99 {off['p99_ms']:.1f} ms, every guess hashed): {ratio:.1f}x",
    ]
