import gc
import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vouch.settings")
_django = get_wsgi_application()


def application(environ, start_response):
    """Django's handler, with each Set-Cookie value stripped of the space Django's cookie
    output puts before it. HTTP/1.1 reads that space as optional whitespace; HTTP/2 (RFC
    9113, 8.2.1) forbids it, and strict clients drop the whole response."""

    def start(status, headers, exc_info=None):
        headers = [(name, value.strip()) if name == "Set-Cookie" else (name, value) for name, value in headers]
        return start_response(status, headers, exc_info)

    return _django(environ, start)


def _freeze_startup_objects() -> None:
    """Import every view now (through the URL configuration), then move everything alive
    into the collector's permanent generation. A worker holds ~140,000 objects after
    start-up that live as long as it does; a full collection walked them all, holding
    the GIL for ~65 ms (every thread of the worker waited: the slowest 1% of requests
    in `make bench`). Frozen, a full collection takes ~2 ms. Objects made afterwards
    are collected as before."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports the views)
    gc.freeze()


_freeze_startup_objects()
sys.setswitchinterval(0.001)
