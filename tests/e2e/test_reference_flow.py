"""A whole reference check in a real browser against `vouch serve`, each person in a
browser of their own, judged only by what the pages show and what Vouch emails:

recruiter creates a request → the candidate, on a phone, confirms their details and
nominates two referees → referee 1 confirms who they are, answers and submits →
referee 2 declines with a reason → the candidate replaces referee 2 → the replacement
answers → the recruiter sees the flags (every browser here shares one address, the
candidate's: one item per referee), reviews one group, sees the timeline, and downloads
the PDF, whose text is read back."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e import flows, reference_flows
from tests.e2e.support import PHONE, unique_email

pytestmark = pytest.mark.e2e

COMPANY = "Northwind Talent"
CANDIDATE = "Casey Candidate"
ROLE = "Head of Finance"


def test_reference_check_from_request_to_pdf(contexts, outbox):
    # --- the recruiter asks for references ----------------------------------------------
    recruiter = contexts.new_page(viewport={"width": 1280, "height": 900})
    owner_email = unique_email("recruiter")
    flows.sign_up_company(recruiter, name="Rory Recruiter", email=owner_email, company=COMPANY, region="EU")
    flows.confirm_email(recruiter, outbox, owner_email)
    flows.expect_dashboard(recruiter, COMPANY, "EU", "Owner")

    candidate_email = unique_email("casey")
    request_url = reference_flows.create_request(
        recruiter,
        name=CANDIDATE,
        email=candidate_email,
        role=ROLE,
        referees=2,
        guidance="A manager from the last two years",
        deadline=date.today() + timedelta(days=14),
    )
    expect(recruiter.locator("#request-status")).to_have_text("Awaiting candidate")
    expect(recruiter.locator("#timeline")).to_contain_text("Link sent to the candidate.")

    # --- the candidate, on a phone --------------------------------------------------------
    candidate = contexts.new_page(**PHONE)
    invitation = outbox.wait_for(candidate_email, "nominate referees")
    assert ROLE in invitation.body
    candidate_link = invitation.link(r"https://\S+/c/[A-Za-z0-9_-]+/")
    candidate.goto(candidate_link)
    expect(candidate.get_by_role("heading", level=1)).to_have_text(f"Your referees for {ROLE}")
    flows.no_horizontal_scroll(candidate)
    reference_flows.confirm_candidate_details(candidate, name=CANDIDATE, email=candidate_email)

    first = reference_flows.referee("Rita Referee", "rita", "manager", "Acme Widgets", "2021-01", "2024-06")
    second = reference_flows.referee("Pat Peer", "pat", "peer", "Globex", "2019-03", "2021-01")
    reference_flows.nominate(candidate, first)
    reference_flows.nominate(candidate, second)
    expect(candidate.get_by_role("main")).to_contain_text("You have nominated everyone")
    expect(reference_flows.candidate_referee(candidate, first.name)).to_contain_text("Invited")
    flows.no_horizontal_scroll(candidate)

    # --- referee 1 answers ----------------------------------------------------------------
    rita = contexts.new_page(viewport={"width": 1280, "height": 900})
    rita.goto(reference_flows.referee_link(outbox, first.email))
    reference_flows.confirm_identity(rita, candidate=CANDIDATE)
    reference_flows.answer_general_professional(rita, strengths=first.strengths)
    expect(rita.get_by_role("heading", level=1)).to_contain_text("Thank you")
    # The link now shows the thank-you page only: the answers cannot be changed.
    rita.goto(reference_flows.referee_link(outbox, first.email))
    expect(rita.get_by_role("heading", level=1)).to_contain_text("Thank you")
    expect(rita.get_by_role("button", name=re.compile("Submit", re.I))).to_have_count(0)

    # --- referee 2 declines ---------------------------------------------------------------
    pat = contexts.new_page(**PHONE)
    pat.goto(reference_flows.referee_link(outbox, second.email))
    reference_flows.decline(pat, "We only worked together for a few weeks.")

    # --- the candidate replaces referee 2 -------------------------------------------------
    candidate.reload()
    expect(reference_flows.candidate_referee(candidate, first.name)).to_contain_text("Completed")
    expect(reference_flows.candidate_referee(candidate, second.name)).to_contain_text("Declined")
    # The candidate never sees what a referee said, nor why one declined.
    expect(candidate.get_by_role("main")).not_to_contain_text(first.strengths)
    expect(candidate.get_by_role("main")).not_to_contain_text("a few weeks")
    third = reference_flows.referee("Morgan Manager", "morgan", "manager", "Initech", "2016-05", "2019-02")
    reference_flows.replace(candidate, second.name, third)
    expect(reference_flows.candidate_referee(candidate, second.name)).to_contain_text("Replaced")
    flows.no_horizontal_scroll(candidate)

    # --- the replacement answers, on a phone ----------------------------------------------
    morgan = contexts.new_page(**PHONE)
    morgan.goto(reference_flows.referee_link(outbox, third.email))
    reference_flows.confirm_identity(morgan, candidate=CANDIDATE)
    reference_flows.answer_general_professional(morgan, strengths=third.strengths)
    expect(morgan.get_by_role("heading", level=1)).to_contain_text("Thank you")
    flows.no_horizontal_scroll(morgan)

    # --- the recruiter: status, flags, timeline, PDF --------------------------------------
    recruiter.goto(request_url)
    expect(recruiter.locator("#request-status")).to_have_text("Completed")
    referees = recruiter.get_by_role("table", name="Referees")

    def row(name: str):
        return referees.get_by_role("row", name=re.compile("^" + re.escape(name)))

    expect(row(first.name)).to_contain_text("Completed")
    expect(row(second.name)).to_contain_text("Replaced")
    expect(row(second.name)).to_contain_text(f"replaced by {third.name}")
    expect(row(third.name)).to_contain_text("Completed")
    # Every browser here came from the candidate's own address: the referees are flagged.
    flags = recruiter.get_by_role("region", name=re.compile("^Fraud signals"))
    expect(flags).to_contain_text(re.compile(r"\d+ open"))

    def network_group(person):
        """The one item, in the referee's section, for being on the candidate's network."""
        section = flags.get_by_role("region", name=re.compile("^" + re.escape(person.name)))
        return section.locator("li.flag-item").filter(has_text="On the candidate's network")

    for person in (first, third):
        expect(network_group(person)).to_have_count(1)
        expect(network_group(person)).to_contain_text("Same internet address as the candidate")
    # The recruiter checks one and records what they found, once for the group.
    flag = network_group(first)
    flag.locator("summary", has_text="Review these 2 signals").click()
    flag.get_by_label("What did you check, and what did you find?").fill("Called Rita at Acme's switchboard: genuine.")
    flag.get_by_role("button", name=re.compile("^Mark .*as reviewed$")).click()
    expect(flags.get_by_role("status")).to_contain_text("Marked as reviewed")
    reviewed = network_group(first)
    expect(reviewed).to_contain_text("Called Rita at Acme's switchboard: genuine.")
    expect(reviewed).to_contain_text("Reviewed")
    expect(reviewed.get_by_role("button", name=re.compile("as reviewed$"))).to_have_count(0)
    # The timeline tells the story in order (the review above included, after a reload).
    recruiter.reload()
    timeline = recruiter.locator("#timeline")
    story = [
        "Request created for the role",
        "The candidate opened their link.",
        "The candidate confirmed their details",
        f"The candidate nominated {first.name}",
        f"The candidate nominated {second.name}",
        f"{first.name} submitted their reference.",
        f"{second.name} declined.",
        f"{second.name} (declined) replaced by {third.name}.",
        f"{third.name} submitted their reference.",
        "All references are in",
        "reviewed: Called Rita",
    ]
    expect(timeline).to_contain_text(story[-1])
    events = timeline.get_by_role("listitem").all_inner_texts()
    positions = [next((i for i, text in enumerate(events) if line in text), -1) for line in story]
    assert -1 not in positions, dict(zip(story, positions, strict=True))
    assert positions == sorted(positions), dict(zip(story, positions, strict=True))

    with recruiter.expect_download() as download_info:
        recruiter.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    assert CANDIDATE.split()[0] not in download.suggested_filename  # no names in file names
    data = open(download.path(), "rb").read()  # noqa: PTH123, SIM115 - Playwright's temporary file
    assert data.startswith(b"%PDF-")
    text = " ".join(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages).split())
    assert CANDIDATE in text
    assert ROLE in text
    assert first.strengths in text
    assert third.strengths in text
    assert first.name in text and third.name in text
