from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("guard", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountstate",
            name="unlock_nonce_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
