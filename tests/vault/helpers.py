"""Shared pieces of the rotation tests."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from django.db import connections

from vouch.tenancy.models import Company
from vouch.vault import keyring, keystore, providers
from vouch.vault.models import DataKey, KeyPurpose, KeyScheme


def bulk_companies(count: int, region: str = "eu", *, old_scheme: bool = False) -> list[uuid.UUID]:
    """Companies with their two keys (and KEK) but no database: master rotation only
    touches key rows and key files, and provisioning thousands of databases would
    measure something else. ``old_scheme``: rows as written before company KEKs
    (wrapped by the master key only), and no KEK."""
    keyring.ensure_master_key()
    provider = providers.get_provider()
    companies = [Company(id=uuid.uuid4(), name=f"Bulk {i} {uuid.uuid4().hex[:6]}", region=region) for i in range(count)]
    Company.objects.bulk_create(companies, batch_size=1000)
    rows = []
    for company in companies:
        kek = None if old_scheme else keystore.create_kek(company.id)
        for purpose in (KeyPurpose.DATA, KeyPurpose.INDEX):
            key = secrets.token_bytes(32)
            inner = key if kek is None else keyring.seal_inner(kek, key, company.id, purpose, 1)
            master, wrapped = provider.wrap(inner, keyring.wrap_aad(company.id, purpose, 1))
            rows.append(
                DataKey(
                    company_id=company.id,
                    purpose=purpose,
                    version=1,
                    master_version=master,
                    wrapped=wrapped,
                    scheme=KeyScheme.MASTER if kek is None else KeyScheme.COMPANY_KEK,
                )
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
