"""The order flow's example (docs/api/examples/ats_client.py) compiles, imports with the
standard library and standardwebhooks only, maps every Vouch status onto an ATS status,
and its receiver accepts only correctly signed deliveries, once per message id."""

from __future__ import annotations

import http.client
import importlib.util
import json
import py_compile
import threading
from datetime import UTC, datetime
from http.server import HTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from vouch.references.request_models import RequestStatus
from vouch.webhooks.services import EVENT_LABELS, new_secret

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "api" / "examples" / "ats_client.py"


def load_example():
    py_compile.compile(str(EXAMPLE), doraise=True)
    spec = importlib.util.spec_from_file_location("ats_client_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def example():
    return load_example()


def test_it_imports_only_the_standard_library_and_standardwebhooks(example):
    import ast
    import sys

    tree = ast.parse(EXAMPLE.read_text())
    modules = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    modules |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert modules - {"__future__"} - set(sys.stdlib_module_names) == {"standardwebhooks"}


def test_every_vouch_status_maps_onto_an_ats_status(example):
    assert set(example.STATUS_MAP) == set(RequestStatus.values)  # a new status needs its mapping
    assert {example.ats_status(status) for status in RequestStatus.values} <= set(example.ATS_STATUSES)
    assert example.ats_status("awaiting_candidate") == "pending"
    assert example.ats_status("awaiting_referees") == "in_progress"
    assert example.ats_status("in_progress") == "in_progress"
    assert example.ats_status("completed") == "completed"
    assert example.ats_status("cancelled") == "cancelled"
    assert example.ats_status("expired") == "error"
    assert example.ats_status("something_new") == "error"
    # The events whose status is a reference's, not the request's, are the workflow's own.
    assert set(EVENT_LABELS) >= example.REFERENCE_EVENTS


def test_the_client_refuses_anything_but_https(example):
    for url in ("http://vouch.example", "file:///etc/passwd"):
        with pytest.raises(ValueError):
            example.Vouch(url, "vk_test")


def test_the_receiver_takes_only_signed_deliveries_once_each(example):
    secret = new_secret()
    got: list[tuple[str, dict]] = []
    server = HTTPServer(("127.0.0.1", 0), example.receiver(secret, lambda mid, event: got.append((mid, event))))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:

        def post(body: bytes, headers: dict) -> int:
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
            connection.request("POST", "/hooks", body=body, headers=headers)
            status = connection.getresponse().status
            connection.close()
            return status

        payload = {
            "type": "request.completed",
            "timestamp": "2026-12-07T10:00:00Z",
            "data": {"request_id": "r1", "status": "completed"},
        }
        body = json.dumps(payload).encode()
        now = datetime.now(tz=UTC)
        signed = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign("msg_1", now, body.decode()),
            "Content-Type": "application/json",
        }
        assert post(body, signed) == 204
        assert post(body, signed) == 204  # a retry: answered, not handled twice
        assert post(body.replace(b"r1", b"r2"), signed) == 400  # a changed body
        forged = {**signed, "webhook-signature": Webhook(new_secret()).sign("msg_1", now, body.decode())}
        assert post(body, forged) == 400
        assert got == [("msg_1", payload)]
    finally:
        server.shutdown()
        server.server_close()
