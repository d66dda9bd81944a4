"""Issue 14, item 6: a real link that has ended (a referee who declined and was replaced,
a completed, cancelled or expired request) gets its own page and never counts as a wrong
guess; a held address or network still lets real links through (one guesser behind a
shared NAT address must not lock out the people on it), and a flood from it is stopped."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.references.workflow import REFEREES, make_request, nominate
from vouch.audit import sampling
from vouch.core.context import company_context
from vouch.guard import throttle
from vouch.links import services
from vouch.links.models import Link
from vouch.references.referees import flows as referee_flows
from vouch.references.requests import flows as request_flows
from vouch.shield import limits

pytestmark = pytest.mark.django_db

ENDED = "This link is no longer in use"
NAT = "203.0.113.50"  # one carrier-grade NAT address: a guesser, a referee and a candidate behind it


def _owner(company):
    return company.memberships.order_by("pk").first().user


def _replaced_referee(company):
    """A request whose first referee declined and was replaced: (request, candidate token,
    the declined referee's token, the replacement's token)."""
    reference_request, candidate = make_request(company, _owner(company), email="cara@example.org")
    reference, declined_token = nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        referee_flows.decline(reference, "I no longer work with them")
    _, replacement_token = nominate(company, reference_request, REFEREES[1], replacing=reference)
    return reference_request, candidate, declined_token, replacement_token


def _guess(client, address: str):
    return client.get(f"/r/{secrets.token_urlsafe(32)}/", REMOTE_ADDR=address)


def test_a_replaced_referees_link_has_its_own_page_and_never_counts_as_a_guess(client, company):
    _, candidate, declined, replacement = _replaced_referee(company)
    visits = 3 * throttle.CODE_ADDRESS.free
    for _ in range(visits):
        response = client.get(f"/r/{declined}/", REMOTE_ADDR=NAT)
        assert response.status_code == 410
        text = response.content.decode()
        assert ENDED in text and "contact the person or company that asked you" in text
        # Nothing personal and nothing to change.
        for personal in ("Rita", "Pat", "Acme", "Cara", "cara@example.org"):
            assert personal not in text
        assert "<form" not in text and "<input" not in text
        assert response["Referrer-Policy"] == "same-origin" and "no-store" in response["Cache-Control"]
        assert not response.cookies
    # No failure was counted: the address's first real guess is still a plain 404, and
    # the replacement referee and the candidate, behind the same address, get in.
    failures = throttle._k("c", "link", "i", NAT)
    from django.core.cache import cache

    assert not cache.get(f"{failures}:f")
    assert _guess(client, NAT).status_code == 404
    assert client.get(f"/r/{replacement}/", REMOTE_ADDR=NAT).status_code == 200
    assert client.get(f"/c/{candidate}/", REMOTE_ADDR=NAT).status_code == 200


def test_completed_cancelled_and_expired_links_have_the_same_page(client, company):
    reference_request, candidate = make_request(company, _owner(company), email="cara@example.org")
    _, referee = nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        request_flows.cancel_request(reference_request, actor=_owner(company))
    expired_request, expired_candidate = make_request(company, _owner(company), email="eve@example.org")
    Link.objects.filter(token_hash=services.hash_token(expired_candidate)).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    pages = [
        client.get(path, REMOTE_ADDR=NAT)
        for path in (f"/c/{candidate}/", f"/r/{referee}/", f"/c/{expired_candidate}/") * throttle.CODE_ADDRESS.free
    ]
    assert {page.status_code for page in pages} == {410}
    assert len({page.content for page in pages}) == 1
    assert _guess(client, NAT).status_code == 404  # none of them counted


def test_a_guesser_behind_a_shared_address_does_not_lock_out_the_people_on_it(client, company):
    _, candidate, _, referee = _replaced_referee(company)
    for _ in range(throttle.CODE_ADDRESS.free):
        assert _guess(client, NAT).status_code == 404
    assert _guess(client, NAT).status_code == 429  # the address is held for guesses
    # A few more guesses while held: each refused, none counted as a failure.
    for _ in range(5):
        assert _guess(client, NAT).status_code == 429
    page = client.get(f"/r/{referee}/", REMOTE_ADDR=NAT)
    assert page.status_code == 200 and "Decline to give a reference" in page.content.decode()
    assert client.get(f"/c/{candidate}/", REMOTE_ADDR=NAT).status_code == 200


@pytest.mark.parametrize(
    "address",
    [lambda n: NAT, lambda n: f"2001:db8:77:1::{n + 1:x}"],
    ids=["one-address", "ipv6-64-many-addresses"],
)
def test_a_flood_from_a_held_address_or_network_is_stopped(client, company, address, monkeypatch):
    moment = [throttle.now()]
    monkeypatch.setattr(throttle, "now", lambda: moment[0])
    # The request limits (vouch.shield.limits: a link page's ten-second and one-minute
    # counts per address) keep the same time, so the next minute is the next for both.
    monkeypatch.setattr(limits, "now", lambda: moment[0])
    monkeypatch.setattr(sampling, "now", lambda: moment[0])
    _, _, _, referee = _replaced_referee(company)
    free = throttle.CODE_NETWORK.free  # enough for the network too
    for n in range(free):
        _guess(client, address(n))
    assert _guess(client, address(free)).status_code == 429
    # Flooding on: the held scope's wrong tokens are still looked up, up to the cap...
    for n in range(throttle.HELD_GUESS_CAP):
        assert _guess(client, address(free + 1 + n)).status_code == 429
    # ...and then nothing from it is looked up any more, real links included, until the
    # minute ends: the flood costs no database work.
    with CaptureQueriesContext(connections["default"]) as queries:
        for n in range(200):
            response = _guess(client, address(1000 + n))
            assert response.status_code == 429
        refused = client.get(f"/r/{referee}/", REMOTE_ADDR=address(2000))
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= throttle.HELD_WINDOW
    assert not [q for q in queries.captured_queries if "links_link" in q["sql"]]
    # The next minute, the people on it get in again.
    moment[0] = (int(moment[0] // throttle.HELD_WINDOW) + 1) * throttle.HELD_WINDOW + 1
    assert client.get(f"/r/{referee}/", REMOTE_ADDR=address(3000)).status_code == 200
