"""The metrics endpoint under a real `vouch serve` with two granian workers: each worker
writes its counts to the multiprocess directory, and any worker that answers a scrape
gives the sum of both; the directory starts empty at each start."""

from __future__ import annotations

import re

import pytest

from tests.live import cleanup, make_server
from tests.server import helpers

TOKEN = "metrics-" + "k3Yq9ZpL0vXw2Ru7" * 2
PROBE = re.compile(r'^vouch_requests_total\{route_class="probe",status="2xx"\} (\S+)$', re.MULTILINE)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("metrics-live")
    stale = data_dir / "metrics"
    stale.mkdir()
    (stale / "counter_999999.db").write_bytes(b"left by an earlier run")
    server = make_server({"VOUCH_METRICS_TOKEN": TOKEN, "VOUCH_SERVE_WORKER": "0"}, workers=2, data_dir=data_dir)
    server.start()
    try:
        yield server
    finally:
        cleanup(server)


def scrape(server) -> str:
    response = helpers.request(server, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200, response.text
    return response.text


def test_counts_are_the_sum_of_all_workers(two_workers):
    assert not (two_workers.data_dir / "metrics" / "counter_999999.db").exists()  # emptied at start
    sent = 40
    for _ in range(sent):  # a new connection each: the workers share them
        assert helpers.request(two_workers, "GET", "/livez").status == 200
    pids = {
        name.stem.rsplit("_", 1)[1]
        for name in (two_workers.data_dir / "metrics").glob("*.db")
        if name.stem.startswith("counter_")
    }
    assert len(pids) >= 2, f"only one worker answered: {pids}"
    # Whichever worker answers, the count is the total so far (earlier scrapes are probes too).
    for scraped in range(6):
        text = scrape(two_workers)
        assert float(PROBE.search(text).group(1)) == sent + scraped
    assert "vouch_task_queue_depth" in text and 'vouch_request_seconds_bucket{le="0.005",route_class="probe"}' in text


def test_without_the_token_it_is_not_there(two_workers):
    assert helpers.request(two_workers, "GET", "/metrics").status == 404
    wrong = helpers.request(two_workers, "GET", "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 404
