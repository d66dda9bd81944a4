"""Fixtures of the API tests: a company with a member of each role, keys made through the
keys' own service, and a client that calls with a key (no session, no cookies)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import HTTPSClient
from vouch.accounts.models import Membership
from vouch.api.keys import services
from vouch.api.keys.scopes import SCOPES
from vouch.core.context import company_context

ALL_SCOPES = list(SCOPES)


def make_key(
    membership: Membership,
    scopes: list[str] | None = None,
    *,
    name: str = "ATS integration",
    expires_at: datetime | None = None,
    networks: list[str] | None = None,
) -> str:
    """A new key of ``membership``'s company; its full text."""
    with company_context(membership.company):
        _, secret = services.create_key(
            None,
            membership,
            name=name,
            scopes=scopes or ALL_SCOPES,
            expires_at=expires_at,
            networks=networks,
        )
    return secret


class ApiClient(HTTPSClient):
    """Calls the API with a key, from a given address."""

    def __init__(self, key: str | None, address: str = "198.51.100.7", **options) -> None:
        super().__init__(**options)
        self.key, self.address = key, address

    def request(self, **request):
        if self.key is not None:
            request.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.key}")
        request.setdefault("REMOTE_ADDR", self.address)
        return super().request(**request)

    def post_json(self, path: str, data=None, **extra):
        return self.post(path, data if data is not None else {}, content_type="application/json", **extra)


@pytest.fixture(autouse=True)
def _fresh_key_state():
    services.forget_process_state()
    yield
    services.forget_process_state()
