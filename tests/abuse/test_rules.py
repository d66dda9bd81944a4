"""P18: each abuse rule fires at its threshold and not below, per company (and per
account where the rule is), once per incident; a company's own threshold is its alone."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import RequestFactory

from tests.abuse.helpers import SOURCE, occur, set_threshold
from tests.accounts.helpers import fast_company, fast_member
from vouch.abuse import monitor, rules, throttle
from vouch.abuse.models import ReauthDemand
from vouch.abuse.responses import SUBJECT
from vouch.abuse.rules import RULES, Response
from vouch.accounts.policy import Role
from vouch.audit import observers, record
from vouch.audit.events import PLATFORM
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.audit.sampling import record_sampled
from vouch.core import metrics
from vouch.guard import suspension

pytestmark = pytest.mark.django_db
PER_ACCOUNT = [rule for rule in RULES.values() if rule.per_account]


def incidents(company) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(action=EventAction.ABUSE_DETECTED, company_id=company.pk).order_by("id"))


def fired(metric_rule: str, response: str) -> float:
    return metrics.abuse_responses_total.labels(rule=metric_rule, response=response)._value.get()


def owners_emails() -> list:
    return [message for message in mail.outbox if message.subject.endswith(SUBJECT)]


def test_the_observer_is_registered():
    assert monitor.observe in observers._observers


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_each_rule_fires_at_its_default_threshold_and_not_below(rule, django_capture_on_commit_callbacks):
    company = fast_company("Acme")
    member = fast_member(company, Role.ADMIN)
    actor = member.user.pk if rule.per_account else None
    before = fired(rule.name, str(rule.response if rule.per_account else Response.FLAG))
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, actor, times=rule.default - 1)
    assert incidents(company) == [] and owners_emails() == []
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, actor)
    (event,) = incidents(company)
    assert event.details["rule"] == rule.name
    assert event.details["count"] == rule.default and event.details["threshold"] == rule.default
    assert event.details["response"] == (rule.response if rule.per_account else Response.FLAG)
    assert fired(rule.name, event.details["response"]) == before + 1
    assert len(owners_emails()) == 1


@pytest.mark.parametrize("rule", PER_ACCOUNT, ids=[rule.name for rule in PER_ACCOUNT])
def test_rules_per_account_count_each_account_apart(rule, django_capture_on_commit_callbacks):
    company = fast_company()
    one, two = fast_member(company, Role.ADMIN), fast_member(company, Role.ADMIN)
    set_threshold(company, rule, rule.low)
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, one.user.pk, times=rule.low - 1)
        occur(rule, company.pk, two.user.pk, times=rule.low - 1)
    assert incidents(company) == []


def test_one_companys_activity_never_counts_against_another(django_capture_on_commit_callbacks):
    first, second = fast_company(), fast_company()
    person = fast_member(first, Role.ADMIN).user
    fast_member(second, Role.ADMIN, user=person)  # the same person in both
    for rule in RULES.values():
        set_threshold(first, rule, rule.low)
        set_threshold(second, rule, rule.low)
        with django_capture_on_commit_callbacks(execute=True):
            occur(rule, first.pk, person.pk, times=rule.low - 1)
            occur(rule, second.pk, person.pk, times=rule.low - 1)
    assert incidents(first) == [] and incidents(second) == []


def test_a_companys_own_threshold_applies_to_it_alone(django_capture_on_commit_callbacks):
    strict, other = fast_company(), fast_company()
    rule = rules.MASS_INVITATIONS
    set_threshold(strict, rule, 5)
    strict_member, other_member = fast_member(strict, Role.ADMIN), fast_member(other, Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, strict.pk, strict_member.user.pk, times=5)
        occur(rule, other.pk, other_member.user.pk, times=5)
    assert len(incidents(strict)) == 1 and incidents(other) == []
    assert throttle.seconds_left(strict_member.user.pk) > 0
    assert throttle.seconds_left(other_member.user.pk) == 0
    # The other company still has the default.
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, other.pk, other_member.user.pk, times=rule.default - 5)
    assert len(incidents(other)) == 1


def test_one_incident_until_it_calms_down(clock, django_capture_on_commit_callbacks):
    company = fast_company()
    member = fast_member(company, Role.ADMIN)
    rule = rules.REQUEST_BURST
    set_threshold(company, rule, rule.low)
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, member.user.pk, times=rule.low * 5)
        clock.advance(rule.window)  # the next hour, still going: the same incident
        occur(rule, company.pk, member.user.pk, times=rule.low * 2)
    assert len(incidents(company)) == 1 and len(owners_emails()) == 1


def test_the_api_rule_adds_to_the_shared_count_in_batches_and_fires_at_its_threshold(
    clock, monkeypatch, django_capture_on_commit_callbacks
):
    """The API's rule hears every call: a process adds its count to the shared one every
    threshold / 100 calls (or BATCH_SECONDS after its last addition), and once the total
    it saw and its own reach the threshold, on each call (it fires there exactly)."""
    from django.core.cache import cache

    company = fast_company()
    member = fast_member(company, Role.ADMIN)
    rule = rules.API_OVERUSE
    assert rule.batched
    step = rule.default // monitor.BATCH_SHARE
    shared = f"{monitor.PREFIX}:n:{monitor._scope(rule, company.pk, member.user.pk)}:{int(clock.at // rule.window)}"
    moment = [1000.0]
    monkeypatch.setattr(monitor.time, "monotonic", lambda: moment[0])
    monitor.forget_pending()
    occur(rule, company.pk, member.user.pk, times=step - 1)
    assert cache.get(shared) is None  # counted here only
    occur(rule, company.pk, member.user.pk)
    assert cache.get(shared) == step
    occur(rule, company.pk, member.user.pk, times=3)
    moment[0] += monitor.BATCH_SECONDS
    occur(rule, company.pk, member.user.pk)  # a quiet key's count still reaches the cache
    assert cache.get(shared) == step + 4
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, member.user.pk, times=rule.default - (step + 5))
    assert incidents(company) == []
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, member.user.pk)
    (event,) = incidents(company)
    assert event.details["count"] == rule.default == cache.get(shared)


def test_a_window_resets_the_count(clock, django_capture_on_commit_callbacks):
    company = fast_company()
    member = fast_member(company, Role.ADMIN)
    rule = rules.BULK_EXPORTS
    set_threshold(company, rule, rule.low)
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, member.user.pk, times=rule.low - 1)
        clock.advance(rule.window)
        occur(rule, company.pk, member.user.pk, times=rule.low - 1)
    assert incidents(company) == []


def test_downloads_fire_only_far_above_the_companys_normal(clock, django_capture_on_commit_callbacks):
    company = fast_company()
    rule = rules.DOWNLOADS
    set_threshold(company, rule, rule.low)  # 20 a day
    # A normal week: 10 downloads a day.
    for _ in range(rules.BASELINE_DAYS):
        occur(rule, company.pk, None, times=10)
        clock.advance(rules.DAY)
    # 5 times the normal (50) is the limit now, not 20.
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, None, times=49)
    assert incidents(company) == []
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, None)
    (event,) = incidents(company)
    assert event.details["count"] == 50 and event.details["threshold"] == 50 and event.details["baseline"] == "10.0"
    assert event.target == f"company:{company.pk}" and event.outcome == Outcome.SUCCESS


def guess():
    return RequestFactory().get("/c/not-a-token/", REMOTE_ADDR="203.0.113.5")


def test_real_events_reach_the_rules(django_capture_on_commit_callbacks):
    """The recorded events and the sampled link refusals are what the rules hear."""
    company = fast_company()
    member = fast_member(company, Role.ADMIN)
    set_threshold(company, rules.BULK_EXPORTS, 3)
    set_threshold(company, rules.LINK_GUESSES, 20)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            action, details = SOURCE["bulk_exports"]
            record(action, actor=member.user, company=company, details=details)
        # Link refusals are sampled: most are counted, not recorded; all are heard.
        for _ in range(19):
            record_sampled(
                EventAction.LINK_INVALID, request=guess(), kind="link_real", company=company.pk, outcome=Outcome.FAILURE
            )
        # A guess that matched no link names no company: not counted against anyone.
        for _ in range(25):
            record_sampled(
                EventAction.LINK_INVALID, request=guess(), kind="link_guess", company=PLATFORM, outcome=Outcome.FAILURE
            )
    assert [event.details["rule"] for event in incidents(company)] == ["bulk_exports"]
    assert ReauthDemand.objects.filter(user=member.user).exists()
    with django_capture_on_commit_callbacks(execute=True):
        record_sampled(
            EventAction.LINK_INVALID, request=guess(), kind="link_real", company=company.pk, outcome=Outcome.FAILURE
        )
    assert [event.details["rule"] for event in incidents(company)] == ["bulk_exports", "link_guesses"]


def test_a_rolled_back_change_still_counts_but_acts_after_commit_only(django_capture_on_commit_callbacks):
    company = fast_company()
    member = fast_member(company, Role.ADMIN)
    set_threshold(company, rules.BULK_ERASURES, 3)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        occur(rules.BULK_ERASURES, company.pk, member.user.pk, times=3)
    assert len(callbacks) == 1 and not suspension.is_suspended(member.user)
    callbacks[0]()
    assert suspension.is_suspended(member.user)
