"""``refopt report`` and ``refopt sweep``."""
from __future__ import annotations

import argparse
import sys

from .._cliutil import add_json, add_quiet, json_problem, write_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="run the experiments and proofs; write the Markdown claims report",
        description="Run the quick (default) or full versions of every experiment and of the "
        "proofs, and write DIR/report.md with every claim of the three papers, its verdict, the "
        "evidence and the figures.")
    p.add_argument("--out", default="reports", metavar="DIR", help="output folder (default: reports)")
    p.add_argument("--full", action="store_true", help="run the long versions")
    p.add_argument("--config", default=None, metavar="FILE.json",
                   help="a configuration file: {\"base\": \"quick\"|\"full\", "
                   "\"adams_rate\": {\"Ts\": [...], \"seeds\": [...]}, ...} replacing the "
                   "base's settings per experiment, including \"rule_under_test\" (a rule "
                   "name or import path module:Class), adams_rate's \"objective\" and "
                   "\"rate_criterion\" (upper|equivalence); the shipped ones are "
                   "refopt/experiments/configs/{quick,full,tiny}.json")
    p.add_argument("--seeds", default=None, metavar="N|S1,S2,...",
                   help="seeds of every experiment: N (0..N-1) or a comma-separated list")
    p.add_argument("--rules", default=None, metavar="RULE,...",
                   help="run only the experiments and claims of these papers: adamx, adams, "
                   "alphaadam (comma-separated; default all)")
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny sizes, for tests
    p.add_argument("--skip-proofs", action="store_true", help="leave out the proofs registry")
    p.add_argument("--real", action="store_true",
                   help="rerun the real-data experiments (digits MLP, stdlib byte LM; full "
                   "configuration, ~50 min of single-thread runs, resumable in DIR/results) "
                   "instead of reading the committed results (docs/real_data.md)")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes for the sweeps (default 1: in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the sweeps on this Dask scheduler (tcp://host:port)")
    add_quiet(p)
    add_json(p, "the summary (verdict of each claim, counts; DIR/report.json has it all)")
    p.set_defaults(func=run_report_cmd)

    s = subparsers.add_parser(
        "sweep", help="run a sweep (rules x objectives x grid x seeds) from a JSON spec",
        description="Run the runs of SPEC.json not yet in the results file (resumable), one JSON "
        "line per run, and say how many were new, reused and failed (a failed run is not "
        "recorded: a rerun retries it; exit status 1). Rules and objectives are registered "
        "names or import paths module:attr (SPEC's folder is put on the path). See "
        "refopt.experiments.runner and docs/extending.md for the format; an example is "
        "examples/sweeps/lion_vs_adams.json.")
    s.add_argument("spec", metavar="SPEC.json")
    s.add_argument("--out", default=None, metavar="FILE.jsonl",
                   help="results file (default: SPEC name with .jsonl)")
    s.add_argument("--workers", type=int, default=None, help="local processes (default: all cores)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address")
    s.add_argument("--limit", type=int, default=None, help="run at most this many runs now")
    s.add_argument("--summary", action="store_true",
                   help="also print a table of the results (mean final loss with a 95%% t "
                   "interval over seeds) and write it with a figure of the loss curves next to "
                   "the results file (FILE.jsonl.summary.md, FILE.jsonl.summary.png)")
    add_quiet(s)
    add_json(s, "the counts (new, reused, failed, pending) and the results file")
    s.set_defaults(func=run_sweep_cmd)


_PATH_ERRORS = (FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                PermissionError)


def _os_error(scheduler, out, exc) -> str:
    if scheduler is not None and not isinstance(exc, _PATH_ERRORS):
        return _scheduler_hint(scheduler, exc)
    return f"{getattr(exc, 'filename', None) or out}: {getattr(exc, 'strerror', None) or exc}"


def _scheduler_hint(address, exc) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"--scheduler {address}: cannot use this Dask scheduler: {text}"


def run_report_cmd(args) -> int:
    from .report import run_report

    config = "tiny" if args.smoke else ("full" if args.full else "quick")
    problem = json_problem(args.json)
    if problem:
        print(f"refopt report: {problem}", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"refopt report: --workers must be an integer >= 1, got {args.workers}",
              file=sys.stderr)
        return 2
    from pathlib import Path

    from .. import _io
    from ._common import load_report_config, parse_seeds

    seeds = rules = None
    try:
        if getattr(args, "seeds", None) is not None:
            seeds = parse_seeds(args.seeds)
        if getattr(args, "rules", None) is not None:
            from .report import PAPERS

            rules = [r.strip().lower() for r in args.rules.split(",") if r.strip()]
            if not rules or set(rules) - set(PAPERS):
                raise ValueError(f"--rules must be a comma-separated list of {list(PAPERS)}, "
                                 f"got {args.rules!r}")
        if getattr(args, "config", None) is not None:
            if args.full or args.smoke:
                raise ValueError("--config cannot be combined with --full or --smoke (set "
                                 "\"base\" in the file instead)")
            load_report_config(args.config, seeds)   # refuse a bad file before running
    except (ValueError, FileNotFoundError, _io.CorruptFileError) as exc:
        print(f"refopt report: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    bad = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if bad is not None:
        print(f"refopt report: --out {args.out}: {bad} is a file, not a folder", file=sys.stderr)
        return 2
    try:
        summary = run_report(args.out, config=config, include_proofs=not args.skip_proofs,
                             max_workers=args.workers, scheduler=args.scheduler,
                             progress=not args.quiet and sys.stderr.isatty(), real=getattr(args, "real", False),
                             config_file=getattr(args, "config", None), seeds=seeds, rules=rules)
    except (OSError, TimeoutError) as exc:
        print(f"refopt report: {_os_error(args.scheduler, out, exc)}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        if args.scheduler is None:
            raise
        print(f"refopt report: {_scheduler_hint(args.scheduler, exc)}", file=sys.stderr)
        return 2
    except ImportError as exc:  # --scheduler without dask[distributed]; --real without torch
        if args.scheduler is None and not getattr(args, "real", False):
            raise
        print(f"refopt report: {exc}", file=sys.stderr)
        return 2
    from .runner import jsonable

    write_json(args.json, jsonable({"report": str(summary["path"]), "config": summary["config"],
                                    "seconds": summary["seconds"], "counts": summary["counts"],
                                    "verdicts": summary["verdicts"]}))
    counts = ", ".join(f"{k}: {n}" for k, n in summary["counts"].items())
    print(f"wrote {summary['path']} ({summary['seconds']:.0f} s); claims: {counts}")
    return 0


def run_sweep_cmd(args) -> int:
    from pathlib import Path

    from .. import _io
    from .runner import ResultsLockedError, run_sweep

    spec_path = Path(args.spec)
    problem = json_problem(args.json)
    if problem:
        print(f"refopt sweep: {problem}", file=sys.stderr)
        return 2
    try:
        sweep = _io.load_json(spec_path)
    except (FileNotFoundError, _io.CorruptFileError) as exc:
        print(f"refopt sweep: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else spec_path.with_suffix(".jsonl")
    _put_on_path(spec_path.resolve().parent)
    try:
        records = run_sweep(sweep, out, max_workers=args.workers, scheduler=args.scheduler,
                            limit=args.limit, progress=not args.quiet and sys.stderr.isatty(),
                            keep_going=True)
    except ResultsLockedError as exc:
        print(f"refopt sweep: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        print(f"refopt sweep: {exc}", file=sys.stderr)
        return 2
    except (OSError, TimeoutError) as exc:  # --out under a file, disk full, no scheduler
        print(f"refopt sweep: {_os_error(args.scheduler, out, exc)}", file=sys.stderr)
        return 2
    except ImportError as exc:  # --scheduler without dask[distributed]
        print(f"refopt sweep: {exc}", file=sys.stderr)
        return 2
    write_json(args.json, {"results": str(out), "runs": len(records), "new": records.new,
                           "reused": records.reused, "pending": records.pending,
                           "failed": [why for _, why in records.failed]})
    print(f"{len(records)} runs in {out} ({records.counts_line()})")
    for spec, error in records.failed[:3]:
        print(f"refopt sweep: run failed (rule {spec.get('rule')!r}, objective "
              f"{spec.get('objective')!r}, seed {spec.get('seed')}): {error}", file=sys.stderr)
    if args.summary:
        from .summary import write_summary

        written = write_summary(records, out)
        print(written["table"], end="")
        print(f"summary: {written['table_path']}, {written['figure_path']}")
    return 1 if records.failed else 0


def _put_on_path(folder) -> None:
    """Make modules beside the spec importable (user rules/objectives named 'module:attr'),
    here and in the worker processes a pool starts."""
    import os

    folder = str(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if folder not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *parts])
