"""A full disk, for real: the server's data directory on a small tmpfs, filled with a file.

Writes that cannot be stored get a clear 503 with Retry-After (sign-up too, which
answered a misleading 429: allauth's rate limit read the failed cache write as a taken
lock), the log says the disk is full, /healthz names the storage; security events that
could not be written are counted and recorded once space returns, and the server
recovers by itself when the filler is deleted.

Runs the embedded default (SQLite, database cache) on both CI passes: that is what keeps
its data in the data directory."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.live import make_server
from tests.server import helpers

SIZE_MB = 24
STORAGE_FULL_TEXT = "Vouch cannot save right now: its storage is full."


def _mount_tmpfs(target: Path, size_mb: int = SIZE_MB) -> str | None:
    """Mount a small tmpfs on ``target``; the reason it could not be, or None."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if result.returncode == 0 else f"mount -t tmpfs failed: {result.stderr.strip()}"


@pytest.fixture(scope="module")
def disk():
    """A live server whose data directory is a small filesystem of its own."""
    mount_point = Path(tempfile.mkdtemp(prefix="vouch-disk-"))
    reason = _mount_tmpfs(mount_point)
    if reason:
        mount_point.rmdir()
        message = f"the full-disk test needs a filesystem of its own: {reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # never silently skipped in CI
        pytest.skip(message)
    log_dir = Path(tempfile.mkdtemp(prefix="vouch-disk-log-"))
    data_dir = mount_point / "data"
    data_dir.mkdir()
    # Without the mirror: Litestream holds a read transaction on every database, which
    # keeps _truncate_journals' checkpoint from emptying the WAL. A full mirror target is
    # tested in tests/backups/test_mirror_faults.py.
    server = make_server(data_dir=data_dir, services=False, extra_env={"VOUCH_SERVE_MIRROR": "0"})
    server.log_file = log_dir / "server.log"  # outside: a full disk must not silence the log
    try:
        server.start()
        tag = uuid.uuid4().hex[:8]
        member = {"email": f"disk-{tag}@example.com", "company": f"Disk Company {tag}"}
        member.update(helpers.create_member(server, member["email"], member["company"]))
        yield server, member
    finally:
        server.stop()
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        shutil.rmtree(mount_point, ignore_errors=True)
        shutil.rmtree(log_dir, ignore_errors=True)


def _truncate_journals(data_dir: Path) -> None:
    """SQLite's WAL files keep their size after a checkpoint, so on a real full disk some
    small writes still fit in them and others do not. Empty them first, so that every
    write in the test needs new space and its outcome does not depend on that slack."""
    for database in data_dir.rglob("*.sqlite3"):
        connection = sqlite3.connect(database, timeout=10)
        try:
            deadline = time.monotonic() + 10
            while connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0:
                assert time.monotonic() < deadline, f"could not checkpoint {database}"
                time.sleep(0.05)
        finally:
            connection.close()


def _fill(path: Path) -> None:
    """Write ``path`` until the filesystem has no room left."""
    with path.open("wb", buffering=0) as filler:
        for chunk in (1024 * 1024, 64 * 1024, 4096, 1):
            block = b"\0" * chunk
            while True:
                try:
                    filler.write(block)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    break


def _signup_fields(token: str, tag: str) -> dict[str, str]:
    return {
        "csrfmiddlewaretoken": token,
        "full_name": "Disk Founder",
        "email": f"founder-{tag}@example.com",
        "company_name": f"Founded {tag}",
        "region": "eu",
        "password1": helpers.PASSWORD,
        "password2": helpers.PASSWORD,
    }


def _age_session(server, key: str) -> None:
    helpers.run_django(
        server,
        f"""
        import time
        from importlib import import_module
        from django.conf import settings
        from vouch.guard.session_lifetime import SEEN_AT, SEEN_RESOLUTION
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key={key!r})
        store[SEEN_AT] = int(time.time()) - 2 * SEEN_RESOLUTION
        store.save()
        """,
    )


def _health(server) -> tuple[int, dict]:
    response = helpers.request(server, "GET", "/healthz")
    return response.status, json.loads(response.text)


def _assert_storage_full_page(response: helpers.Response, what: str) -> None:
    assert response.status == 503, f"{what} gave {response.status}: {response.text[:300]}"
    assert STORAGE_FULL_TEXT in response.text, what
    assert "Nothing you already saved is lost" in response.text
    assert response.header("Retry-After") and int(response.header("Retry-After")) > 0


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_full_disk_answers_503_says_so_and_recovers_with_the_events_counted(disk):
    server, member = disk
    session = helpers.session_cookie(server, member["email"])
    signed_in = {"__Host-vouch_session": session}
    csrf_cookie, signup_token, _ = helpers.csrf_form(server, "/accounts/signup/")
    page = helpers.request(server, "GET", "/company/settings/", cookies=signed_in)
    assert page.status == 200
    settings_csrf = page.cookies().get("__Host-csrftoken")
    settings_cookies = {**signed_in, "__Host-csrftoken": settings_csrf.value if settings_csrf else csrf_cookie}
    settings_form_token = helpers._CSRF_INPUT.search(page.text).group(1)
    assert _health(server)[0] == 200
    # The dashboard reads the company's database: opened now, as a running server has its
    # companies' databases open. Opening one for the first time on a full disk cannot set
    # up its journal, and that request gets the same clear 503 page.
    assert helpers.request(server, "GET", "/dashboard/", cookies=signed_in).status == 200

    # Its "last seen" is due for a refresh: a write a page that only reads still does.
    _age_session(server, session)
    _truncate_journals(server.data_dir)
    filler = server.data_dir.parent / "filler"
    _fill(filler)
    try:
        # Sign-up: a clear 503, not "too many requests".
        signup = helpers.post_form(
            server,
            "/accounts/signup/",
            _signup_fields(signup_token, uuid.uuid4().hex[:8]),
            cookies={"__Host-csrftoken": csrf_cookie},
        )
        _assert_storage_full_page(signup, "sign-up on a full disk")
        # A signed-in write.
        rename = helpers.post_form(
            server,
            "/company/settings/",
            {"csrfmiddlewaretoken": settings_form_token, "name": "Renamed On A Full Disk"},
            cookies=settings_cookies,
        )
        _assert_storage_full_page(rename, "saving company settings on a full disk")
        # Pages that only read still work; signing in needs writes and is the same 503.
        dashboard = helpers.request(server, "GET", "/dashboard/", cookies=signed_in)
        assert dashboard.status == 200, dashboard.text[:300]
        _assert_storage_full_page(helpers.login(server, member["email"]), "signing in on a full disk")
        # /healthz names the storage.
        status, body = _health(server)
        assert status == 503 and body["checks"]["storage"] == "full", body
        # Refused forms (no CSRF token) are still refused with their 403; their security
        # events cannot be written, so they are counted.
        for _ in range(3):
            forged = helpers.post_form(server, "/accounts/login/", {"login": "x@example.com"}, cookies={})
            assert forged.status == 403
        # The log says the disk is full, naming a refused request, without a traceback per request.
        refused_ids = {signup.header("X-Request-ID"), rename.header("X-Request-ID")}
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        full_lines = [line for line in lines if line.get("event") == "storage_full"]
        assert full_lines, server.log()[-3000:]
        assert full_lines[0]["request_id"] in refused_ids
        assert "disk is full" in full_lines[0]["message"]
        assert not [line for line in lines if line.get("logger") == "django.request" and line.get("level") == "error"]
    finally:
        filler.unlink()

    # Space is back: the server recovers by itself, and the counted events are recorded.
    _wait_for(lambda: _health(server)[0] == 200, 30, "/healthz to answer 200 again")
    output = helpers.run_django(
        server,
        """
        import json
        from vouch.audit.models import SecurityEvent
        print(json.dumps([e.details for e in SecurityEvent.objects.filter(action="audit_events_not_recorded")]))
        """,
    )
    recorded = json.loads(output.strip().splitlines()[-1])
    assert len(recorded) == 1, recorded
    assert recorded[0]["not_recorded"] == 3, recorded
    assert "authz_fail:blocked=3" in recorded[0]["actions"]
    assert recorded[0]["reason"] == "storage_full"

    renamed = helpers.post_form(
        server,
        "/company/settings/",
        {"csrfmiddlewaretoken": settings_form_token, "name": "Renamed After"},
        cookies=settings_cookies,
    )
    assert renamed.status == 302, renamed.text[:300]
    signup = helpers.post_form(
        server,
        "/accounts/signup/",
        _signup_fields(signup_token, uuid.uuid4().hex[:8]),
        cookies={"__Host-csrftoken": csrf_cookie},
    )
    assert signup.status == 302, signup.text[:300]
