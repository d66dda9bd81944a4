"""A company's files during a restore, wherever vault keeps them (vouch.vault.files):
its directory on the region's disk, or its prefix in the region's bucket.

Files are stored already encrypted with the company's data key; these functions move
the stored bytes as they are (streamed, never whole in memory)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vouch import regions
from vouch.vault import files


def _walk(directory: Path) -> list[str]:
    return sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


def copy_live(company, to: Path) -> None:
    """The company's live files, as stored, into directory ``to``."""
    where = files.backend(company.pk, company.region)
    to.mkdir(parents=True, exist_ok=True, mode=0o700)
    if isinstance(where, files._Disk):
        live = regions.files_dir(company.pk, company.region)
        if live.exists():
            shutil.copytree(live, to, dirs_exist_ok=True)
        return
    for name in sorted(where.walk()):
        target = to / name
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with where.ciphertext(name) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)


def keep_aside(company, to: Path) -> None:
    """The live files into ``to`` (a new directory in the rollback directory): moved on
    disk (the same file system), copied out of a bucket (replaced by :func:`put` after)."""
    where = files.backend(company.pk, company.region)
    live = regions.files_dir(company.pk, company.region)
    if isinstance(where, files._Disk) and live.exists():
        os.replace(live, to)
    else:
        copy_live(company, to)


def put(source: Path | None, company) -> None:
    """Make the company's files exactly those in ``source`` (None or missing: none)."""
    where = files.backend(company.pk, company.region)
    wanted = _walk(source) if source is not None and source.exists() else []
    if isinstance(where, files._Disk):
        live = regions.files_dir(company.pk, company.region)
        shutil.rmtree(live, ignore_errors=True)
        live.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if wanted:
            shutil.copytree(source, live)  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
        else:
            live.mkdir(mode=0o700)
        return
    # The bucket: every wanted object written first, then the others removed, so an
    # interruption leaves at worst extra objects (the restore run again removes them).
    for name in wanted:
        where.store.put_file(where.key(name), source / name)  # type: ignore[operator]  # typing debt: an Optional not narrowed here
    for name in set(where.walk()) - set(wanted):
        where.delete(name)
