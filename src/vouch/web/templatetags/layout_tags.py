"""Tags for the layout (web/base.html), which every page draws.

Drawn by the template language alone, the layout cost 2.0 million instructions per
page (callgrind, an owner's page), nearly a quarter of the whole dashboard page; with
these, 1.1 million, a third of it the CSRF token Django masks anew for each page.
Most of the cost was tags, filters and attribute lookups whose answers do not change
from page to page:

- the main navigation depends only on a few yes/no answers (signed in, in a
  company, which of the company's pages the member may open, operator), so each
  distinct set of answers is drawn once per process and reused; only the sign-out
  form's CSRF field is per request;
- ``{% once %}`` holds markup that no request changes (static file addresses);
- the company bar is three escaped values in an f-string.

Everything drawn here is escaped here."""

from __future__ import annotations

import functools
import re

from django import template
from django.template.base import Node, NodeList, Parser, Token
from django.template.context import Context
from django.template.loader_tags import BlockNode
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from vouch import regions
from vouch.accounts import policy
from vouch.accounts.policy import Action, Role
from vouch.web.context_processors import layout_urls

register = template.Library()

# The company's pages, in the navigation's order: (label, layout page, the action a
# member needs to be offered the page, or None for every member). The views check again.
COMPANY_PAGES: tuple[tuple[str, str, Action | None], ...] = (
    ("Dashboard", "dashboard", None),
    ("Requests", "requests", None),
    ("Candidates", "candidates", Action.VIEW_CANDIDATES),
    ("Questionnaires", "questionnaires", Action.VIEW_QUESTIONNAIRES),
    ("Members", "members", None),
    ("Security events", "security_events", Action.VIEW_SECURITY_EVENTS),
    ("Company", "company_settings", Action.MANAGE_SETTINGS),
    ("Activity", "activity", Action.VIEW_ACTIVITY),
)
_CHECKED = tuple(action for _, _, action in COMPANY_PAGES if action is not None)
_ROLE_LABELS = dict(Role.choices)  # as get_role_display, without building the dict per page
_LINE = "\n      "  # between the navigation's lines, as indented in base.html


@register.simple_tag(takes_context=True)
def main_navigation(context: Context) -> SafeString:
    """The links of ``<nav aria-label="Main">`` for this page's user and member."""
    user = context.get("user")
    request = context.get("request")
    path = getattr(request, "path", "")
    if user is None or not user.is_authenticated:
        before, _ = _navigation(signed_in=False, in_company=False, allowed=(), operator=False)
        return mark_safe(_mark_current(before, path))  # noqa: S308  (drawn escaped)
    membership = context.get("current_membership")
    allowed = tuple(policy.can(membership, action) for action in _CHECKED) if context.get("current_company") else None
    before, after = _navigation(
        signed_in=True, in_company=allowed is not None, allowed=allowed or (), operator=user.is_staff
    )
    return mark_safe(_mark_current(before, path) + _csrf_field(context) + after)  # noqa: S308  (drawn escaped)


_HREF = re.compile(r'<a href="([^"]+)">')


def _mark_current(links: str, path: str) -> str:
    """``aria-current="page"`` on the link of the section this page belongs to: the link
    whose address is the longest start of the page's (/requests/ for /requests/7/), or
    else the only one in the same first folder (Account for /accounts/password/change/).
    The drawn navigation is shared between visitors, so this is done on each page."""
    hrefs = _HREF.findall(links)
    prefixed = [href for href in hrefs if path.startswith(href) and href != "/"]
    if not prefixed:
        folder = path.split("/")[1:2]
        prefixed = [href for href in hrefs if folder and folder != [""] and href.split("/")[1:2] == folder]
        if len(prefixed) != 1:
            return links
    current = max(prefixed, key=len)
    return links.replace(f'<a href="{current}">', f'<a href="{current}" aria-current="page">', 1)


@functools.cache
def _navigation(*, signed_in: bool, in_company: bool, allowed: tuple[bool, ...], operator: bool) -> tuple[str, str]:
    """The navigation's markup before and after the sign-out form's CSRF field
    (``allowed``: whether the member may open each page of ``_CHECKED``)."""
    urls = layout_urls()
    if not signed_in:
        pages = [("Sign in", "account_login"), ("Create a company account", "account_signup")]
        return _links(urls, pages), ""
    may = dict(zip(_CHECKED, allowed, strict=True)) if in_company else {}
    pages = [(label, page) for label, page, action in COMPANY_PAGES if in_company and (action is None or may[action])]
    if operator:
        pages.append(("Security events", "operator_events"))
    pages.append(("Account", "account_email"))
    before = (
        _links(urls, pages)
        + _LINE
        + f'<form method="post" action="{escape(urls["account_logout"])}" class="inline">{_LINE}    '
    )
    after = f'<button type="submit" class="link">Sign out</button>{_LINE}  </form>'
    return before, after


def _links(urls: dict[str, str], pages: list[tuple[str, str]]) -> str:
    return _LINE.join(f'<a href="{escape(urls[page])}">{escape(label)}</a>' for label, page in pages)


def _csrf_field(context: Context) -> str:
    """What ``{% csrf_token %}`` draws (its format_html cost as much as the rest of
    the navigation)."""
    token = context.get("csrf_token")
    if not token or token == "NOTPROVIDED":  # noqa: S105  (Django's "no token here", not a secret)
        return ""
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(str(token))}">'


@register.filter
def region_label(code: str) -> str:
    """A region's full name, e.g. "European Union (Frankfurt)" for ``eu``."""
    return regions.label(code)


@register.simple_tag(takes_context=True)
def company_bar(context: Context) -> SafeString:
    """The current company's name and region, and the member's role in it."""
    company = context.get("current_company")
    if not company:
        return SafeString()
    membership = context.get("current_membership")
    role = _ROLE_LABELS.get(membership.role, membership.role) if membership is not None else ""
    # An operator in the company through a support grant (vouch.support) is no member.
    grant = getattr(membership, "support_grant", None)
    if grant is not None:
        role = f"support, {grant.get_scope_display().lower()}"
    name, region = escape(company.name), escape(regions.label(company.region))
    return mark_safe(  # noqa: S308  (drawn escaped)
        f'<div class="companybar">\n      <span>{name} <span class="badge">{region}</span>\n'
        f'        <span class="muted">as {escape(role)}</span></span>\n    </div>'
    )


@register.tag
def once(parser: Parser, token: Token) -> OnceNode:
    """``{% once %}...{% endonce %}``: drawn on its first use, then the same text on every
    page this process draws. Only for markup that no request changes (``{% static %}``
    and ``{% url %}`` without arguments). It is drawn with an empty context, so a
    variable inside comes out empty rather than one visitor's value on every page."""
    nodelist = parser.parse(("endonce",))
    parser.delete_first_token()
    if nodelist.get_nodes_by_type(BlockNode):
        raise template.TemplateSyntaxError("{% once %} cannot hold a {% block %}: children could not override it")
    return OnceNode(nodelist)


class OnceNode(Node):
    # Nothing inside for the template engine to look for: {% extends %} walks every
    # node of the layout on every page, looking for blocks, and there are none here.
    child_nodelists = ()

    def __init__(self, nodelist: NodeList) -> None:
        self.nodelist = nodelist
        self.drawn: SafeString | None = None

    def render(self, context: Context) -> SafeString:
        if self.drawn is None:  # two threads may both draw it: the same text
            # context.new(): the page's settings, none of its values (nor the context processors').
            self.drawn = mark_safe(self.nodelist.render(context.new()))  # noqa: S308
        return self.drawn
