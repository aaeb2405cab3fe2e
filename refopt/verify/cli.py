"""``refopt verify`` and ``refopt compare``: a one-command verdict on a port, with diagnoses.

::

    refopt verify RULE TARGET [--dtype float32|float64] [--option NAME=VALUE ...] [--cases PATTERN]
    refopt verify RULE --write-inputs DIR [--force] [--dtype ...] [--cases ...]  # file mode, 1
    refopt compare RULE DIR [--dtype ...] [--cases ...]                    # file mode, step 2

TARGET is ``module:attribute`` importable from the current directory (a torch.optim.Optimizer
class, an optax GradientTransformation or factory, a refopt-rule-like object or factory, or a
step function; see :mod:`refopt.verify.adapters`), or a refopt backend name (``numba``,
``cupy``): ``refopt verify adamx numba`` runs the golden suite through the fused kernels. Exit status: 0 if every selected case passes,
1 if one fails, 2 if nothing could be run or the command was wrong.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys


def parse_option(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` with VALUE read as a Python literal when it is one (``0.1``, ``True``,
    ``(0.9, 0.95)``, ``None``), else kept as a string (``hf``)."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"--option needs NAME=VALUE, got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        value = raw.strip()
    return name.strip(), value


def load_target(spec: str):
    """Import ``module:attribute`` (attribute may be dotted) with the current directory first on
    ``sys.path``; a bare refopt backend name (``numpy``, ``numba``, ``cupy``) is returned as is:
    the refopt rule on that backend is the port."""
    from ..registry import BACKENDS

    if spec in BACKENDS:
        return spec
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"TARGET must be module:attribute (e.g. my_port:AdamS) or a refopt "
                         f"backend {sorted(BACKENDS)}, got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise
    except SyntaxError as exc:
        raise ValueError(f"{module_name} does not compile: {exc.msg} ({exc.filename}, line "
                         f"{exc.lineno})") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        # A module that raises, or calls sys.exit(0), at import must not end verify as a pass.
        raise ValueError(f"importing {module_name} raised {type(exc).__name__}: {exc}") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{module_name} has no attribute {attr!r}") from None
    return obj


#: Every rule with golden cases, for the help text (tests/test_cli.py keeps it equal to
#: refopt.RULES; importing the registry here would load NumPy for ``refopt --help``).
RULE_NAMES = ("adamx (adamnx)", "adams", "alphaadam", "adam", "adamw", "cadamw", "adax", "sgdm")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="only the cases of this dtype (default: both)")
    p.add_argument("--cases", default="*", metavar="PATTERN",
                   help="fnmatch pattern on case ids, e.g. 'adams_paper_*' (default: all cases "
                        "of the rule)")
    p.add_argument("--suite", default=None, metavar="DIR",
                   help="another golden suite directory (default: the committed suite)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the report as JSON (atomically; '-' for stdout)")
    p.add_argument("--no-diagnose", action="store_true",
                   help="skip the known-mistake diagnosis of failures")
    p.add_argument("--failures-only", action="store_true",
                   help="list only the FAIL and ERROR cases (the notes, pattern and summary "
                        "stay; --json keeps every case)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar on the terminal")


def register(subparsers) -> None:
    v = subparsers.add_parser(
        "verify", help="verify a port (torch, optax, Python) against the golden suite",
        description="Run every selected golden case of RULE through TARGET and print a per-case "
                    "table: pass/fail, first divergent step and tensor, worst absolute and "
                    "relative error, ULP distance, log relative error, and for failures the known "
                    "mistake that explains them. Exit status 0 only if every selected case passes.")
    v.add_argument("rule", metavar="RULE", help="any rule of refopt: " + ", ".join(RULE_NAMES)
                   + " (each has golden cases; `refopt rules` lists their options), or your "
                   "own rule by import path MODULE:CLASS with --suite DIR built by `refopt "
                   "golden build --rule MODULE:CLASS --out DIR`")
    v.add_argument("target", metavar="TARGET", nargs="?",
                   help="module:attribute importable from the current directory, or a refopt "
                        "backend name (numba, cupy)")
    v.add_argument("--option", action="append", default=[], type=parse_option,
                   metavar="NAME=VALUE", help="pass NAME=VALUE to the port's constructor or "
                   "factory (repeatable); a rule hyperparameter given here also deselects cases "
                   "with another value")
    v.add_argument("--variant", action="append", default=[], type=parse_option,
                   metavar="NAME=VALUE", help="declare the variant the port implements, e.g. "
                   "bias_correction=True for a port of AdamS's official-code form that has no "
                   "such keyword (repeatable): passes nothing to the port, runs only the cases "
                   "with NAME=VALUE; a port may declare it itself in a refopt_variant attribute")
    v.add_argument("--strict", action="store_true",
                   help="an invalid case that refopt refuses by policy (the mathematics is "
                        "defined there) fails when the port accepts it, instead of being "
                        "advisory")
    v.add_argument("--adapter", choices=("auto", "torch", "optax", "rule", "function"),
                   default="auto", help="force an adapter (default: chosen from TARGET)")
    v.add_argument("--write-inputs", default=None, metavar="DIR",
                   help="file mode: write each selected case's inputs under DIR for a port in "
                        "another language, then judge its outputs with 'refopt compare'")
    v.add_argument("--force", action="store_true",
                   help="with --write-inputs: a DIR that is not empty is accepted after the "
                        "case folders refopt wrote there (the port's outputs in them included) "
                        "are deleted; anything else in DIR is left alone")
    v.add_argument("--cases-from", default=None, metavar="FILE",
                   help="run the cases of a golden-format file (a case's .json, e.g. one that "
                        "--fuzz saved) or of a folder of them, instead of the committed suite")
    v.add_argument("--fuzz", default=None, type=_positive_int, metavar="N",
                   help="instead of the suite, draw up to N random cases (judged with the "
                        "suite's tolerance model), stop at the first failure, shrink it and "
                        "save the minimal case under --fuzz-out")
    v.add_argument("--seed", default=0, type=int, metavar="S",
                   help="seed of --fuzz (default 0; the same seed draws the same cases)")
    v.add_argument("--fuzz-out", default="refopt-fuzz", metavar="DIR",
                   help="where --fuzz saves the minimal failing case (default ./refopt-fuzz)")
    _common(v)
    v.set_defaults(func=run_verify)
    from .api import register_api  # --api: framework-API rows for a torch port (api.py)
    register_api(v, run_verify)

    c = subparsers.add_parser(
        "compare", help="judge the trajectories a foreign port wrote (file mode)",
        description="Judge the outputs a port wrote under DIR for the inputs of 'refopt verify "
                    "RULE --write-inputs DIR' (format: refopt/verify/PORTING.md). Exit status 0 "
                    "only if every case found passes.")
    c.add_argument("rule", metavar="RULE")
    c.add_argument("directory", metavar="DIR")
    _common(c)
    c.set_defaults(func=run_compare)


def _check_outputs(args, command: str) -> str | None:
    """Why an output path of the command cannot be written, before any work is done."""
    from .._cliutil import json_problem

    problem = json_problem(getattr(args, "json", None))
    if problem:
        return problem
    inputs = getattr(args, "write_inputs", None)
    if inputs and os.path.exists(inputs) and not os.path.isdir(inputs):
        return f"--write-inputs {inputs} is a file; give a directory"
    force = getattr(args, "force", False)
    if inputs and os.path.isdir(inputs) and os.listdir(inputs) and not force:
        return (f"--write-inputs {inputs} is not empty; pass --force to delete the case "
                f"folders refopt wrote there (old outputs included), or give an empty directory")
    if force and not inputs:
        return "--force applies only with --write-inputs DIR"
    return None


def _check_variant(args) -> str | None:
    from ..registry import rule_info

    try:
        known = set(rule_info(args.rule).cls.defaults)
    except (KeyError, ValueError):
        return None  # load_cases reports the unknown rule
    for name, _ in args.variant:
        if name not in known:
            return (f"--variant {name}: {args.rule} has no hyperparameter {name!r} (it has "
                    f"{', '.join(sorted(known))})")
    # A value given for one of the rule's hyperparameters also selects cases: it must be a
    # value the rule takes (``--option lr=abc`` is a usage error, not a selection of nothing).
    import warnings

    from ..registry import get_rule
    for flag, pairs in (("--variant", args.variant), ("--option", args.option)):
        for name, value in pairs:
            if name not in known:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    get_rule(args.rule, **{name: value})
            except (ValueError, TypeError) as exc:
                return f"{flag} {name}={value!r}: {exc}"
    return None


def _colour_wanted(stream) -> bool:
    """ANSI colours only on a terminal, and never under NO_COLOR (https://no-color.org)."""
    return hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")


def terminal_progress(label: str, quiet: bool = False, stream=None):
    """A ``progress(done, total, case_id)`` callback that draws a labelled bar on a terminal
    (the case as its phase, the count, elapsed time and an estimate of what is left), or None
    where the stream is not a terminal or ``quiet`` (:mod:`refopt._progress`)."""
    from .._progress import callback

    return callback(label, unit="cases", quiet=quiet, stream=stream)


def _finish(report, args) -> int:
    if args.json != "-":  # with --json - stdout holds the JSON alone
        print(report.table(failures_only=getattr(args, "failures_only", False),
                           colour=_colour_wanted(sys.stdout)))
    from .._cliutil import write_json

    write_json(args.json, report.to_dict())
    return report.exit_status


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _cases_from(args):
    """(suite directory, case pattern) for --cases-from, or an error line."""
    from pathlib import Path

    path = Path(args.cases_from)
    if path.is_dir():
        return path, args.cases, None
    if path.is_file() and path.suffix == ".json":
        return path.parent, path.stem, None
    return None, None, (f"--cases-from {args.cases_from}: not a golden case file (.json) or a "
                        f"folder of them")


def _target(args):
    """The imported TARGET, or the exit status 2 after one line on stderr (an import that
    fails, or a refopt backend that cannot run here)."""
    try:
        target = load_target(args.target)
    except (ImportError, ValueError) as exc:
        print(f"refopt verify: cannot import {args.target!r}: {exc}", file=sys.stderr)
        return 2
    if isinstance(target, str):  # a backend: say at once if it cannot run here
        from ..registry import get_rule

        try:
            get_rule(args.rule, backend=target)
        except (ImportError, RuntimeError) as exc:
            print(f"refopt verify: {exc}", file=sys.stderr)
            return 2
    return target


def run_fuzz(args, target) -> int:
    from . import Report
    from .fuzz import fuzz

    try:
        result = fuzz(args.rule, target, args.fuzz, seed=args.seed, dtype=args.dtype,
                      options=dict(args.option), variant=dict(args.variant),
                      adapter=args.adapter, strict=args.strict,
                      save_to=args.fuzz_out,
                      progress=terminal_progress(f"refopt verify {args.rule} --fuzz",
                                                 args.quiet))
    except (TypeError, ValueError) as exc:
        print(f"refopt verify: {exc}", file=sys.stderr)
        return 2
    if result.minimal is not None:
        print(Report(rule=result.rule, port=args.target, results=[result.minimal]).table())
        print()
    print(result.summary())
    if result.failure is not None:
        return 1
    return 0 if result.passed else 2


def run_verify(args) -> int:
    from . import load_cases, verify_cases
    from .files import write_inputs

    from .._cliutil import user_rule_problem

    problem = (user_rule_problem(args.rule) or _check_outputs(args, "verify")
               or _check_variant(args))
    if problem:
        print(f"refopt verify: {problem}", file=sys.stderr)
        return 2
    suite, pattern = args.suite, args.cases
    if args.cases_from:
        suite, pattern, problem = _cases_from(args)
        if problem:
            print(f"refopt verify: {problem}", file=sys.stderr)
            return 2
    if args.fuzz:
        if not args.target:
            print("refopt verify: --fuzz needs a TARGET", file=sys.stderr)
            return 2
        target = _target(args)
        return target if isinstance(target, int) else run_fuzz(args, target)
    try:
        cases = load_cases(args.rule, dtype=args.dtype, cases=pattern, directory=suite)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"refopt verify: {exc}", file=sys.stderr)
        return 2
    if not cases:
        print(f"refopt verify: no golden case of {args.rule!r} matches --cases {args.cases!r}"
              + (f" and --dtype {args.dtype}" if args.dtype else ""), file=sys.stderr)
        return 2
    if args.write_inputs:
        if args.target:
            print("refopt verify: give either TARGET or --write-inputs, not both", file=sys.stderr)
            return 2
        try:
            written = write_inputs(cases, args.write_inputs, force=getattr(args, "force", False))
        except ValueError as exc:
            print(f"refopt verify: --write-inputs {args.write_inputs}: {exc}", file=sys.stderr)
            return 2
        suite_arg = f" --suite {suite}" if suite else ""
        print(f"wrote the inputs of {len(written)} cases under {args.write_inputs}; run your port "
              f"on them, then: refopt compare {args.rule} {args.write_inputs}{suite_arg}")
        return 0
    if not args.target:
        print("refopt verify: TARGET (module:attribute) or --write-inputs DIR is required",
              file=sys.stderr)
        return 2
    target = _target(args)
    if isinstance(target, int):
        return target
    try:
        report = verify_cases(cases, target, options=dict(args.option), adapter=args.adapter,
                              rule=args.rule, diagnose=not args.no_diagnose,
                              port_name=args.target, variant=dict(args.variant),
                              strict=args.strict,
                              progress=terminal_progress(f"refopt verify {args.rule}",
                                                         args.quiet))
    except (TypeError, ValueError) as exc:
        print(f"refopt verify: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # --json keeps the cases judged before Ctrl-C
        partial = getattr(exc, "partial_report", None)
        if partial is not None and args.json:
            from .._cliutil import write_json

            write_json(args.json, {**partial.to_dict(), "interrupted": True})
        raise
    return _finish(report, args)


def run_compare(args) -> int:
    from .files import compare_directory, listed_cases

    if not os.path.isdir(args.directory):
        print(f"refopt compare: {args.directory} is not a directory", file=sys.stderr)
        return 2
    from .._cliutil import user_rule_problem

    problem = user_rule_problem(args.rule) or _check_outputs(args, "compare")
    if problem:
        print(f"refopt compare: {problem}", file=sys.stderr)
        return 2
    if not listed_cases(args.directory):
        print(f"refopt compare: no case inputs under {args.directory} (write them with "
              f"'refopt verify {args.rule} --write-inputs {args.directory}')", file=sys.stderr)
        return 2
    try:
        report = compare_directory(args.rule, args.directory, dtype=args.dtype,
                                   pattern=args.cases, suite_directory=args.suite,
                                   diagnose=not args.no_diagnose)
    except (ValueError, RuntimeError) as exc:
        print(f"refopt compare: {exc}", file=sys.stderr)
        return 2
    if not report.results:
        print(f"refopt compare: none of the cases under {args.directory} is a golden case of "
              f"{args.rule!r} matching the selection", file=sys.stderr)
        return 2
    return _finish(report, args)
