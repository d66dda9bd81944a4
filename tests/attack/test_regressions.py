"""What `make attack` found in Vouch, kept as tests (docs/security/attack-suite.md): each
finding, once fixed, stays fixed."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from attack.headers import PERMISSIONS
from vouch.web import tls


def test_the_development_certificate_passes_rfc_5280_path_validation(tmp_path):
    """sslyze (tls step): "Certificate path validation failed": the certificate had no
    Authority Key Identifier, which RFC 5280 validation (cryptography's, as sslyze and
    other clients use) requires of a server certificate, even trusted as its own anchor."""
    cert_path, _ = tls.ensure_dev_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    verifier = PolicyBuilder().store(Store([cert])).build_server_verifier(x509.DNSName("localhost"))
    assert verifier.verify(cert, []) == [cert]
    keys = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    authority = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert authority.key_identifier == keys.digest


def _security_headers(response) -> list[str]:
    """What of the promised headers ``response`` lacks (as attack/headers.py checks them)."""
    missing = []
    if "max-age=63072000; includeSubDomains" not in (response.get("Strict-Transport-Security") or ""):
        missing.append("HSTS")
    if response.get("X-Content-Type-Options") != "nosniff":
        missing.append("nosniff")
    if response.get("Referrer-Policy") != "same-origin":
        missing.append("Referrer-Policy")
    if not all(feature in (response.get("Permissions-Policy") or "") for feature in PERMISSIONS):
        missing.append("Permissions-Policy")
    if "default-src 'none'" not in (response.get("Content-Security-Policy") or ""):
        missing.append("CSP")
    if response.get("X-Frame-Options") != "DENY":
        missing.append("X-Frame-Options")
    if "no-store" not in (response.get("Cache-Control") or ""):
        missing.append("no-store")
    return missing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("label", "method", "extra", "status"),
    [
        # headers step: the answers the outermost middleware makes itself had none of the
        # security headers, and the 400 for an unknown Host lacked CSP and X-Frame-Options.
        ("TRACE", "TRACE", {}, 405),
        ("declared body over the cap", "POST", {"CONTENT_LENGTH": "999999999"}, 413),
        ("malformed Content-Length", "POST", {"CONTENT_LENGTH": "-1"}, 400),
        ("unknown Host", "GET", {"HTTP_HOST": "evil.example"}, 400),
    ],
)
def test_error_answers_made_outside_the_views_carry_the_security_headers(client, label, method, extra, status):
    response = client.generic(method, "/", **extra)
    assert response.status_code == status, label
    assert _security_headers(response) == [], label
