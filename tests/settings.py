"""Test settings: the real settings module, pointed at a throwaway data directory.

With VOUCH_TEST_SERVICES=1 (as .ci/run sets) the control database is PostgreSQL and
cache, sessions and rate-limit state live in Redis, at the addresses given by
VOUCH_TEST_DATABASE_URL and VOUCH_TEST_REDIS_URL."""

import os
import tempfile

os.environ["VOUCH_DATA_DIR"] = os.environ.get("VOUCH_TEST_DATA_DIR") or tempfile.mkdtemp(prefix="vouch-test-")
SERVICES = os.environ.get("VOUCH_TEST_SERVICES") == "1"
if SERVICES:
    os.environ["VOUCH_DATABASE_URL"] = os.environ.get(
        "VOUCH_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
    )
    os.environ["VOUCH_REDIS_URL"] = os.environ.get("VOUCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    # A PostgreSQL database per company on the same local server, named for this run
    # so the session's teardown drops exactly these (tests/conftest.py).
    os.environ["VOUCH_COMPANY_DATABASE_URL"] = os.environ["VOUCH_DATABASE_URL"]
    os.environ["VOUCH_COMPANY_DATABASE_PREFIX"] = f"vouch_t{os.getpid()}"
else:
    os.environ.pop("VOUCH_DATABASE_URL", None)
    os.environ.pop("VOUCH_REDIS_URL", None)
    os.environ.pop("VOUCH_COMPANY_DATABASE_URL", None)
for _name in [n for n in os.environ if n.startswith("VOUCH_REGION_")]:
    os.environ.pop(_name)
os.environ.pop("VOUCH_SMTP_URL", None)
os.environ.setdefault("VOUCH_LOG_LEVEL", "WARNING")

from vouch.settings import *  # noqa: E402,F403
from vouch.settings import CACHES  # noqa: E402

# Tests do not run collectstatic; serve from the app directories instead.
STORAGES = {  # noqa: F405
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Sampled counts written at once (vouch.audit.sampling.Batch): the tests read them right
# after, and the in-memory test database is not there for a timer's thread.
VOUCH_SAMPLING_BATCH_SECONDS = 0.0
if SERVICES:
    # Keys of this run only, so a flush between tests touches nothing else.
    for _alias in ("default", "guard", "limits"):
        CACHES[_alias]["KEY_PREFIX"] = f"vouch-test-{os.getpid()}"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
if SERVICES:
    # A test database of this run's own, so two runs on one machine do not collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_vouch_{os.getpid()}"}  # noqa: F405
else:
    # An in-memory test database per test process, as Django gives SQLite by default.
    # Said outright: pytest-django recognises SQLite by Django's own ENGINE name only, and
    # would otherwise name a file after the control database for each xdist worker.
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}  # noqa: F405
