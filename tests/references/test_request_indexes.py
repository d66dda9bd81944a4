"""The requests table keeps the indexes its queries use and no more: the single-column
indexes on created_at and created_by_id, covered by the composite ones that lead with
them, are gone (migration 0007, which drops them without rebuilding the table), and the
dashboard's reads still go through an index. Both paths."""

from __future__ import annotations

import pytest
from django.db import connections as django_connections
from django.db.migrations.executor import MigrationExecutor

from tests.accounts.helpers import fast_company
from tests.references.workflow import make_request
from vouch.core.context import company_context
from vouch.references.request_models import ReferenceRequest
from vouch.tenancy import connections

pytestmark = pytest.mark.django_db

TABLE = ReferenceRequest._meta.db_table
BEFORE = ("references", "0006_reindex_name_words")
DROPPING = ("references", "0007_drop_indexes_covered_by_composites")


def index_columns(alias: str) -> dict[str, list[str]]:
    """Each index of the requests table (not the primary key) and its columns, in order."""
    connection = django_connections[alias]
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, TABLE)
    return {name: info["columns"] for name, info in found.items() if info["index"] and not info["primary_key"]}


def test_only_the_composite_indexes_lead_with_created_at_and_created_by():
    company = fast_company()
    with company_context(company) as context:
        columns = sorted(index_columns(connections.ensure_alias(context)).values())
    assert ["created_at"] not in columns and ["created_by_id"] not in columns
    assert ["created_at", "id"] in columns and ["created_by_id", "created_at", "id"] in columns
    assert ["status", "created_at"] in columns


def test_going_back_restores_the_indexes_and_forward_drops_them_keeping_the_rows():
    company = fast_company()
    owner = company.memberships.order_by("pk").first().user
    make_request(company, owner)
    with company_context(company) as context:
        alias = connections.ensure_alias(context, admin=True)
        MigrationExecutor(django_connections[alias]).migrate([BEFORE])
        assert {("created_at",), ("created_by_id",)} <= {tuple(c) for c in index_columns(alias).values()}
        MigrationExecutor(django_connections[alias]).migrate([DROPPING])
        assert not {("created_at",), ("created_by_id",)} & {tuple(c) for c in index_columns(alias).values()}
        assert ReferenceRequest.objects.count() == 1


def test_the_recruiters_own_requests_are_still_read_through_an_index():
    company = fast_company()
    owner = company.memberships.order_by("pk").first().user
    with company_context(company) as context:
        alias = connections.ensure_alias(context)
        for n in range(30):
            make_request(company, owner, email=f"c{n}@example.org")
        query = ReferenceRequest.objects.filter(created_by_id=owner.pk).order_by("-created_at", "-id")[:25]
        connection = django_connections[alias]
        if connection.vendor == "postgresql":
            # On 30 rows PostgreSQL would rightly scan the table; asked not to, it must
            # find an index that serves both the filter and the order.
            with connection.cursor() as cursor:
                cursor.execute("SET enable_seqscan = off")
            try:
                plan = query.explain()
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("RESET enable_seqscan")
            assert "request_creator_created_idx" in plan and "Sort" not in plan, plan
        else:
            plan = query.explain()
            assert "request_creator_created_idx" in plan and "TEMP B-TREE" not in plan, plan
