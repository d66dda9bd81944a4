"""What the mirror copies where (the Litestream configuration Vouch writes), the
same-disk warning, and health from the supervisor's recorded state."""

from __future__ import annotations

import json
import time

import pytest

from vouch.backups.mirror import plan, state


@pytest.fixture
def regions(settings, tmp_path, monkeypatch):
    # The embedded default's control database, on either test pass (the file need not exist).
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", "vouch.tenancy.sqlite")
    monkeypatch.setitem(settings.DATABASES["default"], "NAME", str(tmp_path / "control.sqlite3"))
    settings.VOUCH_MIRROR_URL = str(tmp_path / "mirror")
    settings.VOUCH_REGION_CONFIG = {
        "eu": {
            "database_url": "",
            "dir": str(tmp_path / "eu"),
            "mirror_url": str(tmp_path / "mirror" / "regions" / "eu"),
        },
        "us": {
            "database_url": "",
            "dir": str(tmp_path / "us"),
            "mirror_url": "s3://vouch-us/mirror/us?endpoint=http://127.0.0.1:9000&region=us-east-1",
        },
        "au": {"database_url": "postgres://vouch@db.example/vouch", "dir": str(tmp_path / "au"), "mirror_url": ""},
    }
    settings.VOUCH_REGIONS = ["eu", "us", "au"]
    settings.DATA_DIR = tmp_path
    return tmp_path


def test_the_control_database_and_each_sqlite_region_are_mirrored_to_their_urls(regions):
    config = plan.config()
    databases = config["dbs"]
    control = regions / "control.sqlite3"
    assert databases[0]["path"] == str(control)
    assert databases[0]["replica"] == {
        "type": "file",
        "path": str(regions / "mirror" / "control"),
        "sync-interval": "200ms",
    }
    eu, us = databases[1], databases[2]
    assert (eu["dir"], eu["pattern"], eu["watch"]) == (str(regions / "eu" / "companies"), "*.sqlite3", True)
    assert eu["replica"]["path"] == str(regions / "mirror" / "regions" / "eu")
    assert us["replica"] == {
        "type": "s3",
        "bucket": "vouch-us",
        "path": "mirror/us",
        "endpoint": "http://127.0.0.1:9000",
        "force-path-style": True,
        "region": "us-east-1",
        "sync-interval": "200ms",
    }
    # PostgreSQL's region is not Vouch's to mirror.
    assert len(databases) == 3
    # A commit is looked for five times a second and uploaded at most 200 ms after the last.
    assert all(entry["monitor-interval"] == "200ms" for entry in databases)


def test_the_config_file_is_private_and_holds_no_secret(regions, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    path = plan.write_config()
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "very-secret-value" not in text and "AKIAEXAMPLEKEY" not in text
    assert json.loads(text)["dbs"]  # JSON, which Litestream reads as YAML
    # The watched directories exist before their first company does.
    assert (regions / "eu" / "companies").is_dir()


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/mirror", "s3:///no-bucket", "s3://bucket/p?endpoint=http://x&secret=1"],
)
def test_a_mirror_url_litestream_cannot_use_is_refused_with_its_setting(url):
    with pytest.raises(plan.MirrorConfigError) as refused:
        plan.replica_settings(url, "VOUCH_MIRROR_URL")
    assert "VOUCH_MIRROR_URL" in str(refused.value)


def test_restore_urls_for_litestream():
    assert plan.litestream_url("/srv/mirror/eu/x.sqlite3") == "file:///srv/mirror/eu/x.sqlite3"
    url = plan.litestream_url("s3://b/m/eu/x.sqlite3?endpoint=http://127.0.0.1:9000&region=eu-west-1")
    assert url == "s3://b/m/eu/x.sqlite3?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1&forcePathStyle=true"


def test_same_disk_warning_by_default_not_for_another_filesystem_or_a_bucket(regions, settings):
    warning = plan.same_disk_warning()
    assert warning and "VOUCH_MIRROR_URL" in warning and "control database" in warning
    # /proc is another filesystem than the temporary directory; a bucket is never local.
    settings.VOUCH_MIRROR_URL = "/proc/vouch-mirror"
    settings.VOUCH_REGION_CONFIG["eu"]["mirror_url"] = "/proc/vouch-mirror/eu"
    assert plan.same_disk_warning() is None


def test_environment_for_litestream_moves_the_aws_ca_bundle(monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/company-ca.pem")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    environment = plan.litestream_environment()
    assert "AWS_CA_BUNDLE" not in environment and environment["SSL_CERT_FILE"] == "/etc/ssl/company-ca.pem"


# --- health --------------------------------------------------------------------------


def _state(**fields) -> dict:
    now = time.time()
    return {"running": True, "confirmed_at": now, "restarts": 0, "targets": ["a", "b"], "failing": {}} | fields


def test_health_from_recorded_state(regions):
    assert state.health()["mirror"]["state"] == "off"  # nothing has run the mirror here
    state.write(_state())
    assert state.health()["mirror"] == {"state": "ok", "detail": "running; 2 mirrored"}
    state.write(_state(confirmed_at=time.time() - 60))
    assert state.health()["mirror"]["state"] == "degraded"  # nobody watches it any more
    state.write(_state(running=False, problem="the mirror process stopped (exit 1)"))
    assert state.health()["mirror"] == {"state": "degraded", "detail": "the mirror process stopped (exit 1)"}
    now = time.time()
    failing = {"x.sqlite3": {"since": now - 5, "last": now, "error": "no space left on device"}}
    state.write(_state(failing=failing))
    degraded = state.health()["mirror"]
    assert degraded["state"] == "degraded" and "no space left on device" in degraded["detail"]
    stale = {"x.sqlite3": {"since": now - 500, "last": now - 200, "error": "gone"}}
    state.write(_state(failing=stale))
    assert state.health()["mirror"]["state"] == "ok"
    state.write(_state(running=False, stopped_at=time.time()))
    assert state.health()["mirror"]["state"] == "off"


def test_health_on_postgresql_says_nothing_is_mirrored_by_vouch(regions, settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", "django.db.backends.postgresql")
    for entry in settings.VOUCH_REGION_CONFIG.values():
        entry["database_url"] = "postgres://vouch@db.example/vouch"
    assert plan.mirrored() == []
    assert state.health()["mirror"]["state"] == "off"
    assert "PostgreSQL" in state.health()["mirror"]["detail"]
