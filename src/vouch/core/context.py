"""The current company: the only way code reaches a company's database.

A context is entered after authentication and a membership check (the request
middleware), or explicitly by a command or task. Company models cannot be queried
without one (fail closed): the router asks :func:`current`, which raises."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol


class NoCompanyContext(RuntimeError):
    """A company model was used with no current company."""


class CompanyOffline(RuntimeError):
    """The company is offline for maintenance (an in-place restore): nothing may open its
    database until the restore has finished or been rolled back. Requests get the
    maintenance page (vouch.tenancy.maintenance)."""


class WrongCompanyDatabase(RuntimeError):
    """A company's data was about to be read or written through another company's database."""


@dataclass(frozen=True)
class CompanyContext:
    company_id: uuid.UUID
    region: str

    @property
    def alias(self) -> str:
        return alias_for(self.company_id)


ALIAS_PREFIX = "company_"
_current: contextvars.ContextVar[CompanyContext | None] = contextvars.ContextVar("vouch_company", default=None)
# The aliases of every enclosing context, innermost last: a connection is closed only
# when no context that is still open uses it (A, then B, then A again must not close
# the outer A's connection, which may hold an open transaction).
_open_aliases: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("vouch_company_aliases", default=())


@lru_cache(maxsize=4096)
def alias_for(company_id: uuid.UUID | str) -> str:
    # Cached: the router asks for every query (sixteen times for a dashboard page).
    return ALIAS_PREFIX + uuid.UUID(str(company_id)).hex


def is_company_alias(alias: str) -> bool:
    return alias.startswith(ALIAS_PREFIX)


def current() -> CompanyContext:
    context = _current.get()
    if context is None:
        raise NoCompanyContext(
            "No company context: company data can only be used inside company_context() "
            "(set by the request middleware after a membership check, or by a command or task)."
        )
    return context


def current_or_none() -> CompanyContext | None:
    return _current.get()


class ConnectionPool(Protocol):
    """How a context gets and hands back its company's database connection
    (vouch.tenancy.connections, which registers itself in its AppConfig.ready(): the
    connections are tenancy's, one layer above, while every layer enters contexts)."""

    def reuse(self, alias: str) -> None: ...
    def ensure_alias(self, context: CompanyContext) -> str: ...
    def keep(self, alias: str) -> None: ...


_pool: ConnectionPool | None = None


def use_connection_pool(pool: ConnectionPool) -> None:
    global _pool
    _pool = pool


@contextmanager
def company_context(company, *, offline_ok: bool = False) -> Iterator[CompanyContext]:
    """Make ``company`` (a tenancy Company) current. On leaving, the company's database
    connection is handed to ``connections.keep`` unless an enclosing context still
    uses it: a few recent companies' connections stay open per thread, the rest are
    closed, so thousands of companies never mean thousands of open connections.

    A company offline for maintenance raises ``CompanyOffline`` (fail closed), except for
    the restore itself (``offline_ok``)."""
    connections = _pool
    if connections is None:
        raise RuntimeError(
            "company databases are not set up: the tenancy app registers their connections when Django starts"
        )
    if getattr(company, "status", "active") == "deleted":
        raise NoCompanyContext(f"company {company.pk} has been deleted")
    if not offline_ok and getattr(company, "offline_since", None) is not None:
        raise CompanyOffline(f"company {company.pk} is offline for maintenance")
    context = CompanyContext(company_id=uuid.UUID(str(company.pk)), region=company.region)
    enclosing = _open_aliases.get()
    if context.alias not in enclosing:
        connections.reuse(context.alias)  # a recent, healthy connection, or a fresh one
    token = _current.set(context)
    aliases_token = _open_aliases.set((*enclosing, context.alias))
    try:
        # The alias exists from the start (not yet connected), so that
        # transaction.atomic(using=context.alias) works before the first query.
        connections.ensure_alias(context)
        yield context
    finally:
        _open_aliases.reset(aliases_token)
        _current.reset(token)
        if context.alias not in _open_aliases.get():
            connections.keep(context.alias)
