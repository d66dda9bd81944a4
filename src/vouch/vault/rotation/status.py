"""Which key versions are in use, and how old they are (``vouch keys status``).

Counts and ages come from aggregate queries on ``DataKey`` (control database), so the
summary costs the same few queries for ten companies or ten thousand."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Max, Min
from django.db.models.functions import Coalesce

from vouch.vault import keystore, providers
from vouch.vault.models import DataKey, InstallationKey, KeyPurpose, KeyScheme, KeyState


def status() -> list[dict]:
    """One entry per master key version that exists or is needed: ``version``,
    ``available`` (the provider has it), ``current`` (wraps new keys), ``wraps`` (how
    many company and installation keys it wraps), ``oldest``/``newest`` (when the
    oldest and newest of them were wrapped; None when it wraps none)."""
    provider = providers.get_provider()
    available = set(provider.versions())
    current = provider.current_version() if available else None
    wrapped_at = Coalesce("rewrapped_at", "created_at")
    usage: dict[int, dict] = {}
    for model in (DataKey, InstallationKey):
        for row in (
            model.objects.order_by()
            .values("master_version")
            .annotate(n=Count("pk"), oldest=Min(wrapped_at), newest=Max(wrapped_at))
        ):
            seen = usage.setdefault(row["master_version"], {"n": 0, "oldest": None, "newest": None})
            seen["n"] += row["n"]
            seen["oldest"] = min(filter(None, (seen["oldest"], row["oldest"])), default=None)
            seen["newest"] = max(filter(None, (seen["newest"], row["newest"])), default=None)
    # The key store's files wrapped by the master key (company KEKs, control backup key).
    for version, count in keystore.master_versions_in_use().items():
        usage.setdefault(version, {"n": 0, "oldest": None, "newest": None})["n"] += count
    return [
        {
            "version": version,
            "available": version in available,
            "current": version == current,
            "wraps": usage.get(version, {}).get("n", 0),
            "oldest": usage.get(version, {}).get("oldest"),
            "newest": usage.get(version, {}).get("newest"),
        }
        for version in sorted(available | set(usage))
    ]


def company_summary() -> dict:
    """Company data keys across all companies: ``companies`` (with keys),
    ``versions`` ({data key version: companies whose current key it is}),
    ``rotating`` (companies with a rotation under way), ``oldest`` (the oldest current
    data key: ``created_at``, ``company_id``, ``company_name``; None without companies)."""
    active = DataKey.objects.filter(purpose=KeyPurpose.DATA, state=KeyState.ACTIVE)
    versions = dict(active.order_by().values("version").annotate(n=Count("pk")).values_list("version", "n"))
    rotating = (
        DataKey.objects.filter(purpose=KeyPurpose.DATA, state=KeyState.RETIRING)
        .order_by()
        .values("company_id")
        .distinct()
        .count()
    )
    oldest = active.order_by("created_at").values("created_at", "company_id", "company__name").first()
    return {
        **kek_summary(),
        "companies": sum(versions.values()),
        "versions": dict(sorted(versions.items())),
        "rotating": rotating,
        "oldest": oldest
        and {
            "created_at": oldest["created_at"],
            "company_id": oldest["company_id"],
            "company_name": oldest["company__name"],
        },
    }


def kek_summary() -> dict:
    """Company KEKs: ``kek_store`` (where they are), ``old_scheme`` (companies with key
    rows still wrapped by the master key only: `vouch setup` moves them), ``kek_missing``
    (companies whose rows need a KEK the key store does not have; None when the provider
    keeps KEKs itself, not checked here: one call per company)."""
    old = DataKey.objects.filter(scheme=KeyScheme.MASTER).order_by().values("company_id").distinct().count()
    missing = None
    if keystore.uses_key_store():
        needing = set(
            DataKey.objects.filter(scheme=KeyScheme.COMPANY_KEK)
            .order_by()
            .values_list("company_id", flat=True)
            .distinct()
        )
        missing = sorted(str(c) for c in needing - keystore.kek_companies())
    where = keystore.describe(keystore.COMPANIES) if keystore.uses_key_store() else providers.get_provider().describe()
    return {"kek_store": where, "old_scheme": old, "kek_missing": missing}


def company_keys(company_ids=None) -> list[dict]:
    """Per company (all, or those in ``company_ids``): ``company_id``, ``company_name``,
    ``data_version`` and ``data_created_at`` (the current data key), ``retiring``
    (versions still being re-encrypted away from), ``master_versions`` (wrapping its keys),
    ``kek`` (its key-encryption key is in the key store) and ``old_scheme`` (some of its
    rows are still wrapped by the master key only)."""
    rows = DataKey.objects.order_by("company__name", "company_id", "purpose", "version")
    if company_ids is not None:
        rows = rows.filter(company_id__in=list(company_ids))
    companies: dict = {}
    for row in rows.values(
        "company_id", "company__name", "purpose", "version", "state", "master_version", "created_at", "scheme"
    ).iterator(chunk_size=2000):
        entry = companies.setdefault(
            row["company_id"],
            {
                "company_id": row["company_id"],
                "company_name": row["company__name"],
                "data_version": None,
                "data_created_at": None,
                "retiring": [],
                "master_versions": set(),
                "old_scheme": False,
            },
        )
        entry["master_versions"].add(row["master_version"])
        entry["old_scheme"] |= row["scheme"] == KeyScheme.MASTER
        if row["purpose"] != KeyPurpose.DATA:
            continue
        if row["state"] == KeyState.RETIRING:
            entry["retiring"].append(row["version"])
        else:
            entry["data_version"], entry["data_created_at"] = row["version"], row["created_at"]
    for entry in companies.values():
        entry["master_versions"] = sorted(entry["master_versions"])
        entry["kek"] = keystore.has_kek(entry["company_id"])
    return list(companies.values())


def age(moment: datetime | None, now: datetime) -> str:
    """A short human age: "40 s", "12 min", "5 h", "3 d"; "-" for none."""
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
