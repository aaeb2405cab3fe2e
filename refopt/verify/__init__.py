"""Verify a port of AdamX, AdamS or AlphaAdam against refopt's golden suite, with diagnoses.

One call runs every selected golden case of a rule through the port, compares its params (and
the state buffers it exposes) with the golden trajectory under the case's tolerance, and, for a
failing case, names the known mistake that reproduces the port's numbers:

>>> from refopt.verify import verify_rule                         # doctest: +SKIP
>>> report = verify_rule("adams", MyTorchAdamS, dtype="float64")  # doctest: +SKIP
>>> print(report.table()); report.passed                          # doctest: +SKIP

Closed-loop cases are compared pointwise only up to their ``pointwise_horizon``; from the horizon
on the port is judged on the case's invariants (final loss, AdamS's step bound, AdamX's v between
min and max g^2, AlphaAdam's kept fraction, finiteness; :mod:`refopt.verify.invariants`).

``port`` may be a ``torch.optim.Optimizer`` class, an optax ``GradientTransformation`` or a factory
returning one, any object with refopt's ``init``/``step`` rule interface (a refopt rule of any
backend: ``verify_rule("adamx", "numba")`` or ``verify_rule("adamx", get_rule("adamx",
backend="numba"))`` rebuilds the rule for each case on that backend) or a factory returning one,
or a plain step function; see :mod:`refopt.verify.adapters`. Ports in other languages use the file
mode of :mod:`refopt.verify.files` (``refopt verify RULE --write-inputs DIR``, then ``refopt
compare RULE DIR``; ``refopt/verify/PORTING.md``).

The command line: ``refopt verify RULE TARGET [--dtype float32|float64] [--option NAME=VALUE ...]
[--cases PATTERN]``, exit status 0 only if every selected case passes.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

import numpy as np

from .adapters import (COMMON, NotApplicable, PortError, PortRun, RulePort, expected_histories,
                       make_port, rule_defaults, run_case, watch_user_interrupt, _equal)
from .compare import Comparison, check_tolerance_mode, compare_trajectories
from .diagnose import Diagnosis, diagnose, diagnose_after_horizon
from .invariants import InvariantReport, check_invariants

__all__ = ["CaseResult", "Report", "verify_rule", "verify_cases", "load_cases", "judge",
           "make_port", "run_case"]

PASS, FAIL, ERROR, NOT_RUN, ACCEPTABLE, ADVISORY = "pass", "FAIL", "ERROR", "n/a", "ok*", "adv"
#: What a port may raise to refuse an invalid case: a validation error, not a crash.
VALIDATION_ERRORS = (ValueError, TypeError)


@dataclass
class CaseResult:
    """The verdict on one case.

    ``status``: ``pass``; ``FAIL`` (numbers outside the tolerance up to the pointwise horizon,
    an invariant broken after it, or an invalid case accepted); ``ERROR`` (the port raised on a
    valid case); ``ok*`` (an ``acceptable`` case the port does differently); ``adv`` (an invalid
    case where refopt's policy, not the mathematics, refuses the hyperparameters and the port
    accepts them: shown and counted, not a failure unless ``strict``); ``n/a`` (the port cannot
    be configured for the case, or ignores an option it received through ``**kwargs``; not
    counted). ``invariants`` holds the verdict on the case's invariants from the horizon on
    (None when the case has none).
    """

    case_id: str
    dtype: str
    result: str
    status: str
    comparison: Comparison | None = None
    diagnosis: Diagnosis | None = None
    message: str = ""
    flags: list = field(default_factory=list)
    invariants: InvariantReport | None = None
    hyper: dict = field(default_factory=dict)   # the case's hyperparameters (for patterns)
    folder: str = ""   # file mode: the case's folder (refopt.verify.files.port_case_id)

    @property
    def counted(self) -> bool:
        return self.status != NOT_RUN

    @property
    def ok(self) -> bool:
        return self.status in (PASS, ACCEPTABLE, ADVISORY)

    def to_dict(self) -> dict:
        c = self.comparison
        d = {"case_id": self.case_id, "dtype": self.dtype, "result": self.result,
             "status": self.status, "message": self.message, "flags": list(self.flags)}
        if self.folder:
            d["folder"] = self.folder
        if c is not None:
            d.update({"first_divergence": None if c.first_divergence is None else
                      str(c.first_divergence), "max_abs": _finite(c.worst_abs),
                      "max_rel": _finite(c.worst_rel), "max_ulp": _finite(c.worst_ulp),
                      "min_lre": c.min_lre, "compared": c.compared,
                      "max_rel_after_horizon": None if c.beyond_horizon_rel is None
                      else _finite(c.beyond_horizon_rel),
                      "buffers": {name: ("within tolerance" if div is None else div.to_dict())
                                  for name, div in c.buffer_divergence.items()}})
            if c.first_divergence is not None:
                d["first_divergence_values"] = c.first_divergence.to_dict()
        if self.diagnosis is not None:
            d["diagnosis"] = self.diagnosis.message
            d["matching_mistakes"] = self.diagnosis.keys
        if self.invariants is not None:
            d["pointwise_horizon"] = self.invariants.horizon
            d["invariants"] = [r.to_dict() for r in self.invariants.results]
        return d


def _finite(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else str(x)


@dataclass
class Report:
    """All case verdicts for one port; ``passed`` iff at least one case ran and every one passed."""

    rule: str
    port: str
    results: list

    @property
    def counted(self) -> list:
        return [r for r in self.results if r.counted]

    @property
    def passed(self) -> bool:
        return bool(self.counted) and all(r.ok for r in self.counted)

    @property
    def exit_status(self) -> int:
        """0 if every selected case passed; 1 if one failed; 2 if no case could run."""
        if not self.counted:
            return 2
        return 0 if self.passed else 1

    def by_id(self, case_id: str) -> CaseResult:
        for r in self.results:
            if r.case_id == case_id:
                return r
        raise KeyError(case_id)

    def table(self, failures_only: bool = False, colour: bool = False) -> str:
        """The per-case table, failures first; then the notes (identical ones grouped), where
        each failing case first leaves the tolerance per buffer, the pattern across cases, and
        a summary. ``failures_only`` keeps the FAIL and ERROR rows; ``colour`` marks the
        status with ANSI colours (for a terminal)."""
        head = ("case", "status", "first divergence", "max rel", "max ulp", "min LRE",
                "after horizon")
        shown = sorted(self.results, key=lambda r: STATUS_ORDER.get(r.status, 9))
        if failures_only:
            shown = [r for r in shown if r.status in (FAIL, ERROR)]
        rows = [_row(r) for r in shown]
        if any(r.folder for r in shown):   # file mode: where the port's files of the case are
            head = head[:1] + ("folder",) + head[1:]
            rows = [row[:1] + (r.folder or "-",) + row[1:] for r, row in zip(shown, rows)]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [f"refopt verify: rule {self.rule}, port {self.port}", fmt.format(*head),
                 fmt.format(*("-" * w for w in widths))]
        for r, row in zip(shown, rows):
            line = fmt.format(*row)
            if colour and r.status in _COLOURS:
                col = head.index("status")
                at = sum(widths[:col]) + 2 * col
                line = line[:at] + _COLOURS[r.status] + r.status + "\033[0m" + \
                    line[at + len(r.status):]
            lines.append(line)
        details = _grouped_notes(shown)
        if details:
            lines += ["", "notes:"] + details
        per_buffer = _buffer_lines([r for r in shown if r.status == FAIL])
        if per_buffer:
            lines += ["", "first divergence per buffer (golden vs port):"] + per_buffer
        pattern = failure_pattern(self.results)
        if pattern:
            lines += ["", "pattern: " + pattern]
        n = {s: sum(r.status == s for r in self.results) for s in (PASS, FAIL, ERROR, ACCEPTABLE,
                                                                    ADVISORY, NOT_RUN)}
        verdict = "PASS" if self.passed else ("NOTHING RUN" if not self.counted else "FAIL")
        lines += ["", f"{verdict}: {n[PASS]} passed, {n[FAIL]} failed, {n[ERROR]} errors, "
                      f"{n[ACCEPTABLE]} acceptable differences, {n[ADVISORY]} advisory, "
                      f"{n[NOT_RUN]} not run (port cannot express the case) of "
                      f"{len(self.results)} cases"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "port": self.port, "passed": self.passed,
                "exit_status": self.exit_status, "pattern": failure_pattern(self.results),
                "cases": [r.to_dict() for r in self.results]}


#: Row order of the table: what needs attention first.
STATUS_ORDER = {FAIL: 0, ERROR: 1, ADVISORY: 2, ACCEPTABLE: 3, PASS: 4, NOT_RUN: 5}
_COLOURS = {FAIL: "\033[31m", ERROR: "\033[35m", ADVISORY: "\033[33m", ACCEPTABLE: "\033[36m",
            PASS: "\033[32m"}
#: At most this many failing cases get their per-buffer lines in the table (all in --json).
BUFFER_LINES = 12


def _row(r: CaseResult) -> tuple:
    c = r.comparison
    after = []
    if c is not None and c.beyond_horizon_rel is not None:
        after.append(f"rel {c.beyond_horizon_rel:.1e}")
    if r.invariants is not None:
        after.append(r.invariants.summary())
    after_text = ", ".join(after) or "-"
    if c is None:
        return (r.case_id, r.status, "-", "-", "-", "-", after_text)
    return (r.case_id, r.status, "-" if c.first_divergence is None else str(c.first_divergence),
            f"{c.worst_rel:.2e}", _ulp(c.worst_ulp), f"{c.min_lre:.1f}", after_text)


def _note_text(r: CaseResult) -> str:
    text = r.message
    if r.status == ACCEPTABLE and r.comparison is not None and \
            r.comparison.first_divergence is not None:
        d = r.comparison.first_divergence
        text = (text + "; " if text else "") + f"at {d}: refopt gives {d.expected!r}, the " \
            f"port {d.actual!r}"
    if r.diagnosis is not None:
        text = (text + ". " if text else "") + "diagnosis: " + r.diagnosis.message
    return text


def _grouped_notes(results) -> list:
    """One line per case with something to say; identical texts of several cases in one."""
    groups: dict = {}
    for r in results:
        text = _note_text(r)
        if text and (r.status != PASS or r.message):
            groups.setdefault((r.status, text), []).append(r.case_id)
    out = []
    for (status, text), ids in groups.items():
        if len(ids) == 1:
            out.append(f"  {ids[0]} [{status}]: {text}")
        else:
            out.append(f"  {len(ids)} cases [{status}] ({_id_summary(ids)}): {text}")
    return out


def _buffer_lines(failed) -> list:
    out = []
    with_cmp = [r for r in failed if r.comparison is not None
                and r.comparison.first_divergence is not None]
    for r in with_cmp[:BUFFER_LINES]:
        parts = [f"{name} {'within tolerance' if div is None else div.detail()}"
                 for name, div in r.comparison.buffer_divergence.items()]
        out.append(f"  {r.case_id}: " + "; ".join(parts))
    if len(with_cmp) > BUFFER_LINES:
        out.append(f"  ... and {len(with_cmp) - BUFFER_LINES} more failing cases (--json has "
                   f"every one)")
    return out


def _id_summary(ids: list) -> str:
    """A few case ids, then how many more."""
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


def _ulp(x: float) -> str:
    if not math.isfinite(x):
        return "inf"
    return f"{x:.0f}" if x < 1e6 else f"{x:.1e}"


def failure_pattern(results) -> str:
    """One line on what the failing cases share, when they share something: a known mistake
    that every diagnosed failure matches, or a dtype that all failures and no pass have."""
    bad = [r for r in results if r.status in (FAIL, ERROR)]
    if not bad:
        return ""
    parts = []
    diagnosed = [r for r in bad if r.diagnosis is not None]
    if diagnosed:
        common = set(diagnosed[0].diagnosis.keys)
        for r in diagnosed[1:]:
            common &= set(r.diagnosis.keys)
        if common:
            parts.append(f"all {len(diagnosed)} diagnosed failures match "
                         + " / ".join(sorted(common)))
    good = [r for r in results if r.status in (PASS, ACCEPTABLE, ADVISORY)]
    parts += _hyper_patterns([r for r in bad if r.result != "invalid"],
                             [r for r in results if r.status == PASS and r.result == "valid"])
    for dtype in ("float32", "float64"):
        if all(r.dtype == dtype for r in bad) and good and not any(r.dtype == dtype
                                                                   for r in good):
            parts.append(f"every {dtype} case fails, every other dtype passes")
    if len(bad) > 1 and all(r.status == ERROR for r in bad):
        kinds = {r.message.split(":")[0] for r in bad}
        if len(kinds) == 1:
            parts.append(f"all {len(bad)} errors: {kinds.pop()}")
    return "; ".join(parts)


def _hyper_patterns(bad, good) -> list:
    """Hyperparameters that separate the failing valid cases from the passing ones: every
    failure has weight_decay > 0 and no pass does; every failure has bias_correction='torch'
    and no pass does."""
    if len(bad) < 2 or len(good) < 2:   # one case on either side is no pattern
        return []
    out = []
    keys = sorted(set().union(*(r.hyper for r in bad)) & set().union(*(r.hyper for r in good)))
    for key in keys:
        fails = [r.hyper.get(key) for r in bad]
        passes = [r.hyper.get(key) for r in good]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in fails + passes):
            if all(v != 0 for v in fails) and all(v == 0 for v in passes):
                out.append(f"every failing case has {key} != 0, every passing one {key} = 0")
            elif all(v == 0 for v in fails) and all(v != 0 for v in passes):
                out.append(f"every failing case has {key} = 0, every passing one {key} != 0")
            continue
        f_values = {repr(v) for v in fails}
        if len(f_values) == 1 and not f_values & {repr(v) for v in passes}:
            out.append(f"every failing case has {key}={fails[0]!r}, no passing one does")
    return out[:3]


def _invalid_kind(case) -> tuple[str, str]:
    """(``"undefined"`` or ``"policy"``, why) from the manifest's ``expected_error``; a case
    that does not say is treated as undefined: the port must refuse it."""
    manifest = case.manifest if isinstance(case.manifest, Mapping) else {}
    expected = manifest.get("expected_error") or {}
    kind = expected.get("kind", "undefined")
    return ("policy" if kind == "policy" else "undefined"), str(expected.get("why") or "")


def _judge_invalid(case, error, base, strict: bool) -> CaseResult:
    kind, why = _invalid_kind(case)
    reason = _invalid_reason(case)
    because = f" ({why})" if why else ""
    if error is None:
        if kind == "policy" and not strict:
            return CaseResult(status=ADVISORY, message=(
                f"advisory: refopt refuses {reason} by policy{because}, the mathematics is "
                f"defined there and the port accepts it; not a failure (--strict makes it one)"),
                **base)
        return CaseResult(status=FAIL, message="the port accepted an invalid case (a conforming "
                          f"port must raise): {reason}{because}", **base)
    if not isinstance(error, PortError):
        # File mode: the port wrote {"error": ...}; how it refused cannot be checked.
        return CaseResult(status=PASS, message=f"refused as required: {error}", **base)
    original = error.original
    said = f"{type(original).__name__}: {original}"
    if not isinstance(original, VALIDATION_ERRORS):
        return CaseResult(status=FAIL, message=(
            f"the port raised {said} at {error.phase}: not a validation error (a conforming "
            f"port refuses {reason} with a ValueError or TypeError)"), **base)
    if error.params_changed:
        return CaseResult(status=FAIL, message=(
            f"the port refused ({said}) only after changing params at {error.phase}; a "
            f"conforming port refuses {reason} before any param changes"), **base)
    if error.step > 1:
        return CaseResult(status=FAIL, message=(
            f"the port refused ({said}) only at {error.phase}; a conforming port refuses "
            f"{reason} at construction or at the first step"), **base)
    message = f"refused as required at {error.phase}: {said}"
    expected = case.manifest.get("expected_error") if isinstance(case.manifest, Mapping) \
        else None
    param = (expected or {}).get("parameter")
    if param and param.split("[")[0] not in str(original):
        message += f" (note: the message does not name {param!r})"
    return CaseResult(status=PASS, message=message, **base)


def judge(case, run: PortRun | None, error: BaseException | None = None, *,
          port_name: str = "", with_diagnosis: bool = True, strict: bool = False) -> CaseResult:
    """The verdict on one case from the port's trajectory (or the exception it raised).

    A valid case passes only if the trajectory is within the tolerance at every recorded step up
    to ``pointwise_horizon`` *and* every checkable invariant holds from the horizon on
    (:mod:`refopt.verify.invariants`). An invalid case passes only if the port raised a
    validation error (ValueError, TypeError or a subclass) at construction or at the first step,
    before any param changed (``error`` a :class:`~refopt.verify.adapters.PortError`; in file
    mode any reported refusal). An invalid case whose manifest marks it ``policy`` (refopt is
    stricter than the mathematics) is advisory when accepted, unless ``strict``. Raises
    ValueError for a tolerance mode refopt cannot judge (``statistical``, or an unknown one).
    """
    base = dict(case_id=case.case_id, dtype=str(case.dtype), result=case.result,
                flags=list(case.flags), hyper=dict(case.hyper or {}))
    if case.result != "invalid":
        try:
            check_tolerance_mode(case.tolerance)
        except ValueError as exc:
            raise ValueError(f"case {case.case_id}: {exc}") from None
    if case.result == "invalid":
        return _judge_invalid(case, error, base, strict)
    if error is not None:
        if isinstance(error, PortError):
            message = (f"the port raised {type(error.original).__name__}: {error.original} "
                       f"at {error.phase}")
        else:
            message = f"the port raised {type(error).__name__}: {error}"
        return CaseResult(status=ERROR, message=message, **base)
    expected = expected_histories(case)
    cmp = compare_trajectories(expected, run.as_histories(), case.steps, case.tolerance,
                               case.dtype)
    inv = check_invariants(case, run, expected)
    notes = list(run.notes) + list(cmp.notes) + ([] if inv is None else inv.notes)
    base["invariants"] = inv
    if cmp.passed and (inv is None or inv.passed):
        return CaseResult(status=PASS, comparison=cmp, message="; ".join(notes), **base)
    if case.result == "acceptable":
        return CaseResult(status=ACCEPTABLE, comparison=cmp, message="; ".join(
            notes + ["differs on an 'acceptable' case (variant-dependent behaviour)"]), **base)
    if cmp.passed:
        # Right up to the horizon, wrong after it: the mutants are compared pointwise up to the
        # horizon, where the port matches the reference, so they cannot tell anything here.
        notes.insert(0, f"within tolerance at every recorded step up to the pointwise horizon "
                        f"t={inv.horizon}")
        # Only the final loss can tell the mutants apart there (diagnose_after_horizon).
        diag = diagnose_after_horizon(case, run, port_name) if with_diagnosis else None
        return CaseResult(status=FAIL, comparison=cmp, diagnosis=diag, message="; ".join(notes),
                          **base)
    diag = diagnose(case, run, port_name) if with_diagnosis else None
    return CaseResult(status=FAIL, comparison=cmp, diagnosis=diag, message="; ".join(notes),
                      **base)


def ignored_options(case, port, run: PortRun) -> list:
    """The options a port received only through ``**kwargs`` and ignored: the smallest set of
    them (all together, then each alone) whose reset to the rule's default makes refopt's
    reference reproduce the port's trajectory. Empty if there is none."""
    from .diagnose import _with, matching_tolerance

    unnamed = getattr(port, "unnamed", None)
    if not callable(unnamed) or run is None:
        return []
    defaults = rule_defaults(case)
    # lr, betas, eps and weight_decay are the port's own business: one it ignores is a failure.
    suspects = [k for k in unnamed(case) if k in case.hyper and k in defaults and k not in COMMON
                and not _equal(case.hyper[k], defaults[k])]
    if not suspects:
        return []
    actual = run.as_histories()
    tol = matching_tolerance(case)
    subsets = [[k] for k in suspects] + ([suspects] if len(suspects) > 1 else [])
    for subset in subsets:
        try:
            rule = _with(case, **{k: defaults[k] for k in subset})
            expected = run_case(RulePort(rule, rebuild=False), case).as_histories()
        except (ValueError, TypeError, PortError):
            continue
        cmp = compare_trajectories(expected, {k: v for k, v in actual.items() if k in expected},
                                   case.steps, tol, case.dtype)
        if cmp.passed:
            return subset
    return []


def _with_probe_inputs(case):
    """An invalid case stored without payload gets one small tensor and one step, so the port
    is refused for its hyperparameters and not for an empty parameter list."""
    if case.result != "invalid" or (case.init_params and int(case.n_steps or 0) > 0):
        return case
    dt = np.dtype(case.dtype or "float64")
    init = [np.array([1.0, -0.5, 0.25], dtype=dt)]
    return replace(case, init_params=init, grads=[np.array([[0.5, -1.0, 2.0]], dtype=dt)],
                   grad_fn=None, n_steps=1, steps=np.array([0, 1], dtype=np.int64),
                   expected_params=[], expected_state={})


def _invalid_reason(case) -> str:
    manifest = case.manifest if isinstance(case.manifest, Mapping) else {}
    param = (manifest.get("expected_error") or {}).get("parameter")
    if param:
        name, _, index = param.partition("[")
        value = case.hyper.get(name)
        if index and isinstance(value, (tuple, list)):
            value = value[int(index.rstrip("]"))]
        return f"{param} = {value!r} is out of range"
    return f"hyperparameters {dict(case.hyper)}"


def verify_cases(cases: Iterable, port: Any, *, options: Mapping | None = None,
                 adapter: str = "auto", rule: str | None = None, diagnose: bool = True,
                 port_name: str | None = None, variant: Mapping | None = None,
                 strict: bool = False, progress=None) -> Report:
    """Run ``cases`` (GoldenCase objects) through ``port`` and judge each (see verify_rule).
    ``progress(done, total, case_id)``, if given, is called before each case and at the end.
    A Ctrl-C (KeyboardInterrupt) propagates with ``partial_report``: the cases judged before it."""
    p = make_port(port, options, adapter, port_name, variant=variant)
    name = getattr(p, "name", port_name or repr(port))
    results = []
    cases = list(cases)
    rule_name = rule or (cases[0].rule if cases else "?")
    try:
        with watch_user_interrupt():
            for k, case in enumerate(cases):
                if progress is not None:
                    progress(k, len(cases), case.case_id)
                results.append(_verify_one(p, _with_probe_inputs(case), name, diagnose, strict))
            if progress is not None:
                progress(len(cases), len(cases), "")
    except KeyboardInterrupt as exc:  # the user's Ctrl-C: the cases judged so far go with it
        exc.partial_report = Report(rule=rule_name, port=name, results=results)
        raise
    return Report(rule=rule_name, port=name, results=results)


def _verify_one(p, case, name: str, diagnose: bool, strict: bool) -> CaseResult:
    not_run = dict(case_id=case.case_id, dtype=str(case.dtype), result=case.result,
                   status=NOT_RUN, flags=list(case.flags), hyper=dict(case.hyper or {}))
    try:
        p.configure(case)
    except NotApplicable as exc:
        return CaseResult(message=f"not run: {exc}", **not_run)
    run, error = None, None
    try:
        run = run_case(p, case)
    except NotApplicable as exc:   # the port refused one of refopt's option names
        return CaseResult(message=f"not run: {exc}", **not_run)
    except PortError as exc:       # the port's own error is a verdict, not a crash
        error = exc
    result = judge(case, run, error, port_name=name, with_diagnosis=diagnose, strict=strict)
    if result.status == FAIL and case.result != "invalid" and result.comparison is not None \
            and not result.comparison.passed:
        ignored = ignored_options(case, p, run)
        if ignored:
            said = ", ".join(f"{k}={case.hyper[k]!r}" for k in ignored)
            return CaseResult(message=(
                f"not supported: the port ignores {', '.join(ignored)} (its **kwargs took "
                f"{said} and its numbers are refopt's with {'these' if len(ignored) > 1 else 'it'}"
                f" at the default)"), **not_run)
    return result


def load_cases(rule: str, *, dtype: str | None = None, cases: str = "*",
               directory: Any = None) -> list:
    """The committed golden cases of ``rule`` (aliases allowed) whose id matches ``cases``; for
    a user rule (import path), the cases of the suite at ``directory`` built for it."""
    from ..registry import canonical_name, is_builtin

    try:
        from ..golden import load_suite
    except ImportError as exc:  # pragma: no cover (part of the package)
        raise RuntimeError(f"the golden suite is not available: {exc}") from exc
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be 'float32', 'float64' or None, got {dtype!r}")
    target = canonical_name(rule)
    if directory is None and not is_builtin(target):
        raise ValueError(f"{rule!r} is your own rule: refopt ships no cases of it; build them "
                         f"with 'refopt golden build --rule {rule} --out DIR' and pass "
                         f"--suite DIR (Python: directory=DIR)")
    if directory is not None:
        from ..golden.build import suite_rule

        built_for = suite_rule(directory)
        if built_for is not None and built_for != target:
            raise ValueError(f"the suite at {directory} was built for rule {built_for!r}, not "
                             f"{rule!r}")
    # Only the selected rule's cases are read: a broken case of another rule does not block it.
    found = load_suite(pattern=cases or "*", dtype=dtype, directory=directory, rule=target)
    return [c for c in found if canonical_name(c.rule) == target
            and fnmatch.fnmatchcase(c.case_id, cases or "*")
            and (dtype is None or str(c.dtype) == dtype)]


def verify_rule(rule_name: str, port: Any, dtype: str | None = None, cases: Any = "*", *,
                options: Mapping | None = None, adapter: str = "auto", directory: Any = None,
                diagnose: bool = True, variant: Mapping | None = None,
                strict: bool = False) -> Report:
    """Verify ``port`` against the golden cases of ``rule_name``.

    Parameters
    ----------
    rule_name : str
        ``"adamx"`` (alias ``"adamnx"``), ``"adams"`` or ``"alphaadam"`` (any rule with cases),
        or a user rule's import path ``"module:Class"`` with ``directory`` the suite that
        ``refopt golden build --rule module:Class`` wrote (:mod:`refopt.golden.user_rules`).
    port : object
        A ``torch.optim.Optimizer`` class, an optax GradientTransformation or factory, a
        refopt-rule-like object or factory (a refopt rule instance of any backend is rebuilt per
        case on its backend), a backend name such as ``"numba"``, or a step function
        ``step(params, grads, state, *, t, lr, hyper) -> (params, state)``.
    dtype : {"float32", "float64"}, optional
        Only the cases of this dtype (default: both).
    cases : str or list of GoldenCase
        An fnmatch pattern on case ids (default ``"*"``: every case of the rule), or the cases.
    options : dict, optional
        Extra keyword arguments for the port's constructor or factory (CLI ``--option``).
    variant : dict, optional
        The variant the port implements, ``{NAME: value}`` for rule hyperparameters (CLI
        ``--variant``; also read from a ``refopt_variant`` attribute of the port). Nothing is
        passed to the port: cases with another value are not run, the others run as if the
        port had been given the value.
    strict : bool
        Count an accepted invalid case whose refusal is refopt's policy (not undefined
        mathematics) as a failure instead of an advisory.
    adapter : str
        ``"auto"`` (default), ``"torch"``, ``"optax"``, ``"rule"`` or ``"function"``.
    directory : path, optional
        Another suite directory (default: the committed suite).
    diagnose : bool
        Diagnose failures by re-running the reference with known mistakes planted.

    Returns
    -------
    Report
        ``report.passed``, ``report.exit_status``, ``report.table()``, ``report.to_dict()``.
    """
    from ..registry import canonical_name

    if isinstance(cases, str) or cases is None:
        selected = load_cases(rule_name, dtype=dtype, cases=cases or "*", directory=directory)
    else:
        target = canonical_name(rule_name)
        selected = [c for c in cases if canonical_name(c.rule) == target
                    and (dtype is None or str(c.dtype) == dtype)]
    return verify_cases(selected, port, options=options, adapter=adapter,
                        rule=canonical_name(rule_name), diagnose=diagnose, variant=variant,
                        strict=strict)
