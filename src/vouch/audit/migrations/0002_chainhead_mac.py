"""The chain head gets a MAC, and triggers that refuse moving it back.

The existing head is sealed (its MAC computed) only when it matches the last event: a
head already moved away from it stays unsealed, so ``vouch audit verify`` reports it
instead of the upgrade hiding it. The MAC's key comes from SECRET_KEY
(``vouch.audit.chain.head_mac``, whose derivation never changes)."""

from django.db import migrations, models

from vouch.audit import chain, triggers


def seal_head(apps, schema_editor):
    alias = schema_editor.connection.alias
    ChainHead = apps.get_model("audit", "ChainHead")
    SecurityEvent = apps.get_model("audit", "SecurityEvent")
    head = ChainHead.objects.using(alias).filter(pk=1).first()
    last = SecurityEvent.objects.using(alias).order_by("-id").values_list("seq", "hash").first()
    if head is None:
        if last is None:  # an empty log (after a flush): start it sealed
            ChainHead.objects.using(alias).create(pk=1, seq=0, hash=chain.GENESIS, mac=chain.head_mac(0, chain.GENESIS))
        return
    if (head.seq, head.hash) == (last or (0, chain.GENESIS)):
        ChainHead.objects.using(alias).filter(pk=1).update(mac=chain.head_mac(head.seq, head.hash))


def create_triggers(apps, schema_editor):
    triggers.create(schema_editor.connection, parts=(triggers.HEAD,))


def drop_triggers(apps, schema_editor):
    triggers.drop(schema_editor.connection, parts=(triggers.HEAD,))


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="chainhead",
            name="mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(seal_head, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
