"""django-allauth adapter: Vouch's rules around allauth's account flows."""

from __future__ import annotations

from urllib.parse import urlsplit

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest

from vouch.core.public import public_site, rebase
from vouch.guard import devices, throttle
from vouch.outbox import queue as outbox_queue
from vouch.outbox.backends import company_headers


def _built_from_request(value, request: HttpRequest | None) -> bool:
    """Whether ``value`` is an absolute link allauth built from ``request``'s Host."""
    if request is None or not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and parts.netloc == request.get_host()


class AccountAdapter(DefaultAccountAdapter):
    def clean_email(self, email: str) -> str:
        email = super().clean_email(email)
        # Django's form EmailField allows 320 characters, the email columns hold 254, and
        # allauth would silently cut a longer address down to a different one.
        MaxLengthValidator(account_settings.EMAIL_MAX_LENGTH)(email)
        return email

    def send_mail(self, template_prefix: str, email: str, context: dict) -> bool:
        """allauth's ``send_mail``, with every link on ``VOUCH_PUBLIC_URL``.

        allauth has no single hook for the address of its emailed links: each flow
        (confirmation, password reset, unknown account, account already exists) builds
        its own from the request's Host header, and its templates name the site from
        it (``current_site``). Here, a link built from the request is rebuilt on the
        public address, and the site is the public one. A mail whose context names a
        company is marked as that company's (the outbox removes it at the purge). Whether it
        went out now: when not, it is kept and retried (vouch.outbox.queue)."""
        request = allauth_context.request
        ctx = {"request": request, "email": email}
        ctx.update(
            {key: rebase(value) if _built_from_request(value, request) else value for key, value in context.items()}
        )
        ctx["current_site"] = public_site()
        company = context.get("company")
        headers = company_headers(getattr(company, "pk", None))
        # Sent now, or kept and retried by the worker when the mail server is away.
        return outbox_queue.send(self.render_mail(template_prefix, email, ctx, headers=headers), template_prefix)

    def save_user(self, request: HttpRequest, user, form, commit: bool = True):
        user = super().save_user(request, user, form, commit=False)
        user.full_name = form.cleaned_data.get("full_name", "").strip()
        user.email = user.email.lower()
        if commit:
            user.save()
        return user

    # -- brute-force defence (vouch.guard.throttle) -----------------------------------

    def pre_authenticate(self, request: HttpRequest, **credentials) -> None:
        # Replaces allauth's own "login_failed" check for passwords: Vouch's throttle
        # decides before any hash (real or dummy) is computed, and lets a known device
        # through. Raises the form error when the attempt is refused.
        login = credentials.get("email") or credentials.get("username") or ""
        self._vouch_attempt = throttle.before_password_check(request, str(login))

    def authenticate(self, request: HttpRequest, **credentials):
        self._vouch_attempt = None  # type: ignore[assignment]  # typing debt: an Optional not narrowed here
        try:
            user = super().authenticate(request, **credentials)
            if user is not None and self._vouch_attempt is not None:
                throttle.password_succeeded(request, self._vouch_attempt, user)
            return user
        finally:
            if self._vouch_attempt is not None:
                throttle.after_password_check(self._vouch_attempt)

    def authentication_failed(self, request: HttpRequest, **credentials) -> None:
        if getattr(self, "_vouch_attempt", None) is not None:
            throttle.password_failed(request, self._vouch_attempt)

    def post_login(self, request: HttpRequest, user, **kwargs):
        # After allauth's user_logged_in signal, so its receivers (the risk engine) still
        # see whether this browser was new; remembered only after a complete sign-in.
        response = super().post_login(request, user, **kwargs)
        devices.remember_device(request, response, user)
        return response

    def get_login_stages(self) -> list[str]:
        # Suspicious-login protection (vouch.guard.stages): the risk check first, so a
        # suspended account or a sign-in bad enough to suspend never reaches 2FA; the
        # emailed step-up code last, after allauth's 2FA stage (which counts as a step-up).
        return ["vouch.guard.stages.RiskStage", *super().get_login_stages(), "vouch.guard.stages.StepUpStage"]

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        if request.user.is_authenticated and request.user.is_staff:
            return "/operator/"
        return super().get_login_redirect_url(request)
