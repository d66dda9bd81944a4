"""API keys: shown once and kept only as a hash, routed by their prefix, refused when
expired, revoked, outside their networks or beyond their creator's current role;
creating, revoking and a new network email the owners and are security events."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from tests.accounts.helpers import mark_reauthenticated
from tests.api.conftest import ApiClient, make_key
from tests.conftest import add_member, make_company, make_user
from vouch.accounts.policy import Role
from vouch.api.keys import services
from vouch.api.models import ApiKey
from vouch.audit.models import SecurityEvent
from vouch.core.context import company_context

pytestmark = pytest.mark.django_db(transaction=False)

QUESTIONNAIRES = "/api/v1/questionnaires"


def call(key: str | None, address: str = "198.51.100.7"):
    return ApiClient(key, address).get(QUESTIONNAIRES)


def test_a_key_works_and_only_its_sha256_is_at_rest(company, members):
    key = make_key(members[Role.ADMIN], ["questionnaires:read"])
    assert call(key).status_code == 200
    prefix, _, secret = key.rpartition("_")
    assert prefix == services.prefix_of(company.pk, key.split("_")[2])
    with company_context(company):
        row = ApiKey.objects.get()
        # The raw rows of the company's database: the secret appears nowhere, in any form.
        with connections[row._state.db].cursor() as cursor:
            cursor.execute("SELECT * FROM api_apikey")
            dumped = repr(cursor.fetchall())
    assert bytes(row.secret_hash) == hashlib.sha256(secret.encode()).digest()
    assert secret not in dumped and key not in dumped and secret.encode().hex() not in dumped


def test_the_secret_is_shown_once_on_the_page_and_never_listed(company, members):
    client = ApiClient(None)
    client.force_login(members[Role.OWNER].user)
    fields = {"name": "Greenhouse", "scopes": ["requests:read", "reports:read"]}
    # A session alone is not enough: the password again first (nothing made meanwhile).
    asked = client.post("/company/api-keys/new/", fields)
    assert asked.status_code == 302 and "reauthenticate" in asked["Location"]
    with company_context(company):
        assert not ApiKey.objects.exists()
    mark_reauthenticated(client)
    page = client.post("/company/api-keys/new/", fields)
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    secret = page.context["secret"]
    assert secret.startswith(f"vk_{company.pk.hex}_") and secret in page.content.decode()
    listing = client.get("/company/api-keys/")
    body = listing.content.decode()
    assert "Greenhouse" in body and secret.rpartition("_")[0] in body and secret not in body
    assert ApiClient(secret).get("/api/v1/requests").status_code == 200


def test_the_form_offers_only_scopes_within_the_role_and_refuses_others(company, members):
    owner = members[Role.OWNER]
    client = ApiClient(None)
    client.force_login(members[Role.RECRUITER].user)
    assert client.get("/company/api-keys/").status_code == 403
    admin_client = ApiClient(None)
    admin_client.force_login(members[Role.ADMIN].user)
    mark_reauthenticated(admin_client)
    assert admin_client.get("/company/api-keys/new/").status_code == 200
    refused = admin_client.post("/company/api-keys/new/", {"name": "x", "scopes": ["made:up"]})
    assert refused.status_code == 400
    with company_context(company), pytest.raises(services.KeyError_):
        services.create_key(None, owner, name="x", scopes=["made:up"])


def test_garbage_unknown_and_guessed_keys_are_401_problems(company, members):
    key = make_key(members[Role.ADMIN])
    prefix = key.rpartition("_")[0]
    guessed = f"{prefix}_{'0' * 64}"
    other_company = f"vk_{make_company().pk.hex}_{key.split('_')[2]}_{key.rpartition('_')[2]}"
    for bad in ("nonsense", guessed, other_company, f"vk_{'0' * 32}_abcdefabcdef_{'0' * 64}"):
        response = call(bad)
        assert response.status_code == 401, bad
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert ApiClient(None).get(QUESTIONNAIRES).status_code == 401
    basic = ApiClient(None).get(QUESTIONNAIRES, HTTP_AUTHORIZATION=f"Basic {key}")
    assert basic.status_code == 401


def test_expired_key_is_refused(company, members):
    key = make_key(members[Role.ADMIN], expires_at=timezone.now() + timedelta(seconds=30))
    assert call(key).status_code == 200
    with company_context(company):
        ApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = call(key)
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_allowed_networks(company, members):
    key = make_key(members[Role.ADMIN], networks=["198.51.100.0/24", "2001:db8::/48"])
    assert call(key, "198.51.100.200").status_code == 200
    assert call(key, "2001:db8::5").status_code == 200
    refused = call(key, "203.0.113.9")
    assert refused.status_code == 401 and "network" in refused.json()["detail"]
    assert SecurityEvent.objects.filter(action="authz_fail", target__startswith="api_key:").exists()


def test_revocation_is_effective_at_once_and_announced(company, members, mailoutbox):
    admin = members[Role.ADMIN]
    key = make_key(admin)
    assert call(key).status_code == 200
    mailoutbox.clear()
    with company_context(company):
        row = ApiKey.objects.get()
        assert services.revoke_key(None, admin, row) is True
        assert services.revoke_key(None, admin, row) is False  # once
    response = call(key)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert [m.to for m in mailoutbox] == [[members[Role.OWNER].user.email]]
    assert "revoked" in mailoutbox[0].subject
    event = SecurityEvent.objects.get(action="api_key_revoked")
    assert event.company_id == company.pk and event.details["prefix"] == key.rpartition("_")[0]


def test_revoke_page_needs_post_and_the_company(company, members):
    key = make_key(members[Role.ADMIN])
    with company_context(company):
        row = ApiKey.objects.get()
    outsider = add_member(make_company(), Role.OWNER)
    stranger = ApiClient(None)
    stranger.force_login(outsider.user)
    assert stranger.post(f"/company/api-keys/{row.pk}/revoke/").status_code == 404
    assert call(key).status_code == 200
    owner = ApiClient(None)
    owner.force_login(members[Role.OWNER].user)
    assert owner.get(f"/company/api-keys/{row.pk}/revoke/").status_code == 405
    assert owner.post(f"/company/api-keys/{row.pk}/revoke/").status_code == 302
    assert call(key).status_code == 401


@pytest.mark.parametrize("change", ["demoted", "deactivated_member", "deactivated_user"])
def test_a_key_stops_when_its_creator_loses_the_role(company, members, change):
    admin = members[Role.ADMIN]
    key = make_key(admin, ["questionnaires:read", "candidates:admin"])
    assert call(key).status_code == 200
    if change == "demoted":
        admin.role = Role.RECRUITER
        admin.save()
    elif change == "deactivated_member":
        admin.is_active = False
        admin.save()
    else:
        admin.user.is_active = False
        admin.user.save()
    response = call(key)
    assert response.status_code == 401 and "creator" in response.json()["detail"]


def test_creating_a_key_emails_every_owner_and_is_an_event(members, mailoutbox):
    awkward = make_user("siobhan@example.com", name="Siobhán O'Brien")
    company = make_company("O'Brien & Smith <Zoë> Ångström 株式会社", owner=awkward)
    second = add_member(company, Role.OWNER)
    admin = add_member(company, Role.ADMIN, make_user(name="Ada Admin"))
    key = make_key(admin, ["requests:read"], name="Lever & <Co>")
    assert sorted(m.to[0] for m in mailoutbox) == sorted([awkward.email, second.user.email])
    for message in mailoutbox:
        assert message.subject == "[Vouch] An API key was created for O'Brien & Smith <Zoë> Ångström 株式会社"
        assert "Lever & <Co>" in message.body and key.rpartition("_")[0] in message.body
        assert key.rpartition("_")[2] not in message.body  # never the secret
        html = message.alternatives[0][0]
        assert "Lever &amp; &lt;Co&gt;" in html and "&amp;amp;" not in html
    event = SecurityEvent.objects.get(action="api_key_created")
    assert event.actor_id == admin.user_id and event.details["scopes"] == "requests:read"


def test_a_new_network_emails_the_owners_once(company, members, mailoutbox):
    key = make_key(members[Role.ADMIN])
    mailoutbox.clear()
    assert call(key, "198.51.100.7").status_code == 200
    assert call(key, "198.51.100.99").status_code == 200  # same /24
    assert len(mailoutbox) == 1 and "new network" in mailoutbox[0].subject
    assert "198.51.100.0/24" in mailoutbox[0].body
    services.forget_process_state()  # another process: it looks in the database
    assert call(key, "198.51.100.8").status_code == 200
    assert len(mailoutbox) == 1
    assert call(key, "203.0.113.1").status_code == 200
    assert len(mailoutbox) == 2
    assert SecurityEvent.objects.filter(action="api_key_new_network").count() == 2


def test_last_used_is_written_at_most_once_a_minute(company, members):
    key = make_key(members[Role.ADMIN])
    for _ in range(3):
        assert call(key, "198.51.100.7").status_code == 200
    with company_context(company):
        row = ApiKey.objects.get()
        first = row.last_used_at
        assert first is not None and row.last_used_ip == "198.51.100.7" and row.use_count == 1
        assert services.usage_count(row) == 3
        ApiKey.objects.update(last_used_at=first - timedelta(seconds=61))
    assert call(key, "198.51.100.8").status_code == 200
    with company_context(company):
        row = ApiKey.objects.get()
        assert row.last_used_at > first and row.last_used_ip == "198.51.100.8" and row.use_count == 4


def test_per_key_rate_limit_answers_429_with_retry_after(company, members, settings):
    settings.VOUCH_API_KEY_RATE_LIMIT = 3
    key = make_key(members[Role.ADMIN])
    other = make_key(members[Role.OWNER])
    for _ in range(3):
        assert call(key).status_code == 200
    refused = call(key)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused["Content-Type"] == "application/problem+json"
    assert call(other).status_code == 200  # per key, not per company


def test_session_cookies_are_not_accepted(company, members):
    browser = ApiClient(None)
    browser.force_login(members[Role.OWNER].user)
    assert browser.get("/company/api-keys/").status_code == 200  # the session works on pages
    assert browser.get(QUESTIONNAIRES).status_code == 401


def test_a_key_used_far_beyond_the_rule_is_throttled_and_the_owners_told(
    company, members, mailoutbox, django_capture_on_commit_callbacks
):
    """P18: every call counts towards the abuse rule api_overuse of the key's creator; past
    the company's threshold the account is throttled, its calls answered 429 with
    Retry-After, and the owners emailed once."""
    from tests.abuse.helpers import set_threshold
    from vouch.abuse import rules, throttle

    rule = rules.API_OVERUSE
    set_threshold(company, rule, rule.low)
    admin = members[Role.ADMIN]
    key = make_key(admin, ["questionnaires:read"])
    client = ApiClient(key)
    statuses = []
    for _ in range(rule.low + 2):
        # Each call its own commit, as on a server (the response runs after it).
        with django_capture_on_commit_callbacks(execute=True):
            statuses.append(client.get(QUESTIONNAIRES).status_code)
    assert statuses[: rule.low] == [200] * rule.low  # up to the threshold, calls go through
    assert statuses[rule.low :] == [429, 429]
    refused = client.get(QUESTIONNAIRES)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused["Content-Type"].startswith("application/problem+json")
    assert throttle.seconds_left(admin.user.pk) > 0
    told = [m for m in mailoutbox if any(o.user.email in m.to for o in [members[Role.OWNER]])]
    assert len([m for m in told if "unusual" in m.subject.lower() or "abuse" in m.body.lower()]) >= 1
    # Another member's key in the same company keeps working.
    other = make_key(members[Role.OWNER], ["questionnaires:read"])
    assert ApiClient(other).get(QUESTIONNAIRES).status_code == 200


def test_a_blocked_address_does_not_stop_a_valid_key_and_its_404s_score_its_account(company, members):
    """An applicant tracking system calls from its provider's addresses, which others share:
    intrusion detection answers a key's call for the key's creator (as for a signed-in
    member), never for the address. An outsider from the same address stays blocked."""
    from vouch.shield import state

    ats = "203.0.113.40"
    key = make_key(members[Role.ADMIN], ["questionnaires:read", "requests:read"])
    state.block(state.ADDRESS, ats, "injection", state.now())
    assert ApiClient(None, ats).get(QUESTIONNAIRES).status_code == 403  # the outsider: blocked
    assert ApiClient(key, ats).get(QUESTIONNAIRES).status_code == 200
    state.lift(state.ADDRESS, ats, state.now())
    # Its misses (ids not in its company: recorded as probes, as for a member) count against
    # the key's creator, never the address others share.
    client = ApiClient(key, ats)
    for n in range(5):
        assert client.get(f"/api/v1/requests/00000000-0000-0000-0000-{n:012d}").status_code == 404
    assert state.score_of(state.ADDRESS, ats, state.now()) == 0
    assert state.score_of(state.ACCOUNT, str(members[Role.ADMIN].user_id), state.now()) > 0
    assert ApiClient(None, ats).get("/api/v1/openapi.json").status_code == 200


def _member_reads(key: str) -> int:
    """Reads of the control database's memberships one call with ``key`` makes."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections["default"]) as queries:
        assert call(key).status_code == 200
    return sum("accounts_membership" in query["sql"] for query in queries.captured_queries)


def test_the_creator_is_read_once_per_process_until_their_company_changes(company, members):
    """The creator's membership is kept between calls (one cache read a call instead of a
    join in the control database); a change to any member of the company, published
    once it commits, makes the next call read it again."""
    key = make_key(members[Role.ADMIN], ["questionnaires:read"])
    assert call(key).status_code == 200  # the first call from a network also reads the owners
    services.forget_process_state()
    assert _member_reads(key) == 1
    assert _member_reads(key) == 0
    viewer = members[Role.VIEWER]
    viewer.is_active = False
    viewer.save()  # another member: the company's version changes all the same
    assert _member_reads(key) == 1
    assert _member_reads(key) == 0


def test_a_creator_change_published_by_another_process_stops_the_key_at_the_next_call(company, members):
    from django.core.cache import cache

    from vouch.accounts.models import Membership
    from vouch.api.keys import creators

    admin = members[Role.ADMIN]
    key = make_key(admin, ["questionnaires:read", "candidates:admin"])
    assert call(key).status_code == 200
    # Another process demoted the admin (its save published a new version; this process
    # heard no signal of it).
    Membership.objects.filter(pk=admin.pk).update(role=Role.RECRUITER)
    cache.set(creators._version_key(company.pk), "set by another process", timeout=None)
    response = call(key)
    assert response.status_code == 401 and "creator" in response.json()["detail"]


def test_a_creator_change_made_around_vouch_is_in_effect_within_the_recheck_time(company, members, monkeypatch):
    from vouch.accounts.models import Membership
    from vouch.api.keys import creators

    admin = members[Role.ADMIN]
    key = make_key(admin, ["questionnaires:read", "candidates:admin"])
    assert call(key).status_code == 200
    Membership.objects.filter(pk=admin.pk).update(is_active=False)  # no signal, no version
    started = creators.time.monotonic()
    monkeypatch.setattr(creators.time, "monotonic", lambda: started + creators.RECHECK_SECONDS + 1)
    response = call(key)
    assert response.status_code == 401 and "creator" in response.json()["detail"]


def test_without_the_shared_cache_every_call_reads_the_creator(company, members, monkeypatch):
    from vouch.api.keys import creators

    admin = members[Role.ADMIN]
    key = make_key(admin, ["questionnaires:read", "candidates:admin"])
    assert call(key).status_code == 200  # the first call from a network also reads the owners
    assert _member_reads(key) == 0

    class Away:
        def get(self, *args, **kwargs):
            raise ConnectionError("the cache is away")

    monkeypatch.setattr(creators, "cache", Away())
    assert _member_reads(key) == 1
    assert _member_reads(key) == 1
