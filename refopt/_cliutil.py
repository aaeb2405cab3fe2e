"""Flags every ``refopt`` command shares (docs/cli.md): ``--quiet``, ``--json FILE``, and the
suite selection ``--suite DIR`` / ``--cases PATTERN`` (old spellings kept as hidden aliases)."""
from __future__ import annotations

import argparse
import os
import sys


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar and no notices (results are still printed)")


def add_json(p: argparse.ArgumentParser, what: str = "the result") -> None:
    p.add_argument("--json", default=None, metavar="FILE",
                   help=f"also write {what} as JSON to FILE (atomically; '-' for stdout)")


def add_selection(p: argparse.ArgumentParser, *, suite_help: str, cases_help: str,
                  suite_aliases=(), cases_aliases=()) -> None:
    """``--suite DIR`` and ``--cases PATTERN``; the aliases are accepted but not listed."""
    p.add_argument("--suite", default=None, metavar="DIR", help=suite_help)
    p.add_argument("--cases", default="*", metavar="PATTERN", help=cases_help)
    for alias in suite_aliases:
        p.add_argument(alias, dest="suite", help=argparse.SUPPRESS)
    for alias in cases_aliases:
        p.add_argument(alias, dest="cases", help=argparse.SUPPRESS)


def json_problem(path: str | None) -> str | None:
    """Why ``--json path`` cannot be written, before any work is done (None: it can)."""
    if not path or path == "-":
        return None
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return f"--json {path} is a directory; give a file name"
    if not os.path.isdir(parent):
        return f"--json {path}: the directory {parent} does not exist"
    return None


def write_json(path: str | None, obj) -> None:
    """Write ``obj`` to ``path`` atomically (``-``: to stdout); nothing when ``path`` is None."""
    if not path:
        return
    from ._io import atomic_write_json, json_text

    if path == "-":
        stream = JSON_STREAM or sys.stdout
        stream.write(json_text(obj))
        stream.flush()
        return
    atomic_write_json(path, obj)


#: Where ``--json -`` writes: the real stdout, which :func:`refopt.cli.main` keeps here while it
#: sends everything else a command prints to stderr (so stdout holds the JSON alone).
JSON_STREAM = None


def user_rule_problem(rule: str | None) -> str | None:
    """None if ``rule`` is None, a rule refopt ships, or an importable user rule
    ``module:Class`` (the current directory first on sys.path, as for a verify TARGET);
    otherwise the one-line reason."""
    if rule is None or ":" not in rule:
        return None
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    from .registry import canonical_name

    try:
        canonical_name(rule)
    except ValueError as exc:
        return str(exc)
    return None
