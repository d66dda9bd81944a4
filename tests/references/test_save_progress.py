"""A referee's saves (issue #5): once they have started, a save is one compare-and-set
UPDATE of the reference row as the answers page loaded it; a row that changed since
(another save, a submission, a cancelled request) sends the save down the locked path,
which merges into the answers as they are now or refuses a closed reference.

The reference is loaded here as the answers page loads it (with its request and
questions, only the page's columns); answers are read back through the ORM (decrypted)
and, for what is at rest, as the raw column."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from tests.references.concurrency import wait_until_blocked
from tests.references.workflow import FULL, IDENTITY, REFEREES, make_request, nominate
from tests.vault.attack import read_raw, scan, unique
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references import flows
from vouch.references.referees import flows as referee_flows
from vouch.references.referees.views import ANSWERS_PAGE_COLUMNS
from vouch.references.request_models import (
    Reference,
    ReferenceRequest,
    ReferenceStatus,
    RequestStatus,
    TimelineEvent,
)
from vouch.references.requests import flows as request_flows
from vouch.tenancy import connections as tenancy_connections

pytestmark = pytest.mark.django_db

# FULL as the workflow takes it (question ids, without the form's "q-" prefix).
ANSWERS = {name.removeprefix("q-"): value for name, value in FULL.items()}
FIRST = {"dates": "2021 to 2024, Finance Manager"}


def as_the_page_loads_it(reference) -> Reference:
    """The reference as the answers page loads it for a save (inside the company): with
    its request and questions, only the page's columns."""
    return (
        Reference.objects.select_related("request__candidate", "request__questionnaire_version")
        .only(*ANSWERS_PAGE_COLUMNS)
        .get(pk=reference.pk)
    )


def stored(company, reference) -> Reference:
    """The row as it is now, its answers opened."""
    with company_context(company):
        fresh = Reference.objects.get(pk=reference.pk)
        fresh.answers  # noqa: B018 - opens the encrypted value while the key is at hand
    return fresh


def raw_answers(company, reference) -> bytes | None:
    with company_context(company) as context:
        return read_raw(context.alias, Reference, "answers", reference.pk)


def company_queries(context) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[context.alias])


def is_update(query: dict) -> bool:
    return query["sql"].lstrip().upper().startswith("UPDATE")


@pytest.fixture
def request_(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    return reference_request


@pytest.fixture
def reference(company, request_):
    """A referee who confirmed their details and saved once (the locked path: the save
    that starts the reference)."""
    reference, _ = nominate(company, request_, REFEREES[0])
    with company_context(company):
        referee_flows.confirm_referee(reference, **IDENTITY)
        assert referee_flows.save_answers(as_the_page_loads_it(reference), FIRST) == {}
    fresh = stored(company, reference)
    assert fresh.status == ReferenceStatus.IN_PROGRESS and fresh.saved_at is not None
    return reference


def test_saves_after_the_first_are_one_update_each_and_stored(company, reference):
    first = stored(company, reference)
    saves = [  # (as posted, as stored)
        ({"strengths": "Careful with numbers", "quality": "4"}, {"strengths": "Careful with numbers", "quality": 4}),
        ({"quality": "5", "rehire": "yes"}, {"quality": 5, "rehire": "yes"}),
        ({"relationship": "I managed them"}, {"relationship": "I managed them"}),
    ]
    expected = dict(FIRST)
    previous = first.saved_at
    for submitted, kept in saves:
        with company_context(company) as context:
            loaded = as_the_page_loads_it(reference)
            loaded_answers = dict(loaded.answers)
            with company_queries(context) as queries:
                assert referee_flows.save_answers(loaded, submitted) == {}
        # One statement on the company database, the compare-and-set UPDATE.
        assert len(queries) == 1, [q["sql"] for q in queries]
        assert is_update(queries[0]), queries[0]["sql"]
        # The caller's instance is left as it was loaded.
        assert (loaded.answers, loaded.saved_at) == (loaded_answers, previous)
        expected.update(kept)
        now = stored(company, reference)
        assert now.answers == expected
        assert now.saved_at > previous
        assert now.status == ReferenceStatus.IN_PROGRESS
        assert now.started_at == first.started_at
        previous = now.saved_at
    with company_context(company):
        started = TimelineEvent.objects.filter(kind="referee_started", reference_id=reference.pk)
        assert started.count() == 1  # the later saves add nothing to the timeline


def test_a_quick_save_returns_errors_keeps_valid_answers_and_clears_emptied_ones(company, reference):
    with company_context(company) as context:
        assert referee_flows.save_answers(as_the_page_loads_it(reference), {"quality": "4", "strengths": "Tidy"}) == {}
        loaded = as_the_page_loads_it(reference)
        with company_queries(context) as queries:
            errors = referee_flows.save_answers(loaded, {"quality": "9", "strengths": "", "develop": "Delegation"})
    assert len(queries) == 1 and is_update(queries[0])
    assert errors == {"quality": "Choose a rating from 1 to 5."}
    # The invalid rating keeps its saved value, the emptied answer is gone, the valid one is in.
    assert stored(company, reference).answers == {**FIRST, "quality": 4, "develop": "Delegation"}


def test_a_save_from_a_stale_page_keeps_what_another_save_stored(company, reference):
    """Two tabs (or an autosave racing the save button): R1 was loaded, then R2 saved.
    R1's save must merge into R2's answers, not write R1's stale copy back."""
    with company_context(company) as context:
        r1 = as_the_page_loads_it(reference)
        r2 = as_the_page_loads_it(reference)
        assert (
            referee_flows.save_answers(r2, {"dates": "2020 to 2024, Controller", "strengths": "From the other tab"})
            == {}
        )
        with company_queries(context) as queries:
            assert referee_flows.save_answers(r1, {"quality": "3"}) == {}
    # Its compare-and-set found the row changed, so it went the locked way.
    assert len(queries) > 1 and is_update(queries[0])
    now = stored(company, reference)
    assert now.answers == {"dates": "2020 to 2024, Controller", "strengths": "From the other tab", "quality": 3}
    assert now.status == ReferenceStatus.IN_PROGRESS


def test_a_save_waiting_for_another_saves_lock_does_not_write_over_it(company, reference):
    """One autosave's UPDATE reaches the row while another save's transaction holds it
    (both pages loaded before either saved). When the first commits, the waiting
    compare-and-set must see the new saved_at and merge, not write its stale copy of
    the answers over the committed ones. (On PostgreSQL, READ COMMITTED re-checks the
    waiting UPDATE's conditions on the updated table against the committed row; a
    condition inside a subquery is not re-checked, so one there lets the stale write
    through.)"""
    tried = threading.Event()
    outcome: dict[str, object] = {}

    def save_later(stale: Reference) -> None:
        try:
            with company_context(company) as context:
                db = connections[context.alias]
                db.ensure_connection()
                if db.vendor == "sqlite":
                    db.connection.set_trace_callback(lambda sql: sql.startswith("UPDATE") and tried.set())
                outcome["errors"] = referee_flows.save_answers(stale, {"quality": "3"})
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcome["error"] = exc
        finally:
            tenancy_connections.release_kept()

    with company_context(company) as context:
        stale = as_the_page_loads_it(reference)
        first = as_the_page_loads_it(reference)
        with transaction.atomic(using=context.alias):
            assert referee_flows.save_answers(first, {"strengths": "Saved first"}) == {}
            waiting = threading.Thread(target=save_later, args=(stale,), daemon=True)
            waiting.start()
            wait_until_blocked(context, tried, waiting)
        waiting.join(30)
    assert not waiting.is_alive()
    assert outcome == {"errors": {}}, outcome
    assert stored(company, reference).answers == {**FIRST, "strengths": "Saved first", "quality": 3}


def test_concurrent_saves_from_pages_loaded_together_lose_nothing(company, reference):
    """Six saves of different questions, each from a page loaded before any of them ran,
    race on their own connections: one wins the compare-and-set, the others must merge."""
    submitted = {
        "relationship": "I managed them",
        "reliability": "5",
        "quality": "4",
        "strengths": "Careful with numbers",
        "develop": "Delegation",
        "rehire": "yes",
    }
    barrier = threading.Barrier(len(submitted), timeout=30)
    outcomes: dict[str, object] = {}

    def save(question: str, value: str) -> None:
        try:
            with company_context(company):
                mine = as_the_page_loads_it(reference)
                barrier.wait()  # every page is loaded before any save
                outcomes[question] = referee_flows.save_answers(mine, {question: value})
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcomes[question] = exc
        finally:
            tenancy_connections.release_kept()

    threads = [threading.Thread(target=save, args=item, daemon=True) for item in submitted.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert outcomes == dict.fromkeys(submitted, {}), outcomes
    expected = {**FIRST, **submitted, "reliability": 5, "quality": 4}
    assert stored(company, reference).answers == expected


def test_a_save_from_a_page_loaded_before_the_request_was_cancelled_is_refused(company, members, reference):
    with company_context(company):
        loaded = as_the_page_loads_it(reference)
        assert referee_flows.save_answers(as_the_page_loads_it(reference), {"quality": "4"}) == {}
        before = stored(company, reference)
        raw_before = raw_answers(company, reference)
        request_flows.cancel_request(
            ReferenceRequest.objects.get(pk=reference.request_id), actor=members[Role.RECRUITER].user
        )
        with pytest.raises(flows.WorkflowError):
            referee_flows.save_answers(loaded, {"strengths": "Too late"})
        # Loaded after the cancellation too: refused, whichever path the save takes.
        with pytest.raises(flows.WorkflowError):
            referee_flows.save_answers(as_the_page_loads_it(reference), {"strengths": "Too late"})
    after = stored(company, reference)
    assert after.status == ReferenceStatus.CANCELLED
    assert after.answers == before.answers == {**FIRST, "quality": 4}
    assert after.saved_at == before.saved_at
    assert raw_answers(company, reference) == raw_before


def test_a_save_from_a_page_loaded_before_the_reference_was_submitted_is_refused(company, reference):
    with company_context(company):
        loaded = as_the_page_loads_it(reference)
        assert referee_flows.submit_answers(as_the_page_loads_it(reference), ANSWERS) == {}
        submitted = stored(company, reference)
        raw_before = raw_answers(company, reference)
        with pytest.raises(flows.WorkflowError):
            referee_flows.save_answers(loaded, {"strengths": "Changed my mind"})
    after = stored(company, reference)
    assert after.status == ReferenceStatus.COMPLETED
    assert after.answers == submitted.answers == {**ANSWERS, "reliability": 5, "quality": 4}
    assert after.saved_at == submitted.saved_at
    assert raw_answers(company, reference) == raw_before


def test_a_quick_save_checks_the_request_is_open_too(company, reference):
    """The compare-and-set also requires the request to be open, as the locked path does.
    Workflow closes a request's open references with it; here only the request row is
    closed, so the request's status alone must stop the save."""
    with company_context(company):
        loaded = as_the_page_loads_it(reference)
        before = stored(company, reference)
        ReferenceRequest.objects.filter(pk=reference.request_id).update(status=RequestStatus.COMPLETED)
        with pytest.raises(flows.WorkflowError):
            referee_flows.save_answers(loaded, {"strengths": "After the close"})
    after = stored(company, reference)
    assert after.answers == before.answers and after.saved_at == before.saved_at


def test_a_quick_save_writes_ciphertext(company, reference):
    secret = unique("Strength")
    with company_context(company) as context:
        loaded = as_the_page_loads_it(reference)
        with company_queries(context) as queries:
            assert referee_flows.save_answers(loaded, {"strengths": secret}) == {}
    assert len(queries) == 1 and is_update(queries[0])
    # Neither the statement sent nor what is stored holds the answer in the clear.
    assert scan({"statement": queries[0]["sql"].encode()}, [secret]) == []
    raw = raw_answers(company, reference)
    assert raw is not None and len(raw) > len(secret)
    assert scan({"answers column": raw}, [secret, "2021 to 2024", '"dates"', "strengths"]) == []
    # Control: the scanner does find the value where it is in the clear.
    assert scan({"plain": f'{{"strengths": "{secret}"}}'.encode()}, [secret])
    # Sealed for this row: it opens as this reference's answers.
    assert stored(company, reference).answers == {**FIRST, "strengths": secret}
