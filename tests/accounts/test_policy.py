"""The role policy itself (P20): every role against every action, no action allowed by omission."""

from __future__ import annotations

import itertools

import pytest
from django.core.exceptions import PermissionDenied

from tests.accounts.helpers import fast_company, fast_member
from vouch.accounts import policy
from vouch.accounts.policy import MINIMUM_ROLE, Action, Role

pytestmark = pytest.mark.django_db

# The expected matrix written out by hand, so a change to MINIMUM_ROLE that widens
# access fails here too (not only "can() agrees with the table it reads").
EXPECTED_MINIMUM = {
    "view_dashboard": Role.VIEWER,
    "view_members": Role.VIEWER,
    "view_requests": Role.VIEWER,
    "create_request": Role.RECRUITER,
    "invite_member": Role.ADMIN,
    "change_role": Role.ADMIN,
    "deactivate_member": Role.ADMIN,
    "manage_settings": Role.ADMIN,
    "manage_security": Role.OWNER,
    "delete_company": Role.OWNER,
    "view_security_events": Role.ADMIN,
    "view_activity": Role.ADMIN,
    "view_candidates": Role.VIEWER,
    "edit_candidates": Role.RECRUITER,
    "delete_candidates": Role.ADMIN,
    "view_questionnaires": Role.VIEWER,
    "edit_questionnaires": Role.RECRUITER,
    "change_requests": Role.RECRUITER,
    "review_flags": Role.RECRUITER,
    "view_reports": Role.VIEWER,
    "export_candidate_data": Role.ADMIN,
    "erase_candidate_data": Role.ADMIN,
    "manage_workflow": Role.ADMIN,
    "end_member_sessions": Role.ADMIN,
    "manage_webhooks": Role.ADMIN,
    "manage_api_keys": Role.ADMIN,
}


def test_every_action_has_a_minimum_role():
    assert set(MINIMUM_ROLE) == set(Action)
    for action in Action:
        assert isinstance(MINIMUM_ROLE[action], Role), action


def test_minimum_roles_are_the_documented_ones():
    assert {str(a): r for a, r in MINIMUM_ROLE.items()} == EXPECTED_MINIMUM


def test_roles_are_ordered_viewer_to_owner():
    assert Role.VIEWER < Role.RECRUITER < Role.ADMIN < Role.OWNER
    assert list(Role) == [Role.VIEWER, Role.RECRUITER, Role.ADMIN, Role.OWNER]


@pytest.mark.parametrize(("role", "action"), list(itertools.product(Role, Action)))
def test_can_matches_the_minimum_role(members, role, action):
    membership = members[role]
    assert policy.can(membership, action) is (role >= EXPECTED_MINIMUM[str(action)])


@pytest.mark.parametrize("action", list(Action))
def test_nobody_and_inactive_can_do_nothing(members, action):
    assert policy.can(None, action) is False
    for role in Role:
        membership = members[role]
        membership.is_active = False
        assert policy.can(membership, action) is False, (role, action)
        membership.is_active = True
        membership.user.is_active = False
        assert policy.can(membership, action) is False, (role, action)
        membership.user.is_active = True


def test_inactive_member_has_no_assignable_roles_and_manages_nobody(members):
    owner = members[Role.OWNER]
    owner.is_active = False
    assert policy.assignable_roles(owner) == []
    assert not policy.can_manage(owner, members[Role.VIEWER], Action.CHANGE_ROLE)
    owner.is_active = True
    owner.user.is_active = False
    assert policy.assignable_roles(owner) == []
    assert not policy.can_manage(owner, members[Role.VIEWER], Action.DEACTIVATE_MEMBER)


def test_assignable_roles(members):
    assert policy.assignable_roles(members[Role.OWNER]) == [Role.VIEWER, Role.RECRUITER, Role.ADMIN, Role.OWNER]
    assert policy.assignable_roles(members[Role.ADMIN]) == [Role.VIEWER, Role.RECRUITER, Role.ADMIN]
    assert policy.assignable_roles(members[Role.RECRUITER]) == []
    assert policy.assignable_roles(members[Role.VIEWER]) == []
    assert policy.assignable_roles(None) == []


def test_can_assign(members):
    assert policy.can_assign(members[Role.OWNER], Role.OWNER)
    assert not policy.can_assign(members[Role.ADMIN], Role.OWNER)
    assert policy.can_assign(members[Role.ADMIN], Role.ADMIN)
    assert not policy.can_assign(members[Role.RECRUITER], Role.VIEWER)
    for bogus in (0, 15, 41, 99, -1):
        assert not policy.can_assign(members[Role.OWNER], bogus)


@pytest.mark.parametrize("action", [Action.CHANGE_ROLE, Action.DEACTIVATE_MEMBER])
def test_can_manage(members, company, action):
    owner, admin, recruiter, viewer = (members[r] for r in (Role.OWNER, Role.ADMIN, Role.RECRUITER, Role.VIEWER))
    second_owner = fast_member(company, Role.OWNER)
    second_admin = fast_member(company, Role.ADMIN)

    # Owners manage everyone else, including other owners.
    for target in (admin, recruiter, viewer, second_owner):
        assert policy.can_manage(owner, target, action), target
    # Admins manage admins and below, never an owner.
    for target in (recruiter, viewer, second_admin):
        assert policy.can_manage(admin, target, action), target
    assert not policy.can_manage(admin, owner, action)
    assert not policy.can_manage(admin, second_owner, action)
    # Below admin: nobody.
    for actor in (recruiter, viewer):
        for target in (owner, admin, recruiter, viewer, second_owner):
            assert not policy.can_manage(actor, target, action)
    # Never oneself, whatever the role.
    for actor in (owner, admin, recruiter, viewer):
        assert not policy.can_manage(actor, actor, action)
    assert not policy.can_manage(None, viewer, action)


@pytest.mark.parametrize("action", [Action.CHANGE_ROLE, Action.DEACTIVATE_MEMBER])
def test_can_manage_never_crosses_companies(members, action):
    other = fast_company("Other Co")
    other_viewer = fast_member(other, Role.VIEWER)
    other_owner = other.memberships.get(role=Role.OWNER)
    assert not policy.can_manage(members[Role.OWNER], other_viewer, action)
    assert not policy.can_manage(members[Role.ADMIN], other_viewer, action)
    assert not policy.can_manage(other_owner, members[Role.VIEWER], action)
    # The same person in both companies is still two memberships: owning one gives
    # nothing in the other.
    dual = fast_member(other, Role.VIEWER, user=members[Role.OWNER].user)
    assert not policy.can_manage(members[Role.OWNER], dual, action)


def test_require():
    policy.require(True)
    with pytest.raises(PermissionDenied):
        policy.require(False)
