"""The command-line options and the docs agree: every option of the five commands is named
somewhere in README.md or docs/, and every option the docs give one of those commands exists
(a renamed option otherwise leaves the docs telling users to type something that fails)."""
import re
from pathlib import Path

import pytest

from cascadevae import evaluate, report, status, sweep
from cascadevae.training import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = {"train": cli.build_parser, "evaluate": evaluate.build_parser,
            "report": report.build_parser, "status": status.build_parser,
            "sweep": sweep.build_parser}


def options(build) -> set:
    return {s for action in build()._actions for s in action.option_strings
            if s.startswith("--") and s != "--help"}


def docs_text() -> str:
    return "\n".join(p.read_text() for p in DOCS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_is_documented(command):
    text = docs_text()
    # an option counts as documented when it appears as a whole word (--seed must not be
    # satisfied by --seeds)
    missing = sorted(o for o in options(COMMANDS[command])
                     if not re.search(re.escape(o) + r"(?![a-z0-9-])", text))
    assert not missing, f"python -m cascadevae.{command}: options no doc names: {missing}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_documented_options_exist(command):
    """Options on a documented command line of this command (``python -m cascadevae.CMD ...``,
    continued over backslash-newlines) are options it has."""
    known = options(COMMANDS[command])
    line = re.compile(r"python -m cascadevae\." + command + r"\b((?:[^\n`]|\\\n)*)")
    unknown = set()
    for doc in DOCS:
        for args in line.findall(doc.read_text()):
            args = args.split("#", 1)[0]                   # a trailing shell comment
            args = re.split(r"\s--\s", " " + args + " ")[0]  # after " -- ": passed through
            unknown |= {o for o in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", args)
                        if o not in known}
    assert not unknown, f"docs give python -m cascadevae.{command} unknown options: {sorted(unknown)}"
