"""Master keys that are missing, unreadable, malformed or open to others: Vouch
refuses to start (``vouch check`` and ``vouch serve`` exit non-zero) with a message
naming the problem and the path, instead of running without its keys or with keys
others can read. A good installation passes.

Each case runs the real command in its own process, on a copy of one installation
made by ``vouch setup`` with a company (so company keys wrapped by master key 1
exist). When the tests run as root, "unreadable" must not be defeated by root's
power to read any file: those commands run without the capabilities that bypass
file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), as any other user would."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.live import VOUCH, cleanup, make_server
from vouch.vault.providers import generate_key_text

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2

MAKE_COMPANY = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vouch.settings")
import django
django.setup()
from vouch.accounts.models import User
from vouch.tenancy.services import create_company
from vouch.vault.models import DataKey
create_company("Key Test Hiring", "eu", User.objects.create_user("owner@example.com", full_name="Owner"))
print(sorted(set(DataKey.objects.values_list("master_version", flat=True))))
"""


def _without_file_permission_override() -> None:
    """In the child before exec: drop the capabilities that let root ignore file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run(env: dict[str, str], *args: str, as_ordinary_user: bool = False) -> subprocess.CompletedProcess:
    preexec = _without_file_permission_override if as_ordinary_user and os.geteuid() == 0 else None
    return subprocess.run([str(VOUCH), *args], env=env, capture_output=True, text=True, timeout=120, preexec_fn=preexec)


@pytest.fixture(scope="module")
def installation():
    """One installation made by `vouch setup`, with a company whose keys need master
    key 1. Each test works on a copy of its data directory."""
    server = make_server()
    try:
        setup = server.vouch("setup")
        assert setup.returncode == 0, setup.stderr
        made = subprocess.run(
            [str(Path(VOUCH).with_name("python")), "-c", MAKE_COMPANY],
            env=server.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip() == "[1]"
        assert (server.data_dir / "keys" / "master-000001.key").exists()
        yield server
    finally:
        cleanup(server)


@pytest.fixture
def install(installation, tmp_path):
    """A copy of the installation: (data directory, environment)."""
    data = tmp_path / "data"
    shutil.copytree(installation.data_dir, data, symlinks=True)
    env = {**installation.env, "VOUCH_DATA_DIR": str(data)}
    return data, env


def refused(result: subprocess.CompletedProcess, *expected: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output  # a clear message, not a crash
    for text in expected:
        assert text in output, f"{text!r} not in:\n{output}"
    return output


def test_a_good_installation_passes(install):
    data, env = install
    result = run(env, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    # Still passes when the key directory is read as an ordinary user: the modes
    # Vouch sets are enough for its own account.
    assert run(env, "check", as_ordinary_user=True).returncode == 0


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o707])
def test_key_directory_open_to_others_is_refused(install, mode):
    data, env = install
    keys = data / "keys"
    keys.chmod(mode)
    refused(run(env, "check"), str(keys), f"mode {mode:04o}", f"chmod 0700 {keys}")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_key_file_open_to_others_is_refused(install, mode):
    data, env = install
    key = data / "keys" / "master-000001.key"
    key.chmod(mode)
    refused(run(env, "check"), str(key), f"mode {mode:04o}", f"chmod 0600 {key}")


def test_serve_refuses_to_start_with_a_key_open_to_others(install):
    data, env = install
    key = data / "keys" / "master-000001.key"
    key.chmod(0o644)
    result = run(env, "serve")
    refused(result, "Vouch refuses to start", str(key), "mode 0644")
    assert not (data / "server.log").exists()


def test_unreadable_key_file_is_refused(install):
    data, env = install
    key = data / "keys" / "master-000001.key"
    key.chmod(0o000)
    refused(run(env, "check", as_ordinary_user=True), "Cannot read master key", str(key), "Permission denied")
    refused(run(env, "serve", as_ordinary_user=True), "Vouch refuses to start", str(key))


def test_unreadable_key_directory_is_refused(install):
    """On a separate key volume (VOUCH_KEYS_DIR, as the deploy check recommends) whose
    directory Vouch's account cannot list."""
    data, env = install
    keys = data.with_name("key-volume")
    shutil.copytree(data / "keys", keys)
    env = {**env, "VOUCH_KEYS_DIR": str(keys)}
    assert run(env, "check", as_ordinary_user=True).returncode == 0
    keys.chmod(0o000)
    try:
        refused(run(env, "check", as_ordinary_user=True), str(keys), "Permission denied")
    finally:
        keys.chmod(0o700)


def test_key_file_replaced_by_a_directory_is_refused(install):
    data, env = install
    key = data / "keys" / "master-000001.key"
    key.unlink()
    key.mkdir(mode=0o700)
    refused(run(env, "check"), "Cannot read master key", str(key))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("QUFBQ\n", "is not base64"),
        ("not a key at all!\n", "must hold a 256-bit key"),
        ("c2hvcnQ\n", "must hold a 256-bit key, found 40 bits"),
        ("", "must hold a 256-bit key, found 0 bits"),
        ("QUFB" * 20 + "\n", "must hold a 256-bit key"),
    ],
    ids=["not base64", "text", "short", "empty", "long"],
)
def test_malformed_key_file_is_refused(install, content, problem):
    data, env = install
    key = data / "keys" / "master-000001.key"
    key.write_text(content)
    refused(run(env, "check"), str(key), problem)


def test_missing_master_key_that_company_keys_need_is_refused(install):
    data, env = install
    keys = data / "keys"
    (keys / "master-000001.key").unlink()
    output = refused(run(env, "check"), "Master key version(s) 1", str(keys), "Restore")
    assert "missing" in output
    refused(run(env, "serve"), "Vouch refuses to start", "Master key version(s) 1")
    # Nor does `vouch setup` quietly make a new master key 1 that would strand them.
    output = refused(run(env, "setup"), "No master key found", str(keys))
    assert not (keys / "master-000001.key").exists()


def test_retired_master_key_that_company_keys_still_need_is_refused(install):
    data, env = install
    key = data / "keys" / "master-000001.key"
    key.rename(key.with_name(key.name + ".retired"))
    refused(run(env, "check"), "Master key version(s) 1", str(data / "keys"))


def test_master_key_replaced_by_another_key_is_refused(install):
    """A well-formed key under the right name that is not the key the company keys
    were wrapped with (a restore from another installation's backup)."""
    data, env = install
    key = data / "keys" / "master-000001.key"
    key.write_text(generate_key_text() + "\n")
    refused(run(env, "check"), "Master key version(s) 1", str(data / "keys"), "replaced")
    refused(run(env, "serve"), "Vouch refuses to start", "replaced")
    refused(run(env_provider(env, f"1:{generate_key_text()}"), "check"), "VOUCH_MASTER_KEYS", "replaced")


def test_missing_key_directory_with_company_keys_is_refused(install):
    data, env = install
    shutil.rmtree(data / "keys")
    refused(run(env, "check"), "Master key version(s) 1", str(data / "keys"))


# --- Master keys from the environment ------------------------------------------------


def env_provider(env: dict[str, str], value: str) -> dict[str, str]:
    return {**env, "VOUCH_KEY_PROVIDER": "env", "VOUCH_MASTER_KEYS": value}


def test_environment_keys_matching_the_file_pass(install):
    data, env = install
    text = (data / "keys" / "master-000001.key").read_text().strip()
    shutil.rmtree(data / "keys")  # the environment is the only source now
    result = run(env_provider(env, f"1:{text}"), "check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("nonsense", "VOUCH_MASTER_KEYS item 1 must look like '1:<base64 key>'"),
        ("one:QUFB", "VOUCH_MASTER_KEYS item 1 must look like '1:<base64 key>'"),
        ("1:QUFB", "VOUCH_MASTER_KEYS version 1 must hold a 256-bit key"),
        ("1:not base64!", "VOUCH_MASTER_KEYS version 1 is not base64"),
        ("1:", "VOUCH_MASTER_KEYS version 1 must hold a 256-bit key, found 0 bits"),
        ("", "Master key version(s) 1"),
        ("2:" + "A" * 43, "Master key version(s) 1"),
    ],
    ids=["no version", "version not a number", "short key", "not base64", "empty key", "unset", "other version only"],
)
def test_malformed_or_incomplete_environment_keys_are_refused(install, value, problem):
    data, env = install
    output = refused(run(env_provider(env, value), "check"), problem)
    assert "VOUCH_MASTER_KEYS" in output


def test_serve_refuses_to_start_with_malformed_environment_keys(install):
    data, env = install
    refused(run(env_provider(env, "1:QUFB"), "serve"), "Vouch refuses to start", "VOUCH_MASTER_KEYS version 1")


def test_unreadable_secret_key_file_is_refused(install):
    """The Django secret key lives beside the master keys on the embedded default."""
    data, env = install
    secret = data / "keys" / "secret_key"
    secret.chmod(0o000)
    refused(
        run(env, "check", as_ordinary_user=True), "cannot read its secret key file", str(secret), "Permission denied"
    )
