r"""The golden invariants: what is judged on a closed-loop case after its pointwise horizon.

In closed loop a legitimate rounding difference feeds back through the objective, so the golden
suite compares a port pointwise only up to ``tolerance.pointwise_horizon`` (FORMAT.md section 5).
From the horizon on (the horizon step included) a port is judged on the properties that every
correct implementation keeps however its trajectory drifts, listed per case in
``tolerance.invariants``:

``final_loss``
    :math:`L = \sum_i f(w_{T,i})` of the port's final params under the case's objective
    (:func:`refopt.objectives.make_objective`) must satisfy
    :math:`|L - L^\star| \le \mathrm{atol} + \mathrm{rtol}\,|L^\star|` with the manifest's
    ``atol`` (0 if absent) and ``rtol``; :math:`L^\star` is the manifest's ``value``. Both are
    evaluated in float64 (params cast to float64): a float32 evaluation near a minimum moves in
    steps coarser than the legitimate spread (``adamx_official_logcosh_float32``: 2^-21 in
    float32, 7.09e-7 in float64).
``adams_step_bound``
    AdamS paper form (adams.md A2): :math:`|w_t - w_{t-1}| \le \eta_t\sqrt{C}` per coordinate,
    :math:`C = \beta_1^2/\beta_2 + (1-\beta_1)^2/(1-\beta_2)` (``value`` is
    :math:`\eta\sqrt{C}`). When only every k-th step is available (file mode with
    ``record_every = k``) the triangle inequality gives the bound that the statement supports,
    :math:`|w_s - w_{s-k}| \le \sqrt{C}\sum_{t=s-k+1}^{s}\eta_t` (``k·lr·sqrt(C)`` for a constant
    rate); the note says which form was checked.
``adamx_v_between_min_max_g2``
    AdamX (adamx.md T2): :math:`v_t` is a convex combination of the :math:`g_k^2`, so
    :math:`\min_{k\le t} g_k^2 \le v_t \le \max_{k\le t} g_k^2` per coordinate, over the port's own
    gradients. Needs the port's ``exp_avg_sq``; without it the invariant is *not checkable*.
``alphaadam_kept_fraction``
    AlphaAdam: per step and tensor, :math:`0 \le \mathrm{kept} \le \mathrm{size}` (and kept is the
    mask's count), and alpha as the case's ``alpha_rule`` makes it from kept/size (``count``:
    :math:`\alpha = 1/\max(\mathrm{kept}/\mathrm{size}, \mathrm{density\_floor}) \ge 1`). Needs the
    port's mask (or kept count); without it *not checkable*.

Besides the listed invariants, a non-finite param or state value after the horizon fails
(``finite_after_horizon``) wherever the golden values there are finite.

Rounding slack. The bounds hold exactly in real arithmetic; a float implementation may exceed
them by rounding only. With :math:`\epsilon` the machine epsilon of the case dtype:

* step bound: :math:`\sqrt{C}\eta(1 + 16\epsilon) + \epsilon\max(|w_{t-1}|, |w_t|)` per step:
  the step carries up to 8 roundings (m, nu, sqrt, division, the product with lr) and the betas
  rounded to the case dtype move C by a few ulps; the subtraction :math:`w - s` rounds once,
  relative to :math:`|w|`. The bound is attained: the reference's own steps come within 4e-6
  (float32) and 5e-3 (float64) of it on ``adams_paper_logcosh``;
* v bounds: every term of the recursion is non-negative, so the computed :math:`v_t` is the exact
  convex combination times a factor within :math:`(1 \pm \epsilon)^{c t}`; allowed relative slack
  :math:`4(t+1)\epsilon` (with ``state_dtype`` narrower than the case dtype, its epsilon).

These slacks are orders of magnitude below what a wrong or blown-up trajectory shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

PASS, FAIL, NOT_CHECKABLE = "pass", "FAIL", "not checkable"

# Machine epsilon of the narrowed state storage (AdamX ``state_dtype``).
_STATE_EPS = {"float64": 2.0 ** -52, "float32": 2.0 ** -23, "float16": 2.0 ** -10,
              "bfloat16": 2.0 ** -7}


@dataclass
class Trace:
    """A port's trajectory as the invariants need it.

    ``steps`` are the step indices held (every step 0..T when the port ran in process, else the
    case's recorded steps); ``params`` and ``state`` hold one array per tensor shaped
    (len(steps), *shape); ``grads`` one array per tensor shaped (T, *shape), row t-1 the gradient
    the port was given at step t (None if unknown); ``info`` maps ``"mask"``, ``"alpha"``,
    ``"kept"`` (whatever the port exposes) to one array per tensor over the steps ``steps[1:]``.
    """

    steps: np.ndarray
    params: list
    state: dict = field(default_factory=dict)
    grads: list | None = None
    info: dict = field(default_factory=dict)


@dataclass
class InvariantResult:
    """The verdict on one invariant: ``pass``, ``FAIL`` or ``not checkable``.

    ``excess`` is the worst measured value over what is allowed (> 1 fails; nan when not
    checkable), ``step`` the first failing step, ``detail`` says what was measured and how.
    """

    id: str
    status: str
    detail: str = ""
    excess: float = math.nan
    step: int | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "detail": self.detail,
                "excess": self.excess if math.isfinite(self.excess) else str(self.excess),
                "step": self.step}


@dataclass
class InvariantReport:
    """Every invariant of one case, judged from ``horizon`` on."""

    horizon: int
    results: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.status != FAIL for r in self.results)

    @property
    def failed(self) -> list:
        return [r for r in self.results if r.status == FAIL]

    @property
    def not_checkable(self) -> list:
        return [r for r in self.results if r.status == NOT_CHECKABLE]

    def summary(self) -> str:
        """Short form for the table: ``2 ok``, ``FAIL final_loss``, ``1 ok, 1 n/c``."""
        if not self.results:
            return "-"
        if self.failed:
            return "FAIL " + ",".join(r.id for r in self.failed)
        ok = sum(r.status == PASS for r in self.results)
        nc = len(self.not_checkable)
        return f"{ok} ok" + (f", {nc} n/c" if nc else "")

    @property
    def notes(self) -> list:
        """One note naming every failed invariant with its measurement, then one per invariant
        that could not be checked for this port."""
        out = []
        if self.failed:
            out.append(f"after the pointwise horizon (t >= {self.horizon}): " + "; ".join(
                f"invariant {r.id} FAILED: {r.detail}" for r in self.failed))
        out += [f"invariant {r.id} not checkable for this port: {r.detail}"
                for r in self.not_checkable]
        return out


# -- helpers --------------------------------------------------------------------------------
def _value(obj: Any) -> float:
    if isinstance(obj, Mapping):
        from ..golden.format import decode_float

        return decode_float(obj)
    return float(obj)


def _lr_table(case) -> np.ndarray:
    n = int(case.n_steps)
    if case.lr_schedule is not None:
        return np.asarray(case.lr_schedule, dtype=np.float64)[:n]
    return np.full(n, float(case.hyper["lr"]))


def _eps(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps)


def _where(label: str, index: tuple) -> str:
    return f"{label}[{','.join(map(str, index))}]" if index else label


def _objective(case):
    obj = getattr(case.grad_fn, "objective", None)
    if obj is not None:
        return obj
    if not case.objective:
        return None
    from ..objectives import make_objective

    return make_objective(case.objective["name"], **case.objective["constants"])


def final_loss_value(objective, params) -> float:
    """f in float64 at the last recorded params of every tensor (``params``: one history per
    tensor), as the manifest value was made from the golden ones (a float32 evaluation is
    quantised near a minimum)."""
    with np.errstate(all="ignore"):
        return float(sum(objective.value(np.asarray(p[-1], dtype=np.float64)) for p in params))


# -- the invariants -------------------------------------------------------------------------
def final_loss(case, trace: Trace, spec: Mapping, horizon: int) -> InvariantResult:
    name = "final_loss"
    obj = _objective(case)
    if obj is None:
        return InvariantResult(name, NOT_CHECKABLE, "the case has no objective")
    if int(trace.steps[-1]) != int(case.n_steps):
        return InvariantResult(name, NOT_CHECKABLE, "the final params were not recorded")
    golden, rtol = _value(spec["value"]), float(spec["rtol"])
    atol = float(spec.get("atol") or 0.0)       # suites built before atol was stored: 0
    loss = final_loss_value(obj, trace.params)
    allowed = atol + rtol * abs(golden)
    err = abs(loss - golden) if math.isfinite(loss) else math.inf
    excess = err / allowed if allowed > 0 else (0.0 if err == 0 else math.inf)
    detail = (f"final loss {loss:.7g} vs golden {golden:.7g} (f evaluated in float64): "
              f"|difference| {err:.2e} {'<=' if excess <= 1 else '>'} atol + rtol*|golden| = "
              f"{atol:g} + {rtol:g}*{abs(golden):.3g} ({excess:.3g}x)")
    return InvariantResult(name, PASS if excess <= 1 else FAIL, detail, excess,
                           None if excess <= 1 else int(case.n_steps))


def adams_step_bound(case, trace: Trace, spec: Mapping, horizon: int) -> InvariantResult:
    name = "adams_step_bound"
    lr0 = float(case.hyper["lr"])
    if lr0 > 0:
        sqrt_c = _value(spec["value"]) / lr0          # value = lr * sqrt(C)
    else:
        b1, b2 = case.hyper["betas"]
        sqrt_c = math.sqrt(b1 * b1 / b2 + (1 - b1) ** 2 / (1 - b2))
    wd = float(case.hyper.get("weight_decay") or 0.0)
    eps = _eps(case.dtype)
    lr = _lr_table(case)
    steps = np.asarray(trace.steps)
    worst, first, where, strides = 0.0, None, "", set()
    for k in range(1, len(steps)):
        s_prev, s = int(steps[k - 1]), int(steps[k])
        if s < horizon:
            continue
        strides.add(s - s_prev)
        rate_sum = float(np.sum(lr[s_prev:s]))        # eta_t for t = s_prev+1 .. s
        for i, p in enumerate(trace.params):
            w_prev = np.asarray(p[k - 1], dtype=np.float64).reshape(-1)
            w = np.asarray(p[k], dtype=np.float64).reshape(-1)
            if w.size == 0:
                continue
            with np.errstate(all="ignore"):
                size = np.abs(w - w_prev)
                scale = np.maximum(np.abs(w_prev), np.abs(w))
                # A2 with decay, |dw| <= eta (sqrt(C) + lambda |w|), plus the rounding slack of
                # the module docstring (the subtraction w - step rounds once per step).
                allowed = (rate_sum * sqrt_c * (1 + 16 * eps) + rate_sum * wd * scale
                           + (s - s_prev) * eps * scale)
                ratio = size / allowed
                ratio = np.where(np.isnan(ratio), np.inf, ratio)
            j = int(np.argmax(ratio))
            r = float(ratio[j])
            if r > 1 and first is None:
                first = s
            if r > worst or not where:
                shape = np.shape(p)[1:]
                idx = tuple(int(x) for x in np.unravel_index(j, shape)) if shape else ()
                worst = r
                where = (f"t={s_prev}->{s} {_where(f'param.{i}', idx)}: |dw| = {size[j]:.4g}, "
                         f"allowed {allowed[j]:.4g}")
    if not strides:
        return InvariantResult(name, NOT_CHECKABLE, "no pair of held steps at or after the "
                               "horizon")
    if strides == {1}:
        form = "every step: |w_t - w_(t-1)| <= lr_t*sqrt(C)"
    else:
        form = (f"only steps {'/'.join(map(str, sorted(strides)))} apart are available: "
                f"|w_s - w_(s-k)| <= sqrt(C) * (sum of the k rates) = k*lr*sqrt(C) at a constant "
                f"rate (triangle inequality; weaker than the per-step statement)")
    detail = f"{form}, sqrt(C) = {sqrt_c:.7g}; worst {where} ({worst:.7g}x)"
    return InvariantResult(name, PASS if worst <= 1 else FAIL, detail, worst, first)


def adamx_v_between_min_max_g2(case, trace: Trace, spec: Mapping,
                               horizon: int) -> InvariantResult:
    name = "adamx_v_between_min_max_g2"
    if "exp_avg_sq" not in trace.state:
        return InvariantResult(name, NOT_CHECKABLE, "the port does not expose its state buffer "
                               "exp_avg_sq (v)")
    if trace.grads is None:
        return InvariantResult(name, NOT_CHECKABLE, "the gradients the port saw were not recorded")
    if case.hyper.get("weight_decay_mode") == "l2" and float(case.hyper.get("weight_decay")
                                                             or 0.0) > 0:
        return InvariantResult(name, NOT_CHECKABLE, "with L2 weight decay v sees g + lambda*w, "
                               "which the recorded gradients do not include")
    eps = max(_eps(case.dtype), _STATE_EPS.get(case.hyper.get("state_dtype") or "", 0.0))
    steps = np.asarray(trace.steps)
    worst, first, where = 0.0, None, ""
    for i, (v_hist, g) in enumerate(zip(trace.state["exp_avg_sq"], trace.grads)):
        g2 = np.square(np.asarray(g, dtype=np.float64))
        if g2.shape[0] == 0 or g2[0].size == 0:
            continue
        lo = np.minimum.accumulate(g2, axis=0)       # row t-1: min over k <= t
        hi = np.maximum.accumulate(g2, axis=0)
        for k, s in enumerate(steps):
            s = int(s)
            if s < max(horizon, 1):
                continue
            v = np.asarray(v_hist[k], dtype=np.float64)
            slack = 4.0 * (s + 1) * eps
            low, high = lo[s - 1] * (1 - slack), hi[s - 1] * (1 + slack)
            with np.errstate(all="ignore"):
                # How far outside [low, high], relative to the interval's upper end.
                scale = np.where(hi[s - 1] > 0, hi[s - 1], 1.0)
                out = np.maximum(np.maximum(low - v, v - high), 0.0) / scale
                out = np.where(np.isfinite(v), out, np.inf)
            j = int(np.argmax(out.reshape(-1)))
            r = float(out.reshape(-1)[j])
            if r > 0 and first is None:
                first = s
            if r > worst:
                idx = tuple(int(x) for x in np.unravel_index(j, v.shape)) if v.ndim else ()
                worst = r
                where = (f"t={s} {_where(f'exp_avg_sq.{i}', idx)}: v = "
                         f"{float(v.reshape(-1)[j]):.4g} outside [min g^2, max g^2] = "
                         f"[{float(lo[s - 1].reshape(-1)[j]):.4g}, "
                         f"{float(hi[s - 1].reshape(-1)[j]):.4g}] by {r:.3g} x max g^2")
    if first is None:
        return InvariantResult(name, PASS, f"min g^2 <= v_t <= max g^2 (relative slack "
                               f"4(t+1)eps) at every step held from t = {max(horizon, 1)}", 0.0)
    return InvariantResult(name, FAIL, f"first at t={first}; worst {where}",
                           math.inf if math.isinf(worst) else 1.0 + worst, first)


def alphaadam_kept_fraction(case, trace: Trace, spec: Mapping, horizon: int) -> InvariantResult:
    from ..rules.alphaadam import alpha_for

    name = "alphaadam_kept_fraction"
    masks, kepts, alphas = (trace.info.get(k) for k in ("mask", "kept", "alpha"))
    if masks is None and kepts is None:
        return InvariantResult(name, NOT_CHECKABLE, "the port exposes neither its mask nor the "
                               "kept count")
    h = case.hyper
    rule = h.get("alpha_rule", "count")
    floor = h.get("density_floor")
    if floor is None:
        from ..registry import get_rule

        floor = get_rule("alphaadam", **h).hyper["density_floor"]
    steps = np.asarray(trace.steps)[1:]
    problems, first, checked_alpha = [], None, False
    for i, p in enumerate(trace.params):
        size = int(np.prod(np.shape(p)[1:], dtype=np.int64))
        for k, s in enumerate(steps):
            s = int(s)
            if s < horizon:
                continue
            msg = []
            kept = None
            if masks is not None:
                mask = np.asarray(masks[i][k])
                kept = int(np.count_nonzero(mask))
            if kepts is not None:
                k_port = int(np.asarray(kepts[i][k]))
                if kept is not None and k_port != kept:
                    msg.append(f"kept = {k_port} but the mask keeps {kept}")
                kept = k_port
            if not 0 <= kept <= size:
                msg.append(f"kept = {kept} outside [0, {size}]")
            # alpha from kept/size (not at t = 1, which the first_step option decides).
            if alphas is not None and size > 0 and s > 1 and rule in ("count", "count+1",
                                                                       "soft"):
                checked_alpha = True
                a = float(np.asarray(alphas[i][k]))
                want = alpha_for(rule, min(max(kept, 0), size), size, floor, h.get("alpha_max"))
                # 1e-6: a port may compute alpha in float32 (a few ulps).
                if not abs(a - want) <= 1e-6 * abs(want) or (rule == "count" and not a >= 1.0):
                    msg.append(f"alpha = {a:.7g}, the {rule} rule gives {want:.7g} "
                               f"for kept/size = {kept}/{size}")
            if msg:
                first = s if first is None else min(first, s)
                problems.append(f"t={s} tensor {i}: " + "; ".join(msg))
    what = "0 <= kept <= size" + (f" and alpha from kept/size ({rule} rule)" if checked_alpha
                                  else " (alpha not exposed: not checked)")
    if not problems:
        return InvariantResult(name, PASS, what + f" at every step held from t = {horizon}", 0.0)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvariantResult(name, FAIL, f"{what}: {problems[0]}{more}", math.inf, first)


def finite_after_horizon(case, trace: Trace, expected: Mapping, horizon: int) -> InvariantResult:
    """Every param and exposed buffer finite after the horizon (where the golden one is)."""
    name = "finite_after_horizon"
    steps = np.asarray(trace.steps)
    gold_steps = np.asarray(case.steps)
    after = gold_steps > horizon
    for label, hist in [("param", trace.params)] + sorted(trace.state.items()):
        gold = expected.get(label)
        for i, h in enumerate(hist):
            if gold is not None and not np.all(np.isfinite(np.asarray(gold[i])[after])):
                continue                                   # the reference itself is not finite
            for k, s in enumerate(steps):
                if int(s) <= horizon:
                    continue
                a = np.asarray(h[k])
                if a.size and not np.all(np.isfinite(a)):
                    j = int(np.argmax(~np.isfinite(a).reshape(-1)))
                    idx = tuple(int(x) for x in np.unravel_index(j, a.shape)) if a.ndim else ()
                    return InvariantResult(name, FAIL, f"t={int(s)} {_where(f'{label}.{i}', idx)}"
                                           f" = {a.reshape(-1)[j]} (the golden values are "
                                           f"finite)", math.inf, int(s))
    return InvariantResult(name, PASS, f"params and exposed state finite after t = {horizon}", 0.0)


INVARIANTS = {"final_loss": final_loss, "adams_step_bound": adams_step_bound,
              "adamx_v_between_min_max_g2": adamx_v_between_min_max_g2,
              "alphaadam_kept_fraction": alphaadam_kept_fraction}


def trace_needed(case) -> bool:
    """True when ``case`` lists invariants (the runner then records every step)."""
    return bool((case.tolerance or {}).get("invariants"))


def trace_from_run(case, run) -> Trace:
    """The port's trace: the every-step one the in-process runner kept, else one built from the
    recorded steps (file mode), with the case's gradient stream (replayed closed loop)."""
    if getattr(run, "trace", None) is not None:
        return run.trace
    return Trace(steps=np.asarray(case.steps), params=list(run.params), state=dict(run.state),
                 grads=None if case.grads is None else list(case.grads),
                 info=dict(getattr(run, "info", {}) or {}))


def check_invariants(case, run, expected: Mapping | None = None) -> InvariantReport | None:
    """Judge the invariants of ``case`` on the port's run from the pointwise horizon on.

    Returns None when there is nothing to judge (no invariants listed and no recorded step after
    the horizon). An invariant id this version does not know is reported as not checkable.
    """
    tol = case.tolerance or {}
    specs = list(tol.get("invariants") or [])
    h = tol.get("pointwise_horizon")
    n = int(case.n_steps or 0)
    horizon = n if h is None else int(h)
    if not specs and horizon >= n:
        return None
    trace = trace_from_run(case, run)
    report = InvariantReport(horizon=horizon)
    for spec in specs:
        fn = INVARIANTS.get(spec.get("id"))
        if fn is None:
            report.results.append(InvariantResult(
                str(spec.get("id")), NOT_CHECKABLE, "unknown invariant id for this refopt "
                f"version (statement: {spec.get('statement', '')})"))
            continue
        report.results.append(fn(case, trace, spec, horizon))
    if horizon < n:
        report.results.append(finite_after_horizon(case, trace, expected or {}, horizon))
    return report
