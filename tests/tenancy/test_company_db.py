"""vouch.tenancy.company_db: the current company's transaction, its after-commit work,
and the id a company row keeps for the user who acted."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connections, router

from tests.accounts.helpers import fast_company, fast_user
from tests.references.helpers import add_candidate
from vouch.core.context import NoCompanyContext, company_context
from vouch.references.models import Candidate
from vouch.references.request_models import ReferenceRequest
from vouch.tenancy import company_db

pytestmark = pytest.mark.django_db


def test_the_alias_is_the_routers_and_none_without_a_company():
    company = fast_company()
    with company_context(company) as context:
        assert company_db.alias() == context.alias == router.db_for_write(ReferenceRequest)
    with pytest.raises(NoCompanyContext):
        company_db.alias()
    with pytest.raises(NoCompanyContext):
        company_db.atomic()


def test_atomic_is_the_company_databases_transaction():
    company = fast_company()
    with company_context(company) as context:
        with company_db.atomic():
            assert connections[context.alias].in_atomic_block
        with pytest.raises(RuntimeError), company_db.atomic():
            Candidate.objects.create(name="Rolled Back", email="back@example.com")
            raise RuntimeError("undo")
        assert not Candidate.objects.exists()


def test_on_commit_waits_for_the_company_transaction():
    company = fast_company()
    ran = []
    with company_context(company):
        with company_db.atomic():
            company_db.on_commit(lambda: ran.append("committed"))
            assert ran == []
        assert ran == ["committed"]
        with pytest.raises(RuntimeError), company_db.atomic():
            company_db.on_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("undo")
    assert ran == ["committed"]


def test_actor_id():
    user = fast_user()
    assert company_db.actor_id(user) == user.pk
    assert company_db.actor_id(None) is None
    assert company_db.actor_id(AnonymousUser()) is None
    company = fast_company()
    candidate = add_candidate(company, created_by=user)
    assert candidate.created_by_id == user.pk
