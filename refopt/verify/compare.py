r"""Error metrics and the pass/fail rule of one golden case.

For every recorded step, tensor and buffer the port's values ``x`` are compared with the golden
values ``c`` (both in the case's dtype):

* absolute error :math:`|x - c|`;
* relative error :math:`|x - c| / |c|` (0 where both are 0, inf where only ``c`` is 0);
* ULP distance: the number of representable values of the case dtype between ``x`` and ``c``
  (0 for equal values, +0 and -0 included; inf when exactly one of them is NaN);
* log relative error (NIST StRD), :math:`\mathrm{LRE} = -\log_{10}(|x-c|/|c|)`, the number of
  correct significant digits, using the absolute error where ``c = 0`` and capped at the digits
  the dtype carries (15.9 for float64, 7.2 for float32).

NaN matches NaN and an infinity matches the same infinity (a port must reproduce the reference's
non-finite values, not avoid them).

A value *fails* under the case's ``tolerance`` ``{"mode", "rtol", "atol", "max_ulp",
"pointwise_horizon"}`` when

* ``bitwise``: its bits differ (ULP distance > 0);
* ``max_ulp``: its ULP distance exceeds ``max_ulp``;
* ``allclose``: :math:`|x - c| > \mathrm{atol} + \mathrm{rtol}\,|c|`, or, where the tolerance
  also has a ``scaled`` entry (float32 cases), :math:`|x - c| > k_b\,u\,S`: :math:`S` is the
  element's operand scale (:func:`history_scale`: its largest magnitude so far, accumulated
  over the steps), :math:`u` = ``scaled["unit"]`` and :math:`k_b` = ``scaled["k"][buffer]``
  (FORMAT.md section 5). The smaller of the two bounds applies.

The schema also allows ``statistical`` (a distributional comparison, e.g. of stochastic runs);
refopt has no such comparison, so such a case is refused with a ValueError instead of being
judged as if it were ``allclose``, as is any other mode. ``raises`` belongs to ``invalid`` cases,
which have no arrays to compare.

Only steps up to ``pointwise_horizon`` (all steps when it is absent or None) take part in this
pointwise verdict; later steps are still measured and reported, because beyond the horizon
closed-loop trajectories legitimately drift apart (``shared/guides/golden-vectors.md``). From
the horizon on a port is judged on the case's invariants instead
(:mod:`refopt.verify.invariants`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

_INT = {np.dtype(np.float64): (np.int64, np.uint64), np.dtype(np.float32): (np.int32, np.uint32)}


def ulp_distance(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Elementwise ULP distance between two arrays of the same float dtype, as float64.

    The bit patterns are mapped to integers that are ordered like the floats (so the distance
    across zero is the sum of both sides, and +0 and -0 are 0 apart). NaN against NaN is 0; NaN
    against a number is inf.
    """
    a = np.ascontiguousarray(actual)
    e = np.ascontiguousarray(expected)
    if a.dtype != e.dtype or a.dtype not in _INT:
        raise TypeError(f"ulp_distance needs two float32 or two float64 arrays, got {a.dtype} "
                        f"and {e.dtype}")
    signed, unsigned = _INT[a.dtype]
    lowest = np.iinfo(signed).min

    def ordered(x):
        bits = x.view(signed)
        # Negative floats have the sign bit set: reflect them below zero so order is kept.
        return np.where(bits < 0, lowest - bits, bits)

    oa, oe = ordered(a), ordered(e)
    # Unsigned wrap-around subtraction gives the exact distance (it is below 2**bits).
    d = np.where(oa >= oe, oa.view(unsigned) - oe.view(unsigned),
                 oe.view(unsigned) - oa.view(unsigned)).astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    d = np.where(nan_a & nan_e, 0.0, d)
    return np.where(nan_a ^ nan_e, np.inf, d)


def _same_nonfinite(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    return (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))


def abs_rel_errors(actual: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute and relative errors in float64; matching NaN/inf count as 0."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        err = np.abs(a - e)
        err = np.where(_same_nonfinite(a, e), 0.0, err)
        err = np.where(np.isnan(err), np.inf, err)
        rel = np.where(err == 0.0, 0.0, err / np.abs(e))
        rel = np.where(np.isnan(rel), np.inf, rel)
    return err, rel


def max_lre(dtype) -> float:
    """The LRE of an exact match: the significant digits the dtype carries."""
    return float(-math.log10(np.finfo(np.dtype(dtype)).eps / 2))


def lre(actual: np.ndarray, expected: np.ndarray) -> float:
    """The smallest log relative error over the elements (NIST StRD), capped per dtype."""
    cap = max_lre(np.asarray(expected).dtype)
    err, rel = abs_rel_errors(actual, expected)
    e = np.abs(np.asarray(expected, dtype=np.float64))
    # NIST convention: the absolute error where the certified value is 0.
    measure = np.where(e == 0.0, err, rel)
    worst = float(np.max(measure)) if measure.size else 0.0
    if worst == 0.0:
        return cap
    if not math.isfinite(worst):
        return 0.0
    return float(min(cap, max(0.0, -math.log10(worst))))


COMPARABLE_MODES = ("bitwise", "max_ulp", "allclose")


def check_tolerance_mode(tolerance: Mapping) -> str:
    """The tolerance's mode if refopt can judge arrays under it, else a ValueError saying why."""
    mode = (tolerance or {}).get("mode", "allclose")
    if mode == "statistical":
        raise ValueError("tolerance mode 'statistical' is not implemented by refopt verify (it "
                         "would need a distributional test, not an elementwise bound); refusing "
                         "to judge it as 'allclose'")
    if mode not in COMPARABLE_MODES:
        raise ValueError(f"tolerance mode must be one of {list(COMPARABLE_MODES)} to compare "
                         f"arrays, got {mode!r}")
    return mode


def history_scale(expected: np.ndarray, steps: Sequence[int]) -> np.ndarray:
    """The accumulated operand scale of each element (FORMAT.md section 5, ``scaled``).

    ``expected`` is shaped (len(steps), *shape), row j at step ``steps[j]``. With
    H_j = max over rows i <= j of |expected[i]| (finite values only; per element),
    S_0 = 0 and S_k = sum_{j=1..k} (steps[j] - steps[j-1]) * H_j. Returned as float64.
    """
    e = np.asarray(expected, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    if e.shape[:1] != steps.shape:
        raise ValueError(f"history of {e.shape[0] if e.ndim else 0} rows for {len(steps)} steps")
    mag = np.where(np.isfinite(e), np.abs(e), 0.0)
    out = np.zeros_like(mag)
    if len(steps) > 1:
        h = np.maximum.accumulate(mag, axis=0)
        dt = np.diff(steps).reshape((-1,) + (1,) * (e.ndim - 1))
        out[1:] = np.cumsum(dt * h[1:], axis=0)
    return out


def scaled_allowance(expected: np.ndarray, steps: Sequence[int] | None, tolerance: Mapping,
                     buffer: str | None) -> np.ndarray | None:
    """k_b * unit * history_scale(expected, steps), or None where the tolerance has no
    ``scaled`` bound for ``buffer`` (or no steps are given)."""
    scaled = (tolerance or {}).get("scaled")
    if not scaled or steps is None or buffer is None:
        return None
    k = (scaled.get("k") or {}).get(buffer)
    if k is None:
        return None
    return float(k) * float(scaled["unit"]) * history_scale(expected, steps)


def violation(actual: np.ndarray, expected: np.ndarray, tolerance: Mapping, *,
              steps: Sequence[int] | None = None, buffer: str | None = None) -> np.ndarray:
    """Elementwise error divided by what the tolerance allows (> 1 fails; float64).

    ``steps`` (the recorded step of each row) and ``buffer`` (``"param"``, ``"exp_avg"``, ...)
    enable an ``allclose`` tolerance's ``scaled`` bound; without them only atol + rtol|c|
    applies.
    """
    mode = check_tolerance_mode(tolerance)
    if mode in ("bitwise", "max_ulp"):
        ulp = ulp_distance(actual, expected)
        allowed = 0.0 if mode == "bitwise" else float(tolerance.get("max_ulp") or 0)
        # With nothing allowed, any nonzero distance must exceed 1: scale it by 2.
        return ulp * 2.0 if allowed == 0.0 else ulp / allowed
    if mode == "allclose":
        err, _ = abs_rel_errors(actual, expected)
        e = np.abs(np.asarray(expected, dtype=np.float64))
        allowed = float(tolerance.get("atol") or 0.0) + float(tolerance.get("rtol") or 0.0) * e
        scaled = scaled_allowance(expected, steps, tolerance, buffer)
        if scaled is not None:
            allowed = np.minimum(allowed, scaled)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            v = np.where(err == 0.0, 0.0, err / allowed)
        return np.where(np.isnan(v), np.inf, v)
    raise AssertionError(mode)  # pragma: no cover (check_tolerance_mode refused it)


@dataclass
class Divergence:
    """Where a trajectory first leaves the tolerance."""

    step: int
    name: str          # "param.1", "exp_avg.0", ...
    index: tuple       # element index inside the tensor
    actual: float
    expected: float

    def __str__(self) -> str:
        where = f"[{','.join(map(str, self.index))}]" if self.index else ""
        return f"t={self.step} {self.name}{where}"

    def detail(self) -> str:
        """Where, and the two values with just enough digits to tell them apart:
        ``t=3 param.2[1,0]: golden 0.12345, port 0.12412 (rel 5.4e-03)``."""
        golden, port = _distinct(self.expected, self.actual)
        text = f"{self}: golden {golden}, port {port}"
        if math.isfinite(self.expected) and math.isfinite(self.actual) and self.expected != 0:
            text += f" (rel {abs(self.actual - self.expected) / abs(self.expected):.1e})"
        return text

    def to_dict(self) -> dict:
        return {"step": self.step, "tensor": self.name, "index": list(self.index),
                "expected": _json_number(self.expected), "actual": _json_number(self.actual)}


def _distinct(a: float, b: float) -> tuple[str, str]:
    for digits in range(6, 18):
        x, y = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if x != y:
            return x, y
    return repr(a), repr(b)


def _json_number(x: float):
    return x if math.isfinite(x) else str(x)


@dataclass
class Comparison:
    """The measured distance between a port's trajectory and the golden one.

    ``passed`` is the verdict over steps up to the horizon; ``worst_*`` are taken over the same
    steps (``*_beyond`` over the later ones, for information); ``score`` is the largest
    error-to-tolerance ratio (<= 1 passes).
    """

    passed: bool
    score: float
    first_divergence: Divergence | None
    worst_abs: float
    worst_rel: float
    worst_ulp: float
    min_lre: float
    compared: list = field(default_factory=list)   # names compared, e.g. ["param.0", "exp_avg.0"]
    beyond_horizon_rel: float | None = None
    notes: list = field(default_factory=list)
    #: Per buffer ("param", "exp_avg", ...): where it first leaves the tolerance (None: it stays
    #: inside), in the order compared. A wrong coefficient of v shows as exp_avg_sq off first.
    buffer_divergence: dict = field(default_factory=dict)


def horizon_mask(steps: np.ndarray, tolerance: Mapping) -> np.ndarray:
    h = tolerance.get("pointwise_horizon")
    steps = np.asarray(steps)
    return np.ones(steps.shape, bool) if h is None else steps <= int(h)


def compare_trajectories(expected: Mapping[str, Sequence[np.ndarray]],
                         actual: Mapping[str, Sequence[np.ndarray]], steps: np.ndarray,
                         tolerance: Mapping, dtype: str) -> Comparison:
    """Compare named per-tensor histories (``{"param": [...], "exp_avg": [...]}``).

    Each entry is a list with one array per tensor shaped (len(steps), *shape). Buffers missing
    from ``actual`` are skipped (a port need not expose its state); params are required.
    """
    check_tolerance_mode(tolerance)
    dt = np.dtype(dtype)
    steps = np.asarray(steps, dtype=np.int64)
    inside = horizon_mask(steps, tolerance)
    notes: list[str] = []
    worst_abs = worst_rel = worst_ulp = score = 0.0
    min_lre = max_lre(dt)
    beyond_rel = None
    first: Divergence | None = None
    by_buffer: dict = {}
    compared = []
    if "param" not in actual:
        raise ValueError("the port's trajectory has no params")
    for name, exp_list in expected.items():
        if name not in actual:
            continue
        act_list = actual[name]
        if len(act_list) != len(exp_list):
            raise ValueError(f"{name}: the port returned {len(act_list)} tensors, the case has "
                             f"{len(exp_list)}")
        by_buffer.setdefault(name, None)
        for i, (e, a) in enumerate(zip(exp_list, act_list)):
            label = f"{name}.{i}"
            e = np.asarray(e)
            a = np.asarray(a)
            if a.shape != e.shape:
                raise ValueError(f"{label}: the port's history has shape {a.shape}, expected "
                                 f"{e.shape} (recorded steps x tensor shape)")
            if a.dtype != dt:
                if a.dtype.kind == "f" and a.dtype != dt:
                    notes.append(f"{label} came back as {a.dtype}, compared as {dt}")
                a = a.astype(dt)
            e = e.astype(dt, copy=False)
            compared.append(label)
            err, rel = abs_rel_errors(a, e)
            ulp = ulp_distance(a, e)
            v = violation(a, e, tolerance, steps=steps, buffer=name)
            if np.any(~inside):
                r = float(np.max(rel[~inside])) if rel[~inside].size else 0.0
                beyond_rel = r if beyond_rel is None else max(beyond_rel, r)
            a_in, e_in = a[inside], e[inside]
            if a_in.size:
                worst_abs = max(worst_abs, float(np.max(err[inside])))
                worst_rel = max(worst_rel, float(np.max(rel[inside])))
                worst_ulp = max(worst_ulp, float(np.max(ulp[inside])))
                min_lre = min(min_lre, lre(a_in, e_in))
                score = max(score, float(np.max(v[inside])))
            bad = (v > 1.0) & inside.reshape((-1,) + (1,) * (e.ndim - 1))
            if np.any(bad):
                k = int(np.argmax(np.any(bad.reshape(len(steps), -1), axis=1)))
                idx = np.unravel_index(int(np.argmax(bad[k].reshape(-1))), e.shape[1:])
                cand = Divergence(int(steps[k]), label, tuple(int(j) for j in idx),
                                  float(a[k][idx]), float(e[k][idx]))
                # Earliest step first; at the same step, params before buffers.
                if first is None or cand.step < first.step:
                    first = cand
                if by_buffer[name] is None or cand.step < by_buffer[name].step:
                    by_buffer[name] = cand
    return Comparison(passed=first is None, score=score, first_divergence=first,
                      worst_abs=worst_abs, worst_rel=worst_rel, worst_ulp=worst_ulp,
                      min_lre=min_lre, compared=compared, beyond_horizon_rel=beyond_rel,
                      notes=notes, buffer_divergence=by_buffer)
