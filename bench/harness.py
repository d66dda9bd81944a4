"""The shared harness of `make bench`: what bench/run.py and every section (bench/<name>.py) use.

- output: progress on stderr (``say``), the load average beside every figure from a
  shared machine, MET/MISSED verdicts, the server table's header and rows;
- timing: ``perf_counter_ns`` samples summarised by nearest-rank percentiles (a p99 is a
  time that was actually measured, not an interpolation), the CPU time of processes;
- processes: throwaway data directories, the environment of a bench's own Django
  process, running one and reading the JSON of its last line;
- the live server: `vouch serve` from tests/live.py, the signed-in member, wrk over
  HTTPS and its parsing, the server log's statuses per route;
- PostgreSQL for the sections that also measure on it;
- the small companies the backup and restore sections set up alike, and the plain copy
  they compare with.

Importing it puts the repository (for ``tests``) and src/ (for ``vouch``) on sys.path.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# The live server of the tests (tests/live.py, tests/server/helpers.py), for the sections too.
from tests.live import cleanup as cleanup  # noqa: E402
from tests.live import drop_pg_databases_with_prefix as drop_pg_databases_with_prefix  # noqa: E402
from tests.live import make_server as _make_server  # noqa: E402
from tests.server import helpers as helpers  # noqa: E402

# The bench sends thousands of requests a second from this machine, as no client does: its
# addresses skip the per-address limits and the in-flight caps (vouch.shield.limits), and
# the one member's account and company are limited only far above what it sends (nor in
# ten seconds, nor in what it has in progress at once). The limits' counting still runs,
# so its cost is in every figure.
BENCH_LIMITS = {
    "VOUCH_RATE_LIMIT_EXEMPT": "127.0.0.1,::1",
    "VOUCH_RATE_LIMITS": "*.account=1000000000,*.company=1000000000",
    "VOUCH_BURST_LIMITS": "*.account=0,*.company=0",
    "VOUCH_ACCOUNT_IN_FLIGHT": "0",
}


def make_server(extra_env: dict[str, str] | None = None, **options: Any):
    """tests.live.make_server, with :data:`BENCH_LIMITS` unless ``extra_env`` says otherwise."""
    return _make_server(extra_env={**BENCH_LIMITS, **(extra_env or {})}, **options)


# --- output -----------------------------------------------------------------------------------


def say(text: str) -> None:
    """A progress line: on stderr, at once (stdout carries results, a worker's JSON)."""
    print(text, file=sys.stderr, flush=True)


def load() -> list[float]:
    """The load average now, to 2 places: figures from a shared machine are read with it."""
    return [round(n, 2) for n in os.getloadavg()]


def load_text() -> str:
    """The load average now, for a progress line: "load average 1.02 0.87 0.60"."""
    return "load average " + " ".join(f"{n:.2f}" for n in os.getloadavg())


def loads(values: Iterable[float], spec: str = "") -> str:
    """Load average figures (as recorded) on one line, each formatted with ``spec``."""
    return " ".join(format(n, spec) for n in values)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def verdict_of(met: dict[str, bool], key: str) -> str:
    """The verdict of target ``key``; empty when it was not measured."""
    return "" if key not in met else verdict(met[key])


# The table bench/run.py prints (and the sections whose rows share its columns).
SERVER_HEADER = f"{'name':<22} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>7}"


def server_header() -> list[str]:
    """The server table's header and its rule."""
    return [SERVER_HEADER, "-" * len(SERVER_HEADER)]


def server_row(label: str, median: dict, ratio: float | str = "") -> str:
    """One row of the server table: ``median`` as ``median_of`` gives it; ``ratio`` a number
    (two places) or text as it is (empty when there is none)."""
    ratio_text = f"{ratio:>7.2f}" if isinstance(ratio, float | int) else f"{ratio:>7}"
    return (
        f"{label:<22} {median['requests_per_s']:>10.1f} {median['p50_ms']:>9.2f} {median['p99_ms']:>9.2f} {ratio_text}"
    )


# --- timing -----------------------------------------------------------------------------------

UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def percentile_index(values: Sequence[float], q: float) -> float:
    """The value at index round(``q``% of (n - 1)) of the sorted ``values``: the rule the
    mirror's recovery point figures have always been given with (bench/mirror.py)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summarise(values: Sequence[float], unit: str) -> dict[str, Any]:
    """Median, p90, p99, min and max of ``values`` (already in ``unit``)."""
    return {
        "unit": unit,
        "count": len(values),
        "median": statistics.median(values),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }


def per_call(
    fn: Callable[[Any], Any],
    count: int,
    *,
    unit: str = "us",
    warmup: int = 0,
    prepare: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Time ``count`` calls of ``fn(prepare(i))`` one by one; ``prepare`` (untimed)
    makes each call's argument, e.g. a fresh instance so nothing is cached between
    calls. ``warmup`` calls first, untimed."""
    prepare = prepare or (lambda i: None)
    for i in range(warmup):
        fn(prepare(i))
    scale, clock = UNITS[unit], time.perf_counter_ns
    samples = []
    for i in range(count):
        argument = prepare(i)
        started = clock()
        fn(argument)
        samples.append((clock() - started) / scale)
    return summarise(samples, unit)


def repeated(fn: Callable[[], Any], count: int, *, unit: str = "ms", warmup: int = 1) -> dict[str, Any]:
    """Time ``count`` runs of a larger piece of work ``fn()``."""
    return per_call(lambda _: fn(), count, unit=unit, warmup=warmup)


def once(fn: Callable[[], Any], *, unit: str = "s") -> tuple[float, Any]:
    """One timed run: (time in ``unit``, what ``fn`` returned)."""
    started = time.perf_counter_ns()
    result = fn()
    return (time.perf_counter_ns() - started) / UNITS[unit], result


def cpu_seconds(pids: int | Iterable[int]) -> float:
    """User + system CPU time of a process (or of several, summed) so far (Linux /proc)."""
    ticks = 0
    for pid in [pids] if isinstance(pids, int) else pids:
        # The fields follow the command name, which may hold spaces: split after ")".
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# --- processes --------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[str]:
    """A throwaway directory (e.g. a data directory), removed afterwards whatever happened."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def django_env(data_dir: str | Path, *, log_level: str = "ERROR", **extra: str) -> dict[str, str]:
    """The environment of a bench's own Django process: this one's without any VOUCH_
    setting (a bench measures the defaults), Vouch's settings, ``data_dir`` as its data
    directory, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {"DJANGO_SETTINGS_MODULE": "vouch.settings", "VOUCH_DATA_DIR": str(data_dir), "VOUCH_LOG_LEVEL": log_level}
    return env | extra


def run_json(command: Sequence[str], env: dict[str, str], *, what: str, timeout: float, quiet: bool = False) -> dict:
    """Run ``command``; the JSON of its last stdout line. Its stderr goes to ours (progress)
    unless ``quiet``, when it is kept and shown only if the command fails."""
    result = subprocess.run(
        list(command),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if quiet else None,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        output = result.stderr[-4000:] if quiet else result.stdout[-2000:]
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{output}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_script(script: str, argv: Sequence[str], env: dict[str, str], *, what: str, timeout: float, **kw) -> dict:
    """``python -c script *argv`` with ``env`` (see ``run_json``)."""
    return run_json([sys.executable, "-c", script, *argv], env, what=what, timeout=timeout, **kw)


def run_worker(
    file: str | Path, argv: Sequence[str], *, prefix: str, what: str, timeout: float, **extra_env: str
) -> dict:
    """``python <file> worker *argv`` in a Django environment of its own with a throwaway
    data directory (removed afterwards); the JSON of its last line."""
    with scratch_dir(prefix) as data_dir:
        env = django_env(data_dir, **extra_env)
        return run_json([sys.executable, str(file), "worker", *argv], env, what=what, timeout=timeout)


# --- the live server and wrk --------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """Seconds in "10s", "500ms", "1m" or "2" (seconds): an argparse type."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 10s, 500ms, 1m)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60}[unit]


def print_server_log(server, label: str = "server", chars: int = 4000) -> None:
    """The tail of a server's log on stderr (after a failure)."""
    print(f"--- {label} log (tail) ---\n{server.log()[-chars:]}", file=sys.stderr)


@contextlib.contextmanager
def serving(server, label: str = "server", chars: int = 4000) -> Iterator[Any]:
    """Around the use of a server from ``make_server``: its log's tail on stderr when
    something failed (once it was started), and ``cleanup`` in any case."""
    try:
        yield server
    except Exception:
        if server.process is not None:
            print_server_log(server, label, chars)
        raise
    finally:
        cleanup(server)


def prepare_member(server) -> tuple[str, str]:
    """A company owner signed in through the login form: (company name, Cookie header value)."""
    tag = uuid.uuid4().hex[:8]
    email, company = f"bench-{tag}@example.com", f"Bench Company {tag}"
    helpers.create_member(server, email, company)
    session = helpers.session_cookie(server, email)
    cookie = f"__Host-vouch_session={session}"
    page = helpers.request(server, "GET", "/dashboard/", cookies={"__Host-vouch_session": session})
    if page.status != 200 or company not in page.text:
        raise RuntimeError(f"the dashboard did not render for the signed-in member (status {page.status})")
    return company, cookie


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> dict:
    """Requests/s, latency percentiles and errors from `wrk --latency` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+\w+)", output, re.M)
    percentiles = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", output, re.M)}
    if not rps or not total or 50 not in percentiles or 99 not in percentiles:
        raise ValueError(f"could not parse wrk output:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": percentiles[50],
        "p75_ms": percentiles.get(75),
        "p90_ms": percentiles.get(90),
        "p99_ms": percentiles[99],
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def run_wrk(
    url: str, args: argparse.Namespace, duration: float, cookie: str | None = None, script: str | None = None
) -> dict:
    """One wrk run over HTTPS with the bench's threads and connections, parsed."""
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    if script:
        command += ["-s", script]
    command.append(url)
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return parse_wrk(result.stdout)


def median_of(runs: list[dict]) -> dict:
    """The medians of wrk runs' requests/s, p50 and p99."""
    keys = ("requests_per_s", "p50_ms", "p99_ms")
    return {key: statistics.median(run[key] for run in runs) for key in keys}


def request_entries(lines: Iterable[str | bytes]) -> Iterator[dict]:
    """The request entries (JSON, event "request") among lines of a server's log."""
    for line in lines:
        if line[:1] not in ("{", b"{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "request":
            yield entry


class LogCursor:
    """Counts the statuses the server logged for a route since the last call: wrk counts a
    redirect as success, so this is what proves every request was what it should be."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def statuses(self, route: str, method: str | None = None) -> dict[int, int]:
        """Logged statuses of ``route`` (and ``method``, when given) since the last call."""
        counts: dict[int, int] = {}
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        # Only whole lines: the next call continues from the last newline.
        end = data.rfind(b"\n") + 1
        self.offset += end
        for entry in request_entries(data[:end].splitlines()):
            if entry.get("route") == route and (method is None or entry.get("method") == method):
                counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        return counts


class RouteLog(LogCursor):
    """A LogCursor that waits for the log to go quiet before it starts and before it counts.
    The server logs each request as it finishes, so under load lines arrive after wrk has
    stopped (and requests wrk gave up on at its end still finish): nothing of the last run
    is counted, and all of this one is."""

    def __init__(self, path: Path) -> None:
        settle(path)
        super().__init__(path)

    def statuses(self, route: str, method: str | None = None) -> dict[int, int]:
        settle(self.path)
        return super().statuses(route, method)


def settle(path: Path, quiet: float = 0.5, limit: float = 20.0) -> None:
    """Wait until ``path`` has not grown for ``quiet`` seconds (at most ``limit``)."""
    deadline, size, since = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def check_statuses(
    name: str, statuses: dict[int, int], measured: dict, expected: Iterable[int] = (200,), complete: bool = False
) -> None:
    """Every logged status of the run is ``expected``, and wrk saw no error; with ``complete``
    the server logged at least as many requests as wrk counted."""
    expected = set(expected)
    bad = {status: n for status, n in statuses.items() if status not in expected}
    short = complete and sum(statuses.values()) < measured["requests"]
    if bad or short or measured["non_2xx_3xx"] or measured["socket_errors"]:
        raise RuntimeError(
            f"{name}: not every request succeeded (logged statuses {statuses}, expected only {sorted(expected)}, "
            f"{measured['requests']} counted by wrk; "
            f"wrk non-2xx/3xx {measured['non_2xx_3xx']}, socket errors {measured['socket_errors']})"
        )


# --- PostgreSQL ---------------------------------------------------------------------------------

PG_URL = os.environ.get("VOUCH_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _pg_connect(**options: Any):
    import psycopg

    from vouch.config import parse_database_url

    db = parse_database_url(PG_URL)
    connection = psycopg.connect(
        host=db.host, port=db.port or 5432, user=db.user, password=db.password, dbname=db.name, **options
    )
    return connection, db


def postgres_reachable() -> str | None:
    """None if the local PostgreSQL (PG_URL) answers, else why not."""
    try:
        connection, _ = _pg_connect(connect_timeout=3)
        with connection:
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable", said with the reason
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def create_pg_database(name: str) -> str:
    """A new database on the local PostgreSQL; its URL."""
    connection, db = _pg_connect(autocommit=True)
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    auth = f"{db.user}:{db.password}@" if db.password else f"{db.user}@"
    return f"postgres://{auth}{db.host}:{db.port or 5432}/{name}"


# --- the record ---------------------------------------------------------------------------------


def now_iso() -> str:
    """Now in UTC to the second, as results are stamped."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The short commit measured (None outside a checkout)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() or None


# --- running a section alone ---------------------------------------------------------------------


def run_alone(measure: Callable[[argparse.Namespace], dict], table_rows, describe) -> None:
    """``python bench/<name>.py [bench/run.py's arguments]`` for a section on the live server:
    measured with those arguments, then its rows under the server table's header."""
    import signal

    import run

    arguments = run.parse_args(sys.argv[1:])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    measured = measure(arguments)
    print("\n" + "\n".join(server_header()))
    print("\n".join(table_rows(measured)))
    print("\n" + "\n".join(describe(measured)))


def worker_or_report(worker: Callable[[int, int], dict], measure: Callable[..., dict], table_rows, describe) -> None:
    """``python bench/<name>.py`` for a section measured in a worker process of its own:
    ``worker N ROUNDS`` is that worker (its JSON on stdout); otherwise ``[N [ROUNDS]]`` are
    measured and reported."""
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        print(json.dumps(worker(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        measured = measure(*(int(a) for a in sys.argv[1:3]))
        print("\n".join(table_rows(measured)))
        print("\n".join(describe(measured)))


# --- small companies (backups, restore) ----------------------------------------------------------


def plain_copy(paths: Sequence[Path], into: Path) -> float:
    """Seconds to copy ``paths`` (``shutil.copyfile``) into the new directory ``into``, which
    is removed afterwards: the least any backup or restore of the same bytes does."""
    into.mkdir()
    started = time.perf_counter()
    for i, path in enumerate(paths):
        shutil.copyfile(path, into / str(i))
    spent = time.perf_counter() - started
    shutil.rmtree(into)
    return spent


def seed_small_companies(
    count: int, *, region: str = "eu", file_bytes: int = 20_000, owners: str | None = None
) -> list[uuid.UUID]:
    """In a set-up Django process: the control database migrated, then ``count`` small
    companies, each really provisioned (the template cloned into its own SQLite file, in
    4 threads), its Company row and keys written in bulk (with ``owners``, an email prefix,
    also an owner each: User, EmailAddress and Membership rows), one activity entry and one
    ``file_bytes`` file in its encrypted storage. Their ids."""
    from concurrent.futures import ThreadPoolExecutor

    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.db import transaction

    from vouch.activity.services import log
    from vouch.core.context import company_context
    from vouch.tenancy import connections, provisioning
    from vouch.tenancy.models import Company
    from vouch.vault import keyring
    from vouch.vault.files import encrypted_storage

    call_command("migrate", verbosity=0, interactive=False)
    ids = [uuid.uuid4() for _ in range(count)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda cid: provisioning.provision(cid, region), ids))
    with transaction.atomic():
        if owners:
            from allauth.account.models import EmailAddress
            from django.contrib.auth.hashers import make_password

            from vouch.accounts.models import Membership, User
            from vouch.accounts.policy import Role

            users = [
                User(email=f"{owners}-{i}@example.com", full_name=f"Owner {i}", password=make_password(None))
                for i in range(count)
            ]
            User.objects.bulk_create(users)
            EmailAddress.objects.bulk_create(
                [EmailAddress(user=u, email=u.email, primary=True, verified=True) for u in users]
            )
        Company.objects.bulk_create(
            [Company(id=cid, name=f"Bench {i:05d}", region=region) for i, cid in enumerate(ids)]
        )
        if owners:
            Membership.objects.bulk_create(
                [Membership(user=u, company_id=cid, role=Role.OWNER) for u, cid in zip(users, ids, strict=True)]
            )
        keyring.create_keys_for_companies(ids)
    payload = os.urandom(file_bytes)
    for company in Company.objects.all():
        with company_context(company):
            log("settings_changed", "Bench company set up")
            encrypted_storage.save(f"attachments/{uuid.uuid4()}.pdf", ContentFile(payload))
    connections.release_kept()
    return ids
