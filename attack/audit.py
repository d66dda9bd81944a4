"""Vouch's shipped dependencies (requirements/base.txt, hashed) audited for known
vulnerabilities, and their CycloneDX SBOM written as a build artifact.

pip-audit asks a vulnerability service about each pinned release: OSV when it answers,
else PyPI's per-release JSON. Where neither can (a mirror that serves only projects'
JSON, as some CI networks do), each skipped package is looked up in its project's JSON,
whose ``vulnerabilities`` are those of the newest release: a package pinned at its newest
release is audited that way; any other is reported NOT AUDITED, loudly. With
VOUCH_ATTACK_AUDIT_COMPLETE=1 an incomplete audit fails the run.

Accepted vulnerabilities are recorded in security/audit-exceptions.toml with a reason and
an expiry date; an expired entry fails the run."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import InvalidVersion, Version

from attack.findings import Finding

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "base.txt"
EXCEPTIONS = ROOT / "security" / "audit-exceptions.toml"
BIN = ROOT / ".venv" / "bin"
OSV_URL = "https://api.osv.dev/v1/query"
PYPI_JSON = "https://pypi.org/pypi/{name}/json"


@dataclass(frozen=True)
class Exception_:
    id: str
    package: str
    reason: str
    expires: datetime.date


def load_exceptions(path: Path = EXCEPTIONS) -> list[Exception_]:
    """The recorded exceptions; an entry missing a field, or with an expiry that is not a
    date, is an error (the file is read strictly: it decides what may fail)."""
    loaded = []
    for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("exception", []):
        missing = [key for key in ("id", "package", "reason", "expires") if not entry.get(key)]
        if missing:
            raise ValueError(f"{path.name}: an exception lacks {', '.join(missing)}: {entry}")
        if not isinstance(entry["expires"], datetime.date) or isinstance(entry["expires"], datetime.datetime):
            raise ValueError(f"{path.name}: expires must be a date (2027-01-31), not {entry['expires']!r}")
        loaded.append(Exception_(entry["id"], canonical(entry["package"]), entry["reason"], entry["expires"]))
    return loaded


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path = LOCK) -> dict[str, str]:
    """``name==version`` lines of a pip-compile lock, by canonical name."""
    return {canonical(n): v for n, v in re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", lock.read_text(), re.M)}


@dataclass
class Vulnerability:
    package: str
    version: str
    id: str
    aliases: list[str]
    fixed_in: list[str]
    description: str = ""


@dataclass
class AuditResult:
    service: str
    vulnerabilities: list[Vulnerability] = field(default_factory=list)
    audited: dict[str, str] = field(default_factory=dict)  # package -> how
    not_audited: dict[str, str] = field(default_factory=dict)  # package -> why
    yanked: dict[str, str] = field(default_factory=dict)  # package -> reason

    @property
    def complete(self) -> bool:
        return not self.not_audited


def osv_reachable(timeout: float = 5) -> bool:
    body = json.dumps({"package": {"name": "django", "ecosystem": "PyPI"}, "version": "5.2"}).encode()
    request = urllib.request.Request(OSV_URL, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def run_pip_audit(service: str, out: Path) -> dict:
    """pip-audit on the hashed lock, without pip resolving anything (the lock is complete)."""
    command = [
        str(BIN / "pip-audit"), "-r", str(LOCK), "--require-hashes", "--disable-pip",
        "-s", service, "-f", "json", "-o", str(out), "--progress-spinner", "off", "--timeout", "30",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if not out.exists():
        raise RuntimeError(f"pip-audit wrote no report (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(out.read_text())


def project_json(name: str) -> dict:
    with urllib.request.urlopen(PYPI_JSON.format(name=name), timeout=30) as response:
        return json.load(response)


def _lookup(name: str) -> tuple[dict | None, str]:
    try:
        return project_json(name), ""
    except (OSError, urllib.error.URLError, ValueError) as exc:
        return None, str(exc)


def newest_in_series(version: str, releases: dict) -> str | None:
    """The newest final release with the same major.minor as ``version``, when newer."""
    try:
        pinned = Version(version)
    except InvalidVersion:
        return None
    same = []
    for candidate in releases:
        try:
            parsed = Version(candidate)
        except InvalidVersion:
            continue
        if parsed.release[:2] == pinned.release[:2] and not parsed.is_prerelease and parsed > pinned:
            same.append(parsed)
    return str(max(same)) if same else None


def _vulnerability(package: str, version: str, item: dict) -> Vulnerability:
    return Vulnerability(
        package=package,
        version=version,
        id=item.get("id", "?"),
        aliases=list(item.get("aliases") or []),
        fixed_in=[str(v) for v in item.get("fixed_in") or item.get("fix_versions") or []],
        description=(item.get("details") or item.get("description") or "").strip().splitlines()[0][:200]
        if (item.get("details") or item.get("description"))
        else "",
    )


def audit(work: Path) -> AuditResult:
    pinned = pins()
    service = "osv" if osv_reachable() else "pypi"
    report = run_pip_audit(service, work / "pip-audit.json")
    result = AuditResult(service=service)
    skipped = {}
    for dependency in report.get("dependencies", []):
        name = canonical(dependency["name"])
        if dependency.get("skip_reason"):
            skipped[name] = dependency["skip_reason"]
            continue
        result.audited[name] = f"pip-audit ({service})"
        for item in dependency.get("vulns", []):
            result.vulnerabilities.append(_vulnerability(name, dependency.get("version", ""), item))
    with ThreadPoolExecutor(8) as pool:
        looked_up = dict(zip(sorted(skipped), pool.map(_lookup, sorted(skipped)), strict=True))
    for name, (data, error) in looked_up.items():
        version = pinned.get(name, "?")
        if data is None:
            result.not_audited[name] = f"{skipped[name]}; project JSON unreachable too ({error})"
            continue
        files = data.get("releases", {}).get(version) or []
        if files and all(f.get("yanked") for f in files):
            result.yanked[name] = (
                next((f.get("yanked_reason") for f in files if f.get("yanked_reason")), "") or "yanked"
            )
        newest = data.get("info", {}).get("version")
        if newest == version:
            result.audited[name] = "PyPI project JSON (pinned at the newest release)"
            for item in data.get("vulnerabilities") or []:
                if not item.get("withdrawn"):
                    result.vulnerabilities.append(_vulnerability(name, version, item))
        else:
            series = newest_in_series(version, data.get("releases", {}))
            hint = f"; {series} is out in the same series (patch releases often carry security fixes)" if series else ""
            result.not_audited[name] = (
                f"{version} pinned, newest is {newest}: PyPI's project JSON lists only the newest release's "
                f"vulnerabilities{hint}"
            )
    return result


def judge(result: AuditResult, exceptions: list[Exception_], today: datetime.date) -> tuple[list[Finding], list[str]]:
    """Findings (vulnerabilities not excepted, expired exceptions, yanked pins) and notes."""
    findings, notes = [], []
    for entry in exceptions:
        if entry.expires < today:
            findings.append(
                Finding(
                    "pip-audit",
                    f"expired exception {entry.id} ({entry.package})",
                    f"expired {entry.expires}: {entry.reason}",
                )
            )
    active = [e for e in exceptions if e.expires >= today]
    for vuln in result.vulnerabilities:
        ids = {vuln.id, *vuln.aliases}
        excepted = next((e for e in active if e.id in ids and e.package == vuln.package), None)
        aliases = f" ({', '.join(vuln.aliases)})" if vuln.aliases else ""
        fixed = ", ".join(vuln.fixed_in) or "no release yet"
        text = f"{vuln.package} {vuln.version}: {vuln.id}{aliases} fixed in {fixed}. {vuln.description}"
        if excepted:
            notes.append(f"accepted until {excepted.expires}: {text.strip()} ({excepted.reason})")
        else:
            findings.append(Finding("pip-audit", f"known vulnerability in {vuln.package} {vuln.version}", text.strip()))
    for name, reason in result.yanked.items():
        findings.append(Finding("pip-audit", f"pinned release of {name} was yanked", reason))
    audited, missing = len(result.audited), len(result.not_audited)
    notes.append(f"vulnerability source: pip-audit with {result.service}; {audited} packages audited, {missing} not")
    if result.not_audited:
        notes.append("!" * 78)
        notes.append(
            f"!!! DEPENDENCY AUDIT INCOMPLETE: {missing} packages of requirements/base.txt could NOT be checked"
        )
        notes.append("!!! (no vulnerability service answered for them from this network):")
        notes += [f"!!!   {name}: {why}" for name, why in sorted(result.not_audited.items())]
        notes.append("!!! Set VOUCH_ATTACK_AUDIT_COMPLETE=1 where OSV is reachable to make this fail the run.")
        notes.append("!" * 78)
        if os.environ.get("VOUCH_ATTACK_AUDIT_COMPLETE") == "1":
            findings.append(Finding("pip-audit", "dependency audit incomplete", ", ".join(sorted(result.not_audited))))
    return findings, notes


SBOM = ROOT / "build" / "attack" / "sbom.cdx.json"


def write_sbom(path: Path = SBOM) -> Path:
    """The CycloneDX SBOM (JSON) of what ships: the pinned packages of requirements/base.txt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(BIN / "cyclonedx-py"), "requirements", str(LOCK), "--pyproject", str(ROOT / "pyproject.toml"),
        "--of", "JSON", "--output-reproducible", "-o", str(path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"cyclonedx-py failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    components = len(json.loads(path.read_text()).get("components", []))
    if components < len(pins()):
        raise RuntimeError(f"the SBOM lists {components} components, the lock pins {len(pins())}")
    return path
