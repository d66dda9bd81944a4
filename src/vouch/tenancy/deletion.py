"""Deleting a company: an owner schedules it, a grace period passes, the purge removes it.

During the grace period (``VOUCH_DELETION_GRACE_DAYS``) the company works as before,
every page shows when it will be deleted, and any owner can cancel. Once it has passed,
:func:`purge_due` (run by ``vouch tenants purge`` and hourly by ``vouch serve``) removes
the company's database and files and leaves a tombstone in the control database: the
row with its id, region and dates, under a neutral name, and the company's security
events (which are keyed by company id, not a foreign key, so they stay).

Every change of state is a compare-and-set on ``status``, so a cancel racing a purge,
or two purges on two servers, have exactly one winner."""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from datetime import datetime, timedelta

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from vouch.accounts import policy
from vouch.accounts.models import Invitation, Membership
from vouch.accounts.policy import Action, Role
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.outbox import queue as outbox_queue
from vouch.outbox import store as outbox_store
from vouch.outbox.backends import company_headers
from vouch.tenancy import provisioning
from vouch.tenancy.models import TOMBSTONE_NAME, Company, CompanyStatus
from vouch.tenancy.signals import company_database_discarded, company_purging
from vouch.vault import keyring, keystore

log = logging.getLogger("vouch.tenancy.deletion")


class DeletionError(Exception):
    """A message safe to show to the person who asked."""


def grace_period() -> timedelta:
    return timedelta(days=max(0, settings.VOUCH_DELETION_GRACE_DAYS))


def _require_owner(company: Company, by: Membership) -> None:
    # Asked again here, not only in the view: a forgotten check elsewhere is not a hole.
    policy.require(policy.can(by, Action.DELETE_COMPANY) and by.company_id == company.pk)


def schedule_deletion(company: Company, by: Membership, *, request=None, now: datetime | None = None) -> Company:
    """Schedule ``company`` for deletion after the grace period; tell every owner."""
    _require_owner(company, by)
    now = now or timezone.now()
    with transaction.atomic():
        scheduled = Company.objects.filter(pk=company.pk, status=CompanyStatus.ACTIVE).update(
            status=CompanyStatus.DELETION_SCHEDULED,
            deletion_requested_at=now,
            deletion_requested_by=by.user,
            delete_after=now + grace_period(),
        )
        if not scheduled:
            raise DeletionError("This company is already scheduled for deletion.")
        company.refresh_from_db()
        record(
            EventAction.COMPANY_DELETION_SCHEDULED,
            request=request,
            actor=by.user,
            company=company.pk,
            target=f"company:{company.pk}",
            details={"delete_after": company.delete_after.isoformat()},  # type: ignore[union-attr]  # typing debt: an Optional not narrowed here
        )
    _notify_owners(company, "tenancy/email/deletion_scheduled", actor=by.user)
    return company


def cancel_deletion(company: Company, by: Membership, *, request=None) -> Company:
    """Cancel a scheduled deletion (possible until the purge has started)."""
    _require_owner(company, by)
    with transaction.atomic():
        cancelled = Company.objects.filter(pk=company.pk, status=CompanyStatus.DELETION_SCHEDULED).update(
            status=CompanyStatus.ACTIVE,
            deletion_requested_at=None,
            deletion_requested_by=None,
            delete_after=None,
        )
        if not cancelled:
            raise DeletionError("This company is not scheduled for deletion.")
        company.refresh_from_db()
        record(
            EventAction.COMPANY_DELETION_CANCELLED,
            request=request,
            actor=by.user,
            company=company.pk,
            target=f"company:{company.pk}",
        )
    _notify_owners(company, "tenancy/email/deletion_cancelled", actor=by.user)
    return company


def _notify_owners(company: Company, template_prefix: str, *, actor) -> None:
    """Email every active owner. Best effort: the change has happened either way, and the
    page and the security event log show it; a mail server that is down is logged."""
    owners = Membership.objects.filter(
        company=company, role=Role.OWNER, is_active=True, user__is_active=True
    ).select_related("user")
    context = {
        "company": company,
        "actor": actor,
        "grace_days": grace_period().days,
        "url": settings.PUBLIC_URL + reverse("company_settings"),
    }
    adapter = get_adapter()
    for owner in owners:
        try:
            adapter.render_mail(
                template_prefix,
                owner.user.email,
                context | {"owner": owner.user},
                headers=company_headers(company.pk),
            ).send()
        except Exception:
            log.exception("could not email owner user:%s about company %s", owner.user_id, company.pk)


def due(now: datetime | None = None):
    """Companies whose grace period has passed, deletions a failure left half done, and
    companies the key store says were purged although the control database (restored
    from a backup taken before) has them alive."""
    now = now or timezone.now()
    return Company.objects.filter(
        Q(status=CompanyStatus.DELETION_SCHEDULED, delete_after__lte=now)
        | Q(status=CompanyStatus.DELETED, deleted_at__isnull=True)
        | Q(pk__in=_purged_but_alive())
    )


def _purged_but_alive() -> list[uuid.UUID]:
    purged = keystore.purged_companies()
    if not purged:
        return []
    alive = Company.objects.filter(deleted_at__isnull=True).values_list("pk", flat=True)
    return sorted(purged.intersection(alive))


def purge_due(now: datetime | None = None) -> list[Company]:
    """Delete every company that is due; return the tombstones of those deleted now.

    One company's failure is logged and does not stop the others; it is tried again
    on the next run."""
    now = now or timezone.now()
    purged = []
    for company_id in list(due(now).values_list("pk", flat=True)):
        try:
            tombstone = delete_now(company_id, now=now)
        except Exception:
            log.exception("could not delete company %s; will try again on the next purge", company_id)
            continue
        if tombstone is not None:
            purged.append(tombstone)
    return purged


def delete_now(company_id: uuid.UUID | str, *, now: datetime | None = None) -> Company | None:
    """Remove a due company's data and leave its tombstone. None if it is not due
    (cancelled meanwhile, already deleted, or not yet at its date).

    First the row becomes a tombstone, so no membership check lets anyone in and no
    new connection to its database is made; then the database and files go; only then
    is ``deleted_at`` set. A failure in between leaves a tombstone without
    ``deleted_at``, which the next purge finishes (removing is idempotent)."""
    now = now or timezone.now()
    with transaction.atomic():
        company = Company.objects.select_for_update().filter(pk=company_id).first()
        if company is None or company.deleted_at is not None:
            return None
        # Purged already, by the key store's tombstone: the control database is a copy
        # restored from before that purge, and the company goes again, whatever it says.
        purged = keystore.is_purged(company.pk)
        if company.status == CompanyStatus.ACTIVE and not purged:
            return None
        if company.status != CompanyStatus.DELETED:
            if not purged and company.delete_after > now:  # type: ignore[operator]  # typing debt: an Optional not narrowed here
                return None
            company.status = CompanyStatus.DELETED
            company.is_active = False
            company.name = TOMBSTONE_NAME
            company.save(update_fields=["status", "is_active", "name"])
        Invitation.objects.filter(company=company).delete()
        # Its private links (vouch.links, a layer above: tenancy.signals).
        company_purging.send(sender=Company, company=company)
        Membership.objects.filter(company=company).delete()
        # Crypto-shredding, before anything else is removed: with its keys gone, any copy
        # of the company's database or files (a backup, a disk) can no longer be read.
        shredded = keyring.delete_key_rows(company.pk)
    # Then its KEK, in the key store: a control database restored from before this purge
    # still holds the key rows, and they open nothing without it. After the commit, so a
    # rolled-back transaction never leaves a company that may still be cancelled without
    # its KEK; a crash before this line leaves the row DELETED without deleted_at, and
    # the next purge comes back here (each step is idempotent).
    kek_destroyed = keyring.destroy_kek(company.pk)
    if shredded or kek_destroyed:
        record(
            EventAction.KEYS_SHREDDED,
            company=company.pk,
            target=f"company:{company.pk}",
            details={"rows": shredded, "kek": "destroyed" if kek_destroyed else "absent"},
        )
    # Closes this thread's connection first; PostgreSQL's DROP ... WITH (FORCE) ends any
    # other session, and the tombstone stops new ones being made.
    provisioning.discard(company.pk, company.region)
    # Its copy in the region's mirror (embedded default) goes too; a mirror target that
    # cannot be reached fails the purge, which the next run finishes (vouch.backups, a
    # layer above: tenancy.signals).
    company_database_discarded.send(sender=Company, company_id=company.pk, region=company.region)
    # Its mail in the local outbox (names, addresses, private links) goes too, not a
    # week later: the outbox key is the installation's, which the shredding leaves.
    removed = outbox_store.remove_company_messages(company.pk) + outbox_queue.remove_company(company.pk)
    if removed:
        log.info("company %s: %d outbox message(s) removed", company.pk, removed)
    with transaction.atomic():
        # Two purges (two servers) may both have got this far; one records the deletion.
        if not Company.objects.filter(pk=company.pk, deleted_at__isnull=True).update(deleted_at=now):
            return None
        record(
            EventAction.COMPANY_DELETED,
            company=company.pk,
            target=f"company:{company.pk}",
            details={
                "region": company.region,
                "requested_by": f"user:{company.deletion_requested_by_id}" if company.deletion_requested_by_id else "",
            },
        )
    company.deleted_at = now
    log.info("company %s deleted (region %s)", company.pk, company.region)
    return company


def run_purge(out=None, err=None) -> int:
    """``vouch tenants purge``: delete what is due, print it; 1 if any deletion failed."""
    out = out or sys.stdout
    err = err or sys.stderr
    now = timezone.now()
    purged = purge_due(now)
    for company in purged:
        print(f"Deleted company {company.pk} (region {company.region}).", file=out)
    left = due(now).count()
    if left:
        print(f"{left} deletion(s) failed and will be tried again on the next purge; see the log.", file=err)
        return 1
    if not purged:
        print("No company is due for deletion.", file=out)
    return 0


PURGE_INTERVAL_SECONDS = 3600


def purge_periodically(stopping: threading.Event, interval: float = PURGE_INTERVAL_SECONDS) -> None:
    """For ``vouch serve``: purge once at start, then every ``interval`` seconds, until
    ``stopping`` is set. A failure is logged and tried again next time; it never
    reaches the server."""
    from django.db import connections

    while not stopping.is_set():
        try:
            purged = purge_due()
            if purged:
                log.info("purge deleted %d company(ies)", len(purged))
        except Exception:
            log.exception("company purge failed; will try again")
        finally:
            # This thread's connections, not left open between runs.
            connections.close_all()
        stopping.wait(interval)
