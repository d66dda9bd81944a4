"""Every environment variable Vouch reads, in one place, with safe defaults.

Settings (``vouch.settings``) and the command line (``vouch.cli``) both read the
environment only through :func:`load`, so the table of variables in
docs/operations/configuration.md can be checked against :data:`VARIABLES`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

# name -> (default, description); docs/operations/configuration.md documents the same table.
VARIABLES: dict[str, tuple[str, str]] = {
    "VOUCH_MODE": ("development", "`production` turns on the start-up checks that refuse insecure settings."),
    "VOUCH_DATA_DIR": ("./var", "Where the embedded default keeps its databases, keys, certificates and outbox."),
    "VOUCH_SECRET_KEY": (
        "(generated into VOUCH_DATA_DIR/keys/secret_key)",
        "Django secret key; required in production.",
    ),
    "VOUCH_ALLOWED_HOSTS": ("localhost,127.0.0.1,[::1]", "Comma-separated host names the app answers to."),
    "VOUCH_PUBLIC_URL": ("https://localhost:8443", "The address people use; used in emails and redirects."),
    "VOUCH_BIND": ("127.0.0.1", "Address the servers listen on."),
    "VOUCH_HTTPS_PORT": ("8443", "HTTPS port."),
    "VOUCH_HTTP_PORT": ("8080", "Plain-HTTP port; it only redirects to HTTPS. Empty to disable."),
    "VOUCH_WORKERS": ("2", "Server worker processes."),
    "VOUCH_THREADS": ("4", "Python threads per server worker process."),
    "VOUCH_TLS_CERT": ("(generated into VOUCH_DATA_DIR/tls/)", "PEM certificate chain for HTTPS."),
    "VOUCH_TLS_KEY": ("(generated into VOUCH_DATA_DIR/tls/)", "PEM private key (PKCS#8) for HTTPS."),
    "VOUCH_TLS_MIN": ("tls1.2", "Lowest TLS version accepted: tls1.2 or tls1.3."),
    "VOUCH_DATABASE_URL": (
        "sqlite (VOUCH_DATA_DIR/control.sqlite3)",
        "Control database, e.g. postgres://user@host/vouch.",
    ),
    "VOUCH_REDIS_URL": ("(none: database cache and sessions)", "Redis for cache, sessions and rate-limit state."),
    "VOUCH_REDIS_KEY_PREFIX": ("vouch", "Prefix of every Redis key, so installations can share one Redis."),
    "VOUCH_REDIS_CONNECT_TIMEOUT": ("0.5", "Seconds to wait for a connection to Redis."),
    "VOUCH_REDIS_TIMEOUT": ("1", "Seconds to wait for Redis to answer a command."),
    "VOUCH_REDIS_RETRY_SECONDS": (
        "2",
        "After Redis failed to answer, each server process leaves it alone this long (cache reads are misses, "
        "sign-in answers 503) before trying again.",
    ),
    "VOUCH_TASKS_BACKEND": (
        "redis in production when VOUCH_REDIS_URL is set, otherwise database",
        "Queue of background tasks (reminders, expiry, retention): `database` (a table in the control database) "
        "or `redis` (RQ on VOUCH_REDIS_URL).",
    ),
    "VOUCH_WORK_LEASE_SECONDS": (
        "600",
        "How long a worker holds a task or an outgoing mail it took: one whose worker died is taken over after that.",
    ),
    "VOUCH_TEST_PAUSE_AT": (
        "(none)",
        "Tests only: a named point (e.g. `after_reminder_commit`) where the worker waits while "
        "VOUCH_TEST_PAUSE_FILE exists, so a test can kill it exactly there.",
    ),
    "VOUCH_TEST_PAUSE_FILE": ("(none)", "Tests only: see VOUCH_TEST_PAUSE_AT."),
    "VOUCH_SERVE_WORKER": ("1", "`vouch serve` also runs a background worker; 0 when `vouch worker` runs apart."),
    "VOUCH_REGIONS": ("au,eu,us,ca", "Regions a company can choose at signup."),
    "VOUCH_COMPANY_DATABASE_URL": (
        "(none: a SQLite file per company)",
        "PostgreSQL server for every region's company databases, e.g. postgres://vouch@db:5432/postgres "
        "(the database named is only used to create and drop company databases; the account needs CREATEDB "
        "and CREATEROLE: each company database gets a role of its own).",
    ),
    "VOUCH_REGION_<NAME>_DATABASE_URL": (
        "VOUCH_COMPANY_DATABASE_URL",
        "That region's PostgreSQL server for its company databases, e.g. VOUCH_REGION_EU_DATABASE_URL.",
    ),
    "VOUCH_REGION_<NAME>_DIR": (
        "VOUCH_DATA_DIR/regions/<name>",
        "Where that region keeps its company SQLite files (companies/) and company files (files/).",
    ),
    "VOUCH_REGION_<NAME>_LABEL": (
        "the built-in name for au, eu, us and ca, else the name in capitals",
        "What people see for that region at signup and in the company settings: its full name and the place "
        "its servers are, e.g. VOUCH_REGION_EU_LABEL=European Union (Paris).",
    ),
    "VOUCH_REGION_<NAME>_FILES_URL": (
        "(none: files under the region's directory)",
        "That region's S3-compatible bucket for company files (attachments, report PDFs), e.g. "
        "s3://vouch-eu-files?endpoint=https://s3.eu-central-1.amazonaws.com&region=eu-central-1; credentials from "
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Files stay encrypted chunk by chunk.",
    ),
    "VOUCH_SERVE_MIRROR": (
        "1",
        "`vouch serve` also runs the continuous mirror of every SQLite database (Litestream); 0 where the mirror "
        "runs as its own service (`vouch mirror run`).",
    ),
    "VOUCH_MIRROR_URL": (
        "VOUCH_DATA_DIR/mirror",
        "Where the embedded default's databases are mirrored continuously: a directory or s3:// URL. The default is "
        "on the same disk (a warning says so at start); point it at another disk or a bucket.",
    ),
    "VOUCH_REGION_<NAME>_MIRROR_URL": (
        "VOUCH_MIRROR_URL/regions/<name>",
        "Where that region's company databases are mirrored, so a company's mirror stays in its region.",
    ),
    "VOUCH_BACKUP_URL": (
        "VOUCH_DATA_DIR/backups",
        "Where encrypted backup sets go (the control database's, and companies' unless their region has its own): "
        "a directory or s3:// URL.",
    ),
    "VOUCH_REGION_<NAME>_BACKUP_URL": (
        "VOUCH_BACKUP_URL/regions/<name>",
        "That region's backup target: a company's backups go only there.",
    ),
    "VOUCH_BACKUP_EVERY_MINUTES": (
        "60",
        "How often `vouch serve` takes backups (one server at a time when several share the databases); "
        "0 turns the schedule off (`vouch backup run` still works; health then says backups are off).",
    ),
    "VOUCH_BACKUP_KEEP_HOURLY_HOURS": ("48", "Every backup set is kept this many hours."),
    "VOUCH_BACKUP_KEEP_DAILY_DAYS": ("35", "One backup set a day is kept this many days."),
    "VOUCH_BACKUP_KEEP_MONTHLY_MONTHS": ("12", "One backup set a month is kept this many months."),
    "VOUCH_DRILL_SAMPLE_PERCENT": (
        "5",
        "The daily restore drill restores this share of companies (at least VOUCH_DRILL_SAMPLE_MIN), plus every "
        "company whose schema changed that day.",
    ),
    "VOUCH_DRILL_SAMPLE_MIN": ("5", "The daily restore drill restores at least this many companies."),
    "VOUCH_PG_STANDBYS": (
        "1 in production, else 0",
        "Streaming standbys each PostgreSQL server (the control database's and every region's) must have; with "
        "fewer, `replication` is degraded on /healthz and in `vouch backup status` (docs/postgresql.md).",
    ),
    "VOUCH_PG_ARCHIVING": (
        "required in production, else optional",
        "`required`: a PostgreSQL server whose WAL is not archived (archive_mode off) makes `archiving` degraded; "
        "`optional`: it is shown as off.",
    ),
    "VOUCH_PG_MAX_LAG_SECONDS": (
        "60",
        "A standby further behind than this in replay, or a finished WAL segment waiting longer than this to be "
        "archived, makes `replication` or `archiving` degraded.",
    ),
    "VOUCH_COMPANY_DATABASE_PREFIX": ("vouch_company", "Name prefix of company databases on PostgreSQL."),
    "VOUCH_DELETION_GRACE_DAYS": (
        "14",
        "Days between an owner asking to delete a company and its data being removed; an owner can cancel meanwhile.",
    ),
    "VOUCH_KEY_PROVIDER": (
        "file",
        "Where master keys come from: `file` (VOUCH_KEYS_DIR), `env` (VOUCH_MASTER_KEYS) or the dotted path "
        "of a provider class (e.g. a KMS adapter).",
    ),
    "VOUCH_KEYS_DIR": (
        "VOUCH_DATA_DIR/keys",
        "The master key files (with VOUCH_KEY_PROVIDER=file) and, unless VOUCH_KEY_STORE_URL says otherwise, the "
        "key store (0700, files 0600); keep it off the database's disk and back it up apart.",
    ),
    "VOUCH_KEY_STORE_URL": (
        "VOUCH_KEYS_DIR",
        "The key store: company KEKs and tombstones (`companies/`) and the control backup key, each wrapped by the "
        "master key. A directory, or an S3-compatible bucket shared by all app servers "
        "(`s3://vouch-keys/prod?endpoint=...&region=...`; its own bucket, versioning off, never copied into "
        "backups: see docs/backups.md, 'Deleted companies stay deleted').",
    ),
    "VOUCH_MASTER_KEYS": ("(none)", "With VOUCH_KEY_PROVIDER=env: `1:<base64 key>,2:<base64 key>`; the highest wraps."),
    "VOUCH_KEY_CACHE_SECONDS": ("60", "How long an unwrapped company key stays in a process's memory."),
    "VOUCH_COMPANY_CONNECTIONS_KEPT": (
        "8",
        "Open company database connections each server thread keeps for the next request of the same company "
        "(least recently used closed first; idle ones closed after a minute); 0 closes them after every request.",
    ),
    "VOUCH_PHONE_REGION": ("GB", "Country assumed for phone numbers written without a country code."),
    "VOUCH_SMTP_URL": (
        "(none: mail goes to the outbox)",
        "smtp://user:pass@host:587 (STARTTLS) or smtps://...:465 (TLS).",
    ),
    "VOUCH_MAIL_FROM": ("Vouch <no-reply@localhost>", "Sender address for mail."),
    "VOUCH_SESSION_IDLE_MINUTES": ("60", "Sign out after this many minutes without activity."),
    "VOUCH_SESSION_MAX_HOURS": ("12", "Sign out this many hours after signing in, active or not."),
    "VOUCH_MAX_BODY_BYTES": ("2621440", "Larger request bodies are refused with 413."),
    "VOUCH_RATE_LIMITS": (
        "(the table in docs/security/limits.md)",
        "Requests a minute by route class and scope: `off`, or overrides such as `page.account=2000,pdf.company=600` "
        "(classes sign_in, link, upload, pdf, search, page; scopes address, network, account, company; `*` for all; "
        "0 turns one off).",
    ),
    "VOUCH_BURST_LIMITS": (
        "(the table in docs/security/limits.md)",
        "Requests in ten seconds by route class and scope, the short windows a flood meets while it lasts: "
        "`off`, or overrides in the same form as VOUCH_RATE_LIMITS (`sign_in.network=600`). "
        "VOUCH_RATE_LIMITS=off turns these off too.",
    ),
    "VOUCH_RATE_LIMIT_EXEMPT": (
        "(none)",
        "Addresses/networks whose requests skip the per-address and per-network limits and the in-flight cap "
        "(monitoring, a load test); their accounts and companies are still limited.",
    ),
    "VOUCH_API_KEY_RATE_LIMIT": (
        "600",
        "Calls a minute one API key may make (vouch.api); more are answered 429 with Retry-After. 0: no limit.",
    ),
    "VOUCH_CLIENT_IN_FLIGHT": (
        "VOUCH_THREADS - 2",
        "Requests one client address may have in progress in one server process; more are answered 429. 0: no cap.",
    ),
    "VOUCH_ANONYMOUS_IN_FLIGHT": (
        "VOUCH_THREADS - 1",
        "Requests of people not signed in (sign-in pages, private links) in progress at once in one server "
        "process, all addresses together; more are answered 429, and a signed-in member always finds a thread. "
        "0: no cap.",
    ),
    "VOUCH_ACCOUNT_IN_FLIGHT": (
        "VOUCH_THREADS / 2",
        "Requests one signed-in account may have in progress in one server process; more are answered 429. 0: no cap.",
    ),
    "VOUCH_LOW_PRIORITY_AT_ONCE": (
        "1",
        "Requests of low priority (people not signed in, an account refused for too many at once) running at "
        "once in one server process; the others wait their turn (VOUCH_LOW_PRIORITY_WAIT_MS), so a flood never "
        "runs beside a member's request more than this many at a time. 0: no gate.",
    ),
    "VOUCH_LOW_PRIORITY_WAIT_MS": (
        "250",
        "How long a request of low priority waits for its turn before it runs anyway (nobody is refused for it).",
    ),
    "VOUCH_SWITCH_INTERVAL_MS": (
        "5",
        "How long a server thread that wants the interpreter waits before the running one must let go "
        "(Python's switch interval). 1 shortens a member's pages during a flood; 5 (Python's default) serves "
        "more pages a second when every thread computes.",
    ),
    "VOUCH_COMPANY_AT_ONCE": (
        "2",
        "Report PDFs drawn, CSV imports, data exports (and twice as many searches) one company may run at once; "
        "more are answered 429 with Retry-After.",
    ),
    "VOUCH_SAMPLING_BATCH_SECONDS": (
        "0.5",
        "Seconds each server process keeps its counts of sampled security events (refusals counted, not "
        "recorded) before adding them to the cache in one write. 0: every count written at once.",
    ),
    "VOUCH_BENCH_PROTECTIONS_OFF": (
        "0",
        "Benchmark switch: 1 turns brute-force protection, allauth's rate limits and the request limits off. "
        "Ignored in production.",
    ),
    "VOUCH_METRICS_TOKEN": (
        "(none: /metrics answers 404)",
        "Bearer token Prometheus sends to /metrics (at least 32 characters in production); without it the "
        "endpoint does not exist.",
    ),
    "VOUCH_TRUSTED_PROXIES": (
        "(none)",
        "Addresses/networks of TLS-terminating proxies whose X-Forwarded-For/-Proto are believed.",
    ),
    "VOUCH_SHIELD_ALLOW": (
        "(none)",
        "Addresses/networks intrusion detection never scores or blocks (your own monitoring, say).",
    ),
    "VOUCH_RISK_MAX_KMH": (
        "1000",
        "Two sign-ins further apart than this speed allows (km/h) are impossible travel: the account is suspended.",
    ),
    "VOUCH_ANONYMISING_NETWORKS": (
        "(none)",
        "File of VPN/Tor/proxy networks, one CIDR a line; a sign-in from one asks for a second step.",
    ),
    "VOUCH_GEOIP_BACKEND": (
        "vouch.guard.geo.GeoIP2FastBackend",
        "Class that locates addresses (country, network, coordinates); the default uses geoip2fast's bundled data.",
    ),
    "VOUCH_SMTP_CA_FILE": ("(system CAs)", "CA bundle to verify the SMTP server's certificate."),
    "VOUCH_WEBHOOKS_CA_FILE": ("(system CAs)", "CA bundle to verify webhook receivers' certificates."),
    "VOUCH_WEBHOOKS_ALLOW_NETWORKS": (
        "(none)",
        "Test only: networks a webhook may be delivered to although private or loopback (a local receiver). "
        "Refused in production.",
    ),
    "VOUCH_LOG_LEVEL": ("INFO", "Log level of the JSON logs."),
    "VOUCH_DEBUG": ("0", "Django debug pages; refused in production."),
}


@dataclass(frozen=True)
class DatabaseURL:
    engine: str
    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""
    options: dict[str, str] = field(default_factory=dict)


def parse_database_url(url: str) -> DatabaseURL:
    """Parse postgres://user:pass@host:port/name?sslmode=require (or sqlite:///path)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return DatabaseURL(engine="sqlite", name=unquote(parts.path.lstrip("/")) or ":memory:")
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}")
    options = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    return DatabaseURL(
        engine="postgresql",
        name=unquote(parts.path.lstrip("/")) or "vouch",
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        host=parts.hostname or "",
        port=str(parts.port or ""),
        options=options,
    )


# Above Litestream's own emergency checkpoint (TRUNCATE at 121,359 pages, about 500 MB), so
# that while the mirror runs only the mirror ever checkpoints; see sqlite_database().
SQLITE_AUTOCHECKPOINT_PAGES = 250_000


def sqlite_database(path) -> dict:
    """Django DATABASES entry for the SQLite database at ``path`` (the control database,
    and each company's in a region without a database server)."""
    return {
        "ENGINE": "vouch.tenancy.sqlite",
        "NAME": str(path),
        # WAL lets readers run beside the one writer; IMMEDIATE avoids the
        # "database is locked" upgrade deadlock between two writing workers.
        "OPTIONS": {
            # secure_delete: deleted rows (a purged candidate, the plaintext left behind by
            # a migration that encrypts a column) are overwritten, not left in free pages;
            # some SQLite builds have it on by default, others do not.
            # wal_autocheckpoint: the mirror (Litestream) checkpoints each database it copies,
            # after reading the WAL. Any checkpoint of the application's races it: under a
            # burst of commits the mirror then misses frames and a restore lacks a run of rows
            # from the middle (tests/backups/test_mirror_scale.py: at SQLite's default of
            # 1,000 pages in 6 of 6 runs; at 10,000 pages in 4 of 6 on an idle machine, where a
            # 2 s burst writes 17,000 commits). The valve is set above Litestream's own
            # emergency checkpoint, so it is reached only while no mirror runs (about 1 GB).
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
                f" PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES};"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        "CONN_MAX_AGE": None,
    }


# The default regions' full names, with the place their servers are meant to be; an
# installation that keeps a region elsewhere says so with VOUCH_REGION_<NAME>_LABEL.
REGION_LABELS = {
    "au": "Australia (Sydney)",
    "eu": "European Union (Frankfurt)",
    "us": "United States (Virginia)",
    "ca": "Canada (Montreal)",
}


def region_label(name: str) -> str:
    """A region's full name for people: VOUCH_REGION_<NAME>_LABEL, else the built-in one."""
    return env(f"VOUCH_REGION_{name.upper()}_LABEL", REGION_LABELS.get(name, name.upper())).strip()


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        return default if default is not None else ""
    return value


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = env(name, str(default))
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from exc
    if not value > 0:
        raise ValueError(f"{name} must be more than 0, not {raw!r}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def data_dir() -> Path:
    return Path(env("VOUCH_DATA_DIR", "./var")).resolve()


def metrics_dir() -> Path:
    """Where the server workers write their metrics for each other (prometheus-client's
    multiprocess mode); emptied by each `vouch serve` at start."""
    return data_dir() / "metrics"


def secret_key_file() -> Path:
    return data_dir() / "keys" / "secret_key"


def read_or_create_secret_key() -> str:
    """The embedded default's secret key: random per installation, kept 0600 on disk."""
    configured = env("VOUCH_SECRET_KEY")
    if configured:
        return configured
    path = secret_key_file()
    try:
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        # Settings are being imported: a clear sentence, not a traceback from deep inside.
        raise SystemExit(f"Vouch cannot read its secret key file {path}: {exc.strerror or exc}.") from exc
    key = secrets.token_urlsafe(50)
    # O_EXCL: two workers starting together must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
