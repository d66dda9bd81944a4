from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("references", "0010_desk"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowsettings",
            name="known_office_networks",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
