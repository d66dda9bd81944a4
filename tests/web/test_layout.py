"""The layout every page draws (web/base.html, vouch.web.templatetags.layout_tags): the
main navigation for each kind of visitor, the sign-out form's CSRF field, the company
bar escaped, and ``{% once %}``."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template, TemplateSyntaxError

from tests.accounts.helpers import fast_company, fast_user
from vouch.accounts.models import User
from vouch.accounts.policy import Role

pytestmark = pytest.mark.django_db

COMPANY_LINKS = {
    "Dashboard": "/dashboard/",
    "Requests": "/requests/",
    "Candidates": "/candidates/",
    "Questionnaires": "/questionnaires/",
    "Members": "/members/",
    "Security events": "/security/events/",
    "Company": "/company/settings/",
    "Activity": "/activity/",
}
EVERY_MEMBER = ["Dashboard", "Requests", "Candidates", "Questionnaires", "Members"]
ADMINS = [*EVERY_MEMBER, "Security events", "Company", "Activity"]


def navigation(html: str) -> str:
    return re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)


def links(html: str) -> list[tuple[str, str]]:
    found = re.findall(r'<a href="([^"]*)"(?: aria-current="page")?>([^<]*)</a>', navigation(html))
    return [(label, href) for href, label in found]


def current(html: str) -> list[str]:
    """The labels of the links marked as this page's section."""
    return re.findall(r'<a href="[^"]*" aria-current="page">([^<]*)</a>', navigation(html))


@pytest.mark.parametrize(
    ("role", "labels"),
    [(Role.OWNER, ADMINS), (Role.ADMIN, ADMINS), (Role.RECRUITER, EVERY_MEMBER), (Role.VIEWER, EVERY_MEMBER)],
    ids=lambda value: getattr(value, "name", "").lower() or None,
)
def test_each_role_is_offered_its_pages(client, members, role, labels):
    # One process draws each distinct navigation once: the roles in turn must each get their own.
    client.force_login(members[role].user)
    html = client.get("/dashboard/").content.decode()
    assert links(html) == [(label, COMPANY_LINKS[label]) for label in labels] + [("Account", "/accounts/email/")]
    assert '<form method="post" action="/accounts/logout/" class="inline">' in navigation(html)
    assert current(html) == ["Dashboard"]
    role_label = members[role].get_role_display()
    badge = '<span class="badge">European Union (Frankfurt)</span>'
    assert f'{badge}\n        <span class="muted">as {role_label}</span>' in html


def test_an_operator_and_a_person_without_a_company(client):
    operator = User.objects.create_operator("operator@example.com")
    client.force_login(operator)
    html = client.get("/accounts/email/").content.decode()
    assert links(html) == [("Security events", "/operator/events/"), ("Account", "/accounts/email/")]
    assert current(html) == ["Account"]
    assert "companybar" not in html
    client.force_login(fast_user())
    assert links(client.get("/accounts/email/").content.decode()) == [("Account", "/accounts/email/")]


def test_anonymous_visitors_are_offered_sign_in_and_sign_up(client):
    html = client.get("/accounts/login/").content.decode()
    assert links(html) == [("Sign in", "/accounts/login/"), ("Create a company account", "/accounts/signup/")]
    assert current(html) == ["Sign in"]
    assert "/accounts/logout/" not in navigation(html)


def test_sign_out_carries_this_pages_csrf_token(csrf_client, owner):
    csrf_client.force_login(owner.user)
    html = csrf_client.get("/dashboard/").content.decode()
    field = re.search(r'<input type="hidden" name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})">', navigation(html))
    assert f'"X-CSRFToken": "{field.group(1)}"' in html  # the page's one token
    response = csrf_client.post(
        "/accounts/logout/", {"csrfmiddlewaretoken": field.group(1)}, HTTP_ORIGIN="https://testserver"
    )
    assert response.status_code == 302
    assert csrf_client.get("/dashboard/").status_code == 302  # signed out


def test_the_company_bar_escapes_the_name(client):
    owner = fast_user()
    fast_company('<script>alert("x")</script> & Co', owner=owner)
    client.force_login(owner)
    html = client.get("/dashboard/").content.decode()
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co"
    assert f'<span>{escaped} <span class="badge">European Union (Frankfurt)</span>' in html
    assert "<script>alert" not in html


def test_once_draws_its_content_once_and_without_the_pages_context():
    template = Template('{% load layout_tags %}{% once %}<a href="{% url "home" %}">{{ secret }}</a>{% endonce %}')
    first = template.render(Context({"secret": "mine"}))
    assert first == '<a href="/"></a>'  # no visitor's value drawn into every page
    assert template.render(Context({"secret": "yours"})) == first
    with pytest.raises(TemplateSyntaxError):
        Template("{% load layout_tags %}{% once %}{% block a %}{% endblock %}{% endonce %}")


@pytest.mark.parametrize(
    ("path", "marked"),
    [
        ("/requests/", "Requests"),
        ("/requests/42/", "Requests"),
        ("/company/settings/", "Company"),
        ("/accounts/password/change/", "Account"),  # the only link in /accounts/
        ("/", None),
        ("/elsewhere/", None),
    ],
)
def test_the_link_of_the_pages_section_is_marked_current(path, marked):
    from vouch.web.templatetags.layout_tags import _mark_current

    drawn = "".join(f'<a href="{href}">{label}</a>' for label, href in COMPANY_LINKS.items())
    drawn += '<a href="/accounts/email/">Account</a>'
    html = f'<nav aria-label="Main">{_mark_current(drawn, path)}</nav>'
    assert current(html) == ([marked] if marked else [])
    assert len(links(html)) == len(COMPANY_LINKS) + 1


def test_every_page_starts_with_a_skip_link_to_its_main_content(client, owner):
    client.force_login(owner.user)
    html = client.get("/dashboard/").content.decode()
    body = html.split("<body", 1)[1]
    first_link = re.search(r"<a [^>]*>[^<]*</a>", body).group(0)
    assert first_link == '<a class="skip-link" href="#main">Skip to content</a>'
    assert '<main id="main" tabindex="-1">' in html
    # The navigation sits in a disclosure, drawn open so it works without JavaScript.
    assert '<details class="menu" open data-menu>' in html and "<summary>Menu</summary>" in html
