"""Regions: where a company's database and files live.

A region is configuration (``VOUCH_REGIONS`` plus ``VOUCH_REGION_<NAME>_*``): a
PostgreSQL server for its company databases, or on the embedded default a directory
holding one SQLite file per company, and for the companies' files a directory or
(in production) an S3-compatible bucket."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from vouch.config import REGION_LABELS, DatabaseURL, parse_database_url
from vouch.objectstore import is_local, open_store

REGION_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")


class UnknownRegion(ValueError):
    pass


@dataclass(frozen=True)
class Region:
    name: str
    root: Path
    server: DatabaseURL | None  # None: SQLite files under root/companies
    mirror_url: str = ""  # where its SQLite databases are mirrored (vouch.backups.mirror)
    backup_url: str = ""  # where its companies' encrypted backup sets go
    files_url: str = ""  # an S3 bucket for company files (or a directory); empty: root/files

    @property
    def companies_dir(self) -> Path:
        return self.root / "companies"

    @property
    def files_in_bucket(self) -> bool:
        """Whether company files go to an S3-compatible bucket (``s3://`` files URL)."""
        return bool(self.files_url) and not is_local(self.files_url)

    @property
    def files_dir(self) -> Path:
        """Where company files are on disk when they are not in a bucket: the files
        URL when it names a directory, else ``files`` under the region's directory."""
        if self.files_url and not self.files_in_bucket:
            return open_store(self.files_url).root  # type: ignore[union-attr]  # typing debt
        return self.root / "files"

    @property
    def uses_postgresql(self) -> bool:
        return self.server is not None


def label(name: str) -> str:
    """The region's full name for people ("European Union (Frankfurt)"); the code is
    what is stored. A region no longer configured still gets a name."""
    entry = settings.VOUCH_REGION_CONFIG.get(name)
    if entry and entry.get("label"):
        return entry["label"]
    return REGION_LABELS.get(name, name.upper())


def choices() -> list[tuple[str, str]]:
    """(code, full name) of every region a company can choose, in the configured order."""
    return [(name, label(name)) for name in settings.VOUCH_REGIONS]


def get(name: str) -> Region:
    try:
        entry = settings.VOUCH_REGION_CONFIG[name]
    except KeyError:
        raise UnknownRegion(f"unknown region {name!r}") from None
    url = entry["database_url"]
    return Region(
        name=name,
        root=Path(entry["dir"]).resolve(),
        server=parse_database_url(url) if url else None,
        mirror_url=entry.get("mirror_url", ""),
        backup_url=entry.get("backup_url", ""),
        files_url=entry.get("files_url", ""),
    )


def all_regions() -> list[Region]:
    return [get(name) for name in settings.VOUCH_REGIONS]


def files_dir(company_id: uuid.UUID | str, region_name: str) -> Path:
    """The directory of one company's files on disk, in its region."""
    return get(region_name).files_dir / str(uuid.UUID(str(company_id)))
