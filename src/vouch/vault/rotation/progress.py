"""How a rotation reports progress to its caller (the command's progress bar)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Called after each batch with the work done so far in the current stage, that
    stage's total, and the stage's name ("re-wrapping", "pass 2", "waiting"). A rotation
    interrupted by an exception from here keeps what it finished and resumes when run
    again."""

    def __call__(self, done: int, total: int, stage: str) -> None: ...


def report(progress: Progress | None, done: int, total: int, stage: str) -> None:
    if progress is not None:
        progress(done, total, stage)
