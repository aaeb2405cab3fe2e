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

from .adapters import NotApplicable, PortRun, expected_histories, make_port, run_case
from .compare import Comparison, check_tolerance_mode, compare_trajectories
from .diagnose import Diagnosis, diagnose
from .invariants import InvariantReport, check_invariants

__all__ = ["CaseResult", "Report", "verify_rule", "verify_cases", "load_cases", "judge",
           "make_port", "run_case"]

PASS, FAIL, ERROR, NOT_RUN, ACCEPTABLE = "pass", "FAIL", "ERROR", "n/a", "ok*"


@dataclass
class CaseResult:
    """The verdict on one case.

    ``status``: ``pass``; ``FAIL`` (numbers outside the tolerance up to the pointwise horizon,
    an invariant broken after it, or an invalid case accepted); ``ERROR`` (the port raised on a
    valid case); ``ok*`` (an ``acceptable`` case the port does differently); ``n/a`` (the port
    cannot be configured for the case; not counted). ``invariants`` holds the verdict on the
    case's invariants from the horizon on (None when the case has none).
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

    @property
    def counted(self) -> bool:
        return self.status != NOT_RUN

    @property
    def ok(self) -> bool:
        return self.status in (PASS, ACCEPTABLE)

    def to_dict(self) -> dict:
        c = self.comparison
        d = {"case_id": self.case_id, "dtype": self.dtype, "result": self.result,
             "status": self.status, "message": self.message, "flags": list(self.flags)}
        if c is not None:
            d.update({"first_divergence": None if c.first_divergence is None else
                      str(c.first_divergence), "max_abs": _finite(c.worst_abs),
                      "max_rel": _finite(c.worst_rel), "max_ulp": _finite(c.worst_ulp),
                      "min_lre": c.min_lre, "compared": c.compared})
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

    def table(self) -> str:
        """The per-case table, then one line per failure diagnosis and a summary."""
        head = ("case", "status", "first divergence", "max abs", "max rel", "max ulp", "min LRE",
                "after horizon")
        rows = []
        for r in self.results:
            c = r.comparison
            after = "-" if r.invariants is None else r.invariants.summary()
            if c is None:
                rows.append((r.case_id, r.status, "-", "-", "-", "-", "-", after))
            else:
                rows.append((r.case_id, r.status,
                             "-" if c.first_divergence is None else str(c.first_divergence),
                             f"{c.worst_abs:.2e}", f"{c.worst_rel:.2e}", _ulp(c.worst_ulp),
                             f"{c.min_lre:.1f}", after))
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [f"refopt verify: rule {self.rule}, port {self.port}", fmt.format(*head),
                 fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row) for row in rows]
        details = []
        for r in self.results:
            if r.status in (FAIL, ERROR) or (r.status == NOT_RUN and r.message):
                text = r.message
                if r.diagnosis is not None:
                    text = (text + ". " if text else "") + "diagnosis: " + r.diagnosis.message
                details.append(f"  {r.case_id} [{r.status}]: {text}")
            elif r.message:
                details.append(f"  {r.case_id} [{r.status}]: {r.message}")
        if details:
            lines += ["", "notes:"] + details
        n = {s: sum(r.status == s for r in self.results) for s in (PASS, FAIL, ERROR, ACCEPTABLE,
                                                                    NOT_RUN)}
        verdict = "PASS" if self.passed else ("NOTHING RUN" if not self.counted else "FAIL")
        lines += ["", f"{verdict}: {n[PASS]} passed, {n[FAIL]} failed, {n[ERROR]} errors, "
                      f"{n[ACCEPTABLE]} acceptable differences, {n[NOT_RUN]} not run "
                      f"(port cannot express the case) of {len(self.results)} cases"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "port": self.port, "passed": self.passed,
                "exit_status": self.exit_status, "cases": [r.to_dict() for r in self.results]}


def _ulp(x: float) -> str:
    if not math.isfinite(x):
        return "inf"
    return f"{x:.0f}" if x < 1e6 else f"{x:.1e}"


def judge(case, run: PortRun | None, error: BaseException | None = None, *,
          port_name: str = "", with_diagnosis: bool = True) -> CaseResult:
    """The verdict on one case from the port's trajectory (or the exception it raised).

    A valid case passes only if the trajectory is within the tolerance at every recorded step up
    to ``pointwise_horizon`` *and* every checkable invariant holds from the horizon on
    (:mod:`refopt.verify.invariants`). Raises ValueError for a tolerance mode refopt cannot
    judge (``statistical``, or an unknown one).
    """
    base = dict(case_id=case.case_id, dtype=str(case.dtype), result=case.result,
                flags=list(case.flags))
    if case.result != "invalid":
        try:
            check_tolerance_mode(case.tolerance)
        except ValueError as exc:
            raise ValueError(f"case {case.case_id}: {exc}") from None
    if case.result == "invalid":
        if error is not None:
            message = f"refused as required: {type(error).__name__}: {error}"
            expected = case.manifest.get("expected_error") if isinstance(case.manifest, Mapping) \
                else None
            param = (expected or {}).get("parameter")
            if param and param.split("[")[0] not in str(error):
                message += f" (note: the message does not name {param!r})"
            return CaseResult(status=PASS, message=message, **base)
        return CaseResult(status=FAIL, message="the port accepted an invalid case (a conforming "
                          f"port must raise): {_invalid_reason(case)}", **base)
    if error is not None:
        return CaseResult(status=ERROR, message=f"the port raised {type(error).__name__}: {error}",
                          **base)
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
        return CaseResult(status=FAIL, comparison=cmp, message="; ".join(notes), **base)
    diag = diagnose(case, run, port_name) if with_diagnosis else None
    return CaseResult(status=FAIL, comparison=cmp, diagnosis=diag, message="; ".join(notes),
                      **base)


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
                 port_name: str | None = None) -> Report:
    """Run ``cases`` (GoldenCase objects) through ``port`` and judge each (see verify_rule)."""
    p = make_port(port, options, adapter, port_name)
    name = getattr(p, "name", port_name or repr(port))
    results = []
    cases = list(cases)
    for case in cases:
        case = _with_probe_inputs(case)
        try:
            p.configure(case)
        except NotApplicable as exc:
            results.append(CaseResult(case.case_id, str(case.dtype), case.result, NOT_RUN,
                                      message=f"not run: {exc}", flags=list(case.flags)))
            continue
        run, error = None, None
        try:
            run = run_case(p, case)
        except NotApplicable as exc:  # pragma: no cover (configure already said so)
            results.append(CaseResult(case.case_id, str(case.dtype), case.result, NOT_RUN,
                                      message=f"not run: {exc}"))
            continue
        except Exception as exc:  # the port's own error is a verdict, not a crash
            error = exc
        results.append(judge(case, run, error, port_name=name, with_diagnosis=diagnose))
    rule_name = rule or (cases[0].rule if cases else "?")
    return Report(rule=rule_name, port=name, results=results)


def load_cases(rule: str, *, dtype: str | None = None, cases: str = "*",
               directory: Any = None) -> list:
    """The committed golden cases of ``rule`` (aliases allowed) whose id matches ``cases``."""
    from ..registry import canonical_name

    try:
        from ..golden import load_suite
    except ImportError as exc:  # pragma: no cover (part of the package)
        raise RuntimeError(f"the golden suite is not available: {exc}") from exc
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be 'float32', 'float64' or None, got {dtype!r}")
    target = canonical_name(rule)
    found = load_suite(pattern=cases or "*", dtype=dtype, directory=directory)
    return [c for c in found if canonical_name(c.rule) == target
            and fnmatch.fnmatchcase(c.case_id, cases or "*")
            and (dtype is None or str(c.dtype) == dtype)]


def verify_rule(rule_name: str, port: Any, dtype: str | None = None, cases: Any = "*", *,
                options: Mapping | None = None, adapter: str = "auto", directory: Any = None,
                diagnose: bool = True) -> Report:
    """Verify ``port`` against the golden cases of ``rule_name``.

    Parameters
    ----------
    rule_name : str
        ``"adamx"`` (alias ``"adamnx"``), ``"adams"`` or ``"alphaadam"`` (any rule with cases).
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
                        rule=canonical_name(rule_name), diagnose=diagnose)
