"""What ``vouch keys ...`` prints. The work is done in :mod:`vouch.vault.rotation`.

vouch keys rotate-master [--batch N]        new master key version, re-wrap every company key
vouch keys rotate-company COMPANY [--batch N] new data key, re-encrypt that company's data
vouch keys status [--company X | --all]      master versions in use, data key versions and ages,
                                             company key-encryption keys (present/missing),
                                             the account secrets key (two-factor secrets),
                                             the local mail outbox's key and its messages
vouch keys generate                          a new master key for VOUCH_MASTER_KEYS

Exit codes: 0 done, 1 could not finish or a problem was found, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys

from vouch.core.text_table import print_table

# Django is set up after the parser is built: the work modules are imported when run.
INTERRUPTED = "Interrupted: run the same command again to finish; the work already done is kept."


def add_parser(sub) -> None:
    """The ``keys`` subcommand and its own subcommands."""
    p_keys = sub.add_parser("keys", help="encryption keys: rotate, status, generate")
    keys_sub = p_keys.add_subparsers(dest="keys_command", required=True)
    progress = {
        "action": argparse.BooleanOptionalAction,
        "default": None,
        "help": "progress bar (default: on a terminal)",
    }
    p_master = keys_sub.add_parser(
        "rotate-master",
        help="new master key version; re-wrap every company's keys, retire unused versions (online; re-run to resume)",
    )
    p_master.add_argument("--batch", type=int, default=500, metavar="N", help="keys per transaction (default 500)")
    p_master.add_argument("--progress", **progress)
    p_company = keys_sub.add_parser(
        "rotate-company",
        help="new data key for one company; re-encrypt its values and files (online; re-run to resume)",
    )
    p_company.add_argument("company", help="company id, or its exact name")
    p_company.add_argument("--batch", type=int, default=200, metavar="N", help="rows per transaction (default 200)")
    p_company.add_argument("--progress", **progress)
    p_status = keys_sub.add_parser("status", help="master key versions in use, company data key versions and ages")
    which = p_status.add_mutually_exclusive_group()
    which.add_argument("--company", metavar="ID_OR_NAME", help="one company's keys")
    which.add_argument("--all", action="store_true", help="every company's keys, one line each")
    keys_sub.add_parser("generate", help="print a new random master key for VOUCH_MASTER_KEYS")


def run(args: argparse.Namespace, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    command = args.keys_command
    if command == "rotate-master":
        return rotate_master(args, out, err)
    if command == "rotate-company":
        return rotate_company(args, out, err)
    if command == "status":
        return status(args, out, err)
    if command == "generate":
        return generate(out, err)
    return 2


def _bar(args: argparse.Namespace, err, unit: str):
    from tqdm import tqdm

    show = err.isatty() if args.progress is None else args.progress
    return tqdm(total=0, disable=not show, file=err, unit=unit, dynamic_ncols=True)


def _follow(bar):
    """A rotation's progress callback drawing on ``bar``; each stage starts afresh
    (its own total and rate)."""
    current = {"stage": None}

    def progress(done: int, total: int, stage: str) -> None:
        if stage != current["stage"]:
            current["stage"] = stage
            bar.reset(total=total)
            bar.set_description_str(stage, refresh=False)
        bar.total = max(total, done)
        bar.update(done - bar.n)

    return progress


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _versions(versions) -> str:
    return ", ".join(str(v) for v in versions)


def rotate_master(args: argparse.Namespace, out, err) -> int:
    from vouch.vault import providers
    from vouch.vault.errors import KeyConfigurationError, VaultError
    from vouch.vault.rotation import rotate_master as rotate

    if args.batch < 1:
        print("--batch must be at least 1.", file=err)
        return 2
    bar = _bar(args, err, " keys")
    progress = _follow(bar)

    try:
        with bar:
            result = rotate(batch_size=args.batch, progress=progress)
    except KeyConfigurationError as exc:
        print(exc, file=err)
        return 1
    except VaultError as exc:
        print(f"Master key rotation stopped: {exc}\n{INTERRUPTED}", file=err)
        return 1
    except KeyboardInterrupt:
        print(INTERRUPTED, file=err)
        return 130
    version = result["master_version"]
    print(
        f"Master key version {version} ({result['provider']}): "
        + ("created; " if result["created"] else "already there; ")
        + "re-wrapped "
        + _and(
            [f"{result['rewrapped']} company keys"]
            + (["the account secrets key"] if result["account_key"] == "rewrapped" else [])
            + (["the outbox key"] if result["outbox"] == "rewrapped" else [])
            + (
                [f"{files} key store file{'' if files == 1 else 's'} (company KEKs, control backup key)"]
                if (files := result["key_files"].get("rewrapped", 0))
                else []
            )
        )
        + f" in {result['seconds']:.1f} s.",
        file=out,
    )
    if result["account_key"] == "unreadable":
        print(
            "The account secrets key does not unwrap and was not re-wrapped (recorded as a security event; see "
            "`vouch keys status`): two-factor codes cannot be checked until it is restored.",
            file=err,
        )
    if result["outbox"] == "unreadable":
        print(
            "The outbox key does not open and was not re-wrapped (see `vouch keys status`); the next email sets "
            "it aside and makes a new one.",
            file=err,
        )
    if result["key_files"].get("unreadable"):
        print(
            f"{result['key_files']['unreadable']} key store file(s) (company KEKs or the control backup key) do not "
            "unwrap and were not re-wrapped: see `vouch keys status --all`.",
            file=err,
        )
    environment = isinstance(providers.get_provider(), providers.EnvironmentKeyProvider)
    if result["retired"]:
        if environment:
            print(
                f"Master key version(s) {_versions(result['retired'])} no longer used: remove them from "
                "VOUCH_MASTER_KEYS (and from every process's environment) once no backup of the control "
                "database needs them.",
                file=out,
            )
        else:
            print(
                f"Retired master key version(s) {_versions(result['retired'])}: their files were renamed "
                "*.retired; delete them once no backup of the control database needs them.",
                file=out,
            )
    if result["broken"]:
        shown = ", ".join(result["broken"][:10]) + (" ..." if len(result["broken"]) > 10 else "")
        print(
            f"{len(result['broken'])} compan{'y has' if len(result['broken']) == 1 else 'ies have'} a key that "
            f"does not unwrap (altered, or its master key version is missing; recorded as security events): "
            f"{shown}. Their data cannot be read as it is; its master key version stays until that is resolved.",
            file=err,
        )
    if result["still_used"]:
        used = ", ".join(f"version {v}: {n} keys" for v, n in sorted(result["still_used"].items()))
        print(f"Older master key versions still in use ({used}); run `vouch keys rotate-master` again.", file=err)
        return 1
    if not result["created"] and not result["rewrapped"] and environment:
        print(
            f"Every company key already uses version {version}, the newest in VOUCH_MASTER_KEYS. To rotate, "
            f"add '{version + 1}:<key>' there (a new key: `vouch keys generate`), restart Vouch, "
            "and run this again.",
            file=out,
        )
    return 0


def _find_company(key: str, err):
    from vouch.tenancy.models import CompanyStatus
    from vouch.tenancy.operations.report import find_company

    try:
        company = find_company(key)
    except LookupError as exc:
        print(exc.args[0] if exc.args else str(exc), file=err)
        return None
    if company.status == CompanyStatus.DELETED:
        print(f"Company {company.pk} has been deleted; its keys were destroyed with it.", file=err)
        return None
    return company


def rotate_company(args: argparse.Namespace, out, err) -> int:
    from django.conf import settings
    from django.db import DatabaseError

    from vouch.core.context import WrongCompanyDatabase
    from vouch.vault.errors import KeyConfigurationError, KeyUnavailable, VaultError
    from vouch.vault.rotation import rotate_company as rotate

    if args.batch < 1:
        print("--batch must be at least 1.", file=err)
        return 2
    company = _find_company(args.company, err)
    if company is None:
        return 2
    bar = _bar(args, err, " items")
    follow = _follow(bar)
    told_wait = False

    def progress(done: int, total: int, stage: str) -> None:
        nonlocal told_wait
        if stage.startswith("waiting") and not told_wait:
            told_wait = True
            # Said even without a progress bar: a silent minute looks like a hang.
            bar.write(
                f"{stage.capitalize()}: other Vouch processes may still encrypt with the old key until their "
                f"key cache expires (VOUCH_KEY_CACHE_SECONDS={settings.VOUCH_KEY_CACHE_SECONDS}); then a last pass.",
                file=out,
            )
        follow(done, total, stage)

    try:
        with bar:
            result = rotate(company, batch_size=args.batch, progress=progress)
    except (KeyUnavailable, KeyConfigurationError) as exc:
        print(f"Company {company.name} ({company.pk}): {exc}", file=err)
        return 1
    except (DatabaseError, WrongCompanyDatabase) as exc:
        print(f"Company {company.name} ({company.pk}): its database cannot be used: {exc}", file=err)
        return 1
    except VaultError as exc:
        print(f"Rotation of {company.name} ({company.pk}) stopped: {exc}\n{INTERRUPTED}", file=err)
        return 1
    except KeyboardInterrupt:
        print(INTERRUPTED, file=err)
        return 130
    print(
        f"{company.name} ({company.pk}): data key version {result['data_version']}"
        + (" (rotation resumed)" if result["resumed"] else "")
        + f"; re-encrypted {result['values']} values in {result['rows']} rows and {result['files']} files "
        f"in {result['passes']} passes, {result['seconds']:.1f} s.",
        file=out,
    )
    if result["destroyed"]:
        print(f"Destroyed data key version(s) {_versions(result['destroyed'])}.", file=out)
    if result["unreadable"]:
        shown = ", ".join(result["unreadable"][:10]) + (" ..." if len(result["unreadable"]) > 10 else "")
        print(
            f"{len(result['unreadable'])} item(s) could not be decrypted and were left as they were "
            f"(recorded as security events): {shown}",
            file=err,
        )
        return 1
    return 0


def status(args: argparse.Namespace, out, err) -> int:
    from django.utils import timezone

    from vouch.outbox.status import outbox_status
    from vouch.vault import providers
    from vouch.vault.errors import KeyConfigurationError
    from vouch.vault.rotation import company_keys, company_summary
    from vouch.vault.rotation import status as master_status
    from vouch.vault.rotation.status import age

    now = timezone.now()
    try:
        masters = master_status()
        provider = providers.get_provider().describe()
    except KeyConfigurationError as exc:
        print(exc, file=err)
        return 1
    if args.company:
        company = _find_company(args.company, err)
        if company is None:
            return 2
        selected = company_keys([company.pk])
    else:
        selected = company_keys() if args.all else None  # type: ignore[assignment]  # typing debt: an Optional not narrowed here

    print(f"Master keys ({provider}):", file=out)
    print_table(
        ["version", "state", "wraps", "oldest wrap", "newest wrap"],
        [
            [
                m["version"],
                "current" if m["current"] else ("available" if m["available"] else "MISSING"),
                m["wraps"],
                age(m["oldest"], now),
                age(m["newest"], now),
            ]
            for m in masters
        ],
        out,
    )
    missing = [m["version"] for m in masters if not m["available"]]
    try:
        outbox = outbox_status()
    except KeyConfigurationError as exc:
        print(exc, file=err)
        return 1
    except OSError as exc:  # e.g. run as a user who may not read the outbox
        print(f"The outbox cannot be read: {exc}", file=err)
        return 1
    kek_problems: list[str] = []
    if selected is None:
        summary = company_summary()
        print(f"\nCompany data keys: {summary['companies']} companies", file=out)
        missing_keks = summary["kek_missing"]
        print(
            f"Company key-encryption keys ({summary['kek_store']}): "
            + ("kept by the provider" if missing_keks is None else f"{len(missing_keks)} missing"),
            file=out,
        )
        if missing_keks:
            shown = ", ".join(missing_keks[:10]) + (" ..." if len(missing_keks) > 10 else "")
            kek_problems.append(
                f"{len(missing_keks)} compan{'y has' if len(missing_keks) == 1 else 'ies have'} key rows but no "
                f"key-encryption key in the key store ({shown}): their data cannot be read. Restore the key store "
                "from its backup (a company purged since has a .purged tombstone there and stays unreadable)."
            )
        if summary["old_scheme"]:
            kek_problems.append(
                f"{summary['old_scheme']} compan{'y has' if summary['old_scheme'] == 1 else 'ies have'} keys wrapped "
                "by the master key only (from before company key-encryption keys): run `vouch setup` (or "
                "`vouch migrate`) to move them; until then, a control database backup taken before one of them "
                "is purged would bring its keys back."
            )
        if summary["versions"]:
            print_table(["data key version", "companies"], list(summary["versions"].items()), out)
        print(f"Rotation under way: {summary['rotating']} companies", file=out)
        if summary["oldest"]:
            oldest = summary["oldest"]
            print(
                f"Oldest data key: {age(oldest['created_at'], now)} ({oldest['company_name']}, {oldest['company_id']})",
                file=out,
            )
    else:
        print(file=out)
        print_table(
            ["company", "name", "data key", "key age", "retiring", "master", "KEK"],
            [
                [
                    c["company_id"],
                    c["company_name"],
                    c["data_version"] if c["data_version"] is not None else "NONE",
                    age(c["data_created_at"], now),
                    _versions(c["retiring"]) or "-",
                    _versions(c["master_versions"]),
                    "present"
                    if c["kek"]
                    else ("none yet (old scheme: run vouch setup)" if c["old_scheme"] else "MISSING"),
                ]
                for c in selected
            ],
            out,
        )
        lacking = [str(c["company_id"]) for c in selected if not c["kek"] and not c["old_scheme"]]
        if lacking:
            kek_problems.append(
                f"no key-encryption key in the key store for {', '.join(lacking[:10])}"
                + (" ..." if len(lacking) > 10 else "")
                + ": their data cannot be read; restore the key store from its backup."
            )
        if args.company and not selected:
            print("This company has no keys.", file=out)
    print(file=out)
    problems = kek_problems + _print_account_key(now, out)
    print(file=out)
    _print_outbox(outbox, now, out)
    problems += _outbox_problems(outbox, provider)
    if missing:
        problems.insert(
            0,
            f"master key version(s) {_versions(missing)} wrap company keys but are missing from "
            f"{provider}: restore them from the key backup.",
        )
    for problem in problems:
        print(f"\nPROBLEM: {problem}", file=out)
    return 1 if problems else 0


def _print_account_key(now, out) -> list[str]:
    """The account secrets key section of ``keys status`` (see
    ``vouch.vault.account_secrets``); returns its problems."""
    from vouch.guard.mfa_secrets import census
    from vouch.vault import account_secrets, providers
    from vouch.vault.rotation.status import age

    info = account_secrets.key_info()
    counts = census()
    print("Account secrets key (two-factor secrets, in the control database):", file=out)
    problems = []
    if info is None:
        print("  key          none yet: it is made with the first two-factor secret (normal until then)", file=out)
    else:
        provider = providers.get_provider()
        available = set(provider.versions())
        current = provider.current_version() if available else None
        wrapping = []
        for version in info.master_versions:
            if version == current:
                wrapping.append(f"master key version {version} (current)")
            elif version in available:
                wrapping.append(
                    f"master key version {version}, not the current one: run `vouch keys rotate-master` to re-wrap it"
                )
            else:
                wrapping.append(f"master key version {version}, which is MISSING")
        print(f"  key version  {_versions(info.versions)}", file=out)
        print(f"  wrapped by   {'; '.join(wrapping)}", file=out)
        print(f"  wrapped      {age(info.wrapped_at, now)} ago", file=out)  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
        print(f"  opens        {'yes' if info.opens else 'NO: ' + info.problem}", file=out)
        if not info.opens:
            problems.append(
                f"the account secrets key does not open ({info.problem}): two-factor codes (authenticator apps and "
                "recovery codes) are refused until it is restored; security keys and passkeys still work."
            )
    print(f"  secrets      {counts['sealed']} sealed, {counts['plain']} plain", file=out)
    if counts["plain"]:
        problems.append(
            f"{counts['plain']} two-factor secret(s) are stored in plain text (written into the database behind "
            "Vouch's back, or `vouch migrate` has not run): Vouch refuses them at sign-in."
        )
    return problems


def _print_outbox(outbox: dict, now, out) -> None:
    """The outbox section of ``keys status`` (see ``vouch.outbox.status``)."""
    from vouch.vault.rotation.status import age

    if not outbox["used"]:
        backend = outbox["backend"]
        sender = "by SMTP (VOUCH_SMTP_URL)" if backend.endswith(".SMTPBackend") else f"by {backend}"
        print(
            f"Outbox: not used (mail is sent {sender})."
            + (f" An outbox key from earlier use is still in {outbox['directory']}." if outbox["key_file"] else ""),
            file=out,
        )
        return
    print(f"Outbox key (the local mail outbox, {outbox['directory']}):", file=out)
    counts = outbox["messages"]
    if not outbox["present"]:
        if counts["unreadable"]:
            print("  key          none (the next email makes one)", file=out)
        else:
            print("  key          none yet: it is made with the first email (normal until then)", file=out)
    else:
        version = outbox["master_version"]
        if version is None:
            wrapping = "unknown (the key file cannot be read)"
        elif outbox["master_current"]:
            wrapping = f"master key version {version} (current)"
        elif outbox["master_available"]:
            wrapping = (
                f"master key version {version}, not the current one: run `vouch keys rotate-master` to re-wrap "
                f"it (keep version {version} until then)"
            )
        else:
            wrapping = f"master key version {version}, which is MISSING"
        print(f"  key id       {outbox['key_id'] or 'unknown'}", file=out)
        print(f"  wrapped by   {wrapping}", file=out)
        if outbox["wrapped_at"]:
            print(f"  wrapped      {age(outbox['wrapped_at'], now)} ago", file=out)
        print(f"  opens        {'yes' if outbox['opens'] else 'NO: ' + outbox['problem']}", file=out)
    print(
        "  messages     "
        + (f"{counts['sealed']} sealed under it, " if outbox["present"] else "")
        + f"{counts['legacy']} plain (.eml, from before sealing), "
        f"{counts['unreadable']} unreadable (sealed under another outbox key, or damaged)",
        file=out,
    )
    if outbox["set_aside"]:
        print(
            f"  set aside    {outbox['set_aside']} outbox key(s) that did not open (deleted with their messages "
            "after 7 days)",
            file=out,
        )


def _outbox_problems(outbox: dict, provider: str) -> list[str]:
    """An outbox key that does not open, as ``keys status`` reports it (exit 1)."""
    if not outbox["used"] or not outbox["present"] or outbox["opens"]:
        return []
    sealed = outbox["messages"]["sealed"]
    lost = f"the {sealed} message(s) sealed under it cannot be read" if sealed else "no message is sealed under it"
    version = outbox["master_version"]
    if version is not None and not outbox["master_available"]:
        return [
            f"the outbox key is wrapped by master key version {version}, which is missing from {provider}: "
            f"restore it from the key backup ({lost}{' until then' if sealed else ''}; the next email sets the "
            "key aside and makes a new one)."
        ]
    return [
        f"the outbox key does not open ({outbox['problem']}): {lost}; the next email sets it aside and makes a new one."
    ]


def generate(out, err) -> int:
    from vouch.vault.providers import generate_key_text

    print(generate_key_text(), file=out)
    print(
        "A new 256-bit master key. Add it to VOUCH_MASTER_KEYS as '<next version>:<key>' "
        "(keep the older pairs until `vouch keys rotate-master` has retired them).",
        file=err,
    )
    return 0
