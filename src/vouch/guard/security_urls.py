"""URLs of the company security settings and the sessions pages (included by vouch.urls
before allauth's, so /accounts/sessions/ and WebAuthn key removal are Vouch's)."""

from django.urls import path

from vouch.guard import security_views

urlpatterns = [
    path("company/security/", security_views.company_security_settings, name="company_security"),
    path("accounts/sessions/", security_views.session_list, name="account_sessions"),
    path("accounts/sessions/<int:session_id>/end/", security_views.session_end, name="account_session_end"),
    path("accounts/sessions/end-others/", security_views.session_end_others, name="account_sessions_end_others"),
    path(
        "accounts/2fa/webauthn/keys/<int:pk>/remove/",
        security_views.remove_webauthn,
        name="mfa_remove_webauthn",
    ),
]
