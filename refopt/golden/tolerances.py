"""Tolerances of the golden suite and the accuracy of its float64 values, both measured.

* :func:`measure_legitimate` runs a case again in its own dtype through a set of *legitimate
  implementations* (:data:`LEGITIMATE`, FORMAT.md section 5): the reordered loop (a different,
  legitimate operation order) and several faithfully rounded runs (every inexact ``sqrt`` and
  division 1 ulp off with probability 1/2, ``a*b + c`` contracted to an FMA with probability
  1/2, libm scalars +-1 ulp; seeded, so the build stays byte-identical), and reports how far
  each lands from the golden values, per stored step: the spread a correct port may show.
* :func:`tolerance_for` states the tolerance of a case from a per-dtype rtol and that measured
  spread (atol, pointwise horizon, 10x margin) and records the spread next to it
  (``tolerance.measured``); the tests assert that the spread is inside. float32 cases also get
  a per-coordinate bound (``tolerance.scaled``, :func:`scaled_bound`): k_b x u x the element's
  accumulated operand scale, k_b measured per case and buffer, 10x margin.
* :func:`reference_accuracy` compares the float64 golden values with a 50-digit mpmath
  recomputation (same module, :class:`~refopt.golden.mp_reference.MpArith`).
"""
from __future__ import annotations

import math

import numpy as np

from . import mp_reference as MP

#: Explicit-gradient cases whose (element count x steps) is at most this are recomputed in
#: mpmath over every step; bigger ones over their first MP_MAX_STEPS steps.
MP_FULL_BUDGET = 10_000
MP_MAX_STEPS = 200


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Representable values between a and b, elementwise (NaN vs NaN and x vs x give 0).

    Both are read in a's dtype; the sign-magnitude bit patterns are mapped onto a monotone
    integer line (-0.0 and +0.0 coincide). Returned as float64.
    """
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(np.asarray(b, dtype=a.dtype))
    itype = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    lo = np.iinfo(itype).min

    def mono(x):
        bits = x.view(itype).astype(object if itype is np.int64 else np.int64)
        return np.where(bits >= 0, bits, lo - bits)

    d = np.abs(mono(a) - mono(b)).astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0.0, d).reshape(a.shape)


def _errors(actual: dict, expected: dict, keys, rows) -> dict:
    """Worst elementwise relative, normwise relative and ulp error over ``keys`` at ``rows``."""
    worst = {"rel": 0.0, "normwise": 0.0, "ulp": 0.0, "where": None}
    rows = list(rows)
    for key in keys:
        e_all, a_all = np.asarray(expected[key])[rows], np.asarray(actual[key])[rows]
        if e_all.size == 0:
            continue
        e = e_all.astype(np.float64).reshape(len(rows), -1)
        a = a_all.astype(np.float64).reshape(len(rows), -1)
        same = (e == a) | (np.isnan(e) & np.isnan(a))
        diff = np.where(same, 0.0, np.abs(a - e))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(same, 0.0, np.where(e != 0, diff / np.abs(e), np.inf))
        rel = np.where(np.isnan(rel), np.inf, rel)
        scale = np.max(np.where(np.isfinite(e), np.abs(e), 0.0), axis=1)
        dmax = np.max(diff, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = np.where(dmax == 0, 0.0, np.where(scale > 0, dmax / scale, math.inf))
        r_row = np.max(rel, axis=1)
        k = int(np.argmax(r_row))
        if float(r_row[k]) > worst["rel"]:
            worst["rel"], worst["where"] = float(r_row[k]), f"{key} row {rows[k]}"
        worst["normwise"] = max(worst["normwise"], float(np.nanmax(norm)))
        if e_all.dtype.kind == "f":
            worst["ulp"] = max(worst["ulp"], float(np.max(
                ulp_distance(e_all, a_all.astype(e_all.dtype)))))
    return worst


def _value_keys(spec, arrays) -> list[str]:
    from ..registry import rule_info

    bufs = MP.BUFFERS.get(spec.rule) or tuple(rule_info(spec.rule).cls.buffers)
    return sorted(k for k in arrays if k.split(".")[0] in ("param",) + bufs)


def _as_payload(run: dict, spec, arrays, dtype) -> tuple[dict, list[int]]:
    """Stack a :func:`mp_reference.run` result like the payload, at the payload's steps."""
    steps = [int(s) for s in arrays["steps"] if int(s) in run]
    out = {}
    for key in _value_keys(spec, arrays):
        shape = arrays[key].shape[1:]
        out[key] = np.array([[float(x) for x in run[s][key]] for s in steps],
                            dtype=dtype).reshape((len(steps),) + shape)
    rows = [int(np.searchsorted(arrays["steps"], s)) for s in steps]
    return out, rows


#: The legitimate implementations every case is measured against (FORMAT.md section 5): label ->
#: (operation order reordered?, faithful-rounding seed or None). Seeds are fixed so that a
#: rebuild is byte-identical; half the faithful runs use the reference's operation order, half
#: the reordered one.
LEGITIMATE: dict[str, tuple[bool, int | None]] = {
    "reordered": (True, None),
    **{f"faithful{k}{'-reordered' if k % 2 else ''}": (bool(k % 2), k) for k in range(6)},
}

#: Legitimate in float32 cases only: the per-step scalars computed in float32 (the
#: hyperparameters as float32 numbers: optax's jnp scalars, torch ports with tensor
#: hyperparameters). In float64 cases that loses eight digits of the scalars: there it is a
#: mistake (``refopt.verify.diagnose``: scalars_float32). Same (reorder, seed) layout.
LEGITIMATE_FLOAT32: dict[str, tuple[bool, int | None]] = {"scalars32": (False, None)}


def legitimate_for(dtype: str) -> dict:
    """The legitimate implementations a case of ``dtype`` is measured with."""
    return {**LEGITIMATE, **(LEGITIMATE_FLOAT32 if str(dtype) == "float32" else {})}


LEGITIMATE_FLOAT32_MODEL = (
    "; in float32 cases also (c) compute the per-step scalars in float32 (hyperparameters as "
    "float32 numbers, as optax's jnp scalars and torch.tensor(lr) hold them: 1 - b2^t, its "
    "sqrt and the step size then carry float32 cancellation). Measured: one such run, in the "
    "reference's order")

LEGITIMATE_MODEL = (
    "a legitimate implementation may (a) order the operations differently (torch-style lerp "
    "for m, mul+addcmul for v, (lr*m)/denom, p - (lr*wd)*p) and (b) use faithfully rounded "
    "arithmetic: any inexact sqrt or division may return the other neighbour of the exact "
    "result (<= 1 ulp: vectorised CPU libraries such as torch's float32 sqrt, CUDA without "
    "--prec-sqrt/--prec-div), any a*b + c may be rounded once (FMA contraction), and the "
    "float64 libm scalars (pow, exp, expm1, log, log1p) may be 1 ulp off. Measured: the "
    "reordered loop plus {n} seeded faithful runs (each inexact sqrt/division off with probability 1/2, "
    "each a*b + c contracted with probability 1/2; half in the reference's order, half "
    "reordered)")


def measure_legitimate(spec, arrays) -> list[dict]:
    """Run ``spec`` in its dtype through every implementation of :func:`legitimate_for`.

    Returns one dict per implementation: ``label``, ``got`` and ``expected`` (payload-shaped
    arrays at the stored steps), ``steps`` and ``worst`` (elementwise relative, normwise and
    ulp error against the golden values). Closed-loop cases run their own loop (gradients from
    the objective at the implementation's own params).
    """
    from ..registry import is_builtin
    from .build import make_grad_fn

    if not is_builtin(spec.rule):  # a user rule: its own code, faithfully rounded
        from .user_rules import measure_legitimate as measure_user
        return measure_user(spec, arrays)
    hyper = _full_hyper(spec)
    steps = [int(s) for s in arrays["steps"]]
    source = spec.grads if spec.objective is None else make_grad_fn(spec.objective)
    out = []
    for label, (reorder, seed) in legitimate_for(spec.dtype).items():
        A = MP.FloatArith(spec.dtype, reorder=reorder, faithful_seed=seed,
                          scalar_dtype="float32" if label in LEGITIMATE_FLOAT32 else "float64")
        run = MP.run(A, spec.rule, hyper, spec.init, source, spec.n_steps, spec.lr_schedule,
                     record=steps, as_array=MP.float_array(spec.dtype))
        got, rows = _as_payload(run, spec, arrays, spec.dtype)
        expected = {k: arrays[k][rows] for k in got}
        worst = _errors(got, expected, got.keys(), range(len(rows)))
        out.append({"label": label, "got": got, "expected": expected,
                    "steps": [steps[r] for r in rows], "worst": worst})
    return out


def _full_hyper(spec) -> dict:
    from ..registry import get_rule

    return dict(get_rule(spec.rule, **spec.hyper).hyper)


def reference_accuracy(spec, arrays) -> dict:
    """Worst error of the float64 golden values against a 50-digit mpmath recomputation.

    Closed-loop cases replay their stored gradients (which checks the update arithmetic; the
    objective's gradient is checked separately by the objectives' own tests). A user rule's
    case is measured against its own code in ``np.longdouble`` instead
    (:func:`refopt.golden.user_rules.reference_accuracy`).
    """
    from ..registry import is_builtin

    if not is_builtin(spec.rule):
        from .user_rules import reference_accuracy as user_accuracy
        return user_accuracy(spec, arrays)
    base = {"method": "mpmath naive loops (refopt/golden/mp_reference.py), exact inputs, exact "
                      "per-step scalars; closed-loop cases replay the stored gradients",
            "mp_dps": MP.MP_DPS}
    if spec.dtype != "float64":
        return {**base, "worst_rel_error": None, "worst_normwise_rel_error": None,
                "worst_history_scaled_error": None, "worst_location": None,
                "steps_checked": 0, "fallback": True,
                "fallback_reason": "float32 cases are generated natively in float32; the "
                                   "accuracy statement is made for the float64 twin"}
    if spec.hyper.get("state_dtype") not in (None, "float64"):
        return {**base, "worst_rel_error": None, "worst_normwise_rel_error": None,
                "worst_history_scaled_error": None, "worst_location": None,
                "steps_checked": 0, "fallback": True,
                "fallback_reason": "state rounding to a narrower dtype is not modelled in mpmath"}
    n_elem = sum(int(np.size(p)) for p in spec.init)
    last = spec.n_steps if n_elem * spec.n_steps <= MP_FULL_BUDGET else MP_MAX_STEPS
    steps = [int(s) for s in arrays["steps"] if int(s) <= last]
    grads = [arrays[f"grad.{i}"] for i in range(len(spec.init))]
    A = MP.MpArith()
    run = MP.run(A, spec.rule, _full_hyper(spec), spec.init, grads, last, spec.lr_schedule,
                 record=steps)
    got, rows = _as_payload(run, spec, arrays, np.float64)
    # Compare in mpmath: the golden float64 values against the 50-digit ones. Three measures:
    # elementwise relative (unbounded where a value crosses zero), normwise per tensor and step,
    # and "history-scaled": |x - c| / max |c| over the array's elements and steps so far.
    worst_rel, worst_norm, worst_hist, where = 0.0, 0.0, 0.0, None
    for key in got:
        hist_scale = A.ctx.mpf(0)
        for j, r in enumerate(rows):
            exact = run[steps[j]][key]
            gold = arrays[key][r].reshape(-1)
            if gold.size == 0:
                continue
            scale = max((abs(x) for x in exact), default=A.ctx.mpf(0))
            hist_scale = max(hist_scale, scale)
            for x, c in zip(gold, exact):
                diff = abs(A.ctx.mpf(float(x)) - c) if math.isfinite(x) else A.ctx.inf
                if c == 0:
                    err = 0.0 if x == 0 else math.inf
                else:
                    err = float(diff / abs(c))
                if err > worst_rel:
                    worst_rel, where = err, f"{key} step {steps[j]}"
                if scale != 0:
                    worst_norm = max(worst_norm, float(diff / scale))
                if hist_scale != 0:
                    worst_hist = max(worst_hist, float(diff / hist_scale))
    return {**base, "worst_rel_error": worst_rel, "worst_normwise_rel_error": worst_norm,
            "worst_history_scaled_error": worst_hist,
            "worst_location": where, "steps_checked": last, "fallback": False,
            "fallback_reason": None}


def invalid_tolerance() -> dict:
    return {"mode": "raises", "rtol": 0.0, "atol": 0.0, "max_ulp": 0, "pointwise_horizon": 0,
            "reason": "invalid hyperparameters: a conforming port raises before any step",
            "measured": None, "invariants": []}


#: Per-dtype relative tolerance for comparing a port with a golden case of the same dtype.
RTOL = {"float64": 1e-10, "float32": 1e-4}
#: Factor between the measured spread of the legitimate implementations and the tolerance.
MARGIN = 10.0

RTOL_REASON = {
    "float64": "same dtype, legitimate implementations ({model}) land within {worst:.1e} "
               "(elementwise, relative) of these values; rtol = 1e-10 (golden-vectors.md) keeps "
               "a >= 10x margin over that for explicit gradients, while every formula mistake "
               "refopt knows of (eps placement, bias correction, decay order) moves step 1 by "
               "> 1e-4",
    "float32": "float32 port vs float32 golden (generated natively in float32, per-step scalars "
               "in float64 rounded once): legitimate implementations ({model}) land within "
               "{worst:.1e} (elementwise, relative); rtol = 1e-4 is ~1000 float32 ulps: "
               "roundings compound over the run, and near zero crossings the relative error of "
               "a single element is unbounded, which the measured atol covers",
}


def _needed_atol(got: dict, expected: dict, rtol: float) -> float:
    """Smallest atol with |a - e| <= atol + rtol*|e| for every element (inf/nan must match)."""
    need = 0.0
    for key in got:
        a, e = np.asarray(got[key], np.float64), np.asarray(expected[key], np.float64)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        finite = np.isfinite(a) & np.isfinite(e)
        if np.any(~same & ~finite):
            return math.inf
        excess = np.where(same, 0.0, np.abs(a - e) - rtol * np.abs(e))
        if excess.size:
            need = max(need, float(np.max(excess)))
    return need


def _score_by_step(got: dict, expected: dict, rtol: float, atol: float) -> np.ndarray:
    """Per stored step: max over elements of |a - e| / (atol + rtol |e|) (inf: non-finite
    mismatch; 0 where equal)."""
    score = None
    for key in got:
        a = np.asarray(got[key], np.float64).reshape(len(got[key]), -1)
        e = np.asarray(expected[key], np.float64).reshape(len(expected[key]), -1)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.abs(a - e) / (atol + rtol * np.abs(e))
        r = np.where(same, 0.0, np.where(np.isnan(r), np.inf, r))
        row = np.max(r, axis=1) if r.shape[1] else np.zeros(r.shape[0])
        score = row if score is None else np.maximum(score, row)
    return score


def _json_float(x) -> float | str:
    """A float for the manifest (JSON has no inf/NaN: those become the strings "inf", "nan")."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def _round_up_pow10(x: float) -> float:
    return 0.0 if x <= 0 else 10.0 ** math.ceil(math.log10(x))


def _operand_scale(spec, arrays) -> float:
    """max |x| over the finite initial params and gradients: the scale of a buffer's operands."""
    vals = [np.abs(arrays[k]) for k in arrays if k.startswith(("grad.", "param."))]
    finite = [float(np.max(v[np.isfinite(v)])) for v in vals if np.any(np.isfinite(v))]
    return max(finite, default=0.0)


def atol_floor(spec, arrays) -> float:
    """MARGIN * eps(dtype) * operand scale, rounded up to a power of ten.

    A correct port may round an operand differently (a different association, an FMA); where a
    result is near zero by cancellation (m crossing zero, a param crossing zero) that is an
    absolute error of order eps * |operand|, unbounded relative to the result. torch.optim.Adam in
    float32 shows 1.2e-7 at |g| ~ 1 on the defaults case: the floor (1e-5 there) covers it 10x.
    """
    eps = float(np.finfo(np.dtype(spec.dtype)).eps)
    return _round_up_pow10(MARGIN * eps * _operand_scale(spec, arrays))


#: Dtypes whose cases carry the per-coordinate ``scaled`` bound (FORMAT.md section 5). float64
#: cases keep atol + rtol (rtol 1e-10) alone; the bound was introduced for float32's rtol 1e-4
#: (~1000 ulps), which let known mistakes through.
SCALED_DTYPES = ("float32",)
#: Smallest k_b of the scaled bound: 8 unit roundoffs (4 ulps) of the element's largest
#: magnitude so far, per step. One step of a port rounds a handful of operations whose
#: operands are at most that magnitude (the decay product, lr*u, the final subtraction; m and v:
#: two products and a sum), and a faithful sqrt or division adds one ulp of u.
K_FLOOR = 8.0

SCALED_STATEMENT = (
    "also |port - golden| <= k[buffer] * unit * S, elementwise at every recorded step up to "
    "the pointwise horizon; unit = eps(dtype)/2, S_0 = 0, S_k = sum_{j=1..k} (steps[j] - "
    "steps[j-1]) * H_j with H_j = max over rows i <= j of |golden[i]| of that element (finite "
    "values; refopt.verify.compare.history_scale): a legitimate port's rounding error in one "
    "step is a few unit roundoffs of the operands of that step, whose magnitudes H bounds, and "
    "it accumulates over the steps. The smaller of this bound and atol + rtol*|golden| applies; "
    "k[buffer] absent or null: no scaled bound for that buffer")


def _scaled_ratios(runs) -> tuple[dict, dict, dict]:
    """Per buffer: the worst legitimate err / (unit * S) over runs, tensors, recorded rows and
    elements (inf where S = 0 and the error is not), its location, and per implementation."""
    from ..verify.compare import history_scale

    worst: dict[str, float] = {}
    where: dict[str, str] = {}
    by_impl: dict[str, dict[str, float]] = {}
    for r in runs:
        mine = by_impl.setdefault(r["label"], {})
        for key, got in r["got"].items():
            buf = key.split(".")[0]
            e = np.asarray(r["expected"][key], np.float64)
            a = np.asarray(got, np.float64)
            unit = float(np.finfo(np.asarray(got).dtype).eps) / 2
            same = (a == e) | (np.isnan(a) & np.isnan(e))
            err = np.where(same, 0.0, np.abs(a - e))
            err = np.where(np.isnan(err), np.inf, err)
            scale = unit * history_scale(e, r["steps"])
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(err == 0, 0.0, err / scale)
            q = np.where(np.isnan(q), np.inf, q)
            top = float(np.max(q)) if q.size else 0.0
            mine[buf] = max(mine.get(buf, 0.0), top)
            worst.setdefault(buf, 0.0)
            if top > worst[buf]:
                row = int(np.unravel_index(int(np.argmax(q)), q.shape)[0])
                worst[buf], where[buf] = top, f"{key} step {r['steps'][row]} ({r['label']})"
    return worst, where, by_impl


def scaled_bound(spec, runs, horizon: int) -> tuple[dict | None, dict]:
    """The per-coordinate bound of a float32 case and what was measured for it.

    k_b = max(K_FLOOR, 10 x the worst legitimate err / (unit * S) of buffer b up to the
    pointwise horizon, rounded up to an integer); None for a buffer where a
    legitimate run differs from an element whose S is 0 (no scaled bound there). Returns
    (the ``scaled`` entry, or None for other dtypes; measured quantities).
    """
    if spec.dtype not in SCALED_DTYPES:
        return None, {}
    inside = [{**r, "got": {k: v[[j for j, s in enumerate(r["steps"]) if s <= horizon]]
                            for k, v in r["got"].items()},
               "expected": {k: v[[j for j, s in enumerate(r["steps"]) if s <= horizon]]
                            for k, v in r["expected"].items()},
               "steps": [s for s in r["steps"] if s <= horizon]} for r in runs]
    worst, where, by_impl = _scaled_ratios(inside)
    k = {buf: (max(K_FLOOR, float(math.ceil(MARGIN * w))) if math.isfinite(w) else None)
         for buf, w in sorted(worst.items())}
    unit = float(np.finfo(np.dtype(spec.dtype)).eps) / 2
    measured = {"scaled_legit_worst_ratio": {b: _json_float(w) for b, w in sorted(worst.items())},
                "scaled_legit_location": dict(sorted(where.items())),
                "scaled_legit_worst_ratio_by_implementation": {
                    label: {b: _json_float(w) for b, w in sorted(d.items())}
                    for label, d in by_impl.items()},
                "scaled_k_floor": K_FLOOR}
    return {"unit": unit, "k": k, "statement": SCALED_STATEMENT}, measured


def _horizon(score: np.ndarray, steps) -> int:
    """Last stored step before the score first exceeds 1 (0 if it does at the first)."""
    last = 0
    for step, sc in zip(steps, score):
        if sc > 1.0:
            return last
        last = int(step)
    return last


def tolerance_for(spec, arrays) -> dict:
    """The case's tolerance: per-dtype rtol; atol and (closed loop) pointwise horizon from the
    spread of the legitimate implementations, with a 10x margin."""
    from .build import make_grad_fn

    rtol = RTOL[spec.dtype]
    runs = measure_legitimate(spec, arrays)
    worst_run = max(runs, key=lambda r: r["worst"]["rel"])
    worst = dict(worst_run["worst"])
    worst["normwise"] = max(r["worst"]["normwise"] for r in runs)
    worst["ulp"] = max(r["worst"]["ulp"] for r in runs)
    from ..registry import is_builtin

    if is_builtin(spec.rule):
        model = LEGITIMATE_MODEL.format(n=len(LEGITIMATE) - 1)
        if spec.dtype == "float32":
            model += LEGITIMATE_FLOAT32_MODEL
    else:
        from .user_rules import LEGITIMATE_MODEL as model
    reason = RTOL_REASON[spec.dtype].format(worst=worst["rel"], model=model)
    measured = {"model": model, "implementations": [r["label"] for r in runs],
                "legit_worst_rel": _json_float(worst["rel"]),
                "legit_worst_normwise": _json_float(worst["normwise"]),
                "legit_worst_ulp": _json_float(worst["ulp"]),
                "legit_location": f"{worst['where']} ({worst_run['label']})"
                if worst["where"] else None}
    invariants: list = []
    floor = atol_floor(spec, arrays)
    if spec.objective is None and "ExtremeMagnitude" in spec.flags:
        # Values span 60 decades: no single atol fits, so the margin goes into rtol instead.
        rtol = max(rtol, _round_up_pow10(worst["rel"] * MARGIN))
        atol, horizon = 0.0, spec.n_steps
        reason += ("; values span 1e-30..1e30, so no absolute tolerance: rtol is the larger of "
                   "the dtype's and 10x the measured elementwise spread")
    elif spec.objective is None:
        need = max(_needed_atol(r["got"], r["expected"], rtol / MARGIN) for r in runs)
        if not math.isfinite(need):
            raise AssertionError(f"{spec.case_id}: a legitimate run has non-finite mismatches")
        atol = max(_round_up_pow10(need * MARGIN), floor)
        horizon = spec.n_steps
        measured["legit_needed_atol"] = need
        measured["legit_needed_atol_by_implementation"] = {
            r["label"]: _needed_atol(r["got"], r["expected"], rtol / MARGIN) for r in runs}
        reason += (f"; atol = {atol:g}: the larger of 10x eps({spec.dtype}) x the operand scale "
                   f"(rounding of operands where a result cancels to ~0) and 10x the absolute "
                   f"error the legitimate runs needed beyond rtol/10")
    else:
        # Closed loop: differences feed back, so pointwise comparison ends at a horizon: the
        # last stored step at which every legitimate run is still within a 10x tighter
        # tolerance (its score against (rtol, atol) stays <= 1/10).
        atol = floor
        steps = runs[0]["steps"]
        scores = {r["label"]: _score_by_step(r["got"], r["expected"], rtol, atol) for r in runs}
        spread = np.max(np.stack(list(scores.values())), axis=0)
        horizon = _horizon(spread * MARGIN, steps)
        measured["legit_horizon_by_implementation"] = {
            label: _horizon(sc * MARGIN, steps) for label, sc in scores.items()}
        measured["legit_score_by_step"] = [[int(st), _json_float(sc)]
                                           for st, sc in zip(steps, spread)]
        reason += (f"; atol = {atol:g} = 10x eps({spec.dtype}) x the operand scale; closed loop: "
                   f"compared pointwise only up to step {horizon}, the last stored step where "
                   f"every legitimate run stays within (rtol/10, atol/10) "
                   f"(measured.legit_score_by_step: the worst legitimate error per stored step "
                   f"as a fraction of (rtol, atol)); after it, compare the invariants")
        invariants = closed_loop_invariants(spec, arrays, runs, make_grad_fn(spec.objective))
    measured["atol_floor"] = floor
    out = {"mode": "allclose", "rtol": rtol, "atol": atol, "max_ulp": None,
           "pointwise_horizon": horizon, "reason": reason, "measured": measured,
           "invariants": invariants}
    scaled, scaled_measured = scaled_bound(spec, runs, horizon)
    if scaled is not None:
        measured.update(scaled_measured)
        ks = ", ".join(f"{b} {v:g}" if v is not None else f"{b} none"
                       for b, v in scaled["k"].items())
        out["reason"] = reason + (
            f"; per coordinate also |port - golden| <= k x unit x S (S: the element's largest "
            f"magnitude so far, accumulated over the steps; unit = eps/2), k = 10x the worst "
            f"legitimate err/(unit x S) up to the horizon, at least {K_FLOOR:g}: {ks}")
        out["scaled"] = scaled
    return out


#: rtol of the final_loss invariant per dtype (its atol comes from the measured spread).
FINAL_LOSS_RTOL = {"float64": 1e-6, "float32": 1e-3}


def _round_up_1sig(x: float) -> float:
    """x rounded up to one significant digit (0 stays 0): 1.35e-4 -> 2e-4."""
    if x <= 0:
        return 0.0
    exp = math.floor(math.log10(x))
    digit = math.ceil(x / 10.0 ** exp * (1 - 1e-12))
    return float(f"{digit}e{exp}")          # via decimal text: 3e-1, not 3 * 0.1


def closed_loop_invariants(spec, arrays, runs, grad_fn) -> list:
    """Checks that stay meaningful after the pointwise horizon (golden-vectors.md)."""
    from ..registry import get_rule
    from .format import encode_float

    obj = grad_fn.objective
    n = len(spec.init)

    def loss64(params) -> float:
        # f evaluated in float64 at the given params (cast exactly): a float32 evaluation moves
        # in coarse steps near a minimum (adamx_official_logcosh_float32: 2^-21 in float32 vs
        # 7.09e-7 in float64), too coarse to hold a port to, and a port in any language can
        # reproduce a float64 evaluation of its own final params.
        return float(sum(obj.value(np.asarray(p, dtype=np.float64)) for p in params))

    f_gold = loss64([arrays[f"param.{i}"][-1] for i in range(n)])
    f_init = loss64(spec.init)
    diffs = {run["label"]: abs(loss64([run["got"][f"param.{i}"][-1] for i in range(n)]) - f_gold)
             for run in runs}
    spread = max(diffs.values())
    worst_label = max(diffs, key=diffs.get)
    # |L - L*| <= atol + rtol |L*|. The legitimate runs' final loss can differ from the golden
    # one by more than the golden value itself (AlphaAdam's mask and the Rosenbrock float32
    # valley make the end point oscillate), where a relative tolerance says nothing: the
    # measured absolute spread, 10x, goes into atol; rtol is the dtype's floor.
    rtol_loss = FINAL_LOSS_RTOL[spec.dtype]
    atol_loss = _round_up_1sig(spread * MARGIN)
    hyper = dict(get_rule(spec.rule, **spec.hyper).hyper)
    out = [{"id": "final_loss",
            "statement": "L = sum over tensors of f(final params), f evaluated in float64 at "
                         "the final params cast to float64; |L - value| <= atol + rtol*|value| "
                         "(value and initial_value are that float64 evaluation at the golden "
                         "final and the initial params)",
            "value": encode_float(f_gold), "initial_value": encode_float(f_init),
            "rtol": rtol_loss, "atol": atol_loss,
            "measured": {"legit_abs_spread": spread,
                         "legit_abs_spread_rel_initial": spread / f_init if f_init else None,
                         "legit_rel_spread": spread / abs(f_gold) if f_gold else None,
                         "legit_worst": worst_label,
                         "atol_rel_initial": atol_loss / f_init if f_init else None},
            "reason": f"the legitimate runs' final loss (float64 evaluation) lands up to "
                      f"{spread:.2e} from the golden one ({spread / f_init:.1e} of the initial "
                      f"loss {f_init:.4g}; {worst_label}); atol = 10x that rounded up to one "
                      f"significant digit, rtol = {rtol_loss:g} (the {spec.dtype} floor). "
                      f"A relative tolerance alone is meaningless where the final loss is near "
                      f"0 and the spread is comparable to it"}]
    if spec.rule == "adams" and not hyper["bias_correction"] and hyper["weight_decay"] == 0:
        b1, b2 = hyper["betas"]
        bound = hyper["lr"] * math.sqrt(b1 * b1 / b2 + (1 - b1) ** 2 / (1 - b2))
        out.append({"id": "adams_step_bound",
                    "statement": "every step, every coordinate: |w_t - w_(t-1)| <= lr*sqrt(C), "
                                 "C = b1^2/b2 + (1-b1)^2/(1-b2) (AdamS paper form, no decay; "
                                 "adams.md A2)", "value": encode_float(bound)})
    if spec.rule == "adamx":
        out.append({"id": "adamx_v_between_min_max_g2",
                    "statement": "every step, every coordinate: min_k g_k^2 <= v_t <= max_k g_k^2 "
                                 "over the port's own gradients k <= t (adamx.md T2)"})
    if spec.rule == "alphaadam":
        out.append({"id": "alphaadam_kept_fraction",
                    "statement": "every step, every tensor: 0 <= kept <= size and alpha >= 1 "
                                 "(count rule: alpha = 1/max(kept/size, density_floor))"})
    return out
