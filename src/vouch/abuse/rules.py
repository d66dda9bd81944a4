"""The abuse rules: what each counts, over which window, its default threshold, the range
an owner may set, and the response when it fires (docs/security/abuse.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vouch.audit.models import EventAction

HOUR = 3600
DAY = 24 * HOUR


class Response(StrEnum):
    FLAG = "flag"  # the owners are told; nothing else happens
    THROTTLE = "throttle"  # the account's changes are refused for a while (``throttle``)
    REAUTH = "reauth"  # the account must confirm its password before its next sensitive action
    SUSPEND = "suspend"  # through vouch.guard.suspension


@dataclass(frozen=True)
class Rule:
    name: str
    label: str  # for the settings page
    what: str  # plural noun for the email: "{count} {what} in {period}"
    per_account: bool  # counted per account in a company, or per company
    window: int  # seconds
    default: int
    low: int  # the range an owner may choose
    high: int
    response: Response
    period: str  # the window in words
    # Counted in each process and added to the shared count in batches (vouch.abuse.monitor):
    # for a rule that hears every API call, where one cache write a call would cost more
    # than the call's own work.
    batched: bool = False


# Downloads compare today's count with the company's normal: the rule fires when today's
# count reaches the threshold AND this many times the average of the previous days.
DOWNLOAD_FACTOR = 5
BASELINE_DAYS = 7

BULK_EXPORTS = Rule(
    name="bulk_exports",
    label="Candidate data exports by one member in an hour",
    what="candidate data exports",
    per_account=True,
    window=HOUR,
    default=20,
    low=3,
    high=1000,
    response=Response.REAUTH,
    period="one hour",
)
BULK_ERASURES = Rule(
    name="bulk_erasures",
    label="Candidate erasures by one member in an hour",
    what="candidate erasures",
    per_account=True,
    window=HOUR,
    default=10,
    low=3,
    high=500,
    response=Response.SUSPEND,
    period="one hour",
)
MASS_INVITATIONS = Rule(
    name="mass_invitations",
    label="Invitations sent by one member in an hour",
    what="invitations",
    per_account=True,
    window=HOUR,
    default=30,
    low=5,
    high=1000,
    response=Response.THROTTLE,
    period="one hour",
)
REQUEST_BURST = Rule(
    name="request_burst",
    label="Reference requests created by one member in an hour",
    what="new reference requests",
    per_account=True,
    window=HOUR,
    default=200,
    low=10,
    high=10000,
    response=Response.FLAG,
    period="one hour",
)
DOWNLOADS = Rule(
    name="downloads",
    label="PDF and file downloads in a day (and five times the company's normal)",
    what="PDF and file downloads",
    per_account=False,
    window=DAY,
    default=200,
    low=20,
    high=100000,
    response=Response.FLAG,
    period="one day",
)
LINK_GUESSES = Rule(
    name="link_guesses",
    label="Refused private links of the company in an hour",
    what="refused private links",
    per_account=False,
    window=HOUR,
    default=100,
    low=20,
    high=100000,
    response=Response.FLAG,
    period="one hour",
)
# Counted by the API (vouch.api.middleware) for every call a key makes, as its creator's.
API_OVERUSE = Rule(
    name="api_overuse",
    label="API calls by one account's keys in an hour",
    what="API requests",
    per_account=True,
    window=HOUR,
    default=5000,
    low=100,
    high=1000000,
    response=Response.THROTTLE,
    period="one hour",
    batched=True,
)

RULES = {
    rule.name: rule
    for rule in (BULK_EXPORTS, BULK_ERASURES, MASS_INVITATIONS, REQUEST_BURST, DOWNLOADS, LINK_GUESSES, API_OVERUSE)
}

# What the rules hear that is not a security event (``vouch.audit.observers.heard``).
REQUEST_CREATED = "reference_request_created"
API_REQUEST = "api_request"
DOWNLOAD_KINDS = frozenset({"report_pdf", "attachment"})


def rule_for(action: str, company_known: bool, details) -> Rule | None:
    """The rule an occurrence counts towards, if any (cheap: runs for every event)."""
    if action == EventAction.DATA_EXPORT:
        kind = details.get("kind")
        if kind == "candidate":
            return BULK_EXPORTS
        return DOWNLOADS if kind in DOWNLOAD_KINDS else None
    if action == EventAction.DATA_ERASED:
        return BULK_ERASURES
    if action == EventAction.INVITATION_SENT:
        return MASS_INVITATIONS
    if action == REQUEST_CREATED:
        return REQUEST_BURST
    if action == EventAction.LINK_INVALID:
        return LINK_GUESSES if company_known else None
    if action == API_REQUEST:
        return API_OVERUSE
    return None
