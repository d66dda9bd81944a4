from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0002_company_lifecycle"),
    ]

    operations = [
        migrations.AddField(
            model_name="company",
            name="offline_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="company",
            name="offline_reason",
            field=models.TextField(blank=True),
        ),
    ]
