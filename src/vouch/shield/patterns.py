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
# Cheap pre-check: a request with none of these characters or words cannot match the
# injection or traversal patterns, and most requests have none of them.
_SUSPECT = re.compile(
    r"['<>`;{}|$\x00]|--|/\*|\.\.|\(|union|select|script|javascript|sleep|benchmark|waitfor|passwd|win\.ini|/proc/|\bon\w+=",
    re.IGNORECASE,
)
# Headers a scanner puts payloads into (besides the address): read, capped in length.
# Not cookies: their `; name=` separators read like command injection ("; id=").
HEADERS = ("HTTP_USER_AGENT", "HTTP_REFERER", "HTTP_X_FORWARDED_HOST")
READ_LIMIT = 4096  # characters of each part read: a huge header is refused elsewhere


def hostile_input(*parts: str) -> str | None:
    """The detection point an input matches ("injection" or "traversal"), or None.

    Each part is read as sent and once URL-decoded (scanners encode their payloads)."""
    for part in parts:
        if not part:
            continue
        part = part[:READ_LIMIT]
        decoded = unquote_plus(part) if "%" in part or "+" in part else part
        for text in (part, decoded) if decoded != part else (part,):
            if not _SUSPECT.search(text):
                continue
            if TRAVERSAL.search(text):
                return "traversal"
            if INJECTION.search(text):
                return "injection"
    return None


def scanner_path(path: str) -> bool:
    return bool(SCANNER_PATH.search(path[:READ_LIMIT]))


def scanner_agent(user_agent: str) -> bool:
    return bool(user_agent) and bool(SCANNER_AGENT.search(user_agent[:512]))
