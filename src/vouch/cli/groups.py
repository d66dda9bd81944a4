"""A command group: the top-level ``vouch`` commands one ``add_parser`` adds, and the
handler that runs them. ``vouch.cli.GROUPS`` lists them in the order ``vouch --help`` shows."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


def always(args: argparse.Namespace) -> bool:
    return True


def never(args: argparse.Namespace) -> bool:
    return False


@dataclass(frozen=True)
class Group:
    # The top-level commands add_parser adds; main sends each of them to run.
    commands: tuple[str, ...]
    # Adds those commands to the ``vouch`` subparsers (before Django is set up).
    add_parser: Callable[[argparse._SubParsersAction], None]
    # Runs a parsed command of the group (Django set up); returns the exit code.
    run: Callable[[argparse.Namespace], int]
    # Whether the parsed command needs a prepared control database: those that prepare
    # it, or need none, say no, and run even where `vouch setup` never ran.
    needs_database: Callable[[argparse.Namespace], bool] = always
