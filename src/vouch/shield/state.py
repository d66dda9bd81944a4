"""Scores and blocks: where intrusion detection keeps what it knows, and how a block is
checked on every request for the cost of a dictionary lookup.

**Scores** decay: each detection adds its weight to the score of its source (the client's
address and its network, IPv4 /24 or IPv6 /64; or, for a signed-in person, their account),
after the old score has halved for every ``HALF_LIFE`` seconds since it last moved. Past
``THRESHOLD[scope]`` the source is blocked. They live in the cache alias "shield" (Redis in
production; on the embedded default a database cache table of its own, so a flood of
scores cannot cull the sign-in throttle's counters), each under a key that expires with the
score. Memory stays bounded under a flood from millions of addresses: at most
``NEW_SOURCES_PER_MINUTE`` sources start a score in any minute (a cache counter); past it,
a detection strong enough to block on its own still blocks, and weaker ones count only
towards their network. So the score keys number at most that budget times the minutes a
score lives (``SCORE_TTL``), about 75,000 keys (a few MB) at the defaults.

**Blocks** escalate: the first lasts a minute, then 10 minutes, an hour, a day
(``DURATIONS``); a source's level is remembered for a day after its block ends. Every
block is in one table (a dict in one cache key, at most ``MAX_BLOCKS`` entries, the ones
ending soonest dropped first when full), and each server process keeps a copy it re-reads
at most once every ``REFRESH_SECONDS``: the check on every request is a lookup in that copy,
and a block reaches every process within a second. Changes to the table are made under a
short cache lock; a change that loses the race is still in force in its own process and is
written by the next change (a lost block re-forms from its score)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.utils.connection import ConnectionProxy

log = logging.getLogger("vouch.shield")

cache = ConnectionProxy(caches, "shield")

ADDRESS, NETWORK, ACCOUNT = "address", "network", "account"
CODES = {ADDRESS: "i", NETWORK: "n", ACCOUNT: "u"}  # short, distinct key parts
# Detections a source may make before it is blocked. A network holds many people, so it
# takes several addresses' worth; an account is a known person, so it gets more room.
THRESHOLD = {ADDRESS: 10.0, NETWORK: 30.0, ACCOUNT: 20.0}
HALF_LIFE = 300.0  # seconds for a score to halve
SCORE_TTL = 900  # a score untouched this long has decayed below an eighth: forgotten
NEW_SOURCES_PER_MINUTE = 5000
DURATIONS = (60, 600, 3600, 86400)
LEVEL_MEMORY = 86400  # a source's escalation level is kept this long after its block
MAX_BLOCKS = 10_000
REFRESH_SECONDS = 1.0
TABLE_KEY = "sh:blocks"
VERSION_KEY = "sh:blocks:v"
LOCK_KEY = "sh:blocks:lock"


def now() -> float:
    """Detection's clock (tests replace it)."""
    return time.time()


@dataclass(frozen=True, slots=True)
class Block:
    scope: str
    source: str
    until: float
    level: int
    reason: str  # the detection point that tipped it

    def retry_after(self, moment: float) -> int:
        return max(1, math.ceil(self.until - moment))


# -- scores ---------------------------------------------------------------------------


@functools.cache
def _key_secret() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"vouch.shield cache keys", hashlib.sha256).digest()


def blind(text: str) -> str:
    """A keyed hash of an address, a network or an account id, for cache keys: on the
    embedded default the cache is a table in the control database, and a client's address
    is personal data that must not rest there in the clear (the block table, which operators
    read, is the exception: it is a security record, like the events' addresses)."""
    return hmac.new(_key_secret(), text.encode(), hashlib.sha256).hexdigest()[:24]


def _score_key(scope: str, source: str) -> str:
    return f"sh:s:{CODES[scope]}:{blind(source)}"


def add_score(scope: str, source: str, weight: float, moment: float) -> float:
    """Add ``weight`` to the decayed score of ``source`` and return the new score. A source
    with no score yet starts one only while the minute's budget of new sources lasts;
    past it the weight alone is returned (not kept)."""
    key = _score_key(scope, source)
    held = cache.get(key)
    if held is None:
        if not _take_new_source(moment):
            return weight
        score = weight
    else:
        old, at = held
        score = old * 0.5 ** (max(0.0, moment - at) / HALF_LIFE) + weight
    cache.set(key, (score, moment), SCORE_TTL)
    return score


def score_of(scope: str, source: str, moment: float) -> float:
    held = cache.get(_score_key(scope, source))
    if held is None:
        return 0.0
    old, at = held
    return old * 0.5 ** (max(0.0, moment - at) / HALF_LIFE)


def _take_new_source(moment: float) -> bool:
    key = f"sh:new:{int(moment // 60)}"
    try:
        taken = cache.incr(key)
    except ValueError:
        taken = 1 if cache.add(key, 1, 120) else cache.incr(key)
    return taken <= NEW_SOURCES_PER_MINUTE


# -- blocks ---------------------------------------------------------------------------


def _entry_key(scope: str, source: str) -> str:
    return f"{CODES[scope]}|{source}"


_SCOPES = {code: scope for scope, code in CODES.items()}
# The table as stored: "i|198.51.100.7" -> (until, level, reason). Plain tuples, not Block
# objects: 10,000 of them unpickle in a few milliseconds.
Entries = dict[str, tuple[float, int, str]]


def _block_of(key: str, entry: tuple[float, int, str]) -> Block:
    scope, source = key.split("|", 1)
    return Block(scope=_SCOPES[scope], source=source, until=entry[0], level=entry[1], reason=entry[2])


class _Table:
    """This process's copy of the block table. Once a second it reads the table's version
    (a small cache read); the table itself only when the version moved."""

    def __init__(self) -> None:
        self.entries: Entries = {}
        self.has_accounts = False  # any account blocks: only then is a session read for them
        self.version: object = None
        self.read_at = -math.inf
        self.lock = threading.Lock()

    def current(self, moment: float) -> Entries:
        if moment - self.read_at >= REFRESH_SECONDS:
            with self.lock:
                if moment - self.read_at >= REFRESH_SECONDS:
                    self.read_at = moment
                    try:
                        version = cache.get(VERSION_KEY)
                        if version is None or version != self.version:
                            self.set(cache.get(TABLE_KEY) or {}, version)
                    except Exception:  # the cache is out: keep enforcing what is known
                        log.warning("shield: could not read the block table; keeping the last copy")
        return self.entries

    def set(self, entries: Entries, version: object) -> None:
        self.has_accounts = any(key.startswith("u|") for key in entries)
        self.entries, self.version = entries, version

    def forget(self) -> None:
        """Drop this process's copy (tests; a lifted block takes effect at once here)."""
        self.read_at = -math.inf
        self.set({}, None)


table = _Table()


def blocks_for(moment: float, *keys: tuple[str, str]) -> Block | None:
    """The block in force on any of ``keys`` ((scope, source) pairs), the longest."""
    entries = table.current(moment)
    if not entries:
        return None
    found: tuple[str, tuple[float, int, str]] | None = None
    for scope, source in keys:
        key = _entry_key(scope, source)
        entry = entries.get(key)
        if entry is not None and entry[0] > moment and (found is None or entry[0] > found[1][0]):
            found = (key, entry)
    return _block_of(*found) if found is not None else None


def has_account_blocks(moment: float) -> bool:
    table.current(moment)
    return table.has_accounts


def active_blocks(moment: float) -> list[Block]:
    """Every block in force, read fresh from the cache (the operators' page)."""
    entries: Entries = cache.get(TABLE_KEY) or {}
    blocks = [_block_of(key, entry) for key, entry in entries.items() if entry[0] > moment]
    return sorted(blocks, key=lambda b: -b.until)


def _level_key(scope: str, source: str) -> str:
    return f"sh:l:{CODES[scope]}:{blind(source)}"


def block(scope: str, source: str, reason: str, moment: float) -> Block:
    """Block ``source`` for the next duration of its escalation, and return the block."""
    level_key = _level_key(scope, source)
    level = min(int(cache.get(level_key) or 0) + 1, len(DURATIONS))
    duration = DURATIONS[level - 1]
    entry = Block(scope=scope, source=source, until=moment + duration, level=level, reason=reason)
    cache.set(level_key, level, duration + LEVEL_MEMORY)
    _change_table(moment, put=entry)
    # The score starts again from nothing: the block is the answer to what it counted.
    cache.delete(_score_key(scope, source))
    return entry


def lift(scope: str, source: str, moment: float) -> bool:
    """End a block now (an operator's decision); its level is forgotten too."""
    cache.delete(_level_key(scope, source))
    return _change_table(moment, remove=(scope, source))


def _change_table(moment: float, *, put: Block | None = None, remove: tuple[str, str] | None = None) -> bool:
    locked = False
    for _ in range(20):  # up to ~0.2 s: changes are rare and quick
        if cache.add(LOCK_KEY, 1, 5):
            locked = True
            break
        time.sleep(0.01)
    try:
        stored: Entries = cache.get(TABLE_KEY) or {}
        entries = {key: entry for key, entry in stored.items() if entry[0] > moment}
        changed = False
        if put is not None:
            entries[_entry_key(put.scope, put.source)] = (put.until, put.level, put.reason)
            changed = True
            if len(entries) > MAX_BLOCKS:
                for key, _ in sorted(entries.items(), key=lambda item: item[1][0])[: len(entries) - MAX_BLOCKS]:
                    del entries[key]
        if remove is not None:
            changed = entries.pop(_entry_key(*remove), None) is not None
        version = time.time_ns()
        cache.set_many({TABLE_KEY: entries, VERSION_KEY: version}, DURATIONS[-1] + 60)
    finally:
        if locked:
            cache.delete(LOCK_KEY)
    # In force in this process at once.
    table.set(entries, version)
    table.read_at = moment
    return changed


def network_of_text(address: str) -> str | None:
    """The /24 or /64 of an address given as text, without building a network object for
    IPv4 (this runs on every request while any block is in force)."""
    if address.count(".") == 3 and ":" not in address:
        return address.rsplit(".", 1)[0] + ".0/24"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return network_of_text(str(parsed.ipv4_mapped))
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
