"""Two-factor secrets at rest (ASVS 6.5.2): the TOTP secret and the recovery-code seed are
stored sealed, bound to their user and authenticator type (vouch.guard.mfa_secrets).

2FA still works end to end through the real pages (activate TOTP, sign in with a code,
read the recovery codes, sign in with one, once). Then the attacks of someone who can
write to the control database but holds no key: a sealed secret copied from one user's
row to another's, a plain secret of the attacker's choosing written in, a TOTP secret
moved into the recovery-codes row. Each fails closed: the sign-in is refused with a
clear message (never a 500) and a data_integrity_fail event names the authenticator."""

from __future__ import annotations

from importlib import import_module

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal import auth as totp_auth
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from tests.conftest import HTTPSClient, make_user
from tests.guard.b_helpers import activate_totp, give_totp, sign_in, totp_code
from vouch.audit.models import EventAction, SecurityEvent
from vouch.guard import mfa
from vouch.vault import account_secrets
from vouch.vault.models import InstallationKey

pytestmark = pytest.mark.django_db

AUTHENTICATE = "/accounts/2fa/authenticate/"


def stored(user, kind) -> dict:
    """The authenticator's data as stored, read below Vouch (no model instance made)."""
    return Authenticator.objects.filter(user=user, type=kind).values_list("data", flat=True).get()


def store(user, kind, data: dict) -> None:
    """Overwrite the stored data, as someone with write access to the database would
    (a queryset update: no model instance, no signal, nothing of Vouch's runs)."""
    assert Authenticator.objects.filter(user=user, type=kind).update(data=data) == 1


def integrity_events(user) -> list[SecurityEvent]:
    return list(
        SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL, target__endswith=f"of user {user.pk}")
    )


def second_step(user, code: str):
    """Sign in with the password, then answer the second step with ``code``."""
    client = HTTPSClient()
    response = sign_in(client, user.email)
    assert response["Location"] == AUTHENTICATE
    return client, client.post(AUTHENTICATE, {"code": code})


def signed_in(client: HTTPSClient) -> bool:
    return client.get("/accounts/2fa/").status_code == 200


def test_totp_and_recovery_codes_work_end_to_end_and_are_sealed_in_the_database():
    user = make_user()
    _, secret, codes = activate_totp(user)
    totp, recovery = stored(user, Authenticator.Type.TOTP), stored(user, Authenticator.Type.RECOVERY_CODES)
    assert account_secrets.is_sealed(totp["secret"]) and account_secrets.is_sealed(recovery["seed"])
    raw = str(totp) + str(recovery)
    assert secret not in raw and secret.lower() not in raw.lower()
    assert not any(code in raw for code in codes)
    assert InstallationKey.objects.filter(purpose="accounts").count() == 1

    client, response = second_step(user, totp_code(secret))
    assert response.status_code == 302 and signed_in(client)
    # A recovery code signs in once; the same code again is refused.
    client, response = second_step(user, codes[0])
    assert response.status_code == 302 and signed_in(client)
    client, response = second_step(user, codes[0])
    assert response.status_code == 200 and not signed_in(client)
    client, response = second_step(user, codes[1])
    assert response.status_code == 302 and signed_in(client)
    assert not integrity_events(user)


def test_a_secret_copied_to_another_users_row_fails_closed():
    """The attacker copies their own sealed TOTP secret (and recovery seed) into the
    victim's rows, then types codes from their own authenticator app and recovery codes."""
    attacker, victim = make_user(), make_user()
    _, attacker_secret, attacker_codes = activate_totp(attacker)
    _, victim_secret, _ = activate_totp(victim)
    for kind in (Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES):
        store(victim, kind, stored(attacker, kind))

    for code in (totp_code(attacker_secret), attacker_codes[0], totp_code(victim_secret)):
        client, response = second_step(victim, code)
        assert response.status_code == 200, code
        assert str(mfa.UNREADABLE_SECRET) in response.content.decode().replace("&#x27;", "'")
        assert not signed_in(client)
    events = integrity_events(victim)
    assert events and all(event.outcome == "failure" for event in events)
    assert {"totp:secret"} <= {event.target.split(":", 2)[2].split(" ")[0] for event in events}
    # The attacker's own account still works: nothing of theirs was changed.
    client, response = second_step(attacker, totp_code(attacker_secret))
    assert response.status_code == 302 and signed_in(client)


def test_a_recovery_seed_copied_to_another_users_row_fails_closed():
    attacker, victim = make_user(), make_user()
    _, _, attacker_codes = activate_totp(attacker)
    victim_client, victim_secret, _ = activate_totp(victim)
    store(victim, Authenticator.Type.RECOVERY_CODES, stored(attacker, Authenticator.Type.RECOVERY_CODES))
    client, response = second_step(victim, attacker_codes[0])
    assert response.status_code == 200 and not signed_in(client)
    assert any(event.target.split(":")[2].startswith("recovery_codes") for event in integrity_events(victim))
    # The victim's 2FA page (which counts recovery codes) still opens, without a 500.
    assert victim_client.get("/accounts/2fa/").status_code == 200


def test_a_plain_secret_written_into_the_database_is_refused():
    """Someone who can write to the database sets a secret they know, in plain text,
    as allauth would store it without Vouch: it is never used."""
    victim = make_user()
    give_totp(victim)
    known = totp_auth.generate_totp_secret()
    store(victim, Authenticator.Type.TOTP, {"secret": known})
    client, response = second_step(victim, totp_code(known))
    assert response.status_code == 200 and not signed_in(client)
    assert integrity_events(victim)
    # Saving the authenticator (as using a code does) never seals the planted value.
    Authenticator.objects.get(user=victim, type=Authenticator.Type.TOTP).save()
    assert stored(victim, Authenticator.Type.TOTP) == {"secret": known}


def test_a_totp_secret_moved_into_the_recovery_codes_row_does_not_open():
    user = make_user()
    _, _, _ = activate_totp(user)
    totp = stored(user, Authenticator.Type.TOTP)
    recovery = stored(user, Authenticator.Type.RECOVERY_CODES)
    store(user, Authenticator.Type.RECOVERY_CODES, {**recovery, "seed": totp["secret"]})
    client, response = second_step(user, "12345678")
    assert response.status_code == 200 and not signed_in(client)
    assert any("recovery_codes:seed" in event.target for event in integrity_events(user))


def test_reauthentication_with_a_swapped_secret_is_refused_too():
    attacker, victim = make_user(), make_user()
    _, attacker_secret, _ = activate_totp(attacker)
    victim_client, victim_secret, _ = activate_totp(victim)
    store(victim, Authenticator.Type.TOTP, stored(attacker, Authenticator.Type.TOTP))
    response = victim_client.post("/accounts/2fa/reauthenticate/", {"code": totp_code(attacker_secret)})
    assert response.status_code == 200
    assert str(mfa.UNREADABLE_SECRET) in response.content.decode().replace("&#x27;", "'")


# --- The data migration ----------------------------------------------------------------


def test_the_migration_seals_plain_secrets_and_its_reverse_opens_them():
    """guard.0004 run with the historical models of its own state, on rows as they were
    stored before it (plain text); then back."""
    migration = import_module("vouch.guard.migrations.0004_seal_mfa_secrets")
    apps = MigrationLoader(connection).project_state(("guard", "0004_seal_mfa_secrets")).apps
    users = [make_user(), make_user()]
    plain = {}
    for user in users:
        secret, seed = totp_auth.generate_totp_secret(), "ab" * 40
        Authenticator.objects.bulk_create(
            [
                Authenticator(user=user, type=Authenticator.Type.TOTP, data={}),
                Authenticator(user=user, type=Authenticator.Type.RECOVERY_CODES, data={}),
            ]
        )
        store(user, Authenticator.Type.TOTP, {"secret": secret})
        store(user, Authenticator.Type.RECOVERY_CODES, {"seed": seed, "used_mask": 3})
        plain[user.pk] = (secret, seed)

    migration.seal(apps, None)
    for user in users:
        secret, _ = plain[user.pk]
        totp, recovery = stored(user, Authenticator.Type.TOTP), stored(user, Authenticator.Type.RECOVERY_CODES)
        assert account_secrets.is_sealed(totp["secret"]) and account_secrets.is_sealed(recovery["seed"])
        assert recovery["used_mask"] == 3
        client, response = second_step(user, totp_code(secret))
        assert response.status_code == 302 and signed_in(client)
    sealed_once = stored(users[0], Authenticator.Type.TOTP)
    migration.seal(apps, None)  # run again: what is sealed stays as it is
    assert stored(users[0], Authenticator.Type.TOTP) == sealed_once

    migration.unseal(apps, None)
    for user in users:
        secret, seed = plain[user.pk]
        assert stored(user, Authenticator.Type.TOTP) == {"secret": secret}
        assert stored(user, Authenticator.Type.RECOVERY_CODES) == {"seed": seed, "used_mask": 3}


def test_the_reverse_migration_changes_nothing_when_a_secret_does_not_open():
    migration = import_module("vouch.guard.migrations.0004_seal_mfa_secrets")
    apps = MigrationLoader(connection).project_state(("guard", "0004_seal_mfa_secrets")).apps
    one, two = make_user(), make_user()
    give_totp(one)
    give_totp(two)
    store(two, Authenticator.Type.TOTP, stored(one, Authenticator.Type.TOTP))
    before = stored(one, Authenticator.Type.TOTP)
    with pytest.raises(RuntimeError, match="Nothing was changed"):
        migration.unseal(apps, None)
    assert stored(one, Authenticator.Type.TOTP) == before


def test_pages_that_need_a_seed_that_does_not_open_send_to_the_2fa_page_and_2fa_can_be_set_up_again():
    """Showing or regenerating recovery codes with a seed copied from another user: the
    2FA page with a clear message (recorded), not a 500; removing the authenticator app
    and adding it again makes a working setup."""
    attacker, victim = make_user(), make_user()
    activate_totp(attacker)
    client, _, _ = activate_totp(victim)
    store(victim, Authenticator.Type.RECOVERY_CODES, stored(attacker, Authenticator.Type.RECOVERY_CODES))
    for path in ("/accounts/2fa/recovery-codes/", "/accounts/2fa/recovery-codes/generate/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/accounts/2fa/", path
        page = client.get("/accounts/2fa/")
        assert page.status_code == 200
        assert str(mfa.UNREADABLE_PAGE) in page.content.decode().replace("&#x27;", "'")
    assert len([e for e in integrity_events(victim) if "recovery_codes:seed" in e.target]) >= 2

    assert client.post("/accounts/2fa/totp/deactivate/").status_code == 302
    assert not Authenticator.objects.filter(user=victim).exists()  # the dangling codes went with it
    _, secret, codes = activate_totp(victim)
    client, response = second_step(victim, codes[0])
    assert response.status_code == 302 and signed_in(client)
