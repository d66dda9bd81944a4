"""Health endpoints: /healthz checks the database and cache; /livez is constant."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_cache_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"storage": "ok", "database": "ok", "cache": "ok"}
    # Data safety is reported by state only: the details are not for a public page.
    assert body["data_safety"] and all(state in ("ok", "off") for state in body["data_safety"].values())
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_healthz_fails_when_the_cache_fails(client, monkeypatch, settings):
    from django.core.cache import caches

    def broken(*args, **kwargs):
        raise ConnectionError("cache down at 10.1.2.3")

    # The strict alias: the default one reads a Redis outage as a miss (vouch.web.rediscache).
    monkeypatch.setattr(caches["guard"], "set", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"storage": "ok", "database": "ok", "cache": "error"}
    assert response.json()["down"] == ["redis" if settings.REDIS_URL else "database cache"]
    assert "10.1.2.3" not in response.content.decode()


def test_healthz_fails_when_the_database_fails(client, monkeypatch):
    from vouch.web import views

    class Broken:
        def __getitem__(self, alias):
            raise ConnectionError("database down at 10.9.8.7")

    monkeypatch.setattr(views, "connections", Broken())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["checks"]["database"] == "error"
    assert "10.9.8.7" not in response.content.decode()


def test_livez_is_constant_and_touches_nothing(client, django_assert_num_queries, monkeypatch):
    from django.core.cache import cache

    monkeypatch.setattr(cache, "get", lambda *a, **k: pytest.fail("livez used the cache"))
    with django_assert_num_queries(0):
        first = client.get("/livez")
        second = client.get("/livez")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == b"ok"
    assert first["Content-Type"].startswith("text/plain")
    assert connection.vendor in {"sqlite", "postgresql"}


def test_health_endpoints_need_no_login_and_set_no_session(client):
    for path in ("/healthz", "/livez"):
        response = client.get(path)
        assert response.status_code == 200
        assert "__Host-vouch_session" not in response.cookies
