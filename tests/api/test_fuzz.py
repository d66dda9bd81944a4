"""schemathesis over the OpenAPI document, through the whole Django stack (WSGI): for
generated valid and invalid input, no 5xx, and every answer matching the document
(status codes, content types, bodies, problem details for errors)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import make_key
from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.api.v1 import api

schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
# Valid input and input the document forbids (wrong types, missing fields, odd strings).
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def wsgi():
    """The whole stack, as the server runs it; but, as Django's test client does, the
    connections are not closed at the end of each call (the test's transaction is open)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def key(company, members):
    make_request(company, members[Role.RECRUITER].user)  # something to list and read
    return make_key(members[Role.OWNER])


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_holds_to_its_document(case, key, wsgi):
    case.call_and_validate(
        base_url="https://localhost",
        app=wsgi,
        headers={"Authorization": f"Bearer {key}"},
        checks=CHECKS,
    )
