"""Helpers for the browser tests: the system Chromium, the outbox, browser contexts."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError

CHROMIUM = os.environ.get("VOUCH_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
PASSPHRASE = "paper lantern drifting over quiet harbour 7"
_counter = itertools.count(1)

# Playwright waits up to this long for an element or a navigation.
TIMEOUT_MS = 15_000

# axe-core, from the npm registry at the version and integrity hash of tools/axe/package-lock.json
# (`make test` installs it with `npm ci`). Every page state the browser tests visit is checked
# against WCAG 2.1 A and AA (docs/development/accessibility.md).
AXE_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
# Each violating element: the rule, its impact, a selector for the element and the rule's summary.
_AXE_RUN = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return results.violations.flatMap((rule) => rule.nodes.map((node) => ({
    rule: rule.id, impact: node.impact || rule.impact, selector: node.target.join(" "), help: rule.help,
    summary: (node.failureSummary || "").split("\\n").slice(1).join(" ").trim(),
  })));
}"""


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}-{next(_counter)}@example.com"


@dataclass(frozen=True)
class Mail:
    name: str
    to: str
    subject: str
    body: str
    sender: str = ""

    def link(self, pattern: str = r"https://\S+") -> str:
        match = re.search(pattern, self.body)
        assert match, f"no link matching {pattern!r} in mail {self.subject!r}:\n{self.body}"
        return match.group(0)


class Outbox:
    """The server's mail, read from its outbox under <data_dir>/outbox: the messages are
    sealed, so they are opened with the server's master keys (<data_dir>/keys)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def all(self) -> list[Mail]:
        """Every message, oldest first."""
        from vouch.outbox import store
        from vouch.vault.providers import FileKeyProvider

        provider = FileKeyProvider(self.directory.parent / "keys")
        messages = store.list_messages(directory=self.directory, provider=provider)
        return [Mail(m.name, m.to, m.subject, m.body, m.sender) for m in reversed(messages)]

    def to(self, address: str, subject: str = "") -> list[Mail]:
        return [m for m in self.all() if address.lower() in m.to.lower() and subject.lower() in m.subject.lower()]

    def wait_for(self, address: str, subject: str = "", timeout: float = 10) -> Mail:
        """The newest mail to ``address`` whose subject contains ``subject``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(address, subject)
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                seen = [(m.to, m.subject) for m in self.all()]
                raise AssertionError(f"no mail to {address} with {subject!r} in the outbox; it holds {seen}")
            time.sleep(0.1)


class Contexts:
    """Makes browser contexts (one per person) and collects their console output."""

    opened = 0  # made by this test process, for their addresses

    def __init__(self, browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        # A test's people arrive from one address of its own (198.18.0.0/15, set aside for
        # tests), through the live server's trusted proxy, as people behind one office or
        # home router do (the reference flow's fraud flags expect that). Intrusion detection
        # scores them as it would real people, and the session must end with no block
        # (tests/conftest.py, live_vouch).
        Contexts.opened += 1
        self.address = f"198.18.{Contexts.opened // 256 % 256}.{Contexts.opened % 256}"
        self.contexts = []
        self.console: list[str] = []
        self.pages: list = []
        self.accessibility = Accessibility()

    def new_page(self, **options):
        headers = {**options.pop("extra_http_headers", {}), "X-Forwarded-For": self.address}
        context = self.browser.new_context(
            ignore_https_errors=True, base_url=self.base_url, extra_http_headers=headers, **options
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        context.on("weberror", lambda error: self.console.append(f"pageerror: {error.error}"))
        self.contexts.append(context)
        page = context.new_page()
        self.pages.append(page)
        # Checked on every load, and once more at the end in the state the test left it (an
        # htmx swap or a script changes a page without loading it).
        page.on("load", self.accessibility.check)
        if os.environ.get("VOUCH_E2E_SCREENSHOTS"):  # a walk to look at: every page loaded, saved
            page.on("load", lambda loaded: _screenshot(loaded, Path(os.environ["VOUCH_E2E_SCREENSHOTS"])))
        return page

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]

    def script_errors(self) -> list[str]:
        return [line for line in self.console if line.startswith("pageerror:")]

    def close(self) -> None:
        for page in self.pages:
            if not page.is_closed():
                self.accessibility.check(page)
        for context in self.contexts:
            context.close()


@dataclass(frozen=True)
class Violation:
    url: str
    rule: str
    impact: str
    selector: str
    help: str
    summary: str

    def __str__(self) -> str:
        return f"{self.url}: {self.rule} ({self.impact}) at {self.selector}: {self.help}. {self.summary}"


class Accessibility:
    """axe-core run in each page state; the violations found, each element once per address."""

    def __init__(self) -> None:
        self.states = 0
        self.violations: list[Violation] = []
        self.running = False
        self.waiting: list = []

    def check(self, page) -> None:
        # Playwright delivers a load event while it waits for the page, so a load can arrive
        # during a check (axe runs one at a time in a page): it is checked right after.
        if self.running:
            self.waiting.append(page)
            return
        self.running = True
        try:
            self._check(page)
            while self.waiting:
                self._check(self.waiting.pop(0))
        finally:
            self.running = False

    def _check(self, page) -> None:
        # Playwright's evaluate is not subject to the page's Content Security Policy, which
        # refuses any script not served by Vouch (so does the screenshot hook above).
        try:
            if not page.evaluate("() => typeof window.axe === 'object'"):
                page.evaluate(_axe_source())
            found = page.evaluate(_AXE_RUN, list(AXE_TAGS))
            url = page.url
        except PlaywrightError as error:
            # The page navigated (or closed) while it was being checked: the next load is checked.
            if "navigat" in str(error) or "closed" in str(error) or "destroyed" in str(error):
                return
            raise
        self.states += 1
        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1] if "://" in url else url
        known = {(v.url, v.rule, v.selector) for v in self.violations}
        for item in found:
            violation = Violation(url=path, **item)
            if (violation.url, violation.rule, violation.selector) not in known:
                self.violations.append(violation)
        if log := os.environ.get("VOUCH_E2E_AXE_LOG"):  # for counting: one line per page state
            with open(log, "a") as out:
                out.write(json.dumps({"url": path, "violations": found}) + "\n")

    def report(self) -> str:
        return "WCAG 2.1 A/AA violations (axe-core):\n" + "\n".join(f"- {v}" for v in self.violations)


@functools.cache
def _axe_source() -> str:
    if not AXE_SCRIPT.exists():
        raise AssertionError(f"{AXE_SCRIPT} is missing: `make test` installs it (tools/axe, npm ci)")
    return AXE_SCRIPT.read_text()


_shots = iter(range(1, 100_000))

# Where a test keeps the screenshots it takes for people to look at (save_screenshot):
# VOUCH_E2E_SCREENSHOTS, else build/screenshots in the checkout.
SCREENSHOTS = Path(
    os.environ.get("VOUCH_E2E_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "build" / "screenshots"
)


def save_screenshot(page, name: str) -> Path:
    """The whole page as ``name``.png in SCREENSHOTS, kept after the run for review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


def _screenshot(page, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", page.url.split("://", 1)[-1].split("/", 1)[-1].lower()).strip("-")[:60]
    # A page that navigated away meanwhile is not saved: the next load is. caret="initial":
    # hiding the caret injects a style, which the Content Security Policy refuses.
    with contextlib.suppress(PlaywrightError):
        path = directory / f"{next(_shots):03d}-{slug or 'home'}.png"
        page.screenshot(path=str(path), full_page=True, caret="initial")
