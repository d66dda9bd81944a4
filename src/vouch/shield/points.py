"""The detection points of intrusion detection and what each weighs (see
``vouch.shield.detection`` and docs/security/intrusion-detection.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Point:
    name: str
    weight: float
    label: str


POINTS = {
    p.name: p
    for p in (
        Point("injection", 4, "Injection pattern in the address, a parameter or a header"),
        Point("traversal", 4, "Path traversal pattern"),
        Point("scanner_path", 4, "Request for a path scanners probe (no Vouch page has it)"),
        Point("scanner_agent", 10, "A scanning tool's user agent"),
        Point("honeytoken", 10, "A honeytoken no person uses"),
        Point("method", 4, "Unexpected HTTP method"),
        Point("not_found", 1, "Page not found"),
        Point("bad_request", 1, "Malformed request"),
        Point("method_not_allowed", 2, "Method not allowed on the page"),
        Point("csrf", 1, "Form posted without a valid CSRF token"),
        Point("form_tampering", 3, "Form posted with fields added or missing"),
        Point("cross_company", 1, "Another company's record asked for"),
        # Light: the link throttle (vouch.guard.throttle) answers guessing first, with its
        # care for shared addresses; a block comes only from guessing that keeps on.
        Point("token_guess", 0.5, "Private link that does not exist"),
        Point("forbidden", 2, "Page refused by the role policy"),
        Point("guessing", 5, "Password or code guessing held by the brute-force throttle"),
    )
}
