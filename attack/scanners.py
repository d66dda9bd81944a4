"""The injection scanners against the live server: Debian's wapiti (crawls the signed-in
app and the link pages, attacks every parameter and form it finds) and sqlmap (a few
parameterised endpoints, batch mode); their reports turned into findings."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

from attack.findings import Finding
from attack.seed import Seeded
from tests.server import helpers

# Every wapiti module runs but these (docs/security/attack-suite.md, "What is left out"):
# nikto and wapp download their databases from GitHub at run time, and ssrf needs wapiti's
# public callback server to see a request arrive; none of them can work offline.
WAPITI_EXCLUDED = {
    "nikto": "downloads its test database from GitHub at run time (not reachable from CI)",
    "wapp": "downloads the Wappalyzer database from GitHub at run time (and only fingerprints)",
    "ssrf": "proves a forged request by asking wapiti's public endpoint (wapiti3.ovh), not reachable from CI",
    "buster": "ignores --max-attack-time in 3.0.4 and tries its 31,545 names in every directory: it alone "
    "outlasts the whole suite's time (the address guessing it does is what P4 detection must catch: "
    "the fuzzer and the 404 checks cover the answers)",
}
WAPITI_MODULES = "all," + ",".join(f"-{name}" for name in WAPITI_EXCLUDED)

# Pages the crawler must not submit: they end the session or destroy the seeded data the
# rest of the scan attacks (scope, not modules: every module still attacks every other page).
WAPITI_OUT_OF_SCOPE = [
    "/accounts/logout/*",
    "/accounts/password/*",
    "/accounts/email/*",
    "/accounts/2fa/*",
    "/accounts/sessions/*",
    "*/delete/*",
    "*/erase/*",
    "*/cancel/*",
]


def wapiti_cookie_file(path: Path, seeded: Seeded) -> Path:
    """The session cookie in wapiti's JSON cookie-jar format (keyed by ".localhost.local",
    as wapiti names a host without a dot)."""
    cookie = {"value": seeded.session, "expires": None, "secure": True, "port": None, "version": 0}
    path.write_text(json.dumps({".localhost.local": {"/": {"__Host-vouch_session": cookie}}}))
    return path


def wapiti_command(
    server, seeded: Seeded, work: Path, *, max_scan_time: int, headers: tuple[str, ...] = ()
) -> list[str]:
    base = server.url
    starts = [
        "/dashboard/",
        "/requests/",
        f"/requests/{seeded.request_id}/",
        "/candidates/",
        f"/candidates/{seeded.editable_candidate_id}/edit/",
        "/questionnaires/",
        f"/c/{seeded.candidate_token}/",
        f"/r/{seeded.referee_tokens[0]}/answers/",
        f"/r/{seeded.referee_tokens[1]}/",
        f"/r/{seeded.referee_tokens[2]}/decline/",
    ]
    command = [
        "/usr/bin/python3", str(Path(__file__).with_name("wapiti_shim.py")),  # Debian's wapiti, one bug fixed
        "-u", f"{base}/",
        "--scope", "folder",
        "-m", WAPITI_MODULES,
        "-c", str(wapiti_cookie_file(work / "cookies.json", seeded)),
        "-f", "json",
        "-o", str(work / "wapiti.json"),
        "--flush-session",
        "--store-session", str(work / "session"),
        "--store-config", str(work / "config"),
        "-d", "3",
        "--max-links-per-page", "40",
        "--max-scan-time", str(max_scan_time),
        # --max-scan-time bounds the crawl only: each module gets its share of the time too.
        "--max-attack-time", str(max(5, max_scan_time // 20)),
        "-t", "15",
        "--no-bugreport",
        "-v", "1",
    ]  # fmt: skip
    for header in headers:
        command += ["-H", header]
    for path in starts:
        command += ["-s", f"{base}{path}"]
    for pattern in WAPITI_OUT_OF_SCOPE:
        command += ["-x", f"{base}{pattern}" if pattern.startswith("/") else f"{base}/{pattern}"]
    return command


def run_wapiti(
    server, seeded: Seeded, work: Path, *, max_scan_time: int, headers: tuple[str, ...] = ()
) -> tuple[list[Finding], dict]:
    """One wapiti run; its findings and when it started and ended (monotonic and wall clock)."""
    (work / "session").mkdir(parents=True, exist_ok=True)
    (work / "config").mkdir(exist_ok=True)
    command = wapiti_command(server, seeded, work, max_scan_time=max_scan_time, headers=headers)
    started = time.time()
    with (work / "wapiti.log").open("wb") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=max_scan_time + 240, check=False)
    timing = {"started": started, "ended": time.time()}
    report = work / "wapiti.json"
    if not report.exists():
        tail = (work / "wapiti.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"wapiti wrote no report (exit {result.returncode}):\n{tail}")
    return parse_wapiti(json.loads(report.read_text())), timing


def parse_wapiti(report: dict) -> list[Finding]:
    """Findings from wapiti's JSON report: every vulnerability and anomaly (anomalies are
    the 500s and timeouts its payloads caused); "additionals" and "infos" are not findings."""
    findings = []
    for section, kind in (("vulnerabilities", "vulnerability"), ("anomalies", "anomaly")):
        for category, items in (report.get(section) or {}).items():
            for item in items:
                where = f"{item.get('method', '')} {item.get('path', '')}".strip()
                parameter = item.get("parameter") or ""
                detail = f"{where} [{parameter}] {item.get('info', '')}".strip()
                findings.append(Finding("wapiti", f"{kind} {category}", detail))
    return findings


# --- sqlmap -------------------------------------------------------------------------------

INJECTABLE = re.compile(r"sqlmap identified the following injection point\(s\).*?(?=\n\[|\Z)", re.S)
HTTP_ERRORS = re.compile(r"HTTP error codes detected during run:[ \t]*\n((?:[^\n]+\n?)+)")


def sqlmap_targets(server, seeded: Seeded) -> list[tuple[str, list[str]]]:
    """(label, sqlmap arguments) for each endpoint: the dashboard's search and filters,
    the candidates search, and a link page's form (with its CSRF cookie and token)."""
    cookie = f"__Host-vouch_session={seeded.session}"
    # The confirmation form is on the referee's home page and posts to confirm/.
    csrf_cookie, token, _ = helpers.csrf_form(server, f"/r/{seeded.referee_tokens[1]}/")
    confirm = f"{server.url}/r/{seeded.referee_tokens[1]}/confirm/"
    form = urlencode(
        {
            "csrfmiddlewaretoken": token,
            "job_title": "Director",
            "organisation": "Acme",
            "candidate_title": "Analyst",
            "candidate_from": "2021-01",
            "candidate_to": "2024-06",
        }
    )
    return [
        (
            "dashboard search and filters",
            ["-u", f"{server.url}/requests/?q=Casey&status=&created_from=&created_to=&page=1", "--cookie", cookie,
             "-p", "q,status,created_from,page"],
        ),
        ("candidates search", ["-u", f"{server.url}/candidates/?q=Keeper&page=1", "--cookie", cookie, "-p", "q,page"]),
        (
            "referee confirm form (link page)",
            ["-u", confirm, "--data", form, "--cookie", f"__Host-csrftoken={csrf_cookie}", "--referer", confirm,
             "--headers", f"Origin: {server.url}", "-p", "job_title,organisation,candidate_from"],
        ),
    ]  # fmt: skip


def run_sqlmap(server, seeded: Seeded, work: Path, *, level: int = 1) -> list[Finding]:
    """sqlmap in batch mode on each target: boolean, error, union and stacked-query
    techniques (time-based blind is left out: it costs seconds per payload, see the docs)."""
    findings = []
    for label, arguments in sqlmap_targets(server, seeded):
        out = work / "sqlmap" / re.sub(r"\W+", "-", label)
        out.mkdir(parents=True, exist_ok=True)
        command = [
            "sqlmap", *arguments, "--batch", f"--level={level}", "--risk=1", "--technique=BEUS",
            "--output-dir", str(out), "--flush-session", "--timeout=15", "--retries=1",
            "--disable-coloring", "--skip-waf",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        (out / "output.txt").write_text(result.stdout + result.stderr)
        findings += parse_sqlmap(label, result.stdout)
    return findings


def parse_sqlmap(label: str, output: str) -> list[Finding]:
    """An injection point sqlmap confirmed, a 5xx its payloads caused, or a run that did
    not finish its tests, as findings."""
    findings = [
        Finding("sqlmap", f"SQL injection in {label}", match.group(0).strip()) for match in INJECTABLE.finditer(output)
    ]
    for codes in HTTP_ERRORS.findall(output):
        if re.search(r"\b5\d\d\b", codes):
            findings.append(Finding("sqlmap", f"server errors while testing {label}", codes.strip()))
    if not findings and "do not appear to be injectable" not in output and "not injectable" not in output:
        tail = "\n".join(output.strip().splitlines()[-5:])
        findings.append(Finding("sqlmap", f"sqlmap did not finish testing {label}", tail))
    return findings
