"""Encryption at rest figures for `make bench` (vouch.vault).

Each backend, the embedded SQLite default and the local PostgreSQL when it answers,
gets its own Django process and throwaway data directory (on PostgreSQL also its own
control database and company databases, dropped afterwards). In it, after migrating
and creating one company through ``tenancy.services.create_company``:

1. Per field, in the company's context with its keys cached (as in any request after
   the first): encrypt is ``EncryptedCharField.pre_save`` of activity Entry.summary
   holding a 41-character value; decrypt is the first read of that attribute on an
   Entry made by ``Model.from_db`` from the row's stored values (a fresh instance per
   read; only the read is timed). Beside them the raw AES-256-GCM encrypt and decrypt
   of the same bytes with the same associated data: what the field adds to.
2. A list of 1,000 candidates: ``references.Candidate`` (name, email, phone, notes
   encrypted) queried and rendered through one template, against the same rows in a
   plaintext twin table (bench_plain_candidate: the same columns as plain CharFields,
   the same ids and dates, hence the same order), made with the schema editor in the
   company database. The two pages must come out byte-identical. Interleaved rounds.
3. Files (in the SQLite process only: no database is involved): ``encrypt_stream``
   and ``decrypt_stream`` of 64 MiB from memory into a sink that only counts, in MB/s
   (10^6 bytes), against ``openssl speed -evp aes-256-gcm`` with 16 KiB blocks run
   in the same bench. The ratio is taken on CPU time, as openssl speed measures by
   default, so other processes on a shared machine do not skew it; wall-clock
   figures are reported beside it.
4. Master key rotation: 10,000 companies, each with its wrapped data and index key
   (as ``keyring.create_company_keys`` writes them), inserted in bulk into the control
   database (no company databases: rotating the master key does not open them), then
   ``vault.rotation.rotate_master()`` timed, and every key row checked to be under
   the new master version and to unwrap.

Run alone: .venv/bin/python bench/run.py --only vault   (or .venv/bin/python bench/vault.py)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import say, verdict_of  # noqa: E402

TARGET_FIELD_US = 20.0
TARGET_LIST_RATIO = 1.5
TARGET_ROTATION_S = 10.0
ROTATION_COMPANIES = 10_000
LIST_ROWS = 1000
LIST_ROUNDS = 15
FIELD_CALLS = 20_000
FILE_MIB = 64
FILE_ROUNDS = 5
OPENSSL_BLOCK = 16384
OPENSSL_SECONDS = 1
VALUE = "Reference check completed for Alice Smith"  # 41 characters
BACKENDS = ("sqlite", "postgresql")


# --- in the Django process ------------------------------------------------------------------


def _fields(ctx) -> dict:
    """Per-field encrypt and decrypt, and raw AES-256-GCM of the same bytes."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from vouch.activity.models import Entry
    from vouch.vault import keyring, sealing

    field = Entry._meta.get_field("summary")
    stored = Entry.objects.create(action="bench", summary=VALUE, actor_name="Bench Person", details={"n": 1})
    names = [f.attname for f in Entry._meta.concrete_fields]
    values = Entry.objects.filter(pk=stored.pk).values_list(*names).get()
    if not all(
        type(v).__name__ == "Sealed" for n, v in zip(names, values, strict=True) if n in ("summary", "actor_name")
    ):
        raise RuntimeError("stored encrypted values did not come back sealed")

    entry = Entry(action="bench", summary=VALUE)
    encrypt = harness.per_call(lambda _: field.pre_save(entry, True), FIELD_CALLS, warmup=1000)
    decrypt = harness.per_call(
        lambda instance: instance.summary,
        FIELD_CALLS,
        warmup=1000,
        prepare=lambda i: Entry.from_db(ctx.alias, names, values),
    )
    if Entry.from_db(ctx.alias, names, values).summary != VALUE:
        raise RuntimeError("the decrypted value is not the stored one")
    from_db = harness.per_call(lambda _: Entry.from_db(ctx.alias, names, values), FIELD_CALLS // 4, warmup=200)

    keys = keyring.keys_for(ctx.company_id)
    cipher = AESGCM(keys.data[keys.current_version])
    aad = b"\x01\x00\x00\x00\x01" + sealing.binding(ctx.company_id, field.location, stored.pk)
    plaintext = VALUE.encode()
    nonce = os.urandom(12)
    ciphertext = cipher.encrypt(nonce, plaintext, aad)
    raw_encrypt = harness.per_call(
        lambda n: cipher.encrypt(n, plaintext, aad), FIELD_CALLS, warmup=1000, prepare=lambda i: os.urandom(12)
    )
    raw_decrypt = harness.per_call(lambda _: cipher.decrypt(nonce, ciphertext, aad), FIELD_CALLS, warmup=1000)
    return {
        "model_field": "activity.Entry.summary",
        "value_chars": len(VALUE),
        "encrypt": encrypt,
        "decrypt": decrypt,
        "from_db_only": from_db,
        "raw_aesgcm_encrypt": raw_encrypt,
        "raw_aesgcm_decrypt": raw_decrypt,
        "key_cache_seconds": _setting("VOUCH_KEY_CACHE_SECONDS"),
    }


def _setting(name: str):
    from django.conf import settings

    return getattr(settings, name)


def _plain_twin(model):
    """An unmanaged model with ``model``'s columns, every vault field a plain text column."""
    from django.db import models

    from vouch.vault import fields as vault_fields

    attrs: dict = {"__module__": __name__}
    for f in model._meta.concrete_fields:
        if isinstance(f, vault_fields.EncryptedField | vault_fields.BlindIndexField):
            kwargs = {"db_column": f.column, "null": f.null, "blank": f.blank}
            if f.max_length:
                plain = models.CharField(max_length=f.max_length, db_index=f.db_index, **kwargs)
            else:
                plain = models.TextField(**kwargs)
        elif f.is_relation:
            plain = models.BigIntegerField(db_column=f.column, null=True)
            attrs[f.attname] = plain
            continue
        else:
            plain = f.clone()
        attrs[f.name] = plain
    attrs["Meta"] = type(
        "Meta", (), {"app_label": model._meta.app_label, "db_table": "bench_plain_candidate", "managed": False}
    )
    return type("BenchPlainCandidate", (models.Model,), attrs)


# The columns the candidate list page reads (references.services.listing), on both sides.
LIST_COLUMNS = ("id", "created_at", "name", "email", "phone")
LIST_TEMPLATE = (
    "<table>{% for c in candidates %}<tr><td>{{ c.name }}</td><td>{{ c.email }}</td><td>{{ c.phone }}</td></tr>"
    "{% endfor %}</table>"
)
FIRST = ["Alice", "Bashir", "Chen", "Dagny", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Joanna"]
LAST = ["Smith", "Okafor", "Nguyen", "Larsen", "Kowalski", "Haddad", "Moreau", "Tanaka", "Silva", "Brown"]


def _list(ctx) -> dict:
    """1,000 encrypted candidates vs the same 1,000 rows in plaintext: query and render."""
    from django.apps import apps
    from django.db import connections, transaction
    from django.template import engines

    if not apps.is_installed("vouch.references"):
        return {"skipped": "references.Candidate is not installed yet"}
    from vouch.references.models import Candidate

    plain_model = _plain_twin(Candidate)
    with connections[ctx.alias].schema_editor() as editor:
        editor.create_model(plain_model)
    candidates = []
    for i in range(LIST_ROWS):
        first, last = FIRST[i % 10], LAST[(i // 10) % 10]
        candidates.append(
            Candidate(
                name=f"{first} {last} {i:04d}",
                email=f"{first.lower()}.{last.lower()}{i}@example.com",
                phone=f"+44 7700 9{i:05d}",
                notes=f"Applied for the role of analyst; two referees named, one former manager ({i}).",
            )
        )
    with transaction.atomic(using=ctx.alias):
        Candidate.objects.bulk_create(candidates)
        twins = []
        for c in candidates:
            # The values the candidate was saved with (bulk_create set the dates and indexes).
            twins.append(plain_model(**{f.attname: c.__dict__[f.attname] for f in plain_model._meta.concrete_fields}))
        plain_model.objects.bulk_create(twins)

    template = engines["django"].from_string(LIST_TEMPLATE)

    def page(model) -> str:
        return template.render(
            {"candidates": model.objects.only(*LIST_COLUMNS).order_by("-created_at", "-id")[:LIST_ROWS]}
        )

    encrypted_html, plain_html = page(Candidate), page(plain_model)
    if (
        encrypted_html != plain_html
        or encrypted_html.count("<tr>") != LIST_ROWS
        or "Alice Smith 0000" not in plain_html
    ):
        raise RuntimeError("the encrypted and plaintext lists did not render the same 1,000 rows")
    if any(b"Alice" in sealed.data for sealed in Candidate.objects.values_list("name", flat=True)):
        raise RuntimeError("a candidate name is stored in plaintext")
    samples: dict[str, list[float]] = {"plain": [], "encrypted": []}
    for _ in range(2):  # warm-up: query plans, template, key cache
        page(plain_model), page(Candidate)
    for round_number in range(LIST_ROUNDS):
        order = (("plain", plain_model), ("encrypted", Candidate))
        for label, model in order if round_number % 2 == 0 else order[::-1]:
            spent, _ = harness.once(lambda model=model: page(model), unit="ms")
            samples[label].append(spent)
    fetch = {
        label: harness.repeated(
            lambda model=model: list(model.objects.only(*LIST_COLUMNS).order_by("-created_at", "-id")[:LIST_ROWS]), 5
        )
        for label, model in (("plain", plain_model), ("encrypted", Candidate))
    }
    plain, encrypted = harness.summarise(samples["plain"], "ms"), harness.summarise(samples["encrypted"], "ms")
    return {
        "rows": LIST_ROWS,
        "rounds": LIST_ROUNDS,
        "columns": "name, email, phone (the list page's columns: notes not fetched)",
        "plain": plain,
        "encrypted": encrypted,
        "ratio": encrypted["median"] / plain["median"],
        "query_only_ms": {label: s["median"] for label, s in fetch.items()},
        "identical_html_bytes": len(encrypted_html),
    }


class CountingSink:
    """A file-like sink that only counts what is written (a /dev/null without syscalls)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)


def _files(ctx) -> dict:
    import hashlib
    import io

    from vouch.vault.files import CHUNK_BYTES, decrypt_stream, encrypt_stream

    size = FILE_MIB * 1024 * 1024
    payload = os.urandom(size)
    view = memoryview(payload)
    # The pieces EncryptedStorage.save reads an upload in (content.chunks(CHUNK_BYTES)).
    piece = CHUNK_BYTES

    def chunks():
        for start in range(0, size, piece):
            yield view[start : start + piece]

    stored = io.BytesIO()
    encrypt_stream(ctx.company_id, "bench/file.bin", chunks(), stored)
    ciphertext = stored.getvalue()
    check = hashlib.sha256()
    for chunk in decrypt_stream(ctx.company_id, "bench/file.bin", io.BytesIO(ciphertext)):
        check.update(chunk)
    if check.digest() != hashlib.sha256(payload).digest():
        raise RuntimeError("the file did not decrypt to what was encrypted")

    def run(fn) -> dict:
        wall, cpu = [], []
        for _ in range(FILE_ROUNDS):
            started, cpu_started = time.perf_counter(), time.thread_time()
            fn()
            cpu.append(size / (time.thread_time() - cpu_started) / 1e6)
            wall.append(size / (time.perf_counter() - started) / 1e6)
        return {"wall_mb_s": harness.summarise(wall, "MB/s"), "cpu_mb_s": harness.summarise(cpu, "MB/s")}

    def encrypt():
        sink = CountingSink()
        encrypt_stream(ctx.company_id, "bench/file.bin", chunks(), sink)
        assert sink.size == len(ciphertext)

    def decrypt():
        total = 0
        for chunk in decrypt_stream(ctx.company_id, "bench/file.bin", io.BytesIO(ciphertext)):
            total += len(chunk)
        assert total == size

    # openssl right before and right after, so it meets the same neighbours on the machine;
    # the better of the two is the ceiling.
    ssl = [openssl_speed()]
    measured = {"encrypt": run(encrypt), "decrypt": run(decrypt)}
    ssl.append(openssl_speed())
    found = {"mib": FILE_MIB, "rounds": FILE_ROUNDS, "piece_bytes": piece, **measured, "openssl_runs": ssl}
    if all(r.get("available") for r in ssl):
        found["openssl"] = {
            "version": ssl[0]["version"],
            "block_bytes": ssl[0]["block_bytes"],
            "seconds": ssl[0]["seconds"],
            "cpu_mb_s": max(r["cpu_mb_s"] for r in ssl),
            "wall_mb_s": max(r["wall_mb_s"] for r in ssl),
        }
        for way in ("encrypt", "decrypt"):
            found[way]["ratio_to_openssl_cpu"] = found[way]["cpu_mb_s"]["median"] / found["openssl"]["cpu_mb_s"]
            found[way]["ratio_to_openssl_wall"] = found[way]["wall_mb_s"]["median"] / found["openssl"]["wall_mb_s"]
    else:
        found["openssl"] = {"available": False, "reason": next(r["reason"] for r in ssl if not r.get("available"))}
    return found


def _rotation(companies: int) -> dict:
    """Bulk key rows for ``companies`` companies, then rotate_master() timed."""
    import secrets

    from django.db import transaction

    from vouch.tenancy.models import Company
    from vouch.vault import keyring, providers
    from vouch.vault.models import DataKey, KeyPurpose

    try:
        from vouch.vault.rotation import rotate_master
    except ImportError:
        return {"skipped": "vouch.vault.rotation is not there yet"}
    provider = providers.get_provider()
    started = time.perf_counter()
    have = Company.objects.count()
    ids = [uuid.uuid4() for _ in range(max(0, companies - have))]
    with transaction.atomic():
        Company.objects.bulk_create(
            [Company(id=cid, name=f"Rotation bench {i:05d}", region="eu") for i, cid in enumerate(ids)],
            batch_size=1000,
        )
        rows = []
        for cid in ids:
            for purpose in (KeyPurpose.DATA, KeyPurpose.INDEX):
                master_version, wrapped = provider.wrap(secrets.token_bytes(32), keyring.wrap_aad(cid, purpose, 1))
                rows.append(
                    DataKey(company_id=cid, purpose=purpose, version=1, master_version=master_version, wrapped=wrapped)
                )
        DataKey.objects.bulk_create(rows, batch_size=2000)
    setup_s = time.perf_counter() - started
    old_version = provider.current_version()
    key_rows = DataKey.objects.count()
    say(f"  {Company.objects.count()} companies, {key_rows} key rows in {setup_s:.1f}s; rotating the master key")
    marks: list[tuple[float, int, int]] = []

    def progress(done: int, total: int, stage: str) -> None:
        marks.append((time.perf_counter(), done, total))

    started = time.perf_counter()
    outcome = rotate_master(progress=progress)
    seconds = time.perf_counter() - started
    # The first pass ends when every key has been re-wrapped; the rest is the wait for
    # running processes to see the new version (SETTLE_SECONDS from the start), the
    # locked final pass and retiring the old version.
    first_pass = next((t - started for t, done, total in marks if total and done >= total), None)
    new_version = providers.get_provider().current_version()
    left = DataKey.objects.exclude(master_version=new_version).count()
    if new_version == old_version or left or outcome["rewrapped"] != key_rows:
        raise RuntimeError(f"rotation to master version {new_version} (from {old_version}) left {left} rows: {outcome}")
    keyring.forget()
    for sample in DataKey.objects.order_by("?")[:20]:
        providers.get_provider().unwrap(
            sample.master_version,
            bytes(sample.wrapped),
            keyring.wrap_aad(sample.company_id, sample.purpose, sample.version),
        )
    return {
        "companies": Company.objects.count(),
        "key_rows": key_rows,
        "setup_s": setup_s,
        "seconds": seconds,
        "first_pass_s": first_pass,
        "settle_s": _settle_seconds(),
        "master_versions": [old_version, new_version],
        "result": outcome,
    }


def _settle_seconds() -> float | None:
    from vouch.vault.rotation import master

    return getattr(master, "SETTLE_SECONDS", None)


def worker(backend: str, parts: list[str], companies: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    from vouch.accounts.models import User
    from vouch.core.context import company_context
    from vouch.tenancy.services import create_company

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    owner = User.objects.create_user(f"bench-vault-{backend}@example.com", None, full_name="Bench")
    company = create_company("Vault Bench", "eu", owner)
    result: dict = {"backend": backend, "setup_s": time.perf_counter() - started, "seconds": {}}
    with company_context(company) as ctx:
        for part, fn in (("fields", _fields), ("list", _list), ("files", _files)):
            if part in parts:
                say(f"  {backend}: {part} (load {harness.loads(harness.load())})")
                started = time.perf_counter()
                result[part] = fn(ctx)
                result["seconds"][part] = time.perf_counter() - started
    if "rotation" in parts:
        say(f"  {backend}: master rotation over {companies} companies (load {harness.loads(harness.load())})")
        started = time.perf_counter()
        result["rotation"] = _rotation(companies)
        result["seconds"]["rotation"] = time.perf_counter() - started
    return result


# --- in the bench process --------------------------------------------------------------------


def run_backend(backend: str, parts: list[str], companies: int) -> dict:
    with harness.scratch_dir("vouch-bench-vault-") as data_dir:
        env = harness.django_env(data_dir)
        pg_name = None
        try:
            if backend == "postgresql":
                why = harness.postgres_reachable()
                if why:
                    return {"reachable": False, "reason": why}
                pg_name = f"vouch_bench_vault_{uuid.uuid4().hex[:8]}"
                url = harness.create_pg_database(pg_name)
                env |= {
                    "VOUCH_DATABASE_URL": url,
                    "VOUCH_COMPANY_DATABASE_URL": url,
                    "VOUCH_COMPANY_DATABASE_PREFIX": f"{pg_name}_c",
                }
            command = [sys.executable, str(Path(__file__).resolve()), "worker", backend, ",".join(parts)]
            found = harness.run_json([*command, str(companies)], env, what=f"vault bench ({backend})", timeout=900)
            return found | {"reachable": True}
        finally:
            if pg_name:
                harness.drop_pg_databases_with_prefix(pg_name)


def openssl_speed(block: int = OPENSSL_BLOCK, seconds: int = OPENSSL_SECONDS) -> dict:
    """`openssl speed -evp aes-256-gcm` at one block size, in MB/s: by CPU time (its
    default) and by wall-clock time (-elapsed)."""
    if shutil.which("openssl") is None:
        return {"available": False, "reason": "no openssl command"}
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=False).stdout.strip()
    found: dict = {"available": True, "version": version, "block_bytes": block, "seconds": seconds}
    for label, extra in (("cpu_mb_s", []), ("wall_mb_s", ["-elapsed"])):
        command = ["openssl", "speed", "-mr", *extra, "-seconds", str(seconds), "-bytes", str(block)]
        result = subprocess.run(
            [*command, "-evp", "aes-256-gcm"], capture_output=True, text=True, timeout=120, check=False
        )
        # Machine-readable result: "+F:<n>:AES-256-GCM:<bytes per second per block size>".
        match = re.search(r"^\+F:\d+:[^:]+:([\d.]+)", result.stdout, re.M)
        if result.returncode != 0 or not match:
            return {"available": False, "reason": (result.stderr or result.stdout).strip()[-500:]}
        found[label] = float(match.group(1)) / 1e6
    return found


def measure(parts: list[str] | None = None, companies: int = ROTATION_COMPANIES) -> dict:
    """Every vault figure on every reachable backend."""
    parts = parts or ["fields", "list", "files", "rotation"]
    results: dict = {"cpus": os.cpu_count(), "load_start": harness.load(), "backends": {}, "seconds": {}}
    for backend in BACKENDS:
        # Files do not touch a database: measured once, in the SQLite process.
        wanted = [p for p in parts if backend == "sqlite" or p != "files"]
        say(f"vault, {backend}: {', '.join(wanted)}")
        started = time.perf_counter()
        results["backends"][backend] = run_backend(backend, wanted, companies)
        results["seconds"][backend] = time.perf_counter() - started
    results["load_end"] = harness.load()
    results["targets"] = _targets(results)
    return results


def _targets(results: dict) -> dict:
    met: dict[str, bool] = {}
    for backend, r in results["backends"].items():
        if not r.get("reachable"):
            continue
        if "fields" in r:
            met[f"field_encrypt_{backend}"] = r["fields"]["encrypt"]["median"] < TARGET_FIELD_US
            met[f"field_decrypt_{backend}"] = r["fields"]["decrypt"]["median"] < TARGET_FIELD_US
        if "ratio" in r.get("list", {}):
            met[f"list_ratio_{backend}"] = r["list"]["ratio"] <= TARGET_LIST_RATIO
        if "seconds" in r.get("rotation", {}):
            met[f"rotation_{backend}"] = r["rotation"]["seconds"] < TARGET_ROTATION_S
    return {
        "field_median_us": TARGET_FIELD_US,
        "list_ratio": TARGET_LIST_RATIO,
        "rotation_s": TARGET_ROTATION_S,
        "met": met,
    }


# --- the report -----------------------------------------------------------------------------

SHORT = {"sqlite": "sqlite", "postgresql": "pg"}


def table_rows(results: dict) -> list[str]:
    """The vault block of bench/run.py's table: its own columns under a sub-header."""
    met = results["targets"]["met"]
    header = f"{'vault (at rest)':<26} {'median':>10} {'p99':>10} {'unit':<5} {'ratio':>6}  target"
    rows = ["", header, "-" * (len(header) + 14)]

    def row(name, median, p99, unit, ratio="", target=""):
        p99_text = f"{p99:>10.2f}" if isinstance(p99, float) else f"{p99:>10}"
        ratio_text = f"{ratio:>6.2f}" if isinstance(ratio, float) else f"{ratio:>6}"
        rows.append(f"{name:<26} {median:>10.2f} {p99_text} {unit:<5} {ratio_text}  {target}".rstrip())

    for backend, r in results["backends"].items():
        b = SHORT[backend]
        if not r.get("reachable"):
            rows.append(f"{backend}: not reachable ({r.get('reason', '')})")
            continue
        if "fields" in r:
            f = r["fields"]
            for way in ("encrypt", "decrypt"):
                s = f[way]
                raw = f[f"raw_aesgcm_{way}"]
                row(
                    f"field {way} {b}",
                    s["median"],
                    s["p99"],
                    "µs",
                    "",
                    f"< {TARGET_FIELD_US:g} µs {verdict_of(met, f'field_{way}_{backend}')}",
                )
                row(f"  raw AES-GCM {way}", raw["median"], raw["p99"], "µs")
        lst = r.get("list", {})
        if "ratio" in lst:
            row(f"list {lst['rows']} plain {b}", lst["plain"]["median"], lst["plain"]["p99"], "ms", 1.0)
            row(
                f"list {lst['rows']} encrypted {b}",
                lst["encrypted"]["median"],
                lst["encrypted"]["p99"],
                "ms",
                lst["ratio"],
                f"<= {TARGET_LIST_RATIO:g}x {verdict_of(met, f'list_ratio_{backend}')}",
            )
        elif lst:
            rows.append(f"list {b}: {lst.get('skipped')}")
        rot = r.get("rotation", {})
        if "seconds" in rot:
            row(
                f"rotate master {rot['companies']} {b}",
                rot["seconds"],
                "",
                "s",
                "",
                f"< {TARGET_ROTATION_S:g} s {verdict_of(met, f'rotation_{backend}')}",
            )
        elif rot:
            rows.append(f"rotate master {b}: {rot.get('skipped')}")
    files = results["backends"].get("sqlite", {}).get("files")
    if files:
        ssl = files["openssl"]
        if "cpu_mb_s" in ssl:
            row(f"openssl aes-256-gcm {ssl['block_bytes'] // 1024}K", ssl["cpu_mb_s"], "", "MB/s", 1.0, "(CPU time)")
        for way in ("encrypt", "decrypt"):
            w = files[way]
            ratio = w.get("ratio_to_openssl_cpu", "")
            row(f"file {way} {FILE_MIB} MiB", w["cpu_mb_s"]["median"], "", "MB/s", ratio, "(CPU time) vs openssl")
        for way in ("encrypt", "decrypt"):
            row(f"  file {way} (wall clock)", files[way]["wall_mb_s"]["median"], "", "MB/s")
        if "cpu_mb_s" not in ssl:
            rows.append(f"openssl speed: not available ({ssl.get('reason', '')})")
    return rows


def describe(results: dict) -> list[str]:
    lines = [
        f"encryption at rest ({results['cpus']} CPUs; load average at start "
        f"{harness.loads(results['load_start'])}, at end {harness.loads(results['load_end'])}: "
        "other processes share this machine, so absolute figures are noisy; the ratios are taken side by side)"
    ]
    for backend, r in results["backends"].items():
        if not r.get("reachable"):
            continue
        if "fields" in r:
            f = r["fields"]
            lines.append(
                f"  {backend}: field {f['model_field']} ({f['value_chars']} chars) encrypt median "
                f"{f['encrypt']['median']:.2f} µs (raw AES-GCM {f['raw_aesgcm_encrypt']['median']:.2f}), decrypt "
                f"{f['decrypt']['median']:.2f} µs (raw {f['raw_aesgcm_decrypt']['median']:.2f}); Model.from_db "
                f"itself {f['from_db_only']['median']:.2f} µs, not counted"
            )
        lst = r.get("list", {})
        if "ratio" in lst:
            q = lst["query_only_ms"]
            lines.append(
                f"  {backend}: list of {lst['rows']} ({lst['columns']}), query + render, {lst['rounds']} interleaved "
                f"rounds: plaintext {lst['plain']['median']:.1f} ms, encrypted {lst['encrypted']['median']:.1f} ms, "
                f"ratio {lst['ratio']:.2f}; the query alone {q['plain']:.1f} vs {q['encrypted']:.1f} ms; "
                f"both pages byte-identical ({lst['identical_html_bytes']} bytes)"
            )
        rot = r.get("rotation", {})
        if "seconds" in rot:
            lines.append(
                f"  {backend}: master rotation v{rot['master_versions'][0]} -> v{rot['master_versions'][1]}, "
                f"{rot['companies']} companies ({rot['key_rows']} key rows, set up in {rot['setup_s']:.1f}s): "
                f"{rot['seconds']:.2f}s in all, of which re-wrapping every key {rot['first_pass_s']:.2f}s (the rest "
                f"waits for running processes to see the new version, at least {rot['settle_s']}s from the start, "
                f"then checks under a lock and retires v{rot['master_versions'][0]}: {rot['result']['retired']})"
            )
    files = results["backends"].get("sqlite", {}).get("files")
    if files and "cpu_mb_s" in files["openssl"]:
        ssl = files["openssl"]
        lines.append(
            f"  files: {FILE_MIB} MiB from memory in {files['piece_bytes'] // 1024} KiB pieces to a counting sink, "
            f"median of {FILE_ROUNDS}; ceiling {ssl['version'].split(' (')[0]} `openssl speed -evp aes-256-gcm "
            f"-bytes {ssl['block_bytes']} -seconds {ssl['seconds']}`, better of a run before and after "
            f"(CPU time {ssl['cpu_mb_s']:.0f} MB/s, wall clock -elapsed {ssl['wall_mb_s']:.0f} MB/s); wall-clock "
            f"ratios encrypt {files['encrypt']['ratio_to_openssl_wall']:.2f}, "
            f"decrypt {files['decrypt']['ratio_to_openssl_wall']:.2f}"
        )
    lines.append("  time: " + ", ".join(f"{k} {v:.0f}s" for k, v in results["seconds"].items()))
    return lines


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]))))
    else:
        measured = measure()
        print("\n".join(table_rows(measured)))
        print("\n" + "\n".join(describe(measured)))
