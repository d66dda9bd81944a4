"""The plain-text tables the ``vouch`` commands print: a header row, then one row a
line, each column padded to its widest cell and two spaces between columns, trailing
spaces dropped.

A module of its own outside :mod:`vouch.cli`: the apps' command modules (tenants, keys,
backups) are imported by ``vouch.cli`` itself, so importing from that package would make
a cycle. Widths count characters (code points), as ``str.ljust`` pads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO, indent: int = 0) -> None:
    """Print ``rows`` under ``headers`` to ``out``, every line indented by ``indent`` spaces."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        print(" " * indent + "  ".join(cells).rstrip(), file=out)
