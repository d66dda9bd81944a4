"""``vouch audit verify [--expect-head HASH]`` and ``vouch audit head``: check the security
event log's hash chain and head, and print the head to keep outside the database. The
work is done in :mod:`vouch.audit.verify`, imported when run (it needs Django set up)."""

from __future__ import annotations

import argparse

from vouch.cli.groups import Group


def _head_hash(value: str) -> str:
    """An ``--expect-head`` value: a whole head hash, as ``vouch audit head`` prints it."""
    text = value.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise argparse.ArgumentTypeError(
            "expected a head hash as `vouch audit head` prints it: 64 hexadecimal characters"
        )
    return text


def audit(args: argparse.Namespace) -> int:
    # Imported when run: they need Django, set up by main after this module is imported.
    from vouch.audit.verify import run_cli, run_head

    if args.audit_command == "head":
        return run_head()
    return run_cli(progress=args.progress, expect_head=args.expect_head)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p_audit = sub.add_parser("audit", help="the security event log")
    audit_sub = p_audit.add_subparsers(dest="audit_command", required=True)
    p_verify = audit_sub.add_parser("verify", help="check the hash chain and its head; exit 1 if either was changed")
    p_verify.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)"
    )
    p_verify.add_argument(
        "--expect-head",
        metavar="HASH",
        type=_head_hash,
        help="a head hash kept outside the database (`vouch audit head`): it must be in the chain",
    )
    audit_sub.add_parser("head", help="print the chain head's hash, to keep outside the database")


GROUP = Group(("audit",), add_parser, audit)
