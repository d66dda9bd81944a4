"""The session store's hand-written lookup (vouch.accounts.sessions) behaves as
Django's database store: server-side, expired rows ignored, unknown keys replaced."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from vouch.accounts.sessions import SessionStore

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored():
    store = SessionStore()
    store["who"] = "ann"
    store.save()
    return store.session_key


def test_it_is_the_embedded_default_engine():
    # With Redis the cached_db store serves sessions from the cache instead.
    expected = "django.contrib.sessions.backends.cached_db" if settings.REDIS_URL else "vouch.accounts.sessions"
    assert expected == settings.SESSION_ENGINE


def test_reads_what_django_reads(stored):
    assert SessionStore(stored).load() == DjangoStore(stored).load() == {"who": "ann"}


def test_expired_session_is_not_loaded(stored):
    Session.objects.filter(session_key=stored).update(expire_date=timezone.now() - datetime.timedelta(seconds=1))
    store = SessionStore(stored)
    assert store.load() == {}
    assert store.session_key is None  # a new key is issued on save, never the old one reused
    store["x"] = 1
    store.save()
    assert store.session_key != stored


@pytest.mark.parametrize("key", ["no-such-session-key-000000000000", None, "short"])
def test_unknown_or_malformed_key(key):
    store = SessionStore(key)
    assert store.load() == {}
    assert store.session_key is None


def test_deleted_session_is_gone(stored):
    SessionStore(stored).delete()
    assert SessionStore(stored).load() == {}
    assert not Session.objects.filter(session_key=stored).exists()
