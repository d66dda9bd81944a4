"""``vouch shield report`` and ``vouch shield lift``: intrusion detection from the command line.

vouch shield report [--hours N] [--json]   blocks in force; detections and blocks recorded lately
vouch shield lift SCOPE SOURCE             end a block now (scope: address, network or account)

This module only parses; the work is in :mod:`vouch.shield.report`, imported when run
(it needs Django, set up after the parser is built)."""

from __future__ import annotations

import argparse
import importlib


def add_parser(sub: argparse._SubParsersAction) -> None:
    p_shield = sub.add_parser("shield", help="intrusion detection: blocks, detections")
    shield_sub = p_shield.add_subparsers(dest="shield_command", required=True)
    p_report = shield_sub.add_parser("report", help="blocks in force, and detections and blocks recorded lately")
    p_report.add_argument("--hours", type=int, default=24, help="how far back to count (default 24)")
    p_report.add_argument("--json", action="store_true", help="machine-readable output")
    p_lift = shield_sub.add_parser("lift", help="end a block now")
    p_lift.add_argument("scope", choices=("address", "network", "account"))
    p_lift.add_argument("source", help="the address, the network (e.g. 198.51.100.0/24) or the account's id")


def run(args: argparse.Namespace) -> int:
    report = importlib.import_module("vouch.shield.report")
    if args.shield_command == "lift":
        return report.cli_lift(args)
    return report.cli_report(args)
