"""The README's configuration table lists exactly the variables Vouch reads."""

from __future__ import annotations

import re
from pathlib import Path

from vouch.config import VARIABLES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_variable_is_documented_in_the_readme():
    documented = set(re.findall(r"^\| `(VOUCH_[A-Z0-9_<>]+)`", README.read_text(), flags=re.MULTILINE))
    documented |= {
        name
        for row in re.findall(r"^\| (`VOUCH_[^|]+)\|", README.read_text(), flags=re.MULTILINE)
        for name in re.findall(r"`(VOUCH_[A-Z0-9_<>]+)`", row)
    }
    missing = set(VARIABLES) - documented
    assert not missing, f"add these to the README's configuration table: {sorted(missing)}"
