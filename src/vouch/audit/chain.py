"""The hash chain: the key, the canonical form of a row, and the row's HMAC.

hash = HMAC-SHA256(key, prev_hash + canonical JSON of the row's fields), where the key
is derived from SECRET_KEY. Someone who can write to the database but does not hold
SECRET_KEY cannot compute a valid hash for an edited, moved or invented row.

The chain head (last seq and hash) carries a MAC too, under its own key derived from the
same secret, so a head set back to an earlier event by hand does not verify."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC

from django.conf import settings

GENESIS = "0" * 64
# Covered by the hash. ``actor`` (the foreign key) is not: the database nulls it when the
# user is deleted; ``actor_label`` keeps the id and is covered.
FIELDS = (
    "seq",
    "occurred_at",
    "actor_label",
    "company_id",
    "action",
    "target",
    "ip",
    "user_agent",
    "outcome",
    "details",
)


def _derive(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


def chain_keys() -> list[bytes]:
    """The current key first, then keys from SECRET_KEY_FALLBACKS (rows written before a rotation)."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [_derive(secret, b"vouch.audit.chain.v1") for secret in secrets]


def head_keys() -> list[bytes]:
    """Keys for the head's MAC: the current one first, then those of SECRET_KEY_FALLBACKS.

    From SECRET_KEY, like the rows' keys, and not from the master key store: the head
    only pins the end of a chain whose rows already rest on SECRET_KEY (whoever holds it
    can rewrite the rows, so another key would add nothing), it rotates the same way
    (the fallbacks verify a head written before a rotation; the next event re-MACs it
    under the new key), and master key versions are retired by ``vouch keys
    rotate-master`` while providers only wrap and unwrap (a KMS never hands out key
    bytes). Its own purpose keeps a row's hash from ever passing for a head's MAC."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [_derive(secret, b"vouch.audit.head.v1") for secret in secrets]


def head_mac(seq: int, hash_: str, key: bytes | None = None) -> str:
    key = key or head_keys()[0]
    return hmac.new(key, f"{seq}:{hash_}".encode(), hashlib.sha256).hexdigest()


def head_is_authentic(head) -> bool:
    """Whether Vouch wrote this head (its MAC verifies under a current or fallback key)."""
    return bool(head.mac) and any(
        hmac.compare_digest(head_mac(head.seq, head.hash, key), head.mac) for key in head_keys()
    )


def email_key() -> bytes:
    return _derive(settings.SECRET_KEY, b"vouch.audit.email.v1")


def canonical(row) -> bytes:
    """The fields as JSON with sorted keys: the same bytes before and after a database round trip."""
    occurred = row.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = {name: getattr(row, name) for name in FIELDS}
    data["occurred_at"] = occurred
    data["company_id"] = str(row.company_id) if row.company_id else None
    data["ip"] = row.ip or None
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute(row, key: bytes | None = None) -> str:
    key = key or chain_keys()[0]
    return hmac.new(key, row.prev_hash.encode() + b"\n" + canonical(row), hashlib.sha256).hexdigest()


def is_valid(row) -> bool:
    return any(hmac.compare_digest(compute(row, key), row.hash) for key in chain_keys())
