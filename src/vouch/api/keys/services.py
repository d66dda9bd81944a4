"""API keys: creating, revoking, and checking one on each call.

A key reads ``vk_<company>_<id>_<secret>``. ``vk_<company>_<id>`` is its prefix, shown on
the keys page: the company's id routes the call to the company's database (the key's row
lives there, found by its id) with no look-up across companies; the secret is 32 random
bytes, of which only the SHA-256 is stored.

Why SHA-256 and not a slow hash such as argon2: a slow hash makes guessing a *person's*
password costly, but this secret is 256 random bits, beyond any guessing however fast
the hash, and the check runs on every call, where argon2 would cost tens of milliseconds
each time. The comparison is in constant time."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, router, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone

from vouch.accounts import policy
from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Action, Role
from vouch.api.keys import creators, emails
from vouch.api.keys.scopes import SCOPES, within_role
from vouch.api.models import ApiKey, ApiKeyNetwork
from vouch.audit.events import record
from vouch.audit.models import EventAction, Outcome
from vouch.core.db import PreparedLookup
from vouch.core.network import client_ip, network_of
from vouch.shield import limits
from vouch.tenancy import company_db
from vouch.tenancy.models import Company
from vouch.vault.fields import blind_index

log = logging.getLogger("vouch.api")

PREFIX = "vk_"
KEY_PATTERN = re.compile(r"^vk_([0-9a-f]{32})_([a-z0-9]{12})_([0-9a-f]{64})$")
MAX_NETWORKS = 20
MAX_NAME = 100
LAST_USED_EVERY = timedelta(seconds=60)  # last-used time and address written at most this often


class KeyError_(ValueError):
    """A key cannot be created or revoked as asked (the message says why)."""


class KeyRefused(Exception):
    """A call's key is refused; ``status`` is 401 (not a usable key) or 429 (over its limit)."""

    def __init__(self, detail: str, status: int = 401, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.status, self.retry_after = detail, status, retry_after


@dataclass(frozen=True)
class Parsed:
    company_id: uuid.UUID
    public_id: str
    secret: str


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def prefix_of(company_id: uuid.UUID | str, public_id: str) -> str:
    return f"{PREFIX}{uuid.UUID(str(company_id)).hex}_{public_id}"


def parse(token: str) -> Parsed | None:
    match = KEY_PATTERN.match(token.strip())
    if match is None:
        return None
    return Parsed(uuid.UUID(match.group(1)), match.group(2), match.group(3))


def parse_networks(text: str) -> list[str]:
    """Allowed networks, one CIDR (or address) a line or comma-separated."""
    found: list[str] = []
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise KeyError_(f"“{item[:60]}” is not a network (write one like 203.0.113.0/24).") from None
    if len(found) > MAX_NETWORKS:
        raise KeyError_(f"At most {MAX_NETWORKS} networks.")
    return sorted(set(found))


def owners(company: Company) -> list[User]:
    memberships = Membership.objects.filter(
        company=company, role=Role.OWNER, is_active=True, user__is_active=True
    ).select_related("user")
    return [membership.user for membership in memberships]


def _details(key: ApiKey, company: Company) -> dict:
    return {"prefix": prefix_of(company.pk, key.public_id), "name": key.name, "scopes": ",".join(key.scopes)}


def create_key(
    request: HttpRequest | None,
    membership: Membership,
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    networks: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the member's company (the current one) and its full text, which is
    shown once and never again. The member's role must allow every scope."""
    policy.require(policy.can(membership, Action.MANAGE_API_KEYS))
    name = " ".join(name.split())[:MAX_NAME]
    if not name:
        raise KeyError_("Give the key a name (what uses it).")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise KeyError_("Choose at least one scope from the list.")
    if not within_role(membership, scopes):
        raise KeyError_("A key cannot have a scope your role does not allow.")
    if expires_at is not None and expires_at <= timezone.now():
        raise KeyError_("The expiry must be in the future.")
    company = membership.company
    secret = secrets.token_hex(32)  # 32 random bytes, 64 hex digits (no "_": the prefix splits cleanly)
    public_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    key = ApiKey.objects.create(
        public_id=public_id,
        name=name,
        secret_hash=digest(secret),
        scopes=sorted(set(scopes), key=list(SCOPES).index),
        networks=list(networks or []),
        expires_at=expires_at,
        created_by_id=membership.user_id,
    )
    record(
        EventAction.API_KEY_CREATED,
        request=request,
        actor=membership.user,
        company=company,
        target=f"api_key:{key.pk}",
        details=_details(key, company),
    )
    emails.created(key, company, owners(company), by=membership.user, prefix=prefix_of(company.pk, public_id))
    return key, f"{prefix_of(company.pk, public_id)}_{secret}"


def revoke_key(request: HttpRequest | None, membership: Membership, key: ApiKey) -> bool:
    """Revoke at once (the next call with it is refused). False: it was already revoked."""
    policy.require(policy.can(membership, Action.MANAGE_API_KEYS))
    updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by_id=membership.user_id
    )
    if not updated:
        return False
    company = membership.company
    record(
        EventAction.API_KEY_REVOKED,
        request=request,
        actor=membership.user,
        company=company,
        target=f"api_key:{key.pk}",
        details=_details(key, company),
    )
    emails.revoked(key, company, owners(company), by=membership.user, prefix=prefix_of(company.pk, key.public_id))
    return True


# --- On each call ------------------------------------------------------------------------


@dataclass
class Caller:
    """The key a call came with, its company and the member it acts for."""

    key: ApiKey
    company: Company
    membership: Membership

    @property
    def user(self) -> User:
        return self.membership.user

    def has(self, scope: str) -> bool:
        return scope in self.key.scopes


# Compiled once (vouch.core.db, docs/performance.md "The tricks"): every call reads both.
_active_company = PreparedLookup(lambda: Company.objects.filter(is_active=True, status="active"))
_key_by_public_id = PreparedLookup(lambda: ApiKey.objects.all(), key="public_id", sentinel="(not a key id)")


def company_for(parsed: Parsed) -> Company | None:
    """The company a key names, by primary key (no scan): None when it is gone. Read on
    every call: a company taken offline or deleted refuses its keys on the next one."""
    return _active_company.get(parsed.company_id, using=router.db_for_read(Company))


def check(request: HttpRequest, parsed: Parsed, company: Company) -> Caller:
    """The caller, or ``KeyRefused``. Runs inside the company's context. The key's row is
    read on every call (a revocation is in effect on the next one, in every process); its
    creator's membership is as recent as ``creators`` keeps it."""
    key = _key_by_public_id.get(parsed.public_id, using=company_db.alias())
    if key is None or not hmac.compare_digest(bytes(key.secret_hash), digest(parsed.secret)):
        raise KeyRefused("The API key is not valid.")
    now = timezone.now()
    status = key.status(now)
    if status != "active":
        raise KeyRefused(f"The API key is {status}.")
    address = client_ip(request)
    if key.networks and (address is None or not any(address in ipaddress.ip_network(net) for net in key.networks)):
        _refused(request, company, key, "network not allowed")
        raise KeyRefused("The API key may not be used from this network.")
    membership = creators.membership(company, key.created_by_id)
    # P20: checked on every call, so a creator demoted or deactivated takes their keys with them.
    if membership is None or membership.user.is_staff or not within_role(membership, key.scopes):
        _refused(request, company, key, "creator no longer allowed")
        raise KeyRefused("The API key's creator no longer has the role it needs.")
    limit = int(getattr(settings, "VOUCH_API_KEY_RATE_LIMIT", 0))
    if limit and limits.table() is not None:
        moment = limits.now()
        if not limits.counter.hit(f"api:key:{key.pk}", limit, int(moment // limits.WINDOW)):
            raise KeyRefused(
                f"This key made more than {limit} calls this minute.",
                status=429,
                retry_after=limits.retry_after(moment),
            )
    _note_use(request, company, key, now, str(address) if address else "")
    return Caller(key, company, membership)


def _refused(request: HttpRequest, company: Company, key: ApiKey, reason: str) -> None:
    record(
        EventAction.AUTHZ_FAIL,
        request=request,
        company=company,
        target=f"api_key:{key.pk}",
        outcome=Outcome.FAILURE,
        details={"prefix": prefix_of(company.pk, key.public_id), "reason": reason},
    )


# Calls counted in this process since the key's row was last written, and the networks
# this process knows a key has used (so a known network costs no query).
_pending: dict[uuid.UUID, int] = {}
_known_networks: set[tuple[uuid.UUID, str]] = set()
_lock = threading.Lock()


def _note_use(request: HttpRequest, company: Company, key: ApiKey, now: datetime, address: str) -> None:
    with _lock:
        _pending[key.pk] = _pending.get(key.pk, 0) + 1
    # The last-used time and address, and the count, written at most once a minute per key:
    # the UPDATE only matches when the stored time is older (one process wins a minute).
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        with _lock:
            count = _pending.pop(key.pk, 0)
        updated = ApiKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY), pk=key.pk
        ).update(last_used_at=now, use_count=F("use_count") + count)
        if updated:
            # An encrypted field is bound to its row: written through save, not update().
            key.last_used_at, key.last_used_ip = now, address
            key.save(update_fields=["last_used_ip"])
        else:
            with _lock:
                _pending[key.pk] = _pending.get(key.pk, 0) + count
    network = network_of(client_ip(request))
    if network is None or (key.pk, network) in _known_networks:
        return
    index = blind_index("text", network, company.pk) or ""
    try:
        with transaction.atomic(using=company_db.alias()):
            ApiKeyNetwork.objects.create(key=key, network_index=index)
    except IntegrityError:
        _known_networks.add((key.pk, network))
        return
    _known_networks.add((key.pk, network))
    first = not ApiKeyNetwork.objects.filter(key=key).exclude(network_index=index).exists()
    record(
        EventAction.API_KEY_NEW_NETWORK,
        request=request,
        company=company,
        target=f"api_key:{key.pk}",
        details={"prefix": prefix_of(company.pk, key.public_id), "network": network, "first_use": first},
    )
    emails.new_network(key, company, owners(company), network=network, prefix=prefix_of(company.pk, key.public_id))


def forget_process_state() -> None:
    """Tests: this process's counts, known networks and kept creators."""
    with _lock:
        _pending.clear()
        _known_networks.clear()
    creators.forget()


def usage_count(key: ApiKey) -> int:
    return key.use_count + _pending.get(key.pk, 0)
