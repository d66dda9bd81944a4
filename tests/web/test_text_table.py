"""The commands' plain-text tables (vouch.core.text_table): columns padded to their widest
cell, two spaces apart, no trailing spaces, an optional indent."""

from __future__ import annotations

import io
import subprocess
import sys

from vouch.core.text_table import print_table


def table(headers, rows, indent: int = 0) -> list[str]:
    out = io.StringIO()
    print_table(headers, rows, out, indent)
    return out.getvalue().splitlines()


def test_columns_line_up_under_non_ascii_names():
    lines = table(["id", "name", "region"], [[1, "Zoë Ångström", "eu"], [22, "Łukasz", "us"], [3, "Ab", "eu"]])
    assert lines == [
        "id  name          region",
        "1   Zoë Ångström  eu",
        "22  Łukasz        us",
        "3   Ab            eu",
    ]
    # Every column starts at the same character in every line.
    starts = {line.index(line.split()[-1]) for line in lines}
    assert starts == {len("id  name          ")}


def test_no_rows_prints_the_header_and_the_last_column_is_not_padded():
    assert table(["company", "name"], []) == ["company  name"]
    assert table(["a", "b"], [["long value", ""]]) == ["a           b", "long value"]


def test_an_indent_and_cells_of_any_type():
    assert table(["version", "companies"], [(2, 10), (None, 3)], indent=4) == [
        "    version  companies",
        "    2        10",
        "    None     3",
    ]


def test_the_command_modules_import_it_without_a_cycle():
    # Each app's command module first, alone: vouch.cli imports them, so the table must
    # not live in vouch.cli.
    for module in ("vouch.vault.commands", "vouch.tenancy.operations.commands", "vouch.backups.status"):
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
