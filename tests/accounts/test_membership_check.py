"""The membership check on every request: what it loads, how little it costs, and
that losing a membership (or a company) takes effect on the very next request."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.accounts.helpers import fast_company, fast_member, fast_user
from vouch.accounts.models import Membership
from vouch.accounts.policy import Role
from vouch.tenancy.services import active_member_count, active_memberships, current_memberships

pytestmark = pytest.mark.django_db


def _rows(memberships):
    return [(m.pk, m.user_id, m.company_id, m.role, m.is_active, m.company.name) for m in memberships]


def test_current_memberships_are_the_active_memberships(db):
    user = fast_user()
    zeta = fast_company("Zeta Ltd")
    alpha = fast_company("Alpha Ltd")
    middle = fast_company("Middle Ltd")
    gone = fast_company("Gone Ltd")
    fast_member(zeta, Role.ADMIN, user=user)
    fast_member(alpha, Role.VIEWER, user=user)
    Membership.objects.filter(pk=fast_member(middle, Role.RECRUITER, user=user).pk).update(is_active=False)
    fast_member(gone, Role.OWNER, user=user)
    gone.is_active = False
    gone.save()
    fast_company("Someone Else's")  # never listed

    fast = current_memberships(user)
    assert _rows(fast) == _rows(active_memberships(user))
    assert [m.company.name for m in fast] == ["Alpha Ltd", "Zeta Ltd"]
    for membership in fast:
        assert membership.user is user  # reused, not loaded again
        assert isinstance(membership, Membership)
        # Not selected, so loaded on demand: still the stored value.
        assert membership.created_at == Membership.objects.get(pk=membership.pk).created_at


def test_current_memberships_is_one_query(db):
    user = fast_user()
    for name in ("A", "B", "C"):
        fast_member(fast_company(name), Role.VIEWER, user=user)
    with CaptureQueriesContext(connection) as queries:
        memberships = current_memberships(user)
        [(m.company.name, m.company.region, m.user.email, m.role) for m in memberships]
    assert len(queries) == 1


def test_active_member_count(company, members):
    assert active_member_count(company) == 4
    Membership.objects.filter(pk=members[Role.VIEWER].pk).update(is_active=False)
    assert active_member_count(company) == 3
    assert active_member_count(fast_company("Other")) == 1


def test_dashboard_queries(client, members):
    """Session (from the cache with Redis), user, memberships, member count, and the
    dashboard's turnaround figures from the cache (a table of the control database on
    the embedded default, Redis otherwise): nothing more, and no session write."""
    client.force_login(members[Role.VIEWER].user)
    assert client.get("/dashboard/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/dashboard/").status_code == 200
    # The shield's block table is re-read at most once a second per process, whichever
    # request comes then (vouch.shield.state): not the dashboard's.
    sql = [q["sql"] for q in queries if "vouch_shield_cache" not in q["sql"]]
    assert len(sql) == (3 if settings.REDIS_URL else 5), sql
    assert all(s.lstrip().upper().startswith("SELECT") for s in sql), sql


@pytest.mark.parametrize("what", ["membership", "company", "user"])
def test_deactivation_takes_effect_on_the_next_request(client, members, what):
    viewer = members[Role.VIEWER]
    client.force_login(viewer.user)
    assert client.get("/dashboard/").status_code == 200
    if what == "membership":
        Membership.objects.filter(pk=viewer.pk).update(is_active=False)
    elif what == "company":
        type(viewer.company).objects.filter(pk=viewer.company_id).update(is_active=False)
    else:
        type(viewer.user).objects.filter(pk=viewer.user_id).update(is_active=False)
    response = client.get("/dashboard/")
    assert response.status_code == 302  # to "no company" or, for a deactivated user, to sign-in
    assert not response["Location"].startswith("/dashboard/")
    assert Membership.objects.get(pk=viewer.pk).company.name not in response.content.decode()
