"""Concurrent appends never fork the chain (PostgreSQL: the advisory lock).

On SQLite the same property is tested across processes in test_cli.py (the test run's
own SQLite database is in memory, where threads do not model real workers)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from vouch.audit import record
from vouch.audit.models import SecurityEvent
from vouch.audit.verify import verify_chain

THREADS = 8
PER_THREAD = 25


def test_threads_appending_at_once_keep_one_unbroken_chain(committed_chain):
    if connection.vendor != "postgresql":
        pytest.skip("the service path runs this on PostgreSQL; SQLite is covered across processes")
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(PER_THREAD):
                record("authz_fail", target=f"route:t{n}-{i}", outcome="blocked")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    total = THREADS * PER_THREAD
    assert list(SecurityEvent.objects.order_by("id").values_list("seq", flat=True)) == list(range(1, total + 1))
    result = verify_chain()
    assert result.ok, result
    assert result.checked == total


def test_verify_while_others_append_judges_every_row_and_reads_a_matching_head(committed_chain):
    """verify runs again and again while threads append: each run must be OK (the head it
    reads belongs to the last row it walked: no false alarm) and walk every row committed
    before it reached the end."""
    if connection.vendor != "postgresql":
        pytest.skip("the service path runs this on PostgreSQL; SQLite is covered across processes")
    record("authz_fail", target="route:first", outcome="blocked")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(PER_THREAD):
                record("authz_fail", target=f"route:v{n}-{i}", outcome="blocked")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    runs = []
    while True:
        finished = not any(thread.is_alive() for thread in threads)  # then this run sees every row
        before = SecurityEvent.objects.count()
        result = verify_chain(chunk_size=7)
        assert result.ok, result
        assert result.checked >= before and result.head_seq == result.checked
        runs.append(result.checked)
        if finished:
            break
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(runs) >= 2 and runs[-1] == 4 * PER_THREAD + 1
