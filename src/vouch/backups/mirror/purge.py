"""A purged company's mirror goes with it (called by vouch.tenancy.deletion).

Its copy in the region's mirror target (a directory or a bucket) and Litestream's
local state beside its database are removed. Litestream, watching the directory, stops
copying the database when its file is removed, and may upload its last few changes
while it does: the removal is repeated once after SETTLE_SECONDS, so nothing it wrote
meanwhile is left."""

from __future__ import annotations

import shutil
import time
import uuid

from vouch import regions
from vouch.backups.mirror import plan, state
from vouch.objectstore import LocalStore, open_store
from vouch.tenancy import connections

# Longer than Litestream's sync interval plus an upload.
SETTLE_SECONDS = 2.0


def _remove(company_id: uuid.UUID, region) -> int:
    database = connections.sqlite_path(company_id, region)
    removed = 0
    meta = plan.meta_dir(database)
    if meta.exists():
        shutil.rmtree(meta, ignore_errors=True)
        removed += 1
    return removed + remove_copy(region.mirror_url, database.name)


def remove_copy(base_url: str, name: str) -> int:
    """Remove the copy of database file ``name`` from the mirror at ``base_url`` (all of
    ``<base>/<name>/``, a directory or a bucket prefix); how many things were removed.
    Also used by the live set to heal a copy found wrong (vouch.backups.mirror_verify)."""
    store = open_store(base_url)
    if isinstance(store, LocalStore):
        copy = store.root / name
        if not copy.exists():
            return 0
        shutil.rmtree(copy)
        return 1
    return store.delete_prefix(f"{name}/")


def remove_company_mirror(company_id: uuid.UUID | str, region_name: str, settle: float = SETTLE_SECONDS) -> int:
    """Remove company ``company_id``'s mirror copy and Litestream's state for it; how
    many things were removed. A target that cannot be reached raises (the purge is then
    finished on its next run)."""
    region = regions.get(region_name)
    if region.uses_postgresql:
        return 0
    company_id = uuid.UUID(str(company_id))
    removed = _remove(company_id, region)
    running = (state.read() or {}).get("running")
    if removed or running:
        time.sleep(settle)
        removed += _remove(company_id, region)
    return removed
