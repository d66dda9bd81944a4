"""The single-column indexes on a request's created_at and created_by_id are covered by
the composite indexes of 0005, which lead with those columns: every write paid for
two indexes no query needed.

Dropped with DROP INDEX, found by introspection: Django's AlterField would remake the
whole table on SQLite to change db_index."""

from django.db import migrations, models
from django.db.models import Index

COLUMNS = ("created_at", "created_by_id")


def _single_column_indexes(schema_editor, model, column: str) -> list[str]:
    return schema_editor._constraint_names(model, [column], index=True, type_=Index.suffix)


def drop(apps, schema_editor) -> None:
    model = apps.get_model("references", "ReferenceRequest")
    for column in COLUMNS:
        for name in _single_column_indexes(schema_editor, model, column):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))


def restore(apps, schema_editor) -> None:
    model = apps.get_model("references", "ReferenceRequest")
    for column in COLUMNS:
        if not _single_column_indexes(schema_editor, model, column):
            field = model._meta.get_field(column)
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):
    dependencies = [
        ("references", "0006_reindex_name_words"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="referencerequest",
                    name="created_at",
                    field=models.DateTimeField(auto_now_add=True),
                ),
                migrations.AlterField(
                    model_name="referencerequest",
                    name="created_by_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
            ],
            database_operations=[migrations.RunPython(drop, restore)],
        ),
    ]
