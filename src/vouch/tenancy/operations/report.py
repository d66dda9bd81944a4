"""``vouch tenants list|show|check``: each company's region, size, schema and health,
and the company databases and files that no company owns (orphans)."""

from __future__ import annotations

import re
import stat
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from vouch import regions
from vouch.objectstore import StoreError, join
from vouch.tenancy import connections, provisioning
from vouch.tenancy.models import Company
from vouch.tenancy.operations.probe import (
    Probe,
    postgres_location,
    postgres_sizes,
    probe,
    probe_many,
    server_key,
    short_error,
)
from vouch.tenancy.services import active_member_count
from vouch.vault.files import bucket_store

DELETED = "deleted"
# An orphan younger than this may be a company being created right now (its
# database is made before its Company row): it is listed but never removed.
ORPHAN_MIN_AGE_SECONDS = 600

_UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_UUID = re.compile(rf"^{_UUID_TEXT}$")
# A company's SQLite file and its companions (WAL, shared memory, provisioning's temporary copy).
_SQLITE_FILE = re.compile(rf"^({_UUID_TEXT})\.sqlite3(?:-wal|-shm|\.tmp|\.tmp-journal)?$")


@dataclass
class CompanyRow:
    id: str
    name: str
    region: str
    status: str
    created_at: str
    probe: Probe | None = None

    @property
    def schema(self) -> str:
        return self.probe.schema_state if self.probe else "-"

    @property
    def size(self) -> int | None:
        return self.probe.size if self.probe else None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "region": self.region,
            "status": self.status,
            "created_at": self.created_at,
            "schema": self.schema,
            "pending": self.probe.pending if self.probe else [],
            "size_bytes": self.size,
            "problem": self.probe.problem if self.probe else "",
        }


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _has_status() -> bool:
    return any(f.name == "status" for f in Company._meta.concrete_fields)


def _rows(queryset) -> list[CompanyRow]:
    fields = ["id", "name", "region", "is_active", "created_at"] + (["status"] if _has_status() else [])
    rows = []
    for values in queryset.values(*fields):
        status = values.get("status") or "active"
        if status == "active" and not values["is_active"]:
            status = "inactive"
        rows.append(
            CompanyRow(
                id=str(values["id"]),
                name=values["name"],
                region=values["region"],
                status=status,
                created_at=values["created_at"].isoformat() if values["created_at"] else "",
            )
        )
    return rows


def list_companies() -> list[CompanyRow]:
    """Every company with its database looked at (deleted ones are listed, not probed)."""

    rows = _rows(Company.objects.order_by("name", "id"))
    live = [row for row in rows if row.status != DELETED]
    probes = probe_many([(row.id, row.region) for row in live])
    for row in live:
        row.probe = probes[row.id]
    return rows


def find_company(key: str):
    """The company with this id, or else with exactly this name. ``LookupError``
    when there is none, or when several share the name."""

    try:
        company = Company.objects.filter(id=uuid.UUID(key.strip())).first()
    except ValueError:
        company = None
    if company is not None:
        return company
    matches = list(Company.objects.filter(name=key.strip()).order_by("id")[:10])
    if not matches:
        raise LookupError(f"no company with id or name {key!r}")
    if len(matches) > 1:
        ids = ", ".join(str(c.pk) for c in matches)
        raise LookupError(f"several companies are named {key!r}; use an id: {ids}")
    return matches[0]


@dataclass
class FilesState:
    path: str
    exists: bool = False
    mode: str = ""
    size: int = 0
    problem: str = ""


def files_state(company_id: str, region_name: str, *, with_size: bool = False) -> FilesState:
    try:
        path = regions.files_dir(uuid.UUID(company_id), region_name)
        region = regions.get(region_name)
    except regions.UnknownRegion as exc:
        return FilesState(path="", problem=str(exc))
    if region.files_in_bucket:
        return _bucket_files_state(company_id, region, with_size=with_size)
    state = FilesState(path=str(path))
    try:
        info = path.stat()
    except FileNotFoundError:
        state.problem = "files directory missing"
        return state
    state.exists = True
    state.mode = oct(stat.S_IMODE(info.st_mode))
    if not stat.S_ISDIR(info.st_mode):
        state.problem = "files path is not a directory"
    elif info.st_mode & 0o007:
        # Company files are personal data: owner-only, like the databases.
        state.problem = f"files directory is open to other users (mode {state.mode})"
    if with_size and state.exists:
        state.size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return state


def _bucket_files_state(company_id: str, region: regions.Region, *, with_size: bool) -> FilesState:
    """A company's files in its region's bucket: a prefix, not a directory (nothing to be
    missing or open to others); the size lists its objects."""

    state = FilesState(path=join(region.files_url, str(uuid.UUID(company_id))), exists=True)
    if with_size:
        try:
            state.size = sum(o.size for o in bucket_store(region.files_url).list(f"{uuid.UUID(company_id)}/"))
        except StoreError as exc:
            state.problem = f"files bucket unavailable: {exc}"
    return state


def show_company(company) -> dict:
    row = _rows(type(company).objects.filter(pk=company.pk))[0]
    found = probe(row.id, row.region) if row.status != DELETED else None
    files = files_state(row.id, row.region, with_size=True)
    problems = [p for p in ((found.problem if found else ""), files.problem) if p]
    return {
        **row.as_dict(),
        "database": {
            "location": found.location if found else "",
            "exists": found.exists if found else False,
            "size_bytes": found.size if found else None,
            "identity": found.identity if found else None,
            "identity_ok": found.identity_ok if found else False,
            "provisioned_at": found.provisioned_at if found else "",
        },
        "files": asdict(files),
        "members": active_member_count(company),
        "problems": problems,
    }


# --- Check and orphans ------------------------------------------------------------


@dataclass
class Orphan:
    kind: str  # database / files
    region: str
    company_id: str
    location: str
    age_seconds: float | None = None
    note: str = ""

    def removable(self, min_age: float) -> bool:
        return self.age_seconds is None or self.age_seconds >= min_age


@dataclass
class CheckReport:
    companies: int = 0
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, name, region, problem
    orphans: list[Orphan] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.orphans


def _age(path: Path) -> float | None:
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None


def _age_from(provisioned_at: str) -> float | None:
    try:
        return max(0.0, time.time() - datetime.fromisoformat(provisioned_at).timestamp())
    except (TypeError, ValueError):
        return None


def find_orphans(known: dict[str, str]) -> tuple[list[Orphan], list[tuple[str, str]]]:
    """Company databases and file areas with no Company row, in every region.

    ``known`` maps every company id (deleted ones too) to its region. Returns the
    orphans and, separately, ``(company id, message)`` for data of a known company
    found outside its own region (reported, never removed)."""
    orphans: list[Orphan] = []
    misplaced: list[tuple[str, str]] = []

    def classify(cid: str, region: regions.Region, what: str) -> bool:
        if cid in known:
            if known[cid] != region.name and not _same_place(known[cid], region, what):
                misplaced.append((cid, f"{what} found in region {region.name}, not {known[cid]}"))
            return False
        return True

    servers_seen: set[tuple[str, str]] = set()
    for region in regions.all_regions():
        try:
            _scan_region(region, servers_seen, classify, orphans)
        except Exception as exc:  # noqa: BLE001 - one unreachable region must not hide the others
            misplaced.append(("", f"region {region.name}: could not look for orphans: {short_error(exc)}"))
    # A database's own record of when it was made beats file times (PostgreSQL has none).
    # Probed concurrently, a region at a time (the same id may be an orphan in two), with
    # the server's sizes read once: one probe after another, each reading its own size,
    # took about a minute over 3,200 orphan databases (a test run's leftovers).
    by_region: dict[str, list[Orphan]] = {}
    for orphan in orphans:
        if orphan.kind == "database":
            by_region.setdefault(orphan.region, []).append(orphan)
    for region_name, databases in by_region.items():
        probes = probe_many([(orphan.company_id, region_name) for orphan in databases])
        for orphan in databases:
            _note_probe(orphan, probes[str(uuid.UUID(orphan.company_id))])
    # The youngest sign of a company decides for all its leftovers.
    youngest: dict[str, float] = {}
    for orphan in orphans:
        if orphan.age_seconds is not None:
            youngest[orphan.company_id] = min(youngest.get(orphan.company_id, orphan.age_seconds), orphan.age_seconds)
    for orphan in orphans:
        if orphan.company_id in youngest:
            orphan.age_seconds = youngest[orphan.company_id]
    return orphans, misplaced


def _note_probe(orphan: Orphan, found: Probe) -> None:
    """A database's own record of when it was made, and whose it says it is."""
    provisioned = _age_from(found.provisioned_at) if found.provisioned_at else None
    if provisioned is not None:
        orphan.age_seconds = min(provisioned, orphan.age_seconds or provisioned)
    if found.identity and found.identity != orphan.company_id:
        orphan.note = f"its identity row names company {found.identity}"


def _scan_region(region: regions.Region, servers_seen: set, classify, orphans: list) -> None:
    """Orphans in one region (a PostgreSQL server shared by regions is looked at once)."""
    if region.uses_postgresql:
        key = server_key(region)
        if key not in servers_seen:
            servers_seen.add(key)
            prefix = connections.postgres_name(uuid.UUID(int=0))[:-32]  # "<prefix>_"
            pattern = re.compile(rf"^{re.escape(prefix)}([0-9a-f]{{32}})$")
            for name in sorted(postgres_sizes(region)):
                match = pattern.match(name)
                cid = str(uuid.UUID(match.group(1))) if match else ""
                if match and classify(cid, region, "database"):
                    orphans.append(Orphan("database", region.name, cid, postgres_location(region, name)))
    elif region.companies_dir.is_dir():
        ids: dict[str, list[Path]] = {}
        for path in region.companies_dir.iterdir():
            match = _SQLITE_FILE.match(path.name)
            if match:
                ids.setdefault(match.group(1), []).append(path)
        for cid, paths in sorted(ids.items()):
            if classify(cid, region, "database"):
                ages = [a for a in (_age(p) for p in paths) if a is not None]
                location = str(connections.sqlite_path(uuid.UUID(cid), region))
                orphans.append(Orphan("database", region.name, cid, location, min(ages) if ages else None))
    if region.files_dir.is_dir():
        for path in sorted(region.files_dir.iterdir()):
            if _UUID.match(path.name) and classify(path.name, region, "files"):
                orphans.append(Orphan("files", region.name, path.name, str(path), _age(path)))


def _same_place(region_name: str, region: regions.Region, what: str) -> bool:
    """Whether ``region_name`` keeps its ``what`` where ``region`` does (regions may
    share a PostgreSQL server: a company database there is in its place)."""
    try:
        other = regions.get(region_name)
    except regions.UnknownRegion:
        return False
    if what == "database" and other.uses_postgresql and region.uses_postgresql:
        return server_key(other) == server_key(region)
    if what == "database" and (other.uses_postgresql or region.uses_postgresql):
        return False
    return other.root == region.root


def _guarded_by_role(rows) -> dict[str, bool]:
    """For each company on PostgreSQL: whether its database admits its own role and no
    other (provisioning.ensure_role); a region whose server does not answer is left out."""
    by_region: dict[str, list[str]] = {}
    for row in rows:
        by_region.setdefault(row.region, []).append(row.id)
    guarded: dict[str, bool] = {}
    for region_name, ids in by_region.items():
        try:
            region = regions.get(region_name)
            if not region.uses_postgresql:
                continue
            ok = provisioning.roles_in_place(region, [uuid.UUID(cid) for cid in ids])
        except Exception:  # noqa: BLE001, S112 - the probe already reports a server that does not answer
            continue
        guarded |= {cid: uuid.UUID(cid) in ok for cid in ids}
    return guarded


def check_all() -> CheckReport:
    """Health of every company and the orphans of every region."""

    rows = _rows(Company.objects.order_by("name", "id"))
    report = CheckReport(companies=len(rows))
    live = [row for row in rows if row.status != DELETED]
    probes = probe_many([(row.id, row.region) for row in live])
    guarded = _guarded_by_role(live)
    for row in rows:
        if row.status == DELETED:
            found = probe(row.id, row.region)
            if found.exists:
                report.problems.append((row.id, row.name, row.region, "deleted, but its database still exists"))
            continue
        found = probes[row.id]
        if found.problem:
            report.problems.append((row.id, row.name, row.region, found.problem))
        elif found.pending:
            report.problems.append((row.id, row.name, row.region, f"schema behind: {', '.join(found.pending)}"))
        if found.exists and guarded.get(row.id) is False:
            problem = "its database lacks its own role or admits others: run `vouch tenants migrate`"
            report.problems.append((row.id, row.name, row.region, problem))
        files = files_state(row.id, row.region)
        if files.problem:
            report.problems.append((row.id, row.name, row.region, files.problem))
    known = {row.id: row.region for row in rows}
    report.orphans, misplaced = find_orphans(known)
    names = {row.id: row.name for row in rows}
    for cid, message in misplaced:
        report.problems.append((cid, names.get(cid, ""), known.get(cid, ""), message))
    return report


def remove_orphans(orphans: list[Orphan], *, min_age: float = ORPHAN_MIN_AGE_SECONDS) -> list[Orphan]:
    """Remove the orphans old enough to be safe; returns those removed.

    Each id is checked against the Company table again just before, and nothing
    belonging to an existing company is ever touched."""

    removed = []
    for orphan in orphans:
        if not orphan.removable(min_age):
            continue
        if Company.objects.filter(id=orphan.company_id).exists():
            continue
        if orphan.kind == "database":
            provisioning.discard(uuid.UUID(orphan.company_id), orphan.region)
        else:
            _remove_files(Path(orphan.location), orphan.region)
        removed.append(orphan)
    return removed


def _remove_files(path: Path, region_name: str) -> None:
    import shutil

    # Only ever a directory directly inside a region's files area, named as a company id.
    region = regions.get(region_name)
    if path.parent.resolve() != region.files_dir.resolve() or not _UUID.match(path.name):
        raise ValueError(f"refusing to remove {path}")
    if not path.exists() and not path.is_symlink():
        return  # already gone with its database
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


__all__ = [
    "ORPHAN_MIN_AGE_SECONDS",
    "CheckReport",
    "CompanyRow",
    "Orphan",
    "check_all",
    "find_company",
    "find_orphans",
    "human_size",
    "list_companies",
    "remove_orphans",
    "show_company",
]
