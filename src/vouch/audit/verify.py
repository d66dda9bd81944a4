"""``vouch audit verify``: walk the whole chain, judge every row, then the head.

The walk goes in insertion order (``id``) and streams rows in chunks, so a log of
millions of rows does not sit in memory. For each row it checks, in order:

1. its HMAC: a mismatch means the row was ``modified`` (or ``inserted``, when its
   successor links straight past it or it lies past the authentic head);
2. its position: ``seq`` must be the previous one plus one. A later seq means rows were
   ``deleted``, unless the missing seq exists elsewhere (then rows were ``reordered``);
3. its link: ``prev_hash`` must be the previous row's hash.

A problem does not end the walk: it picks up again after the row, so every row is
judged and every break named. Events appended while the walk runs (a live
installation) extend it: when the walk reaches the end it reads the head and the last
event's id in one statement, and walks on if rows came in meanwhile. Appends commit the
row and the head together, so the head it reads then belongs to the last row walked.

Then the head (``head`` problems): its MAC must verify (``chain.head_is_authentic``), and
it must be the last event's seq and hash. A head ahead of the last event means the last
events were ``deleted``.

What the database alone cannot tell: the last events deleted and the head row put back
exactly as it was when they did not exist yet (a copy taken by someone who could read
the database). ``--expect-head HASH`` catches that: the hash printed by ``vouch audit
head`` earlier, kept outside the database, must be an event's hash in the chain
(``anchor``)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Max, Subquery

from vouch.audit import chain
from vouch.audit.models import ChainHead, SecurityEvent

CHUNK_SIZE = 2000
SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    kind: str  # modified / deleted / reordered / inserted / head / anchor
    message: str
    event_id: int | None = None
    seq: int | None = None


@dataclass(frozen=True)
class Result:
    ok: bool
    checked: int
    problems: tuple[Problem, ...] = ()
    head_seq: int = 0
    head_hash: str = ""
    anchor_seq: int | None = None  # where the expected head was found

    # The first problem, which most callers need.
    @property
    def kind(self) -> str:
        return self.problems[0].kind if self.problems else ""

    @property
    def event_id(self) -> int | None:
        return self.problems[0].event_id if self.problems else None

    @property
    def seq(self) -> int | None:
        return self.problems[0].seq if self.problems else None

    @property
    def message(self) -> str:
        return self.problems[0].message if self.problems else ""

    def __str__(self) -> str:
        if self.ok:
            found = f"; expected head found at seq {self.anchor_seq}" if self.anchor_seq is not None else ""
            return (
                f"OK: {self.checked} security events, chain intact, head authentic "
                f"(seq {self.head_seq}, hash {self.head_hash}){found}."
            )
        lines = [f"BROKEN ({p.kind}): {p.message}" for p in self.problems[:SHOWN_PROBLEMS]]
        if len(self.problems) > SHOWN_PROBLEMS:
            lines.append(f"... and {len(self.problems) - SHOWN_PROBLEMS} more problems")
        return "\n".join(lines)


def _skipped_by_successor(row, expected_prev: str) -> bool:
    """Whether the next row links to the row before ``row``: then ``row`` was slipped in."""
    successor = SecurityEvent.objects.filter(id__gt=row.id).order_by("id").only("prev_hash").first()
    return successor is not None and hmac.compare_digest(successor.prev_hash, expected_prev)


class _Walk:
    def __init__(self, *, head_seq: int | None, anchor: str | None, progress, chunk_size: int):
        self.head_seq = head_seq  # the authentic head's seq at the start, for telling inserted rows
        self.anchor = anchor
        self.anchor_seq = 0 if anchor == chain.GENESIS else None
        self.progress = progress
        self.chunk_size = chunk_size
        self.expected_seq = 1
        self.expected_prev = chain.GENESIS
        self.check_link = True
        self.tip = (0, chain.GENESIS, True)  # the chain's last row: seq, hash, whether its HMAC holds
        self.last_id = 0
        self.walked = 0
        self.problems: list[Problem] = []

    def run(self) -> None:
        """Walk the rows after the last one walked, to the end of the table as it is now."""
        rows = SecurityEvent.objects.filter(id__gt=self.last_id).order_by("id").iterator(chunk_size=self.chunk_size)
        for row in rows:
            self.last_id = row.id
            self.judge(row)
            self.walked += 1
            if self.progress is not None and self.walked % self.chunk_size == 0:
                self.progress(self.chunk_size)

    def finish(self) -> None:
        if self.progress is not None and self.walked % self.chunk_size:
            self.progress(self.walked % self.chunk_size)

    def problem(self, kind: str, row, message: str) -> None:
        self.problems.append(Problem(kind, message, row.pk, row.seq))

    def follow(self, row, *, valid: bool) -> None:
        """Pick up after ``row``: the next row must follow it (and link to it, if its hash holds)."""
        self.expected_seq = row.seq + 1
        self.expected_prev = row.hash
        self.check_link = valid
        self.tip = (row.seq, row.hash, valid)

    def judge(self, row) -> None:
        if not chain.is_valid(row):
            beyond_head = self.head_seq is not None and row.seq > self.head_seq
            if beyond_head or _skipped_by_successor(row, self.expected_prev):
                # Not part of the chain: the next row must still follow the one before it.
                self.problem("inserted", row, f"event id {row.pk} (seq {row.seq}) was inserted")
                return
            self.problem("modified", row, f"event id {row.pk} (seq {row.seq}) was modified")
            self.follow(row, valid=False)
            return
        if self.anchor is not None and hmac.compare_digest(row.hash, self.anchor):
            self.anchor_seq = row.seq
        if row.seq < self.expected_seq:
            self.problem(
                "reordered",
                row,
                f"event id {row.pk} (seq {row.seq}) is out of order (expected seq {self.expected_seq})",
            )
            return
        if row.seq > self.expected_seq:
            if SecurityEvent.objects.filter(seq=self.expected_seq).exists():
                self.problem(
                    "reordered",
                    row,
                    f"event id {row.pk} (seq {row.seq}) is out of order (expected seq {self.expected_seq})",
                )
            else:
                missing = f"seq {self.expected_seq}" + (f"-{row.seq - 1}" if row.seq - 1 > self.expected_seq else "")
                self.problem("deleted", row, f"events before id {row.pk} were deleted ({missing})")
            self.follow(row, valid=True)
            return
        if self.check_link and not hmac.compare_digest(row.prev_hash, self.expected_prev):
            self.problem("modified", row, f"event id {row.pk} (seq {row.seq}) does not link to the previous event")
        self.follow(row, valid=True)


def _head_and_last_id() -> tuple[ChainHead | None, int | None]:
    """The head and the last event's id, read in one statement (one snapshot): an append
    between two reads would otherwise look like a head that does not match."""
    last = SecurityEvent.objects.order_by("-id").values("id")[:1]
    head = ChainHead.objects.filter(pk=1).annotate(last_id=Subquery(last)).first()
    if head is None:
        return None, SecurityEvent.objects.aggregate(last=Max("id"))["last"]
    return head, head.last_id


def _judge_head(head: ChainHead | None, tip: tuple[int, str, bool], walked: int) -> list[Problem]:
    tip_seq, tip_hash, tip_valid = tip
    if head is None:
        return [Problem("head", "the chain head is missing")] if walked else []
    problems = []
    if not chain.head_is_authentic(head):
        problems.append(
            Problem(
                "head",
                f"the chain head's MAC does not verify: the head (seq {head.seq}) was set outside Vouch",
                seq=head.seq,
            )
        )
    if head.seq > tip_seq:
        missing = f"seq {tip_seq + 1}" + (f"-{head.seq}" if head.seq > tip_seq + 1 else "")
        problems.append(Problem("deleted", f"the last events were deleted ({missing})", seq=tip_seq + 1))
    elif head.seq < tip_seq:
        problems.append(
            Problem(
                "head",
                f"the chain head (seq {head.seq}) is behind the last event (seq {tip_seq}): it was set back",
                seq=head.seq,
            )
        )
    elif tip_valid and not hmac.compare_digest(head.hash, tip_hash):
        problems.append(Problem("head", f"the chain head does not match the last event (seq {tip_seq})", seq=head.seq))
    return problems


def verify_chain(
    *,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
    expect_head: str | None = None,
) -> Result:
    """Check every event and the head; ``progress(n)`` is called every ``chunk_size`` rows.

    ``expect_head``: a hash taken earlier (``vouch audit head``) and kept outside the
    database, which must be in the chain."""
    anchor = expect_head.strip().lower() if expect_head is not None else None
    start = ChainHead.objects.filter(pk=1).first()
    authentic = start is not None and chain.head_is_authentic(start)
    walk = _Walk(head_seq=start.seq if authentic else None, anchor=anchor, progress=progress, chunk_size=chunk_size)  # type: ignore[union-attr]  # typing debt: an Optional not narrowed here
    while True:
        walk.run()
        head, last_id = _head_and_last_id()
        if last_id is None or last_id <= walk.last_id:
            break  # nothing came in since the walk reached the end
    walk.finish()
    problems = walk.problems + _judge_head(head, walk.tip, walk.walked)
    if anchor is not None and walk.anchor_seq is None:
        problems.append(
            Problem(
                "anchor",
                f"the expected head {anchor} is not in the chain: events up to it were deleted "
                "(and the head set back to match), or the chain was rewritten",
            )
        )
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, chain.GENESIS)
    return Result(
        ok=not problems,
        checked=walk.walked,
        problems=tuple(problems),
        head_seq=head_seq,
        head_hash=head_hash,
        anchor_seq=walk.anchor_seq,
    )


def current_head() -> tuple[int, str]:
    """The head's seq and hash, to keep outside the database (``vouch audit head``; a
    backup's manifest). Raises ``ValueError`` if the head is not authentic or not the last
    event's: such a head must not become an anchor. The rows are not walked here: that is
    ``verify_chain``."""
    last = SecurityEvent.objects.order_by("-id")
    head = (
        ChainHead.objects.filter(pk=1)
        .annotate(last_seq=Subquery(last.values("seq")[:1]), last_hash=Subquery(last.values("hash")[:1]))
        .first()
    )
    if head is None:
        if SecurityEvent.objects.exists():
            raise ValueError("the chain head is missing")
        return 0, chain.GENESIS
    if not chain.head_is_authentic(head):
        raise ValueError(f"the chain head's MAC does not verify: the head (seq {head.seq}) was set outside Vouch")
    tip = (head.last_seq, head.last_hash) if head.last_seq is not None else (0, chain.GENESIS)
    if (head.seq, head.hash) != tip:
        raise ValueError(f"the chain head (seq {head.seq}) is not the last event (seq {tip[0]})")
    return head.seq, head.hash


def run_cli(*, progress: bool | None = None, out=None, err=None, expect_head: str | None = None) -> int:
    """``vouch audit verify``: print the result; 0 when the chain is intact, 1 when not."""
    import sys

    from tqdm import tqdm

    out = out or sys.stdout
    err = err or sys.stderr
    show = err.isatty() if progress is None else progress
    total = SecurityEvent.objects.count() if show else None
    with tqdm(total=total, disable=not show, file=err, unit=" events", desc="Verifying") as bar:
        result = verify_chain(progress=bar.update, expect_head=expect_head)
    if result.ok:
        print(result, file=out)
        return 0
    print(result, file=err)
    return 1


def run_head(*, out=None, err=None) -> int:
    """``vouch audit head``: print the head's hash to keep outside the database."""
    import sys

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        _, head_hash = current_head()
    except ValueError as exc:
        print(f"BROKEN (head): {exc}. Run `vouch audit verify` for the whole chain.", file=err)
        return 1
    print(head_hash, file=out)
    return 0
