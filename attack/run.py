"""`make attack`: the attack suite (docs/security/attack-suite.md).

    python -m attack.run [--only STEPS] [--wapiti-seconds N] [--examples N]

Steps, in order: the dependency audit and SBOM; then against a real `vouch serve` (TLS,
embedded SQLite, a temporary data directory) seeded with a company, its signed-in owner, a
request, a candidate link and referee links: the header checks, sslyze, sqlmap; wapiti
against a second such server (so that what sqlmap set off cannot colour its detection
figures); the property-based fuzzer (tests/attack/, a server of its own). A step's findings
fail the run unless attack/understood.toml explains them; any 5xx in the server's log while
a tool ran, and any seeded data lost, is a finding too. Reports go to build/attack/."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from attack import audit, detection, headers, scanners, seed, tls  # noqa: E402
from attack.findings import Finding, Outcome, judge  # noqa: E402
from tests.live import cleanup, make_server  # noqa: E402

STEPS = ("audit", "headers", "tls", "sqlmap", "wapiti", "detection", "fuzz")
REPORTS = ROOT / "build" / "attack"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def seeded_server(label: str, extra_env: dict[str, str] | None = None) -> Iterator[tuple[object, seed.Seeded]]:
    """A started server on the embedded default with the seeded data (services off: the
    suite attacks what a fresh install runs)."""
    for attempt in (1, 2):
        server = make_server(extra_env, services=False)
        try:
            server.start()
            seeded = seed.seed(server)
            break
        except Exception as exc:  # noqa: BLE001 - once more: on a busy machine a free port may be taken meanwhile
            say(f"[{label}] the server or its seeding failed ({type(exc).__name__}: {exc}); attempt {attempt} of 2")
            cleanup(server)
            if attempt == 2:
                raise
    say(f"[{label}] vouch serve on {server.url}, company {seeded.company!r}, owner signed in")
    try:
        yield server, seeded
    finally:
        (REPORTS / f"server-{label}.log").write_text(server.log() if server.process else "")
        cleanup(server)


def server_errors(tool: str, window: detection.LogWindow) -> list[Finding]:
    """A finding per route the server answered with a 5xx while ``tool`` ran."""
    counts = Counter(
        (entry.get("method"), entry.get("route"), entry["status"])
        for entry in window.entries()
        if entry.get("status", 0) >= 500
    )
    return [
        Finding(tool, f"server error {status} on {method} /{route}", f"{n} times")
        for (method, route, status), n in sorted(counts.items(), key=str)
    ]


def data_kept(tool: str, server, seeded: seed.Seeded, before: dict) -> list[Finding]:
    after = seed.state(server, seeded)
    return [Finding(tool, "seeded data lost", problem) for problem in seed.lost(before, after)]


def timed(name: str, step: Callable[[], Outcome]) -> Outcome:
    say(f"--- {name}")
    started = time.monotonic()
    try:
        outcome = step()
    except Exception as exc:  # noqa: BLE001 - a step that cannot run is reported, and fails the run
        outcome = Outcome(name, error=f"{type(exc).__name__}: {exc}")
    outcome.notes.append(f"took {time.monotonic() - started:.0f} s")
    say(f"    {'ok' if outcome.ok else 'FAILED'} ({outcome.notes[-1]})")
    return outcome


def step_audit(work: Path) -> Outcome:
    result = audit.audit(work)
    findings, notes = audit.judge(result, audit.load_exceptions(), datetime.date.today())
    sbom = audit.write_sbom()
    outcome = judge("audit", findings)
    outcome.notes += notes + [f"SBOM: {sbom.relative_to(ROOT)}"]
    return outcome


def step_server_one(args, work: Path, outcomes: list[Outcome]) -> None:
    """headers, tls and sqlmap against one seeded server."""
    wanted = [s for s in ("headers", "tls", "sqlmap") if s in args.only]
    if not wanted:
        return
    with seeded_server("scan") as (server, seeded):
        before = seed.state(server, seeded)
        window = detection.LogWindow(server.log_path)
        if "headers" in wanted:
            outcomes.append(timed("headers", lambda: judge("headers", headers.check(server, seeded))))
        if "tls" in wanted:
            outcomes.append(timed("tls", lambda: judge("tls", tls.run_sslyze(server, work))))
        if "sqlmap" in wanted:

            def sqlmap() -> Outcome:
                window.start()
                found = scanners.run_sqlmap(server, seeded, work, level=args.sqlmap_level)
                found += server_errors("sqlmap", window) + data_kept("sqlmap", server, seeded, before)
                return judge("sqlmap", found)

            outcomes.append(timed("sqlmap", sqlmap))


def step_wapiti(args, work: Path) -> Outcome:
    with seeded_server("wapiti") as (server, seeded):
        before = seed.state(server, seeded)
        window = detection.LogWindow(server.log_path)
        window.start()
        # From loopback, which intrusion detection never scores: the scan covers everything.
        found, _ = scanners.run_wapiti(server, seeded, work, max_scan_time=args.wapiti_seconds)
        time.sleep(1)  # the last requests' log lines
        found += server_errors("wapiti", window) + data_kept("wapiti", server, seeded, before)
        outcome = judge("wapiti", found)
        outcome.notes += [f"excluded module {name}: {why}" for name, why in scanners.WAPITI_EXCLUDED.items()]
        return outcome


# Where the scanner of the detection step comes from, through the server's trusted proxy.
SCANNER_ADDRESS = "198.51.100.77"


def step_detection(args, work: Path) -> Outcome:
    """wapiti again, as an outsider: from an address of its own (X-Forwarded-For through a
    trusted proxy), so intrusion detection scores it as it would a real scanner. Measured
    from the server's log: how soon it is blocked, and the share of its requests answered
    by the block after its first minute. Fails when it is never blocked."""
    with seeded_server("detection", {"VOUCH_TRUSTED_PROXIES": "127.0.0.1"}) as (server, seeded):
        window = detection.LogWindow(server.log_path)
        window.start()
        scan = work / "detection-scan"
        scan.mkdir()
        scanners.run_wapiti(
            server, seeded, scan, max_scan_time=args.detection_seconds, headers=(f"X-Forwarded-For: {SCANNER_ADDRESS}",)
        )
        time.sleep(1)
        figures = detection.measure(window.entries())
        (work / "detection.json").write_text(json.dumps(figures.__dict__, indent=2))
        found = server_errors("detection", window)
        if figures.first_block_seconds is None:
            found.append(Finding("detection", "scanner never blocked", "wapiti was never answered by a block"))
        outcome = judge("detection", found)
        outcome.notes += ["intrusion detection (P4): " + line for line in figures.lines()]
        return outcome


def step_fuzz(args) -> Outcome:
    env = {**os.environ, "VOUCH_ATTACK_EXAMPLES": str(args.examples)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist", "tests/attack/"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
    (REPORTS / "fuzz.txt").write_text(result.stdout + result.stderr)
    outcome = Outcome("fuzz")
    closing = [line for line in result.stdout.strip().splitlines() if line.strip()][-1:] or ["(no output)"]
    outcome.notes.append(f"pytest: {closing[0]} ({args.examples} examples per form)")
    if result.returncode != 0:
        outcome.failing.append(
            Finding(
                "fuzz",
                "the property-based fuzzer found a failure",
                "see build/attack/fuzz.txt\n" + result.stdout[-3000:],
            )
        )
    return outcome


def summary(outcomes: list[Outcome]) -> str:
    lines = ["", "=" * 78, "make attack: summary", "=" * 78]
    for outcome in outcomes:
        verdict = "ok" if outcome.ok else "FAILED"
        lines.append(f"[{verdict:^6}] {outcome.step}")
        if outcome.error:
            lines.append(f"    could not run: {outcome.error}")
        for finding in outcome.failing:
            lines.append(f"    FINDING ({finding.tool}) {finding.title}")
            lines += [f"        {line}" for line in finding.detail.splitlines()[:20]]
        for finding, reason in outcome.understood:
            first = finding.detail.splitlines()[0] if finding.detail else ""
            lines.append(f"    understood ({finding.tool}) {finding.title}: {first}")
            lines.append(f"        why: {reason}")
        lines += [f"    {note}" for note in outcome.notes]
    failing = [o for o in outcomes if not o.ok]
    lines.append("=" * 78)
    lines.append(
        f"attack: {len(outcomes) - len(failing)} passed, {len(failing)} failed" if outcomes else "attack: no step ran"
    )
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m attack.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps of {', '.join(STEPS)}")
    parser.add_argument("--wapiti-seconds", type=int, default=int(os.environ.get("VOUCH_ATTACK_WAPITI_SECONDS", "150")))
    parser.add_argument(
        "--detection-seconds", type=int, default=int(os.environ.get("VOUCH_ATTACK_DETECTION_SECONDS", "90"))
    )
    parser.add_argument("--examples", type=int, default=int(os.environ.get("VOUCH_ATTACK_EXAMPLES", "25")))
    parser.add_argument("--sqlmap-level", type=int, default=1)
    args = parser.parse_args(argv)
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = args.only - set(STEPS)
    if unknown:
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if REPORTS.exists():
        shutil.rmtree(REPORTS)
    REPORTS.mkdir(parents=True)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="vouch-attack-") as scratch:
        work = Path(scratch)
        if "audit" in args.only:
            outcomes.append(timed("audit", lambda: step_audit(REPORTS)))
        try:
            step_server_one(args, work, outcomes)
        except Exception as exc:  # noqa: BLE001 - the server or the seeding failed: reported, fails the run
            outcomes.append(Outcome("scan server", error=f"{type(exc).__name__}: {exc}"))
        if "wapiti" in args.only:
            outcomes.append(timed("wapiti", lambda: step_wapiti(args, work)))
        if "detection" in args.only:
            outcomes.append(timed("detection", lambda: step_detection(args, work)))
        if "fuzz" in args.only:
            outcomes.append(timed("fuzz", lambda: step_fuzz(args)))
        for name in ("wapiti.json", "wapiti.log", "sslyze.json", "sslyze.txt", "detection.json"):
            if (work / name).exists():
                shutil.copy(work / name, REPORTS / name)
        if (work / "sqlmap").exists():
            shutil.copytree(work / "sqlmap", REPORTS / "sqlmap")
    text = summary(outcomes) + f"\n(all steps: {time.monotonic() - started:.0f} s; reports in build/attack/)"
    (REPORTS / "summary.txt").write_text(text + "\n")
    print(text)
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
