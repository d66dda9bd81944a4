from __future__ import annotations

import pytest
from django.test import override_settings

from tests.webhooks.receiver import Receiver
from vouch.webhooks import egress


@pytest.fixture
def receiver():
    """A local HTTPS receiver the guard lets through (loopback allowed, its certificate trusted)."""
    server = Receiver().start()
    with override_settings(
        VOUCH_WEBHOOKS_ALLOW_NETWORKS=["127.0.0.1/32"], VOUCH_WEBHOOKS_CA_FILE=str(server.cert_path)
    ):
        yield server
    egress.close_kept()  # connections a test left open go with its receiver
    server.stop()
