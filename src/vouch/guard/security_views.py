"""Pages: the company's security settings (owners), your sessions (everyone), an
operator signing any account out everywhere, allauth's re-authentication pages with a
new session key, and the WebAuthn key removal that respects a company's 2FA
requirement."""

from __future__ import annotations

from collections.abc import Callable

from allauth.account import views as account_views
from allauth.account.decorators import reauthentication_required
from allauth.mfa.base import views as mfa_views
from allauth.mfa.webauthn import views as webauthn_views
from allauth.mfa.webauthn.views import RemoveWebAuthnView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from vouch.accounts import policy
from vouch.accounts.decorators import company_action
from vouch.accounts.decorators import reauthentication_required as vouch_reauthentication_required
from vouch.accounts.models import User
from vouch.accounts.policy import Action
from vouch.audit import record
from vouch.audit.events import PLATFORM
from vouch.audit.models import EventAction, Outcome
from vouch.core.requests import CompanyRequest, VouchRequest
from vouch.guard import company_security, mfa
from vouch.guard import sessions as guard_sessions
from vouch.guard.security_forms import CompanySecurityForm

# More sections of the page, each drawn by a higher layer that registers it in its
# AppConfig.ready() (vouch.abuse: the unusual-use limits), so guard never imports it.
page_sections: list[Callable[[HttpRequest], str]] = []


def security_page(request: CompanyRequest, form: CompanySecurityForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "guard/security_settings.html",
        {
            "form": form,
            "your_address": request.META.get("REMOTE_ADDR", ""),
            "sections": [draw(request) for draw in page_sections],
        },
        status=status,
    )


@company_action(Action.MANAGE_SECURITY)
@reauthentication_required(allow_get=True)
def company_security_settings(request: CompanyRequest) -> HttpResponse:
    """Owners only (policy), after signing in again (allauth replays the POST)."""
    row = company_security.for_company(request.company)
    if request.method != "POST":
        return security_page(request, CompanySecurityForm.from_settings(row))
    form = CompanySecurityForm(request.POST)
    if not form.is_valid():
        return security_page(request, form, status=400)
    try:
        company_security.save(request.company, request.membership, form.changes(), request=request)
    except company_security.SecuritySettingsError as exc:
        field = "allowed_networks" if "address" in str(exc) or "network" in str(exc).lower() else None
        form.add_error(field, str(exc))
        return security_page(request, form, status=400)
    messages.success(request, "Security settings saved.")
    return redirect("company_security")


@login_required
def session_list(request: VouchRequest) -> HttpResponse:
    return render(request, "guard/sessions.html", {"sessions": guard_sessions.active_sessions(request)})


# Ending sessions, one or all others, asks for the password (or a 2FA method) again
# first (ASVS 7.5.2): a session left open or stolen must not be able to sign its
# owner out of the devices they would use to take the account back.
@require_POST
@login_required
@vouch_reauthentication_required
def session_end(request: VouchRequest, session_id: int) -> HttpResponse:
    if guard_sessions.end_session(request, session_id):
        messages.success(request, "That session has ended: it is signed out.")
    else:
        messages.error(request, "No such session (it may have ended already). To end this one, sign out.")
    return redirect("account_sessions")


@require_POST
@login_required
@vouch_reauthentication_required
def session_end_others(request: VouchRequest) -> HttpResponse:
    count = guard_sessions.end_other_sessions(request, request.user, reason="ended_by_user")
    messages.success(request, f"Signed out of {count} other session{'s' if count != 1 else ''}.")
    return redirect("account_sessions")


@require_POST
@login_required
def operator_sessions_end(request: VouchRequest) -> HttpResponse:
    """An operator signs any account out everywhere, by its email address."""
    policy.require(policy.can_end_any_sessions(request.user))
    return _operator_sessions_end(request)


@vouch_reauthentication_required
def _operator_sessions_end(request: VouchRequest) -> HttpResponse:
    email = request.POST.get("email", "").strip()[:254]
    user = User.objects.filter(email__iexact=email).first() if email else None
    if user is None:
        messages.error(request, "No account has that email address.")
        return redirect("operator_home")
    count = guard_sessions.end_account_sessions(request.user, user, request=request)
    messages.success(request, f"{user.email} was signed out of {count} session{'s' if count != 1 else ''}.")
    return redirect("operator_home")


class _CyclesSessionKey:
    """Re-authentication issues a new session key (ASVS 7.2.4): on the right password
    or 2FA code, before allauth records it and replays the held-back request."""

    def form_valid(self, form) -> HttpResponse:
        guard_sessions.cycle_key(self.request)  # type: ignore[attr-defined]  # a mixin for allauth's views, which have request
        return super().form_valid(form)  # type: ignore[misc]  # a mixin for allauth's views, which have form_valid


class ReauthenticateView(_CyclesSessionKey, account_views.ReauthenticateView):
    pass


class MFAReauthenticateView(_CyclesSessionKey, mfa_views.ReauthenticateView):
    pass


class WebAuthnReauthenticateView(_CyclesSessionKey, webauthn_views.ReauthenticateWebAuthnView):
    pass


reauthenticate = ReauthenticateView.as_view()
mfa_reauthenticate = MFAReauthenticateView.as_view()
webauthn_reauthenticate = WebAuthnReauthenticateView.as_view()


@method_decorator(login_required, name="dispatch")
class GuardedRemoveWebAuthnView(RemoveWebAuthnView):
    """allauth's key removal, asking the MFA adapter first as TOTP deactivation does
    (allauth's own WebAuthn view does not ask)."""

    def form_valid(self, form) -> HttpResponse:
        authenticator = self.get_object()
        if not mfa.can_remove(authenticator):
            record(
                EventAction.AUTHN_MFA_REMOVED,
                request=self.request,
                company=PLATFORM,
                target=f"user:{self.request.user.pk}",
                outcome=Outcome.BLOCKED,
                details={"type": authenticator.type, "reason": "company_requires_2fa"},
            )
            messages.error(self.request, str(mfa.MFAAdapter.error_messages["cannot_delete_authenticator"]))
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


remove_webauthn = GuardedRemoveWebAuthnView.as_view()
