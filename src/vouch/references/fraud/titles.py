"""What each kind of fraud flag is called on the request page and the report. Its own
module so the report's data (which the checks reuse for the claimed-versus-confirmed
comparison) can name flags without importing the checks."""

from __future__ import annotations

TITLES = {
    "device_candidate": "Same device as the candidate",
    "ip_candidate": "Same internet address as the candidate",
    "device_referee": "Same device as another referee",
    "ip_referee": "Same internet address as another referee",
    "email_candidate": "The candidate's own email address",
    "phone_candidate": "The candidate's own phone number",
    "email_reused": "Email address also given for another candidate",
    "phone_reused": "Phone number also given for another candidate",
    "free_mail": "Free email address where a work address was asked for",
    "fast_answers": "Answered implausibly fast",
    "quick_open_network": "Opened within minutes, from the candidate's network",
    "relationship_mismatch": "Working relationship differs from the nomination",
    "confirmed_organisation": "Referee names a different organisation",
    "confirmed_dates": "Referee's dates differ from the nomination",
}


def title_of(kind: str) -> str:
    return TITLES.get(kind, kind.replace("_", " ").capitalize())
