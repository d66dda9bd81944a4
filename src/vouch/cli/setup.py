"""``vouch setup``, ``vouch migrate`` and ``vouch check``: prepare the data directory,
keys, certificate, database and static files; apply migrations; run the configuration
checks. None needs a prepared control database: the first two prepare it.

Django is set up after the parser is built (:func:`vouch.cli.main`): what needs it is
imported inside the functions that run the commands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vouch import config
from vouch.cli.groups import Group, never


def adopt_company_keks() -> None:
    """Companies from before key-encryption keys get theirs (idempotent; says what it did)."""
    # Imported when run: they need Django, set up by main after this module is imported.
    from vouch.vault import kek_adoption

    for line in kek_adoption.describe(kek_adoption.adopt_company_keks()):
        print(line, file=sys.stderr)


def setup(quiet: bool = False) -> tuple[Path, Path]:
    """Idempotent: safe to run on every start."""
    # Imported when run: they need Django, set up by main after this module is imported.
    from django.conf import settings

    data = config.data_dir()
    for sub in ("keys", "outbox", "tls"):
        (data / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data / "keys", 0o700)
    verbosity = 0 if quiet else 1
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)
    call_command("createcachetable", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from vouch.vault.keyring import ensure_master_key

    ensure_master_key()  # the first run creates the master key (VOUCH_KEYS_DIR)
    adopt_company_keks()
    if settings.VOUCH_TLS_CERT and settings.VOUCH_TLS_KEY:
        return Path(settings.VOUCH_TLS_CERT), Path(settings.VOUCH_TLS_KEY)
    from vouch.web.tls import ensure_dev_certificate

    return ensure_dev_certificate(data / "tls")


def add_setup_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("setup", help="prepare the data directory, database and certificate")


def run_setup(args: argparse.Namespace) -> int:
    # Imported when run: they need Django, set up by main after this module is imported.
    from vouch.vault.errors import KeyConfigurationError

    try:
        setup()
    except KeyConfigurationError as exc:  # e.g. company keys without their master key
        print(f"Vouch setup stopped: {exc}", file=sys.stderr)
        return 1
    return 0


def add_migrate_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("migrate", help="apply database migrations")


def run_migrate(args: argparse.Namespace) -> int:
    # Imported when run: they need Django, set up by main after this module is imported.
    from django.core.management import call_command

    from vouch.vault.errors import KeyConfigurationError

    call_command("migrate")
    try:
        adopt_company_keks()
    except KeyConfigurationError as exc:
        print(f"Migrated, but company keys were not moved to key-encryption keys: {exc}", file=sys.stderr)
        return 1
    return 0


def add_check_parser(sub: argparse._SubParsersAction) -> None:
    p_check = sub.add_parser("check", help="run the configuration checks")
    p_check.add_argument("--deploy", action="store_true")


def run_check(args: argparse.Namespace) -> int:
    # Imported when run: they need Django, set up by main after this module is imported.
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    try:
        call_command("check", deploy=args.deploy, fail_level="ERROR")
    except SystemCheckError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


SETUP = Group(("setup",), add_setup_parser, run_setup, needs_database=never)
MIGRATE = Group(("migrate",), add_migrate_parser, run_migrate, needs_database=never)
CHECK = Group(("check",), add_check_parser, run_check, needs_database=never)
