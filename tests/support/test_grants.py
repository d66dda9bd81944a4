"""Support access attacked (P15): an operator sees a company's pages only through a live
grant that an owner approved, read-only by default; without one, the same 404 as anyone
else; every page viewed is in the company's security events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.urls import reverse

from tests.conftest import HTTPSClient, add_member, make_company
from tests.guard.b_helpers import give_totp
from tests.support.conftest import REASON, approve, ask, company_urls, open_grant, second_owner
from vouch.accounts.models import User
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.core.context import company_context
from vouch.references.models import Candidate
from vouch.support.models import Scope, Status, SupportGrant

pytestmark = pytest.mark.django_db


def events(company, action) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(company_id=company.pk, action=action).order_by("seq"))


def assert_all_404(client: HTTPSClient, urls: dict[str, str]) -> None:
    for name, url in urls.items():
        assert client.get(url).status_code == 404, name


# Two-factor first


def test_an_operator_without_two_factor_is_sent_to_set_it_up(company):
    operator = User.objects.create_operator("new.ops@example.com")
    client = HTTPSClient()
    client.force_login(operator)
    for url in ("/operator/", reverse("support_operator"), reverse("operator_events"), reverse("operator_backups")):
        response = client.get(url)
        assert response.status_code == 302 and response.url == reverse("mfa_index"), url
    response = client.post(reverse("support_operator"), {"company": company.pk, "reason": REASON, "hours": 4})
    assert response.status_code == 302 and response.url == reverse("mfa_index")
    assert not SupportGrant.objects.exists()
    assert client.get(reverse("mfa_index")).status_code == 200  # where they set it up
    give_totp(operator)
    assert client.get("/operator/").status_code == 200


# Asking


def test_the_request_emails_every_owner_and_is_recorded_for_the_company(ops, operator, company, owner):
    other_owner = second_owner(company)
    add_member(company, Role.ADMIN)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = ops.post(reverse("support_operator"), {"company": company.pk, "reason": REASON, "hours": 8})
    assert response.status_code == 302
    grant = SupportGrant.objects.get()
    assert (grant.status, grant.requested_hours, grant.reason, grant.operator) == ("pending", 8, REASON, operator)
    sent = {message.to[0]: message for message in mail.outbox}
    assert set(sent) == {owner.user.email, other_owner.email}  # owners only, one message each
    review = f"https://localhost:8443{reverse('support_review', args=[grant.pk])}"
    for message in sent.values():
        assert review in message.body and REASON in message.body and operator.email in message.body
    (event,) = events(company, EventAction.SUPPORT_GRANT_REQUESTED)
    assert event.actor_id == operator.pk and event.target == f"support_grant:{grant.pk}"


@pytest.mark.parametrize(
    ("reason", "hours"),
    [("", 4), ("   ", 4), ("x" * 501, 4), (REASON, 73), (REASON, 0), (REASON, "many"), (REASON, 10**9)],
)
def test_a_request_without_a_reason_or_over_72_hours_is_refused(ops, company, reason, hours):
    response = ops.post(reverse("support_operator"), {"company": company.pk, "reason": reason, "hours": hours})
    assert response.status_code == 400
    assert not SupportGrant.objects.exists() and not mail.outbox


def test_members_cannot_ask_for_support_access(client, company, members):
    client.force_login(members[Role.OWNER].user)
    response = client.post(reverse("support_operator"), {"company": company.pk, "reason": REASON, "hours": 4})
    assert response.status_code == 403 and not SupportGrant.objects.exists()


# Without a live grant: the same 404 as anyone else


def test_without_a_grant_every_company_page_is_404(ops, company, members, data):
    urls = company_urls(data)
    assert_all_404(ops, urls)
    # What a member of another company gets for the same pages.
    stranger = HTTPSClient()
    stranger.force_login(make_company("Elsewhere Ltd").memberships.get().user)
    for name in ("candidate_detail", "attachment_download", "request_detail", "request_report"):
        assert stranger.get(urls[name]).status_code == 404, name
    assert not events(company, EventAction.SUPPORT_PAGE_VIEWED)


def test_a_pending_or_declined_grant_opens_nothing(ops, operator, company, owner, data):
    grant = ask(operator, company)
    assert ops.post(reverse("support_operator_open", args=[grant.pk])).status_code == 404
    open_grant(ops, grant)  # a forged session value
    assert_all_404(ops, company_urls(data))
    from vouch.support import services

    services.decline(None, grant, owner.user)
    open_grant(ops, grant)
    assert_all_404(ops, company_urls(data))
    assert approve_refused(grant, owner.user)


def approve_refused(grant, owner_user) -> bool:
    from vouch.support import services

    try:
        services.approve(None, grant, owner_user, hours=4, scope=Scope.READ)
    except services.GrantError:
        return True
    return False


def test_a_grant_for_another_company_or_another_operator_opens_nothing_here(ops, operator, company, owner, data):
    other = make_company("Other Co")
    other_grant = approve(ask(operator, other), other.memberships.get().user)
    assert ops.post(reverse("support_operator_open", args=[other_grant.pk])).status_code == 302
    # In the other company now: this company's candidate, file and request are not there.
    urls = company_urls(data)
    for name in ("candidate_detail", "attachment_download", "request_detail", "request_report"):
        assert ops.get(urls[name]).status_code == 404, name
    assert not events(company, EventAction.SUPPORT_PAGE_VIEWED)
    # Another operator's live grant for this company, put in this operator's session.
    colleague = User.objects.create_operator("colleague@example.com")
    theirs = approve(ask(colleague, company), owner.user)
    assert ops.post(reverse("support_operator_open", args=[theirs.pk])).status_code == 404
    open_grant(ops, theirs)
    assert_all_404(ops, urls)


# With a live grant


def test_a_live_grant_shows_the_pages_with_a_banner_and_records_each_view(ops, operator, company, owner, data):
    grant = approve(ask(operator, company), owner.user)
    assert ops.post(reverse("support_operator_open", args=[grant.pk])).status_code == 302
    urls = {"dashboard": reverse("dashboard"), **company_urls(data)}
    for name in ("dashboard", "requests", "candidates", "candidate_detail", "request_detail"):
        page = ops.get(urls[name])
        assert page.status_code == 200, name
        html = page.content.decode()
        assert 'id="support-banner"' in html
        assert f"Support access for <strong>{company.name}</strong>, read-only, until" in html
        assert f"granted by {owner.user}" in html
        assert "as support, read-only" in html  # the company bar: not a member's role
    assert ops.get(urls["attachment_download"]).status_code == 200
    viewed = events(company, EventAction.SUPPORT_PAGE_VIEWED)
    routes = [event.target for event in viewed]
    assert routes == [
        "route:dashboard",
        "route:requests",
        "route:candidates",
        "route:candidate_detail",
        "route:request_detail",
        "route:attachment_download",
    ]
    for event in viewed:
        assert event.actor_id == operator.pk and event.outcome == Outcome.SUCCESS
        assert str(data.candidate.pk) not in event.target  # a route name, never the path
    # Owners see them on the Security events page.
    owner_client = HTTPSClient()
    owner_client.force_login(owner.user)
    page = owner_client.get(reverse("security_events"), {"action": "support_page_viewed"}).content.decode()
    assert page.count("Page viewed by support") >= len(viewed)
    assert "route:candidate_detail" in page and operator.email in page


def test_a_read_only_grant_refuses_every_write_before_the_view(ops, operator, company, owner, data):
    grant = approve(ask(operator, company), owner.user)
    open_grant(ops, grant)
    candidate = data.candidate

    def stored():
        with company_context(company):
            return sorted((str(c.pk), c.name, c.email) for c in Candidate.objects.all())

    before = stored()
    writes = [
        ("post", reverse("candidate_edit", args=[candidate.pk]), {"name": "Changed", "email": "x@example.com"}),
        ("post", reverse("candidate_delete", args=[candidate.pk]), {}),
        ("post", reverse("request_cancel", args=[data.request.pk]), {}),
        ("post", reverse("candidate_new"), {"name": "New", "email": "new@example.com"}),
        ("put", reverse("candidate_detail", args=[candidate.pk]), {}),
        ("patch", reverse("candidate_detail", args=[candidate.pk]), {}),
        ("delete", reverse("candidate_detail", args=[candidate.pk]), {}),
    ]
    for method, url, body in writes:
        response = getattr(ops, method)(url, body)
        assert response.status_code == 403, url
        assert b"Read-only support access" in response.content
    assert stored() == before and (str(candidate.pk), "Alice Example", "alice@example.com") in before
    with company_context(company):
        data.request.refresh_from_db()
    assert data.request.status != "cancelled"
    refused = [e for e in events(company, EventAction.SUPPORT_PAGE_VIEWED) if e.outcome == Outcome.BLOCKED]
    assert len(refused) == len(writes)


def test_even_read_and_write_never_reaches_members_settings_or_security(ops, operator, company, owner, data):
    grant = approve(ask(operator, company), owner.user, scope=Scope.READ_WRITE)
    open_grant(ops, grant)
    assert (
        ops.post(
            reverse("candidate_edit", args=[data.candidate.pk]), {"name": "Fixed Name", "email": "a@example.com"}
        ).status_code
        == 302
    )
    for name in ("company_settings", "company_security", "security_events", "activity", "support_grants"):
        assert ops.get(reverse(name)).status_code == 403, name
    review = reverse("support_review", args=[grant.pk])
    assert ops.get(review).status_code == 404  # an operator approves nothing


def test_expiry_ends_access_by_the_clock_and_is_recorded_once(ops, operator, company, owner, data, later):
    grant = approve(ask(operator, company), owner.user, hours=1)
    open_grant(ops, grant)
    urls = company_urls(data)
    later.advance(minutes=59)
    assert ops.get(urls["candidates"]).status_code == 200
    later.advance(minutes=2)
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert_all_404(ops, urls)
    assert len(events(company, EventAction.SUPPORT_GRANT_EXPIRED)) == 1
    (ended,) = mail.outbox
    assert ended.to == [owner.user.email] and "has ended" in ended.subject and "time ran out" in ended.body
    # Opening it again is refused; the owners' page shows it as expired.
    assert ops.post(reverse("support_operator_open", args=[grant.pk])).status_code == 404
    owner_client = HTTPSClient()
    owner_client.force_login(owner.user)
    assert "Expired" in owner_client.get(reverse("support_grants")).content.decode()
    assert len(events(company, EventAction.SUPPORT_GRANT_EXPIRED)) == 1


def test_revocation_ends_access_at_once(ops, operator, company, owner, data):
    grant = approve(ask(operator, company), owner.user)
    open_grant(ops, grant)
    assert ops.get(reverse("candidates")).status_code == 200
    owner_client = HTTPSClient()
    owner_client.force_login(owner.user)
    assert (
        f'action="{reverse("support_revoke", args=[grant.pk])}"'
        in owner_client.get(reverse("support_grants")).content.decode()
    )
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert owner_client.post(reverse("support_revoke", args=[grant.pk])).status_code == 302
    grant.refresh_from_db()
    assert grant.status == Status.REVOKED and grant.revoked_by == owner.user
    assert_all_404(ops, company_urls(data))
    assert len(events(company, EventAction.SUPPORT_GRANT_REVOKED)) == 1
    (ended,) = mail.outbox
    assert f"{owner.user} revoked it" in " ".join(ended.body.split())
    # Revoking twice is a clear message, not an error.
    assert owner_client.post(reverse("support_revoke", args=[grant.pk]), follow=True).status_code == 200
    assert len(events(company, EventAction.SUPPORT_GRANT_REVOKED)) == 1


# Deciding


def test_an_owner_approves_through_the_emailed_page_read_only_by_default(operator, company, owner):
    grant = ask(operator, company, hours=6)
    client = HTTPSClient()
    client.force_login(owner.user)
    page = client.get(reverse("support_review", args=[grant.pk]))
    assert page.status_code == 200 and REASON in page.content.decode()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("support_review", args=[grant.pk]), {"decision": "approve", "hours": 3})
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.status == Status.APPROVED and grant.scope == Scope.READ and grant.decided_by == owner.user
    assert round((grant.expires_at - grant.starts_at).total_seconds()) == 3 * 3600
    (started,) = mail.outbox
    assert "has started" in started.subject and "read-only" in started.body
    (event,) = events(company, EventAction.SUPPORT_GRANT_APPROVED)
    assert event.actor_id == owner.user.pk and event.details == {"hours": 3, "scope": "read"}


@pytest.mark.parametrize("hours", [73, 0, -1, 1000, "x"])
def test_an_approval_over_72_hours_is_refused(operator, company, owner, hours):
    grant = ask(operator, company)
    client = HTTPSClient()
    client.force_login(owner.user)
    response = client.post(reverse("support_review", args=[grant.pk]), {"decision": "approve", "hours": hours})
    assert response.status_code == 400
    grant.refresh_from_db()
    assert grant.status == Status.PENDING
    assert approve_refused_hours(grant, owner.user)


def approve_refused_hours(grant, owner_user) -> bool:
    from vouch.support import services

    try:
        services.approve(None, grant, owner_user, hours=73, scope=Scope.READ)
    except services.GrantError:
        return True
    return False


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RECRUITER, Role.VIEWER])
def test_members_other_than_owners_cannot_decide(operator, company, members, role):
    grant = ask(operator, company)
    client = HTTPSClient()
    client.force_login(members[role].user)
    review = reverse("support_review", args=[grant.pk])
    assert client.get(review).status_code == 403
    assert client.post(review, {"decision": "approve", "hours": 4, "scope": "read_write"}).status_code == 403
    assert client.get(reverse("support_grants")).status_code == 403
    grant.refresh_from_db()
    assert grant.status == Status.PENDING
    assert not events(company, EventAction.SUPPORT_GRANT_APPROVED)


def test_another_companys_owner_cannot_see_or_decide(operator, company):
    grant = ask(operator, company)
    stranger = HTTPSClient()
    stranger.force_login(make_company("Rival Ltd").memberships.get().user)
    review = reverse("support_review", args=[grant.pk])
    assert stranger.get(review).status_code == 404
    assert stranger.post(review, {"decision": "approve", "hours": 4}).status_code == 404
    assert stranger.post(reverse("support_revoke", args=[grant.pk])).status_code == 404
    grant.refresh_from_db()
    assert grant.status == Status.PENDING


def test_an_owner_declines(operator, company, owner):
    grant = ask(operator, company)
    client = HTTPSClient()
    client.force_login(owner.user)
    assert client.post(reverse("support_review", args=[grant.pk]), {"decision": "decline"}).status_code == 302
    grant.refresh_from_db()
    assert grant.status == Status.DECLINED
    assert len(events(company, EventAction.SUPPORT_GRANT_DECLINED)) == 1
    # A decided request cannot be decided again (a replayed approval).
    assert (
        client.post(reverse("support_review", args=[grant.pk]), {"decision": "approve", "hours": 4}).status_code == 400
    )
    grant.refresh_from_db()
    assert grant.status == Status.DECLINED


# The operator's own pages


def test_the_operators_pages_show_no_personal_data(ops, operator, company, owner, data):
    from tests.references.workflow import REFEREES, nominate

    nominate(company, data.request, REFEREES[0])
    approve(ask(operator, company), owner.user)
    owner.user.full_name = "Orla Owner-Name"
    owner.user.save()
    people = ["Alice Example", "alice@example.com", "Casey Candidate", "casey@example.org"]
    people += [REFEREES[0]["name"], REFEREES[0]["email"]]
    members = ["Orla Owner-Name", owner.user.email]
    for url, hidden in (
        ("/operator/", people + members),
        (reverse("support_operator"), people + members),
        (reverse("operator_events"), people),
    ):
        html = ops.get(url).content.decode()
        for value in hidden:
            assert value not in html, (url, value)
    assert company.name in ops.get(reverse("support_operator")).content.decode()


# Below the pages


def test_the_worker_records_an_ended_grant_once(operator, company, owner, later):
    from vouch.support import services

    approve(ask(operator, company), owner.user, hours=1)
    assert services.expire_due() == 0
    later.advance(hours=2)
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.expire_due() == 1
        assert services.expire_due() == 0
    assert len(events(company, EventAction.SUPPORT_GRANT_EXPIRED)) == 1
    assert [m.to for m in mail.outbox] == [[owner.user.email]]


def test_the_policy_honours_only_a_live_grant_of_this_operator_and_company(operator, company, owner):
    from vouch.accounts import policy
    from vouch.accounts.models import Membership
    from vouch.accounts.policy import Action

    other = make_company("Other Co")
    grant = approve(ask(operator, other), other.memberships.get().user)

    def as_operator(in_company, role=Role.OWNER, with_grant=grant):
        membership = Membership(user=operator, company=in_company, role=role, is_active=True)
        if with_grant is not None:
            membership.support_grant = with_grant
        return membership

    # Even a forged owner's membership of the operator (a row in the database) gives nothing.
    assert not policy.can(as_operator(company, with_grant=None), Action.VIEW_REQUESTS)
    assert not policy.can(as_operator(company), Action.VIEW_REQUESTS)  # the grant is another company's
    reading = as_operator(other)
    assert policy.can(reading, Action.VIEW_REQUESTS) and policy.can(reading, Action.VIEW_CANDIDATES)
    for action in (Action.CREATE_REQUEST, Action.MANAGE_SETTINGS, Action.MANAGE_SECURITY, Action.EXPORT_CANDIDATE_DATA):
        assert not policy.can(reading, action), action
    colleague = User.objects.create_operator("colleague@example.com")
    stolen = Membership(user=colleague, company=other, role=Role.OWNER, is_active=True)
    stolen.support_grant = grant
    assert not policy.can(stolen, Action.VIEW_REQUESTS)


def test_a_purged_company_takes_its_grants_with_it(operator, company, owner):
    from vouch.tenancy import deletion

    approve(ask(operator, company), owner.user)
    ask(operator, company)
    assert SupportGrant.objects.filter(company=company).count() == 2
    company = deletion.schedule_deletion(company, owner)
    assert deletion.delete_now(company.pk, now=company.delete_after + timedelta(seconds=1)) is not None
    assert not SupportGrant.objects.filter(company=company).exists()
