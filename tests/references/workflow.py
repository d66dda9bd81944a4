"""Reference requests for the tests, made through the workflow itself; the private
links are taken from the emails Vouch sent, as a candidate or referee would."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core import mail
from django.test import TestCase
from django.utils import timezone

from vouch.core.context import company_context
from vouch.references.candidates import flows as candidate_flows
from vouch.references.requests import flows as request_flows

LINK = re.compile(r"https?://[^\s\"<>]+/(c|r)/([A-Za-z0-9_-]{20,128})/")

REQUEST = {
    "name": "Casey Candidate",
    "email": "casey@example.org",
    "phone": "07700 900456",
    "role": "Head of Finance",
    "questionnaire": "builtin:general-professional",
    "referees_required": 2,
    "guidance": "A manager from the last two years",
}

REFEREES = [
    {
        "name": "Rita Referee",
        "email": "rita@acme-widgets.example",
        "phone": "07700 900111",
        "relationship": "manager",
        "organisation": "Acme Widgets",
        "worked_from": "2021-01",
        "worked_to": "2024-06",
    },
    {
        "name": "Pat Peer",
        "email": "pat@globex.example",
        "phone": "07700 900222",
        "relationship": "peer",
        "organisation": "Globex",
        "worked_from": "2019-03",
        "worked_to": "2021-01",
    },
    {
        "name": "Morgan Manager",
        "email": "morgan@initech.example",
        "phone": "07700 900333",
        "relationship": "manager",
        "organisation": "Initech",
        "worked_from": "2016-05",
        "worked_to": "2019-02",
    },
]


def tokens_sent_to(address: str, kind: str) -> list[str]:
    """Every link token mailed to ``address`` ("c" candidate or "r" referee), oldest first."""
    found = []
    for message in mail.outbox:
        if address in message.to:
            found += [token for letter, token in LINK.findall(message.body) if letter == kind]
    return found


def last_token(address: str, kind: str) -> str:
    tokens = tokens_sent_to(address, kind)
    assert tokens, f"no {kind} link was mailed to {address}"
    return tokens[-1]


def make_request(company, actor, **overrides):
    """Create a request as ``actor``; returns (request, candidate token)."""
    values = {**REQUEST, "deadline": timezone.now() + timedelta(days=14), **overrides}
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        reference_request = request_flows.create_request(actor=actor, **values)
    return reference_request, last_token(values["email"], "c")


def nominate(company, reference_request, referee: dict, replacing=None):
    """Nominate a referee as the candidate; returns (reference, referee token)."""
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        reference = candidate_flows.nominate(reference_request, replacing=replacing, **referee)
    return reference, last_token(referee["email"], "r")


# A referee's identity confirmation, as the confirm form posts it.
IDENTITY = {
    "job_title": "Finance Director",
    "organisation": "Acme Widgets",
    "candidate_title": "Finance Manager",
    "candidate_from": "2021-01",
    "candidate_to": "2024-06",
}
# The general professional questionnaire's answers as the answers form posts them:
# every required question answered.
FULL = {
    "q-relationship": "I managed them",
    "q-dates": "2021 to 2024, Finance Manager",
    "q-reliability": "5",
    "q-quality": "4",
    "q-strengths": "Careful with numbers",
    "q-rehire": "yes",
}
