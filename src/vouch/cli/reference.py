"""The ``vouch`` command's reference page (docs/operations/cli.md), generated from its
argument parser: every command and subcommand, its help, and its arguments with their help
and defaults. tests/web/test_cli_reference.py fails when the page and the parser differ.

Regenerate: ``make docs``, or ``.venv/bin/python -m vouch.cli.reference > docs/operations/cli.md``.

The rendering is this module's own, not argparse's help output, so the page does not depend
on the terminal's width or the Python version's help layout."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from vouch.cli import build_parser

PAGE = "docs/operations/cli.md"
REGENERATE = f".venv/bin/python -m vouch.cli.reference > {PAGE}"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...], help_text: str) -> Iterator:
    """(path, help, parser) for this parser and every subcommand under it, depth first."""
    yield path, help_text, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield from _commands(child, (*path, name), helps.get(name, ""))


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and action.help != argparse.SUPPRESS
    ]


def _value(action: argparse.Action) -> str:
    """What an argument takes, as argparse's usage writes it: ``N``, ``[ID ...]``, ``...``."""
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        name = action.metavar if isinstance(action.metavar, str) else " ".join(action.metavar)
    elif action.choices is not None:
        name = "{" + ",".join(str(choice) for choice in action.choices) + "}"
    elif action.option_strings:
        name = action.dest.upper()
    else:
        name = action.dest
    if action.nargs == argparse.OPTIONAL:
        return f"[{name}]"
    if action.nargs == argparse.ZERO_OR_MORE:
        return f"[{name} ...]"
    if action.nargs == argparse.ONE_OR_MORE:
        return f"{name} [{name} ...]"
    if action.nargs == argparse.REMAINDER:
        return "..."
    if isinstance(action.nargs, int):
        return " ".join([name] * action.nargs)
    return name


def _invocation(action: argparse.Action) -> str:
    """The argument as the table names it: ``--batch N``, ``--progress | --no-progress``, or a
    positional's name (the usage line says whether it may be left out or repeated)."""
    if not action.option_strings:
        return action.metavar if isinstance(action.metavar, str) else action.dest
    value = _value(action)
    return " | ".join(f"{option} {value}".rstrip() for option in action.option_strings)


def _usage(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> str:
    arguments = _arguments(parser)
    groups = {id(action): group for group in parser._mutually_exclusive_groups for action in group._group_actions}
    parts = list(path)
    done: set[int] = set()
    optionals = [action for action in arguments if action.option_strings]
    positionals = [
        action for action in parser._actions if not action.option_strings and action.help != argparse.SUPPRESS
    ]
    for action in optionals:
        if id(action) in done:
            continue
        group = groups.get(id(action))
        members = [action] if group is None else [a for a in group._group_actions if a in optionals]
        done |= {id(a) for a in members}
        text = " | ".join(_invocation(a) for a in members)
        required = group.required if group is not None else action.required
        if group is not None and len(members) > 1:
            parts.append(f"({text})" if required else f"[{text}]")
        else:
            parts.append(text if required else f"[{text}]")
    for action in positionals:
        if isinstance(action, argparse._SubParsersAction):
            parts.append("{" + ",".join(action.choices) + "} ...")
        else:
            parts.append(_value(action))
    return " ".join(parts)


def _help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%" in text:  # argparse's own substitutions, as in its help output
        params = {key: value for key, value in vars(action).items() if value is not argparse.SUPPRESS}
        text = text % {**params, "prog": prog}
    if action.choices is not None and action.metavar is not None:
        text += (" " if text else "") + "(one of " + ", ".join(f"`{choice}`" for choice in action.choices) + ")"
    return text


def _default(action: argparse.Action) -> str:
    """A default worth stating: one an argument that takes a value falls back to."""
    if action.nargs == 0 or action.default in (None, "", argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(path: tuple[str, ...]) -> str:
    """GitHub's anchor for a heading made of the command's words."""
    return "-".join(path)


def markdown() -> str:
    parser = build_parser()
    commands = list(_commands(parser, ("vouch",), parser.description or ""))
    lines = [
        "# The `vouch` command",
        "",
        "Generated from the command's argument parser (`vouch.cli.reference`); do not edit it by hand.",
        f"After changing a command, run `make docs` (or `{REGENERATE}`).",
        "",
        f"{parser.description}. Every command and subcommand, with its arguments:",
        "",
        "| Command | What it does |",
        "| --- | --- |",
    ]
    for path, help_text, _ in commands[1:]:
        lines.append(f"| [`{' '.join(path)}`](#{_anchor(path)}) | {_cell(help_text)} |")
    for path, help_text, command in commands[1:]:
        lines += ["", f"{'#' * min(len(path), 4)} {' '.join(path)}", ""]
        if help_text:
            sentence = help_text[:1].upper() + help_text[1:]
            lines += [sentence if sentence.endswith(".") else sentence + ".", ""]
        lines += ["```", _usage(command, path), "```"]
        arguments = _arguments(command)
        if arguments:
            lines += ["", "| Argument | Default | Description |", "| --- | --- | --- |"]
            for action in arguments:
                invocation = " \\| ".join(f"`{part}`" for part in _invocation(action).split(" | "))
                lines.append(f"| {invocation} | {_default(action)} | {_cell(_help(action, ' '.join(path)))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
