"""``vouch manage ARGS...``: any Django management command."""

from __future__ import annotations

import argparse

from vouch.cli.groups import Group, never


def add_parser(sub: argparse._SubParsersAction) -> None:
    p_manage = sub.add_parser("manage", help="run a Django management command")
    p_manage.add_argument("args", nargs=argparse.REMAINDER)


def manage(args: argparse.Namespace) -> int:
    # Imported when run: it needs Django, set up by main after this module is imported.
    from django.core.management import execute_from_command_line

    execute_from_command_line(["vouch", *args.args])
    return 0


# Management commands (migrate among them) decide for themselves what they need.
GROUP = Group(("manage",), add_parser, manage, needs_database=never)
