"""The API's JSON encoding (vouch.api.renderers, orjson): what a client parses is the
data the operation returned, ids, times and names in any script included."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.api.conftest import ApiClient, make_key
from tests.api.test_resources import new_request
from vouch.accounts.policy import Role
from vouch.api.renderers import JSONRenderer

pytestmark = pytest.mark.django_db

NAME = "Zoë O'Brien-Καραγιάννη & 李"


def test_a_created_request_reads_back_with_its_ids_times_and_name_as_sent(company, members):
    api = ApiClient(make_key(members[Role.ADMIN]))
    created = api.post_json("/api/v1/requests", new_request(candidate={"name": NAME, "email": "zoe@example.org"}))
    assert created.status_code == 201, created.content
    request_id = created.json()["id"]
    read, listed = api.get(f"/api/v1/requests/{request_id}"), api.get("/api/v1/requests")
    assert read.status_code == listed.status_code == 200
    items = [created.json(), read.json(), listed.json()["items"][0]]
    for response in (created, read, listed):
        assert response["Content-Type"] == "application/json; charset=utf-8"
        assert NAME.encode() in response.content or response is listed  # UTF-8 as it is, not escaped
    assert created.json()["candidate"]["name"] == read.json()["candidate"]["name"] == NAME
    for item in items:
        assert str(uuid.UUID(item["id"])) == request_id
        # An RFC 3339 time in UTC, written Z, that Python reads back as aware.
        assert item["created_at"].endswith("Z")
        created_at = datetime.fromisoformat(item["created_at"])
        assert created_at.tzinfo is not None and abs((datetime.now(UTC) - created_at).total_seconds()) < 60
    assert len({item["created_at"] for item in items}) == 1  # the same instant, however it was read


def test_values_orjson_does_not_know_go_to_ninjas_encoder_and_times_are_utc_with_microseconds():
    data = {"amount": Decimal("12.50"), "at": datetime(2026, 12, 7, 10, 15, 2, 123456, tzinfo=UTC), 3: "three"}
    rendered = json.loads(JSONRenderer().render(None, data, response_status=200))  # type: ignore[arg-type]
    assert rendered == {"amount": "12.50", "at": "2026-12-07T10:15:02.123456Z", "3": "three"}
