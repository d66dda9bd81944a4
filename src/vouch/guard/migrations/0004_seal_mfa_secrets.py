"""Seal the two-factor secrets already stored in plain text (TOTP secrets, recovery-code
seeds) under the account secrets key, bound to their user and authenticator type (see
vouch.guard.mfa_secrets). Reversible: the reverse opens them again, and stops, changing
nothing, if one does not open."""

from django.db import migrations

from vouch.guard.mfa_secrets import SECRET_FIELDS, open_row, seal_row
from vouch.vault import account_secrets
from vouch.vault.errors import DecryptionError


def _rows(apps):
    Authenticator = apps.get_model("mfa", "Authenticator")
    return Authenticator, Authenticator.objects.filter(type__in=list(SECRET_FIELDS)).order_by("pk")


def seal(apps, schema_editor):
    Authenticator, rows = _rows(apps)
    if not rows.exists():
        return  # nothing to seal: the key is made with the first secret
    keys = account_secrets.load_or_create(model=apps.get_model("vault", "InstallationKey"))
    for row in rows.iterator():
        data = seal_row(row.user_id, row.type, row.data, keys=keys)
        if data != row.data:
            Authenticator.objects.filter(pk=row.pk).update(data=data)


def unseal(apps, schema_editor):
    Authenticator, rows = _rows(apps)
    if not rows.exists():
        return
    keys = account_secrets.load(model=apps.get_model("vault", "InstallationKey"))
    if keys is None:
        return  # never sealed
    opened = {}
    for row in rows.iterator():
        try:
            opened[row.pk] = open_row(row.user_id, row.type, row.data, keys=keys, what=f"authenticator:{row.pk}")
        except DecryptionError as exc:
            raise RuntimeError(f"Cannot unseal the two-factor secrets: {exc}. Nothing was changed.") from None
    for pk, data in opened.items():
        Authenticator.objects.filter(pk=pk).update(data=data)


class Migration(migrations.Migration):
    dependencies = [
        ("guard", "0003_signin_completed_reported"),
        ("mfa", "0003_authenticator_type_uniq"),
        ("vault", "0002_installationkey"),
    ]

    operations = [migrations.RunPython(seal, unseal)]
