"""``refopt golden build`` and ``refopt golden check``: regenerate or verify the golden suite."""
from __future__ import annotations

import argparse
import sys

from .._cliutil import add_json, add_quiet, add_selection, json_problem, write_json


def register(sub) -> None:
    p = sub.add_parser("golden", help="build or check the golden suite (refopt/golden/suite/v1)")
    gsub = p.add_subparsers(dest="golden_command", metavar="ACTION")
    b = gsub.add_parser("build", help="regenerate the suite from the float64 reference (bit for "
                                      "bit; atomic writes)")
    b.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: the packaged suite; required with --rule)")
    b.add_argument("--rule", default=None, metavar="MODULE:CLASS",
                   help="build the generic cases of your own rule (a refopt.extend.Rule "
                        "subclass, by import path) instead of refopt's suite; then judge a "
                        "port of it with 'refopt verify MODULE:CLASS PORT --suite DIR' "
                        "(docs/extending.md)")
    b.add_argument("--cases", default="*", metavar="PATTERN",
                   help="only cases whose id matches this glob (index.json is written only "
                        "for '*')")
    b.add_argument("--pattern", dest="cases", help=argparse.SUPPRESS)  # old spelling
    add_quiet(b)
    add_json(b, "the ids of the cases written")
    b.set_defaults(func=run_build)
    c = gsub.add_parser("check", help="verify schema, hashes and bitwise agreement with the "
                                      "current reference; exit 1 on any problem, 2 when there "
                                      "is nothing to check")
    add_selection(c, suite_help="suite directory (default: the packaged suite)",
                  cases_help="only cases whose id matches this glob (default: all)",
                  suite_aliases=("--dir",), cases_aliases=("--pattern",))
    add_quiet(c)
    add_json(c, "the checked case ids, problems and notices")
    c.set_defaults(func=run_check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _progress(label, args):
    from .._progress import callback

    return callback(label, unit="cases", quiet=args.quiet)


def run_build(args) -> int:
    from .build import SUITE_DIR, build_suite

    problem = json_problem(args.json)
    if problem:
        print(f"golden build: error: {problem}", file=sys.stderr)
        return 2
    from .._cliutil import user_rule_problem

    problem = user_rule_problem(args.rule)
    if problem:
        print(f"golden build: error: {problem}", file=sys.stderr)
        return 2
    if args.rule is not None and args.out is None:
        print("golden build: error: --rule needs --out DIR (the packaged suite holds refopt's "
              "own rules only)", file=sys.stderr)
        return 2
    out = args.out or SUITE_DIR
    try:
        ids = build_suite(out, pattern=args.cases, rule=args.rule,
                          progress=_progress("refopt golden build", args))
    except ValueError as exc:   # --cases matches no case, or --rule names no usable rule
        print(f"golden build: error: {exc}", file=sys.stderr)
        return 2
    write_json(args.json, {"directory": str(out), "case_ids": ids})
    print(f"wrote {len(ids)} golden cases to {out}")
    if args.rule is not None and not args.quiet:
        print(f"judge a port with: refopt verify {args.rule} PORT --suite {out}")
    return 0


def run_check(args) -> int:
    """Exit status 0: every selected case matches; 1: problems (one FAIL line each);
    2: nothing to check (no such directory, or --cases matches no case)."""
    from .build import SUITE_DIR, check_report

    problem = json_problem(args.json)
    if problem:
        print(f"golden check: error: {problem}", file=sys.stderr)
        return 2
    directory = args.suite or SUITE_DIR
    from .._cliutil import user_rule_problem
    from .build import suite_rule

    problem = user_rule_problem(suite_rule(directory))  # a user rule's suite: cwd on sys.path
    if problem:
        print(f"golden check: error: {problem}", file=sys.stderr)
        return 2
    try:
        report = check_report(directory, pattern=args.cases,
                              progress=_progress("refopt golden check", args))
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"golden check: error: {exc}", file=sys.stderr)
        return 2
    write_json(args.json, {"directory": str(directory), "case_ids": list(report.case_ids),
                           "problems": list(report.problems), "notices": list(report.notices),
                           "ok": not report.problems})
    if not args.quiet:
        for line in report.notices:
            print(line)
    if report.problems:
        for line in report.problems:
            print(f"FAIL {line}", file=sys.stderr)
        print(f"golden check: {len(report.problems)} problem(s) in {directory}", file=sys.stderr)
        return 1
    print(f"golden check: {len(report.case_ids)} cases in {directory} match the current "
          f"reference (schema, hashes, arrays bitwise, manifest content)")
    return 0
