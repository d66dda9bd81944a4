"""What hostile requests look like: the detection points that read the request itself.

Each pattern is chosen to be specific: a person never types it into an address bar, and
Vouch's own pages never produce it (tests/shield/test_patterns.py checks every URL Vouch
has and every form it draws against them). Free text a person writes (a referee's answer)
is not read here at all: it is posted in bodies, and only the address, its parameters and a
few headers are.

The lists follow OWASP AppSensor's detection points (RE: request exceptions, IE: input
exceptions, CIE: command injection) and the core rule set's most common signatures; they
are a tripwire for scanners and probing, not a filter: Vouch's queries are parameterised
and its templates escape (docs/security/input.md), so a missed pattern is not a hole."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

# SQL injection, script injection, template/expression injection, command injection.
_INJECTION = [
    r"\bunion\b[\s/*+]+(?:all[\s/*+]+)?select\b",
    r"\bselect\b.{1,80}\bfrom\b.{1,80}\b(?:information_schema|pg_catalog|sqlite_master|mysql\.user)\b",
    r"'\s*(?:or|and)\s*'?\d+'?\s*=\s*'?\d+",  # ' or 1=1
    r"\b(?:or|and)\s+\d+\s*=\s*\d+\s*(?:--|#|/\*)",
    r"\b(?:sleep|pg_sleep|benchmark|waitfor\s+delay)\s*\(",
    r";\s*(?:drop|delete|insert|update|shutdown)\s",
    r"<\s*script\b",
    r"\bon(?:error|load|mouseover|focus)\s*=",
    r"javascript\s*:",
    r"\{\{\s*\d+\s*\*\s*\d+\s*\}\}",  # {{7*7}}
    r"\$\{\s*(?:jndi|\d+\s*\*)",  # ${jndi:...} ${7*7}
    r"(?:;|\||`|\$\()\s*(?:cat|id|whoami|uname|wget|curl|ping|nslookup)\b",
]
# Walking out of a directory, or naming files no web address of Vouch has.
_TRAVERSAL = [
    r"(?:\.\.[/\\]){2,}",
    r"\.\.[/\\].*(?:etc|windows|boot|proc)",
    r"/etc/(?:passwd|shadow|hosts)\b",
    r"\bwin\.ini\b|\bboot\.ini\b",
    r"\x00",
    r"/proc/self/",
]
# Paths scanners ask for on every site; no Vouch URL looks like them.
_SCANNER_PATHS = [
    r"/wp-(?:admin|login|content|includes)",
    r"/xmlrpc\.php",
    r"\.(?:php\d?|aspx?|jsp|cgi|asp)(?:$|[/?])",
    r"/\.(?:env|git|svn|hg|ds_store|aws|ssh|htaccess|htpasswd|npmrc|docker)",
    r"/(?:phpmyadmin|pma|myadmin|adminer|phpinfo)",
    r"/cgi-bin/",
    r"/(?:actuator|server-status|server-info|jmx-console|manager/html|solr|console)(?:$|/)",
    r"/(?:backup|db|database|dump|site)\.(?:sql|zip|tar|gz|bak)",
    r"/(?:config|settings)\.(?:php|yml|yaml|json|ini|bak)",
    r"/vendor/phpunit",
    r"/\.well-known/security\.txt\.bak",
]
# Tools that name themselves. (Browsers, curl and libraries are not here: people use them.)
_SCANNER_AGENTS = [
    "sqlmap", "nikto", "nmap", "masscan", "zgrab", "wapiti", "acunetix", "nessus", "openvas",
    "w3af", "dirbuster", "gobuster", "feroxbuster", "dirb", "wfuzz", "ffuf", "nuclei", "wpscan",
    "hydra", "arachni", "skipfish", "netsparker", "appscan", "jaeles", "whatweb", "zmeu",
    "morfeus", "havij", "commix", "xsstrike", "burpcollaborator", "interact.sh", "censysinspect",
]  # fmt: skip

INJECTION = re.compile("|".join(_INJECTION), re.IGNORECASE | re.DOTALL)
TRAVERSAL = re.compile("|".join(_TRAVERSAL), re.IGNORECASE)
SCANNER_PATH = re.compile("|".join(_SCANNER_PATHS), re.IGNORECASE)
SCANNER_AGENT = re.compile("|".join(re.escape(name) for name in _SCANNER_AGENTS), re.IGNORECASE)
# Cheap pre-check, in plain string operations (this runs on every request): a text with
# none of these characters or words cannot match the injection or traversal patterns, and
# most requests have none of them.
# Not "(" nor ";" (every browser's user agent has both), nor "'" alone (O'Brien): the
# apostrophes of injections come with the words after them.
_SUSPECT_CHARACTERS = frozenset("<>`{}|$\x00")
_SUSPECT_WORDS = (
    "..", "--", "/*", "union", "select", "script", "sleep", "benchmark", "waitfor", "passwd", "win.ini",
    "/proc/", "onerror", "onload", "onmouseover", "onfocus", "drop", "shutdown", "whoami",
    "' or", "'or", "' and", "'and", "'=", "=1",
)  # fmt: skip
# One expression for the words: a loop over them in Python costs twice as much.
_SUSPECT_WORD = re.compile("|".join(re.escape(word) for word in _SUSPECT_WORDS))
_HEADER_CHARACTERS = _SUSPECT_CHARACTERS | {"'"}
_AGENT_NAMES = tuple(name.lower() for name in _SCANNER_AGENTS)
# Not cookies: their `; name=` separators read like command injection ("; id=").
HEADERS = ("HTTP_USER_AGENT", "HTTP_REFERER", "HTTP_X_FORWARDED_HOST")
READ_LIMIT = 4096  # characters of each part read: a huge header is refused elsewhere


def hostile_input(*parts: str) -> str | None:
    """The detection point an address's path or query matches ("injection" or
    "traversal"), or None. Each part is read as sent and once URL-decoded (scanners encode
    their payloads)."""
    for part in parts:
        if not part:
            continue
        part = part[:READ_LIMIT]
        decoded = unquote_plus(part) if "%" in part or "+" in part else part
        for text in (part, decoded) if decoded != part else (part,):
            if _SUSPECT_CHARACTERS.isdisjoint(text) and _SUSPECT_WORD.search(text.lower()) is None:
                continue
            point = _matched(text)
            if point is not None:
                return point
    return None


def hostile_header(value: str) -> str | None:
    """The same for a header's value, with a cheaper pre-check: characters and ".." only
    (user agents and referrers are long, and a payload in one has one of them)."""
    if not value or (_HEADER_CHARACTERS.isdisjoint(value) and ".." not in value):
        return None
    return _matched(value[:READ_LIMIT])


def _matched(text: str) -> str | None:
    if TRAVERSAL.search(text):
        return "traversal"
    if INJECTION.search(text):
        return "injection"
    return None


def scanner_path(path: str) -> bool:
    return bool(SCANNER_PATH.search(path[:READ_LIMIT]))


def scanner_agent(user_agent: str) -> bool:
    # Substring tests, not the regular expression: an alternation of 30 names with
    # IGNORECASE costs ~100 µs on a browser's user agent; these ~2 µs.
    lowered = user_agent[:512].lower()
    return any(name in lowered for name in _AGENT_NAMES)
