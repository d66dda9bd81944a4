"""A company's thresholds: the defaults, or what its owners chose within each rule's range.

Read for every counted occurrence, so each process keeps a company's overrides for a few
seconds (``TTL``); a change in this process is seen at once, in the others within TTL."""

from __future__ import annotations

import time
import uuid

from django.db import transaction

from vouch.abuse.models import RuleThreshold
from vouch.abuse.rules import RULES, Rule
from vouch.accounts import policy
from vouch.accounts.models import Membership
from vouch.accounts.policy import Action
from vouch.audit import record
from vouch.audit.models import EventAction

TTL = 10.0
_overrides: dict[uuid.UUID, tuple[float, dict[str, int]]] = {}


class ThresholdError(ValueError):
    """A threshold outside its rule's range (the message says so, for the owner)."""


def overrides(company_id: uuid.UUID) -> dict[str, int]:
    now = time.monotonic()
    cached = _overrides.get(company_id)
    if cached is not None and now - cached[0] < TTL:
        return cached[1]
    values = dict(RuleThreshold.objects.filter(company_id=company_id).values_list("rule", "threshold"))
    _overrides[company_id] = (now, values)
    return values


def threshold(rule: Rule, company_id: uuid.UUID) -> int:
    return overrides(company_id).get(rule.name, rule.default)


def check(rule: Rule, value: int) -> None:
    if not rule.low <= value <= rule.high:
        raise ThresholdError(f"Choose a number from {rule.low} to {rule.high} (the default is {rule.default}).")


def save(company, actor: Membership, values: dict[str, int], *, request=None) -> list[str]:
    """Set the company's thresholds (owners only); returns the rules that changed. A value
    equal to the default removes the override. Each change records ``abuse_rule_changed``."""
    policy.require(policy.can(actor, Action.MANAGE_SECURITY) and actor.company_id == company.pk)
    for name, value in values.items():
        check(RULES[name], value)
    current = {name: threshold(RULES[name], company.pk) for name in values}
    changed = [name for name, value in values.items() if current[name] != value]
    with transaction.atomic():
        for name in changed:
            rule, value = RULES[name], values[name]
            if value == rule.default:
                RuleThreshold.objects.filter(company=company, rule=name).delete()
            else:
                RuleThreshold.objects.update_or_create(
                    company=company, rule=name, defaults={"threshold": value, "changed_by": actor.user}
                )
            record(
                EventAction.ABUSE_RULE_CHANGED,
                request=request,
                actor=actor.user,
                company=company,
                target=f"rule:{name}",
                details={"rule": name, "from": current[name], "to": value, "default": rule.default},
            )
    _overrides.pop(company.pk, None)
    return changed
