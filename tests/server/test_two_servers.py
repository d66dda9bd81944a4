"""Two `vouch serve` instances that share only PostgreSQL, Redis, the object store (company
files in one bucket, the key store in another) and the master keys (from the environment):
a company signs up and creates a request on server A, the candidate nominates and the
referee answers on server B, and the report PDF is downloaded from both. Each server has
its own data directory (its single-instance lock, its development certificate, its local
outbox and its own VOUCH_KEYS_DIR); nothing else of either matters.

Needs PostgreSQL and Redis: runs with VOUCH_TEST_SERVICES=1 (as CI does)."""

from __future__ import annotations

import json
import os
import re
from datetime import date, timedelta

import boto3
import pytest
from playwright.sync_api import expect

from tests.e2e import flows, reference_flows
from tests.e2e.support import Contexts, Mail, Outbox, unique_email
from tests.live import cleanup, make_server

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        os.environ.get("VOUCH_TEST_SERVICES") != "1",
        reason="needs PostgreSQL and Redis shared by both servers (VOUCH_TEST_SERVICES=1)",
    ),
]

SHARED = (
    "VOUCH_DATABASE_URL",
    "VOUCH_COMPANY_DATABASE_URL",
    "VOUCH_COMPANY_DATABASE_PREFIX",
    "VOUCH_REDIS_URL",
    "VOUCH_REDIS_KEY_PREFIX",
)


class BothOutboxes(Outbox):
    """Mail from either server: without SMTP each keeps what it sends in its own outbox
    (the embedded default); in production both send through the same SMTP server."""

    def __init__(self, servers, master_keys: str) -> None:
        self.directories = [server.data_dir / "outbox" for server in servers]
        self.master_keys = master_keys

    def all(self) -> list[Mail]:
        from vouch.outbox import store
        from vouch.vault.providers import EnvironmentKeyProvider

        provider = EnvironmentKeyProvider(self.master_keys)
        mails = []
        for directory in self.directories:
            if directory.exists():
                messages = store.list_messages(directory=directory, provider=provider)
                mails += [Mail(m.name, m.to, m.subject, m.body) for m in reversed(messages)]
        return mails


def on(server, url: str) -> str:
    """The same page on ``server`` (links in mail name the server that sent them)."""
    return re.sub(r"^https://localhost:\d+", server.url, url)


@pytest.fixture
def key_bucket(s3_server, s3_bucket) -> str:
    """The key store's own bucket (kept apart from the files bucket, as docs/backups.md says)."""
    name = f"{s3_bucket[:50].rstrip('-')}-keys"
    s3_server.create_bucket(name)
    return name


@pytest.fixture
def servers(s3_server, s3_bucket, key_bucket):
    from vouch.vault.providers import generate_key_text

    master_keys = f"1:{generate_key_text()}"
    common = {
        "VOUCH_KEY_PROVIDER": "env",
        "VOUCH_MASTER_KEYS": master_keys,
        "VOUCH_SECRET_KEY": os.urandom(32).hex(),
        "VOUCH_REGION_EU_FILES_URL": s3_server.url(s3_bucket),
        "VOUCH_KEY_STORE_URL": s3_server.url(key_bucket, "keys"),
        **s3_server.env,
    }
    first = make_server(common, services=True)
    second = make_server(common, services=False)
    second.env.update({name: first.env[name] for name in SHARED})
    started = []
    try:
        started.append(first.start())  # migrates the shared control database
        started.append(second.start())
        yield first, second, master_keys
    finally:
        for server in reversed(started or [first]):
            cleanup(server)
        if not started:
            cleanup(second)


def test_a_request_made_on_one_server_is_answered_and_its_pdf_downloaded_on_the_other(
    servers, browser, s3_server, s3_bucket, key_bucket
):
    a, b, master_keys = servers
    outbox = BothOutboxes([a, b], master_keys)
    contexts = Contexts(browser, a.url)
    try:
        # --- on A: sign up, create the request ------------------------------------------
        recruiter = contexts.new_page(viewport={"width": 1280, "height": 900})
        owner_email = unique_email("recruiter")
        flows.sign_up_company(recruiter, name="Rory Recruiter", email=owner_email, company="Two Servers Ltd")
        flows.confirm_email(recruiter, outbox, owner_email)
        candidate_email = unique_email("casey")
        request_url = reference_flows.create_request(
            recruiter,
            name="Casey Candidate",
            email=candidate_email,
            role="Head of Finance",
            referees=1,
            guidance="A manager from the last two years",
            deadline=date.today() + timedelta(days=14),
        )
        assert request_url.startswith(a.url)

        # --- on B: the candidate nominates, the referee answers --------------------------
        candidate = contexts.new_page(viewport={"width": 1280, "height": 900})
        invitation = outbox.wait_for(candidate_email, "nominate referees")
        candidate.goto(on(b, invitation.link(r"https://\S+/c/[A-Za-z0-9_-]+/")))
        reference_flows.confirm_candidate_details(candidate, name="Casey Candidate", email=candidate_email)
        rita = reference_flows.referee("Rita Referee", "rita", "manager", "Acme Widgets", "2021-01", "2024-06")
        reference_flows.nominate(candidate, rita)
        assert candidate.url.startswith(b.url)

        referee = contexts.new_page(viewport={"width": 1280, "height": 900})
        referee.goto(on(b, reference_flows.referee_link(outbox, rita.email)))
        reference_flows.confirm_identity(referee, candidate="Casey Candidate")
        reference_flows.answer_general_professional(referee, strengths=rita.strengths)
        expect(referee.get_by_role("heading", level=1)).to_contain_text("Thank you")
        assert referee.url.startswith(b.url)

        # --- the PDF, from A and from B (the session is in Redis, the file in the bucket) -
        pdfs = {}
        for server in (a, b):
            recruiter.goto(on(server, request_url))
            expect(recruiter.locator("#request-status")).to_have_text("Completed")
            pdf_link = recruiter.get_by_role("link", name=re.compile("PDF"))
            response = recruiter.request.get(on(server, pdf_link.first.get_attribute("href")))
            assert response.status == 200, response.text()[:500]
            assert response.headers["content-type"] == "application/pdf"
            pdfs[server.url] = response.body()
        assert all(body.startswith(b"%PDF") for body in pdfs.values())
    finally:
        contexts.close()

    # The stored PDF is in the shared bucket, encrypted, under the company's prefix;
    # neither server keeps company files on its disk.
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert any(re.fullmatch(r"[0-9a-f-]{36}/reports/.+", key) for key in keys), keys
    for key in keys:
        assert b"%PDF" not in client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    for server in (a, b):
        files = server.data_dir / "regions" / "eu" / "files"
        assert not files.exists() or not [p for p in files.rglob("*") if p.is_file()]

    # The company's key-encryption key is in the key store's bucket, once, wrapped by the
    # master key; neither server's own key directory holds any key store blob.
    companies = {key.split("/")[0] for key in keys if re.fullmatch(r"[0-9a-f-]{36}/.+", key)}
    kept = [o["Key"] for o in client.list_objects_v2(Bucket=key_bucket).get("Contents", [])]
    assert {f"keys/companies/{company}.kek" for company in companies} <= set(kept), kept
    for key in kept:
        assert set(json.loads(client.get_object(Bucket=key_bucket, Key=key)["Body"].read())) >= {"wrapped"}
    for server in (a, b):
        on_disk = server.data_dir / "keys"
        assert not (on_disk / "companies").exists() and not (on_disk / "backup-control.key").exists()
