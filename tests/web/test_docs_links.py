"""Every relative link in the README and under docs/ leads somewhere: the file exists, and an
anchor (`promises.md#p7`, `encryption.md#at-rest`) names a heading or an `<a id>` in it. Pages
move; this catches a link left behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "bench" / "results").glob("*.md")])
PROMISES = ROOT / "docs" / "security" / "promises.md"

FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+?)#*$", flags=re.MULTILINE)
EXPLICIT = re.compile(r"<a id=\"([^\"]+)\"></a>")


def prose(path: Path) -> str:
    """The page without its code: a link shown in a code block or a code span is not a link."""
    return CODE.sub("", FENCE.sub("", path.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set(EXPLICIT.findall(path.read_text()))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path)) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_the_pages_are_found():
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {"README.md", "docs/index.md", "docs/security/promises.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_something_that_exists(page: Path):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.exists() and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no such anchor)")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_every_promise_has_its_anchor_and_heading():
    text = PROMISES.read_text()
    for number in range(1, 21):
        assert re.search(rf'<a id="p{number}"></a>\n## P{number}: ', text), f"P{number} has no anchor"


def test_links_to_a_promise_name_one_that_exists():
    """`promises.md#p21` would pass a file check; a promise id must be one of P1-P20."""
    for page in PAGES:
        for target in relative_links(page):
            path, _, anchor = target.partition("#")
            if path.endswith("promises.md") and anchor:
                assert re.fullmatch(r"p([1-9]|1[0-9]|20)", anchor), f"{page.relative_to(ROOT)}: {target}"


MODULE_PATH = re.compile(r"`(vouch(?:\.[A-Za-z_]\w*)+)`")


def _resolves(dotted: str) -> bool:
    """The longest importable module prefix, then attributes."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_path_a_page_names_exists(page):
    """A `vouch.x.y` named in the docs is a module or an attribute of one: modules move
    (the layers, the feature packages); this catches a name left behind."""
    missing = sorted({m for m in MODULE_PATH.findall(page.read_text()) if not _resolves(m)})
    assert not missing, f"{page.relative_to(ROOT)} names modules that do not exist: {missing}"
