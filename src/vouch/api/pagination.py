"""Keyset pagination shared by the API's lists: an opaque cursor of the last row's sort
keys, and one page read with one row more to know whether another follows."""

from __future__ import annotations

import base64
import binascii
from typing import TypeVar

T = TypeVar("T")


def encode(*parts: object) -> str:
    text = "|".join(str(part) for part in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, count: int) -> list[str]:
    """The ``count`` parts of a cursor this API gave; ValueError for anything else."""
    try:
        parts = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValueError("not a cursor") from error
    if len(parts) != count:
        raise ValueError("not a cursor")
    return parts


def take(rows, limit: int) -> tuple[list, bool]:
    """Up to ``limit`` rows, and whether more follow (one query)."""
    page = list(rows[: limit + 1])
    return page[:limit], len(page) > limit
