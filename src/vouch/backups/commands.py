"""``vouch backup ...`` and ``vouch mirror ...``: the parsers, and which module runs each.

vouch mirror run                   run the continuous mirror alone (when VOUCH_SERVE_MIRROR=0)
vouch mirror status                what is mirrored where, and how far behind
vouch backup run [--company X]     take backups now (one set per company, one for the control database)
vouch backup list [--company X]    the backup sets in the targets
vouch backup status                last backups, mirror and (PostgreSQL) replication and archiving health
vouch backup restore --company X [--at TIME] [--set ID] (--to DIR | --in-place | --rollback DIR)
vouch backup drill [--company X | --sample N | --all]                  restore into scratch and check

Exit codes: 0 done, 1 failed or a problem was found, 2 bad input.
Each subcommand's work lives in its own module (sets, status, restore, drills, mirror);
this one only parses.
"""

from __future__ import annotations

import argparse
import importlib

PROGRESS = {"action": argparse.BooleanOptionalAction, "default": None, "help": "progress bar (default: on a terminal)"}

# (command, subcommand) -> "module:function" taking the parsed arguments, returning an exit code.
HANDLERS = {
    ("mirror", "run"): "vouch.backups.mirror:cli_run",
    ("mirror", "status"): "vouch.backups.mirror:cli_status",
    ("backup", "run"): "vouch.backups.sets:cli_run",
    ("backup", "list"): "vouch.backups.sets:cli_list",
    ("backup", "status"): "vouch.backups.status:cli_status",
    ("backup", "restore"): "vouch.backups.restore:cli_restore",
    ("backup", "drill"): "vouch.backups.drills:cli_drill",
}


def add_parser(sub) -> None:
    p_mirror = sub.add_parser("mirror", help="the continuous mirror of the embedded default's databases")
    mirror_sub = p_mirror.add_subparsers(dest="mirror_command", required=True)
    mirror_sub.add_parser("run", help="run the mirror in the foreground (when VOUCH_SERVE_MIRROR=0)")
    mirror_sub.add_parser("status", help="what is mirrored where, and how far behind")

    p_backup = sub.add_parser("backup", help="encrypted backups: run, list, status, restore, drill")
    backup_sub = p_backup.add_subparsers(dest="backup_command", required=True)
    p_run = backup_sub.add_parser("run", help="take backups now")
    p_run.add_argument("--company", metavar="ID_OR_NAME", help="only this company (default: every one, and control)")
    p_run.add_argument("--progress", **PROGRESS)
    p_list = backup_sub.add_parser("list", help="the backup sets in the targets")
    p_list.add_argument("--company", metavar="ID_OR_NAME", help="only this company's sets")
    p_list.add_argument("--control", action="store_true", help="only the control database's sets")
    backup_sub.add_parser("status", help="last backups, mirror lag, replication and archiving health")
    p_restore = backup_sub.add_parser("restore", help="restore a company (or the control database) from a backup")
    what = p_restore.add_mutually_exclusive_group(required=True)
    what.add_argument("--company", metavar="ID_OR_NAME")
    what.add_argument("--control", action="store_true", help="the control database (see docs/backups.md)")
    p_restore.add_argument("--at", metavar="TIME", help="point in time (ISO 8601, UTC); default: the latest")
    p_restore.add_argument("--set", metavar="SET_ID", help="this backup set rather than the mirror")
    where = p_restore.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="DIR", help="write the restored database and files into DIR")
    where.add_argument("--in-place", action="store_true", help="replace the live company (it goes offline meanwhile)")
    where.add_argument(
        "--rollback", metavar="DIR", help="put back the state an in-place restore kept aside in DIR (it printed DIR)"
    )
    p_restore.add_argument("--progress", **PROGRESS)
    p_drill = backup_sub.add_parser("drill", help="restore backups into scratch space and check them")
    sample = p_drill.add_mutually_exclusive_group()
    sample.add_argument("--company", metavar="ID_OR_NAME")
    sample.add_argument("--sample", type=int, metavar="N", help="N companies chosen at random")
    sample.add_argument("--all", action="store_true", help="every company")
    p_drill.add_argument("--control", action="store_true", help="also drill the control database's latest set")
    p_drill.add_argument("--progress", **PROGRESS)


def run(args: argparse.Namespace) -> int:
    sub = args.mirror_command if args.command == "mirror" else args.backup_command
    module_name, function_name = HANDLERS[(args.command, sub)].split(":")
    return getattr(importlib.import_module(module_name), function_name)(args)
