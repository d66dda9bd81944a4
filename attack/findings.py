"""Findings: what a tool found, and the findings already understood.

A finding fails the run unless an entry of attack/understood.toml matches it: each entry
names the tool, a regular expression for the finding's text and why it is not a problem
in Vouch (docs/security/attack-suite.md, "Understood findings"). Nothing is silenced
without a reason written down, and an understood finding is still printed."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

UNDERSTOOD = Path(__file__).with_name("understood.toml")


@dataclass(frozen=True)
class Finding:
    tool: str
    title: str
    detail: str = ""

    @property
    def text(self) -> str:
        return f"{self.title}: {self.detail}" if self.detail else self.title


@dataclass(frozen=True)
class Understood:
    tool: str
    pattern: re.Pattern[str]
    reason: str

    def matches(self, finding: Finding) -> bool:
        return finding.tool == self.tool and bool(self.pattern.search(finding.text))


def load_understood(path: Path = UNDERSTOOD) -> list[Understood]:
    """The entries of ``path``; an entry without a tool, a pattern or a reason is an error."""
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("understood", [])
    loaded = []
    for entry in entries:
        missing = [key for key in ("tool", "match", "reason") if not str(entry.get(key, "")).strip()]
        if missing:
            raise ValueError(f"{path.name}: an entry lacks {', '.join(missing)}: {entry}")
        loaded.append(Understood(entry["tool"], re.compile(entry["match"], re.S), entry["reason"].strip()))
    return loaded


@dataclass
class Outcome:
    """One step's result: its findings split into failing and understood, and notes
    (figures, warnings) for the summary."""

    step: str
    failing: list[Finding] = field(default_factory=list)
    understood: list[tuple[Finding, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the step could not run: a failure too

    @property
    def ok(self) -> bool:
        return not self.failing and self.error is None


def judge(step: str, findings: list[Finding], understood: list[Understood] | None = None) -> Outcome:
    """``findings`` sorted into an Outcome by the understood entries."""
    entries = load_understood() if understood is None else understood
    outcome = Outcome(step)
    for finding in findings:
        reason = next((entry.reason for entry in entries if entry.matches(finding)), None)
        if reason is None:
            outcome.failing.append(finding)
        else:
            outcome.understood.append((finding, reason))
    return outcome
