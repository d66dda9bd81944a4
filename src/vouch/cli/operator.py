"""``vouch operator create EMAIL``: an operator account, whose password is set through a
link emailed to it (never printed).

Django is set up after the parser is built (:func:`vouch.cli.main`): what needs it is
imported inside the function that runs the command."""

from __future__ import annotations

import argparse
import sys

from vouch.cli.groups import Group


def add_parser(sub: argparse._SubParsersAction) -> None:
    p_operator = sub.add_parser("operator", help="operator accounts")
    op_sub = p_operator.add_subparsers(dest="operator_command", required=True)
    p_create = op_sub.add_parser("create", help="create an operator account")
    p_create.add_argument("email")
    p_create.add_argument("--name", default="")


def operator(args: argparse.Namespace) -> int:
    # Imported when run: they need Django, set up by main after this module is imported.
    from allauth.account.forms import default_token_generator
    from allauth.account.models import EmailAddress
    from allauth.account.utils import user_pk_to_url_str
    from django.conf import settings
    from django.core.mail import send_mail
    from django.urls import reverse

    from vouch.accounts.models import User

    email = args.email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        print("An account with that email already exists.", file=sys.stderr)
        return 1
    user = User.objects.create_operator(email, full_name=args.name or "")
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    # Never print a password: the operator sets one through a reset link (P11).
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )
    send_mail(
        "[Vouch] Set your operator password",
        f"An operator account was created for you.\n\nSet your password: {settings.PUBLIC_URL}{path}\n",
        None,
        [email],
    )
    print(f"Operator {email} created; a link to set the password was emailed.")
    return 0


GROUP = Group(("operator",), add_parser, operator)
