"""Taking one company offline for maintenance (an in-place restore) and back.

The state is a field of the company's row in the control database
(``Company.offline_since`` and ``offline_reason``), so it survives a crash of whatever
took the company offline: the company stays offline, with the reason saying how to
finish or roll back, until someone does. Only that company is affected: its members and
the private links of its candidates and referees get :func:`maintenance_response`
(503 with Retry-After, no personal data), and ``company_context`` refuses to open its
database; every other company carries on."""

from __future__ import annotations

from django.http import HttpResponse
from django.template import loader
from django.utils import timezone

from vouch.core.context import alias_for
from vouch.tenancy import connections
from vouch.tenancy.models import Company

RETRY_AFTER_SECONDS = 300
TITLE = "Briefly offline for maintenance"
# No promise that nothing is lost: a restore to an earlier moment deliberately undoes later
# changes (they are kept aside for a rollback, which the operator decides on).
MESSAGE = (
    "This company's data is being restored from a backup by the people who run this Vouch. "
    "Other companies are not affected. Please try again in a few minutes."
)


class AlreadyOffline(RuntimeError):
    """Another maintenance of this company is under way (or was interrupted)."""


def take_offline(company_id, reason: str) -> Company:
    """Mark the company offline (a compare-and-set: one maintenance at a time) and close
    this thread's connection to its database. Raises ``AlreadyOffline`` with the reason
    recorded by the maintenance already under way."""
    updated = Company.objects.filter(pk=company_id, offline_since__isnull=True).update(
        offline_since=timezone.now(), offline_reason=reason
    )
    company = Company.objects.get(pk=company_id)
    if not updated:
        raise AlreadyOffline(company.offline_reason or "the company is already offline for maintenance")
    connections.release(alias_for(company_id))
    return company


def set_reason(company_id, reason: str) -> None:
    Company.objects.filter(pk=company_id).update(offline_reason=reason)


def bring_online(company_id) -> None:
    connections.release(alias_for(company_id))
    Company.objects.filter(pk=company_id).update(offline_since=None, offline_reason="")


def maintenance_response() -> HttpResponse:
    """The page an offline company's visitors get. Rendered without the request, so it
    holds nothing about the visitor or the company (a referee's link must not learn more
    than that the service is briefly offline)."""
    context = {"status": 503, "title": TITLE, "message": MESSAGE}
    response = HttpResponse(loader.render_to_string("web/error_plain.html", context), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
