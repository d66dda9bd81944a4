"""vouch.accounts.backends: the user every signed-in request reads, through SQL compiled
once, is the user ModelBackend's ORM read gives; an inactive or deleted user's session
is anonymous; a signed-in page reads the user once; signing in is allauth's."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user
from django.contrib.auth.backends import ModelBackend
from django.db import connection, router
from django.db.models.sql.compiler import SQLCompiler
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from tests.accounts.helpers import fast_user
from tests.conftest import PASSWORD, HTTPSClient, make_user
from vouch.accounts.backends import AuthenticationBackend
from vouch.accounts.models import User
from vouch.accounts.policy import Role

pytestmark = pytest.mark.django_db

BACKEND = "vouch.accounts.backends.AuthenticationBackend"


def test_it_is_the_only_backend():
    # A second backend would hash a failed sign-in's password twice.
    assert settings.AUTHENTICATION_BACKENDS == [BACKEND]


def test_the_prepared_user_is_the_orm_user(db):
    user = make_user(name="Ada Lovelace")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    mine = AuthenticationBackend().get_user(user.pk)
    theirs = ModelBackend().get_user(user.pk)
    assert type(mine) is type(theirs) is User
    for field in User._meta.concrete_fields:
        assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.name
    assert mine.is_staff and mine.full_name == "Ada Lovelace" and mine.password.startswith("argon2")
    assert mine._state.db == theirs._state.db == router.db_for_read(User)
    assert not mine._state.adding and mine.get_deferred_fields() == set()
    assert mine.get_session_auth_hash() == theirs.get_session_auth_hash()
    assert mine.check_password(PASSWORD)


def test_none_for_a_missing_or_inactive_user_as_model_backend(db):
    user = fast_user()
    missing = User.objects.order_by("-pk").values_list("pk", flat=True).first() + 1
    assert AuthenticationBackend().get_user(missing) is None is ModelBackend().get_user(missing)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert AuthenticationBackend().get_user(user.pk) is None is ModelBackend().get_user(user.pk)


def _session_user(client):
    request = RequestFactory().get("/")
    request.session = client.session
    return get_user(request)


@pytest.mark.parametrize("what", ["inactive", "deleted"])
def test_an_inactive_or_deleted_users_session_is_anonymous(client, members, what):
    user = members[Role.VIEWER].user
    client.force_login(user)
    assert client.session[BACKEND_SESSION_KEY] == BACKEND
    assert _session_user(client).pk == user.pk
    if what == "inactive":
        User.objects.filter(pk=user.pk).update(is_active=False)
    else:
        user.delete()
    assert not _session_user(client).is_authenticated
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_session_of_another_backend_is_anonymous(client, members):
    """Sessions made under allauth's own path (before this backend) are signed out."""
    client.force_login(members[Role.VIEWER].user)
    session = client.session
    session[BACKEND_SESSION_KEY] = "allauth.account.auth_backends.AuthenticationBackend"
    session.save()
    assert not _session_user(client).is_authenticated


def test_a_signed_in_page_reads_the_user_once_without_compiling_it(client, members, monkeypatch):
    user = members[Role.VIEWER].user
    client.force_login(user)
    assert client.get("/dashboard/").status_code == 200
    compiled = []
    as_sql = SQLCompiler.as_sql

    def recording(compiler, *args, **kwargs):
        compiled.append(compiler.query.model)
        return as_sql(compiler, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", recording)
    table = connection.ops.quote_name(User._meta.db_table)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/dashboard/").status_code == 200
    reads = [q["sql"] for q in queries if f"FROM {table}" in q["sql"]]
    assert len(reads) == 1, reads
    assert User not in compiled  # the SQL compiled on the first request is reused


def test_signing_in_through_the_login_page(db):
    user = make_user()
    client = HTTPSClient()
    wrong = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD + "x"})
    assert wrong.status_code == 200 and not _session_user(client).is_authenticated
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session[BACKEND_SESSION_KEY] == BACKEND
    assert _session_user(client).pk == user.pk
    assert client.get("/accounts/email/").status_code == 200
