"""``refopt prove``: run the claim registry, print a table, optionally render proofs/*.md.

Exit status: 0 when every claim reaches its expected status; 1 when any does not (a claim expected
to be proved that fails, a refutation that no longer reproduces, a checker error); 2 for bad
arguments.
"""
from __future__ import annotations

import argparse
import sys

from .._cliutil import add_json, add_quiet, json_problem, write_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prove", help="check the papers' mathematics (sympy derivations + numeric cross-checks)",
        description="Run every claim of the proof registry (refopt.proofs) and print claim, status, "
                    "seconds. Statuses: proved, checked numerically only, refuted, open, error.")
    p.add_argument("--rule", choices=("adamx", "adams", "alphaadam"), help="only this rule's claims")
    p.add_argument("--claim", action="append", metavar="ID",
                   help="only this claim id (repeatable), e.g. adams.A2")
    p.add_argument("--render", metavar="DIR",
                   help="also write one Markdown document per rule into DIR (e.g. proofs/)")
    p.add_argument("--detail", action="store_true", help="print each claim's verdict detail")
    add_quiet(p)
    add_json(p, "every claim's status, expected status, seconds and detail")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._progress import bar
    from .registry import all_claims, run_claim
    from .render import write_documents

    problem = json_problem(args.json)
    if problem:
        print(f"refopt prove: {problem}", file=sys.stderr)
        return 2

    claims = all_claims(args.rule)
    if args.claim:
        known = {c.id for c in claims}
        missing = [c for c in args.claim if c not in known]
        if missing:
            print(f"refopt prove: unknown claim id(s) {missing}"
                  + (f" for rule {args.rule}" if args.rule else "") + f"; known: {sorted(known)}",
                  file=sys.stderr)
            return 2
        claims = [c for c in claims if c.id in set(args.claim)]
    width = max(len(c.id) for c in claims)
    # --quiet: only the claims that fall short, and the summary.
    table = not args.quiet
    if table:
        print(f"{'claim':<{width}}  {'status':<26}  {'seconds':>7}")
    results = []
    progress = bar(len(claims), "refopt prove", unit="claims", quiet=args.quiet)
    try:
        for claim in claims:
            progress.set_phase(claim.id)
            r = run_claim(claim)
            results.append(r)
            progress.update()
            flag = "" if r.as_expected else f"   <-- expected {r.expected_status}"
            if table or not r.as_expected:
                progress.print_above(f"{r.claim_id:<{width}}  {r.status:<26}  "
                                     f"{r.seconds:7.2f}{flag}")
            if args.detail or not r.as_expected:
                progress.print_above(f"{'':<{width}}  {r.detail}")
    finally:
        progress.close()
        write_json(args.json, {"complete": len(results) == len(claims), "claims": [
            {"claim_id": r.claim_id, "rule": r.rule, "status": r.status,
             "expected_status": r.expected_status, "as_expected": r.as_expected,
             "seconds": r.seconds, "detail": r.detail} for r in results]})
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    bad = [r for r in results if not r.as_expected]
    total = sum(r.seconds for r in results)
    gap = "" if args.quiet else "\n"
    print(f"{gap}{len(results)} claims in {total:.1f} s: "
          + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    if args.render:
        for path in write_documents(results, args.render):
            print(f"wrote {path}")
    if bad:
        print(f"{len(bad)} claim(s) did not reach their expected status: "
              + ", ".join(r.claim_id for r in bad), file=sys.stderr)
        return 1
    return 0
