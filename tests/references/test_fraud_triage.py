"""Fraud signals a recruiter can triage: the office-network flood from the issue (before and
after), the context rules that lower a weak signal, grouping, review of a group or of all
of a referee's signals (confirmation, place kept, activity log), the relationship and
confirmation mismatches, the office networks setting, and attacks with other requests'
and other companies' ids."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_company
from tests.references.test_fraud import CANDIDATE_IP, ELSEWHERE_IP, act, browser
from tests.references.test_workflow_core import IDENTITY, answers_for
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.references.company_settings.forms import parse_office_networks
from vouch.references.fraud import checks as fraud
from vouch.references.fraud import context, triage
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import Flag, ReferenceRequest, Severity, TimelineEvent, Touch, WorkflowSettings

pytestmark = pytest.mark.django_db

OFFICE = "203.0.113.0/24"
NAMES = ["Ann O'Brien", "Bob Smith & Jones", "Chloé Dupré", "Dmitri Иванов"]


def referee(n: int, **overrides) -> dict:
    return {
        **REFEREES[0],
        "name": NAMES[n],
        "email": f"referee{n}@acme-widgets.example",
        "phone": f"07700 90022{n}",
        **overrides,
    }


def office_flood(company, actor, *, count: int = 4, ip: str = CANDIDATE_IP):
    """The issue's scenario: a candidate and ``count`` referees behind one office address,
    each referee opening their link minutes after being nominated."""
    reference_request, _ = make_request(company, actor, referees_required=count)
    act(company, reference_request, browser(ip), "opened")
    references = []
    for n in range(count):
        reference, _ = nominate(company, reference_request, referee(n))
        act(company, reference_request, browser(ip), "opened", reference)
        references.append(reference)
    return reference_request, references


def set_offices(company, networks: list[str]) -> None:
    with company_context(company):
        WorkflowSettings.objects.update_or_create(pk=1, defaults={"known_office_networks": networks})


def triaged(company, reference_request) -> triage.Triage:
    with company_context(company):
        reference_request = ReferenceRequest.objects.get(pk=reference_request.pk)
        result = triage.triage_of(reference_request, fraud.flags_of(reference_request))
        for flag in result.flags:
            flag.explanation = str(flag.explanation)
        return result


def detail_url(reference_request) -> str:
    return reverse("request_detail", kwargs={"request_id": reference_request.pk})


def open_count(company, reference_request) -> int:
    with company_context(company):
        return ReferenceRequest.objects.get(pk=reference_request.pk).open_flags


# --- the scenario from the issue -------------------------------------------------------


def test_office_flood_before_and_after(company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, references = office_flood(company, recruiter)
    result = triaged(company, reference_request)
    # Before: one raw signal per check and pair, each once a box on the page.
    kinds = sorted(flag.kind for flag in result.flags)
    assert kinds == ["ip_candidate"] * 4 + ["ip_referee"] * 6 + ["quick_open_network"] * 4
    assert open_count(company, reference_request) == 14
    # After: one group per referee (address and quick open: one cause) and one for the four together.
    assert [(group.cause, group.count) for group in result.groups] == [("network_candidate", 2)] * 4 + [
        ("ip_referee", 6)
    ]
    assert result.between[0].referee_names == NAMES
    # No office known: High, as a candidate answering for all four would look the same.
    assert result.risk.level == triage.HIGH
    assert result.risk.sentence == (
        "Four referees opened their links from the candidate's network; "
        "four referees used the same internet address as one another."
    )
    # The office known: Review, not High, and the sentence says why.
    set_offices(company, [OFFICE])
    result = triaged(company, reference_request)
    assert result.risk.level == triage.REVIEW
    assert result.risk.sentence == (
        "Four referees opened their links from the candidate's network (a known office network); "
        "four referees used the same internet address as one another (a known office network)."
    )
    assert [group.severity for group in result.groups] == [Severity.MEDIUM] * 4 + [Severity.LOW]
    assert all(group.lowered_because == context.OFFICE_REASON for group in result.groups)
    assert result.referees[0].risk.sentence == (
        "Opened their link from the candidate's network (a known office network); "
        "used the same internet address as another referee (a known office network)."
    )
    # Lowered, not rewritten: every raw flag keeps the severity it was raised with.
    with company_context(company):
        assert Flag.objects.filter(request=reference_request).count() == 14
        assert Flag.objects.filter(request=reference_request, severity=Severity.HIGH).count() == 8


def test_the_request_page_shows_the_summary_groups_and_every_raw_signal(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, references = office_flood(company, recruiter)
    set_offices(company, [OFFICE])
    client.force_login(recruiter)
    page = client.get(detail_url(reference_request)).content.decode()
    assert 'id="risk-top"' in page and 'id="risk-summary"' in page
    assert "Four referees opened their links from the candidate&#x27;s network (a known office network)" in page
    # One comment box per group (5), not per raw signal (14); one "review all" per referee.
    assert page.count('name="comment"') == 5 + 4
    assert page.count('action="' + reverse("flag_group_review", args=[reference_request.pk]) + '"') == 5
    for reference in references:
        assert f'id="signals-{reference.pk}"' in page
    # Every raw signal is still on the page, under "Show all".
    with company_context(company):
        for flag in Flag.objects.filter(request=reference_request):
            assert f'id="flag-{flag.pk}"' in page
    assert "Lowered from High: the shared network is a known office network of the company." in page
    assert "Ann O&#x27;Brien" in page and "Bob Smith &amp; Jones" in page and "Dmitri Иванов" in page


def test_the_report_carries_the_summary_and_the_lowered_flags(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = office_flood(company, recruiter, count=2)
    set_offices(company, [OFFICE])
    client.force_login(recruiter)
    page = client.get(reverse("request_report", args=[reference_request.pk])).content.decode()
    assert re.search(r'id="risk-summary"><span class="badge risk-review">Review</span> Two referees', page)
    assert page.count("Weighed Medium: the shared network is a known office network") == 4


# --- the context rules -----------------------------------------------------------------


def _flag(kind: str, severity: int, key: str, reference_id=None) -> Flag:
    return Flag(kind=kind, key=key, severity=severity, reference_id=reference_id)


def test_rules_lower_only_weak_signals_on_a_shared_office_or_busy_network():
    import uuid

    referee_id = uuid.uuid4()
    facts = context.Facts()
    facts.networks[context.CANDIDATE] = {"office"}
    facts.networks[referee_id.hex] = {"office"}
    facts.office = {"office"}
    address = _flag("ip_candidate", Severity.HIGH, f"ip_candidate:{referee_id.hex}", referee_id)
    device = _flag("device_candidate", Severity.HIGH, f"device_candidate:{referee_id.hex}", referee_id)
    contact = _flag("email_candidate", Severity.HIGH, f"email_candidate:{referee_id.hex}", referee_id)
    assert context.weigh(address, facts) == context.Weight(Severity.MEDIUM, context.OFFICE_REASON)
    # A candidate answering for their referee in their own browser is High even in the office.
    assert context.weigh(device, facts) == context.Weight(Severity.HIGH)
    assert context.weigh(contact, facts) == context.Weight(Severity.HIGH)
    # Not an office, not busy: full weight.
    assert context.weigh(address, context.Facts(networks=facts.networks)) == context.Weight(Severity.HIGH)
    # Busy with other candidates' referees: lowered with that reason.
    busy = context.Facts(networks=facts.networks, busy={"office"})
    assert context.weigh(address, busy) == context.Weight(Severity.MEDIUM, context.SHARED_REASON)
    # Also shared on a home network: not every shared network is an office, so not lowered.
    facts.networks[context.CANDIDATE] = {"office", "home"}
    facts.networks[referee_id.hex] = {"office", "home"}
    assert context.weigh(address, facts) == context.Weight(Severity.HIGH)
    # Between referees: the pair read from the key; Medium goes to Low.
    other = uuid.uuid4()
    pair = _flag("ip_referee", Severity.MEDIUM, f"ip_referee:{referee_id.hex}:{other.hex}", other)
    facts = context.Facts(office={"office"})
    facts.networks[referee_id.hex] = {"office"}
    facts.networks[other.hex] = {"office"}
    assert context.weigh(pair, facts) == context.Weight(Severity.LOW, context.OFFICE_REASON)


def test_same_device_in_a_known_office_is_still_high(company, members):
    recruiter = members[Role.RECRUITER].user
    set_offices(company, [OFFICE])
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, referee(0))
    act(company, reference_request, browser(CANDIDATE_IP, device="one-browser-cookie"), "opened")
    act(company, reference_request, browser(CANDIDATE_IP, device="one-browser-cookie"), "opened", reference)
    result = triaged(company, reference_request)
    assert result.risk.level == triage.HIGH
    assert result.risk.sentence.startswith("One referee used the candidate's own device; one referee opened their link")
    [device] = [group for group in result.groups if group.cause == "device_candidate"]
    assert device.severity == Severity.HIGH and not device.lowered_because


def _other_candidates_on(company, actor, ip: str, count: int, *, days_ago: int = 0) -> None:
    for n in range(count):
        other, _ = make_request(company, actor, email=f"other{n}@elsewhere.example", name=f"Other Candidate {n}")
        reference, _ = nominate(company, other, referee(0, email=f"busy{n}@elsewhere.example", phone=""))
        touch = act(company, other, browser(ip), "opened", reference)
        if days_ago:
            with company_context(company):
                Touch.objects.filter(pk=touch.pk).update(at=timezone.now() - timedelta(days=days_ago))


@pytest.mark.parametrize(
    ("others", "days_ago", "lowered"),
    [(3, 0, True), (2, 0, False), (3, 31, False)],
    ids=["three-others-lowered", "two-others-not", "three-but-older-not"],
)
def test_a_network_many_other_candidates_referees_used_is_a_shared_network(company, members, others, days_ago, lowered):
    recruiter = members[Role.RECRUITER].user
    carrier = "198.51.100.77"
    _other_candidates_on(company, recruiter, carrier, others, days_ago=days_ago)
    reference_request, _ = office_flood(company, recruiter, count=1, ip=carrier)
    [group] = triaged(company, reference_request).groups
    assert (group.lowered_because == context.SHARED_REASON) is lowered
    assert group.severity == (Severity.MEDIUM if lowered else Severity.HIGH)


# --- review: one group, all of a referee's ----------------------------------------------


def _group_ids(page: str) -> list[str]:
    return re.findall(r'<li id="group-([^"]+)"', page)


def test_review_all_of_a_referees_signals_with_confirmation_and_place_kept(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, references = office_flood(company, recruiter)
    client.force_login(recruiter)
    before = _group_ids(client.get(detail_url(reference_request)).content.decode())
    ann = references[0]
    response = client.post(
        reverse("referee_flags_review", args=[reference_request.pk, ann.pk]),
        {"comment": "Ann O'Brien works in our client's office; called her there."},
    )
    assert response.status_code == 302
    assert response["Location"] == detail_url(reference_request) + f"#signals-{ann.pk}"
    page = client.get(response["Location"]).content.decode()
    # Ann's own two and her three pairs with the others.
    assert "Marked as reviewed: every signal on Ann O&#x27;Brien (5 signals)." in page
    assert _group_ids(page) == before  # nothing moved
    assert open_count(company, reference_request) == 9
    with company_context(company):
        reviewed = Flag.objects.filter(request=reference_request, reviewed_at__isnull=False)
        assert {str(flag.review_comment) for flag in reviewed} == {
            "Ann O'Brien works in our client's office; called her there."
        }
        assert all(ann.pk.hex in context.parties(flag) for flag in reviewed) and reviewed.count() == 5
        entry = Entry.objects.get(action="flag_reviewed")
        assert entry.actor_id == recruiter.pk and sorted(entry.details["flags"]) == sorted(
            str(flag.pk) for flag in reviewed
        )
        assert TimelineEvent.objects.filter(request=reference_request, kind="flag_reviewed").count() == 1
    result = triaged(company, reference_request)
    assert result.groups[0].reviewed and result.referees[0].open_count == 0
    # A second "review all" of Ann is refused with a message, nothing changes.
    again = client.post(reverse("referee_flags_review", args=[reference_request.pk, ann.pk]), {"comment": "Again."})
    assert again.status_code == 400
    assert "Every signal on Ann O&#x27;Brien has already been reviewed." in again.content.decode()


def test_review_one_group_with_one_comment_over_htmx(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, references = office_flood(company, recruiter, count=2)
    client.force_login(recruiter)
    group = triaged(company, reference_request).groups[1]
    response = client.post(
        reverse("flag_group_review", args=[reference_request.pk]),
        {"group": group.key, "flag": [str(flag.pk) for flag in group.flags], "comment": "Same office, checked."},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'role="status" id="review-done"' in html
    assert "Marked as reviewed: On the candidate&#x27;s network — Bob Smith &amp; Jones (2 signals)." in html
    assert open_count(company, reference_request) == 3
    assert _group_ids(html)[1] == group.key and 'class="badge reviewed"' in html


def test_an_empty_comment_on_a_group_is_refused_and_shown_by_its_form(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = office_flood(company, recruiter, count=1)
    client.force_login(recruiter)
    [group] = triaged(company, reference_request).groups
    response = client.post(
        reverse("flag_group_review", args=[reference_request.pk]),
        {"group": group.key, "flag": [str(flag.pk) for flag in group.flags], "comment": " "},
    )
    assert response.status_code == 400
    assert f'aria-describedby="review-error-{group.key}"' in response.content.decode()
    assert open_count(company, reference_request) == 2


def test_group_review_attacks_with_other_ids(client, company, members):
    recruiter = members[Role.RECRUITER].user
    mine, _ = office_flood(company, recruiter, count=1)
    other_request, other_references = office_flood(company, recruiter, count=1)
    rival = make_company("Globex Hiring")
    rival_recruiter = rival.memberships.get().user
    theirs, their_references = office_flood(rival, rival_recruiter, count=1)
    their_flags = [flag.pk for flag in triaged(rival, theirs).flags]
    my_flags = [flag.pk for flag in triaged(company, mine).flags]
    other_flags = [flag.pk for flag in triaged(company, other_request).flags]
    url = reverse("flag_group_review", args=[mine.pk])
    client.force_login(recruiter)
    # Another request's flag slipped in beside one of mine: refused whole.
    assert client.post(url, {"flag": [my_flags[0], other_flags[0]], "comment": "x"}).status_code == 404
    # Another company's flags, under my request or under theirs.
    assert client.post(url, {"flag": their_flags, "comment": "x"}).status_code == 404
    theirs_url = reverse("flag_group_review", args=[theirs.pk])
    assert client.post(theirs_url, {"flag": their_flags, "comment": "x"}).status_code == 404
    referee_url = reverse("referee_flags_review", args=[theirs.pk, their_references[0].pk])
    assert client.post(referee_url, {"comment": "x"}).status_code == 404
    # Another request's referee under my request.
    crossed = reverse("referee_flags_review", args=[mine.pk, other_references[0].pk])
    assert client.post(crossed, {"comment": "x"}).status_code == 404
    # Garbage, none, too many.
    assert client.post(url, {"flag": ["not-a-uuid"], "comment": "x"}).status_code == 404
    assert client.post(url, {"comment": "x"}).status_code == 404
    assert client.post(url, {"flag": [my_flags[0]] * 201, "comment": "x"}).status_code == 404
    # A viewer may look, not review.
    client.force_login(members[Role.VIEWER].user)
    assert client.post(url, {"flag": my_flags, "comment": "x"}).status_code == 403
    # Nothing anywhere was reviewed.
    assert open_count(company, mine) == 2 and open_count(company, other_request) == 2
    assert open_count(rival, theirs) == 2


# --- new signals: relationship and confirmation mismatches ------------------------------


def _answered(company, reference_request, reference, *, relationship: str, identity: dict) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        referee_flows.referee_opened(reference)
        referee_flows.confirm_referee(reference, **identity)
        answers = {**answers_for(reference_request), "relationship": relationship}
        assert referee_flows.submit_answers(reference, answers) == {}
    act(company, reference_request, browser(ELSEWHERE_IP), "submitted", reference)


def _kinds(company, reference_request) -> dict:
    with company_context(company):
        found = {flag.kind: flag for flag in Flag.objects.filter(request=reference_request)}
        for flag in found.values():
            flag.explanation = str(flag.explanation)
        return found


@pytest.mark.parametrize("answer", ["Client or customer", "Peer or colleague"])
def test_nominated_as_manager_answered_as_client_or_peer_is_a_signal(company, members, answer):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, referee(0, relationship="manager"))
    _answered(company, reference_request, reference, relationship=answer, identity=IDENTITY)
    flag = _kinds(company, reference_request)["relationship_mismatch"]
    assert flag.severity == Severity.MEDIUM
    assert str(flag.explanation).startswith(
        f"The candidate nominated this referee as their manager; the referee answered “How did you work with the "
        f"candidate?” with “{answer}”."
    )
    assert "confirmed_organisation" not in _kinds(company, reference_request)


def test_a_matching_relationship_and_confirmation_raise_nothing_new(company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, referee(0, relationship="manager"))
    _answered(company, reference_request, reference, relationship="I managed them", identity=IDENTITY)
    kinds = _kinds(company, reference_request)
    assert not {"relationship_mismatch", "confirmed_organisation", "confirmed_dates"} & set(kinds)


def test_a_confirmation_that_contradicts_the_nomination_is_a_signal(company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, referee(0))
    identity = {**IDENTITY, "organisation": "Initech", "candidate_from": "2015-01", "candidate_to": "2016-02"}
    _answered(company, reference_request, reference, relationship="I managed them", identity=identity)
    kinds = _kinds(company, reference_request)
    assert "Acme Widgets" in str(kinds["confirmed_organisation"].explanation)
    assert "Initech" in str(kinds["confirmed_organisation"].explanation)
    dates = str(kinds["confirmed_dates"].explanation)
    assert "January 2021 (candidate) against January 2015 (referee), 72 months apart" in dates
    result = triaged(company, reference_request)
    [group] = [group for group in result.groups if group.cause == "contradicts"]
    assert group.count == 2 and result.risk.level == triage.REVIEW


# --- the office networks setting --------------------------------------------------------


def test_office_networks_are_parsed_with_clear_messages():
    assert parse_office_networks("203.0.113.0/24\n 2001:db8:1::/48 , 198.51.100.7/32") == [
        "203.0.113.0/24",
        "2001:db8:1::/48",
        "198.51.100.7/32",
    ]
    assert parse_office_networks("  ") == []
    cases = {
        "203.0.113.0": "has no prefix length",
        "203.0.113.300/24": "is not a network",
        "203.0.113.5/24": "did you mean 203.0.113.0/24?",
        "10.0.0.0/8": "is too broad for an office",
        "2001::/16": "is too broad for an office",
        "203.0.113.0/24\n203.0.113.0/24": "is listed twice",
        "\n".join(f"10.0.{n}.0/24" for n in range(51)): "at most 50 networks",
    }
    from django import forms

    for raw, message in cases.items():
        with pytest.raises(forms.ValidationError, match=re.escape(message)):
            parse_office_networks(raw)


def _settings_form(**overrides) -> dict:
    return {
        "reminder_days": "2, 4",
        "replace_after_days": "5",
        "retention_months": "12",
        "recruiters_see_all": "all",
        "default_deadline_days": "14",
        "default_referees": "2",
        **overrides,
    }


def test_admins_set_office_networks_on_the_settings_page(client, company, members):
    client.force_login(members[Role.ADMIN].user)
    url = reverse("workflow_settings")
    bad = client.post(url, _settings_form(known_office_networks="203.0.113.5/24"))
    assert bad.status_code == 400 and "did you mean 203.0.113.0/24?" in bad.content.decode()
    good = client.post(url, _settings_form(known_office_networks="203.0.113.0/24\r\n2001:db8:1::/48"))
    assert good.status_code == 302
    with company_context(company):
        assert WorkflowSettings.current().known_office_networks == ["203.0.113.0/24", "2001:db8:1::/48"]
        entry = Entry.objects.filter(action="workflow_settings_changed").first()
        assert entry.details["known_office_networks"]["to"] == ["203.0.113.0/24", "2001:db8:1::/48"]
    assert "203.0.113.0/24\n2001:db8:1::/48" in client.get(url).content.decode()
    # A recruiter cannot.
    client.force_login(members[Role.RECRUITER].user)
    assert client.post(url, _settings_form(known_office_networks="198.51.100.0/24")).status_code == 403


def test_an_office_flood_mails_the_recruiter_once_until_its_high_signals_are_reviewed(company, members):
    from django.core import mail

    recruiter = members[Role.RECRUITER].user

    def high_mails() -> int:
        return sum(recruiter.email in m.to and "High fraud signal" in m.subject for m in mail.outbox)

    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        reference_request, _ = make_request(company, recruiter, referees_required=4)
        act(company, reference_request, browser(CANDIDATE_IP), "opened")
        for n in range(3):
            reference, _ = nominate(company, reference_request, referee(n))
            act(company, reference_request, browser(CANDIDATE_IP), "opened", reference)
    with company_context(company):
        high = Flag.objects.filter(request=reference_request, severity=Severity.HIGH)
        assert high.count() > 1  # several High signals were raised...
    assert high_mails() == 1  # ...and the recruiter was told once
    [told] = [m for m in mail.outbox if "High fraud signal" in m.subject]
    assert "not emailed until its open ones are reviewed" in told.body

    # Every High one reviewed: the next High signal on the request is told again.
    with company_context(company):
        Flag.objects.filter(request=reference_request).update(reviewed_at=timezone.now(), reviewed_by_id=recruiter.pk)
    with TestCase.captureOnCommitCallbacks(execute=True):
        fifth, _ = nominate(
            company, reference_request, referee(0, name="Eve Example", email="eve@acme-widgets.example")
        )
        act(company, reference_request, browser(CANDIDATE_IP), "opened", fifth)
    assert high_mails() == 2
