"""Django's Redis cache, made to behave when Redis is down or paused.

Every call has the short connect and read timeouts of the settings
(VOUCH_REDIS_CONNECT_TIMEOUT, VOUCH_REDIS_TIMEOUT). After a failure, Redis is left
alone for VOUCH_REDIS_RETRY_SECONDS in this process (a small circuit breaker,
hand-written: Django's backend has none), so a paused Redis costs one timeout per
process and retry period, not one per cache call of every request.

While Redis is out:

- reads (get, get_many, has_key) are misses: cached data is only ever a copy;
- set, delete and touch are skipped; the keys they named are deleted once Redis answers
  again, so a copy written before the outage (a session ended meanwhile) is not served;
- add and incr, which count and hold (throttles, allowances), raise
  :class:`CacheUnavailable`: what they protect fails closed, with the 503 page;
- with OPTIONS ``STRICT``, reads raise too (the brute-force throttle's alias: a miss
  there would let guesses through).
"""

from __future__ import annotations

import threading
import time

import redis.exceptions
import structlog
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

log = structlog.get_logger("vouch.redis")

FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
PENDING_LIMIT = 10_000  # keys to delete on recovery, per process


class CacheUnavailable(redis.exceptions.ConnectionError):
    """Redis did not answer (now, or a moment ago): the caller must not go on as if it had."""


class _State:
    """One per Redis location and process, shared by the aliases that use it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_until = 0.0
        self.pending: set[str] = set()


_STATES: dict[str, _State] = {}
_STATES_LOCK = threading.Lock()


def _state(location: str) -> _State:
    with _STATES_LOCK:
        return _STATES.setdefault(location, _State())


class ResilientRedisCache(RedisCache):
    def __init__(self, server, params):
        options = dict(params.get("OPTIONS") or {})
        self._strict = bool(options.pop("STRICT", False))
        self._retry_seconds = float(options.pop("RETRY_SECONDS", 2))
        super().__init__(server, {**params, "OPTIONS": options})
        self._state = _state(server if isinstance(server, str) else ",".join(server))

    # -- the breaker ----------------------------------------------------------------

    def _run(self, operation, *args, **kwargs):
        state = self._state
        if time.monotonic() < state.down_until:
            raise CacheUnavailable("Redis is not answering (retrying shortly)")
        try:
            if state.pending:
                # Before anything is read: a copy the outage kept must not be served first.
                self._replay()
            return operation(*args, **kwargs)
        except FAILURES as exc:
            with state.lock:
                opened = time.monotonic() >= state.down_until
                state.down_until = time.monotonic() + self._retry_seconds
            if opened:
                # Once per outage and retry period, with the request id of the request that met it.
                log.warning("redis_unavailable", error=f"{type(exc).__name__}: {exc}", retry_s=self._retry_seconds)
            raise CacheUnavailable(str(exc)) from exc

    def _replay(self) -> None:
        with self._state.lock:
            keys, self._state.pending = list(self._state.pending), set()
        try:
            self._cache.delete_many(keys)  # type: ignore[attr-defined]  # Django's RedisCache has _cache; its stubs do not
        except FAILURES:
            with self._state.lock:
                self._state.pending.update(keys)
            raise
        log.info("redis_recovered", stale_keys_deleted=len(keys))

    def _remember(self, keys) -> None:
        with self._state.lock:
            if len(self._state.pending) < PENDING_LIMIT:
                self._state.pending.update(keys)

    def _read(self, operation, default, *args, **kwargs):
        if self._strict:
            return self._run(operation, *args, **kwargs)
        try:
            return self._run(operation, *args, **kwargs)
        except CacheUnavailable:
            return default

    def _write(self, keys, operation, *args, **kwargs):
        try:
            return self._run(operation, *args, **kwargs)
        except CacheUnavailable:
            if self._strict:
                raise
            self._remember(keys)
            return False

    # -- Django's cache API ---------------------------------------------------------

    def get(self, key, default=None, version=None):
        return self._read(super().get, default, key, default, version)

    def get_many(self, keys, version=None):
        return self._read(super().get_many, {}, keys, version)

    def has_key(self, key, version=None):
        return self._read(super().has_key, False, key, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._write([self.make_and_validate_key(key, version=version)], super().set, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        keys = [self.make_and_validate_key(key, version=version) for key in data]
        result = self._write(keys, super().set_many, data, timeout, version)
        return [] if result is False else result

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._write([self.make_and_validate_key(key, version=version)], super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._write([self.make_and_validate_key(key, version=version)], super().delete, key, version)

    def delete_many(self, keys, version=None):
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        return self._write(made, super().delete_many, keys, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._run(super().add, key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        return self._run(super().incr, key, delta, version)

    def clear(self):
        return self._run(super().clear)
