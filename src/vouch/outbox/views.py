"""The outbox page: reachable only from the local machine, only on the embedded default."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from vouch.core import proxies
from vouch.outbox import status, store


def _local_only(request: HttpRequest) -> None:
    if not status.in_use():
        raise Http404
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        raise Http404 from None
    # Behind a proxy every request would look local, so forwarded requests are refused.
    # (RequestContextMiddleware drops untrusted forwarded headers but marks the request.)
    forwarded = any(header in request.META for header in proxies.FORWARDED_HEADERS) or request.META.get(
        proxies.FORWARDED_SEEN, False
    )
    if not peer.is_loopback or forwarded or settings.VOUCH_TRUSTED_PROXIES:
        raise Http404


def index(request: HttpRequest) -> HttpResponse:
    _local_only(request)
    return render(request, "outbox/index.html", {"messages_list": store.list_messages(limit=200)})


def detail(request: HttpRequest, name: str) -> HttpResponse:
    _local_only(request)
    message = store.get_message(name)
    if message is None:
        raise Http404
    return render(request, "outbox/detail.html", {"message": message})
