"""Priority for requests in good standing (P3, docs/security/limits.md#priority-under-a-flood).

A server process runs its requests' Python one thread at a time (the GIL): while a flood
keeps its threads busy, a member's request shares the interpreter with every other
request running in that process, and takes that many times longer. Refusing most of the
flood does not help much: a closed-loop flood sends its next request as soon as the 429
comes back.

So, per server process, requests of **low priority** pass through a :class:`Gate` that
lets at most ``VOUCH_LOW_PRIORITY_AT_ONCE`` (1) of them run at once; the others wait
there, in a lock that does not hold the GIL. Low priority: every request of someone not signed in
(the sign-in pages, private links), and those of an account that was refused for sending
more requests at once than a person's browser does (:class:`Standing`), for ten seconds
after, recognised by their session before it is read. A signed-in member at a person's
pace is never gated: their request runs beside at most one of the flood's, not beside
all of them.

Nobody is refused by the gate: a request that waited ``VOUCH_LOW_PRIORITY_WAIT_MS``
(250 ms) runs anyway. Low-priority requests in progress, waiting or running, are capped by
the in-flight caps as before (``VOUCH_ANONYMOUS_IN_FLIGHT``); the gate only orders
them. The price: when a low-priority request is slow (a candidate's data export from a
private link), the other low-priority requests in that process wait for it, at most that
quarter of a second each, before they run beside it."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from vouch.shield import limits

STANDING_SECONDS = limits.BURST_WINDOW  # how long an account that flooded stays low priority
MAX_FLAGGED = 10_000  # accounts remembered per process before the oldest are forgotten


class Gate:
    """At most ``at_once`` holders at a time; the others wait (see the module)."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.running = 0

    @contextmanager
    def turn(self, at_once: int, wait_seconds: float) -> Iterator[bool]:
        """Run the block in a turn; yields False when it waited ``wait_seconds`` in vain
        and runs beside the others anyway. ``at_once`` 0: no gate."""
        if at_once <= 0:
            yield True
            return
        waited_in_vain = False
        with self.condition:
            if self.running >= at_once:
                deadline = time.monotonic() + wait_seconds
                while self.running >= at_once:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        waited_in_vain = True
                        break
                    self.condition.wait(left)
            self.running += 1
        try:
            yield not waited_in_vain
        finally:
            with self.condition:
                self.running -= 1
                self.condition.notify()


class Standing:
    """Accounts that lost their standing in this process (refused for too many requests
    at once), each until a moment of the limits' clock (:func:`vouch.shield.limits.now`),
    and the sessions they were refused on: a request on such a session is known to be of
    low priority before its session is even read."""

    def __init__(self) -> None:
        self.until: dict[str, float] = {}
        self.lock = threading.Lock()

    def lose(self, account: str, session: str | None = None) -> None:
        moment = limits.now()
        end = moment + STANDING_SECONDS
        with self.lock:
            if len(self.until) >= MAX_FLAGGED:
                self.until = {key: until for key, until in self.until.items() if until > moment}
                if len(self.until) >= MAX_FLAGGED:  # all current: the oldest go
                    self.until = dict(sorted(self.until.items(), key=lambda item: item[1])[MAX_FLAGGED // 2 :])
            self.until["u:" + account] = end
            if session:
                self.until[_session_key(session)] = end

    def good(self, account: str) -> bool:
        end = self.until.get("u:" + account)
        return end is None or end <= limits.now()

    def good_session(self, session: str) -> bool:
        if not self.until:  # every signed-in request asks: no digest while nobody flooded
            return True
        end = self.until.get(_session_key(session))
        return end is None or end <= limits.now()

    def reset(self) -> None:
        with self.lock:
            self.until = {}


def _session_key(session: str) -> str:
    # A digest, not the cookie: this process's memory keeps no usable session key.
    return "s:" + hashlib.blake2b(session.encode(), digest_size=16).hexdigest()


# One of each per server process.
gate = Gate()
standing = Standing()
