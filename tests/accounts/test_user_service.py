"""vouch.accounts.user_service: the one place company code turns user ids from its
rows into names, emails and users (control database)."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from tests.accounts.helpers import fast_company, fast_member, fast_user
from vouch.accounts import user_service
from vouch.accounts.policy import Role

pytestmark = pytest.mark.django_db


def test_member_names_prefers_the_full_name_and_falls_back_to_the_email():
    named = fast_user("named@example.com", name="Zoë Ångström")
    unnamed = fast_user("unnamed@example.com", name="")
    assert user_service.member_names([named.pk, unnamed.pk, named.pk]) == {
        named.pk: "Zoë Ångström",
        unnamed.pk: "unnamed@example.com",
    }


def test_member_names_leaves_out_a_removed_user_and_blank_ids():
    kept = fast_user(name="Kept")
    removed = fast_user(name="Removed")
    removed_id = removed.pk
    removed.delete()
    names = user_service.member_names(iter([kept.pk, removed_id, None, 0]))
    assert names == {kept.pk: "Kept"}
    assert names.get(removed_id, "") == ""


def test_member_names_of_no_ids_asks_nothing():
    with CaptureQueriesContext(connections["default"]) as queries:
        assert user_service.member_names([None, None]) == {}
        assert user_service.member_names([]) == {}
    assert len(queries) == 0


def test_company_members_are_this_companys_in_one_query():
    company, other = fast_company(), fast_company()
    left = fast_member(company, Role.VIEWER, user=fast_user(name="Left"))
    left.is_active = False
    left.save()
    recruiter = fast_member(company, Role.RECRUITER, user=fast_user("r@example.com", name=""))
    fast_member(other, Role.RECRUITER, user=fast_user(name="Elsewhere"))
    owner = company.memberships.get(role=Role.OWNER)
    with CaptureQueriesContext(connections["default"]) as queries:
        members = user_service.company_members(company)
    assert len(queries) == 1
    assert members == {owner.user_id: owner.user.full_name, left.user_id: "Left", recruiter.user_id: "r@example.com"}


def test_active_emails_skip_inactive_users_and_blank_ids():
    active = fast_user("active@example.com")
    inactive = fast_user("inactive@example.com")
    inactive.is_active = False
    inactive.save()
    assert user_service.active_emails([active.pk, inactive.pk, None]) == ["active@example.com"]


def test_user_or_none():
    user = fast_user()
    assert user_service.user_or_none(user.pk) == user
    assert user_service.user_or_none(None) is None
    assert user_service.user_or_none(user.pk + 1000) is None
