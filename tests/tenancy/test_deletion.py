"""Deleting a company: owner only, re-authenticated, name typed, after a grace period an
owner can cancel; the purge removes the database and files and keeps a tombstone and
the security events. Time is passed in (``now=``), never slept through."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import fast_company, fast_member
from tests.conftest import PASSWORD, make_user
from vouch.accounts.models import Invitation, Membership
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import NoCompanyContext, company_context
from vouch.tenancy import deletion, provisioning, regions
from vouch.tenancy.connections import postgres_name, sqlite_path
from vouch.tenancy.models import TOMBSTONE_NAME, Company, CompanyStatus
from vouch.tenancy.services import SESSION_COMPANY_KEY, active_memberships

pytestmark = pytest.mark.django_db
GRACE = timedelta(days=14)


def database_exists(company) -> bool:
    """Looked up directly, not through the code under test."""
    region = regions.get(company.region)
    if region.uses_postgresql:
        with provisioning._admin(region) as admin:
            row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [postgres_name(company.pk)])
            return row.fetchone() is not None
    return os.path.exists(sqlite_path(company.pk, region))


def owner_of(company) -> Membership:
    """The company's first owner (the one who signed it up)."""
    return company.memberships.select_related("user", "company").filter(role=Role.OWNER).order_by("pk").first()


def events(company, action) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(company_id=company.pk, action=action))


def scheduled(now=None):
    """A company with an owner and a viewer, scheduled for deletion at ``now``."""
    company = fast_company()
    viewer = fast_member(company, Role.VIEWER)
    deletion.schedule_deletion(company, owner_of(company), now=now or timezone.now())
    return company, viewer


# --- Scheduling over HTTP: re-authentication and the typed name ---------------------


def test_owner_must_reauthenticate_then_deletion_is_scheduled(client, mailoutbox):
    company = fast_company("Acme Hiring", owner=make_user())  # a password: re-auth applies
    co_owner = fast_member(company, Role.OWNER)
    fast_member(company, Role.ADMIN)
    client.force_login(owner_of(company).user)
    url = reverse("company_delete")

    response = client.post(url, {"confirm_name": "Acme Hiring"})
    # Signed in, but not recently: sent to allauth's re-authentication, nothing scheduled.
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert Company.objects.get(pk=company.pk).status == CompanyStatus.ACTIVE

    # A wrong password does not resume the request.
    response = client.post(response["Location"], {"password": "not the password at all"})
    assert response.status_code == 200
    assert Company.objects.get(pk=company.pk).status == CompanyStatus.ACTIVE

    before = timezone.now()
    response = client.post(
        reverse("account_reauthenticate") + f"?next={url}", {"password": PASSWORD}
    )  # allauth replays the stored POST
    assert response.status_code == 302
    assert response["Location"] == reverse("company_settings")
    company.refresh_from_db()
    assert company.status == CompanyStatus.DELETION_SCHEDULED
    assert company.is_active
    assert company.deletion_requested_by == owner_of(company).user
    assert before + GRACE <= company.delete_after <= timezone.now() + GRACE
    assert len(events(company, EventAction.COMPANY_DELETION_SCHEDULED)) == 1

    # Every owner is told, nobody else.
    sent = [m for m in mailoutbox if "will be deleted" in m.subject]
    assert sorted(to for m in sent for to in m.to) == sorted([owner_of(company).user.email, co_owner.user.email])
    assert "Acme Hiring" in sent[0].subject
    assert reverse("company_settings") in sent[0].body

    # The banner, with the date, on every page; the cancel button for owners.
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="deletion-banner"' in page
    assert f"{company.delete_after:%Y}" in page
    assert reverse("company_delete_cancel") in page


def test_wrong_typed_name_is_refused_with_a_form_error(client):
    company = fast_company("Acme Hiring", owner=make_user())
    client.force_login(owner_of(company).user)
    url = reverse("company_delete")
    response = client.post(url, {"confirm_name": "acme hiring"})
    response = client.post(response["Location"], {"password": PASSWORD})
    # Re-authenticated, but the replayed request had the wrong name: a form error, no 500.
    assert response.status_code == 400
    assert b"not this company" in response.content
    assert Company.objects.get(pk=company.pk).status == CompanyStatus.ACTIVE
    for attempt in ({"confirm_name": ""}, {"confirm_name": "Other Company"}, {}, {"confirm_name": "x" * 5000}):
        response = client.post(url, attempt)  # recently re-authenticated: straight to the form
        assert response.status_code == 400, attempt
        assert Company.objects.get(pk=company.pk).status == CompanyStatus.ACTIVE
    # The right name, within the re-authentication window, needs no new password.
    response = client.post(url, {"confirm_name": "  Acme Hiring "})
    assert response.status_code == 302
    assert Company.objects.get(pk=company.pk).status == CompanyStatus.DELETION_SCHEDULED


def test_another_companys_name_does_not_delete_either(client):
    mine = fast_company("Mine")
    other = fast_company("Theirs")
    client.force_login(owner_of(mine).user)
    response = client.post(reverse("company_delete"), {"confirm_name": "Theirs"})
    assert response.status_code == 400
    assert Company.objects.get(pk=mine.pk).status == CompanyStatus.ACTIVE
    assert Company.objects.get(pk=other.pk).status == CompanyStatus.ACTIVE


# --- Only owners --------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RECRUITER, Role.VIEWER], ids=lambda r: r.name.lower())
def test_only_owners_can_delete_or_cancel(client, role):
    company = fast_company("Acme Hiring")
    member = fast_member(company, role)
    client.force_login(member.user)
    response = client.post(reverse("company_delete"), {"confirm_name": "Acme Hiring"})
    assert response.status_code == 403
    assert Company.objects.get(pk=company.pk).status == CompanyStatus.ACTIVE
    refusals = SecurityEvent.objects.filter(action=EventAction.AUTHZ_FAIL, actor=member.user)
    assert refusals.filter(target="route:company_delete").exists()

    deletion.schedule_deletion(company, owner_of(company))
    response = client.post(reverse("company_delete_cancel"))
    assert response.status_code == 403
    assert Company.objects.get(pk=company.pk).status == CompanyStatus.DELETION_SCHEDULED
    # The banner is shown to everyone, the cancel button only to owners.
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="deletion-banner"' in page
    assert reverse("company_delete_cancel") not in page
    # The service asks the policy again.
    with pytest.raises(PermissionDenied):
        deletion.cancel_deletion(company, member)
    with pytest.raises(PermissionDenied):
        deletion.schedule_deletion(fast_company(), member)


def test_an_owner_cannot_schedule_another_companys_deletion():
    mine, other = fast_company(), fast_company()
    with pytest.raises(PermissionDenied):
        deletion.schedule_deletion(other, owner_of(mine))
    assert Company.objects.get(pk=other.pk).status == CompanyStatus.ACTIVE


def test_settings_page_shows_deletion_to_owners_only(client):
    company = fast_company()
    client.force_login(owner_of(company).user)
    assert reverse("company_delete").encode() in client.get(reverse("company_settings")).content
    client.force_login(fast_member(company, Role.ADMIN).user)
    response = client.get(reverse("company_settings"))
    assert response.status_code == 200
    assert reverse("company_delete").encode() not in response.content
    client.force_login(fast_member(company, Role.RECRUITER).user)
    assert client.get(reverse("company_settings")).status_code == 403


# --- Cancelling during the grace period ---------------------------------------------


def test_owner_cancels_during_grace(client, mailoutbox):
    company, viewer = scheduled()
    co_owner = fast_member(company, Role.OWNER)
    client.force_login(co_owner.user)  # any owner, not only the one who asked
    mailoutbox.clear()
    response = client.post(reverse("company_delete_cancel"))
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.status == CompanyStatus.ACTIVE
    assert company.delete_after is None and company.deletion_requested_at is None
    assert len(events(company, EventAction.COMPANY_DELETION_CANCELLED)) == 1
    assert sorted(to for m in mailoutbox for to in m.to) == sorted([owner_of(company).user.email, co_owner.user.email])
    assert all("cancelled" in m.subject for m in mailoutbox)
    assert 'id="deletion-banner"' not in client.get(reverse("dashboard")).content.decode()
    # Cancelled means the purge leaves it alone, even long after the old date.
    assert deletion.purge_due(now=timezone.now() + GRACE * 3) == []
    assert database_exists(company)
    # A second cancel is a clear message, not an error page.
    response = client.post(reverse("company_delete_cancel"), follow=True)
    assert response.status_code == 200
    assert b"not scheduled for deletion" in response.content


def test_scheduling_twice_is_refused(client):
    company, _ = scheduled()
    first_date = Company.objects.get(pk=company.pk).delete_after
    with pytest.raises(deletion.DeletionError):
        deletion.schedule_deletion(company, owner_of(company), now=timezone.now() + timedelta(days=10))
    # The date does not move (a later request cannot postpone or hurry it).
    assert Company.objects.get(pk=company.pk).delete_after == first_date


def test_grace_period_comes_from_the_setting(settings):
    settings.VOUCH_DELETION_GRACE_DAYS = 3
    now = timezone.now()
    company, _ = scheduled(now)
    assert Company.objects.get(pk=company.pk).delete_after == now + timedelta(days=3)
    assert deletion.purge_due(now=now + timedelta(days=2)) == []
    assert [c.pk for c in deletion.purge_due(now=now + timedelta(days=3))] == [company.pk]


# --- The purge ----------------------------------------------------------------------


def test_purge_before_due_does_nothing():
    now = timezone.now()
    company, viewer = scheduled(now)
    assert deletion.purge_due(now=now + GRACE - timedelta(seconds=1)) == []
    assert deletion.delete_now(company.pk, now=now + GRACE - timedelta(seconds=1)) is None
    company.refresh_from_db()
    assert company.status == CompanyStatus.DELETION_SCHEDULED
    assert database_exists(company)
    assert provisioning.files_dir(company.pk, company.region).is_dir()
    assert Membership.objects.filter(company=company).count() == 2
    # It still works as before: members can use its data.
    with company_context(company):
        from vouch.activity.services import entries, log

        log("test", "still writable")
        assert entries().filter(action="test").exists()


def test_purge_after_due_removes_database_and_files_and_keeps_a_tombstone():
    now = timezone.now()
    company, viewer = scheduled(now)
    other = fast_company()  # not scheduled: untouched
    owner = owner_of(company)
    Invitation.objects.create(
        company=company,
        email="pending@example.com",
        role=Role.VIEWER,
        token_hash="1" * 64,
        invited_by=owner.user,
        expires_at=now + timedelta(days=7),
    )
    files = provisioning.files_dir(company.pk, company.region)
    (files / "report.pdf").write_bytes(b"%PDF personal data")
    earlier_events = set(SecurityEvent.objects.filter(company_id=company.pk).values_list("seq", flat=True))
    assert earlier_events and database_exists(company)

    purged = deletion.purge_due(now=now + GRACE)
    assert [c.pk for c in purged] == [company.pk]

    assert not database_exists(company)
    assert not files.exists()
    tombstone = Company.objects.get(pk=company.pk)
    assert tombstone.status == CompanyStatus.DELETED
    assert tombstone.name == TOMBSTONE_NAME
    assert tombstone.region == company.region
    assert tombstone.created_at == company.created_at
    assert tombstone.deleted_at == now + GRACE
    assert tombstone.deletion_requested_at == now
    assert not tombstone.is_active
    assert not Membership.objects.filter(company=company).exists()
    assert not Invitation.objects.filter(company=company).exists()
    # Every earlier security event of the company is still there, plus the deletion.
    kept = set(SecurityEvent.objects.filter(company_id=company.pk).values_list("seq", flat=True))
    assert earlier_events < kept
    deleted = events(company, EventAction.COMPANY_DELETED)
    assert len(deleted) == 1 and deleted[0].details["requested_by"] == f"user:{owner.user_id}"
    # The other company is untouched, and a second purge has nothing to do.
    assert database_exists(other)
    assert Company.objects.get(pk=other.pk).status == CompanyStatus.ACTIVE
    assert deletion.purge_due(now=now + GRACE * 2) == []
    assert len(events(company, EventAction.COMPANY_DELETED)) == 1


def test_members_of_a_deleted_company_cannot_reach_it(client):
    now = timezone.now()
    company, viewer = scheduled(now)
    elsewhere = fast_company()
    both = fast_member(company, Role.ADMIN)
    fast_member(elsewhere, Role.VIEWER, user=both.user)
    deletion.purge_due(now=now + GRACE)
    tombstone = Company.objects.get(pk=company.pk)

    # No context for a tombstone, whatever asks.
    with pytest.raises(NoCompanyContext), company_context(tombstone):
        pass
    # Not offered, not chosen even when the session still names it, not switchable to.
    assert [m.company_id for m in active_memberships(both.user)] == [elsewhere.pk]
    client.force_login(both.user)
    session = client.session
    session[SESSION_COMPANY_KEY] = str(company.pk)
    session.save()
    page = client.get(reverse("dashboard"))
    assert page.status_code == 200
    assert page.context["current_company"].pk == elsewhere.pk
    assert str(company.pk) not in page.content.decode()
    assert client.post(reverse("company_switch"), {"company": str(company.pk)}).status_code == 404
    # Someone who was only in the deleted company has no company at all.
    client.force_login(viewer.user)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"] == reverse("no_company")
    assert not database_exists(company)  # and nothing recreated an empty database on the way


def test_cancel_after_the_purge_is_too_late_and_cancel_before_it_wins():
    now = timezone.now()
    late, _ = scheduled(now)
    owner = owner_of(late)
    deletion.purge_due(now=now + GRACE)
    with pytest.raises((deletion.DeletionError, PermissionDenied)):
        deletion.cancel_deletion(Company.objects.get(pk=late.pk), owner)
    assert Company.objects.get(pk=late.pk).status == CompanyStatus.DELETED

    # Past its date but not yet purged: a cancel still saves it.
    early, _ = scheduled(now)
    deletion.cancel_deletion(early, owner_of(early))
    assert deletion.delete_now(early.pk, now=now + GRACE) is None
    assert database_exists(early)


def test_a_failed_removal_is_finished_by_the_next_purge(monkeypatch):
    now = timezone.now()
    company, viewer = scheduled(now)
    real_discard = provisioning.discard

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(provisioning, "discard", broken)
    assert deletion.purge_due(now=now + GRACE) == []  # logged, not raised
    half = Company.objects.get(pk=company.pk)
    # Already a tombstone nobody can enter, but not yet marked done.
    assert half.status == CompanyStatus.DELETED and half.deleted_at is None
    assert not Membership.objects.filter(company=company).exists()
    assert database_exists(company)
    assert not events(company, EventAction.COMPANY_DELETED)

    monkeypatch.setattr(provisioning, "discard", real_discard)
    later = now + GRACE + timedelta(hours=1)
    assert [c.pk for c in deletion.purge_due(now=later)] == [company.pk]
    assert not database_exists(company)
    assert Company.objects.get(pk=company.pk).deleted_at == later
    assert len(events(company, EventAction.COMPANY_DELETED)) == 1


def test_purge_periodically_survives_failures(monkeypatch):
    import threading

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        stopping.set()
        return []

    stopping = threading.Event()
    monkeypatch.setattr(deletion, "purge_due", flaky)
    deletion.purge_periodically(stopping, interval=0)
    assert len(calls) == 2  # the failure was logged and the loop carried on


# --- The region cannot be changed by a member --------------------------------------


def test_forged_region_is_ignored_when_renaming(client):
    company = fast_company("Acme Hiring", region="eu")
    admin = fast_member(company, Role.ADMIN)
    client.force_login(admin.user)
    page = client.get(reverse("company_settings")).content.decode()
    assert 'name="region"' not in page  # no form offers it
    response = client.post(reverse("company_settings"), {"name": "Acme Talent", "region": "us"})
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.name == "Acme Talent"
    assert company.region == "eu"
    # Only the region field, or an empty name: nothing changes, a form error, no 500.
    for forged in ({"region": "us"}, {"name": "  ", "region": "au"}):
        response = client.post(reverse("company_settings"), forged)
        assert response.status_code == 400
        company.refresh_from_db()
        assert (company.name, company.region) == ("Acme Talent", "eu")
    # Nor can the owner's deletion form, or the cancel form, carry one.
    owner = owner_of(company)
    client.force_login(owner.user)
    client.post(reverse("company_delete"), {"confirm_name": "Acme Talent", "region": "us"})
    client.post(reverse("company_delete_cancel"), {"region": "us"})
    assert Company.objects.get(pk=company.pk).region == "eu"


def test_renaming_is_for_admins_and_owners_only(client):
    company = fast_company("Acme Hiring")
    for role in (Role.RECRUITER, Role.VIEWER):
        client.force_login(fast_member(company, role).user)
        assert client.post(reverse("company_settings"), {"name": "Hijacked"}).status_code == 403
    assert Company.objects.get(pk=company.pk).name == "Acme Hiring"


def test_signup_region_must_be_offered_one():
    from vouch.accounts.forms import CompanySignupForm

    form = CompanySignupForm(data={"full_name": "A", "company_name": "B", "region": "mars"})
    assert not form.is_valid()
    assert "region" in form.errors


def test_purge_command_reports_what_it_did(monkeypatch):
    import io

    now = timezone.now()
    company, _ = scheduled(now - GRACE - timedelta(minutes=1))  # due by the real clock
    out, err = io.StringIO(), io.StringIO()
    assert deletion.run_purge(out, err) == 0
    assert str(company.pk) in out.getvalue()
    assert not database_exists(company)
    out = io.StringIO()
    assert deletion.run_purge(out, err) == 0
    assert "No company is due" in out.getvalue()

    failing, _ = scheduled(now - GRACE - timedelta(minutes=1))

    def broken(*args, **kwargs):
        raise OSError("no")

    monkeypatch.setattr(provisioning, "discard", broken)
    err = io.StringIO()
    assert deletion.run_purge(io.StringIO(), err) == 1  # a failure shows in the exit status
    assert "failed" in err.getvalue()


def test_vouch_tenants_purge_is_wired():
    import argparse
    import io

    from vouch.tenancy.operations import commands

    parser = argparse.ArgumentParser(prog="vouch")
    commands.add_parser(parser.add_subparsers(dest="command", required=True))
    company, _ = scheduled(timezone.now() - GRACE - timedelta(minutes=1))
    out = io.StringIO()
    assert commands.run(parser.parse_args(["tenants", "purge"]), out=out, err=io.StringIO()) == 0
    assert str(company.pk) in out.getvalue()
    assert Company.objects.get(pk=company.pk).status == CompanyStatus.DELETED


def test_two_purges_at_once_record_one_deletion(monkeypatch):
    """Another server's purge finishes the same company while this one removes it."""
    now = timezone.now()
    company, _ = scheduled(now)
    real_discard = provisioning.discard
    other_server = []

    def discard_while_another_purge_runs(company_id, region):
        real_discard(company_id, region)
        if not other_server:
            other_server.append(None)
            other_server[0] = deletion.delete_now(company_id, now=now + GRACE)

    monkeypatch.setattr(provisioning, "discard", discard_while_another_purge_runs)
    results = deletion.purge_due(now=now + GRACE)
    assert other_server[0] is not None and results == []  # exactly one of them finished it
    assert len(events(company, EventAction.COMPANY_DELETED)) == 1
    assert not database_exists(company)
