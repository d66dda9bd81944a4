"""The owners' emails about API keys (P17): a key created, a key revoked, a key used
from a network it had not been used from. Sent through the outbox, marked as the
company's (purged with it), one message per owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import reverse

from vouch.outbox import queue as outbox_queue

if TYPE_CHECKING:
    from vouch.accounts.models import User
    from vouch.api.models import ApiKey
    from vouch.tenancy.models import Company


def _send(name: str, subject: str, key: ApiKey, company: Company, recipients: list[User], context: dict) -> int:
    """How many went out. A failure is logged, not raised: the change it announces has
    happened and is recorded as a security event."""
    subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " ".join(subject.split())
    data = {
        "key": key,
        "company_name": company.name,
        "scopes": ", ".join(key.scopes),
        "keys_url": f"{settings.PUBLIC_URL}{reverse('api_keys')}",
        **context,
    }
    return outbox_queue.send_each(
        f"api/email/{name}", subject, data, recipients, company_id=company.pk, kind=f"api_key_{name}"
    )


def created(key: ApiKey, company: Company, owners: list[User], *, by: User, prefix: str) -> int:
    return _send(
        "created", f"An API key was created for {company.name}", key, company, owners, {"by": by, "prefix": prefix}
    )


def revoked(key: ApiKey, company: Company, owners: list[User], *, by: User, prefix: str) -> int:
    return _send(
        "revoked", f"An API key of {company.name} was revoked", key, company, owners, {"by": by, "prefix": prefix}
    )


def new_network(key: ApiKey, company: Company, owners: list[User], *, network: str, prefix: str) -> int:
    return _send(
        "new_network",
        f"An API key of {company.name} was used from a new network",
        key,
        company,
        owners,
        {"network": network, "prefix": prefix},
    )
