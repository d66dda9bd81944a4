"""What intrusion detection has seen: blocks in force and the events recorded lately, for
``vouch shield report`` (and the test suite's check that honest browsing raises nothing)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import timedelta

from django.utils import timezone

from vouch.audit.events import record
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.shield import state


def summary(hours: int) -> dict:
    since = timezone.now() - timedelta(hours=hours)
    rows = SecurityEvent.objects.filter(
        occurred_at__gte=since, action__in=(EventAction.INTRUSION_DETECTED, EventAction.INTRUSION_BLOCKED)
    ).values_list("action", "details")
    detections: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    for action, details in rows:
        if action == EventAction.INTRUSION_BLOCKED:
            blocks[details.get("scope", "?")] += 1
        else:  # a sampled event stands for itself and the ones it says were not recorded
            point = details.get("point") or str(details.get("kind", "?")).removeprefix("intrusion:")
            detections[point] += 1 + int(details.get("not_recorded", 0))
    moment = state.now()
    in_force = [
        {
            "scope": b.scope,
            "source": b.source,
            "level": b.level,
            "reason": b.reason,
            "seconds_left": int(b.until - moment),
        }
        for b in state.active_blocks(moment)
    ]
    return {"hours": hours, "detections": dict(detections), "blocks": dict(blocks), "in_force": in_force}


def cli_report(args: argparse.Namespace) -> int:
    if args.hours < 1:
        print("--hours must be at least 1")
        return 2
    data = summary(args.hours)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    print(
        f"Detections in the last {args.hours} h: "
        + (", ".join(f"{k} {v}" for k, v in sorted(data["detections"].items())) or "none")
    )
    print(
        f"Blocks in the last {args.hours} h: "
        + (", ".join(f"{k} {v}" for k, v in sorted(data["blocks"].items())) or "none")
    )
    if not data["in_force"]:
        print("No source is blocked now.")
    for row in data["in_force"]:
        print(
            f"blocked: {row['scope']} {row['source']} "
            f"(level {row['level']}, {row['reason']}, {row['seconds_left']} s left)"
        )
    return 0


def cli_lift(args: argparse.Namespace) -> int:
    if not state.lift(args.scope, args.source, state.now()):
        print(f"No block on {args.scope} {args.source}.")
        return 1
    record(
        EventAction.INTRUSION_UNBLOCKED,
        target=f"{args.scope}:{args.source}",
        outcome=Outcome.SUCCESS,
        details={"scope": args.scope, "by": "command line"},
    )
    print(f"The block on {args.scope} {args.source} was lifted.")
    return 0
