"""Health endpoints of the real server: /healthz checks database, cache and storage, /livez is constant."""

import json

import pytest

from tests.server.helpers import request

pytestmark = pytest.mark.server


def test_healthz_reports_ok_as_json(live_vouch):
    response = request(live_vouch, "GET", "/healthz")
    assert response.status == 200
    assert response.header("Content-Type") == "application/json"
    data = json.loads(response.body)
    assert data["status"] == "ok"
    assert data["checks"] == {"database": "ok", "cache": "ok", "storage": "ok"}
    # A load balancer must never see a cached answer.
    assert "no-store" in (response.header("Cache-Control") or "")


def test_livez_answers_ok(live_vouch):
    response = request(live_vouch, "GET", "/livez")
    assert response.status == 200
    assert response.body == b"ok"
    assert response.header("Content-Type").startswith("text/plain")
