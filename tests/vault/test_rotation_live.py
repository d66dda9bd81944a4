"""Online company key rotation against the real server (two workers, P10): while
`vouch keys rotate-company` runs, run straight through or killed part-way and resumed,
a busy candidate list and an attachment keep answering, and no false tamper alarm is
raised. Each worker's key cache predates the new data key version when the rotation
starts; before the fix those workers answered 500 and recorded data_integrity_fail
for every value already re-encrypted, until their cache expired."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

from tests.live import VOUCH, cleanup, make_server
from tests.references.helpers import pdf_with
from tests.server import helpers

pytestmark = pytest.mark.server

# Short, so that each rotation's wait for other processes' caches stays short; long
# enough that both workers' caches predate the new version while rows are re-encrypted.
CACHE_SECONDS = 5
CANDIDATES = 150
PAGES = 3  # 50 candidates a page
LOADS_PER_SECOND = 10


@pytest.fixture(scope="module")
def server():
    live = make_server({"VOUCH_KEY_CACHE_SECONDS": str(CACHE_SECONDS)}, workers=2).start()
    yield live
    cleanup(live)


@pytest.fixture(scope="module")
def seeded(server) -> dict:
    """A company of 150 candidates, one with an attachment, and its owner signed in."""
    email = "rotation-owner@example.com"
    ids = helpers.create_member(server, email, "Rotation Hiring")
    cv = pdf_with(b"curriculum vitae " * 1000)  # small: it travels on a command line
    output = helpers.run_django(
        server,
        f"""
        import base64, json
        from django.core.files.uploadedfile import SimpleUploadedFile
        from vouch.references.services import add_attachment, create_candidate
        from vouch.core.context import company_context
        from vouch.tenancy.models import Company

        with company_context(Company.objects.get(pk="{ids["company_id"]}")):
            candidates = [
                create_candidate(f"Candidate {{i}}", f"candidate{{i}}@example.com", "07700 900123", f"Notes {{i}}")
                for i in range({CANDIDATES})
            ]
            cv = base64.b64decode("{base64.b64encode(cv).decode()}")
            attachment = add_attachment(candidates[0], SimpleUploadedFile("cv.pdf", cv))
        print(json.dumps({{"attachment": f"/candidates/{{candidates[0].pk}}/attachments/{{attachment.pk}}/"}}))
        """,
    )
    seed = json.loads(output.strip().splitlines()[-1])
    cookies = {"__Host-vouch_session": helpers.session_cookie(server, email)}
    return {**ids, **seed, "sha256": hashlib.sha256(cv).hexdigest(), "cookies": cookies}


class Load(threading.Thread):
    """Pages of the candidate list, and now and then the attachment, about ten a second,
    until stopped; counts the answers (a wrong body counts as "bad")."""

    def __init__(self, server, seeded: dict):
        super().__init__(daemon=True)
        self.server, self.seeded = server, seeded
        self.answers: Counter = Counter()
        self.failures: list[str] = []
        self.stopping = threading.Event()

    @property
    def done(self) -> int:
        return sum(self.answers.values())

    def run(self) -> None:
        step, next_at = 0, time.monotonic()
        while not self.stopping.is_set():
            self.answers[self._one(step)] += 1
            step += 1
            # Pacing (the load of the report), not waiting for a result.
            next_at += 1 / LOADS_PER_SECOND
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def _one(self, step: int) -> int | str:
        if step % 5 == 4:
            path = self.seeded["attachment"]
        else:
            path = f"/candidates/?page={step % PAGES + 1}"
        try:
            response = helpers.request(self.server, "GET", path, cookies=self.seeded["cookies"])
        except OSError as exc:
            self.failures.append(f"{path}: {exc!r}")
            return "error"
        if response.status != 200:
            self.failures.append(f"{path}: {response.status} {response.text[:200]}")
            return response.status
        if path == self.seeded["attachment"]:
            good = hashlib.sha256(response.body).hexdigest() == self.seeded["sha256"]
        else:
            good = len(re.findall(r"Candidate \d+", response.text)) == 50
        if not good:
            self.failures.append(f"{path}: wrong body")
            return "bad"
        return 200

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def _wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _integrity_events(server, company_id: str) -> int:
    out = helpers.run_django(
        server,
        f"""
        from vouch.audit.models import EventAction, SecurityEvent
        print(SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL, company_id="{company_id}").count())
        """,
    )
    return int(out.strip().splitlines()[-1])


def _busy(server, seeded: dict) -> Load:
    """The load running, with both workers' key caches warm (loaded before the rotation)."""
    load = Load(server, seeded)
    load.start()
    _wait_until(lambda: load.answers[200] >= 10 or load.failures, 60, "the first pages")
    assert not load.failures, load.failures
    return load


def _check(server, seeded: dict, load: Load, during: int) -> None:
    load.stop()
    assert load.answers == Counter({200: load.done}), (load.answers, load.failures[:5], server.log()[-3000:])
    assert during >= 20, f"only {during} pages were loaded while the rotation ran"
    assert _integrity_events(server, seeded["company_id"]) == 0


def test_a_rotation_run_straight_through_under_load(server, seeded):
    load = _busy(server, seeded)
    before = load.done
    try:
        result = server.vouch("keys", "rotate-company", seeded["company_id"], "--no-progress", check=False)
    finally:
        during = load.done - before
        load.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Destroyed data key version(s)" in result.stdout, result.stdout
    _check(server, seeded, load, during)


def test_a_rotation_killed_part_way_then_resumed_under_load(server, seeded):
    load = _busy(server, seeded)
    before = load.done
    progress: list[str] = []
    # Should the first pass be over before it is seen part way, the rotation waits at its
    # last step (old versions not yet destroyed) for as long as this file exists, so the
    # kill can never come after the end (it did once, on a loaded machine).
    pause_file = server.data_dir / "pause-rotation"
    pause_file.touch()
    rotation = subprocess.Popen(
        [str(VOUCH), "keys", "rotate-company", seeded["company_id"], "--batch", "10", "--progress"],
        env={**server.env, "VOUCH_TEST_PAUSE_AT": "rotation_before_destroy", "VOUCH_TEST_PAUSE_FILE": str(pause_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def read() -> None:
        while chunk := os.read(rotation.stderr.fileno(), 4096):
            progress.append(chunk.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def part_way() -> bool:
        # Killed once most candidates are re-encrypted (they come after the activity
        # log, and only the attachment's row and file after them; tqdm shows
        # "pass 1: ... 250/310"), or, should the pass be over by then, at the pause
        # before the old versions are destroyed: either way both versions are still in use.
        text = "".join(progress)
        found = re.findall(r"pass 1:.*?\| *(\d+)/(\d+)", text)
        paused = pause_file.with_name(pause_file.name + ".reached").exists()
        return paused or any(int(total) - CANDIDATES // 2 <= int(done) < int(total) for done, total in found)

    try:
        _wait_until(lambda: part_way() or rotation.poll() is not None, 60, "the rotation to get going")
        assert rotation.poll() is None, "".join(progress)[-2000:]
        rotation.send_signal(signal.SIGKILL)
        rotation.wait(timeout=30)
        pause_file.unlink()
        reader.join(timeout=10)
        # The half-rotated company is served for a while (both versions in use).
        killed_at = load.done
        _wait_until(lambda: load.done >= killed_at + 10, 30, "pages after the kill")
        result = server.vouch("keys", "rotate-company", seeded["company_id"], "--no-progress", check=False)
    finally:
        if rotation.poll() is None:
            rotation.kill()
            rotation.wait()
        during = load.done - before
        load.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(rotation resumed)" in result.stdout and "Destroyed data key version(s)" in result.stdout, result.stdout
    _check(server, seeded, load, during)
