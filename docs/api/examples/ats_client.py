"""An applicant tracking system's side of Vouch: order a reference check, hear of its
progress through signed webhooks, and fetch the report PDF when it is done.

Standard library and the `standardwebhooks` package only (pip install standardwebhooks).
It is an example to read and adapt, not a library: an adapter for one ATS maps its own
records onto these calls. See docs/api/order-flow.md.

    VOUCH_URL=https://vouch.example VOUCH_KEY=vk_... \\
        python ats_client.py order --name "Siobhán O'Brien" --email siobhan@example.org \\
            --role "Head of Finance" --external-id 4411
    VOUCH_WEBHOOK_SECRET=whsec_... python ats_client.py receive --port 8000
    VOUCH_URL=... VOUCH_KEY=... python ats_client.py report <request id> report.pdf
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# Vouch's request statuses onto the five an ATS usually knows for a background or
# reference check. An expired request ended without its references: the ATS should
# show it as needing attention (error), not as done.
ATS_STATUSES = ("pending", "in_progress", "completed", "cancelled", "error")
STATUS_MAP = {
    "awaiting_candidate": "pending",  # ordered; the candidate has not named referees yet
    "awaiting_referees": "in_progress",  # the candidate acted; referees are invited
    "in_progress": "in_progress",  # some references are in
    "completed": "completed",  # enough references: the report is ready
    "cancelled": "cancelled",
    "expired": "error",  # the deadline passed without enough references
}
# A request event's payload carries the request's status; these events carry a
# reference's status instead (see docs/api/webhooks.md), so they do not move the check.
REFERENCE_EVENTS = {"candidate.nominated", "reference.completed", "reference.declined"}


def ats_status(vouch_status: str) -> str:
    """The ATS status of a Vouch request status; an unknown one (a newer Vouch) is an
    error to look at rather than a guess."""
    return STATUS_MAP.get(vouch_status, "error")


class VouchError(Exception):
    """An API error: its problem details (RFC 9457)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('detail', problem)}")
        self.status, self.problem = status, problem


class Vouch:
    """The few calls an ATS makes, with its API key (scopes requests:read,
    requests:write, reports:read, webhooks:manage)."""

    def __init__(self, base_url: str, key: str, *, context: ssl.SSLContext | None = None) -> None:
        if not base_url.startswith("https://"):
            raise ValueError("Vouch's API is served over https only")  # and so no file: or other scheme
        self.base_url, self.key, self.context = base_url.rstrip("/"), key, context

    def call(
        self, method: str, path: str, body: dict | None = None, *, idempotency_key: str | None = None
    ) -> tuple[int, bytes, str]:
        """Status, body and content type of one call; an error answer raises VouchError."""
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json, application/pdf"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key  # a retried POST returns the first answer
        url = self.base_url + path  # https, checked in __init__
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:  # noqa: S310
                return response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            content = error.read()
            try:
                problem = json.loads(content)
            except ValueError:
                problem = {"detail": content[:200].decode(errors="replace")}
            raise VouchError(error.code, problem) from None

    def json(self, method: str, path: str, body: dict | None = None, **options) -> Any:
        _, content, _ = self.call(method, path, body, **options)
        return json.loads(content) if content else None

    def add_webhook(self, url: str, event_types: list[str]) -> dict:
        """An endpoint for these events; the answer's ``secret`` is shown only now: keep it."""
        return self.json("POST", "/api/v1/webhooks/endpoints", {"url": url, "event_types": event_types})

    def order(
        self,
        *,
        name: str,
        email: str,
        role: str,
        external_id: str,
        external_url: str = "",
        questionnaire: str = "builtin:general-professional",
        days: int = 14,
    ) -> dict:
        """Create the request (the candidate is emailed their link). The ATS's own id is
        the idempotency key too: a retry after a lost answer does not order twice."""
        body = {
            "candidate": {"name": name, "email": email},
            "role": role,
            "questionnaire": questionnaire,
            "deadline": (date.today() + timedelta(days=days)).isoformat(),
            "external_id": external_id,
            "external_url": external_url,
        }
        return self.json("POST", "/api/v1/requests", body, idempotency_key=f"order-{external_id}")

    def find(self, external_id: str) -> dict | None:
        """The request ordered for this ATS id (e.g. after the ATS lost its own record of it)."""
        from urllib.parse import quote

        items = self.json("GET", f"/api/v1/requests?external_id={quote(external_id)}")["items"]
        return items[0] if items else None

    def request(self, request_id: str) -> dict:
        return self.json("GET", f"/api/v1/requests/{uuid.UUID(request_id)}")

    def report(self, request_id: str) -> dict:
        return self.json("GET", f"/api/v1/requests/{uuid.UUID(request_id)}/report")

    def report_pdf(self, request_id: str) -> bytes:
        """The report as a PDF, to attach to the candidate. A 429 asks to wait
        (Retry-After) while it is rendered."""
        _, content, content_type = self.call("GET", f"/api/v1/requests/{uuid.UUID(request_id)}/report.pdf")
        if not content_type.startswith("application/pdf"):
            raise VouchError(200, {"detail": f"expected a PDF, got {content_type}"})
        return content


def receiver(secret: str, on_event: Callable[[str, dict], None]) -> type[BaseHTTPRequestHandler]:
    """A request handler that verifies each delivery's Standard Webhooks signature over
    the raw body and hands ``(webhook-id, event)`` to ``on_event`` once per message id."""
    webhook = Webhook(secret)
    seen: set[str] = set()  # keep these in the ATS's database in real use

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                event = webhook.verify(body, {key.lower(): value for key, value in self.headers.items()})
            except WebhookVerificationError:
                self.send_response(400)
                self.end_headers()
                return
            message_id = self.headers["webhook-id"]
            if message_id not in seen:  # a retry or replay carries the same id
                seen.add(message_id)
                on_event(message_id, event)
            self.send_response(204)  # answer at once; slow work belongs elsewhere
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Handler


def on_event(message_id: str, event: dict) -> None:
    """What an ATS does with an event: move its own check to the mapped status, and on
    request.completed fetch the PDF (here: print what it would do)."""
    data = event["data"]
    if event["type"] in REFERENCE_EVENTS:
        print(f"{event['type']}: request {data['request_id']} (reference {data.get('reference_id')})")
        return
    print(f"{event['type']}: request {data['request_id']} is now {ats_status(data['status'])}")
    if event["type"] == "request.completed":
        print(f"  fetch the report: GET /api/v1/requests/{data['request_id']}/report.pdf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    order = commands.add_parser("order", help="order a reference check")
    for option in ("--name", "--email", "--role", "--external-id"):
        order.add_argument(option, required=True)
    order.add_argument("--external-url", default="")
    receive = commands.add_parser("receive", help="receive webhooks (put TLS in front of it)")
    receive.add_argument("--port", type=int, default=8000)
    report = commands.add_parser("report", help="save a request's report PDF")
    report.add_argument("request_id")
    report.add_argument("path")
    args = parser.parse_args(argv)

    if args.command == "receive":
        HTTPServer(("127.0.0.1", args.port), receiver(os.environ["VOUCH_WEBHOOK_SECRET"], on_event)).serve_forever()
        return 0
    vouch = Vouch(os.environ["VOUCH_URL"], os.environ["VOUCH_KEY"])
    try:
        if args.command == "order":
            created = vouch.order(
                name=args.name,
                email=args.email,
                role=args.role,
                external_id=args.external_id,
                external_url=args.external_url,
            )
            print(created["id"], ats_status(created["status"]))
        else:
            with open(args.path, "wb") as file:
                file.write(vouch.report_pdf(args.request_id))
    except VouchError as error:
        print(f"Vouch refused: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
