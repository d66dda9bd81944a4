"""Start-up checks of the master keys, in every mode: Vouch refuses to start with a
key directory others can read, an unreadable or malformed key, without a master key
version that company keys still need, or with one replaced by another key."""

from __future__ import annotations

from django.core.checks import Error, Warning, register
from django.db import DatabaseError

from vouch.config import env
from vouch.vault import account_secrets, keystore, providers
from vouch.vault.errors import DecryptionError, KeyConfigurationError
from vouch.vault.keyring import wrap_aad
from vouch.vault.models import DataKey, InstallationKey


def problems() -> list[str]:
    """What is wrong with the master keys, in plain sentences (empty: nothing)."""
    providers.reset()
    try:
        provider = providers.get_provider()
        available = set(provider.versions())
    except KeyConfigurationError as exc:
        return [str(exc)]
    try:
        needed = set(DataKey.objects.values_list("master_version", flat=True).distinct())
        needed |= set(InstallationKey.objects.values_list("master_version", flat=True).distinct())
    except DatabaseError:  # before the first migration: nothing can need a key yet
        return []
    missing = sorted(needed - available)
    if missing:
        return [
            f"Master key version(s) {', '.join(map(str, missing))} are used by company (or installation) keys "
            f"but missing from {provider.describe()}. Restore them from the key backup "
            "(see docs/operations/production.md, 'Keys'); without them that company data cannot be read."
        ]
    return _replaced(provider, sorted(needed))


def _replaced(provider, versions: list[int]) -> list[str]:
    """Master key versions present under their name but holding another key (restored
    from another installation's backup, say): each is tried on one company key it
    wrapped, so Vouch refuses to start instead of failing on every company's data."""
    wrong = []
    for version in versions:
        row = DataKey.objects.filter(master_version=version).only("company_id", "purpose", "version", "wrapped").first()
        if row is not None:
            aad = wrap_aad(row.company_id, row.purpose, row.version)
        else:
            row = InstallationKey.objects.filter(master_version=version).first()  # type: ignore[assignment]  # typing debt: an Optional not narrowed here
            if row is None:  # re-wrapped by a rotation meanwhile
                continue
            aad = account_secrets.wrap_aad(row.purpose, row.version)
        try:
            provider.unwrap(version, bytes(row.wrapped), aad)
        except DecryptionError:
            wrong.append(version)
        except KeyConfigurationError:  # retired by a rotation meanwhile
            continue
    if wrong:
        return [
            f"Master key version(s) {', '.join(map(str, wrong))} in {provider.describe()} do not open the company "
            "keys wrapped with them: the key was replaced by another one. Restore the right key from the key "
            "backup (see docs/operations/production.md, 'Keys'); without it that company data cannot be read."
        ]
    return []


@register()
def master_keys(app_configs, **kwargs) -> list:
    errors: list = [Error(message, id="vault.E010") for message in problems()]
    from django.conf import settings

    if settings.PRODUCTION and settings.VOUCH_KEY_PROVIDER == "file" and not _keys_dir_configured():
        errors.append(
            Warning(
                "Master keys are in VOUCH_DATA_DIR/keys, beside the databases: a single stolen disk or "
                "backup then holds both. Set VOUCH_KEYS_DIR to a separate volume, or use VOUCH_MASTER_KEYS "
                "or a KMS provider.",
                id="vault.W011",
            )
        )
    return errors


def _keys_dir_configured() -> bool:
    return bool(env("VOUCH_KEYS_DIR"))


@register()
def key_store(app_configs, **kwargs) -> list:
    """A VOUCH_KEY_STORE_URL that names no store stops start-up (not the first signup)."""
    try:
        keystore.store()
    except KeyConfigurationError as exc:
        return [Error(str(exc), id="vault.E012")]
    return []
