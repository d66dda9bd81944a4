"""At rest, what the API keeps (keys, their last address, idempotent answers holding a
candidate's name and email) is not in the clear in the company's database: its raw
bytes (the SQLite file with its -wal, or a pg_dump) are searched."""

from __future__ import annotations

import pytest

from tests.api.conftest import ApiClient, make_key
from tests.api.test_resources import new_request
from tests.vault.attack import company_database_bytes, scan, unique
from vouch.accounts.policy import Role

pytestmark = pytest.mark.django_db


def test_keys_addresses_and_kept_answers_are_not_in_the_clear(company, members):
    key = make_key(members[Role.ADMIN])
    name, email = unique("Canaryname"), f"{unique('canary')}@example.org"
    address = "198.51.100.77"
    api = ApiClient(key, address)
    created = api.post_json(
        "/api/v1/requests",
        new_request(candidate={"name": name, "email": email}),
        HTTP_IDEMPOTENCY_KEY=unique("order-"),
    )
    assert created.status_code == 201
    blobs = company_database_bytes(company)
    assert blobs and any(b"api_idempotentcall" in blob.lower() for blob in blobs.values())
    # Control: the key's public id is stored in the clear, so the scan does see the rows.
    assert scan(blobs, [key.split("_")[2]])
    secret = key.rpartition("_")[2]
    assert scan(blobs, [name, email, secret, address, "198.51.100.0/24"]) == []
