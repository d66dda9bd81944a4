"""``vouch outbox``: read the mail sent on the embedded default (the local outbox).

Django is set up after the parser is built (:func:`vouch.cli.main`): what needs it is
imported inside the function that runs the command."""

from __future__ import annotations

import argparse
import sys

from vouch.cli.groups import Group, never


def add_parser(sub: argparse._SubParsersAction) -> None:
    p_outbox = sub.add_parser("outbox", help="read mail in the local outbox")
    p_outbox.add_argument("name", nargs="?", help="a message's file name")
    p_outbox.add_argument("--latest", action="store_true", help="show the newest message")
    p_outbox.add_argument("--limit", type=int, default=50)


def outbox(args: argparse.Namespace) -> int:
    # Imported when run: they need Django, set up by main after this module is imported.
    from vouch.outbox import store

    if args.name or args.latest:
        message = store.get_message(args.name) if args.name else next(iter(store.list_messages(limit=1)), None)
        if message is None:
            print("No such message.", file=sys.stderr)
            return 1
        print(f"To: {message.to}\nSubject: {message.subject}\nDate: {message.date}\n\n{message.body}")
        return 0
    messages = store.list_messages(limit=args.limit)
    if not messages:
        print("The outbox is empty.")
        return 0
    for message in messages:
        print(f"{message.name}  {message.to}  {message.subject}")
    return 0


# The outbox is files in the data directory, not the database.
GROUP = Group(("outbox",), add_parser, outbox, needs_database=never)
