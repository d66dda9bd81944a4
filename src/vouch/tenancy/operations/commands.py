"""What ``vouch tenants ...`` prints. The work is done in :mod:`.migrate` and :mod:`.report`."""

from __future__ import annotations

import argparse
import json
import sys

from vouch.core.text_table import print_table

# Django is set up after the parser is built: the work modules are imported when run.
ORPHAN_MIN_AGE_MINUTES = 10


def add_parser(sub) -> None:
    """The ``tenants`` subcommand and its own subcommands."""
    p_tenants = sub.add_parser("tenants", help="company databases: migrate, list, show, check")
    tenants_sub = p_tenants.add_subparsers(dest="tenants_command", required=True)
    p_migrate = tenants_sub.add_parser(
        "migrate", help="bring every company database to the current schema (in parallel; re-run to resume)"
    )
    p_migrate.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs, at most 4)")
    p_migrate.add_argument("--company", nargs="+", metavar="ID", help="only these companies")
    p_migrate.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)"
    )
    p_list = tenants_sub.add_parser("list", help="every company: region, status, schema, size")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_show = tenants_sub.add_parser("show", help="one company's database, files, identity, schema and members")
    p_show.add_argument("company", help="company id, or its exact name")
    p_show.add_argument("--json", action="store_true", help="machine-readable output")
    p_check = tenants_sub.add_parser("check", help="health of every company database, and orphans (exit 1 on problems)")
    p_check.add_argument(
        "--remove-orphans",
        action="store_true",
        help="after listing them, delete databases and files that belong to no company",
    )
    # Company deletion's own command (vouch.tenancy.deletion) lives here too: one ``tenants`` parser.
    tenants_sub.add_parser("purge", help="delete the companies whose deletion grace period has passed")
    p_check.add_argument(
        "--orphan-min-age",
        type=float,
        default=ORPHAN_MIN_AGE_MINUTES,
        metavar="MINUTES",
        help="leave younger orphans alone: they may be companies being created (default %(default)s)",
    )


def run(args: argparse.Namespace, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    command = args.tenants_command
    if command == "migrate":
        return migrate(args, out, err)
    if command == "list":
        return list_(args, out)
    if command == "show":
        return show(args, out, err)
    if command == "check":
        return check(args, out)
    if command == "purge":
        # imported here: the command's parser is built before Django is set up
        from vouch.tenancy.deletion import run_purge

        return run_purge(out=out, err=err)
    return 2


def migrate(args: argparse.Namespace, out, err) -> int:
    from tqdm import tqdm

    # imported here: the command's parser is built before Django is set up
    from vouch.tenancy.operations import migrate as migration

    if args.workers is not None and args.workers < 1:
        print("--workers must be at least 1.", file=err)
        return 2
    show_bar = err.isatty() if args.progress is None else args.progress
    bar = tqdm(total=0, disable=not show_bar, file=err, unit=" companies", desc="Migrating")

    def on_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    def progress(result) -> None:
        bar.update(1)
        if result.outcome == migration.FAILED and show_bar:
            bar.write(f"failed: {result.name} ({result.company_id}): {result.reason}", file=err)

    try:
        with bar:
            result = migration.migrate_all(args.company, workers=args.workers, progress=progress, on_total=on_total)
    except (LookupError, ValueError) as exc:
        print(exc.args[0] if exc.args else str(exc), file=err)
        return 2
    for template in result.templates:
        if template.outcome == migration.FAILED:
            print(f"Template of region {template.region}: FAILED: {template.reason}", file=out)
        elif template.outcome == migration.MIGRATED:
            print(f"Template of region {template.region}: migrated {len(template.applied)}", file=out)
    total = len(result.companies)
    print(
        f"{total} compan{'y' if total == 1 else 'ies'}: {result.count(migration.CURRENT)} already current, "
        f"{result.count(migration.MIGRATED)} migrated, {result.count(migration.FAILED)} failed.",
        file=out,
    )
    if result.failures:
        print("\nFailed:", file=out)
        print_table(
            ["id", "name", "region", "reason"],
            [[r.company_id, r.name, r.region, r.reason] for r in result.failures],
            out,
        )
    if result.interrupted:
        print("\nInterrupted: run `vouch tenants migrate` again to finish; done companies are skipped.", file=out)
    return 0 if result.ok else 1


def list_(args: argparse.Namespace, out) -> int:
    # imported here: the command's parser is built before Django is set up
    from vouch.tenancy.operations import report

    rows = report.list_companies()
    if args.json:
        json.dump([row.as_dict() for row in rows], out, indent=2)
        print(file=out)
        return 0
    if not rows:
        print("No companies yet.", file=out)
        return 0
    print_table(
        ["id", "name", "region", "status", "schema", "size"],
        [[r.id, r.name, r.region, r.status, r.schema, report.human_size(r.size)] for r in rows],
        out,
    )
    return 0


def show(args: argparse.Namespace, out, err) -> int:
    # imported here: the command's parser is built before Django is set up
    from vouch import regions
    from vouch.tenancy.operations import report

    try:
        company = report.find_company(args.company)
    except LookupError as exc:
        print(exc.args[0] if exc.args else str(exc), file=err)
        return 1
    details = report.show_company(company)
    if args.json:
        json.dump(details, out, indent=2)
        print(file=out)
        return 0
    db, files = details["database"], details["files"]
    identity = "ok" if db["identity_ok"] else f"WRONG ({db['identity'] or 'none'})"
    lines = [
        ("Company", f"{details['name']} ({details['id']})"),
        ("Region", f"{details['region']}: {regions.label(details['region'])}"),
        ("Status", details["status"]),
        ("Created", details["created_at"]),
        ("Members", str(details["members"])),
        ("Database", db["location"] + ("" if db["exists"] else " (missing)")),
        ("Database size", report.human_size(db["size_bytes"])),
        ("Identity", identity),
        ("Schema", details["schema"]),
        ("Files", files["path"] + ("" if files["exists"] else " (missing)")),
        ("Files size", report.human_size(files["size"]) + (f", mode {files['mode']}" if files["mode"] else "")),
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label.ljust(width)}  {value}", file=out)
    if details["pending"]:
        print("Pending migrations:", file=out)
        for name in details["pending"]:
            print(f"  {name}", file=out)
    for problem in details["problems"]:
        print(f"PROBLEM: {problem}", file=out)
    return 0 if not details["problems"] else 1


def check(args: argparse.Namespace, out) -> int:
    # imported here: the command's parser is built before Django is set up
    from vouch.tenancy.operations import report

    result = report.check_all()
    if result.problems:
        print(f"Problems ({len(result.problems)}):", file=out)
        print_table(["id", "name", "region", "problem"], result.problems, out)
    if result.orphans:
        print(f"\nOrphans: company data with no company ({len(result.orphans)}):", file=out)
        print_table(
            ["kind", "region", "company id", "location", "note"],
            [
                [o.kind, o.region, o.company_id, o.location, o.note or _age_note(o, args.orphan_min_age * 60)]
                for o in result.orphans
            ],
            out,
        )
    if result.ok:
        noun = "company" if result.companies == 1 else "companies"
        print(f"OK: {result.companies} {noun}, no problems, no orphans.", file=out)
        return 0
    if args.remove_orphans and result.orphans:
        removed = report.remove_orphans(result.orphans, min_age=args.orphan_min_age * 60)
        for orphan in removed:
            print(f"removed {orphan.kind} {orphan.location}", file=out)
        kept = len(result.orphans) - len(removed)
        print(f"Removed {len(removed)} orphan(s)" + (f"; left {kept} too young to be sure." if kept else "."), file=out)
        if not result.problems and not kept:
            return 0
    return 1


def _age_note(orphan, min_age: float) -> str:
    if orphan.age_seconds is not None and orphan.age_seconds < min_age:
        return f"recent ({int(orphan.age_seconds)} s old): may be a company being created"
    return ""
