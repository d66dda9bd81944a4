"""The IDOR matrix (P6, P20), generated from the URL configuration.

Every URL pattern that takes an argument is found by walking the whole URL
configuration, and must be classified in ONE registry below: either a company
object URL (with a factory that makes such an object in a given company) or
exempt, with the reason. A new URL that is neither fails
``test_every_url_with_an_argument_is_classified``, so nobody adds an object URL
without these attacks running against it.

For each object URL, as the strongest member of company A (an owner), for every
method it answers (and again as an htmx request):

* company B's object, named by its id, is a 404 (not 403, 200 or 500), B's object
  is unchanged, and a blocked ``authz_fail`` security event names the route;
* a guessed id (the largest id plus 1000 for integer ids; a random uuid for uuid ids)
  is a 404 too, also recorded;
* and B's ids put in the form fields of A's own endpoints change nothing in B.

Public pages opened by a private link (``/c/<token>/``, ``/r/<token>/``, wrapped by
``vouch.links.decorators.link_required``) are a third class, ``TOKEN_URLS``: the token
is the credential and names the company, so there is no company id to swap; instead a
guessed token, a token of the other purpose and another company's link are attacked
below. Arguments in an ``include()`` prefix (the token) count as the URL's arguments."""

from __future__ import annotations

import inspect
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Max
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter
from django.utils import timezone

from tests.accounts.helpers import fast_company, fast_member
from tests.references.branding_helpers import set_logo
from tests.references.helpers import pdf_bytes
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.models import Invitation, Membership, User
from vouch.accounts.policy import Role
from vouch.activity import services as activity
from vouch.activity.models import Entry
from vouch.api.keys import services as api_key_services
from vouch.api.models import ApiKey
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.core.context import company_context
from vouch.links import services as links
from vouch.links.models import Link, Purpose
from vouch.references.branding import services as branding_services
from vouch.references.candidates import services as references
from vouch.references.models import Attachment, Candidate, Questionnaire
from vouch.references.questionnaires import services as questionnaires
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import (
    BulkImport,
    Flag,
    Reference,
    ReferenceRequest,
    Severity,
    TimelineEvent,
    WorkflowSettings,
)
from vouch.references.requests import flows as request_flows
from vouch.support import services as support_services
from vouch.support.models import SupportGrant
from vouch.tenancy.models import Company
from vouch.tenancy.services import SESSION_COMPANY_KEY
from vouch.webhooks import services as webhook_services
from vouch.webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db


# --- The URLs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    route: str
    arguments: tuple[str, ...]
    converters: dict = field(hash=False, compare=False)
    callback: Callable = field(hash=False, compare=False)


def _walk_full(patterns, prefix: str = "", namespace: str | None = None, outer: tuple = ()):
    """Every pattern with its route, namespace and the patterns of the include()s
    around it (whose arguments, like a link's token, the view receives too)."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace
            full = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            yield from _walk_full(entry.url_patterns, prefix + str(entry.pattern), full, (*outer, entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry, prefix + str(entry.pattern), namespace, outer


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for entry, route, ns, _outer in _walk_full(patterns, prefix, namespace):
        yield entry, route, ns


def routes_with_arguments() -> list[Route]:
    """Every pattern that takes an argument: path converters, and regex groups too
    (allauth's keys are re_path patterns, with no converter to find them by), in the
    pattern itself or in an include() prefix around it."""
    found = []
    for pattern, route, namespace, outer in _walk_full(get_resolver().url_patterns):
        groups: tuple[str, ...] = ()
        converters: dict = {}
        for part in (*outer, pattern.pattern):
            regex = part.regex
            groups += tuple(regex.groupindex) or tuple(f"#{i}" for i in range(regex.groups))
            converters |= getattr(part, "converters", {})
        if not groups:
            continue
        name = f"{namespace}:{pattern.name}" if namespace and pattern.name else (pattern.name or "")
        found.append(Route(name, route, groups, converters, pattern.callback))
    return found


def allowed_methods(view) -> tuple[str, ...]:
    """The methods a view limits itself to (require_POST and the like), or ()."""
    methods: set[str] = set()
    func = view
    while func is not None:
        closure = inspect.getclosurevars(func).nonlocals if func.__closure__ else {}
        if "request_method_list" in closure:
            found = set(closure["request_method_list"])
            methods = found if not methods else methods & found
        func = getattr(func, "__wrapped__", None)
    return tuple(sorted(methods))


# --- Objects in a company ------------------------------------------------------------


@dataclass
class Made:
    """One object made in a company for an object URL."""

    kwargs: dict  # URL arguments naming it
    form: dict  # what the URL's own form would post for it
    snapshot: Callable[[], object]  # its state, read directly (not through the views)


def make_membership(company) -> Made:
    member = fast_member(company, Role.VIEWER)
    return Made(
        {"membership_id": member.pk},
        {f"m{member.pk}-role": str(Role.ADMIN.value), "active": "0"},
        lambda: list(Membership.objects.filter(pk=member.pk).values_list("company_id", "role", "is_active")),
    )


def make_invitation(company) -> Made:
    invitation = Invitation.objects.create(
        company=company,
        email=f"invitee-{secrets.token_hex(4)}@example.com",
        role=Role.RECRUITER,
        token_hash=secrets.token_hex(32),
        expires_at=timezone.now() + timedelta(days=7),
    )
    return Made(
        {"invitation_id": invitation.pk},
        {},
        lambda: list(
            Invitation.objects.filter(pk=invitation.pk).values_list("company_id", "revoked_at", "accepted_at")
        ),
    )


def make_entry(company) -> Made:
    with company_context(company):
        entry = activity.log(activity.Kind.ROLE_CHANGED, f"Secret of {company.name}: {secrets.token_hex(8)}")

    def snapshot():
        with company_context(company):
            return list(Entry.objects.filter(pk=entry.pk).values_list("action", "summary", "details"))

    return Made({"pk": entry.pk}, {"summary": "overwritten"}, snapshot)


def _candidate_state(company, candidate_id) -> list:
    """A candidate's stored values (ciphertext compares exactly: any rewrite shows) and
    its files, rows and stored bytes."""
    with company_context(company):
        state = list(Candidate.objects.filter(pk=candidate_id).values_list("name", "email", "phone", "notes"))
        for attachment in Attachment.objects.filter(candidate_id=candidate_id).order_by("pk"):
            path = attachment.file.storage.stored_path(attachment.file.name)
            state.append((attachment.pk, attachment.original_name, path.read_bytes() if path.exists() else None))
        return state


def _new_candidate(company):
    with company_context(company):
        candidate = references.create_candidate(
            f"Secret person of {company.name}", f"secret-{secrets.token_hex(4)}@example.com", "07700 900123"
        )
        references.add_attachment(candidate, SimpleUploadedFile("cv.pdf", pdf_bytes(1000)))
    return candidate


CANDIDATE_FORM = {"name": "Overwritten", "email": "overwritten@example.com", "confirm": "on"}


def make_candidate(company) -> Made:
    candidate = _new_candidate(company)
    return Made({"candidate_id": candidate.pk}, dict(CANDIDATE_FORM), lambda: _candidate_state(company, candidate.pk))


def make_candidate_upload(company) -> Made:
    candidate = _new_candidate(company)
    form = {"file": SimpleUploadedFile("forged.pdf", pdf_bytes(1000))}
    return Made({"candidate_id": candidate.pk}, form, lambda: _candidate_state(company, candidate.pk))


def make_attachment(company) -> Made:
    candidate = _new_candidate(company)
    with company_context(company):
        attachment = candidate.attachments.get()
    return Made(
        {"candidate_id": candidate.pk, "attachment_id": attachment.pk},
        {},
        lambda: _candidate_state(company, candidate.pk),
    )


QUESTIONNAIRE_FORM = {
    "name": "Overwritten",
    "count": "1",
    "q-0-id": "q1",
    "q-0-type": "text",
    "q-0-prompt": "Overwritten?",
    "op": "save",
}


def make_questionnaire(company) -> Made:
    with company_context(company):
        questionnaire = questionnaires.create_questionnaire(
            f"Secret template of {company.name}",
            [{"id": "q1", "type": "yes_no", "prompt": "Secret question?", "required": True}],
        )

    def snapshot():
        with company_context(company):
            rows = list(Questionnaire.objects.filter(pk=questionnaire.pk).values_list("name", "archived_at"))
            return rows + list(questionnaire.versions.values_list("number", "questions"))

    return Made({"questionnaire_id": questionnaire.pk}, dict(QUESTIONNAIRE_FORM), snapshot)


def _owner_of(company):
    return company.memberships.filter(role=Role.OWNER).order_by("pk").first().user


def _request_state(company, request_id) -> list:
    """A request's stored values, its candidate, referees, flags, timeline and links
    (ciphertext compares exactly: any rewrite shows)."""
    with company_context(company):
        reference_request = ReferenceRequest.objects.filter(pk=request_id)
        state = list(
            reference_request.values_list("status", "deadline", "closed_at", "role", "guidance", "candidate_id")
        )
        state += list(
            Candidate.objects.filter(requests__pk=request_id).values_list("pk", "name", "email", "phone", "notes")
        )
        references = Reference.objects.filter(request_id=request_id).order_by("pk")
        state += list(references.values_list("pk", "status", "name", "email", "answers", "decline_reason"))
        state += list(
            Flag.objects.filter(request_id=request_id)
            .order_by("pk")
            .values_list("pk", "reviewed_at", "reviewed_by_id", "review_comment")
        )
        state.append(TimelineEvent.objects.filter(request_id=request_id).count())
        subjects = [request_id, *references.values_list("pk", flat=True)]
    state += sorted(
        Link.objects.filter(company=company, subject_id__in=subjects).values_list("pk", "revoked_at", "expires_at")
    )
    return state


def new_request(company, *, referees: int = 1) -> tuple[ReferenceRequest, list[Reference]]:
    """A request in ``company`` made through the workflow (its owner asking), with
    ``referees`` nominated by the candidate."""
    reference_request, _token = make_request(
        company, _owner_of(company), email=f"cand-{secrets.token_hex(4)}@example.org"
    )
    made = [nominate(company, reference_request, REFEREES[i])[0] for i in range(referees)]
    return reference_request, made


def raise_flag(company, reference_request: ReferenceRequest, reference: Reference | None) -> Flag:
    """A fraud flag on the request, as the checks would raise one."""
    with company_context(company):
        flag = Flag.objects.create(
            request=reference_request,
            reference=reference,
            kind="shared_network",
            key=f"shared_network:{secrets.token_hex(4)}",
            severity=Severity.HIGH,
            explanation="The referee answered from the candidate's network.",
        )
        request_flows.refresh_status(ReferenceRequest.objects.get(pk=reference_request.pk))
    return flag


def make_request_object(company, referees: int = 1) -> Made:
    reference_request, _ = new_request(company, referees=referees)
    form = {"reason": "Overwritten", "deadline": (timezone.now() + timedelta(days=30)).date().isoformat()}
    return Made({"request_id": reference_request.pk}, form, lambda: _request_state(company, reference_request.pk))


def make_untouched_request(company) -> Made:
    """A request the candidate has not acted on yet: the only kind that can be deleted."""
    return make_request_object(company, referees=0)


def make_flag(company) -> Made:
    reference_request, (reference,) = new_request(company)
    flag = raise_flag(company, reference_request, reference)
    return Made(
        {"request_id": reference_request.pk, "flag_id": flag.pk},
        {"comment": "Overwritten"},
        lambda: _request_state(company, reference_request.pk),
    )


def make_flag_group(company) -> Made:
    """A flag reviewed in a group: the request in the URL, the flag ids in the form."""
    reference_request, (reference,) = new_request(company)
    flag = raise_flag(company, reference_request, reference)
    return Made(
        {"request_id": reference_request.pk},
        {"flag": [str(flag.pk)], "comment": "Overwritten"},
        lambda: _request_state(company, reference_request.pk),
    )


def make_referee_flags(company) -> Made:
    """Every flag of one referee, reviewed at once."""
    reference_request, (reference,) = new_request(company)
    raise_flag(company, reference_request, reference)
    return Made(
        {"request_id": reference_request.pk, "reference_id": reference.pk},
        {"comment": "Overwritten"},
        lambda: _request_state(company, reference_request.pk),
    )


def make_requested_candidate(company) -> Made:
    """A candidate with a request and a referee: what export and erase act on."""
    reference_request, _ = new_request(company)

    def snapshot():
        return _candidate_state(company, reference_request.candidate_id) + _request_state(company, reference_request.pk)

    return Made({"candidate_id": reference_request.candidate_id}, dict(CANDIDATE_FORM), snapshot)


def make_bulk_import(company) -> Made:
    """A background import of CSV rows, started by the company's owner (its progress
    page is shown only to the member who started it)."""
    with company_context(company):
        job = BulkImport.objects.create(
            created_by_id=_owner_of(company).pk,
            rows=[[2, f"Secret row of {company.name}", f"row-{secrets.token_hex(4)}@example.org", "", "Clerk"]],
            shared={"questionnaire": "builtin:general-professional"},
            total=1,
        )

    def snapshot():
        with company_context(company):
            return list(BulkImport.objects.filter(pk=job.pk).values_list("rows", "done", "created", "finished_at"))

    return Made({"import_id": job.pk}, {}, snapshot)


def make_support_grant(company) -> Made:
    """An operator's request for support access to the company (vouch.support), pending."""
    operator = User.objects.create_operator(f"ops-{secrets.token_hex(4)}@example.com")
    grant = support_services.request_grant(None, operator, company, f"Ticket of {company.name}", 4)
    return Made(
        {"grant_id": grant.pk},
        {"decision": "approve", "hours": "72", "scope": "read_write"},
        lambda: list(SupportGrant.objects.filter(pk=grant.pk).values_list("status", "scope", "expires_at")),
    )


def make_webhook_endpoint(company) -> Made:
    """A webhook endpoint with one failed delivery (what replay acts on)."""
    with company_context(company):
        endpoint = Endpoint.objects.create(
            url=f"https://hooks.example.com/{secrets.token_hex(4)}",
            event_types=["request.created"],
            secret=webhook_services.new_secret(),
        )
        delivery = Delivery.objects.create(
            endpoint=endpoint,
            event_type="request.created",
            payload={"type": "request.created"},
            created_at=timezone.now(),
            window_started_at=timezone.now(),
            status="failed",
            attempts=1,
        )

    def snapshot():
        with company_context(company):
            return list(
                Endpoint.objects.filter(pk=endpoint.pk).values_list(
                    "url", "event_types", "enabled", "secret", "previous_secret"
                )
            ) + list(Delivery.objects.filter(pk=delivery.pk).values_list("status", "next_attempt_at"))

    return Made(
        {"endpoint_id": endpoint.pk, "delivery_id": delivery.pk},
        {"url": "https://overwritten.example.com/", "event_types": ["request.cancelled"], "enabled": "0"},
        snapshot,
    )


def make_webhook_only(company) -> Made:
    made = make_webhook_endpoint(company)
    return Made({"endpoint_id": made.kwargs["endpoint_id"]}, made.form, made.snapshot)


def make_api_key(company) -> Made:
    """An API key of the company (vouch.api), made by its owner."""
    owner = company.memberships.get(role=Role.OWNER)
    with company_context(company):
        key, _ = api_key_services.create_key(None, owner, name=f"Key of {company.name}", scopes=["requests:read"])

    def snapshot():
        with company_context(company):
            return list(ApiKey.objects.filter(pk=key.pk).values_list("revoked_at", "name", "scopes"))

    return Made({"key_id": key.pk}, {}, snapshot)


def max_membership_id(a, b) -> int:
    return Membership.objects.aggregate(m=Max("pk"))["m"] or 0


def max_invitation_id(a, b) -> int:
    return Invitation.objects.aggregate(m=Max("pk"))["m"] or 0


@dataclass(frozen=True)
class ObjectURL:
    # The model a miss is recorded for; a tuple where either may be looked up first
    # (a flag is reached through its request).
    model: type | tuple[type, ...]
    make: Callable[[Company], Made]
    # For integer ids: the largest id in use, to guess just past it. None for uuid
    # ids, which are guessed with a fresh random uuid.
    max_id: Callable[[Company, Company], int] | None = None


# THE registry: every URL that takes an argument is in exactly one of these two.
OBJECT_URLS: dict[str, ObjectURL] = {
    "member_role": ObjectURL(Membership, make_membership, max_membership_id),
    "member_active": ObjectURL(Membership, make_membership, max_membership_id),
    "member_sessions_end": ObjectURL(Membership, make_membership, max_membership_id),
    "invitation_revoke": ObjectURL(Invitation, make_invitation, max_invitation_id),
    "activity_entry": ObjectURL(Entry, make_entry),
    "guard_approve_restore": ObjectURL(Membership, make_membership, max_membership_id),
    "candidate_detail": ObjectURL(Candidate, make_candidate),
    "candidate_edit": ObjectURL(Candidate, make_candidate),
    "candidate_delete": ObjectURL(Candidate, make_candidate),
    "attachment_upload": ObjectURL(Candidate, make_candidate_upload),
    "attachment_download": ObjectURL(Attachment, make_attachment),
    "attachment_delete": ObjectURL(Attachment, make_attachment),
    # Built-in templates share the detail and copy URLs (fixed uuids of their own,
    # answered before any lookup); every other id is a company lookup.
    "questionnaire_detail": ObjectURL(Questionnaire, make_questionnaire),
    "questionnaire_edit": ObjectURL(Questionnaire, make_questionnaire),
    "questionnaire_copy": ObjectURL(Questionnaire, make_questionnaire),
    "questionnaire_archive": ObjectURL(Questionnaire, make_questionnaire),
    "questionnaire_restore": ObjectURL(Questionnaire, make_questionnaire),
    # The reference-check workflow: a request is reached only through
    # requests.access.request_or_404 (which also applies "recruiters see their own").
    "request_detail": ObjectURL(ReferenceRequest, make_request_object),
    "request_cancel": ObjectURL(ReferenceRequest, make_request_object),
    "request_delete": ObjectURL(ReferenceRequest, make_untouched_request),
    "request_resend": ObjectURL(ReferenceRequest, make_request_object),
    "request_deadline": ObjectURL(ReferenceRequest, make_request_object),
    "request_report": ObjectURL(ReferenceRequest, make_request_object),
    "request_report_pdf": ObjectURL(ReferenceRequest, make_request_object),
    "flag_review": ObjectURL((ReferenceRequest, Flag), make_flag),
    "flag_group_review": ObjectURL(ReferenceRequest, make_flag_group),
    "referee_flags_review": ObjectURL((ReferenceRequest, Reference), make_referee_flags),
    "request_bulk_progress": ObjectURL(BulkImport, make_bulk_import),
    "candidate_export": ObjectURL(Candidate, make_requested_candidate),
    "candidate_erase": ObjectURL(Candidate, make_requested_candidate),
    # Support grants live in the control database: the owners' pages look them up
    # among the current company's (revoke) or the person's own companies' (review).
    "support_review": ObjectURL(SupportGrant, make_support_grant),
    "support_revoke": ObjectURL(SupportGrant, make_support_grant),
    # Webhook endpoints and their deliveries live in the company's database.
    "webhook_detail": ObjectURL(Endpoint, make_webhook_only),
    "webhook_rotate": ObjectURL(Endpoint, make_webhook_only),
    "webhook_toggle": ObjectURL(Endpoint, make_webhook_only),
    "webhook_delete": ObjectURL(Endpoint, make_webhook_only),
    "webhook_replay": ObjectURL((Endpoint, Delivery), make_webhook_endpoint),
    # API keys live in the company's database, found through the current company's context.
    "api_key_revoke": ObjectURL(ApiKey, make_api_key),
}
API_EXEMPT = (
    "the REST API takes no session (its cookies are dropped): tests/api/test_resources.py "
    "(tests/api/test_report_pdf.py and tests/webhooks/test_api.py for the PDF and the webhook endpoints) "
    "attack it with keys and another company's ids"
)
EXEMPT: dict[str, str] = {
    "invitation_open": "takes a 256-bit invitation token (only its hash is stored), not an object id",
    "account_confirm_email": "allauth: an email confirmation key (signed token), not an object id",
    "account_reset_password_from_key": "allauth: a password reset key (user id + HMAC token), not an object id",
    "outbox_message": "the embedded-default mail outbox: file names, loopback only, no company data",
    "bruteforce_unlock": "takes an emailed unlock token, not an object id",
    "guard_not_me": 'takes the emailed "this wasn\'t me" token, not an object id',
    # A person's own objects, in the control database, looked up only among
    # request.user's (not company data; a company id plays no part in them).
    "account_session_end": "one of the signed-in user's own sessions (filtered by user_id)",
    "mfa_remove_webauthn": "one of the signed-in user's own security keys (allauth's queryset is by user)",
    "account_confirm_email_throttled": "vouch.guard.verification's throttle before allauth's view: a signed key",
    # Its id sits in an include() prefix (keys/<int:pk>/), which the walk once missed.
    "mfa_edit_webauthn": "one of the signed-in user's own security keys (allauth's queryset is by user)",
    "support_operator_open": "one of the signed-in operator's own support grants (filtered by operator), if live",
    "api-v1:cancel_request": API_EXEMPT,
    "api-v1:erase_candidate": API_EXEMPT,
    "api-v1:export_candidate": API_EXEMPT,
    "api-v1:read_questionnaire": API_EXEMPT,
    "api-v1:read_report": API_EXEMPT,
    "api-v1:read_request": API_EXEMPT,
    "api-v1:resend_request": API_EXEMPT,
    "api-v1:read_report_pdf": API_EXEMPT,
    "api-v1:read_endpoint": API_EXEMPT,
    "api-v1:change_endpoint": API_EXEMPT,
    "api-v1:delete_endpoint": API_EXEMPT,
    "api-v1:rotate_secret": API_EXEMPT,
    "api-v1:list_deliveries": API_EXEMPT,
}


def candidate_link(company) -> dict:
    """A real request's candidate link (the pages show the request a link names)."""
    reference_request, token = make_request(
        company, _owner_of(company), email=f"cand-{secrets.token_hex(4)}@example.org"
    )
    return {"token": token}


def referee_link(company) -> dict:
    reference_request, _ = new_request(company, referees=0)
    _reference, token = nominate(company, reference_request, REFEREES[0])
    return {"token": token}


def candidate_replace_link(company) -> dict:
    """The candidate's link and a referee of theirs who declined (so may be replaced)."""
    reference_request, token = make_request(
        company, _owner_of(company), email=f"cand-{secrets.token_hex(4)}@example.org"
    )
    reference, _ = nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        referee_flows.decline(Reference.objects.get(pk=reference.pk), "I have not worked with them.")
    return {"token": token, "reference_id": reference.pk}


def _with_logo(make_link: Callable[[Company], dict]) -> Callable[[Company], dict]:
    """A link of the company, which has a logo (what the link's logo address serves)."""

    def make(company) -> dict:
        set_logo(company, company.memberships.get(role=Role.OWNER))
        return make_link(company)

    return make


# Public pages of a private link: the purpose their token must have, and a factory
# making a real request or referee in a given company, whose link opens the page (the
# URL arguments).
TOKEN_URLS: dict[str, tuple[str, Callable[[Company], dict]]] = {
    "candidate_link": (Purpose.CANDIDATE, candidate_link),
    "candidate_details": (Purpose.CANDIDATE, candidate_link),
    "candidate_nominate": (Purpose.CANDIDATE, candidate_link),
    # Its reference id is looked up only among the link's own request's referees
    # (tests/references/test_workflow_attacks.py attacks it with others').
    "candidate_replace": (Purpose.CANDIDATE, candidate_replace_link),
    "referee_link": (Purpose.REFEREE, referee_link),
    "referee_confirm": (Purpose.REFEREE, referee_link),
    "referee_answers": (Purpose.REFEREE, referee_link),
    "referee_decline": (Purpose.REFEREE, referee_link),
    # The company's logo (tests/references/test_branding.py asks for another company's).
    "candidate_logo": (Purpose.CANDIDATE, _with_logo(candidate_link)),
    "referee_logo": (Purpose.REFEREE, _with_logo(referee_link)),
}

ROUTES = {route.name: route for route in routes_with_arguments()}
OBJECT_ROUTES = [ROUTES[name] for name in sorted(OBJECT_URLS) if name in ROUTES]


def test_every_url_with_an_argument_is_classified():
    unnamed = [route.route for route in ROUTES.values() if not route.name]
    assert not unnamed, f"URL patterns with arguments but no name (cannot be classified): {unnamed}"
    unclassified = sorted(set(ROUTES) - set(OBJECT_URLS) - set(EXEMPT) - set(TOKEN_URLS))
    assert not unclassified, (
        f"URLs {unclassified} take arguments but are not classified in {__file__}: add each to "
        "OBJECT_URLS (with a factory that makes its object in a given company), to TOKEN_URLS (a page "
        "opened by a private link) or to EXEMPT with a reason."
    )
    both = (set(OBJECT_URLS) & set(EXEMPT)) | (set(TOKEN_URLS) & (set(OBJECT_URLS) | set(EXEMPT)))
    assert not both, f"classified twice: {both}"
    stale = sorted((set(OBJECT_URLS) | set(EXEMPT) | set(TOKEN_URLS)) - set(ROUTES))
    assert not stale, f"registry entries for URLs that no longer exist (or take no argument): {stale}"


def test_the_walk_finds_arguments_of_both_pattern_kinds():
    """Control for the walk: converters (path) and regex groups (re_path) are both seen."""
    assert ROUTES["activity_entry"].arguments == ("pk",)
    assert ROUTES["member_role"].route == "members/<int:membership_id>/role/"
    assert set(ROUTES["account_reset_password_from_key"].arguments) == {"uidb36", "key"}
    assert len(OBJECT_ROUTES) == len(OBJECT_URLS)
    # An argument of an include() prefix is seen too: the link's token.
    assert ROUTES["candidate_link"].arguments == ("token",)
    assert ROUTES["referee_link"].route == "r/<str:token>/"
    assert ROUTES["candidate_replace"].arguments == ("token", "reference_id")
    assert ROUTES["flag_review"].arguments == ("request_id", "flag_id")


# --- The attacks ---------------------------------------------------------------------


def requests_for(route: Route, form: dict) -> list[tuple[str, dict, dict]]:
    """(method, data, headers) for every way the URL is asked: each method it answers,
    each also as an htmx request; POST with the URL's own form, forged."""
    methods = allowed_methods(route.callback) or ("GET", "POST")
    variants = []
    for method in methods:
        if method == "HEAD":
            continue
        data = dict(form) if method == "POST" else {}
        for headers in ({}, {"HX-Request": "true"}):
            variants.append((method, data, headers))
    return variants


def send(client, method: str, url: str, data: dict, headers: dict):
    if method == "POST":
        return client.post(url, data, headers=headers)
    return client.generic(method, url, headers=headers)


def refusals(company, route_name: str, after_seq: int) -> list[SecurityEvent]:
    return list(
        SecurityEvent.objects.filter(
            seq__gt=after_seq,
            action=EventAction.AUTHZ_FAIL,
            outcome=Outcome.BLOCKED,
            company_id=company.pk,
            target=f"route:{route_name}",
        )
    )


def last_seq() -> int:
    return SecurityEvent.objects.aggregate(m=Max("seq"))["m"] or 0


def url_for(route: Route, kwargs: dict) -> str:
    return reverse(route.name, kwargs=kwargs)


def guessed_kwargs(route: Route, max_id: Callable[[], int] | None) -> dict:
    kwargs = {}
    for name, converter in route.converters.items():
        if isinstance(converter, UUIDConverter):
            kwargs[name] = uuid.uuid4()
        elif isinstance(converter, IntConverter):
            assert max_id is not None, f"{route.name}: an integer id needs max_id in OBJECT_URLS"
            kwargs[name] = max_id() + 1000
        else:  # pragma: no cover - an object URL with a free-text id needs its own guess
            raise AssertionError(f"{route.name}: no guess for a {type(converter).__name__} argument")
    return kwargs


@pytest.fixture
def two_companies(db):
    """Company A with its owner signed in (the strongest role), and company B."""
    a = fast_company("Alpha Hiring")
    b = fast_company("Bravo Corp")
    fast_member(b, Role.ADMIN)
    owner_a = a.memberships.select_related("user").get(role=Role.OWNER)
    return a, b, owner_a


def model_labels(spec: ObjectURL) -> set[str]:
    models = spec.model if isinstance(spec.model, tuple) else (spec.model,)
    return {model._meta.label for model in models}


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=lambda r: r.name)
def test_another_companys_object_is_404_unchanged_and_recorded(client, two_companies, route):
    a, b, owner_a = two_companies
    spec = OBJECT_URLS[route.name]
    theirs = spec.make(b)
    before = theirs.snapshot()
    assert before, "the factory made nothing to attack"
    client.force_login(owner_a.user)
    url = url_for(route, theirs.kwargs)
    for method, data, headers in requests_for(route, theirs.form):
        seq = last_seq()
        response = send(client, method, url, data, headers)
        assert response.status_code == 404, (route.name, method, headers, response.status_code)
        assert theirs.snapshot() == before, (route.name, method, headers)
        events = refusals(a, route.name, seq)
        assert len(events) == 1, (route.name, method, headers, events)
        assert events[0].details["object"] in model_labels(spec), (route.name, events[0].details)
        assert events[0].actor_id == owner_a.user_id
        # The 404 page says nothing of B.
        assert b"Bravo" not in response.content
    assert client.session[SESSION_COMPANY_KEY] == str(a.pk)


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=lambda r: r.name)
def test_guessed_ids_are_404_and_recorded(client, two_companies, route):
    a, b, owner_a = two_companies
    spec = OBJECT_URLS[route.name]
    spec.make(a)
    spec.make(b)
    client.force_login(owner_a.user)
    url = url_for(route, guessed_kwargs(route, spec.max_id and (lambda: spec.max_id(a, b))))
    for method, data, headers in requests_for(route, {}):
        seq = last_seq()
        response = send(client, method, url, data, headers)
        assert response.status_code == 404, (route.name, method, headers, response.status_code)
        assert len(refusals(a, route.name, seq)) == 1, (route.name, method, headers)


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=lambda r: r.name)
def test_control_own_object_is_reachable(client, two_companies, route):
    """Control for the attacks above: the same request for A's own object is not a 404,
    and records no refusal (so a 404 there means "not yours", not "broken URL")."""
    a, b, owner_a = two_companies
    ours = OBJECT_URLS[route.name].make(a)
    client.force_login(owner_a.user)
    method, data, headers = requests_for(route, ours.form)[0]
    seq = last_seq()
    response = send(client, method, url_for(route, ours.kwargs), data, headers)
    assert response.status_code in (200, 302), (route.name, response.status_code)
    assert not refusals(a, route.name, seq)


def test_same_id_in_two_company_databases_shows_only_ones_own(client, two_companies):
    """Company databases are separate, so nothing stops B's entry and A's entry sharing
    an id (entry ids are random uuids: made to collide here, as a copied or restored
    row could): A asking for that id gets A's entry, never B's."""
    a, b, owner_a = two_companies
    shared = uuid.uuid4()
    with company_context(a):
        ours = Entry.objects.create(id=shared, action=activity.Kind.ROLE_CHANGED, summary="Alpha's own entry")
    with company_context(b):
        theirs = Entry.objects.create(id=shared, action=activity.Kind.ROLE_CHANGED, summary="Bravo's private entry")
    assert ours.pk == theirs.pk  # the collision is the point of the test
    client.force_login(owner_a.user)
    response = client.get(reverse("activity_entry", args=[ours.pk]))
    assert response.status_code == 200
    assert b"Alpha&#x27;s own entry" in response.content
    assert b"Bravo" not in response.content
    listing = client.get(reverse("activity"))
    assert b"Alpha&#x27;s own entry" in listing.content
    assert b"Bravo" not in listing.content


# --- Pages opened by a private link ---------------------------------------------------

TOKEN_ROUTES = [ROUTES[name] for name in sorted(TOKEN_URLS) if name in ROUTES]


def test_token_urls_are_exactly_the_link_required_views():
    """A page taking a token is public only through link_required, with the purpose
    registered here; and every link_required view is registered (so attacked below)."""
    by_purpose = {
        route.name: getattr(route.callback, "vouch_link_purpose", None)
        for route in ROUTES.values()
        if getattr(route.callback, "vouch_link_purpose", None)
    }
    assert by_purpose == {name: purpose for name, (purpose, _make) in TOKEN_URLS.items()}
    for route in TOKEN_ROUTES:
        assert "token" in route.arguments, route.name
        assert getattr(route.callback, "vouch_action", None) is None, "a link page is not a member page"


def link_refusals(after_seq: int) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(seq__gt=after_seq, action=EventAction.LINK_INVALID))


@pytest.mark.parametrize("route", TOKEN_ROUTES, ids=lambda r: r.name)
def test_token_url_attacks(client, two_companies, route):
    """Signed in as A's owner (membership gives nothing here): a guessed token and a
    real token of the other purpose are the neutral 404 and recorded, and the session
    stays in A; B's own link opens B's page only (the token, not the session, decides)."""
    a, b, owner_a = two_companies
    purpose, make = TOKEN_URLS[route.name]
    other = Purpose.REFEREE if purpose == Purpose.CANDIDATE else Purpose.CANDIDATE
    theirs = make(b)
    client.force_login(owner_a.user)
    guessed = theirs | {"token": secrets.token_urlsafe(32)}
    wrong_purpose = theirs | {"token": links.issue(b, other, uuid.uuid4(), timezone.now() + timedelta(days=7))}
    for n, kwargs in enumerate((guessed, wrong_purpose)):
        for m, (method, data, headers) in enumerate(requests_for(route, {})):
            # Each from a network of its own: refused links are sampled per network.
            client.defaults["REMOTE_ADDR"] = f"10.77.{n * 16 + m}.1"
            seq = last_seq()
            response = send(client, method, url_for(route, kwargs), data, headers)
            assert response.status_code == 404, (route.name, method, headers, response.status_code)
            assert b"Bravo" not in response.content and b"Alpha" not in response.content
            assert len(link_refusals(seq)) == 1, (route.name, method, headers)
    client.defaults.pop("REMOTE_ADDR", None)
    seq = last_seq()
    response = client.get(url_for(route, theirs))
    assert not link_refusals(seq), route.name  # the valid link passed link_required
    assert client.session[SESSION_COMPANY_KEY] == str(a.pk)
    assert response.status_code in (200, 302), (route.name, response.status_code)
    if response.status_code == 302:
        # A page that sends the visitor on (say, to confirm first) keeps them under their link.
        assert response["Location"].startswith(url_for(ROUTES[_home(purpose)], {"token": theirs["token"]}))
    elif response["Content-Type"] == "image/png":  # the logo: B's own
        with company_context(b):
            assert response.content == branding_services.logo_png()
    else:
        assert b"Bravo Corp" in response.content and b"Alpha" not in response.content
    assert Link.objects.get(token_hash=links.hash_token(theirs["token"])).company_id == b.pk


def _home(purpose: str) -> str:
    return "candidate_link" if purpose == Purpose.CANDIDATE else "referee_link"


# --- Forged form fields --------------------------------------------------------------


def b_state(b) -> tuple:
    """Everything of B's that A's endpoints could be tricked into changing."""
    company = Company.objects.filter(pk=b.pk).values().get()
    memberships = sorted(Membership.objects.filter(company=b).values_list("pk", "user_id", "role", "is_active"))
    invitations = sorted(
        Invitation.objects.filter(company=b).values_list("pk", "email", "role", "revoked_at", "accepted_at")
    )
    with company_context(b):
        entries = sorted(Entry.objects.values_list("pk", "action", "summary"))
        candidates = sorted(Candidate.objects.values_list("pk", "name", "email", "phone", "notes"))
        attachments = sorted(Attachment.objects.values_list("pk", "candidate_id", "original_name", "file"))
        templates = sorted(Questionnaire.objects.values_list("pk", "name", "archived_at"))
        reference_requests = sorted(
            ReferenceRequest.objects.values_list("pk", "status", "deadline", "role", "closed_at")
        )
        references = sorted(Reference.objects.values_list("pk", "status", "name", "answers", "decline_reason"))
        flags = sorted(Flag.objects.values_list("pk", "reviewed_at", "review_comment"))
        imports = sorted(BulkImport.objects.values_list("pk", "rows", "done", "finished_at"))
        timeline = TimelineEvent.objects.count()
        settings = list(WorkflowSettings.objects.values())
    b_links = sorted(Link.objects.filter(company=b).values_list("pk", "revoked_at", "expires_at"))
    return (
        company,
        memberships,
        invitations,
        entries,
        candidates,
        attachments,
        templates,
        reference_requests,
        references,
        flags,
        imports,
        timeline,
        settings,
        b_links,
    )


def forged_fields(
    b, b_member: Membership, b_invitation: Invitation, b_entry: Entry, b_attachment: Attachment, b_flag: Flag
) -> dict:
    """B's ids in every field name an endpoint might be tempted to read an id from."""
    return {
        "request": str(b_flag.request_id),
        "request_id": str(b_flag.request_id),
        "reference": str(b_flag.reference_id),
        "reference_id": str(b_flag.reference_id),
        "flag": str(b_flag.pk),
        "flag_id": str(b_flag.pk),
        "requests": str(b_flag.request_id),
        "comment": "Hijacked",
        "reason": "Hijacked",
        "company": str(b.pk),
        "company_id": str(b.pk),
        "membership": str(b_member.pk),
        "membership_id": str(b_member.pk),
        "member": str(b_member.pk),
        "user": str(b_member.user_id),
        "user_id": str(b_member.user_id),
        "invitation": str(b_invitation.pk),
        "invitation_id": str(b_invitation.pk),
        "pk": str(b_member.pk),
        "id": str(b_member.pk),
        "entry": str(b_entry.pk),
        "candidate": str(b_attachment.candidate_id),
        "candidate_id": str(b_attachment.candidate_id),
        "attachment": str(b_attachment.pk),
        "attachment_id": str(b_attachment.pk),
        "region": "us",
        "name": "Hijacked",
        "email": "attacker@example.com",
        "role": str(Role.OWNER.value),
        f"m{b_member.pk}-role": str(Role.OWNER.value),
        "active": "0",
    }


def post_endpoints() -> list[Route]:
    """Every company page (company_action views) plus the company switch, POSTed to."""
    found = {}
    for pattern, route, _namespace in _walk(get_resolver().url_patterns):
        callback = pattern.callback
        if getattr(callback, "vouch_action", None) is None and pattern.name != "company_switch":
            continue
        methods = allowed_methods(callback)
        if methods and "POST" not in methods:
            continue
        converters = getattr(pattern.pattern, "converters", {})
        found[pattern.name] = Route(pattern.name, route, tuple(converters), converters, callback)
    return [found[name] for name in sorted(found)]


POST_ENDPOINTS = post_endpoints()


def test_forged_form_walk_found_the_endpoints_that_take_ids():
    names = {route.name for route in POST_ENDPOINTS}
    assert {"member_role", "member_active", "invitation_revoke", "member_invite", "company_switch"} <= names
    assert {"request_new", "request_bulk", "request_cancel", "flag_review", "workflow_settings"} <= names


@pytest.mark.parametrize("route", POST_ENDPOINTS, ids=lambda r: r.name)
def test_bs_ids_in_form_fields_change_nothing_in_b(client, two_companies, route):
    a, b, owner_a = two_companies
    b_member = fast_member(b, Role.VIEWER)
    b_invitation = Invitation.objects.create(
        company=b,
        email="bravo-invitee@example.com",
        role=Role.RECRUITER,
        token_hash=secrets.token_hex(32),
        expires_at=timezone.now() + timedelta(days=7),
    )
    with company_context(b):
        b_entry = activity.log(activity.Kind.ROLE_CHANGED, "Bravo's entry")
        b_attachment = _new_candidate(b).attachments.get()
    b_request, (b_reference,) = new_request(b)
    b_flag = raise_flag(b, b_request, b_reference)
    kwargs = {}
    own_form = {}
    if route.name in OBJECT_URLS:
        # A's own object in the URL, B's ids in the body.
        ours = OBJECT_URLS[route.name].make(a)
        kwargs, own_form = ours.kwargs, ours.form
    client.force_login(owner_a.user)
    before = b_state(b)
    body = forged_fields(b, b_member, b_invitation, b_entry, b_attachment, b_flag) | own_form
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(reverse(route.name, kwargs=kwargs), body, headers=headers)
        assert response.status_code < 500, (route.name, response.status_code)
        assert b_state(b) == before, route.name
        # Still working in A: B's id in a body never moves the session into B.
        assert client.session[SESSION_COMPANY_KEY] == str(a.pk)
    if route.name == "company_switch":
        assert response.status_code == 404
