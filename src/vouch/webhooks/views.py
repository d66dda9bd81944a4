"""The webhook endpoint pages (admins and owners). Thin: parse, call a service, render."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from vouch.accounts.decorators import company_action, reauthentication_required
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest
from vouch.tenancy.lookups import company_object_or_404
from vouch.webhooks import services
from vouch.webhooks.forms import EndpointForm
from vouch.webhooks.models import Delivery, Endpoint


@company_action(Action.MANAGE_WEBHOOKS)
def endpoint_list(request: CompanyRequest) -> HttpResponse:
    return render(request, "webhooks/list.html", {"endpoints": services.endpoints(), "labels": services.EVENT_LABELS})


def _show_secret(request: CompanyRequest, endpoint: Endpoint, secret: str, *, created: bool) -> HttpResponse:
    # Rendered, never redirected to: the secret is in this answer only, not in a session.
    response = render(request, "webhooks/secret.html", {"endpoint": endpoint, "secret": secret, "created": created})
    response["Cache-Control"] = "no-store"
    return response


# A new or rotated secret is shown on the answer: the session must have confirmed the
# password recently (a session left open must not hand out signing secrets).
@company_action(Action.MANAGE_WEBHOOKS)
@reauthentication_required
def endpoint_new(request: CompanyRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.create_endpoint(
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
                event_types=form.cleaned_data["event_types"],
                actor=request.user,
                request=request,
            )
        except services.EndpointError as exc:
            form.add_error(None, str(exc))
        else:
            return _show_secret(request, endpoint, secret, created=True)
    return render(request, "webhooks/new.html", {"form": form}, status=400 if form.errors else 200)


@company_action(Action.MANAGE_WEBHOOKS)
def endpoint_detail(request: CompanyRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    endpoint = company_object_or_404(request, Endpoint, pk=endpoint_id)
    form = EndpointForm(
        request.POST or None,
        initial={"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types},
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.update_endpoint(
                    endpoint,
                    url=form.cleaned_data["url"],
                    description=form.cleaned_data["description"],
                    event_types=form.cleaned_data["event_types"],
                    actor=request.user,
                    request=request,
                )
            except services.EndpointError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Endpoint saved.")
                return redirect("webhook_detail", endpoint.pk)
        status = 400
    page = services.delivery_page(endpoint, request.GET.get("page"))
    return render(
        request,
        "webhooks/detail.html",
        {"endpoint": endpoint, "form": form, "page": page, "labels": services.EVENT_LABELS},
        status=status,
    )


@require_POST
@company_action(Action.MANAGE_WEBHOOKS)
def endpoint_rotate(request: CompanyRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    # Looked up first: another company's id is a 404 (and recorded), whatever the session.
    endpoint = company_object_or_404(request, Endpoint, pk=endpoint_id)
    return _rotate(request, endpoint)


@reauthentication_required
def _rotate(request: CompanyRequest, endpoint: Endpoint) -> HttpResponse:
    secret = services.rotate_secret(endpoint, actor=request.user, request=request)
    endpoint.refresh_from_db()
    return _show_secret(request, endpoint, secret, created=False)


@require_POST
@company_action(Action.MANAGE_WEBHOOKS)
def endpoint_toggle(request: CompanyRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    endpoint = company_object_or_404(request, Endpoint, pk=endpoint_id)
    enable = request.POST.get("enabled") == "1"
    services.set_enabled(endpoint, enable, actor=request.user, request=request)
    messages.success(request, "Endpoint enabled." if enable else "Endpoint disabled.")
    return redirect("webhook_detail", endpoint.pk)


@company_action(Action.MANAGE_WEBHOOKS)
def endpoint_delete(request: CompanyRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    endpoint = company_object_or_404(request, Endpoint, pk=endpoint_id)
    if request.method == "POST":
        services.delete_endpoint(endpoint, actor=request.user, request=request)
        messages.success(request, "Endpoint deleted.")
        return redirect("webhooks")
    return render(request, "webhooks/delete.html", {"endpoint": endpoint})


@require_POST
@company_action(Action.MANAGE_WEBHOOKS)
def delivery_replay(request: CompanyRequest, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> HttpResponse:
    endpoint = company_object_or_404(request, Endpoint, pk=endpoint_id)
    delivery = company_object_or_404(
        request, Delivery.objects.select_related("endpoint"), pk=delivery_id, endpoint=endpoint
    )
    try:
        services.replay(delivery, actor=request.user, request=request)
    except services.EndpointError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Delivery queued again.")
    return redirect("webhook_detail", endpoint.pk)
