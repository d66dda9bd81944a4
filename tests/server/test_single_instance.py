"""One `vouch serve` per data directory: a second one is refused, naming the first;
a server killed with SIGKILL leaves nothing that blocks a restart."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess

import pytest

from tests.live import VOUCH, cleanup, free_port, make_server
from tests.server.test_stop import _alive, _descendants, _wait_until

pytestmark = pytest.mark.server


def _stop_tree(pid: int) -> None:
    """SIGKILL pid and every process group it started (servers and worker run in their own)."""
    children = _descendants(pid)
    os.kill(pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)
    assert _wait_until(lambda: not any(_alive(child) for child in children), 20)


def test_second_server_on_same_data_directory_is_refused_and_a_killed_one_does_not_block():
    server = make_server()
    try:
        server.start()
        first_pid = server.process.pid
        other_https, other_http = free_port(), free_port()
        env = {**server.env, "VOUCH_HTTPS_PORT": str(other_https), "VOUCH_HTTP_PORT": str(other_http)}
        second = subprocess.Popen(
            [str(VOUCH), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            _, message = second.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            _stop_tree(second.pid)  # it started: no trace of it may outlive the test
            second.wait()
            pytest.fail("a second `vouch serve` on the same data directory started")
        assert second.returncode != 0, message
        assert "already running" in message, message
        assert str(server.data_dir) in message
        assert f"pid {first_pid}" in message
        assert f"HTTPS port {server.https_port}" in message
        assert f"HTTP port {server.http_port}" in message
        assert "started at" in message
        # The second never listened on its own ports, and the first still answers.
        for port in (other_https, other_http):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert server.process.poll() is None

        # SIGKILL the first and everything it started: the lock goes with it.
        _stop_tree(first_pid)
        server.process.wait(timeout=30)
        assert (server.data_dir / "serve.lock").exists()  # stale file left behind, as after a crash
        server.start()  # a new server takes the directory at once
        assert server.process.pid != first_pid
    finally:
        cleanup(server)
