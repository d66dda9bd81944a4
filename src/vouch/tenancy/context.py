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


class NoCompanyContext(RuntimeError):
    """A company model was used with no current company."""


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


def alias_for(company_id: uuid.UUID | str) -> str:
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


@contextmanager
def company_context(company) -> Iterator[CompanyContext]:
    """Make ``company`` (a tenancy Company) current. On leaving, the company's database
    connection is closed unless an enclosing context still uses it, so thousands of
    companies never mean thousands of open connections."""
    from vouch.tenancy import connections

    if getattr(company, "status", "active") == "deleted":
        raise NoCompanyContext(f"company {company.pk} has been deleted")
    context = CompanyContext(company_id=uuid.UUID(str(company.pk)), region=company.region)
    outer = _current.get()
    if outer is None or outer.alias != context.alias:
        connections.release(context.alias)  # each context starts on a fresh connection
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
        outer = _current.get()
        if outer is None or outer.alias != context.alias:
            connections.release(context.alias)
