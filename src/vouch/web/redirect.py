"""The plain-HTTP listener: every request gets a permanent redirect to HTTPS.

A bare ASGI callable rather than Django: it must stay cheap under any load and
has nothing to do but redirect. The Host header is only echoed back when it is an
allowed host, so the redirect cannot be pointed at another site."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http.request import split_domain_port, validate_host

from vouch import config
from vouch.web.errors import ALLOWED_METHODS

_public = urlsplit(config.env("VOUCH_PUBLIC_URL", "https://localhost:8443"))
_allowed = {h.lower() for h in config.env_list("VOUCH_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")}
_https_port = config.env("VOUCH_HTTPS_PORT", "8443")


def target_url(host_header: str, path: str, query: str) -> str:
    # Django's own Host parsing: a malformed header such as "[::1].evil" yields "".
    name, _port = split_domain_port(host_header.strip().lower())
    if not name or "*" in _allowed or not validate_host(name, sorted(_allowed)):
        return f"https://{_public.netloc}{path}{'?' + query if query else ''}"
    port = "" if _https_port == "443" else f":{_https_port}"
    return f"https://{name}{port}{path}{'?' + query if query else ''}"


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1")
    path = scope.get("raw_path", b"").decode("latin-1") or scope.get("path", "/")
    path = "/" + path.lstrip("/")  # "//evil.example" must not become a scheme-relative URL
    location = target_url(host, path.split("?", 1)[0], scope.get("query_string", b"").decode("latin-1"))
    method = scope.get("method")
    if method not in ALLOWED_METHODS:
        # TRACE and unknown methods are refused here as on HTTPS, not sent on to it.
        status, extra = 405, [(b"allow", ", ".join(sorted(ALLOWED_METHODS)).encode())]
    else:
        # 301 for GET/HEAD; 308 keeps the method and body for anything else.
        status, extra = (301 if method in ("GET", "HEAD") else 308), [(b"location", location.encode("latin-1"))]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *extra,
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"0"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
