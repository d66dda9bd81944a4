"""The brand on the pages of a private link (``links/base.html``): the company's name
and logo in the header, its accent colour in a ``<style>`` with the response's CSP
nonce (the policy allows no other inline style). Read only when a template asks, so
pages without a link (and the neutral and ended pages, drawn without the request)
never query it."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from vouch.references.branding.services import brand_of


@dataclass(frozen=True)
class LinkBrand:
    name: str
    accent: str
    logo_url: str
    logo_width: int
    logo_height: int


def _relative_root(request: HttpRequest, token: str) -> str:
    """The way from this page back to the link's own address, relative (the token
    stays out of the page: ``referees.views._relative``)."""
    marker = f"/{token}/"
    at = request.path.find(marker)
    here = request.path[at + len(marker) :] if at >= 0 else ""
    return "../" * here.count("/")


def _link_brand(request: HttpRequest) -> LinkBrand:
    link = request.link  # type: ignore[attr-defined]  # set by link_required
    brand = brand_of(link.company)
    logo_url = f"{_relative_root(request, link.token)}logo.png?v={brand.logo_version}" if brand.logo_version else ""
    return LinkBrand(brand.name, brand.accent, logo_url, brand.logo_width, brand.logo_height)


def link_brand(request: HttpRequest) -> dict:
    """Context processor: ``link_brand`` on a page drawn under a valid private link."""
    if getattr(request, "link", None) is None:
        return {}
    return {"link_brand": SimpleLazyObject(lambda: _link_brand(request))}
