"""``vouch backup run [--company X]`` and ``vouch backup list [--company X | --control]``.

Exit codes: 0 done, 1 some set failed or waits for its target, 2 bad input."""

from __future__ import annotations

import argparse
import sys

from django.db import DatabaseError

from vouch import regions
from vouch.backups.models import BackupSet, BackupStatus
from vouch.backups.sets import schedule, writer
from vouch.backups.sets.format import company_prefix, control_prefix
from vouch.backups.sets.reader import list_sets
from vouch.objectstore import StoreUnavailable, open_store
from vouch.tenancy.models import CompanyStatus
from vouch.tenancy.operations.report import find_company


def _company(key: str, err):
    try:
        return find_company(key)
    except LookupError as exc:
        print(exc.args[0], file=err)
        return None


def cli_run(args: argparse.Namespace, out=None, err=None) -> int:
    from tqdm import tqdm

    out, err = out or sys.stdout, err or sys.stderr
    company = None
    if args.company:
        company = _company(args.company, err)
        if company is None:
            return 2
        if company.status == CompanyStatus.DELETED:
            print(f"Company {company.pk} has been deleted; there is nothing to back up.", file=err)
            return 2
    show_bar = err.isatty() if args.progress is None else args.progress
    bar = tqdm(total=0, disable=not show_bar, file=err, unit=" sets", desc="Backing up")

    def on_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    def on_set(row: BackupSet) -> None:
        bar.update(1)
        if row.status == BackupStatus.FAILED and show_bar:
            bar.write(f"failed: {row.scope} {row.company_id or ''}: {row.error}", file=err)

    try:
        with bar:
            result = schedule.run_round(company=company, on_total=on_total, on_set=on_set)
    except ValueError as exc:  # a region without a backup target
        print(str(exc), file=err)
        return 2
    print(
        f"{len(result.complete)} set(s) complete, {len(result.pending)} waiting for their target, "
        f"{len(result.failed)} failed; {result.pruned} removed by retention.",
        file=out,
    )
    for target, error in result.down.items():
        print(f"Target unavailable: {target}: {error}", file=out)
    for row in result.failed:
        print(f"Failed: {row.scope} {row.company_id or ''}: {row.error}", file=out)
    if result.pending:
        print("Waiting sets are kept (encrypted) and retried; `vouch backup run` retries them now.", file=out)
    return 0 if result.ok else 1


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]  # typing debt
    return str(count)


def cli_list(args: argparse.Namespace, out=None, err=None) -> int:
    """The sets in the targets (the truth), with the installation's pending ones."""
    out, err = out or sys.stdout, err or sys.stderr
    places: list[tuple[str, str, str]] = []  # (label, target, prefix)
    if args.company:
        company = _company(args.company, err)
        if company is None:
            return 2
        places.append(
            (
                f"company {company.pk} ({company.region})",
                writer.company_target(company.region),
                company_prefix(company.pk),
            )
        )
    if args.control or not args.company:
        places.append(("control database", writer.control_target(), control_prefix()))
    if not args.company and not args.control:
        places += [(f"region {r.name}", r.backup_url, "companies/") for r in regions.all_regions() if r.backup_url]
    code = 0
    for label, target, prefix in places:
        print(f"{label}: {open_store(target).describe()}", file=out)
        try:
            sets = list_sets(open_store(target), prefix)
        except StoreUnavailable as exc:
            print(f"  unavailable: {exc}", file=out)
            code = 1
            continue
        in_target = {s.set_id for s in sets}
        for info in sets:
            status = "complete" if info.complete else "incomplete"
            who = f"company {info.company_id}  " if info.company_id and not args.company else ""
            print(
                f"  {info.taken_at:%Y-%m-%d %H:%M:%S}Z  {who}{info.set_id}  {_size(info.size):>10}  {status}", file=out
            )
        waiting = BackupSet.objects.filter(status=BackupStatus.PENDING, target=target).exclude(pk__in=in_target)
        if args.company:
            waiting = waiting.filter(company_id=company.pk)
        elif label == "control database":
            waiting = waiting.filter(scope="control")
        try:
            waiting = list(waiting.order_by("taken_at"))  # type: ignore[assignment]  # typing debt
        except DatabaseError:  # no control database (being restored): the target alone
            waiting = []  # type: ignore[assignment]  # typing debt
        for row in waiting:
            who = f"company {row.company_id}  " if row.company_id and not args.company else ""
            print(
                f"  {row.taken_at:%Y-%m-%d %H:%M:%S}Z  {who}{row.pk}  {_size(row.size_bytes):>10}  "
                "pending (in this server's spool, waiting for the target)",
                file=out,
            )
        if not sets and not waiting:
            print("  no backup sets", file=out)
    return code
