"""Template context for every page drawn with a request."""

from __future__ import annotations

import functools

from django.http import HttpRequest
from django.urls import reverse

# The pages the layout links to: the main navigation (vouch.web.templatetags.layout_tags)
# and the banners (web/banners.html); and those the two dashboards link to
# (web/dashboard.html, references/requests/list.html).
LAYOUT_PAGES = (
    "dashboard",
    "requests",
    "candidates",
    "questionnaires",
    "members",
    "security_events",
    "company_settings",
    "activity",
    "operator_events",
    "account_email",
    "account_logout",
    "account_login",
    "account_signup",
    "company_delete_cancel",
    "mfa_index",
    "request_new",
    "request_bulk",
    "account_change_password",
    "company_switch",
)


@functools.cache
def layout_urls() -> dict[str, str]:
    # Reversed once per process: these addresses take no arguments and the URL
    # configuration does not change while the server runs; with {% url %} each page
    # reversed all of them again (6% of drawing the requests dashboard).
    return {name: reverse(name) for name in LAYOUT_PAGES}


def layout(request: HttpRequest) -> dict:
    return {"layout_urls": layout_urls()}
