"""A whole reference check ordered and followed through the API alone, as an applicant
tracking system does, against a real `vouch serve` (its own worker sends the webhooks):

the owner signs up and makes an API key on its page (the only step an ATS cannot do) →
through the API, with the order flow's own example client (docs/api/examples/ats_client.py):
a webhook endpoint to a local HTTPS receiver, then the request with the ATS's ids → the
candidate, on a phone, nominates two referees in the browser → both referees answer in the
browser → the receiver has every event, each verified against the endpoint's secret, in the
workflow's order → the API reads the request (found by its external id), the report as JSON
and as a PDF whose text names the candidate."""

from __future__ import annotations

import importlib.util
import io
import ssl
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.e2e import flows, reference_flows
from tests.e2e.support import PHONE, Contexts, Outbox, unique_email
from tests.live import cleanup, make_server
from tests.webhooks.receiver import Receiver
from vouch.webhooks.services import new_secret

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "api" / "examples" / "ats_client.py"
COMPANY = "O'Brien & Søn Talent"
CANDIDATE = "Zoë O'Brien-Ångström"
ROLE = "Head of Finance"
EVENTS = [
    "request.created",
    "candidate.nominated",
    "candidate.nominated",
    "reference.completed",
    "reference.completed",
    "request.completed",
]


def example_client():
    spec = importlib.util.spec_from_file_location("ats_client_e2e", EXAMPLE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def hooked_vouch(receiver):
    """A server of its own: its deliveries may reach the local receiver (test-only settings)."""
    server = make_server(
        {
            "VOUCH_TRUSTED_PROXIES": "127.0.0.1",
            "VOUCH_WEBHOOKS_ALLOW_NETWORKS": "127.0.0.1/32",
            "VOUCH_WEBHOOKS_CA_FILE": str(receiver.cert_path),
        }
    ).start()
    try:
        yield server
    finally:
        cleanup(server)


@pytest.fixture
def people(browser, hooked_vouch):
    """The e2e contexts (tests/e2e/conftest.py) for this test's own server."""
    made = Contexts(browser, hooked_vouch.url)
    yield made
    made.close()
    assert not made.csp_violations(), "\n".join(made.csp_violations())
    assert not made.script_errors(), "\n".join(made.script_errors())
    if made.accessibility.violations:
        pytest.fail(made.accessibility.report(), pytrace=False)


def wait_until(condition, what: str, timeout: float = 60):
    """The worker delivers in the background: wait for it, up to a limit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_ats_orders_follows_and_fetches_a_check_through_the_api(people, hooked_vouch, receiver):
    outbox = Outbox(hooked_vouch.data_dir / "outbox")
    ats = example_client()

    # --- the owner makes a key on its page ------------------------------------------------
    owner = people.new_page(viewport={"width": 1280, "height": 900})
    owner_email = unique_email("owner")
    flows.sign_up_company(owner, name="Rory Recruiter", email=owner_email, company=COMPANY, region="EU")
    flows.confirm_email(owner, outbox, owner_email)
    owner.goto("/company/api-keys/new/")
    if "/accounts/reauthenticate/" in owner.url:
        flows.confirm_password(owner)
    owner.get_by_label("Name").fill("ATS integration")
    for scope in ("requests:read", "requests:write", "reports:read", "webhooks:manage"):
        owner.get_by_label(scope).check()
    owner.get_by_role("button", name="Create the key").click()
    key = owner.locator("#api-key-secret").inner_text().strip()
    assert key.startswith("vk_")

    # --- from here on the ATS uses the API only -------------------------------------------
    context = ssl.create_default_context(cafile=str(hooked_vouch.cert_path))
    vouch = ats.Vouch(hooked_vouch.url, key, context=context)
    endpoint = vouch.add_webhook(receiver.url("/ats/hooks"), sorted(set(EVENTS)))
    secret = endpoint["secret"]
    candidate_email = unique_email("zoe")
    created = vouch.order(
        name=CANDIDATE,
        email=candidate_email,
        role=ROLE,
        external_id="ats-4411",
        external_url="https://ats.example/applications/4411",
    )
    request_id = created["id"]
    assert ats.ats_status(created["status"]) == "pending"
    # A retried order (the same idempotency key) is the first one, not a second request.
    again = vouch.order(
        name=CANDIDATE,
        email=candidate_email,
        role=ROLE,
        external_id="ats-4411",
        external_url="https://ats.example/applications/4411",
    )
    assert again["id"] == request_id

    # --- the candidate and referees use their pages ---------------------------------------
    candidate = people.new_page(**PHONE)
    candidate.goto(outbox.wait_for(candidate_email, "nominate referees").link(r"https://\S+/c/[A-Za-z0-9_-]+/"))
    reference_flows.confirm_candidate_details(candidate, name=CANDIDATE, email=candidate_email)
    rita = reference_flows.referee("Rita Referee", "rita", "manager", "Acme Widgets", "2021-01", "2024-06")
    morgan = reference_flows.referee("Morgan Manager", "morgan", "manager", "Initech", "2016-05", "2021-01")
    reference_flows.nominate(candidate, rita)
    reference_flows.nominate(candidate, morgan)
    expect(candidate.get_by_role("main")).to_contain_text("You have nominated everyone")
    assert ats.ats_status(vouch.request(request_id)["status"]) == "in_progress"
    for person in (rita, morgan):
        page = people.new_page(viewport={"width": 1280, "height": 900})
        page.goto(reference_flows.referee_link(outbox, person.email))
        reference_flows.confirm_identity(page, candidate=CANDIDATE)
        reference_flows.answer_general_professional(page, strengths=person.strengths)
        expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")

    # --- every webhook, verified, in order ------------------------------------------------
    wait_until(
        lambda: any(b'"request.completed"' in message.body for message in receiver.received), "request.completed"
    )
    verifier = Webhook(secret)
    events = [verifier.verify(message.body, message.headers) for message in receiver.received]
    assert [event["type"] for event in events] == EVENTS
    assert {event["data"]["request_id"] for event in events} == {request_id}
    assert [message.path for message in receiver.received] == ["/ats/hooks"] * len(EVENTS)
    assert len({message.headers["webhook-id"] for message in receiver.received}) == len(EVENTS)
    assert [ats.ats_status(events[0]["data"]["status"]), ats.ats_status(events[-1]["data"]["status"])] == [
        "pending",
        "completed",
    ]
    for message in receiver.received:  # thin: never a name or an address
        assert CANDIDATE.encode() not in message.body and candidate_email.encode() not in message.body
    with pytest.raises(WebhookVerificationError):  # another secret does not verify them
        Webhook(new_secret()).verify(receiver.received[0].body, receiver.received[0].headers)

    # --- the ATS reads the result ---------------------------------------------------------
    found = vouch.find("ats-4411")
    assert found["id"] == request_id and found["status"] == "completed"
    finished = vouch.request(request_id)
    assert ats.ats_status(finished["status"]) == "completed"
    assert finished["external_url"] == "https://ats.example/applications/4411"
    assert sorted(reference["status"] for reference in finished["references"]) == ["completed", "completed"]
    report = vouch.report(request_id)
    assert report["candidate"]["name"] == CANDIDATE and len(report["referees"]) == 2
    pdf = vouch.report_pdf(request_id)
    assert pdf.startswith(b"%PDF-")
    text = " ".join(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages).split())
    assert CANDIDATE in text and rita.strengths in text and morgan.strengths in text
