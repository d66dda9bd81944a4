"""Company signup through allauth with mandatory email verification (P2, P20), and
members of several companies switching between them."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from tests.accounts.helpers import fast_company, fast_member, fast_user, signup
from tests.conftest import PASSWORD
from tests.guard.b_helpers import give_totp
from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Role
from vouch.tenancy.models import Company
from vouch.tenancy.services import SESSION_COMPANY_KEY

pytestmark = pytest.mark.django_db

CONFIRM_LINK = re.compile(r"https://[^\s/]+(/accounts/confirm-email/[^\s/]+/)")


def h1(response) -> bytes:
    start = response.content.index(b"<h1>") + 4
    return response.content[start : response.content.index(b"</h1>", start)]


def test_company_signup_needs_verification_before_the_dashboard(client, mailoutbox):
    response = signup(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")

    user = User.objects.get(email="grace@example.com")
    assert user.full_name == "Grace Founder"
    assert user.password.startswith("argon2$")
    company = Company.objects.get(name="Hopper Hiring")
    assert company.region == "au"
    membership = Membership.objects.get(user=user)
    assert membership.company == company
    assert membership.role == Role.OWNER and membership.is_active
    assert not EmailAddress.objects.get(user=user).verified

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["grace@example.com"]
    confirm_path = CONFIRM_LINK.search(mailoutbox[0].body).group(1)

    # Not signed in, so not in: the dashboard sends to the login page.
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 302
    assert dashboard["Location"].startswith(reverse("account_login"))
    # Nor can the password alone get in before verification.
    login = client.post(reverse("account_login"), {"login": "grace@example.com", "password": PASSWORD})
    assert client.get(reverse("dashboard")).status_code == 302
    assert login.status_code == 302 and login["Location"] == reverse("account_email_verification_sent")

    # Following the emailed link (a POST: confirming on GET is off) verifies and signs in.
    assert client.get(confirm_path).status_code == 200
    assert EmailAddress.objects.get(user=user).verified is False  # a GET alone does not confirm
    confirmed = client.post(confirm_path)
    assert confirmed.status_code == 302
    assert EmailAddress.objects.get(user=user).verified
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200
    assert h1(dashboard) == b"Hopper Hiring"
    assert b"Australia (Sydney)" in dashboard.content


@pytest.mark.parametrize("region", ["mars", "", "AU ", "eu,us", "../eu"])
def test_unknown_region_is_a_form_error(client, mailoutbox, region):
    response = signup(client, region=region)
    assert response.status_code == 200
    form = response.context["form"]
    assert "region" in form.errors
    assert not Company.objects.exists()
    assert not User.objects.filter(email="grace@example.com").exists()
    assert mailoutbox == []


@pytest.mark.parametrize("region", ["au", "eu", "us", "ca"])
def test_each_configured_region_can_be_chosen(client, mailoutbox, region):
    # Fast path: skip the hash cost by checking the form only, then one full signup above.
    from vouch.access.forms import CompanySignupForm

    form = CompanySignupForm(data={"full_name": "X", "company_name": "Y", "region": region})
    assert form.is_valid(), form.errors


REGION_NAMES = {
    "au": "Australia (Sydney)",
    "eu": "European Union (Frankfurt)",
    "us": "United States (Virginia)",
    "ca": "Canada (Montreal)",
}


def test_the_signup_page_names_every_region_in_full_and_chooses_none(client):
    """A region cannot be changed once chosen, so nothing is chosen for the person: they
    pick from full names with the place, the codes staying the values sent."""
    html = client.get(reverse("account_signup")).content.decode()
    region_inputs = re.findall(r"<input[^>]*name=\"region\"[^>]*>", html)
    assert sorted(re.search(r'value="([^"]*)"', tag).group(1) for tag in region_inputs) == sorted(REGION_NAMES)
    assert not [tag for tag in region_inputs if "checked" in tag], region_inputs
    assert "selected" not in html
    for code, name in REGION_NAMES.items():
        assert re.search(rf'value="{code}"[^>]*>\s*{re.escape(name)}</label>', html), name
    assert not re.search(r">\s*(AU|EU|US|CA)\s*<", html)


def test_signing_up_without_choosing_a_region_is_a_clear_form_error(client, mailoutbox):
    data = {
        "full_name": "Grace Founder",
        "email": "grace@example.com",
        "company_name": "Hopper Hiring",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    response = client.post(reverse("account_signup"), data)
    assert response.status_code == 200
    assert "Choose where your company&#x27;s data is kept: it cannot be changed later." in response.content.decode()
    assert response.context["form"].errors["region"]
    assert not Company.objects.exists() and not User.objects.exists()
    assert mailoutbox == []


def test_the_region_is_shown_by_its_full_name(client, settings):
    owner = fast_user()
    fast_company("Frankfurt Hiring", region="eu", owner=owner)
    fast_company("Sydney Hiring", region="au")
    client.force_login(owner)
    page = client.get(reverse("company_settings")).content.decode()
    assert '<span class="badge">European Union (Frankfurt)</span>' in page
    assert ">EU<" not in page
    # The operator page counts companies per region, named in full.
    operator = User.objects.create_operator("ops@example.com")
    give_totp(operator)  # operators act only with two-factor (P15)
    client.force_login(operator)
    page = client.get(reverse("operator_home")).content.decode()
    assert "<tr><td>European Union (Frankfurt)</td><td><code>eu</code></td><td>1</td></tr>" in page
    assert "<tr><td>Australia (Sydney)</td><td><code>au</code></td><td>1</td></tr>" in page
    assert "<tr><td>Canada (Montreal)</td><td><code>ca</code></td><td>0</td></tr>" in page
    # An installation names its regions for where its servers are.
    settings.VOUCH_REGION_CONFIG = {
        **settings.VOUCH_REGION_CONFIG,
        "eu": {**settings.VOUCH_REGION_CONFIG["eu"], "label": "European Union (Paris)"},
    }
    client.force_login(owner)
    page = client.get(reverse("company_settings")).content.decode()
    assert '<span class="badge">European Union (Paris)</span>' in page


def test_a_regions_name_comes_from_the_environment(monkeypatch):
    from vouch.config import region_label

    assert region_label("eu") == "European Union (Frankfurt)"
    assert region_label("nz") == "NZ"
    monkeypatch.setenv("VOUCH_REGION_NZ_LABEL", "New Zealand (Auckland)")
    assert region_label("nz") == "New Zealand (Auckland)"


def test_signup_page_offers_the_company_fields(client):
    page = client.get(reverse("account_signup"))
    assert page.status_code == 200
    for field in (b"full_name", b"email", b"company_name", b"region", b"password1", b"password2"):
        assert b'name="' + field + b'"' in page.content


def test_member_of_two_companies_switches_and_sees_only_the_current_one(client):
    person = fast_user()
    alpha = fast_company("Alpha Recruiting", owner=person)
    beta = fast_company("Beta Staffing")
    fast_member(beta, Role.VIEWER, user=person)
    beta_only = fast_member(beta, Role.ADMIN)
    alpha_only = fast_member(alpha, Role.RECRUITER)
    client.force_login(person)

    dashboard = client.get(reverse("dashboard"))
    assert h1(dashboard) == b"Alpha Recruiting"
    assert b"as Owner" in dashboard.content

    response = client.post(reverse("company_switch"), {"company": str(beta.pk)})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert client.session[SESSION_COMPANY_KEY] == str(beta.pk)
    dashboard = client.get(reverse("dashboard"))
    assert h1(dashboard) == b"Beta Staffing"
    assert b"as Viewer" in dashboard.content
    # The other company appears only as a switch target, never as the page's company.
    assert dashboard.content.count(b"Alpha Recruiting") == 1
    assert b"Switch to Alpha Recruiting" in dashboard.content
    # And the role follows the company: a viewer in Beta cannot invite there.
    assert client.post(reverse("member_invite"), {"email": "x@example.com", "role": "10"}).status_code == 403
    members_page = client.get(reverse("members"))
    assert beta_only.user.email.encode() in members_page.content
    assert alpha_only.user.email.encode() not in members_page.content

    client.post(reverse("company_switch"), {"company": str(alpha.pk)})
    dashboard = client.get(reverse("dashboard"))
    assert h1(dashboard) == b"Alpha Recruiting"
    assert dashboard.content.count(b"Beta Staffing") == 1
    members_page = client.get(reverse("members"))
    assert alpha_only.user.email.encode() in members_page.content
    assert beta_only.user.email.encode() not in members_page.content
