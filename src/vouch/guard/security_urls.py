"""URLs of the company security settings and the sessions pages (included by vouch.urls
before allauth's, so /accounts/sessions/ and WebAuthn key removal are Vouch's)."""

from django.urls import path

from vouch.guard import security_views

urlpatterns = [
    path("company/security/", security_views.company_security_settings, name="company_security"),
    path("accounts/sessions/", security_views.session_list, name="account_sessions"),
    path("accounts/sessions/<int:session_id>/end/", security_views.session_end, name="account_session_end"),
    path("accounts/sessions/end-others/", security_views.session_end_others, name="account_sessions_end_others"),
    path("operator/sessions/end/", security_views.operator_sessions_end, name="operator_sessions_end"),
    # allauth's re-authentication pages, giving the session a new key when they succeed.
    path("accounts/reauthenticate/", security_views.reauthenticate, name="account_reauthenticate"),
    path("accounts/2fa/reauthenticate/", security_views.mfa_reauthenticate, name="mfa_reauthenticate"),
    path(
        "accounts/2fa/webauthn/reauthenticate/",
        security_views.webauthn_reauthenticate,
        name="mfa_reauthenticate_webauthn",
    ),
    path(
        "accounts/2fa/webauthn/keys/<int:pk>/remove/",
        security_views.remove_webauthn,
        name="mfa_remove_webauthn",
    ),
]
