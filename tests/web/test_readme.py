"""The configuration page (docs/operations/configuration.md) lists every variable Vouch reads, and
the README stays true to the repository."""

from __future__ import annotations

import re
from pathlib import Path

from vouch.config import VARIABLES

README = Path(__file__).resolve().parents[2] / "README.md"
CONFIGURATION = README.parent / "docs" / "operations" / "configuration.md"


def test_every_variable_is_documented_in_the_configuration_page():
    documented = set(re.findall(r"^\| `(VOUCH_[A-Z0-9_<>]+)`", CONFIGURATION.read_text(), flags=re.MULTILINE))
    documented |= {
        name
        for row in re.findall(r"^\| (`VOUCH_[^|]+)\|", CONFIGURATION.read_text(), flags=re.MULTILINE)
        for name in re.findall(r"`(VOUCH_[A-Z0-9_<>]+)`", row)
    }
    missing = set(VARIABLES) - documented
    assert not missing, f"add these to the table in docs/operations/configuration.md: {sorted(missing)}"


ROOT = README.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_stays_inside_the_repository():
    """A fresh clone holds only this repository: a link out of it is broken there."""
    text = README.read_text()
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        if not path:
            assert anchor in anchors, f"no heading for the link {target!r}"
            continue
        resolved = (ROOT / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{target!r} points outside the repository"
        assert resolved.exists(), f"{target!r} does not exist"


def test_the_two_commands_section_names_the_debian_packages_make_installs():
    """`make run` stops without Pango and a font unless it runs as root: the README says
    so, with the same packages as the Makefile."""
    makefile = (ROOT / "Makefile").read_text()
    section = README.read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    installed = set()
    for line in re.findall(r"apt-get install -y -qq ([^>]+)>", makefile):
        installed |= set(line.split())
    assert {"libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core", "chromium"} <= installed
    (command,) = re.findall(r"^sudo apt-get install -y (.+)$", section, flags=re.MULTILINE)
    # wrk is for `make bench` only, wapiti and sqlmap for `make attack` (docs/security/attack-suite.md)
    assert set(command.split()) == installed - {"wrk", "wapiti", "sqlmap"}
    assert "Pango" in section and "font" in section
