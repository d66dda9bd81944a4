"""The branding page (owners and admins), and the logo itself: for members of the
company, and under a candidate's or referee's private link of the company. Thin: the
checks live in ``images``, ``colours`` and ``services``."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest, LinkRequest
from vouch.links.decorators import link_required, neutral_response
from vouch.links.models import Purpose
from vouch.objectstore import StoreUnavailable
from vouch.references.branding import services
from vouch.references.branding.forms import BrandingForm
from vouch.references.branding.images import LogoRefused
from vouch.references.branding.models import Branding
from vouch.vault.errors import VaultError

log = logging.getLogger("vouch.references")

# A logo's address names its version (?v=): one version's bytes never change, so the
# browser may keep it. Without a version it is looked up again each time.
VERSIONED_CACHE = "private, max-age=31536000, immutable"
UNVERSIONED_CACHE = "private, no-cache"


def _page(request: CompanyRequest, form: BrandingForm | None = None, *, status: int = 200) -> HttpResponse:
    branding = Branding.for_reading()
    if form is None:
        form = BrandingForm(initial={"accent": branding.accent})
    logo_url = f"{reverse('branding_logo')}?v={branding.logo_version}" if branding.logo_version else ""
    context = {"form": form, "branding": branding, "logo_url": logo_url}
    return render(request, "references/branding_settings.html", context, status=status)


@company_action(Action.MANAGE_SETTINGS)
def branding_settings(request: CompanyRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    form = BrandingForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=400)
    data = form.logo_bytes()
    try:
        if data is not None:
            services.set_logo(request.membership, data, request=request)
    except LogoRefused as refused:
        form.add_error("logo", str(refused))
        return _page(request, form, status=400)
    except StoreUnavailable:
        log.warning("logo upload refused: the file storage is unavailable")
        form.add_error("logo", "Vouch cannot reach its file storage right now, so the logo was not saved. Try again.")
        response = _page(request, form, status=503)
        response["Retry-After"] = "60"
        return response
    accent_changed = services.set_accent(request.membership, form.cleaned_data["accent"], request=request)
    messages.success(request, "Branding saved." if data is not None or accent_changed else "Nothing changed.")
    return redirect("branding_settings")


@require_POST
@company_action(Action.MANAGE_SETTINGS)
def branding_logo_remove(request: CompanyRequest) -> HttpResponse:
    if services.remove_logo(request.membership, request=request):
        messages.success(request, "Logo removed: your candidates and referees see your company's name only.")
    else:
        messages.info(request, "There was no logo to remove.")
    return redirect("branding_settings")


def _logo_response(request: HttpRequest) -> HttpResponse | None:
    """The current logo as a PNG; None when there is none, or when the address names a
    version that is not the current one (another company's, an old one)."""
    version = request.GET.get("v", "")
    try:
        png = services.logo_png(version)
    except (OSError, VaultError):
        log.warning("references: the company logo could not be read")
        png = None
    if png is None:
        return None
    response = HttpResponse(png, content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = 'inline; filename="logo.png"'
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = VERSIONED_CACHE if version else UNVERSIONED_CACHE
    return response


@require_safe
@company_action(Action.VIEW_REPORTS)
def branding_logo(request: CompanyRequest) -> HttpResponse:
    response = _logo_response(request)
    if response is None:
        raise Http404
    return response


# Under a private link, link_required makes every response "no-store" (the token is in
# the address): the logo is fetched again with each page, at most 512 KiB.
@require_safe
@link_required(Purpose.CANDIDATE)
def candidate_logo(request: LinkRequest) -> HttpResponse:
    return _logo_response(request) or neutral_response()


@require_safe
@link_required(Purpose.REFEREE)
def referee_logo(request: LinkRequest) -> HttpResponse:
    return _logo_response(request) or neutral_response()
