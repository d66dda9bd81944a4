"""Pages that update part of themselves through htmx, and answer the same address
with the whole page without JavaScript."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers


def swaps(request: HttpRequest, target: str) -> bool:
    """Whether this request is htmx asking for the element ``target`` (an id) alone.
    Not when htmx restores a page from history (it asks for the whole page then, with
    the same header), nor for anything else on the same address."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Target") == target
        and headers.get("HX-History-Restore-Request") != "true"
    )


def varies(response: HttpResponse) -> HttpResponse:
    """Mark an answer that is a part or the whole page depending on htmx's headers, so
    no cache hands one out for the other."""
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
