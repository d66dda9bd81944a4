"""Member management and invitations. Thin: parse, call a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from vouch.access import invitations
from vouch.access.forms import InviteForm, RoleForm
from vouch.accounts import members, policy
from vouch.accounts.decorators import company_action, reauthentication_required
from vouch.accounts.models import Invitation, Membership
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest, VouchRequest
from vouch.guard import sessions as guard_sessions
from vouch.guard.company_security import company_min_password_length
from vouch.tenancy.lookups import record_miss


def _member_or_404(request: CompanyRequest, membership_id: int) -> Membership:
    try:
        return members.get_member(request.membership, membership_id)
    except Membership.DoesNotExist:
        # Another company's member is a 404 like a missing one, and recorded (IDOR probe).
        record_miss(request, Membership)
        raise Http404 from None


@company_action(Action.VIEW_MEMBERS)
def member_list(request: CompanyRequest) -> HttpResponse:
    actor = request.membership
    roles = policy.assignable_roles(actor)
    rows = [
        {
            "membership": m,
            "can_change_role": policy.can_manage(actor, m, Action.CHANGE_ROLE),
            "can_deactivate": policy.can_manage(actor, m, Action.DEACTIVATE_MEMBER),
            "can_end_sessions": policy.can_end_sessions(actor, m),
            "role_form": RoleForm(roles=roles, initial={"role": m.role}, prefix=f"m{m.pk}"),
        }
        for m in members.members_of(actor.company)
    ]
    can_invite = policy.can(actor, Action.INVITE_MEMBER)
    return render(
        request,
        "accounts/members.html",
        {
            "rows": rows,
            "can_invite": can_invite,
            "invite_form": InviteForm(roles=roles) if can_invite else None,
            "invitations": invitations.pending_for_company(actor.company) if can_invite else [],
        },
    )


@require_POST
@company_action(Action.INVITE_MEMBER)
@reauthentication_required  # an invitation hands out a role, up to owner
def invite(request: CompanyRequest) -> HttpResponse:
    actor = request.membership
    form = InviteForm(request.POST, roles=policy.assignable_roles(actor))
    if form.is_valid():
        try:
            invitations.invite(request, actor, form.cleaned_data["email"], form.cleaned_data["role"])
        except invitations.InvitationMailDelayed as exc:
            messages.warning(request, str(exc))
            return redirect("members")
        except invitations.InvitationError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("members")
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)  # type: ignore[arg-type]  # typing debt
    return redirect("members")


@require_POST
@company_action(Action.INVITE_MEMBER)
def revoke_invitation(request: CompanyRequest, invitation_id: int) -> HttpResponse:
    try:
        invitation = invitations.revoke(request.membership, invitation_id, request=request)
    except Invitation.DoesNotExist:
        record_miss(request, Invitation)
        raise Http404 from None
    messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return redirect("members")


@require_POST
@company_action(Action.CHANGE_ROLE)
def change_role(request: CompanyRequest, membership_id: int) -> HttpResponse:
    target = _member_or_404(request, membership_id)
    # Refuse what the policy refuses before asking for a password: the prompt must
    # not suggest that the change is possible.
    policy.require(policy.can_manage(request.membership, target, Action.CHANGE_ROLE))
    return _change_role(request, target)


@reauthentication_required
def _change_role(request: CompanyRequest, target: Membership) -> HttpResponse:
    actor = request.membership
    form = RoleForm(request.POST, roles=policy.assignable_roles(actor), prefix=f"m{target.pk}")
    if not form.is_valid():
        messages.error(request, "Choose one of the roles offered.")
        return redirect("members")
    try:
        members.change_role(actor, target, form.cleaned_data["role"], request=request)
    except members.MemberError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{target.user} is now {target.get_role_display()}.")
    return redirect("members")


@require_POST
@company_action(Action.DEACTIVATE_MEMBER)
def set_active(request: CompanyRequest, membership_id: int) -> HttpResponse:
    target = _member_or_404(request, membership_id)
    policy.require(policy.can_manage(request.membership, target, Action.DEACTIVATE_MEMBER))
    return _set_active(request, target)


@reauthentication_required  # both ways: deactivating locks a person out, reactivating lets one in
def _set_active(request: CompanyRequest, target: Membership) -> HttpResponse:
    active = request.POST.get("active") == "1"
    try:
        members.set_active(request.membership, target, active, request=request)
    except members.MemberError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{target.user} {'reactivated' if active else 'deactivated'}.")
    return redirect("members")


@require_POST
@company_action(Action.END_MEMBER_SESSIONS)
def end_sessions(request: CompanyRequest, membership_id: int) -> HttpResponse:
    target = _member_or_404(request, membership_id)
    policy.require(policy.can_end_sessions(request.membership, target))
    return _end_sessions(request, target)


@reauthentication_required  # signing someone out everywhere acts on their account
def _end_sessions(request: CompanyRequest, target: Membership) -> HttpResponse:
    count = guard_sessions.end_member_sessions(request.membership, target, request=request)
    if count:
        messages.success(request, f"{target.user} was signed out of {count} session{'s' if count != 1 else ''}.")
    else:
        messages.success(request, f"{target.user} had no session to end.")
    return redirect("members")


def invitation_open(request: VouchRequest, token: str) -> HttpResponse:
    """The emailed link: park the token in the session, then drop it from the URL."""
    if invitations.park_in_session(request, token) is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    return redirect("invitation_accept")


def invitation_accept(request: VouchRequest) -> HttpResponse:
    invitation = invitations.pending_from_session(request)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    if not request.user.is_authenticated:
        return render(request, "accounts/invitation_welcome.html", {"invitation": invitation})
    if request.method == "POST":
        try:
            membership = invitations.accept_pending_from_session(request, request.user)
        except invitations.InvitationError as exc:
            messages.error(request, str(exc))
            return redirect("dashboard")
        messages.success(request, f"Welcome to {membership.company.name}.")  # type: ignore[union-attr]  # typing debt: an Optional not narrowed here
        return redirect("dashboard")
    wrong_account = request.user.email.lower() != invitation.email.lower()
    # An existing account keeps its password (its length is unknown: only the hash is
    # stored); once a member, the company's minimum applies at the next password change
    # (vouch.guard.validators). Said here, before they join.
    return render(
        request,
        "accounts/invitation_accept.html",
        {
            "invitation": invitation,
            "wrong_account": wrong_account,
            "min_password_length": company_min_password_length(invitation.company),
        },
    )


@login_required
def no_company(request: VouchRequest) -> HttpResponse:
    if request.membership is not None:
        return redirect("dashboard")
    return render(request, "accounts/no_company.html")
