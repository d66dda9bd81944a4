"""The API keys page of the company settings: the list, a new key (its secret shown
once), revoking one. Admins and owners (``Action.MANAGE_API_KEYS``)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from vouch.accounts.decorators import company_action, reauthentication_required
from vouch.accounts.policy import Action
from vouch.accounts.user_service import member_names
from vouch.api.keys import services
from vouch.api.keys.forms import KeyForm
from vouch.api.keys.scopes import allowed
from vouch.api.models import ApiKey
from vouch.core.requests import CompanyRequest
from vouch.tenancy.lookups import company_object_or_404


@company_action(Action.MANAGE_API_KEYS)
def keys(request: CompanyRequest) -> HttpResponse:
    rows = list(ApiKey.objects.all()[:200])
    names = member_names({row.created_by_id for row in rows})
    for row in rows:
        row.prefix = services.prefix_of(request.company.pk, row.public_id)  # type: ignore[attr-defined]
        row.creator = names.get(row.created_by_id, "a former member")  # type: ignore[attr-defined]
        row.state = row.status()  # type: ignore[attr-defined]
        row.calls = services.usage_count(row)  # type: ignore[attr-defined]
    return render(request, "api/keys.html", {"keys": rows})


# A key hands out the company's data to another system: the password again, as for an
# invitation or a webhook endpoint, unless it was confirmed recently.
@company_action(Action.MANAGE_API_KEYS)
@reauthentication_required
def create(request: CompanyRequest) -> HttpResponse:
    form = KeyForm(request.POST or None, allowed=allowed(request.membership))
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = services.create_key(
                request,
                request.membership,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.cleaned_data["expires_on"],
                networks=form.cleaned_data["networks"],
            )
        except services.KeyError_ as exc:
            form.add_error(None, str(exc))
        else:
            # Shown in this answer only: it is not stored, so it cannot be shown again.
            response = render(request, "api/key_created.html", {"key": key, "secret": secret})
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "api/key_new.html", {"form": form}, status=400 if form.is_bound else 200)


@require_POST
@company_action(Action.MANAGE_API_KEYS)
def revoke(request: CompanyRequest, key_id: UUID) -> HttpResponse:
    key = company_object_or_404(request, ApiKey, pk=key_id)
    if services.revoke_key(request, request.membership, key):
        messages.success(request, f"The key “{key.name}” is revoked: calls with it are refused from now on.")
    return redirect("api_keys")
