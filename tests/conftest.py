"""Shared fixtures: an HTTPS test client, companies with members, service checks."""

from __future__ import annotations

import itertools
import os

import pytest
from django.test import Client

from vouch.accounts.policy import Role

_counter = itertools.count(1)
PASSWORD = "correct horse battery staple 42"


def pytest_sessionstart(session):
    """With the service switch on, an unreachable PostgreSQL or Redis fails the run."""
    if os.environ.get("VOUCH_TEST_SERVICES") != "1":
        return
    import psycopg
    import redis

    from vouch.config import parse_database_url

    db = parse_database_url(os.environ["VOUCH_DATABASE_URL"])
    try:
        psycopg.connect(host=db.host, port=db.port or 5432, user=db.user, dbname=db.name, connect_timeout=5).close()
        redis.Redis.from_url(os.environ["VOUCH_REDIS_URL"], socket_timeout=5).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"VOUCH_TEST_SERVICES=1 but a service is unreachable: {exc}", returncode=3)


def pytest_sessionfinish(session, exitstatus):
    """Close the company connections this thread kept, then drop the company databases
    this run made on the PostgreSQL server."""
    from vouch.tenancy import connections

    connections.release_kept()
    if os.environ.get("VOUCH_TEST_SERVICES") == "1" and os.environ.get("VOUCH_COMPANY_DATABASE_PREFIX"):
        from tests.live import drop_pg_databases_with_prefix

        drop_pg_databases_with_prefix(os.environ["VOUCH_COMPANY_DATABASE_PREFIX"] + "_")


class HTTPSClient(Client):
    """Django's test client, but every request arrives over HTTPS as in production
    (the app redirects plain HTTP, so tests would otherwise only see redirects)."""

    def request(self, **request):
        request["wsgi.url_scheme"] = "https"
        request["SERVER_PORT"] = "443"
        return super().request(**request)


@pytest.fixture
def client() -> HTTPSClient:
    return HTTPSClient()


@pytest.fixture
def csrf_client() -> HTTPSClient:
    return HTTPSClient(enforce_csrf_checks=True)


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters must not leak from one test into the next. The embedded
    # database cache is rolled back with each test; Redis is not, so clear it. Each
    # process's copy of intrusion detection's block table goes too (vouch.shield.state).
    from vouch.shield import state as shield_state

    shield_state.table.forget()
    if os.environ.get("VOUCH_TEST_SERVICES") == "1":
        from django.conf import settings
        from django.core.cache import cache

        # Not cache.clear(): that flushes the whole Redis database, including the
        # live server's sessions. Only this run's keys go.
        client = cache._cache.get_client(write=True)
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    # The request limits also count in each process's memory (vouch.shield.limits).
    from vouch.audit import sampling
    from vouch.shield import limits, priority

    limits.reset()
    priority.standing.reset()  # accounts that lost their standing, in this process's memory too
    sampling.batch.reset()
    yield


def make_user(email: str | None = None, password: str = PASSWORD, name: str = "Test Person"):
    from allauth.account.models import EmailAddress

    from vouch.accounts.models import User

    email = email or f"person{next(_counter)}@example.com"
    user = User.objects.create_user(email, password, full_name=name)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    return user


def make_company(name: str | None = None, region: str = "eu", owner=None):
    from vouch.tenancy.services import create_company

    owner = owner or make_user()
    return create_company(name or f"Company {next(_counter)}", region, owner)


def add_member(company, role: Role, user=None):
    from vouch.accounts.models import Membership

    user = user or make_user()
    return Membership.objects.create(user=user, company=company, role=role)


@pytest.fixture
def company(db):
    return make_company("Acme Hiring")


@pytest.fixture
def owner(company):
    return company.memberships.get(role=Role.OWNER)


@pytest.fixture
def members(company, owner):
    """One active member of each role in ``company``, keyed by role."""
    result = {Role.OWNER: owner}
    for role in (Role.ADMIN, Role.RECRUITER, Role.VIEWER):
        result[role] = add_member(company, role)
    return result


@pytest.fixture(scope="session")
def live_vouch():
    """One real `vouch serve` (HTTPS + HTTP redirect) shared by a test session.

    It trusts loopback as a proxy, so the browser tests' contexts arrive each from an address
    of their own (tests/e2e/support.py sets X-Forwarded-For), as people do; intrusion
    detection never scores loopback itself. At the end, honest use must have blocked nobody."""
    import json

    from tests.live import cleanup, make_server

    server = make_server({"VOUCH_TRUSTED_PROXIES": "127.0.0.1"}).start()
    try:
        yield server
        report = json.loads(server.vouch("shield", "report", "--json").stdout)
        assert not report["blocks"], f"the tests' honest traffic was blocked: {report}"
    finally:
        cleanup(server)


@pytest.fixture
def logs():
    """Everything any logger emits, at every level, rendered as the app renders it
    (the JSON handler's formatter), for tests that check what logs must never hold."""
    import io
    import logging

    import structlog

    json_formatter = structlog.stdlib.ProcessorFormatter
    handlers = logging.getLogger().handlers
    formatter = next((h.formatter for h in handlers if isinstance(h.formatter, json_formatter)), None)
    assert formatter is not None, "the JSON log handler is not installed"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (SeaweedFS) for this test process; its credentials are put in
    the environment, where boto3 (and Litestream, and pgBackRest's settings) read them."""
    from tests.seaweed import remove, start_seaweedfs

    server = start_seaweedfs()
    saved = {name: os.environ.get(name) for name in server.env}
    os.environ.update(server.env)
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    remove(server)


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh bucket for one test: its name, on ``s3_server``."""
    name = f"t{next(_counter)}-{os.getpid()}-{request.node.name[:20]}".lower().replace("_", "-")
    name = "".join(c for c in name if c.isalnum() or c == "-")[:60].strip("-")
    s3_server.create_bucket(name)
    return name


@pytest.fixture(scope="session")
def browser():
    """Chromium driven by Playwright, one for the whole test process: Playwright's sync API
    runs an event loop while it is open, so a second one in the same process fails (a test
    module with its own would fail whenever an end-to-end test ran before it there)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.support import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (set VOUCH_E2E_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
