"""Browser fixtures for end-to-end tests against the real server (`live_vouch`).

Playwright drives the system Chromium (its own browser download is not used). Every
context records console messages; a Content Security Policy violation or a script
error fails the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.support import CHROMIUM, CHROMIUM_ARGS, PHONE, Contexts, Outbox


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set VOUCH_E2E_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def outbox(live_vouch) -> Outbox:
    return Outbox(live_vouch.data_dir / "outbox")


@pytest.fixture
def contexts(browser, live_vouch):
    made = Contexts(browser, live_vouch.url)
    yield made
    made.close()
    assert not made.csp_violations(), "CSP violations in the browser console:\n" + "\n".join(made.csp_violations())
    assert not made.script_errors(), "JavaScript errors:\n" + "\n".join(made.script_errors())


@pytest.fixture
def page(contexts):
    """A desktop-sized page in a fresh context (no cookies)."""
    return contexts.new_page(viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone_page(contexts):
    """A phone-sized, touch page in a fresh context."""
    return contexts.new_page(**PHONE)
