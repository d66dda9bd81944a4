"""PostgreSQL's own mirroring, checked: streaming replication (``pg_stat_replication``)
and WAL archiving with pgBackRest (``pg_stat_archiver``), on the control database's
server and on each region's company database server.

Vouch does not run these (docs/postgresql.md sets them up step by step); it reads what
each primary says about its standbys and its archiver, for /healthz, ``vouch backup
status`` and the operators' page. For /healthz the readings are kept a few seconds
and refreshed in the background, so a load balancer polling it neither opens a
connection to every server each time nor waits for a server that stopped answering.

What counts as healthy is configuration: VOUCH_PG_STANDBYS (streaming standbys each
server must have), VOUCH_PG_ARCHIVING (required or optional) and VOUCH_PG_MAX_LAG_SECONDS
(replay lag, and how long a finished WAL segment may wait for the archive)."""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass, field

import structlog
from django.conf import settings

from vouch import regions
from vouch.config import DatabaseURL, parse_database_url

log = structlog.get_logger(__name__)

CACHE_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 3
STATEMENT_TIMEOUT = "3s"


@dataclass(frozen=True)
class Server:
    """One PostgreSQL server and what Vouch keeps on it ("control", "region eu", ...)."""

    labels: tuple[str, ...]
    url: DatabaseURL

    @property
    def address(self) -> str:
        host = self.url.host or self.url.options.get("host") or "local socket"
        return f"{host}:{self.url.port or 5432}"

    @property
    def label(self) -> str:
        return ", ".join(self.labels)


@dataclass
class Standby:
    name: str  # application_name (set it in the standby's primary_conninfo)
    client: str  # its address, or "local" over a Unix socket
    state: str | None  # streaming, catchup, startup, backup; None: not allowed to see
    sync_state: str | None
    write_lag: float | None  # seconds; None once it has caught up and WAL is idle
    flush_lag: float | None
    replay_lag: float | None
    bytes_behind: int | None  # the primary's WAL position minus the standby's replay position


@dataclass
class Archiver:
    mode: str  # archive_mode: on, always or off
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime.datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime.datetime | None
    waiting: int | None  # finished WAL segments not archived yet; None: not allowed to see
    oldest_waiting: datetime.datetime | None

    @property
    def failing(self) -> bool:
        """The archiver's most recent attempt failed (PostgreSQL retries it)."""
        if self.last_failed_time is None:
            return False
        return self.last_archived_time is None or self.last_failed_time > self.last_archived_time


@dataclass
class Reading:
    server: Server
    taken: datetime.datetime  # the server's clock, so ages do not depend on ours
    error: str | None = None
    in_recovery: bool = False
    privileged: bool = True  # superuser or pg_monitor: can see lag and waiting segments
    standbys: list[Standby] = field(default_factory=list)
    archiver: Archiver | None = None

    def age(self, moment: datetime.datetime | None) -> float | None:
        return None if moment is None else max(0.0, (self.taken - moment).total_seconds())


def servers() -> list[Server]:
    """The PostgreSQL servers Vouch writes to: the control database's and each region's,
    each once (by default every region shares VOUCH_COMPANY_DATABASE_URL's server)."""
    found: dict[tuple[str, str], Server] = {}

    def add(label: str, url: DatabaseURL) -> None:
        key = (url.host or url.options.get("host", ""), url.port or "5432")
        if key in found:
            found[key] = Server(labels=(*found[key].labels, label), url=found[key].url)
        else:
            found[key] = Server(labels=(label,), url=url)

    control = getattr(settings, "VOUCH_DATABASE_URL", "")
    if control:
        parsed = parse_database_url(control)
        if parsed.engine == "postgresql":
            add("control", parsed)
    for region in regions.all_regions():
        if region.server is not None:
            add(f"region {region.name}", region.server)
    return list(found.values())


def read(server: Server) -> Reading:
    """What the server says now about its standbys and its archiver; a server that cannot
    be read gives a Reading with ``error`` set (never an exception)."""
    import psycopg

    url = server.url
    # The URL's options (sslmode, sslrootcert, a socket directory as host) go to libpq as given.
    params = {"host": url.host, "port": url.port, "user": url.user, "password": url.password, "dbname": url.name}
    params = {key: value for key, value in params.items() if value} | {"connect_timeout": CONNECT_TIMEOUT_SECONDS}  # type: ignore[assignment]  # typing debt
    params |= url.options
    try:
        with psycopg.connect(autocommit=True, **params) as connection:  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
            connection.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
            return _read(connection, server)
    except psycopg.Error as exc:
        log.warning("postgresql mirroring unreadable", server=server.label, error=str(exc).strip())
        return Reading(server=server, taken=datetime.datetime.now(datetime.UTC), error=str(exc).strip())


def _read(connection, server: Server) -> Reading:
    now, in_recovery, archive_mode, privileged = connection.execute(
        "SELECT now(), pg_is_in_recovery(), current_setting('archive_mode'), pg_has_role('pg_monitor', 'USAGE')"
    ).fetchone()
    reading = Reading(server=server, taken=now, in_recovery=in_recovery, privileged=privileged)
    # On a standby there is no current WAL position to measure from (it is not writing):
    # CASE evaluates only the branch it takes.
    rows = connection.execute(
        "SELECT application_name, coalesce(host(client_addr), 'local'), state, sync_state,"
        " extract(epoch FROM write_lag)::float8, extract(epoch FROM flush_lag)::float8,"
        " extract(epoch FROM replay_lag)::float8,"
        " pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,"
        " replay_lsn)::bigint"
        " FROM pg_stat_replication ORDER BY application_name, client_addr"
    ).fetchall()
    reading.standbys = [Standby(*row) for row in rows]
    stats = connection.execute(
        "SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal,"
        " last_failed_time FROM pg_stat_archiver"
    ).fetchone()
    waiting, oldest = None, None
    if privileged:
        # A .ready file per finished segment the archiver has not handed over yet.
        waiting, oldest = connection.execute(
            "SELECT count(*), min(modification) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
        ).fetchone()
    reading.archiver = Archiver(archive_mode, *stats, waiting=waiting, oldest_waiting=oldest)  # type: ignore[misc]  # mypy cannot count the fields unpacked from stats
    return reading


_lock = threading.Lock()
_cache: dict[str, tuple[float, tuple[Server, ...], list[Reading]]] = {}
_refreshing = threading.Event()


def readings(max_age: float = CACHE_SECONDS) -> list[Reading]:
    """Every server's reading, at most ``max_age`` seconds old (0: read them now)."""
    wanted = tuple(servers())
    with _lock:
        cached = _cache.get("readings")
    if cached and cached[1] == wanted and time.monotonic() - cached[0] < max_age:
        return cached[2]
    fresh = [read(server) for server in wanted]  # outside the lock: others keep the old answer meanwhile
    with _lock:
        _cache["readings"] = (time.monotonic(), wanted, fresh)
    return fresh


def recent_readings() -> list[Reading]:
    """For /healthz: the last readings, refreshed in the background once older than
    CACHE_SECONDS, so a server that stopped answering (each read waits up to
    CONNECT_TIMEOUT_SECONDS) never holds up the probe. Only the very first call reads."""
    wanted = tuple(servers())
    with _lock:
        cached = _cache.get("readings")
    if not cached or cached[1] != wanted:
        return readings()
    if time.monotonic() - cached[0] >= CACHE_SECONDS and not _refreshing.is_set():
        _refreshing.set()
        threading.Thread(target=_refresh, name="vouch-pg-health", daemon=True).start()
    return cached[2]


def _refresh() -> None:
    try:
        readings(max_age=0)
    except Exception as exc:  # noqa: BLE001  (the next probe tries again; the old answer stays)
        log.warning("postgresql mirroring refresh failed", error=str(exc))
    finally:
        _refreshing.clear()


# --- what the readings mean -----------------------------------------------------------

RANK = {"off": 0, "ok": 1, "degraded": 2}


def replication_state(reading: Reading, expected: int, max_lag: float) -> tuple[str, str]:
    """(state, detail) of one server's streaming replication."""
    if reading.error:
        return "degraded", "cannot connect"
    if reading.in_recovery:
        return "degraded", "is a standby (in recovery), not the primary Vouch should write to"
    streaming = [s for s in reading.standbys if s.state == "streaming"]
    if not reading.privileged and reading.standbys and all(s.state is None for s in reading.standbys):
        return ("degraded" if expected else "off"), "cannot see its standbys: grant pg_monitor to Vouch's account"
    others = [f"{s.name} {s.state}" for s in reading.standbys if s.state not in {"streaming", "backup"}]
    lagging = [s for s in streaming if (s.replay_lag or 0) > max_lag]
    if not streaming and not expected:
        return "off", "no standby" + (f" ({', '.join(others)})" if others else "")
    parts = [f"{len(streaming)} standby streaming" if len(streaming) == 1 else f"{len(streaming)} standbys streaming"]
    if expected:
        parts[0] += f" ({expected} expected)"
    parts += [_lag_text(s) for s in streaming]
    parts += others
    if len(streaming) < expected:
        return "degraded", ", ".join(parts)
    if lagging:
        return "degraded", ", ".join(parts) + f"; more than {max_lag:g} s behind: {', '.join(s.name for s in lagging)}"
    return "ok", ", ".join(parts)


def archiving_state(reading: Reading, required: bool, max_lag: float) -> tuple[str, str]:
    """(state, detail) of one server's WAL archiving."""
    if reading.error:
        return "degraded", "cannot connect"
    archiver = reading.archiver
    assert archiver is not None
    if archiver.mode == "off":
        return ("degraded" if required else "off"), "archive_mode is off"
    if archiver.failing:
        return "degraded", f"archiving {archiver.last_failed_wal} failed {_ago(reading.age(archiver.last_failed_time))}"
    waited = reading.age(archiver.oldest_waiting)
    if waited is not None and archiver.waiting and waited > max_lag:
        return "degraded", f"{archiver.waiting} WAL segments waiting, the oldest for {waited:.0f} s"
    if archiver.last_archived_time is None:
        return "ok", "nothing archived yet"
    return "ok", f"last WAL archived {_ago(reading.age(archiver.last_archived_time))}"


def assess(found: list[Reading]) -> dict[str, dict[str, str]]:
    """The "replication" and "archiving" health items for these readings."""
    if not found:
        why = "no PostgreSQL server (the embedded default's databases are covered by the mirror)"
        return {"replication": {"state": "off", "detail": why}, "archiving": {"state": "off", "detail": why}}
    expected, max_lag = settings.VOUCH_PG_STANDBYS, float(settings.VOUCH_PG_MAX_LAG_SECONDS)
    required = settings.VOUCH_PG_ARCHIVING == "required"
    items = {}
    for name, judge in (
        ("replication", lambda r: replication_state(r, expected, max_lag)),
        ("archiving", lambda r: archiving_state(r, required, max_lag)),
    ):
        states = [(reading.server.label, *judge(reading)) for reading in found]
        worst = max((state for _, state, _ in states), key=RANK.__getitem__)
        # Labels, not addresses: /healthz is public; `vouch backup status` shows the rest.
        detail = "; ".join(f"{label}: {text}" for label, _, text in states) if len(states) > 1 else states[0][2]
        items[name] = {"state": worst, "detail": detail}
    return items


def health() -> dict[str, dict[str, str]]:
    return assess(recent_readings())


# --- text -----------------------------------------------------------------------------


def seconds_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def bytes_text(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(amount) < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"


def _lag_text(standby: Standby) -> str:
    # No lag figure: caught up and idle (PostgreSQL clears it then).
    lag = seconds_text(standby.replay_lag or 0.0)
    return f"{standby.name}: replay lag {lag}, {bytes_text(standby.bytes_behind)} behind"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
