"""Private links for candidates and referees (issue #5): tokens of 256 bits stored only
as hashes, single purpose, expiring and revocable, resolved to the right company;
refusals all look alike; guessing is throttled per client address and recorded."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from tests.accounts.helpers import fast_company
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import current_or_none
from vouch.core.network import client_network
from vouch.guard import throttle
from vouch.links import services
from vouch.links.models import Link, Purpose
from vouch.tenancy import deletion
from vouch.tenancy.models import Company

pytestmark = pytest.mark.django_db

NEUTRAL = "This link is not valid. It may have expired or been replaced. Ask the person who sent it for a new one."
ENDED = "This link is no longer in use"


def later(days: int = 14):
    return timezone.now() + timedelta(days=days)


def url(purpose: str, token: str) -> str:
    return f"/{'c' if purpose == Purpose.CANDIDATE else 'r'}/{token}/"


def last_seq() -> int:
    return SecurityEvent.objects.aggregate(m=Max("seq"))["m"] or 0


def link_events(after: int) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(seq__gt=after, action=EventAction.LINK_INVALID).order_by("seq"))


@pytest.fixture
def subject():
    return uuid.uuid4()


def real_subject(company, purpose: str) -> uuid.UUID:
    """A request (candidate links) or a reference (referee links) in ``company``: the
    pages a valid link opens show that object, so it must exist."""
    from tests.references.workflow import REFEREES, make_request, nominate

    owner = company.memberships.order_by("pk").first().user
    reference_request, _ = make_request(company, owner, email=f"{uuid.uuid4().hex[:8]}@example.org")
    if purpose == Purpose.CANDIDATE:
        return reference_request.pk
    reference, _ = nominate(company, reference_request, REFEREES[0])
    return reference.pk


# --- Issuing and resolving -------------------------------------------------------------


def test_issued_token_has_at_least_128_bits_and_only_its_hash_is_stored(company, subject):
    raw = services.issue(company, Purpose.CANDIDATE, subject, later())
    decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    assert len(decoded) * 8 >= 256 > 128
    link = Link.objects.get()
    assert services.issue(company, Purpose.CANDIDATE, subject, later()) != raw
    assert link.token_hash == services.hash_token(raw) and len(link.token_hash) == 64
    # The raw token is nowhere in the table, in any column, as the database holds it.
    assert Link._meta.db_table == "links_link"
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM links_link")
        rows = cursor.fetchall()
    dump = repr(rows)
    assert raw not in dump and raw[:16] not in dump
    assert link.token_hash in dump  # control: the scan does see the stored values


def test_resolves_to_the_right_company_and_subject(company, subject):
    other = fast_company("Other Hiring")
    raw = services.issue(company, Purpose.REFEREE, subject, later())
    theirs = services.issue(other, Purpose.REFEREE, uuid.uuid4(), later())
    resolved = services.resolve(raw, Purpose.REFEREE)
    assert resolved is not None
    assert (resolved.company.pk, resolved.purpose, resolved.subject_id) == (company.pk, "referee", subject)
    assert raw not in repr(resolved)  # the token stays out of reprs (logs, tracebacks)
    assert services.resolve(theirs, Purpose.REFEREE).company.pk == other.pk


def test_wrong_purpose_is_refused(company, subject):
    candidate = services.issue(company, Purpose.CANDIDATE, subject, later())
    referee = services.issue(company, Purpose.REFEREE, subject, later())
    assert services.resolve(candidate, Purpose.REFEREE) is None
    assert services.resolve(referee, Purpose.CANDIDATE) is None
    assert services.resolve(candidate, Purpose.CANDIDATE) is not None  # control


def test_unknown_malformed_expired_and_revoked_do_not_resolve(company, subject):
    assert services.resolve(secrets.token_urlsafe(32), Purpose.CANDIDATE) is None
    for junk in ("", "short", "x" * 500, "../../etc/passwd", "é" * 30, None, 42):
        assert services.resolve(junk, Purpose.CANDIDATE) is None
    raw = services.issue(company, Purpose.CANDIDATE, subject, later())
    assert services.resolve(raw, Purpose.CANDIDATE, now=later(15)) is None  # after its expiry
    assert services.revoke(services.resolve(raw, Purpose.CANDIDATE)) is True
    assert services.resolve(raw, Purpose.CANDIDATE) is None
    assert services.revoke(Link.objects.get()) is False  # already revoked


def test_revoke_for_subject_extend_reissue_and_purge(company, subject):
    first = services.issue(company, Purpose.CANDIDATE, subject, later(3))
    referee = services.issue(company, Purpose.REFEREE, subject, later(3))
    unrelated = services.issue(company, Purpose.CANDIDATE, uuid.uuid4(), later(3))
    # The request's deadline moves: its links follow, an unrelated link does not.
    assert services.extend(company, subject, later(30)) == 2
    assert services.resolve(first, Purpose.CANDIDATE, now=later(10)) is not None
    assert services.resolve(unrelated, Purpose.CANDIDATE, now=later(10)) is None
    # A resent email replaces the earlier link of that purpose only.
    second = services.reissue(company, Purpose.CANDIDATE, subject, later(30))
    assert services.resolve(first, Purpose.CANDIDATE) is None
    assert services.resolve(second, Purpose.CANDIDATE) is not None
    assert services.resolve(referee, Purpose.REFEREE) is not None
    # Another company's same subject id is not touched by this company's revocation.
    other = fast_company("Other Hiring")
    theirs = services.issue(other, Purpose.CANDIDATE, subject, later())
    assert services.revoke_for_subject(company, subject) == 2
    assert services.resolve(second, Purpose.CANDIDATE) is None
    assert services.resolve(referee, Purpose.REFEREE) is None
    assert services.resolve(theirs, Purpose.CANDIDATE) is not None
    # Purging: links expired or revoked long enough ago go; the rest stay.
    assert services.purge_expired(timedelta(days=1)) == 0
    assert Link.objects.count() == 5
    assert services.purge_expired(timedelta(days=1), now=later(40)) == 5
    assert not Link.objects.exists()


def test_issue_refuses_bad_arguments(company, subject):
    with pytest.raises(services.LinkError):
        services.issue(company, "recruiter", subject, later())
    with pytest.raises(services.LinkError):
        services.issue(company, Purpose.CANDIDATE, subject, timezone.now() - timedelta(seconds=1))
    Company.objects.filter(pk=company.pk).update(is_active=False)
    company.refresh_from_db()
    with pytest.raises(services.LinkError):
        services.issue(company, Purpose.CANDIDATE, subject, later())
    assert not Link.objects.exists()


def test_inactive_and_deleted_companies_links_do_not_resolve(client, company, subject):
    raw = services.issue(company, Purpose.CANDIDATE, real_subject(company, Purpose.CANDIDATE), later())
    assert client.get(url(Purpose.CANDIDATE, raw)).status_code == 200  # control
    Company.objects.filter(pk=company.pk).update(is_active=False)
    assert services.resolve(raw, Purpose.CANDIDATE) is None
    closed = client.get(url(Purpose.CANDIDATE, raw))
    assert closed.status_code == 410 and ENDED in closed.content.decode()  # a real link, ended
    assert "Acme" not in closed.content.decode()
    Company.objects.filter(pk=company.pk).update(is_active=True)
    assert services.resolve(raw, Purpose.CANDIDATE) is not None
    # Deleted through the real path: the tombstone's links are gone with its data.
    deletion.schedule_deletion(company, company.memberships.get())
    Company.objects.filter(pk=company.pk).update(delete_after=timezone.now() - timedelta(seconds=1))
    assert deletion.delete_now(company.pk) is not None
    assert services.resolve(raw, Purpose.CANDIDATE) is None
    assert not Link.objects.filter(company_id=company.pk).exists()
    response = client.get(url(Purpose.CANDIDATE, raw))
    assert response.status_code == 404 and NEUTRAL in response.content.decode()


# --- Over HTTP ---------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", list(Purpose), ids=str)
def test_valid_link_opens_its_page_in_its_company(client, company, subject, purpose):
    raw = services.issue(company, purpose, real_subject(company, purpose), later())
    before = timezone.now()
    response = client.get(url(purpose, raw))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Acme Hiring" in text
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]
    client.get(url(purpose, raw))
    link = Link.objects.get(token_hash=services.hash_token(raw))
    # Two views within a minute are one use: the control database is written once.
    assert link.use_count == 1 and link.last_used_at >= before
    Link.objects.filter(pk=link.pk).update(last_used_at=before - services.USE_RECORD_INTERVAL)
    client.get(url(purpose, raw))
    assert Link.objects.get(pk=link.pk).use_count == 2
    assert current_or_none() is None  # the company context ended with the request


def test_the_view_runs_inside_the_links_company_with_request_link(rf, company, subject):
    from vouch.links.decorators import link_required

    seen = {}

    @link_required(Purpose.REFEREE)
    def view(request):
        seen["context"] = current_or_none()
        seen["link"] = request.link
        from django.http import HttpResponse

        return HttpResponse("ok")

    raw = services.issue(company, Purpose.REFEREE, subject, later())
    response = view(rf.get("/r/x/", REMOTE_ADDR="198.51.100.7"), raw)
    assert response.status_code == 200
    assert seen["context"].company_id == company.pk
    assert (seen["link"].company.pk, seen["link"].subject_id, seen["link"].purpose) == (company.pk, subject, "referee")
    assert current_or_none() is None


def test_refusals_look_alike_and_are_recorded_without_the_token(client, company, subject):
    """Guesses all get one neutral 404, byte for byte; real links that have ended all get
    one page of their own (410), whichever way they ended; a real token on the other
    purpose's address gets the neutral page."""
    expired = services.issue(company, Purpose.CANDIDATE, subject, later(1))
    Link.objects.filter(token_hash=services.hash_token(expired)).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    revoked_subject = uuid.uuid4()
    revoked = services.issue(company, Purpose.CANDIDATE, revoked_subject, later())
    services.revoke_for_subject(company, revoked_subject)
    referee = services.issue(company, Purpose.REFEREE, uuid.uuid4(), later())
    unknown = secrets.token_urlsafe(32)
    cases = {"expired": expired, "revoked": revoked, "wrong_purpose": referee, "unknown": unknown, "malformed": "x"}
    seq = last_seq()
    # Each from its own network: events are sampled per network (vouch.audit.sampling).
    responses = {
        reason: client.get(url(Purpose.CANDIDATE, raw), REMOTE_ADDR=f"198.51.{n}.7")
        for n, (reason, raw) in enumerate(cases.items())
    }
    ended = [responses["expired"], responses["revoked"]]
    neutral = [responses["wrong_purpose"], responses["unknown"], responses["malformed"]]
    for group, status, text in ((ended, 410, ENDED), (neutral, 404, NEUTRAL)):
        assert len({response.content for response in group}) == 1, "refusals of one kind must be the same page"
        assert {response.status_code for response in group} == {status}
        for response in group:
            assert text in response.content.decode()
            assert "Acme" not in response.content.decode()
            assert response["Referrer-Policy"] == "same-origin"
            assert "no-store" in response["Cache-Control"]
            assert not response.cookies  # nothing per visitor either
        # Same headers too, apart from the request id and the clock (Expires: now).
        varying = {"X-Request-ID", "Expires", "Date"}
        header_sets = {tuple(sorted((k, v) for k, v in r.items() if k not in varying)) for r in group}
        assert len(header_sets) == 1
    events = link_events(seq)
    assert [e.details["reason"] for e in events] == list(cases)
    for event, raw in zip(events, cases.values(), strict=True):
        assert event.target == f"link:{services.hash_token(raw)[:8]}"
        assert event.details["purpose"] == "candidate"
        stored = json.dumps([event.target, event.details, event.user_agent])
        assert raw not in stored
    # Known links' refusals belong to their company's log; unknown tokens to no company.
    assert [e.company_id for e in events] == [company.pk, company.pk, company.pk, None, None]


def test_guessing_is_throttled_per_address_and_recorded(client, company, subject):
    valid = services.issue(company, Purpose.REFEREE, real_subject(company, Purpose.REFEREE), later())
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    seq = last_seq()
    free = throttle.CODE_ADDRESS.free
    for _ in range(free):
        response = client.get(url(Purpose.REFEREE, secrets.token_urlsafe(32)), **attacker)
        assert response.status_code == 404
    # Sampled: the first guess of the minute is recorded, the others counted for the next.
    assert len(link_events(seq)) == 1
    # The next guess is refused as held, and counts as no failure.
    response = client.get(url(Purpose.REFEREE, secrets.token_urlsafe(32)), **attacker)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= throttle.BASE_DELAY - 1
    text = response.content.decode()
    assert NEUTRAL in text and "try again later" in text
    assert response["Referrer-Policy"] == "same-origin" and "no-store" in response["Cache-Control"]
    assert len(link_events(seq)) == 1  # held guesses write nothing: no flood of events
    # A real link still opens from the held address (see test_held_addresses).
    assert client.get(url(Purpose.REFEREE, valid), **attacker).status_code == 200
    # Another address is not held back by the attacker.
    other = client.get(url(Purpose.REFEREE, valid), REMOTE_ADDR="198.51.100.20")
    assert other.status_code == 200
    assert client.get(url(Purpose.REFEREE, secrets.token_urlsafe(32)), REMOTE_ADDR="198.51.100.20").status_code == 404


def test_throttle_delay_passes(client, company, subject, monkeypatch):
    moment = [throttle.now()]
    monkeypatch.setattr(throttle, "now", lambda: moment[0])
    valid = services.issue(company, Purpose.CANDIDATE, real_subject(company, Purpose.CANDIDATE), later())
    for _ in range(throttle.CODE_ADDRESS.free):
        client.get(url(Purpose.CANDIDATE, secrets.token_urlsafe(32)))
    assert client.get(url(Purpose.CANDIDATE, secrets.token_urlsafe(32))).status_code == 429
    moment[0] += throttle.BASE_DELAY + 1
    assert client.get(url(Purpose.CANDIDATE, secrets.token_urlsafe(32))).status_code == 404
    assert client.get(url(Purpose.CANDIDATE, valid)).status_code == 200


@pytest.mark.parametrize(
    ("network", "neighbour"),
    [
        # Every guess from a fresh address of one IPv6 /64, as its holder can.
        (lambda n: f"2001:db8:5:7::{n + 1:x}", "2001:db8:5:8::1"),
        # Every guess from a fresh address of one IPv4 /24, through an IPv6 socket for half of them.
        (lambda n: f"::ffff:198.51.100.{n}" if n % 2 else f"198.51.100.{n}", "198.51.101.1"),
    ],
    ids=["ipv6-64", "ipv4-24"],
)
def test_guessing_from_many_addresses_of_one_network_is_throttled(client, company, network, neighbour):
    valid = services.issue(company, Purpose.REFEREE, real_subject(company, Purpose.REFEREE), later())
    free = throttle.CODE_NETWORK.free
    assert free > throttle.CODE_ADDRESS.free  # else the per-address limit would be the one tested
    seq = last_seq()
    statuses = [
        client.get(url(Purpose.REFEREE, secrets.token_urlsafe(32)), REMOTE_ADDR=network(n)).status_code
        for n in range(free)
    ]
    assert statuses == [404] * free  # no single address came near its own limit
    assert len(link_events(seq)) == 1  # sampled per network, not per address
    # The network's next guesses are held, from addresses it never used, and write nothing.
    for n in range(3):
        response = client.get(url(Purpose.REFEREE, secrets.token_urlsafe(32)), REMOTE_ADDR=network(free + n))
        assert response.status_code == 429 and NEUTRAL in response.content.decode()
        assert int(response["Retry-After"]) >= throttle.BASE_DELAY - 1
    assert len(link_events(seq)) == 1
    # A real referee on that network still opens their own link: a guesser beside them
    # cannot lock them out.
    assert client.get(url(Purpose.REFEREE, valid), REMOTE_ADDR=network(free + 9)).status_code == 200
    # The next network along is not held back.
    assert client.get(url(Purpose.REFEREE, secrets.token_urlsafe(32)), REMOTE_ADDR=neighbour).status_code == 404


def test_client_networks(rf):
    def network(address: str) -> str | None:
        return client_network(rf.get("/", REMOTE_ADDR=address))

    assert network("203.0.113.77") == "203.0.113.0/24"
    assert network("::ffff:203.0.113.77") == "203.0.113.0/24"  # an IPv4 client seen through IPv6
    assert network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert network("not an address") is None and network("") is None


# --- Logs ----------------------------------------------------------------------------------


def test_tokens_never_reach_the_logs(client, company, subject, logs):
    candidate = services.issue(company, Purpose.CANDIDATE, real_subject(company, Purpose.CANDIDATE), later())
    referee = services.issue(company, Purpose.REFEREE, real_subject(company, Purpose.REFEREE), later())
    guesses = [secrets.token_urlsafe(32) for _ in range(throttle.CODE_ADDRESS.free + 1)]
    assert client.get(url(Purpose.CANDIDATE, candidate)).status_code == 200
    assert client.get(url(Purpose.REFEREE, referee)).status_code == 200
    assert client.get(url(Purpose.REFEREE, candidate)).status_code == 404
    statuses = [client.get(url(Purpose.CANDIDATE, guess)).status_code for guess in guesses]
    assert statuses[-1] == 429
    text = logs.getvalue()
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    routes = [e["route"] for e in entries if e.get("logger") == "vouch.request"]
    assert routes[:3] == ["c/<str:token>/", "r/<str:token>/", "r/<str:token>/"]
    assert len(routes) == 3 + len(guesses)
    for raw in [candidate, referee, *guesses]:
        assert raw not in text
    assert "/c/" not in text and "/r/" not in text  # no raw path in any form


def test_a_member_held_by_their_companys_rules_can_still_open_another_companys_link(client, company, subject):
    """A recruiter of one company may be a referee for another: their own company's
    allowed networks and 2FA deadline govern its pages, not a link page of another."""
    from vouch.guard.models import CompanySecuritySettings

    member = company.memberships.get()
    CompanySecuritySettings.objects.create(
        company=company,
        allowed_networks="203.0.113.0/24",
        require_2fa=True,
        require_2fa_since=timezone.now() - timedelta(days=30),
        require_2fa_grace_days=0,
    )
    client.force_login(member.user)
    away = {"REMOTE_ADDR": "192.0.2.10"}
    assert client.get("/dashboard/", **away).status_code == 403  # control: the company's rule holds
    other = fast_company("Other Hiring")
    raw = services.issue(other, Purpose.REFEREE, real_subject(other, Purpose.REFEREE), later())
    response = client.get(url(Purpose.REFEREE, raw), **away)
    assert response.status_code == 200
    assert "Other Hiring" in response.content.decode()
    assert client.get(url(Purpose.REFEREE, secrets.token_urlsafe(32)), **away).status_code == 404
