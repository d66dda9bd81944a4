"""Member management over HTTP: inviting, changing roles, deactivating (P20)."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse

from tests.accounts.helpers import fast_company, fast_member
from tests.conftest import HTTPSClient
from vouch.access import invitations
from vouch.accounts import members as member_service
from vouch.accounts.models import Invitation, Membership
from vouch.accounts.policy import Role

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https://[^\s/]+(/invitations/[A-Za-z0-9_\-]+/)")
LAST_OWNER_ERROR = "A company must keep at least one active owner."


def invite(client, email: str, role: int):
    return client.post(reverse("member_invite"), {"email": email, "role": str(role)})


def set_role(client, target: Membership, role: int, **kwargs):
    return client.post(reverse("member_role", args=[target.pk]), {f"m{target.pk}-role": str(role)}, **kwargs)


def set_active(client, target: Membership, active: bool, **kwargs):
    return client.post(reverse("member_active", args=[target.pk]), {"active": "1" if active else "0"}, **kwargs)


def state(membership: Membership) -> tuple[int, bool]:
    membership.refresh_from_db()
    return membership.role, membership.is_active


# Inviting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN], ids=["owner", "admin"])
def test_owner_and_admin_invite_by_email(client, members, company, mailoutbox, role):
    client.force_login(members[role].user)
    response = invite(client, "New.Person@Example.com", Role.RECRUITER)
    assert response.status_code == 302
    assert response["Location"] == reverse("members")

    invitation = Invitation.objects.get(company=company)
    assert invitation.email == "new.person@example.com"
    assert invitation.role == Role.RECRUITER
    assert invitation.invited_by == members[role].user
    assert invitation.is_pending

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["new.person@example.com"]
    assert "Acme Hiring" in mail.subject
    path = LINK.search(mail.body).group(1)

    # The link works for the invited person (a fresh browser).
    invitee = HTTPSClient()
    opened = invitee.get(path)
    assert opened.status_code == 302
    assert opened["Location"] == reverse("invitation_accept")
    welcome = invitee.get(opened["Location"])
    assert welcome.status_code == 200
    assert b"Join Acme Hiring" in welcome.content
    assert b"Recruiter" in welcome.content

    # And the members page lists it as pending.
    page = client.get(reverse("members"))
    assert b"new.person@example.com" in page.content


def test_owner_may_invite_an_owner(client, owner, company, mailoutbox):
    client.force_login(owner.user)
    invite(client, "co-owner@example.com", Role.OWNER)
    assert Invitation.objects.get(company=company).role == Role.OWNER
    assert len(mailoutbox) == 1


@pytest.mark.parametrize("forged", ["40", "99", "0", "-1", "owner", ""])
def test_admin_cannot_invite_as_owner_by_forging_the_role(client, members, company, mailoutbox, forged):
    client.force_login(members[Role.ADMIN].user)
    response = client.post(reverse("member_invite"), {"email": "boss@example.com", "role": forged})
    # Refused by the form (the role is not offered: an error message) or by the policy (403).
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        page = client.get(response["Location"])
        assert b"Select a valid choice" in page.content or b"This field is required" in page.content
    assert not Invitation.objects.exists()
    assert mailoutbox == []


def test_invite_service_refuses_an_admin_inviting_an_owner(members):
    request = RequestFactory().post("/", secure=True)
    with pytest.raises(PermissionDenied):
        invitations.invite(request, members[Role.ADMIN], "boss@example.com", Role.OWNER)
    with pytest.raises(PermissionDenied):
        invitations.invite(request, members[Role.RECRUITER], "x@example.com", Role.VIEWER)
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("role", [Role.RECRUITER, Role.VIEWER], ids=["recruiter", "viewer"])
def test_recruiter_and_viewer_cannot_invite(client, members, mailoutbox, role):
    client.force_login(members[role].user)
    response = invite(client, "someone@example.com", Role.VIEWER)
    assert response.status_code == 403
    assert not Invitation.objects.exists()
    assert mailoutbox == []
    # Nor do they see the invitation form.
    page = client.get(reverse("members"))
    assert page.status_code == 200
    assert reverse("member_invite").encode() not in page.content


def test_inviting_an_existing_member_is_refused(client, members, mailoutbox):
    client.force_login(members[Role.OWNER].user)
    response = client.post(
        reverse("member_invite"),
        {"email": members[Role.VIEWER].user.email.upper(), "role": str(Role.ADMIN)},
        follow=True,
    )
    assert b"already a member of this company" in response.content
    assert not Invitation.objects.exists()
    assert mailoutbox == []
    assert state(members[Role.VIEWER]) == (Role.VIEWER, True)


# Changing roles ------------------------------------------------------------------------------


def test_owner_changes_roles(client, members):
    client.force_login(members[Role.OWNER].user)
    assert set_role(client, members[Role.VIEWER], Role.RECRUITER).status_code == 302
    assert state(members[Role.VIEWER]) == (Role.RECRUITER, True)
    set_role(client, members[Role.ADMIN], Role.OWNER)
    assert state(members[Role.ADMIN]) == (Role.OWNER, True)
    set_role(client, members[Role.RECRUITER], Role.VIEWER)
    assert state(members[Role.RECRUITER]) == (Role.VIEWER, True)


def test_admin_changes_roles_up_to_admin(client, members, company):
    other_admin = fast_member(company, Role.ADMIN)
    client.force_login(members[Role.ADMIN].user)
    set_role(client, members[Role.VIEWER], Role.ADMIN)
    assert state(members[Role.VIEWER]) == (Role.ADMIN, True)
    set_role(client, other_admin, Role.VIEWER)
    assert state(other_admin) == (Role.VIEWER, True)


def test_admin_cannot_make_an_owner(client, members):
    client.force_login(members[Role.ADMIN].user)
    response = set_role(client, members[Role.RECRUITER], Role.OWNER, follow=True)
    assert b"Choose one of the roles offered" in response.content
    assert state(members[Role.RECRUITER]) == (Role.RECRUITER, True)


def test_admin_cannot_change_an_owners_role_or_deactivate_an_owner(client, members):
    owner = members[Role.OWNER]
    client.force_login(members[Role.ADMIN].user)
    for role in (Role.VIEWER, Role.RECRUITER, Role.ADMIN):
        assert set_role(client, owner, role).status_code == 403
        assert state(owner) == (Role.OWNER, True)
    assert set_active(client, owner, False).status_code == 403
    assert state(owner) == (Role.OWNER, True)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name.lower())
def test_nobody_changes_their_own_role_or_deactivates_themselves(client, members, role):
    me = members[role]
    client.force_login(me.user)
    for new_role in Role:
        if new_role == role:
            continue
        response = set_role(client, me, new_role)
        # 403 from the policy, or a refused form (a role the actor may not give): never a change.
        assert response.status_code in (302, 403)
        assert state(me) == (role, True)
    assert set_active(client, me, False).status_code == 403
    assert state(me) == (role, True)


@pytest.mark.parametrize("role", [Role.RECRUITER, Role.VIEWER], ids=["recruiter", "viewer"])
def test_below_admin_cannot_change_roles_or_deactivate(client, members, role):
    client.force_login(members[role].user)
    for target_role in Role:
        if target_role == role:
            continue
        target = members[target_role]
        assert set_role(client, target, Role.ADMIN).status_code == 403
        assert set_active(client, target, False).status_code == 403
        assert state(target) == (target_role, True)


# The last owner -------------------------------------------------------------------------------


def test_sole_owner_cannot_demote_or_deactivate_themselves(client, owner):
    client.force_login(owner.user)
    assert set_role(client, owner, Role.ADMIN).status_code == 403
    assert set_active(client, owner, False).status_code == 403
    assert state(owner) == (Role.OWNER, True)


def test_with_two_owners_one_can_be_demoted_then_the_last_is_protected(client, members, company):
    first = members[Role.OWNER]
    second = fast_member(company, Role.OWNER)
    client.force_login(first.user)
    set_role(client, second, Role.ADMIN)
    assert state(second) == (Role.ADMIN, True)
    # The demoted co-owner can no longer touch the remaining owner.
    client.force_login(second.user)
    assert set_role(client, first, Role.ADMIN).status_code == 403
    assert set_active(client, first, False).status_code == 403
    assert state(first) == (Role.OWNER, True)


def test_with_two_owners_one_can_be_deactivated(client, members, company):
    first = members[Role.OWNER]
    second = fast_member(company, Role.OWNER)
    client.force_login(first.user)
    set_active(client, second, False)
    assert state(second) == (Role.OWNER, False)


def test_last_active_owner_cannot_be_demoted_by_a_stale_co_owner(client, members, company):
    """Two owners demote each other at the same moment: the second change must fail,
    or the company would be left without an owner. The second actor's membership was
    loaded (as owner) before the first change landed."""
    first = members[Role.OWNER]
    second = fast_member(company, Role.OWNER)
    stale_second = Membership.objects.select_related("user", "company").get(pk=second.pk)
    stale_first = Membership.objects.select_related("user", "company").get(pk=first.pk)

    member_service.change_role(first, Membership.objects.get(pk=second.pk), Role.ADMIN)
    with pytest.raises(member_service.MemberError, match=LAST_OWNER_ERROR):
        member_service.change_role(stale_second, stale_first, Role.ADMIN)
    assert state(first) == (Role.OWNER, True)
    with pytest.raises(member_service.MemberError, match=LAST_OWNER_ERROR):
        member_service.set_active(stale_second, Membership.objects.get(pk=first.pk), False)
    assert state(first) == (Role.OWNER, True)
    assert Membership.objects.filter(company=company, role=Role.OWNER, is_active=True).count() == 1


def test_last_active_owner_cannot_be_deactivated_by_a_stale_co_owner(members, company):
    first = members[Role.OWNER]
    second = fast_member(company, Role.OWNER)
    stale_second = Membership.objects.select_related("user", "company").get(pk=second.pk)
    member_service.set_active(first, Membership.objects.get(pk=second.pk), False)
    with pytest.raises(member_service.MemberError, match=LAST_OWNER_ERROR):
        member_service.set_active(stale_second, Membership.objects.get(pk=first.pk), False)
    assert state(first) == (Role.OWNER, True)


def test_last_owner_error_is_shown_over_http(client, members, company, monkeypatch):
    """The refusal reaches the person as a clear message, and nothing changes."""
    first = members[Role.OWNER]
    second = fast_member(company, Role.OWNER)
    client.force_login(second.user)
    # second is demoted in another request after this one loaded its membership.
    real_get_member = member_service.get_member

    def get_member_after_demotion(actor, membership_id):
        Membership.objects.filter(pk=actor.pk).update(role=Role.ADMIN)
        return real_get_member(actor, membership_id)

    monkeypatch.setattr(member_service, "get_member", get_member_after_demotion)
    response = set_role(client, first, Role.ADMIN, follow=True)
    assert response.status_code == 200
    assert LAST_OWNER_ERROR.encode() in response.content
    assert state(first) == (Role.OWNER, True)
    Membership.objects.filter(pk=second.pk).update(role=Role.OWNER)
    monkeypatch.setattr(member_service, "get_member", get_member_after_demotion)
    response = set_active(client, first, False, follow=True)
    assert LAST_OWNER_ERROR.encode() in response.content
    assert state(first) == (Role.OWNER, True)


@pytest.mark.parametrize("how", ["user_disabled", "membership_inactive"])
def test_a_disabled_co_owner_can_still_be_demoted_and_deactivated(client, members, company, how):
    """The guard counts the owners who would remain: an owner whose account is
    disabled is not one of them, so removing their ownership keeps an active owner."""
    first = members[Role.OWNER]
    second = fast_member(company, Role.OWNER)
    if how == "user_disabled":
        second.user.is_active = False
        second.user.save(update_fields=["is_active"])
    else:
        second.is_active = False
        second.save(update_fields=["is_active"])
    client.force_login(first.user)
    set_role(client, second, Role.VIEWER)
    assert Membership.objects.get(pk=second.pk).role == Role.VIEWER
    if how == "user_disabled":
        set_active(client, second, False)
        assert state(second) == (Role.VIEWER, False)
    assert state(first) == (Role.OWNER, True)


# Deactivation takes effect at once --------------------------------------------------------------


def test_deactivated_member_with_no_other_company_lands_on_no_company(client, members):
    viewer = members[Role.VIEWER]
    viewer_client = HTTPSClient()
    viewer_client.force_login(viewer.user)
    assert b"Acme Hiring" in viewer_client.get(reverse("dashboard")).content

    client.force_login(members[Role.ADMIN].user)
    set_active(client, viewer, False)
    assert state(viewer) == (Role.VIEWER, False)

    response = viewer_client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"] == reverse("no_company")
    page = viewer_client.get(response["Location"])
    assert page.status_code == 200
    assert b"not a member of any company" in page.content
    assert b"Acme Hiring" not in page.content
    assert viewer_client.get(reverse("members")).status_code == 302


def test_deactivated_member_sees_their_other_company_only(client, members):
    viewer = members[Role.VIEWER]
    elsewhere = fast_company("Beta Works")
    fast_member(elsewhere, Role.RECRUITER, user=viewer.user)
    viewer_client = HTTPSClient()
    viewer_client.force_login(viewer.user)
    session = viewer_client.session
    session["vouch_company"] = str(viewer.company_id)
    session.save()
    assert b"<h1>Acme Hiring</h1>" in viewer_client.get(reverse("dashboard")).content

    client.force_login(members[Role.OWNER].user)
    set_active(client, viewer, False)

    response = viewer_client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert b"<h1>Beta Works</h1>" in response.content
    assert b"Acme Hiring" not in response.content
    members_page = viewer_client.get(reverse("members"))
    assert b"Acme Hiring" not in members_page.content
    assert members[Role.OWNER].user.email.encode() not in members_page.content


def test_reactivation_restores_access(client, members):
    viewer = members[Role.VIEWER]
    client.force_login(members[Role.ADMIN].user)
    set_active(client, viewer, False)
    viewer_client = HTTPSClient()
    viewer_client.force_login(viewer.user)
    assert viewer_client.get(reverse("dashboard")).status_code == 302

    set_active(client, viewer, True)
    assert state(viewer) == (Role.VIEWER, True)
    response = viewer_client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert b"<h1>Acme Hiring</h1>" in response.content


def test_members_page_lists_only_this_company(client, members):
    other = fast_company("Other Co")
    stranger = fast_member(other, Role.ADMIN)
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("members"))
    assert page.status_code == 200
    for m in members.values():
        assert m.user.email.encode() in page.content
    assert stranger.user.email.encode() not in page.content
