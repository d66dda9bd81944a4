"""The webhook endpoint pages: admins and owners only, the secret shown once, and never
another company's endpoints or deliveries."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import fast_company, mark_reauthenticated
from tests.references.jobs_helpers import run_due
from tests.webhooks.helpers import add_endpoint, deliveries, event, reload
from tests.webhooks.receiver import Answer
from vouch.accounts.policy import Role
from vouch.audit.models import SecurityEvent
from vouch.core.context import company_context
from vouch.webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

TYPES = ["request.created", "request.completed"]


def signed_in(client, membership):
    client.force_login(membership.user)
    mark_reauthenticated(client)
    return client


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name.lower())
def test_only_admins_and_owners_manage_webhooks(client, members, role, company, receiver):
    endpoint, _ = add_endpoint(company, receiver)
    signed_in(client, members[role])
    allowed = role >= Role.ADMIN
    expected = 200 if allowed else 403
    assert client.get(reverse("webhooks")).status_code == expected
    assert client.get(reverse("webhook_detail", args=[endpoint.pk])).status_code == expected
    answer = client.post(reverse("webhook_toggle", args=[endpoint.pk]), {"enabled": "0"})
    assert answer.status_code == (302 if allowed else 403)
    assert reload(company, endpoint).enabled is not allowed


def test_adding_an_endpoint_shows_the_secret_once(client, members, company, receiver):
    signed_in(client, members[Role.ADMIN])
    answer = client.post(
        reverse("webhook_new"),
        {"url": receiver.url(), "description": "Smith & Jones O'Brien ATS — 採用", "event_types": TYPES},
    )
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    with company_context(company):
        endpoint = Endpoint.objects.get()
        secret = endpoint.secret
    assert secret.startswith("whsec_") and secret in answer.content.decode()
    assert endpoint.event_types == TYPES
    detail = client.get(reverse("webhook_detail", args=[endpoint.pk])).content.decode()
    listing = client.get(reverse("webhooks")).content.decode()
    assert secret not in detail and secret not in listing
    assert "Smith &amp; Jones O&#x27;Brien ATS — 採用" in listing
    assert SecurityEvent.objects.filter(action="webhook_endpoint_created", company_id=company.pk).exists()


@pytest.mark.parametrize(
    "url",
    ["http://example.com/hook", "https://169.254.169.254/", "https://[::1]/x", "https://2130706433/", "not a url"],
)
def test_a_refused_url_is_a_clear_400(client, members, company, url):
    signed_in(client, members[Role.OWNER])
    answer = client.post(reverse("webhook_new"), {"url": url, "event_types": TYPES})
    assert answer.status_code == 400
    with company_context(company):
        assert not Endpoint.objects.exists()


def test_unknown_event_types_are_refused(client, members, receiver):
    signed_in(client, members[Role.OWNER])
    answer = client.post(reverse("webhook_new"), {"url": receiver.url(), "event_types": ["user.deleted"]})
    assert answer.status_code == 400


def test_edit_rotate_replay_and_delete(client, members, company, receiver):
    endpoint, old = add_endpoint(company, receiver)
    signed_in(client, members[Role.OWNER])
    answer = client.post(
        reverse("webhook_detail", args=[endpoint.pk]),
        {"url": receiver.url(), "description": "", "event_types": ["request.created"]},
    )
    assert answer.status_code == 302
    assert reload(company, endpoint).event_types == ["request.created"]

    answer = client.post(reverse("webhook_rotate", args=[endpoint.pk]))
    endpoint = reload(company, endpoint)
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.secret in answer.content.decode() and old not in answer.content.decode()

    receiver.script(Answer(status=500))
    event(company)
    run_due(timezone.now())
    (row,) = deliveries(company)
    page = client.get(reverse("webhook_detail", args=[endpoint.pk])).content.decode()
    assert f'id="delivery-{row.pk}"' in page and "500" in page
    client.post(reverse("webhook_replay", args=[endpoint.pk, row.pk]))
    run_due(timezone.now())
    assert reload(company, row).status == "delivered"

    assert client.get(reverse("webhook_delete", args=[endpoint.pk])).status_code == 200
    with company_context(company):
        assert Endpoint.objects.filter(pk=endpoint.pk).exists()  # a GET only asks
    assert client.post(reverse("webhook_delete", args=[endpoint.pk])).status_code == 302
    with company_context(company):
        assert not Endpoint.objects.filter(pk=endpoint.pk).exists()


def test_the_delivery_log_is_paginated(client, members, company, receiver):
    endpoint, _ = add_endpoint(company, receiver, types=["request.created"])
    for _ in range(55):
        event(company)
    signed_in(client, members[Role.ADMIN])
    first = client.get(reverse("webhook_detail", args=[endpoint.pk])).content.decode()
    second = client.get(reverse("webhook_detail", args=[endpoint.pk]) + "?page=2").content.decode()
    assert first.count('id="delivery-') == 50 and second.count('id="delivery-') == 5


def test_another_companys_endpoints_are_never_shown_or_touched(client, members, company, receiver):
    other = fast_company("Other Hiring")
    theirs, their_secret = add_endpoint(other, receiver)
    event(other)
    (their_delivery,) = deliveries(other)
    signed_in(client, members[Role.OWNER])
    assert str(theirs.pk) not in client.get(reverse("webhooks")).content.decode()
    for name, method in [
        ("webhook_detail", "get"),
        ("webhook_detail", "post"),
        ("webhook_rotate", "post"),
        ("webhook_toggle", "post"),
        ("webhook_delete", "get"),
        ("webhook_delete", "post"),
    ]:
        answer = getattr(client, method)(reverse(name, args=[theirs.pk]), {"enabled": "0", "url": receiver.url()})
        assert answer.status_code == 404, name
    answer = client.post(reverse("webhook_replay", args=[theirs.pk, their_delivery.pk]))
    assert answer.status_code == 404
    theirs = reload(other, theirs)
    assert theirs.enabled and theirs.secret == their_secret
    # Nor through an endpoint of one's own with their delivery's id.
    mine, _ = add_endpoint(company, receiver)
    assert client.post(reverse("webhook_replay", args=[mine.pk, their_delivery.pk])).status_code == 404


def test_a_secret_needs_a_recent_password(client, members, company, receiver):
    endpoint, _ = add_endpoint(company, receiver)
    client.force_login(members[Role.OWNER].user)  # signed in, not re-authenticated
    answer = client.post(reverse("webhook_new"), {"url": receiver.url(), "event_types": TYPES})
    assert answer.status_code == 302 and "whsec_" not in answer.content.decode()
    answer = client.post(reverse("webhook_rotate", args=[endpoint.pk]))
    assert answer.status_code == 302
    with company_context(company):
        assert Endpoint.objects.count() == 1
        assert Endpoint.objects.get().previous_secret == ""
