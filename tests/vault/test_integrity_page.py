"""A page whose encrypted data fails its integrity check says so, shows neither the
ciphertext nor anyone's plaintext, and the failure is a security event."""

from __future__ import annotations

import pytest
from django.db import connections
from django.urls import reverse

from tests.conftest import HTTPSClient
from vouch.accounts.policy import Role
from vouch.activity import services as activity
from vouch.activity.models import Entry
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import company_context
from vouch.vault.fields import Sealed

pytestmark = pytest.mark.django_db


def _raw_summary(alias: str, entry: Entry) -> bytes:
    pk = entry.pk.hex if connections[alias].vendor == "sqlite" else entry.pk
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT summary FROM activity_entry WHERE id = %s", [pk])
        return bytes(cursor.fetchone()[0])


def test_moved_ciphertext_gives_a_clear_page_and_an_event(members, company):
    with company_context(company) as ctx:
        secret = activity.log(activity.Kind.ROLE_CHANGED, "Alice Secret-Person is now Admin")
        shown = activity.log(activity.Kind.ROLE_CHANGED, "Bob is now Viewer")
        Entry.objects.filter(pk=shown.pk).update(summary=Sealed(_raw_summary(ctx.alias, secret)))
    client = HTTPSClient(raise_request_exception=False)
    client.force_login(members[Role.OWNER].user)

    response = client.get(reverse("activity_entry", args=[shown.pk]))

    assert response.status_code == 500
    assert b"failed its integrity check" in response.content
    assert b"Alice" not in response.content and b"Bob is now" not in response.content
    event = SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL, company_id=company.pk).get()
    assert event.target == f"activity.entry.summary:{shown.pk}"
