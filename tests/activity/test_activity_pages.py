"""The company's activity log: written by member and invitation changes, shown to
admins and owners only, filtered, paginated, from the company's own database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import fast_company, fast_member, fast_user
from vouch.accounts import invitations
from vouch.accounts.models import Invitation
from vouch.accounts.policy import Role
from vouch.activity import services as activity
from vouch.activity.models import Entry
from vouch.core.context import company_context

pytestmark = pytest.mark.django_db


def actions_of(company) -> list[str]:
    with company_context(company):
        # Entry ids are random uuids: the order of writing is the order of occurred_at.
        return list(Entry.objects.order_by("occurred_at").values_list("action", flat=True))


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name.lower())
def test_only_admins_and_owners_see_the_log_and_its_link(client, members, role):
    client.force_login(members[role].user)
    allowed = role >= Role.ADMIN
    assert client.get(reverse("activity")).status_code == (200 if allowed else 403)
    nav = client.get(reverse("dashboard")).content
    assert (b'href="/activity/"' in nav) is allowed


def test_member_changes_are_written_to_the_companys_log(
    client, members, company, django_capture_on_commit_callbacks, mailoutbox, rf
):
    """Through the services the member pages call (the pages themselves may first ask
    for the password again; that is not what is under test here)."""
    from vouch.accounts import members as member_service

    owner = members[Role.OWNER]
    viewer = members[Role.VIEWER]
    request = rf.post("/", secure=True)
    request.user = owner.user
    from allauth.core import context as allauth_context

    with django_capture_on_commit_callbacks(execute=True), allauth_context.request_context(request):
        member_service.change_role(owner, viewer, Role.RECRUITER)
        member_service.set_active(owner, viewer, False)
        member_service.set_active(owner, viewer, False)  # no change: no entry
        member_service.set_active(owner, viewer, True)
        invitation = invitations.invite(request, owner, "new.person@example.com", Role.VIEWER)
        invitations.revoke(owner, invitation.pk)
    assert actions_of(company) == [
        "role_changed",
        "member_deactivated",
        "member_reactivated",
        "member_invited",
        "invitation_revoked",
    ]
    client.force_login(owner.user)
    page = client.get(reverse("activity")).content.decode()
    assert "is now Recruiter (was Viewer)" in page
    assert "new.person@example.com was invited as Viewer" in page
    with company_context(company):
        first = Entry.objects.order_by("occurred_at").first()
    assert first.actor_id == owner.user_id


def test_an_accepted_invitation_is_logged_in_the_inviting_company(
    members, company, django_capture_on_commit_callbacks, rf
):
    """Accepted while the person has no current company (or another one): the entry
    still goes to the inviting company's database, and only there."""
    other = fast_company("Other Ltd")
    invitation = Invitation.objects.create(
        company=company,
        email="joiner@example.com",
        role=Role.RECRUITER,
        token_hash="c" * 64,
        expires_at=timezone.now() + timedelta(days=1),
    )
    joiner = fast_user("joiner@example.com")
    with django_capture_on_commit_callbacks(execute=True), company_context(other):
        invitations.accept(invitation, joiner)
    assert actions_of(company) == ["invitation_accepted"]
    assert actions_of(other) == []


def test_a_rolled_back_change_writes_no_entry(members, company, django_capture_on_commit_callbacks):
    """Entries are written once the control change commits, never for one that did not."""
    from django.db import transaction

    from vouch.accounts import members as member_service

    owner, viewer = members[Role.OWNER], members[Role.VIEWER]
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        member_service.change_role(owner, viewer, Role.ADMIN)
        raise RuntimeError("rolled back")
    assert actions_of(company) == []


def test_filters_pagination_and_empty_state(client, members, company):
    client.force_login(members[Role.ADMIN].user)
    empty = client.get(reverse("activity"))
    assert b"No activity yet" in empty.content
    with company_context(company):
        for i in range(55):
            activity.log(activity.Kind.ROLE_CHANGED, f"role entry {i:02d}")
        activity.log(activity.Kind.MEMBER_INVITED, "the one invitation")
        old = activity.log(activity.Kind.MEMBER_INVITED, "an old invitation")
        Entry.objects.filter(pk=old.pk).update(occurred_at=timezone.now() - timedelta(days=40))
    first = client.get(reverse("activity")).content.decode()
    assert first.count('<tr id="entry-') == 50
    assert "Page 1 of 2" in first and "57 entries" in first
    second = client.get(reverse("activity"), {"page": "2"}).content.decode()
    assert second.count('<tr id="entry-') == 7
    only_invites = client.get(reverse("activity"), {"action": "member_invited"}).content.decode()
    assert only_invites.count('<tr id="entry-') == 2
    today = timezone.localdate().isoformat()
    recent = client.get(reverse("activity"), {"action": "member_invited", "date_from": today}).content.decode()
    assert "the one invitation" in recent and "an old invitation" not in recent
    none = client.get(reverse("activity"), {"action": "invitation_accepted"})
    assert b"No activity matches these filters" in none.content


@pytest.mark.parametrize(
    "params",
    [
        {"action": "drop_table"},
        {"date_from": "not-a-date"},
        {"date_from": "2030-01-02", "date_to": "2030-01-01"},
    ],
    ids=["unknown_action", "bad_date", "reversed_dates"],
)
def test_bad_filters_are_a_clear_400(client, members, params):
    client.force_login(members[Role.OWNER].user)
    response = client.get(reverse("activity"), params)
    assert response.status_code == 400
    assert b"Those filters are not valid" in response.content


@pytest.mark.parametrize("page", ["0", "-1", "abc", "9999999", "99"])
def test_odd_page_numbers_are_not_errors(client, members, company, page):
    with company_context(company):
        activity.log(activity.Kind.ROLE_CHANGED, "one entry")
    client.force_login(members[Role.OWNER].user)
    response = client.get(reverse("activity"), {"page": page})
    assert response.status_code == 200
    assert b"one entry" in response.content


def test_detail_page_shows_the_entry(client, members, company):
    with company_context(company):
        entry = activity.log(
            activity.Kind.ROLE_CHANGED, "Vic is now Admin", actor=members[Role.OWNER].user, details={"to": "Admin"}
        )
    client.force_login(members[Role.ADMIN].user)
    response = client.get(reverse("activity_entry", args=[entry.pk]))
    assert response.status_code == 200
    assert b"Vic is now Admin" in response.content
    assert b"Role changed" in response.content
    client.force_login(members[Role.RECRUITER].user)
    assert client.get(reverse("activity_entry", args=[entry.pk])).status_code == 403


def test_another_companys_log_is_never_shown(client, members, company):
    other = fast_company("Other Ltd")
    fast_member(other, Role.ADMIN)
    with company_context(other):
        activity.log(activity.Kind.ROLE_CHANGED, "Other Ltd private entry")
    client.force_login(members[Role.OWNER].user)
    assert b"Other Ltd private entry" not in client.get(reverse("activity")).content
