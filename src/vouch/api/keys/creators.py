"""A key's creator, as each call checks them (P20), without two control-database
reads a call.

Every call still reads the key's own row (revoked, expired, its scopes and networks:
in effect on the very next call, whoever changed them). The creator's membership and
account change far more rarely, so each process keeps them, per company and user, and
takes them again from the database when:

- the company's *member version* in the shared cache (one cache read a call) is not
  the one they were read under. Any saved or deleted membership of the company, and
  any saved account of one of its members (deactivated, made an operator), sets a new
  random version once its transaction commits: every process then reads the member
  again on its next call with a key of that company;
- they were read more than ``RECHECK_SECONDS`` ago (a change made around Vouch's own
  code, a row edited by hand, or a version the shared cache lost, is in effect within
  that time);
- the shared cache cannot be read (then every call reads the member, as before).

The version is read before the member is, so a change committed in between leaves a
newer version behind and the member is read once more on the next call."""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import post_delete, post_save

from vouch.accounts.models import Membership, User

log = logging.getLogger("vouch.api")

RECHECK_SECONDS = 10.0
MAX_KEPT = 2000  # members kept per process (beyond it the store starts again)
# Account fields whose change can take a key's rights away (a save naming none of them,
# a sign-in's last_login, leaves the versions alone).
USER_FIELDS = frozenset({"is_active", "is_staff"})
_MISSING = object()


@dataclass(frozen=True)
class _Kept:
    membership: Membership | None
    version: object
    read_at: float


_kept: dict[tuple[uuid.UUID, int], _Kept] = {}
_lock = threading.Lock()


def _version_key(company_id) -> str:
    return f"api:members:{uuid.UUID(str(company_id)).hex}"


def only_row(rows):
    """The one row a unique look-up finds, or None: no ORDER BY to build (``first()``
    would order by the primary key, a tenth of such a small query's cost)."""
    found = list(rows.order_by()[:1])
    return found[0] if found else None


def _read(company_id, user_id: int) -> Membership | None:
    return only_row(Membership.objects.select_related("user").filter(company_id=company_id, user_id=user_id))


def membership(company, user_id: int) -> Membership | None:
    """The creator's membership of ``company`` (with its user), as recent as the module
    says; a copy the caller may change. None: they are no member."""
    key = (uuid.UUID(str(company.pk)), user_id)
    try:
        version = cache.get(_version_key(company.pk), _MISSING)
    except Exception:  # noqa: BLE001 - the cache is out: read the member every call
        log.warning("api: the member version could not be read; reading the member", exc_info=True)
        return _read(company.pk, user_id)
    kept = _kept.get(key)
    now = time.monotonic()
    if kept is None or kept.version != version or now - kept.read_at > RECHECK_SECONDS:
        kept = _Kept(_read(company.pk, user_id), version, now)
        with _lock:
            if len(_kept) >= MAX_KEPT:
                _kept.clear()
            _kept[key] = kept
    if kept.membership is None:
        return None
    found = copy.copy(kept.membership)
    found.user = copy.copy(kept.membership.user)
    found.company = company  # the one this call read (its status is this call's)
    return found


def changed(company_id) -> None:
    """The company's members changed: every process reads them again (after the commit,
    so that none reads them before the change is visible)."""
    with _lock:
        for key in [key for key in _kept if key[0] == uuid.UUID(str(company_id))]:
            _kept.pop(key, None)

    def publish() -> None:
        try:
            cache.set(_version_key(company_id), uuid.uuid4().hex, timeout=None)
        except Exception:  # noqa: BLE001 - RECHECK_SECONDS bounds it
            log.warning("api: the member version of %s could not be written", company_id, exc_info=True)
        with _lock:
            for key in [key for key in _kept if key[0] == uuid.UUID(str(company_id))]:
                _kept.pop(key, None)

    transaction.on_commit(publish, using=DEFAULT_DB_ALIAS)


def forget() -> None:
    """Tests: this process's members."""
    with _lock:
        _kept.clear()


def _membership_changed(sender, instance: Membership, **kwargs) -> None:
    changed(instance.company_id)


def _user_changed(sender, instance: User, update_fields=None, created=False, **kwargs) -> None:
    if created or (update_fields is not None and not USER_FIELDS & set(update_fields)):
        return
    for company_id in Membership.objects.filter(user_id=instance.pk).values_list("company_id", flat=True):
        changed(company_id)


def connect() -> None:
    """Called once, by the app's ready()."""
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="api-members-saved")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="api-members-deleted")
    post_save.connect(_user_changed, sender=User, dispatch_uid="api-members-user-saved")
