"""Every company page against every role, over HTTP (P20).

The views are found by walking the URL configuration for views wrapped by
``vouch.accounts.decorators.company_action`` (they carry ``vouch_action``), so a new
protected URL is covered without editing this file.

Pages opened by a private link (``vouch.links.decorators.link_required``: they carry
``vouch_link_purpose``) are public token routes, found the same way: no role opens
them and none is needed; only a valid token of their purpose does."""

from __future__ import annotations

import inspect
import uuid
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter

from tests.accounts.helpers import fast_member, fast_user
from tests.references.helpers import add_candidate, add_file
from tests.tenancy.test_object_urls import TOKEN_URLS, new_request, raise_flag
from vouch.accounts.models import Invitation, Membership
from vouch.accounts.policy import MINIMUM_ROLE, Action, Role
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import company_context
from vouch.links.models import Link, Purpose
from vouch.references.models import Attachment, Candidate, Questionnaire, QuestionnaireVersion
from vouch.references.questionnaires import services as questionnaires
from vouch.references.request_models import (
    BulkImport,
    Flag,
    Reference,
    ReferenceRequest,
    TimelineEvent,
    WorkflowSettings,
)

KNOWN_PROTECTED = {"dashboard", "members", "member_invite", "member_role", "member_active", "invitation_revoke"}
CANDIDATE_VIEWS = {
    "candidates": (),
    "candidate_new": (),
    "candidate_detail": (),
    "candidate_edit": (),
    "candidate_delete": ("POST",),
    "attachment_upload": ("POST",),
    "attachment_download": (),
    "attachment_delete": ("POST",),
    "questionnaires": (),
    "questionnaire_new": (),
    "questionnaire_detail": (),
    "questionnaire_edit": (),
    "questionnaire_copy": ("POST",),
    "questionnaire_archive": ("POST",),
    "questionnaire_restore": ("POST",),
}
# The reference-check workflow's member pages (references/urls.py), found by the walk
# like any other; named here so a page that loses its decorator fails the walk test.
WORKFLOW_VIEWS = {
    "requests": (Action.VIEW_REQUESTS, ()),
    "request_new": (Action.CREATE_REQUEST, ()),
    "request_bulk": (Action.CREATE_REQUEST, ()),
    "request_bulk_progress": (Action.CREATE_REQUEST, ()),
    "request_detail": (Action.VIEW_REQUESTS, ()),
    "request_cancel": (Action.CHANGE_REQUESTS, ("POST",)),
    "request_delete": (Action.CHANGE_REQUESTS, ("POST",)),
    "request_resend": (Action.CHANGE_REQUESTS, ("POST",)),
    "request_deadline": (Action.CHANGE_REQUESTS, ("POST",)),
    "flag_review": (Action.REVIEW_FLAGS, ("POST",)),
    "flag_group_review": (Action.REVIEW_FLAGS, ("POST",)),
    "referee_flags_review": (Action.REVIEW_FLAGS, ("POST",)),
    "request_report": (Action.VIEW_REPORTS, ("GET", "HEAD")),
    "request_report_pdf": (Action.VIEW_REPORTS, ("GET", "HEAD")),
    # A GET shows what will be exported or erased; only the POST (re-authenticated) acts.
    "candidate_export": (Action.EXPORT_CANDIDATE_DATA, ()),
    "candidate_erase": (Action.ERASE_CANDIDATE_DATA, ()),
    "workflow_settings": (Action.MANAGE_WORKFLOW, ()),
}


@dataclass(frozen=True)
class ProtectedView:
    name: str
    action: Action
    methods: tuple[str, ...]  # methods the view answers; () means any
    converters: tuple[tuple[str, type], ...]

    def __str__(self) -> str:
        return self.name


def _allowed_methods(view) -> tuple[str, ...]:
    """The methods a view restricts itself to with require_http_methods/require_POST, or ()."""
    methods: set[str] = set()
    func = view
    while func is not None:
        closure = inspect.getclosurevars(func).nonlocals if func.__closure__ else {}
        if "request_method_list" in closure:
            found = set(closure["request_method_list"])
            methods = found if not methods else methods & found
        func = getattr(func, "__wrapped__", None)
    return tuple(sorted(methods))


def _walk(patterns, namespace: str | None = None):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace
            full = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            yield from _walk(entry.url_patterns, full)
        elif isinstance(entry, URLPattern):
            yield entry, namespace


def protected_views() -> list[ProtectedView]:
    found: dict[str, ProtectedView] = {}
    for pattern, namespace in _walk(get_resolver().url_patterns):
        action = getattr(pattern.callback, "vouch_action", None)
        if action is None:
            continue
        assert pattern.name, f"protected view {pattern.callback} has no URL name"
        name = f"{namespace}:{pattern.name}" if namespace else pattern.name
        converters = tuple((k, type(v)) for k, v in getattr(pattern.pattern, "converters", {}).items())
        found[name] = ProtectedView(name, action, _allowed_methods(pattern.callback), converters)
    return sorted(found.values(), key=lambda v: v.name)


PROTECTED = protected_views()


def test_walk_found_the_known_views():
    names = {v.name for v in PROTECTED}
    assert names >= KNOWN_PROTECTED, KNOWN_PROTECTED - names
    by_name = {v.name: v for v in PROTECTED}
    for name in ("member_invite", "member_role", "member_active", "invitation_revoke"):
        assert by_name[name].methods == ("POST",), name
    assert by_name["dashboard"].methods == ()
    assert by_name["members"].methods == ()
    for name, methods in CANDIDATE_VIEWS.items():
        assert by_name[name].methods == methods, name
    for name, (action, methods) in WORKFLOW_VIEWS.items():
        assert (by_name[name].action, by_name[name].methods) == (action, methods), name


@pytest.fixture
def world(members, company):
    """Realistic objects for URL parameters: a member nobody in ``members`` is, a
    pending invitation, a candidate with a file, and a reference request with a
    referee and a fraud flag, all in ``company``."""
    target = fast_member(company, Role.VIEWER)
    invitation = Invitation.objects.create(
        company=company,
        email="pending@example.com",
        role=Role.VIEWER,
        token_hash="0" * 64,
        invited_by=members[Role.OWNER].user,
        expires_at="2999-01-01T00:00:00Z",
    )
    candidate = add_candidate(company)
    attachment = add_file(company, candidate)
    with company_context(company):
        questionnaire = questionnaires.create_questionnaire(
            "Matrix template", [{"id": "q1", "type": "text", "prompt": "Why?", "required": True}]
        )
    reference_request, (reference,) = new_request(company)
    flag = raise_flag(company, reference_request, reference)
    with company_context(company):
        # Started by the owner: the page shows it to them only (others get a 404).
        job = BulkImport.objects.create(created_by_id=members[Role.OWNER].user_id, rows=[], shared={}, total=0)
    return {
        "import_id": job.pk,
        "request_id": reference_request.pk,
        "flag_id": flag.pk,
        "questionnaire_id": questionnaire.pk,
        "membership_id": target.pk,
        "invitation_id": invitation.pk,
        "candidate_id": candidate.pk,
        "attachment_id": attachment.pk,
    }


def _url(view: ProtectedView, world: dict) -> str:
    kwargs = {}
    for name, converter in view.converters:
        if name in world:
            kwargs[name] = world[name]
        elif issubclass(converter, IntConverter):
            kwargs[name] = 999_999
        elif issubclass(converter, UUIDConverter):
            kwargs[name] = uuid.uuid4()
        else:
            kwargs[name] = "x"
    return reverse(view.name, kwargs=kwargs)


def _request(client, view: ProtectedView, url: str):
    method = view.methods[0] if view.methods else "GET"
    return client.generic(method, url) if method != "POST" else client.post(url, {})


def _snapshot(company):
    with company_context(company):
        candidates = sorted(Candidate.objects.values_list("pk", "name", "email", "phone", "notes"))
        attachments = sorted(Attachment.objects.values_list("pk", "candidate_id", "file"))
        templates = sorted(Questionnaire.objects.values_list("pk", "name", "description", "archived_at"))
        versions = sorted(QuestionnaireVersion.objects.values_list("pk", "number"))
        workflow = (
            sorted(ReferenceRequest.objects.values_list("pk", "status", "deadline", "closed_at", "role", "guidance")),
            sorted(Reference.objects.values_list("pk", "status", "name", "email", "answers", "decline_reason")),
            sorted(Flag.objects.values_list("pk", "reviewed_at", "review_comment")),
            sorted(BulkImport.objects.values_list("pk", "rows", "done", "finished_at")),
            TimelineEvent.objects.count(),
            list(WorkflowSettings.objects.values()),
        )
    return (
        workflow,
        sorted(Link.objects.filter(company=company).values_list("pk", "revoked_at", "expires_at")),
        templates,
        versions,
        sorted(Membership.objects.filter(company=company).values_list("pk", "role", "is_active")),
        sorted(Invitation.objects.filter(company=company).values_list("pk", "revoked_at", "accepted_at")),
        candidates,
        attachments,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name.lower())
@pytest.mark.parametrize("view", PROTECTED, ids=str)
def test_role_view_matrix(client, members, company, world, view, role):
    client.force_login(members[role].user)
    url = _url(view, world)
    before = _snapshot(company)
    response = _request(client, view, url)
    # Expected from the table, not from policy.can(), so a view that forgets to ask
    # (or a can() that answers wrongly) fails here.
    if role >= MINIMUM_ROLE[view.action]:
        assert response.status_code != 403, (view.name, role, response.status_code)
        assert response.status_code < 500
    else:
        assert response.status_code == 403, (view.name, role, response.status_code)
        # A refused request changed nothing.
        assert _snapshot(company) == before


@pytest.mark.django_db
@pytest.mark.parametrize("view", [v for v in PROTECTED if v.methods and "GET" not in v.methods], ids=str)
def test_other_methods_are_refused(client, owner, world, view):
    """POST-only views do not act on GET (no state change by a link or prefetch)."""
    client.force_login(owner.user)
    response = client.get(_url(view, world))
    assert response.status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("view", [v for v in PROTECTED if v.methods == ("GET", "HEAD")], ids=str)
def test_reading_pages_refuse_posts(client, owner, world, view):
    """A page that only reads (the report and its PDF) does nothing on a POST: no
    rendering, no stored file, no activity entry."""
    client.force_login(owner.user)
    assert client.post(_url(view, world)).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("view", PROTECTED, ids=str)
def test_anonymous_is_sent_to_login(client, company, world, view):
    url = _url(view, world)
    response = _request(client, view, url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login") + "?next=")
    # Whatever the method, an anonymous GET never gets the page either.
    if not view.methods:
        return
    response = client.get(url)
    assert response.status_code in (302, 405)
    assert response.status_code != 200


@pytest.mark.django_db
@pytest.mark.parametrize("view", PROTECTED, ids=str)
def test_signed_in_without_company_gets_no_company_page(client, world, view):
    client.force_login(fast_user())
    response = _request(client, view, _url(view, world))
    assert response.status_code == 302
    assert response["Location"] == reverse("no_company")


# --- Public token routes (private links) ----------------------------------------------

KNOWN_TOKEN_VIEWS = {
    "candidate_link": Purpose.CANDIDATE,
    "candidate_details": Purpose.CANDIDATE,
    "candidate_nominate": Purpose.CANDIDATE,
    "candidate_replace": Purpose.CANDIDATE,
    "referee_link": Purpose.REFEREE,
    "referee_confirm": Purpose.REFEREE,
    "referee_answers": Purpose.REFEREE,
    "referee_decline": Purpose.REFEREE,
}


def token_views() -> dict[str, str]:
    found = {}
    for pattern, namespace in _walk(get_resolver().url_patterns):
        purpose = getattr(pattern.callback, "vouch_link_purpose", None)
        if purpose is None:
            continue
        assert pattern.name, f"link page {pattern.callback} has no URL name"
        assert getattr(pattern.callback, "vouch_action", None) is None, f"{pattern.name}: both a member and a link page"
        found[f"{namespace}:{pattern.name}" if namespace else pattern.name] = purpose
    return found


TOKEN_VIEWS = token_views()


def test_walk_found_the_token_views_and_no_member_page_takes_a_token():
    assert KNOWN_TOKEN_VIEWS.items() <= TOKEN_VIEWS.items()
    for view in PROTECTED:
        assert "token" not in dict(view.converters), f"{view.name}: a member page must not take a token"


@pytest.mark.django_db
@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: "anonymous" if r is None else r.name.lower())
@pytest.mark.parametrize("name", sorted(TOKEN_VIEWS))
def test_token_views_answer_the_token_not_the_role(client, members, company, name, role):
    """Anyone with the link gets the page, whatever their role (or none); nobody gets
    it without a valid token, a member of the link's company included. The link names
    a real request (candidate) or referee, made by tests/tenancy's factory for it."""
    if role is not None:
        client.force_login(members[role].user)
    _purpose, make = TOKEN_URLS[name]
    kwargs = make(company)
    seq = SecurityEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    response = client.get(reverse(name, kwargs=kwargs))
    refused = SecurityEvent.objects.filter(seq__gt=seq, action=EventAction.LINK_INVALID)
    assert not refused.exists(), name  # the valid token passed link_required
    assert response.status_code in (200, 302), (name, role, response.status_code)
    token = kwargs["token"]
    wrong = kwargs | {"token": ("y" if token[0] == "x" else "x") + token[1:]}  # one character off
    assert client.get(reverse(name, kwargs=wrong)).status_code == 404
    assert refused.count() == 1
