"""The workflow's emails: invitations with private links, reminders, and the notices
sent when a reference is completed or declined.

Each function takes ids, not objects, because it runs after the transaction commits
or in a background task: it enters the company's context itself and reads the current
state, so an email never describes something that was rolled back. A failure to send
is logged and reported as False, never raised: the change it announces has happened.
A mail that carries a private link and cannot be sent is also put on the request's
timeline, where the recruiter sees it (``_record_failure``): otherwise a candidate or
referee would simply never hear, and nobody would know.

A link's raw token exists only in the email it is sent in, so a reminder carries a
fresh link of its own (issued by ``jobs``); the earlier links keep working.

The workflow does not call these functions itself: it records the mail in its own
transaction (``references.outgoing``), whose sender calls them once the change has
committed, and again later if sending failed. The sender sets the message's identity
(``delivery``): the same mail sent twice carries the same Message-ID, and the local
outbox keeps it once."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import uuid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from vouch.accounts import user_service
from vouch.core.context import company_context
from vouch.core.text import one_line
from vouch.links import services as links
from vouch.links.models import Purpose
from vouch.outbox.backends import ONCE_HEADER, company_headers
from vouch.references.branding import mail as branding_mail
from vouch.references.flows import note
from vouch.references.models import Reference, ReferenceRequest
from vouch.references.request_models import ACTIVE_REFERENCE_STATUSES, Flag, Notice, NoticeEvent
from vouch.tenancy.company_row import company_by_id
from vouch.tenancy.models import Company

log = logging.getLogger("vouch.references")


def _company(company_id):
    company = company_by_id(company_id)
    if company is None:
        raise Company.DoesNotExist(f"no company {company_id}")
    return company


def link_url(purpose: str, token: str) -> str:
    name = "candidate_link" if purpose == "candidate" else "referee_link"
    return f"{settings.PUBLIC_URL}{reverse(name, kwargs={'token': token})}"


# Context values that can reach the subject line. The forms refuse line breaks in
# them; text saved before that rule held is made one line here, so the subject stays
# whole and the header valid.
_ONE_LINE_KEYS = ("company_name", "candidate_name", "referee_name", "role", "subject")


# (Message-ID, outbox name) of the mail being sent by ``references.outgoing``, and
# whether a failure goes on the timeline (the first attempt's only).
_delivery: contextvars.ContextVar[tuple[str, str, bool] | None] = contextvars.ContextVar("delivery", default=None)


@contextlib.contextmanager
def delivery(message_id: str, once: str, *, report_failure: bool):
    """Send the mail inside with this Message-ID and outbox name (the same on every
    attempt), putting a failure on the request's timeline only if ``report_failure``."""
    reset = _delivery.set((message_id, once, report_failure))
    try:
        yield
    finally:
        _delivery.reset(reset)


def _report_failures() -> bool:
    current = _delivery.get()
    return current is None or current[2]


def send(template: str, to: list[str], context: dict, *, company_id=None, branded: bool = False) -> bool:
    """Render ``references/email/<template>.txt`` and ``.html`` (the first line of the
    text is the subject) and send it. ``company_id`` marks it as that company's mail
    (the local outbox removes it when the company is purged). ``branded``: a mail to
    the company's candidate or referee, sent as "<Company> via Vouch" with the
    company's logo and colour (``branding.mail``; in the company's context)."""
    recipients = [address for address in to if address]
    if not recipients:
        return False
    context = {**context, **{key: one_line(str(context[key])) for key in _ONE_LINE_KEYS if key in context}}
    try:
        text = render_to_string(f"references/email/{template}.txt", context)
        html = render_to_string(f"references/email/{template}.html", context)
        subject, _, body = text.partition("\n")
        headers = company_headers(company_id)
        identity = _delivery.get()
        if identity is not None:
            headers.update({"Message-ID": identity[0], ONCE_HEADER: identity[1]})
        brand = branding_mail.brand_for_mail(_company(company_id)) if branded and company_id else None
        message = EmailMultiAlternatives(
            f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject.strip()}",
            body.lstrip("\n"),
            branding_mail.sender_of(brand, settings.DEFAULT_FROM_EMAIL),
            recipients,
            headers=headers,
        )
        message.attach_alternative(branding_mail.wrap_html(brand, html), "text/html")
        branding_mail.attach_logo(message, brand)
        message.send()
    except Exception:  # noqa: BLE001 - see the module docstring
        log.exception("references: could not send the %s email", template)
        return False
    return True


def _record_failure(reference_request, what: str, *, reference=None) -> None:
    """Put an email that could not be sent on the request's timeline (the recruiter
    sees it there). Called inside the company's context."""
    if not _report_failures():
        return
    try:
        note(reference_request, "email_failed", f"{what} could not be sent; check the address.", reference=reference)
    except Exception:  # noqa: BLE001 - the log already has the failure
        log.exception("references: could not record a failed email on request %s", reference_request.pk)


def _request_context(company, reference_request) -> dict:
    return {
        "company_name": company.name,
        "candidate_name": reference_request.candidate.name,
        "role": reference_request.role,
        "deadline": reference_request.deadline,
        "guidance": reference_request.guidance,
    }


def candidate_invitation(company_id, request_id: uuid.UUID, token: str, *, reminder: int = 0) -> bool:
    company = _company(company_id)
    with company_context(company):
        reference_request = ReferenceRequest.objects.select_related("candidate").get(pk=request_id)
        context = {
            **_request_context(company, reference_request),
            "url": link_url("candidate", token),
            "reminder": reminder,
            "referees_required": reference_request.referees_required,
        }
        sent = send(
            "candidate_invitation", [reference_request.candidate.email], context, company_id=company.pk, branded=True
        )
        if not sent and reference_request.candidate.email:
            what = "The reminder to the candidate" if reminder else "The email with the candidate's link"
            _record_failure(reference_request, f"{what} (to {reference_request.candidate.email})")
        return sent


def referee_invitation(company_id, reference_id: uuid.UUID, token: str, *, reminder: int = 0) -> bool:
    company = _company(company_id)
    with company_context(company):
        reference = Reference.objects.select_related("request__candidate").get(pk=reference_id)
        context = {
            **_request_context(company, reference.request),
            "referee_name": reference.name,
            "url": link_url("referee", token),
            "reminder": reminder,
        }
        sent = send("referee_invitation", [reference.email], context, company_id=company.pk, branded=True)
        if not sent and reference.email:
            what = "The reminder with a link" if reminder else "The email with the private link"
            _record_failure(
                reference.request,
                f"{what} for the referee {one_line(reference.name)} (to {reference.email})",
                reference=reference,
            )
        return sent


def _completed_context(company, reference) -> dict:
    reference_request = reference.request
    return {
        **_request_context(company, reference_request),
        "referee_name": reference.name,
        "completed": reference_request.references_completed,
        "referees_required": reference_request.referees_required,
        "request_url": f"{settings.PUBLIC_URL}{reverse('request_detail', kwargs={'request_id': reference_request.pk})}",
    }


def reference_completed_recruiter(company_id, reference_id: uuid.UUID) -> bool:
    """The request's recruiter hears that a reference is in."""
    company = _company(company_id)
    with company_context(company):
        reference = Reference.objects.select_related("request__candidate").get(pk=reference_id)
        recruiters = user_service.active_emails([reference.request.created_by_id])
        if not recruiters:
            return True  # nobody to tell (the recruiter left): nothing to try again
        context = _completed_context(company, reference)
        return send("reference_completed_recruiter", recruiters, context, company_id=company.pk)


def reference_completed_candidate(company_id, reference_id: uuid.UUID) -> bool:
    """The candidate hears that a reference is in (not what it says)."""
    company = _company(company_id)
    with company_context(company):
        reference = Reference.objects.select_related("request__candidate").get(pk=reference_id)
        context = _completed_context(company, reference)
        return send(
            "reference_completed_candidate",
            [reference.request.candidate.email],
            context,
            company_id=company.pk,
            branded=True,
        )


def reference_completed(company_id, reference_id: uuid.UUID) -> bool:
    """Both notices of a completed reference (the workflow records them as two mails,
    so a failure of one never sends the other twice)."""
    to_recruiter = reference_completed_recruiter(company_id, reference_id)
    return reference_completed_candidate(company_id, reference_id) and to_recruiter


def reference_declined(company_id, reference_id: uuid.UUID, token: str = "") -> bool:
    """The candidate is told a referee declined, with a link to nominate someone else.
    The link is an additional one: the candidate's earlier link keeps working (the
    workflow issues it with the decline; one is issued here when none is given)."""
    company = _company(company_id)
    with company_context(company):
        reference = Reference.objects.select_related("request__candidate").get(pk=reference_id)
        reference_request = reference.request
        if not reference_request.is_open:
            return True  # nothing to ask any more: not a failure to try again
        token = token or links.issue(company, Purpose.CANDIDATE, reference_request.pk, reference_request.deadline)
        context = {
            **_request_context(company, reference_request),
            "referee_name": reference.name,
            "url": link_url("candidate", token),
        }
        sent = send(
            "reference_declined_candidate",
            [reference_request.candidate.email],
            context,
            company_id=company.pk,
            branded=True,
        )
        if not sent and reference_request.candidate.email:
            _record_failure(
                reference_request,
                f"The email asking the candidate (to {reference_request.candidate.email}) to replace "
                f"{one_line(reference.name)}, with a new link,",
                reference=reference,
            )
        return sent


def candidate_reminder(company_id, request_id: uuid.UUID, token: str, number: int) -> bool:
    """The candidate has not nominated every referee yet: say how many are still
    missing, with a fresh link."""
    company = _company(company_id)
    with company_context(company):
        reference_request = ReferenceRequest.objects.select_related("candidate").get(pk=request_id)
        nominated = reference_request.references.filter(status__in=ACTIVE_REFERENCE_STATUSES).count()
        context = {
            **_request_context(company, reference_request),
            "url": link_url("candidate", token),
            "reminder": number,
            "referees_required": reference_request.referees_required,
            "nominated": nominated,
            "missing": max(0, reference_request.referees_required - nominated),
        }
        sent = send(
            "candidate_reminder", [reference_request.candidate.email], context, company_id=company.pk, branded=True
        )
        if not sent and reference_request.candidate.email:
            _record_failure(
                reference_request, f"Reminder {number} to the candidate (to {reference_request.candidate.email})"
            )
        return sent


def referee_reminder(company_id, reference_id: uuid.UUID, token: str, number: int) -> bool:
    """The referee has not answered yet: a reminder with a fresh link; anything they
    already saved is still there."""
    company = _company(company_id)
    with company_context(company):
        reference = Reference.objects.select_related("request__candidate").get(pk=reference_id)
        context = {
            **_request_context(company, reference.request),
            "referee_name": reference.name,
            "url": link_url("referee", token),
            "reminder": number,
            "started": reference.started_at is not None,
        }
        sent = send("referee_reminder", [reference.email], context, company_id=company.pk, branded=True)
        if not sent and reference.email:
            _record_failure(
                reference.request,
                f"Reminder {number} to the referee {one_line(reference.name)} (to {reference.email})",
                reference=reference,
            )
        return sent


# --- notices to the request's recruiter (references.desk.notices) -------------------


def _request_url(reference_request) -> str:
    return f"{settings.PUBLIC_URL}{reverse('request_detail', kwargs={'request_id': reference_request.pk})}"


def notice_line(event: str, reference_request, reference=None, flag=None) -> str:
    """One sentence saying what happened (plain text: the templates escape it). Names
    and the role only, which the recruiter sees on the request's page."""
    # Imported here: the fraud checks send notices, which reach this module.
    from vouch.references.fraud.checks import title_of

    candidate = one_line(reference_request.candidate.name)
    role = one_line(reference_request.role)
    referee = one_line(reference.name) if reference is not None else ""
    done, required = reference_request.references_completed, reference_request.referees_required
    if event == NoticeEvent.REFERENCE_COMPLETED:
        return f"{referee} submitted a reference for {candidate} ({role}): {done} of {required} in."
    if event == NoticeEvent.REFERENCE_DECLINED:
        return (
            f"{referee} declined to give a reference for {candidate} ({role}); "
            "the candidate is asked to nominate someone else."
        )
    if event == NoticeEvent.HIGH_FLAG:
        about = f" on {referee}" if referee else ""
        kind = title_of(flag.kind) if flag is not None else "a fraud signal"
        return (
            f"A high fraud signal was raised{about} for {candidate} ({role}): {kind}. "
            "Further high signals on this request are not emailed until its open ones are reviewed."
        )
    if event == NoticeEvent.REQUEST_COMPLETED:
        return f"All references for {candidate} ({role}) are in: the report is ready."
    if event == NoticeEvent.REQUEST_EXPIRED:
        return f"The request for {candidate} ({role}) expired at its deadline with {done} of {required} references in."
    return f"The request for {candidate} ({role}) changed."


def notice_subject(event: str, reference_request, reference=None) -> str:
    """The notice's subject line: what happened, and to whose request."""
    candidate = one_line(reference_request.candidate.name)
    subjects = {
        NoticeEvent.REFERENCE_COMPLETED: f"Reference in for {candidate}",
        NoticeEvent.REFERENCE_DECLINED: f"A referee declined: {candidate}",
        NoticeEvent.HIGH_FLAG: f"High fraud signal: {candidate}",
        NoticeEvent.REQUEST_COMPLETED: f"All references in: {candidate}",
        NoticeEvent.REQUEST_EXPIRED: f"Request expired: {candidate}",
    }
    return subjects.get(NoticeEvent(event), f"Update: {candidate}")


def _notice(company_id, event: str, reference_request, *, reference=None, flag=None) -> bool:
    """Mail one notice to the request's recruiter (in the company's context)."""
    company = _company(company_id)
    to = user_service.member_email(company.pk, reference_request.created_by_id)
    if not to:
        return True  # the recruiter left: nobody to tell, nothing to try again
    context = {
        "company_name": company.name,
        "subject": notice_subject(event, reference_request, reference),
        "line": notice_line(event, reference_request, reference, flag),
        "request_url": _request_url(reference_request),
        "preferences_url": f"{settings.PUBLIC_URL}{reverse('notice_preferences')}",
    }
    return send("recruiter_notice", [to], context, company_id=company.pk)


def notice_reference_declined(company_id, reference_id: uuid.UUID) -> bool:
    with company_context(_company(company_id)):
        reference = Reference.objects.select_related("request__candidate").get(pk=reference_id)
        return _notice(company_id, NoticeEvent.REFERENCE_DECLINED, reference.request, reference=reference)


def notice_high_flag(company_id, flag_id: uuid.UUID) -> bool:
    with company_context(_company(company_id)):
        flag = Flag.objects.select_related("request__candidate", "reference").get(pk=flag_id)
        return _notice(company_id, NoticeEvent.HIGH_FLAG, flag.request, reference=flag.reference, flag=flag)


def notice_request_completed(company_id, request_id: uuid.UUID) -> bool:
    with company_context(_company(company_id)):
        reference_request = ReferenceRequest.objects.select_related("candidate").get(pk=request_id)
        return _notice(company_id, NoticeEvent.REQUEST_COMPLETED, reference_request)


def notice_request_expired(company_id, request_id: uuid.UUID) -> bool:
    with company_context(_company(company_id)):
        reference_request = ReferenceRequest.objects.select_related("candidate").get(pk=request_id)
        return _notice(company_id, NoticeEvent.REQUEST_EXPIRED, reference_request)


def notice_digest(company_id, batch: uuid.UUID) -> bool:
    """One member's waiting notices in one mail, oldest first."""
    company = _company(company_id)
    with company_context(company):
        notices = list(
            Notice.objects.filter(batch=batch)
            .select_related("request__candidate", "reference", "flag")
            .order_by("created_at", "id")
        )
        if not notices:
            return True  # their requests were deleted meanwhile
        to = user_service.member_email(company.pk, notices[0].user_id)
        if not to:
            return True
        items = [
            {
                "line": notice_line(n.event, n.request, n.reference, n.flag),
                "request_url": _request_url(n.request),
            }
            for n in notices
        ]
        context = {
            "company_name": company.name,
            "items": items,
            "count": len(items),
            "preferences_url": f"{settings.PUBLIC_URL}{reverse('notice_preferences')}",
        }
        return send("recruiter_digest", [to], context, company_id=company.pk)
