"""A flood of token-less POSTs beside another person's sign-ins, for `make bench`
(issue 14: the security events anyone can cause are sampled).

One `vouch serve` (2 workers) on the embedded default, believing X-Forwarded-For from this
machine. 10,000 POSTs to the sign-in form without a CSRF token from one address, paced at
250 a second (each one a CSRF failure, a security event); another person signs in from
an address of their own in alternating rounds: with the flood held, then with it under
way again, so both sets of sign-ins see the same machine. Reported: the sign-in POST's
median and p99 during the flood over their values with the flood held (target: p99 at
most 2x), and the events the flood added to the chained log."""

from __future__ import annotations

import statistics
import uuid

import harness
from harness import helpers, verdict
from tests.audit.flooding import FLOOD, SERVER_ENV, flood_beside_sign_ins

TARGET_RATIO = 2.0


def _csrf_events(server) -> int:
    output = helpers.run_django(
        server,
        """
        from vouch.audit.models import SecurityEvent
        print(SecurityEvent.objects.filter(action="authz_fail", details__reason="csrf").count())
        """,
    )
    return int(output.strip().splitlines()[-1])


def measure(args) -> dict:
    with harness.serving(harness.make_server(extra_env=SERVER_ENV, workers=2)) as server:
        server.start()
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        helpers.create_member(server, email, "Bystander Co")
        before = _csrf_events(server)
        print(f"event flood: {FLOOD} token-less POSTs beside sign-ins (about a minute)", flush=True)
        run = flood_beside_sign_ins(server, email)
        added = _csrf_events(server) - before
    alone_p99, flooded_p99 = harness.percentile(run.unloaded, 99), harness.percentile(run.loaded, 99)
    ratio = flooded_p99 / alone_p99
    return {
        "flood": {"posts": run.sent, "seconds": run.elapsed, "events_added": added},
        "sign_in_alone": {
            "count": len(run.unloaded),
            "p50_ms": statistics.median(run.unloaded),
            "p99_ms": alone_p99,
        },
        "sign_in_flooded": {"count": len(run.loaded), "p50_ms": statistics.median(run.loaded), "p99_ms": flooded_p99},
        "p50_ratio": statistics.median(run.loaded) / statistics.median(run.unloaded),
        "p99_ratio": ratio,
        "targets": {"sign_in_p99_ratio_max": TARGET_RATIO, "met": {"event_flood_sign_in_p99": ratio <= TARGET_RATIO}},
    }


def describe(measured: dict) -> list[str]:
    flood, alone, flooded = measured["flood"], measured["sign_in_alone"], measured["sign_in_flooded"]
    return [
        f"event flood: {flood['posts']} token-less POSTs in {flood['seconds']:.0f} s added "
        f"{flood['events_added']} events to the chained log ({harness.load_text()})",
        f"  sign-in alone p50 {alone['p50_ms']:.0f} ms p99 {alone['p99_ms']:.0f} ms ({alone['count']}); during the "
        f"flood p50 {flooded['p50_ms']:.0f} ms p99 {flooded['p99_ms']:.0f} ms ({flooded['count']}): "
        f"p50 x{measured['p50_ratio']:.2f}, p99 x{measured['p99_ratio']:.2f}, target <= {TARGET_RATIO:g}: "
        f"{verdict(measured['targets']['met']['event_flood_sign_in_p99'])}",
    ]
