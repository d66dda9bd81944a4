"""The TLS scanner: sslyze (in .venv-attack, its own lock: requirements/attack.txt) against
the live server, its result checked against Mozilla's "intermediate" configuration."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from attack.findings import Finding

ROOT = Path(__file__).resolve().parent.parent
SSLYZE = ROOT / ".venv-attack" / "bin" / "python"


def run_sslyze(server, work: Path) -> list[Finding]:
    """sslyze's full scan of the HTTPS port; the development certificate is trusted with
    --certinfo_ca_file, as the tests trust it (its chain is checked like any other)."""
    command = [
        str(SSLYZE), "-m", "sslyze", "--mozilla_config=intermediate",
        "--certinfo_ca_file", str(server.cert_path),
        "--json_out", str(work / "sslyze.json"),
        f"localhost:{server.https_port}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    (work / "sslyze.txt").write_text(result.stdout + result.stderr)
    return parse_compliance(result.stdout)


def parse_compliance(output: str) -> list[Finding]:
    """The "Compliance against TLS configuration" section of sslyze's output: each issue it
    lists is a finding; no verdict at all (a scan that did not run) is one too."""
    _, marker, section = output.partition("COMPLIANCE AGAINST")
    if not marker:
        section = output
    if "OK - Compliant" in section:
        return []
    issues = re.findall(r"^\s*\*\s*([\w.]+):\s*(.+)$", section, re.M)
    if issues:
        return [Finding("sslyze", f"not Mozilla intermediate: {name}", text.strip()) for name, text in issues]
    tail = "\n".join(output.strip().splitlines()[-8:])
    return [Finding("sslyze", "sslyze gave no compliance verdict", tail)]
