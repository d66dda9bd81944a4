"""The account secrets key (two-factor secrets, vouch.vault.account_secrets) and the
master key: ``vouch keys rotate-master`` re-wraps it before retiring the old version
(2FA keeps working with that version gone), ``vouch keys status`` shows it, and the
start-up check counts the master versions it needs."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal import auth as totp_auth

from tests.conftest import make_user
from tests.guard.b_helpers import give_totp
from tests.totp import current_code
from vouch.audit.models import EventAction, SecurityEvent
from vouch.cli import main
from vouch.guard.mfa_secrets import SecretUnreadable
from vouch.vault import account_secrets, checks, keyring, providers
from vouch.vault.errors import KeyConfigurationError
from vouch.vault.models import InstallationKey
from vouch.vault.rotation import rotate_master

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keys_dir")]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["keys", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def account_section(out: str) -> dict[str, str]:
    """The account secrets key section's "label  value" lines, by label."""
    lines = out.split("Account secrets key (", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return {line[2:15].strip(): line[15:] for line in lines}


def code_is_accepted(user, secret: str) -> bool:
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    return authenticator.wrap().validate_code(current_code(secret))


def test_rotate_master_rewraps_the_account_secrets_key_and_2fa_keeps_working(keys_dir):
    user = make_user()
    secret = give_totp(user)
    row = InstallationKey.objects.get()
    assert row.master_version == 1
    wrapped_before = bytes(row.wrapped)

    result = rotate_master()

    assert (result["master_version"], result["retired"], result["account_key"]) == (2, [1], "rewrapped")
    row.refresh_from_db()
    assert row.master_version == 2 and row.rewrapped_at is not None and bytes(row.wrapped) != wrapped_before
    assert not (keys_dir / "master-000001.key").exists()
    providers.reset()
    assert code_is_accepted(user, secret)  # the same key, now wrapped by version 2 only
    event = SecurityEvent.objects.filter(action=EventAction.KEYS_MASTER_ROTATED).latest("seq")
    assert event.details["accounts"] == "rewrapped"
    assert rotate_master()["account_key"] == "rewrapped"  # and again, to version 3


def test_an_account_secrets_key_that_does_not_unwrap_keeps_its_master_version():
    user = make_user()
    give_totp(user)
    InstallationKey.objects.update(wrapped=b"\0" * 60)
    result = rotate_master()
    assert result["account_key"] == "unreadable"
    assert result["retired"] == [] and result["still_used"] == {1: 1}
    assert SecurityEvent.objects.filter(
        action=EventAction.DATA_INTEGRITY_FAIL, target="installation-key:accounts:1"
    ).exists()
    # Codes are refused, never checked against anything else.
    with pytest.raises(SecretUnreadable):
        code_is_accepted(user, "JBSWY3DPEHPK3PXP")


def test_the_start_up_check_needs_the_master_version_of_the_account_secrets_key(keys_dir):
    give_totp(make_user())
    assert checks.problems() == []
    (keys_dir / "master-000001.key").rename(keys_dir / "elsewhere")
    providers.reset()
    assert any("Master key version(s) 1 are used" in problem for problem in checks.problems())


def test_a_lost_master_key_is_not_replaced_while_the_account_secrets_key_needs_it(keys_dir):
    """With no company yet, the account secrets key alone still needs its master key:
    Vouch refuses to make a new one (which would strand every two-factor secret)."""
    give_totp(make_user())
    (keys_dir / "master-000001.key").rename(keys_dir / "elsewhere")
    providers.reset()
    with pytest.raises(KeyConfigurationError, match="Restore the key directory"):
        keyring.ensure_master_key()
    assert providers.get_provider().versions() == []


def test_status_before_any_two_factor_secret(capsys):
    code, out, err = run(capsys, "status")
    assert code == 0, err
    section = account_section(out)
    assert section["key"].startswith("none yet")
    assert section["secrets"] == "0 sealed, 0 plain"


def test_status_shows_the_key_and_its_secrets_then_the_rotation(capsys):
    users = [make_user(), make_user()]
    for user in users:
        give_totp(user)
    code, out, err = run(capsys, "status")
    assert code == 0, err
    section = account_section(out)
    assert section["key version"] == "1"
    assert section["wrapped by"] == "master key version 1 (current)"
    assert section["opens"] == "yes"
    assert section["secrets"] == "2 sealed, 0 plain"
    master_row = next(line for line in out.splitlines() if line.startswith("1 "))
    assert master_row.split()[:3] == ["1", "current", "1"]  # it counts among the keys version 1 wraps

    code, out, err = run(capsys, "rotate-master", "--no-progress")
    assert code == 0, err
    assert "re-wrapped 0 company keys and the account secrets key in" in out
    code, out, _ = run(capsys, "status")
    assert account_section(out)["wrapped by"] == "master key version 2 (current)"


def test_status_reports_plain_secrets_and_a_key_that_does_not_open(capsys):
    user, other = make_user(), make_user()
    give_totp(user)
    give_totp(other)
    Authenticator.objects.filter(user=other).update(data={"secret": totp_auth.generate_totp_secret()})
    code, out, _ = run(capsys, "status")
    assert code == 1
    assert account_section(out)["secrets"] == "1 sealed, 1 plain"
    assert "PROBLEM: 1 two-factor secret(s) are stored in plain text" in out

    InstallationKey.objects.update(wrapped=b"\0" * 60)
    code, out, _ = run(capsys, "status")
    assert code == 1
    assert account_section(out)["opens"].startswith("NO: ")
    assert "PROBLEM: the account secrets key does not open" in out


def test_a_value_sealed_for_one_binding_does_not_open_for_another():
    sealed = account_secrets.seal("JBSWY3DPEHPK3PXP", b"mfa\x001\x00totp\x00secret")
    assert account_secrets.open_sealed(sealed, b"mfa\x001\x00totp\x00secret", what="t") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(account_secrets.UnreadableSecret):
        account_secrets.open_sealed(sealed, b"mfa\x002\x00totp\x00secret", what="t")
    assert account_secrets.key_version(sealed) == 1
