"""Pages of suspicious-login protection: the emailed sign-in code (step-up), the
"this wasn't me" link, and the admins' list of suspended members. Thin: the logic is
in ``vouch.guard.stages`` and ``vouch.guard.suspension``."""

from __future__ import annotations

from allauth.account.internal.decorators import login_stage_required
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from vouch.accounts import members, policy
from vouch.accounts.decorators import company_action, reauthentication_required
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest, VouchRequest
from vouch.guard import suspension
from vouch.guard.stages import CODE_DIGITS, STEP_UP_KEY
from vouch.tenancy.lookups import company_object_or_404


@require_http_methods(["GET", "POST"])
@login_stage_required(stage=STEP_UP_KEY, redirect_urlname="account_login")
def step_up(request: VouchRequest) -> HttpResponse:
    """Enter the code emailed at a risky sign-in. The stage was set up by StepUpStage."""
    stage = request._login_stage  # type: ignore[attr-defined]  # an attribute set at run time
    error = ""
    if request.method == "POST":
        outcome = stage.check_code(request.POST.get("code", "")[:64])
        if outcome == "ok":
            stage.complete(stage.login.state["stages"].get("vouch_risk", {}).get("data", {}).get("sign_in"))
            return stage.exit()
        if outcome == "locked":
            stage.abort()
            messages.error(request, "Too many wrong codes. Sign in again to get a new code.")
            return redirect("account_login")
        if outcome == "expired":
            stage.abort()
            messages.error(request, "That code has expired. Sign in again to get a new one.")
            return redirect("account_login")
        error = "That code is not right. Check the latest email from Vouch and try again."
    return render(request, "guard/step_up.html", {"error": error, "digits": CODE_DIGITS}, status=400 if error else 200)


@require_http_methods(["GET", "POST"])
def not_me(request: VouchRequest, token: str) -> HttpResponse:
    """The "this wasn't me" link of a new-sign-in email. GET only shows what will happen:
    mail scanners open links, and must not suspend accounts by doing so."""
    if request.method == "POST":
        sign_in = suspension.report_not_me(token, request=request)
        if sign_in is None:
            return render(request, "guard/not_me_invalid.html", status=404)
        return render(request, "guard/not_me_done.html", {"sign_in": sign_in})
    sign_in = suspension.sign_in_for_token(token)
    if sign_in is None:
        return render(request, "guard/not_me_invalid.html", status=404)
    return render(request, "guard/not_me.html", {"sign_in": sign_in})


@company_action(Action.DEACTIVATE_MEMBER)
def suspended_members(request: CompanyRequest) -> HttpResponse:
    actor = request.membership
    rows = [
        {
            "membership": membership,
            "state": state,
            "can_approve": state.awaiting_approval and policy.can_manage(actor, membership, Action.DEACTIVATE_MEMBER),
        }
        for membership, state in suspension.suspended_members(actor.company)
    ]
    return render(request, "guard/suspended_members.html", {"rows": rows})


@require_POST
@company_action(Action.DEACTIVATE_MEMBER)
@reauthentication_required  # letting someone back in is an access change like a reactivation
def approve_restore(request: CompanyRequest, membership_id: int) -> HttpResponse:
    actor = request.membership
    target = company_object_or_404(request, members.company_members(actor), pk=membership_id)
    try:
        suspension.approve(actor, target, request=request)
    except suspension.SuspensionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{target.user} can sign in again.")
    return redirect("guard_suspended_members")
