"""Writing to the current company's database: its transaction, the work to do once it
commits, and how a company row names the user who acted.

The alias is the one :class:`~vouch.tenancy.router.CompanyRouter` routes every company
model to (the current context's, opened on demand); like the router, these raise
``NoCompanyContext`` outside a company context. Users live in the control database, so
a company row cannot hold a foreign key to one: it keeps the user's id
(:func:`actor_id`), turned back into a name by :mod:`vouch.accounts.user_service`."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from vouch.core.context import current
from vouch.tenancy import connections


def alias() -> str:
    """The current company's database alias (what the router gives a company model)."""
    return connections.ensure_alias(current())


def atomic() -> transaction.Atomic:
    """A transaction (or savepoint) on the current company's database."""
    return transaction.atomic(using=alias())


def on_commit(function: Callable[[], object]) -> None:
    """Run ``function`` once the current company database's transaction commits (now,
    when none is open)."""
    transaction.on_commit(function, using=alias())


def actor_id(user: object) -> int | None:
    """The id a company row keeps for ``user``: None for no user (a task, a link's
    candidate or referee) or an anonymous one."""
    return getattr(user, "pk", None)
