"""The attack suite's own logic, without tools or a server: reports turned into findings,
understood findings, accepted vulnerabilities and their expiry, the detection figures."""

from __future__ import annotations

import datetime
import json

import pytest

from attack import audit, detection, findings, scanners, tls
from tests.attack import fuzzing


def test_wapiti_vulnerabilities_and_anomalies_are_findings_infos_are_not():
    report = {
        "vulnerabilities": {
            "SQL Injection": [{"method": "GET", "path": "/requests/", "parameter": "q", "info": "boom"}],
            "Cross Site Scripting": [],
        },
        "anomalies": {
            "Internal Server Error": [{"method": "POST", "path": "/r/x/answers/", "parameter": "q-1", "info": "500"}]
        },
        "additionals": {"Fingerprint web technology": [{"info": "Django"}]},
        "infos": {"target": "https://localhost/"},
    }
    found = scanners.parse_wapiti(report)
    assert [f.title for f in found] == ["vulnerability SQL Injection", "anomaly Internal Server Error"]
    assert "[q]" in found[0].detail


def test_sqlmap_output_parsing():
    clean = (
        "[WARNING] GET parameter 'q' does not seem to be injectable\n"
        "[CRITICAL] all tested parameters do not appear to be injectable."
    )
    assert scanners.parse_sqlmap("search", clean) == []
    hit = (
        "sqlmap identified the following injection point(s) with a total of 30 HTTP(s) requests:\n---\n"
        "Parameter: q (GET)\n    Type: boolean-based blind\n---\n[12:00:00] [INFO] done"
    )
    assert [f.title for f in scanners.parse_sqlmap("search", hit)] == ["SQL injection in search"]
    errors = clean + "\n[WARNING] HTTP error codes detected during run:\n500 (Internal Server Error) - 3 times"
    assert [f.title for f in scanners.parse_sqlmap("search", errors)] == ["server errors while testing search"]
    assert [f.title for f in scanners.parse_sqlmap("search", "[CRITICAL] connection refused")] == [
        "sqlmap did not finish testing search"
    ]


def test_sslyze_compliance_parsing():
    ok = " COMPLIANCE AGAINST TLS CONFIGURATION\n    localhost:8443: OK - Compliant.\n"
    assert tls.parse_compliance(ok) == []
    bad = (
        " COMPLIANCE AGAINST TLS CONFIGURATION\n    localhost:8443: FAILED - Not compliant.\n"
        "        * tls_versions: TLS versions {'TLSv1.1'} are supported, but should be rejected.\n"
    )
    assert [f.title for f in tls.parse_compliance(bad)] == ["not Mozilla intermediate: tls_versions"]
    assert [f.title for f in tls.parse_compliance("could not connect")] == ["sslyze gave no compliance verdict"]


def test_understood_findings_need_a_reason_and_still_show(tmp_path):
    path = tmp_path / "understood.toml"
    path.write_text('[[understood]]\ntool = "wapiti"\nmatch = "X-XSS-Protection"\nreason = "obsolete header"\n')
    entries = findings.load_understood(path)
    outcome = findings.judge(
        "wapiti",
        [findings.Finding("wapiti", "X-XSS-Protection is not set"), findings.Finding("wapiti", "SQL Injection")],
        entries,
    )
    assert [f.title for f in outcome.failing] == ["SQL Injection"]
    assert outcome.understood[0][1] == "obsolete header"
    path.write_text('[[understood]]\ntool = "wapiti"\nmatch = "X"\n')
    with pytest.raises(ValueError, match="reason"):
        findings.load_understood(path)


def test_the_repository_files_load():
    findings.load_understood()
    audit.load_exceptions()


def test_audit_exceptions_expire(tmp_path):
    path = tmp_path / "exceptions.toml"
    path.write_text('[[exception]]\nid = "GHSA-1"\npackage = "Django"\nreason = "not used"\nexpires = 2027-01-31\n')
    exceptions = audit.load_exceptions(path)
    result = audit.AuditResult(
        service="osv", vulnerabilities=[audit.Vulnerability("django", "5.2.19", "PYSEC-9", ["GHSA-1"], ["5.2.20"])]
    )
    found, notes = audit.judge(result, exceptions, datetime.date(2027, 1, 31))
    assert found == [] and any("accepted until 2027-01-31" in n for n in notes)
    found, _ = audit.judge(result, exceptions, datetime.date(2027, 2, 1))
    assert sorted(f.title for f in found) == [
        "expired exception GHSA-1 (django)",
        "known vulnerability in django 5.2.19",
    ]
    path.write_text('[[exception]]\nid = "GHSA-1"\npackage = "django"\nreason = "x"\nexpires = "soon"\n')
    with pytest.raises(ValueError, match="date"):
        audit.load_exceptions(path)


def test_an_incomplete_audit_is_loud_and_fails_only_when_asked(monkeypatch):
    result = audit.AuditResult(
        service="pypi", audited={"idna": "x"}, not_audited={"django": "5.2.19 pinned, newest 6.1.3"}
    )
    monkeypatch.delenv("VOUCH_ATTACK_AUDIT_COMPLETE", raising=False)
    found, notes = audit.judge(result, [], datetime.date(2027, 1, 1))
    assert found == [] and any("DEPENDENCY AUDIT INCOMPLETE" in n for n in notes)
    monkeypatch.setenv("VOUCH_ATTACK_AUDIT_COMPLETE", "1")
    found, _ = audit.judge(result, [], datetime.date(2027, 1, 1))
    assert [f.title for f in found] == ["dependency audit incomplete"]


def _entry(second: float, status: int = 200, blocked: bool = False) -> dict:
    stamp = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=second)
    entry = {"event": "request", "timestamp": stamp.isoformat().replace("+00:00", "Z"), "status": status}
    return entry | ({"blocked": True} if blocked else {})


def test_detection_figures():
    never = detection.measure([_entry(0), _entry(30), _entry(61), _entry(90)])
    assert never.share_blocked == 0 and never.first_block_seconds is None
    assert "never" in never.lines()[2] and "0.0%" in never.lines()[1]
    caught = detection.measure(
        [_entry(0), _entry(20, 403, True), _entry(61, 403, True), _entry(70), _entry(80, 403, True)]
    )
    assert (
        caught.first_block_seconds == 20 and caught.after_first_minute == 3 and caught.blocked_after_first_minute == 2
    )
    lines = [json.dumps(_entry(0)).encode(), b"not json", json.dumps({"event": "other", "timestamp": "x"}).encode()]
    assert len(detection.request_entries(b"\n".join(lines))) == 1


def test_forms_are_read_from_the_html():
    html = """<form method="post" action="/requests/new/"><input type="hidden" name="csrfmiddlewaretoken" value="t">
    <input name="name"><select name="status"><option value="open">o</option><option value="done">d</option></select>
    <input type="radio" name="q-rehire" value="yes"><textarea name="notes"></textarea></form>
    <form method="post" action="/accounts/logout/"><input name="x"></form>
    <form method="get" action="/requests/"><input name="q"></form>"""
    forms = fuzzing.page_forms(html, "/requests/new/")
    assert [(f.method, f.action) for f in forms] == [("post", "/requests/new/"), ("get", "/requests/")]
    assert set(forms[0].fields) == {"csrfmiddlewaretoken", "name", "status", "q-rehire", "notes"}
    assert forms[0].choices["status"] == ["open", "done"]
