"""Shared pieces of the rotation tests."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from django.db import connections

from vouch.tenancy.models import Company
from vouch.vault import keyring, providers
from vouch.vault.models import DataKey, KeyPurpose


def bulk_companies(count: int, region: str = "eu") -> list[uuid.UUID]:
    """Companies with their two keys but no database: master rotation only touches key
    rows, and provisioning thousands of databases would measure something else."""
    keyring.ensure_master_key()
    provider = providers.get_provider()
    companies = [Company(id=uuid.uuid4(), name=f"Bulk {i} {uuid.uuid4().hex[:6]}", region=region) for i in range(count)]
    Company.objects.bulk_create(companies, batch_size=1000)
    rows = []
    for company in companies:
        for purpose in (KeyPurpose.DATA, KeyPurpose.INDEX):
            master, wrapped = provider.wrap(secrets.token_bytes(32), keyring.wrap_aad(company.id, purpose, 1))
            rows.append(
                DataKey(company_id=company.id, purpose=purpose, version=1, master_version=master, wrapped=wrapped)
            )
    DataKey.objects.bulk_create(rows, batch_size=1000)
    return [c.id for c in companies]


class Bystander(threading.Thread):
    """Another Vouch worker using the data while a rotation runs: calls ``step(i)``
    until stopped, keeping the first error.

    Everything a test writes to the control database stays inside its transaction,
    which no other connection can see; so this thread reads company keys through the
    test's own control connection (reads only: atomic blocks from two threads on one
    connection would mix their savepoints). Company databases are not in the test
    transaction: it opens its own connections to them, like any other worker."""

    def __init__(self, step: Callable[[int], None], within: Callable[[], AbstractContextManager] = nullcontext):
        super().__init__(daemon=True)
        self.step, self.within = step, within
        self.started = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.steps = 0
        self._control = connections["default"]

    def run(self) -> None:
        connections["default"] = self._control
        try:
            with self.within():
                while not self.stopping.is_set():
                    self.step(self.steps)
                    self.steps += 1
                    self.started.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.started.set()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the bystander thread did not stop"
        if self.error is not None:
            raise self.error


@contextmanager
def bystander(
    step: Callable[[int], None], within: Callable[[], AbstractContextManager] = nullcontext
) -> Iterator[Bystander]:
    """A running :class:`Bystander` (after its first step), stopped and checked on leaving."""
    control = connections["default"]
    control.ensure_connection()
    control.inc_thread_sharing()
    thread = Bystander(step, within)
    thread.start()
    try:
        thread.started.wait(timeout=60)
        yield thread
    finally:
        try:
            thread.stop()
        finally:
            control.dec_thread_sharing()
