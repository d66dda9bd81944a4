"""vouch.core.db.ComposedSQL: each statement written by hand for speed must do what its
ORM equivalent does (the same rows, the same values, the same writes), on both paths.
A statement that diverges from its models (a renamed column, a changed filter) fails
here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.db import connections, router
from django.utils import timezone

from tests.conftest import make_user
from tests.references.workflow import IDENTITY, REFEREES, make_request, nominate
from vouch.accounts import sessions
from vouch.accounts.models import Membership, User
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.core.db import ComposedSQL, Names
from vouch.guard import company_security, risk, throttle
from vouch.guard.models import AccountState, CompanySecuritySettings, SignIn
from vouch.references.referees import flows as referee_flows
from vouch.references.referees import progress
from vouch.references.request_models import (
    OPEN_REQUEST_STATUSES,
    Reference,
    ReferenceRequest,
    ReferenceStatus,
    RequestStatus,
)
from vouch.tenancy import services

pytestmark = pytest.mark.django_db


def test_a_statement_is_composed_once_per_engine_from_quoted_names():
    calls = []

    def compose(n: Names) -> str:
        calls.append(n)
        where = n.column(User, "id", prefix="u.")
        return f"SELECT {n.columns(User, 'id', 'email', prefix='u.')} FROM {n.table(User)} u WHERE {where} = %s"  # noqa: S608

    statement = ComposedSQL(compose)
    user = make_user("composed@example.com")
    quote = connections["default"].ops.quote_name
    assert statement.sql(connections["default"]) == (
        f"SELECT u.{quote('id')}, u.{quote('email')} FROM {quote('accounts_user')} u WHERE u.{quote('id')} = %s"  # noqa: S608
    )
    assert statement.fetchone([user.pk], using="default") == (user.pk, user.email)
    assert statement.fetchall([-1], using="default") == []
    assert len(calls) == 1


def test_the_member_count_is_the_orm_count(company, members):
    Membership.objects.filter(pk=members[Role.RECRUITER].pk).update(is_active=False)
    theirs = Membership.objects.filter(company=company, is_active=True).count()
    assert services.active_member_count(company) == theirs == len(members) - 1 > 0


def test_the_sign_in_lookup_is_the_orm_lookup():
    user = make_user("Lookup.Parity@Example.com")
    plain = make_user("no.state@example.com")
    disabled_at = timezone.now()
    AccountState.objects.create(user=user, consecutive_failures=3, password_disabled_at=disabled_at, held_until=12.5)
    for typed, who in (("  lookup.parity@EXAMPLE.com", user), ("no.state@example.com", plain)):
        found = User.objects.filter(email__iexact=typed.strip()).first()
        assert found == who
        state = AccountState.objects.filter(user=found).first()
        theirs = (
            found.pk,
            state.consecutive_failures if state else 0,
            bool(state and state.password_disabled_at),
            (state.held_until if state else None) or 0.0,
        )
        assert throttle._lookup(typed) == theirs
    assert throttle._lookup("nobody@example.com") == (None, 0, False, 0.0)


def test_the_sign_in_history_is_the_orm_history():
    user, other = make_user("history@example.com"), make_user("other.history@example.com")
    now = timezone.now()
    for hours in range(risk.HISTORY_ROWS + 5):
        SignIn.objects.create(
            user=user,
            occurred_at=now - timedelta(hours=hours),
            completed_at=None if hours % 7 == 3 else now,
            country="GB" if hours % 2 else "FR",
            asn=str(hours),
            latitude=51.5 + hours,
            longitude=-0.1,
            device_hash=f"d{hours}",
        )
    SignIn.objects.create(user=user, occurred_at=now - risk.HISTORY_WINDOW - timedelta(hours=1), completed_at=now)
    SignIn.objects.create(user=other, occurred_at=now, completed_at=now)
    since = now - risk.HISTORY_WINDOW
    theirs = list(
        SignIn.objects.filter(user=user, completed_at__isnull=False, occurred_at__gte=since)
        .order_by("-occurred_at")
        .values_list("occurred_at", "country", "asn", "latitude", "longitude", "device_hash")[: risk.HISTORY_ROWS]
    )
    mine = risk._history(user.pk, since)
    assert len(mine) == risk.HISTORY_ROWS
    # Only the newest row's time is converted (the rest are not used): compare it, then the other columns.
    assert mine[0][0] == theirs[0][0]
    assert [row[1:] for row in mine] == [row[1:] for row in theirs]


def test_the_security_snapshot_is_the_orm_row(company):
    since = timezone.now().replace(microsecond=0)
    CompanySecuritySettings.objects.update_or_create(
        company=company,
        defaults={
            "require_2fa": True,
            "require_2fa_since": since,
            "require_2fa_grace_days": 3,
            "allowed_networks": "10.0.0.0/8\n192.0.2.1",
        },
    )
    theirs = CompanySecuritySettings.objects.get(company=company)
    mine = company_security._read_snapshot(company.pk)
    assert (mine.require_2fa, mine.require_2fa_since, mine.grace_days) == (
        theirs.require_2fa,
        theirs.require_2fa_since,
        theirs.require_2fa_grace_days,
    )
    assert mine.allowed_networks == tuple(company_security.parse_networks(theirs.allowed_networks)) != ()
    CompanySecuritySettings.objects.filter(company=company).delete()
    assert company_security._read_snapshot(company.pk) == company_security.Snapshot()


def test_the_session_read_is_djangos():
    live, expired = DjangoSessionStore(), DjangoSessionStore()
    live["who"] = "me"
    live.create()
    expired["who"] = "gone"
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    for key in (live.session_key, expired.session_key, "no-such-key"):
        mine, theirs = sessions.SessionStore(key), DjangoSessionStore(key)
        assert mine.load() == theirs.load()
        assert (mine.session_key is None) == (theirs.session_key is None)
    assert sessions.SessionStore(live.session_key).load() == {"who": "me"}


@pytest.fixture
def in_progress(company, members):
    request, _ = make_request(company, members[Role.RECRUITER].user)
    reference, _ = nominate(company, request, REFEREES[0])
    with company_context(company):
        referee_flows.confirm_referee(Reference.objects.get(pk=reference.pk), **IDENTITY)
        referee_flows.save_answers(Reference.objects.get(pk=reference.pk), {"quality": "4"})
    return reference


def _orm_save_if_unchanged(reference, sealed, now) -> bool:
    open_request = ReferenceRequest.objects.filter(pk=reference.request_id, status__in=OPEN_REQUEST_STATUSES)
    changed = Reference.objects.filter(
        pk=reference.pk, status=ReferenceStatus.IN_PROGRESS, saved_at=reference.saved_at, request__in=open_request
    ).update(answers=sealed, saved_at=now)
    return changed == 1


def _state(pk):
    row = Reference.objects.get(pk=pk)
    return row.answers, row.saved_at


@pytest.mark.parametrize("case", ["unchanged", "saved_since", "request_closed"])
def test_the_progress_save_is_the_orm_update(company, in_progress, case):
    field = Reference._meta.get_field("answers")
    results = {}
    with company_context(company):
        for how, save in (("orm", _orm_save_if_unchanged), ("mine", progress.save_if_unchanged)):
            loaded = Reference.objects.get(pk=in_progress.pk)
            before = _state(loaded.pk)
            if case == "saved_since":
                Reference.objects.filter(pk=loaded.pk).update(saved_at=loaded.saved_at + timedelta(seconds=1))
            if case == "request_closed":
                ReferenceRequest.objects.filter(pk=loaded.request_id).update(status=RequestStatus.CANCELLED)
            now = timezone.now()
            written = save(loaded, field.seal_for(loaded, {"quality": how}), now)
            after = _state(loaded.pk)
            results[how] = (written, after[0] if written else None, after == before)
            # Back to the state before, for the other path.
            Reference.objects.filter(pk=loaded.pk).update(saved_at=before[1])
            ReferenceRequest.objects.filter(pk=loaded.request_id).update(status=in_progress.request.status)
            Reference.objects.filter(pk=loaded.pk).update(answers=field.seal_for(loaded, before[0]))
        assert progress.SAVE_IF_UNCHANGED.sql(connections[router.db_for_write(Reference)]).startswith("UPDATE ")
    assert results["mine"][0] == results["orm"][0] == (case == "unchanged")
    if case == "unchanged":
        assert results["orm"][1] == {"quality": "orm"} and results["mine"][1] == {"quality": "mine"}


def test_the_key_rewrap_batch_is_bulk_update(company):
    from vouch.vault.models import DataKey
    from vouch.vault.rotation import master

    fields = ("master_version", "wrapped", "rewrapped_at")
    keys = list(DataKey.objects.filter(company_id=company.pk).order_by("pk"))
    assert len(keys) >= 2
    before = {key.pk: tuple(getattr(key, name) for name in fields) for key in keys}
    when = timezone.now()
    new = {key.pk: (key.master_version + 7, bytes([n]) * 40, when) for n, key in enumerate(keys)}

    def written():
        return {pk: (mv, bytes(wrapped), at) for pk, mv, wrapped, at in DataKey.objects.values_list("pk", *fields)}

    connection = connections["default"]
    binary, at_field = DataKey._meta.get_field("wrapped"), DataKey._meta.get_field("rewrapped_at")
    master.REWRAP.executemany(
        [
            (mv, binary.get_db_prep_value(wrapped, connection), at_field.get_db_prep_value(at, connection), pk)
            for pk, (mv, wrapped, at) in new.items()
        ],
        using="default",
    )
    mine = written()
    for key in keys:
        key.master_version, key.wrapped, key.rewrapped_at = before[key.pk]
    DataKey.objects.bulk_update(keys, fields)
    assert {pk: values for pk, values in written().items() if pk in before} == {
        pk: (mv, bytes(wrapped), at) for pk, (mv, wrapped, at) in before.items()
    }
    for key in keys:
        key.master_version, key.wrapped, key.rewrapped_at = new[key.pk]
    DataKey.objects.bulk_update(keys, fields)
    theirs = written()
    assert mine == theirs
    assert {pk: mine[pk] for pk in new} == new


def test_the_name_rows_inserts_are_bulk_create(company):
    """``name_index``'s two INSERTs write the rows ``bulk_create`` wrote (same candidate,
    same digests), on each engine."""
    from vouch.references.candidates import name_index
    from vouch.references.models import Candidate
    from vouch.references.request_models import NamePrefix, SearchTerm
    from vouch.vault.fields import blind_index
    from vouch.vault.normalise import name_words
    from vouch.vault.prefixes import name_prefix_digests

    name = "Zoë Ångström-Okafor"
    with company_context(company):
        composed = Candidate.objects.create(name=name, email="zoe@example.org")
        name_index.index_names([composed], new=True)
        orm = Candidate.objects.create(name=name, email="zoe2@example.org")
        SearchTerm.objects.bulk_create(SearchTerm(candidate=orm, term=blind_index("name", w)) for w in name_words(name))
        NamePrefix.objects.bulk_create(NamePrefix(candidate=orm, digest=d) for d in name_prefix_digests(name))
        for model, column in ((SearchTerm, "term"), (NamePrefix, "digest")):
            mine = sorted(model.objects.filter(candidate_id=composed.pk).values_list(column, flat=True))
            theirs = sorted(model.objects.filter(candidate_id=orm.pk).values_list(column, flat=True))
            assert mine == theirs and mine
            # The candidate column holds the id as the ORM stores it: the join finds them.
            assert {row.candidate.email for row in model.objects.filter(candidate=composed)} == {"zoe@example.org"}
