"""Keyed digests of the starts of names: the prefix index behind search as recruiters
type ("Mar" finds "Maria" and "Marek" with names encrypted at rest).

Each start (``normalise.name_prefixes``) is stored as HMAC-SHA256 under a key of the
company's own, derived from its blind-index key for this use alone
(``keyring.index_subkey`` with PREFIX_LABEL): the digests of one company match nothing
of another's, nor any of its own whole-word or email indexes. What the rows reveal to
someone holding the database, and what they do not: docs/security/encryption.md,
"Search as you type"."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from vouch.core.context import current
from vouch.vault import keyring, normalise
from vouch.vault.fields import INDEX_HEX_CHARS

PREFIX_LABEL = b"vouch/name-prefix-index/v1"


def prefix_digest(prefix: str, company_id: uuid.UUID | None = None) -> str:
    """The digest of a normalised start of a name word under the company's prefix key.
    A start shorter than ``PREFIX_MIN_CHARS`` is refused (ValueError): it is never
    indexed, so looking it up could only find nobody; one longer than
    ``PREFIX_MAX_CHARS`` is cut to that length, as the index holds it."""
    if len(prefix) < normalise.PREFIX_MIN_CHARS:
        raise ValueError(f"a name prefix has at least {normalise.PREFIX_MIN_CHARS} characters")
    return _digest(_key(company_id), prefix[: normalise.PREFIX_MAX_CHARS])


def name_prefix_digests(name: str, company_id: uuid.UUID | None = None) -> set[str]:
    """The digests the prefix index holds for a candidate's name."""
    key = _key(company_id)
    return {_digest(key, prefix) for prefix in normalise.name_prefixes(name)}


def _key(company_id: uuid.UUID | None) -> bytes:
    return keyring.index_subkey(company_id or current().company_id, PREFIX_LABEL)


def _digest(key: bytes, prefix: str) -> str:
    return hmac.digest(key, prefix.encode(), hashlib.sha256).hex()[:INDEX_HEX_CHARS]
