"""Vouch's URLs. allauth owns /accounts/ (signup, login, verification, reset, email)."""

from django.urls import include, path

from vouch.access.signup import signup
from vouch.api import urls as api_urls
from vouch.guard import login as guard_login
from vouch.references import link_urls
from vouch.tenancy import views as tenancy_views
from vouch.web import metrics_view
from vouch.web import views as web_views

handler400 = "vouch.web.errors.bad_request"
handler403 = "vouch.web.errors.permission_denied"
handler404 = "vouch.web.errors.page_not_found"
handler500 = "vouch.web.errors.server_error"

# Django tries these in order, and each include that does not match costs a little: the
# pages opened most (the private links on referees' and candidates' phones, the REST API's
# calls, the requests dashboard) come first. Nothing else starts with c/, r/, api/ or
# requests/, so order does not change what any address reaches (tests/web/test_urls_order.py).
urlpatterns = [
    # Private links for candidates and referees: public, the token is the credential (vouch.links).
    path("c/<str:token>/", include(link_urls.candidate_patterns)),
    path("r/<str:token>/", include(link_urls.referee_patterns)),
    path("api/", include(api_urls.api_patterns)),
    path("", include("vouch.references.urls")),
    path("", web_views.home, name="home"),
    path("dashboard/", web_views.dashboard, name="dashboard"),
    path("operator/", web_views.operator_home, name="operator_home"),
    path("healthz", web_views.health, name="health"),
    # robots.txt, its honeytoken, and the operators' intrusion detection page (vouch.shield).
    path("", include("vouch.shield.urls")),
    path("livez", web_views.alive, name="alive"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("companies/switch/", tenancy_views.switch, name="company_switch"),
    path("", include("vouch.tenancy.urls")),
    # Before allauth's: Vouch's sessions page and WebAuthn key removal (vouch.guard).
    path("", include("vouch.guard.security_urls")),
    # The unusual-use limits, a section of the security settings page (vouch.abuse).
    path("", include("vouch.abuse.urls")),
    # The emailed sign-in code, "this wasn't me" links, suspended members (vouch.guard).
    path("", include("vouch.guard.risk_urls")),
    path("accounts/signup/", signup, name="account_signup"),
    path("accounts/login/", guard_login.login, name="account_login"),
    # Before allauth's: the emailed unlock link of brute-force protection (vouch.guard.unlock).
    path("accounts/unlock/", include("vouch.guard.unlock_urls")),
    # Verification links throttled per address before allauth's view (vouch.guard.verification).
    path("accounts/confirm-email/<str:key>/", include("vouch.guard.verification_urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("vouch.access.urls")),
    path("outbox/", include("vouch.outbox.urls")),
    path("", include("vouch.web.event_urls")),
    path("", include("vouch.backups.urls")),
    path("", include("vouch.activity.urls")),
    path("", include("vouch.webhooks.urls")),
    path("", include("vouch.support.urls")),
    # The company's API keys pages (vouch.api; the API itself is near the top).
    path("", include("vouch.api.urls")),
]
