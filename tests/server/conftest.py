"""Fixtures for tests against the real running server (`live_vouch`, tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.server import helpers


@pytest.fixture(scope="module")
def live_member(live_vouch) -> dict:
    """A verified owner of a new company on the live server (not yet signed in)."""
    tag = uuid.uuid4().hex[:8]
    email = f"live-{tag}@example.com"
    company = f"Live Company {tag}"
    ids = helpers.create_member(live_vouch, email, company)
    return {"email": email, "company": company, **ids}
