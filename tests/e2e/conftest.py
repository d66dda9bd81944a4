"""Browser fixtures for end-to-end tests against the real server (`live_vouch`); the
browser itself is tests/conftest.py's (one Playwright per test process).

Playwright drives the system Chromium (its own browser download is not used). Every
context records console messages; a Content Security Policy violation or a script
error fails the test, and so does a WCAG 2.1 A or AA violation that axe-core finds in
any page state (docs/development/accessibility.md)."""

from __future__ import annotations

import pytest

from tests.e2e.support import PHONE, Contexts, Outbox


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
    if made.accessibility.violations:
        pytest.fail(made.accessibility.report(), pytrace=False)


@pytest.fixture
def page(contexts):
    """A desktop-sized page in a fresh context (no cookies)."""
    return contexts.new_page(viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone_page(contexts):
    """A phone-sized, touch page in a fresh context."""
    return contexts.new_page(**PHONE)
