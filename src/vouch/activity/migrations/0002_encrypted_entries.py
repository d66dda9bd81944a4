"""Activity entries move to encrypted fields and UUID keys (ciphertext is bound to the
row's key). Existing entries are copied across, encrypted under the company's key:
``vouch tenants migrate`` runs each company's migrations inside its company context."""

import uuid

from django.db import migrations, models

import vouch.vault.fields
from vouch.core.context import current_or_none

COPY_BATCH = 500


def encrypt_existing(apps, schema_editor):
    legacy = apps.get_model("activity", "LegacyEntry")
    entry = apps.get_model("activity", "Entry")
    alias = schema_editor.connection.alias
    rows = legacy.objects.using(alias).order_by("id")
    if not rows.exists():
        return

    if current_or_none() is None:
        raise RuntimeError(
            "activity entries must be encrypted with their company's key: migrate company databases "
            "with `vouch tenants migrate`"
        )
    # Each copy keeps the time its entry happened: left on, auto_now_add would stamp
    # every copy with the time of this migration.
    occurred_at = entry._meta.get_field("occurred_at")
    occurred_at.auto_now_add = False
    try:
        batch = []
        for row in rows.iterator(chunk_size=COPY_BATCH):
            batch.append(
                entry(
                    id=uuid.uuid4(),
                    occurred_at=row.occurred_at,
                    actor_id=row.actor_id,
                    actor_name=row.actor_name,
                    action=row.action,
                    summary=row.summary,
                    details=row.details,
                )
            )
            if len(batch) >= COPY_BATCH:
                entry.objects.using(alias).bulk_create(batch)
                batch = []
        entry.objects.using(alias).bulk_create(batch)
    finally:
        occurred_at.auto_now_add = True


class Migration(migrations.Migration):
    dependencies = [("activity", "0001_initial")]

    operations = [
        migrations.RenameModel("Entry", "LegacyEntry"),
        migrations.CreateModel(
            name="Entry",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("occurred_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("actor_id", models.BigIntegerField(null=True)),
                ("actor_name", vouch.vault.fields.EncryptedCharField(blank=True, max_length=150)),
                ("action", models.CharField(max_length=64)),
                ("summary", vouch.vault.fields.EncryptedCharField(max_length=300)),
                ("details", vouch.vault.fields.EncryptedJSONField(blank=True, default=dict)),
            ],
            options={"verbose_name_plural": "entries", "ordering": ["-occurred_at", "-id"]},
        ),
        migrations.RunPython(encrypt_existing, migrations.RunPython.noop, elidable=True),
        migrations.DeleteModel("LegacyEntry"),
    ]
