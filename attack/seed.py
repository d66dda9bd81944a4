"""The data the attacks start from, written straight into a live server's databases
(``tests.server.helpers.run_django``): a company whose owner is signed in, a request
with its candidate link, three referee links (one confirmed with answers saved, one
not yet confirmed, one kept for the decline form), a candidate the edit form may
change, and a "keeper" candidate no form touches. ``state`` reads back what must
never be lost, so a run can compare before and after."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass

from tests.server import helpers

# The referee links are read from the emails Vouch sends, as a referee would: the
# snippet runs in a process of its own, with the mail kept in memory.
_SEED = """
import json, re, sys
from datetime import timedelta
from django.conf import settings
from django.core import mail
from django.utils import timezone
from vouch.accounts.models import User
from vouch.core.context import company_context
from vouch.references.candidates import flows as candidate_flows
from vouch.references.candidates import services as candidates
from vouch.references.referees import flows as referee_flows
from vouch.references.requests import flows as request_flows
from vouch.tenancy.models import Company

settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
mail.outbox = []
LINK = re.compile(r"https?://[^\\s\\"<>]+/(c|r)/([A-Za-z0-9_-]{20,128})/")
p = json.loads(PARAMS)

def token_for(address, kind):
    found = [t for m in mail.outbox if address in m.to for k, t in LINK.findall(m.body) if k == kind]
    assert found, f"no {kind} link mailed to {address}"
    return found[-1]

def referee(i, tag):
    return {
        "name": f"Referee {tag} {i}", "email": f"referee-{tag}-{i}@acme-widgets.example",
        "phone": f"+44 7700 90{i:04d}", "relationship": "manager", "organisation": "Acme Widgets",
        "worked_from": "2021-01", "worked_to": "2024-06",
    }

company, owner = Company.objects.get(pk=p["company_id"]), User.objects.get(email=p["email"])
tag = p["tag"]
with company_context(company):
    request = request_flows.create_request(
        actor=owner, name=f"Casey Seed {tag}", email=f"candidate-{tag}@example.org", role="Head of Finance",
        questionnaire="builtin:general-professional", deadline=timezone.now() + timedelta(days=30),
        referees_required=4,
    )
    candidate_token = token_for(f"candidate-{tag}@example.org", "c")
    tokens = []
    for i in range(3):
        values = referee(i, tag)
        reference = candidate_flows.nominate(request, **values)
        tokens.append(token_for(values["email"], "r"))
        if i == 0:
            referee_flows.confirm_referee(
                reference, job_title="Finance Director", organisation="Acme Widgets",
                candidate_title="Senior Analyst", candidate_from="2021-01", candidate_to="2024-06",
            )
            referee_flows.save_answers(reference, {"relationship": "I managed them"})
            confirmed = str(reference.pk)
    editable = candidates.create_candidate(f"Edit Me {tag}", f"edit-{tag}@example.org", created_by=owner)
    keeper = candidates.create_candidate(f"Keeper {tag}", f"keeper-{tag}@example.org", created_by=owner)
print(json.dumps({
    "request_id": str(request.pk), "candidate_token": candidate_token, "referee_tokens": tokens,
    "confirmed_reference_id": confirmed, "editable_candidate_id": str(editable.pk),
    "keeper_candidate_id": str(keeper.pk),
}))
"""

# What no attack may take away: rows that existed (counts may only grow) and the values
# no attacked form can change (the keeper's name, the confirmed referee's identity).
_STATE = """
import json
from vouch.core.context import company_context
from vouch.references.models import Candidate
from vouch.references.request_models import Reference, ReferenceRequest
from vouch.tenancy.models import Company

p = json.loads(PARAMS)
with company_context(Company.objects.get(pk=p["company_id"])):
    confirmed = Reference.objects.get(pk=p["confirmed_reference_id"])
    print(json.dumps({
        "candidates": Candidate.objects.count(),
        "requests": ReferenceRequest.objects.count(),
        "references": Reference.objects.count(),
        "keeper_name": Candidate.objects.get(pk=p["keeper_candidate_id"]).name,
        "confirmed_identity": confirmed.identity,
        "request_kept": ReferenceRequest.objects.filter(pk=p["request_id"]).exists(),
    }, sort_keys=True))
"""


@dataclass
class Seeded:
    """What the attacks need to reach the seeded data (tokens and cookies are secrets of
    this throwaway server only)."""

    email: str
    company: str
    company_id: str
    session: str  # the signed-in owner's __Host-vouch_session
    request_id: str
    candidate_token: str
    referee_tokens: list[str]
    confirmed_reference_id: str
    editable_candidate_id: str
    keeper_candidate_id: str

    @property
    def cookies(self) -> dict[str, str]:
        return {"__Host-vouch_session": self.session}

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _run(server, script: str, params: dict) -> dict:
    code = f"PARAMS = {json.dumps(params)!r}\n" + script
    return json.loads(helpers.run_django(server, code).strip().splitlines()[-1])


def seed(server) -> Seeded:
    """A company, its owner signed in through the login form, and the workflow data above."""
    tag = uuid.uuid4().hex[:8]
    email, company = f"attack-{tag}@example.com", f"Attack Company {tag}"
    ids = helpers.create_member(server, email, company)
    made = _run(server, _SEED, {"company_id": ids["company_id"], "email": email, "tag": tag})
    session = helpers.session_cookie(server, email)
    return Seeded(email=email, company=company, company_id=ids["company_id"], session=session, **made)


def state(server, seeded: Seeded) -> dict:
    """What must survive every attack (see ``lost``)."""
    return _run(server, _STATE, asdict(seeded))


def lost(before: dict, after: dict) -> list[str]:
    """What of ``before`` is gone in ``after``: a count that fell, a value that changed."""
    problems = [
        f"{key}: {before[key]} -> {after[key]}"
        for key in ("candidates", "requests", "references")
        if after[key] < before[key]
    ]
    problems += [
        f"{key} changed: {before[key]!r} -> {after[key]!r}"
        for key in ("keeper_name", "confirmed_identity", "request_kept")
        if after[key] != before[key]
    ]
    return problems
