"""What the abuse tests share: occurrences as the audit log hands them to observers,
and a company's threshold set directly."""

from __future__ import annotations

import uuid

from vouch.abuse import thresholds
from vouch.abuse.models import RuleThreshold
from vouch.abuse.rules import Rule
from vouch.audit import observers
from vouch.audit.models import EventAction

# For each rule: (action, details) of one occurrence it counts.
SOURCE = {
    "bulk_exports": (EventAction.DATA_EXPORT, {"kind": "candidate"}),
    "bulk_erasures": (EventAction.DATA_ERASED, {}),
    "mass_invitations": (EventAction.INVITATION_SENT, {"role": "recruiter"}),
    "request_burst": ("reference_request_created", {}),
    "downloads": (EventAction.DATA_EXPORT, {"kind": "report_pdf"}),
    "link_guesses": (EventAction.LINK_INVALID, {"purpose": "candidate", "reason": "expired"}),
    "api_overuse": ("api_request", {}),
}


def occur(rule: Rule, company_id: uuid.UUID, actor_id: int | None, times: int = 1) -> None:
    action, details = SOURCE[rule.name]
    for _ in range(times):
        observers.notify(observers.Occurrence(action, "success", None, actor_id, company_id, "", details))


def set_threshold(company, rule: Rule, value: int) -> None:
    RuleThreshold.objects.update_or_create(company=company, rule=rule.name, defaults={"threshold": value})
    thresholds._overrides.clear()
