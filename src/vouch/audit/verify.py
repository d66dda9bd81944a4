"""``vouch audit verify``: walk the chain and report the first break.

The walk goes in insertion order (``id``) and streams rows in chunks, so a log of
millions of rows does not sit in memory. For each row it checks, in order:

1. its HMAC: a mismatch means the row was ``modified`` (or, when its successor links
   straight past it, ``inserted``);
2. its position: ``seq`` must be the previous one plus one. A later seq means rows were
   ``deleted``, unless the missing seq exists elsewhere (then rows were ``reordered``);
3. its link: ``prev_hash`` must be the previous row's hash.

The chain head is read before the walk: rows up to it must all be there and end in its
hash, which catches rows deleted from the end (``deleted``); a row past it must be a
valid append (rows forged past the head are ``inserted``)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from vouch.audit import chain
from vouch.audit.models import ChainHead, SecurityEvent

CHUNK_SIZE = 2000


@dataclass(frozen=True)
class Result:
    ok: bool
    checked: int
    kind: str = ""  # modified / deleted / reordered / inserted
    event_id: int | None = None
    seq: int | None = None
    message: str = ""
    head_hash: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.checked} security events, chain intact (head {self.head_hash[:16]})."
        return f"BROKEN ({self.kind}): {self.message}"


def _broken(kind: str, checked: int, row, message: str) -> Result:
    return Result(
        ok=False,
        checked=checked,
        kind=kind,
        event_id=getattr(row, "pk", None),
        seq=getattr(row, "seq", None),
        message=message,
    )


def _skipped_by_successor(row, expected_prev: str) -> bool:
    """Whether the next row links to the row before ``row``: then ``row`` was slipped in."""
    successor = SecurityEvent.objects.filter(id__gt=row.id).order_by("id").only("prev_hash").first()
    return successor is not None and hmac.compare_digest(successor.prev_hash, expected_prev)


def verify_chain(*, progress: Callable[[int], None] | None = None, chunk_size: int = CHUNK_SIZE) -> Result:
    """Check the whole chain; ``progress(n)`` is called every ``chunk_size`` rows.

    The head is read first: every row up to it was committed with it, and rows appended
    while the walk runs (a live installation) come after it and are left for next time."""
    head = ChainHead.objects.filter(pk=1).first()
    head_seq = head.seq if head is not None else None
    expected_seq = 1
    expected_prev = chain.GENESIS
    checked = 0
    rows = SecurityEvent.objects.order_by("id").iterator(chunk_size=chunk_size)
    for row in rows:
        valid = chain.is_valid(row)
        beyond_head = head_seq is not None and row.seq > head_seq
        if valid and beyond_head and row.seq == expected_seq and hmac.compare_digest(row.prev_hash, expected_prev):
            break  # appended after the walk began
        if not valid:
            if beyond_head or _skipped_by_successor(row, expected_prev):
                return _broken("inserted", checked, row, f"event id {row.pk} (seq {row.seq}) was inserted")
            return _broken("modified", checked, row, f"event id {row.pk} (seq {row.seq}) was modified")
        if row.seq != expected_seq:
            if row.seq > expected_seq and not SecurityEvent.objects.filter(seq=expected_seq).exists():
                missing = f"seq {expected_seq}" + (f"-{row.seq - 1}" if row.seq - 1 > expected_seq else "")
                return _broken("deleted", checked, row, f"events before id {row.pk} were deleted ({missing})")
            return _broken(
                "reordered",
                checked,
                row,
                f"event id {row.pk} (seq {row.seq}) is out of order (expected seq {expected_seq})",
            )
        if not hmac.compare_digest(row.prev_hash, expected_prev):
            return _broken(
                "modified", checked, row, f"event id {row.pk} (seq {row.seq}) does not link to the previous event"
            )
        expected_prev = row.hash
        expected_seq += 1
        checked += 1
        if progress is not None and checked % chunk_size == 0:
            progress(chunk_size)
    if progress is not None and checked % chunk_size:
        progress(checked % chunk_size)
    last_seq = expected_seq - 1
    if head is None:
        if checked:
            return Result(False, checked, "deleted", None, None, "the chain head is missing")
        return Result(True, 0, head_hash=chain.GENESIS)
    if head.seq > last_seq:
        missing = f"seq {last_seq + 1}" + (f"-{head.seq}" if head.seq > last_seq + 1 else "")
        return Result(False, checked, "deleted", None, last_seq + 1, f"the last events were deleted ({missing})")
    if not hmac.compare_digest(head.hash, expected_prev):
        return Result(
            False, checked, "modified", None, head.seq, f"the event at seq {head.seq} does not match the chain head"
        )
    return Result(True, checked, head_hash=head.hash)


def run_cli(*, progress: bool | None = None, out=None, err=None) -> int:
    """``vouch audit verify``: print the result; 0 when the chain is intact, 1 when not."""
    import sys

    from tqdm import tqdm

    out = out or sys.stdout
    err = err or sys.stderr
    show = err.isatty() if progress is None else progress
    total = SecurityEvent.objects.count() if show else None
    with tqdm(total=total, disable=not show, file=err, unit=" events", desc="Verifying") as bar:
        result = verify_chain(progress=bar.update)
    if result.ok:
        print(result, file=out)
        return 0
    print(result, file=err)
    return 1
