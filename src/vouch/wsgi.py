import gc
import os
import sys

from django.core.wsgi import get_wsgi_application

from vouch import config

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

# A thread waiting for the GIL asks the running one to let go after this long (Python's
# default: 5 ms). A member's request gives the GIL up at every database query and waits
# for it again after; beside a flood's request that computes, each wait lasts up to the
# interval. 1 ms shortened a member's pages during a flood, but cost the pages that
# compute beside each other a fifth of their throughput (`make bench`: the 10,000-request
# dashboard 208 against 253 pages a second): the default stays Python's, and an
# operator under a flood may lower it (docs/security/limits.md, "Priority under a flood").
SWITCH_INTERVAL = config.env_float("VOUCH_SWITCH_INTERVAL_MS", 5.0) / 1000
sys.setswitchinterval(SWITCH_INTERVAL)
