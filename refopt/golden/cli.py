"""``refopt golden build`` and ``refopt golden check``: regenerate or verify the golden suite."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("golden", help="build or check the golden suite (refopt/golden/suite/v1)")
    gsub = p.add_subparsers(dest="golden_command", metavar="ACTION")
    b = gsub.add_parser("build", help="regenerate the suite from the float64 reference (bit for "
                                      "bit; atomic writes)")
    b.add_argument("--out", default=None, help="output directory (default: the packaged suite)")
    b.add_argument("--pattern", default="*", help="only cases whose id matches this glob "
                                                   "(index.json is written only for '*')")
    b.set_defaults(func=run_build)
    c = gsub.add_parser("check", help="verify schema, hashes and bitwise agreement with the "
                                      "current reference; exit 1 on any problem, 2 when there "
                                      "is nothing to check")
    c.add_argument("--dir", default=None, help="suite directory (default: the packaged suite)")
    c.add_argument("--pattern", default="*", help="only cases whose id matches this glob")
    c.set_defaults(func=run_check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_build(args) -> int:
    from .build import SUITE_DIR, build_suite

    out = args.out or SUITE_DIR
    try:
        ids = build_suite(out, pattern=args.pattern)
    except ValueError as exc:   # --pattern matches no case
        print(f"golden build: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(ids)} golden cases to {out}")
    return 0


def run_check(args) -> int:
    """Exit status 0: every selected case matches; 1: problems (one FAIL line each);
    2: nothing to check (no such directory, or --pattern matches no case)."""
    from .build import SUITE_DIR, check_report

    directory = args.dir or SUITE_DIR
    try:
        report = check_report(directory, pattern=args.pattern)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"golden check: error: {exc}", file=sys.stderr)
        return 2
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
