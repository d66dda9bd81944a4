"""The `vouch` command line: built from its list of command groups, and its reference page
(docs/operations/cli.md) generated from the parser, as the README's configuration table is
checked against `config.VARIABLES` (test_readme.py)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from vouch.cli import GROUPS, build_parser, main, reference

ROOT = Path(__file__).resolve().parents[2]


def test_the_reference_page_is_generated_from_the_parser():
    page = ROOT / reference.PAGE
    assert page.exists() and page.read_text() == reference.markdown(), (
        f"{reference.PAGE} differs from the `vouch` parser: run `make docs` (or `{reference.REGENERATE}`)"
    )


def test_the_reference_page_names_every_command_and_argument():
    text = reference.markdown()
    parser = build_parser()
    for path, _, command in reference._commands(parser, ("vouch",), ""):
        assert len(path) == 1 or f"# {' '.join(path)}\n" in text, path  # a heading of its own
        for action in reference._arguments(command):
            for option in action.option_strings:
                assert f"`{option}" in text, (path, option)


def _commands_added(group) -> list[str]:
    sub = argparse.ArgumentParser(prog="vouch").add_subparsers(dest="command")
    group.add_parser(sub)
    return list(sub.choices)


def test_each_group_adds_exactly_the_commands_it_names():
    for group in GROUPS:
        assert _commands_added(group) == list(group.commands)
    names = [name for group in GROUPS for name in group.commands]
    assert len(names) == len(set(names)), "two groups claim the same command"


def test_every_registered_command_is_in_vouch_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    listed = capsys.readouterr().out
    for group in GROUPS:
        for name in group.commands:
            assert re.search(rf"^    {re.escape(name)}\b", listed, flags=re.MULTILINE), name


def test_an_unknown_command_exits_2_with_argparses_message(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: vouch ")
    assert "vouch: error: argument command: invalid choice: 'frobnicate'" in err


# The commands that run without a prepared control database: they prepare it, or need none.
NO_DATABASE = [["serve"], ["setup"], ["migrate"], ["check"], ["outbox"], ["manage", "help"], ["keys", "generate"]]
DATABASE = [
    ["operator", "create", "ops@example.com"],
    ["audit", "verify"],
    ["audit", "head"],
    ["tenants", "list"],
    ["keys", "status"],
    ["keys", "rotate-master"],
    ["worker"],
    ["references", "maintenance"],
    ["mirror", "status"],
    ["backup", "status"],
]


@pytest.mark.parametrize(("argv", "needed"), [(a, False) for a in NO_DATABASE] + [(a, True) for a in DATABASE])
def test_which_commands_need_a_prepared_database(argv, needed):
    args = build_parser().parse_args(argv)
    (group,) = [group for group in GROUPS if args.command in group.commands]
    assert group.needs_database(args) is needed
