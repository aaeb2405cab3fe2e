r"""Naive, independent re-implementations of every rule, for two jobs of the golden suite.

1. **Accuracy of the float64 golden values** (``reference_accuracy``): the recurrences run
   element by element in mpmath at 50 significant digits (:class:`MpArith`), from the exact
   binary values of the stored inputs, with every per-step scalar (bias corrections, AdamX's
   :math:`\hat\beta_{2,t}`, AdaX's :math:`(1+b)^t - 1`, AlphaAdam's alpha) evaluated exactly in
   mpmath rather than rounded to float64. The worst relative error of the float64 golden values
   against these is recorded in each float64 manifest.
2. **Tolerances** (``tolerance.measured``): the same loops run in the case's own dtype as the
   *legitimate implementations* a correct port may be (:class:`FloatArith`): with a different
   operation order (``reorder=True``: torch-style ``lerp`` for m and ``mul``/``addcmul`` for v,
   ``p - (lr*wd)*p`` for the decay, ``(lr*m)/denom`` for the step) and/or with faithfully
   rounded arithmetic (``faithful_seed``: sqrt and division up to 1 ulp off, ``a*b + c``
   contracted to an FMA, libm scalars 1 ulp off). How far they land from the golden values is
   measured, not guessed (``refopt/golden/tolerances.py``).

This module shares no code with :mod:`refopt.rules`: the formulas are re-typed from the specs
(``proofs/spec/*.md``), one plain loop per rule, so a mistake in either implementation shows up
as a disagreement.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import mpmath
import numpy as np

MP_DPS = 50


# -- arithmetic contexts -----------------------------------------------------------------------

class MpArith:
    """Exact-ish arithmetic: mpmath at ``dps`` digits for scalars and elements alike."""

    name = "mpmath"
    reorder = False

    def __init__(self, dps: int = MP_DPS) -> None:
        self.ctx = mpmath.MPContext()
        self.ctx.dps = dps

    # scalar precision (hyperparameters, bias corrections)
    def s(self, x: float):
        return self.ctx.mpf(float(x))

    def spow(self, a, b):
        return self.ctx.power(a, b)

    def sexpm1(self, x):
        return self.ctx.expm1(x)

    def sexp(self, x):
        return self.ctx.exp(x)

    def slog(self, x):
        return self.ctx.log(x)

    def slog1p(self, x):
        return self.ctx.log1p(x)

    def ssqrt(self, x):
        return self.ctx.sqrt(x)

    # element precision
    def e(self, x):
        """A scalar-precision value as an element (exact here: no rounding)."""
        return self.ctx.mpf(x)

    def el(self, x: float):
        """A stored float (float32 or float64) as an element, exactly."""
        return self.ctx.mpf(float(x))

    def esqrt(self, x):
        return self.ctx.sqrt(x)

    def ediv(self, a, b):
        return a / b

    def madd(self, a, b, c):
        """a * b + c."""
        return a * b + c

    def to_float(self, x) -> float:
        return float(x)

    def round_state(self, x, state_dtype):
        if state_dtype is None:
            return x
        raise NotImplementedError("state rounding is not modelled in mpmath")


class FloatArith:
    """Float arithmetic in ``dtype``; scalars in float64 (Python floats) rounded once to dtype.

    With ``faithful_seed`` set, the arithmetic is a *faithfully rounded* one, as in vectorised
    CPU math libraries (torch's float32 ``sqrt``), CUDA without ``--prec-sqrt``/``--prec-div``
    and compilers that contract ``a*b + c`` into an FMA. Driven by a PCG64 stream seeded with
    ``faithful_seed`` (so a run is reproducible bit for bit):

    * every element ``sqrt`` and division whose exact result is not representable returns,
      with probability 1/2, the *other* neighbour of the exact result instead of the correctly
      rounded one (an error of at most 1 ulp; exact results stay exact);
    * every ``a*b + c`` (moment updates, decay, the final ``p - lr*u``) is, with probability 1/2,
      rounded once (FMA) instead of twice;
    * every per-step libm scalar (``pow``, ``exp``, ``expm1``, ``log``, ``log1p``; float64) moves by
      -1, 0 or +1 ulp, each with probability 1/3.

    With ``scalar_dtype="float32"`` the per-step scalars are computed in float32 instead: the
    hyperparameters held as float32 numbers and every scalar formula (1 - b^t, its sqrt, the
    step size, 1 - lr*wd, AdamX's exp/log forms) evaluated in float32 arithmetic, as optax's
    jnp scalars and torch ports with ``torch.tensor(lr)`` do.
    """

    def __init__(self, dtype: str = "float64", reorder: bool = True,
                 faithful_seed: int | None = None, scalar_dtype: str = "float64") -> None:
        self.dtype = np.dtype(dtype)
        self.type = self.dtype.type
        self.reorder = reorder
        self.faithful = faithful_seed is not None
        self.scalar32 = np.dtype(scalar_dtype) == np.float32
        self.name = (f"{dtype}{'-reordered' if reorder else ''}"
                     f"{'' if faithful_seed is None else f'-faithful{faithful_seed}'}"
                     f"{'-scalars32' if self.scalar32 else ''}")
        if self.faithful:
            self._rng = np.random.default_rng(faithful_seed)
            self._draws: list[int] = []
            self._next = 0

    def _draw(self) -> int:
        """A uniform integer in 0..5 from the seeded stream (one per perturbed operation)."""
        if self._next == len(self._draws):
            self._draws = self._rng.integers(0, 6, size=4096).tolist()
            self._next = 0
        self._next += 1
        return self._draws[self._next - 1]

    def _nudge_scalar(self, x: float) -> float:
        if not self.faithful or not math.isfinite(x):
            return x
        step = self._draw() % 3 - 1
        return x if step == 0 else math.nextafter(x, math.copysign(math.inf, step))

    def s(self, x: float) -> float:
        # float32 scalars: NumPy keeps float32 through +, -, *, / with Python numbers (NEP 50)
        return np.float32(x) if self.scalar32 else float(x)

    def _f32(self, fn, *args):
        with np.errstate(all="ignore"):
            return fn(*(np.float32(a) for a in args)).astype(np.float32)

    def spow(self, a, b):
        if self.scalar32:
            return self._f32(np.power, a, b)
        return self._nudge_scalar(a ** b)

    def sexpm1(self, x):
        return self._f32(np.expm1, x) if self.scalar32 else self._nudge_scalar(math.expm1(x))

    def sexp(self, x):
        return self._f32(np.exp, x) if self.scalar32 else self._nudge_scalar(math.exp(x))

    def slog(self, x):
        return self._f32(np.log, x) if self.scalar32 else self._nudge_scalar(math.log(x))

    def slog1p(self, x):
        return self._f32(np.log1p, x) if self.scalar32 else self._nudge_scalar(math.log1p(x))

    def ssqrt(self, x):
        if self.scalar32:
            return self._f32(np.sqrt, x)
        return math.sqrt(x)   # correctly rounded in every IEEE 754 implementation

    def e(self, x):
        return self.type(x)

    def el(self, x):
        return self.type(x)

    def _other_neighbour(self, r, above: bool):
        """With probability 1/2, the neighbour of r on the side of the exact result."""
        if self._draw() % 2:
            return r
        return np.nextafter(r, self.type(math.inf if above else -math.inf))

    def esqrt(self, x):
        r = np.sqrt(x)
        if not self.faithful or not (np.isfinite(r) and r > 0):
            return r
        fr, fx = float(r), float(x)
        if self.dtype == np.float64:
            resid = _exact_sum(*_two_product(fr, fr), -fx)
        else:   # float32: r*r is exact in float64, and so is its difference from x
            resid = fr * fr - fx
        return r if resid == 0 else self._other_neighbour(r, resid < 0)

    def ediv(self, a, b):
        q = a / b
        if not self.faithful or not (np.isfinite(q) and q != 0 and np.isfinite(b)):
            return q
        fa, fq, fb = float(a), float(q), float(b)
        if self.dtype == np.float64:
            p, err = _two_product(fq, fb)
            resid = _exact_sum(fa, -p, -err)
        else:   # float32: q*b is exact in float64 and the difference keeps its sign
            resid = fa - fq * fb
        return q if resid == 0 else self._other_neighbour(q, (resid > 0) == (fb > 0))

    def madd(self, a, b, c):
        """a * b + c, rounded twice, or once (an FMA) with probability 1/2 when faithful."""
        if not self.faithful or self._draw() % 2:
            return a * b + c
        fa, fb, fc = float(a), float(b), float(c)
        if self.dtype == np.float32:
            # The float64 product of two float32 is exact; the sum is rounded in float64 and
            # then in float32 (equal to a true FMA except at double-rounding ties).
            return self.type(fa * fb + fc)
        if not all(math.isfinite(x) and abs(x) < 2.0 ** 500 for x in (fa, fb, fc)):
            return a * b + c
        return self.type(_exact_sum(*_two_product(fa, fb), fc))

    def to_float(self, x) -> float:
        return float(x)

    def round_state(self, x, state_dtype):
        if state_dtype is None or state_dtype == self.dtype.name:
            return x
        if state_dtype in ("float32", "float16", "float64"):
            return self.type(np.dtype(state_dtype).type(x))
        if state_dtype == "bfloat16":
            bits = int(np.array(x, dtype=np.float32).view(np.uint32))
            if not math.isfinite(float(x)):
                return x
            bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
            return self.type(np.array(bits & 0xFFFFFFFF, dtype=np.uint32).view(np.float32))
        raise ValueError(f"unknown state_dtype {state_dtype!r}")


def _two_product(a: float, b: float) -> tuple[float, float]:
    """p, e with p = fl(a*b) and p + e = a*b exactly (Dekker/Veltkamp; |a|, |b| < 2**500)."""
    def split(x):
        c = 134217729.0 * x   # 2**27 + 1
        hi = c - (c - x)
        return hi, x - hi

    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _exact_sum(*xs: float) -> float:
    """The correctly rounded sum (math.fsum); its sign is the sign of the exact sum."""
    return math.fsum(xs)


def _div(A, num, den):
    """num / den with 0/0 := 0 (refopt's convention when eps = 0)."""
    if num == 0 and den == 0:
        return A.e(0.0)
    if den == 0:
        return A.e(math.copysign(math.inf, float(num)))
    return A.ediv(num, den)


# -- per-step scalars (exact in mpmath, float64 otherwise) ------------------------------------

def _adam_bc(A, h, t, mode):
    b1, b2 = A.s(h["betas"][0]), A.s(h["betas"][1])
    one = A.s(1.0)
    if mode == "none":
        return one, one
    return one - A.spow(b1, t), one - A.spow(b2, t)


# -- one step of each rule, on flat lists of elements ------------------------------------------

def _step_adamx(A, h, p, g, st, t, lr):
    one = A.s(1.0)
    b1, b2 = A.s(h["betas"][0]), A.s(h["betas"][1])
    b1_pow_t = A.spow(b1, t)
    b1t = (b1 - b1_pow_t) / (one - b1_pow_t)
    if h["coef_form"] == "naive" and isinstance(A, FloatArith):
        e = one - b2
        b2t = (one - A.spow(b2, e * (t - 1))) / (one - A.spow(b2, e * t))
    else:  # the exact value (mpmath) or the stable float64 form
        ell = (one - b2) * A.slog(b2)
        b2t = A.sexpm1((t - 1) * ell) / A.sexpm1(t * ell)
    if isinstance(A, MpArith):
        # Exact: the complements by subtraction at 50 digits (cancellation costs at most
        # |log10(1 - beta_t)| of them), a route independent of the float64 forms below.
        b1c, b2c = one - b1t, one - b2t
    else:
        # A port reuses the case's float64 scalars, and the rule forms the complements directly
        # (adamx.md; refopt.rules.adamx.one_minus_beta2_t): (1 - beta1)/(1 - beta1^t) and
        # expm1(l) exp((t-1) l) / expm1(t l); the official (naive) form subtracts.
        b1c = (one - b1) / (one - b1_pow_t)
        if h["coef_form"] == "naive":
            b2c = one - b2t
        else:
            b2c = A.sexpm1(ell) * A.sexp((t - 1) * ell) / A.sexpm1(t * ell)
    lr_s, wd = A.s(lr), A.s(h["weight_decay"])
    decoupled = h["weight_decay_mode"] == "decoupled"
    eb1, eb1c, eb2, eb2c = A.e(b1t), A.e(b1c), A.e(b2t), A.e(b2c)
    elr, eps = A.e(lr_s), A.e(A.s(h["eps"]))
    m, v = st["exp_avg"], st["exp_avg_sq"]
    out_p, out_m, out_v = [], [], []
    for pi, gi, mi, vi in zip(p, g, m, v):
        if decoupled:
            pi = A.madd(-A.e(lr_s * wd), pi, pi) if A.reorder else pi * A.e(one - lr_s * wd)
        else:
            gi = A.madd(A.e(wd), pi, gi)
        if A.reorder:
            mi = A.madd(eb1c, gi - mi, mi)
            vi = A.madd(eb2c * gi, gi, vi * eb2)  # torch: mul_ then addcmul_
        else:
            mi = A.madd(eb1, mi, eb1c * gi)
            vi = A.madd(eb2, vi, eb2c * (gi * gi))
        mi = A.round_state(mi, h.get("state_dtype"))
        vi = A.round_state(vi, h.get("state_dtype"))
        den = A.esqrt(vi) + eps
        pi = pi - _div(A, elr * mi, den) if A.reorder else A.madd(-elr, _div(A, mi, den), pi)
        out_p.append(pi), out_m.append(mi), out_v.append(vi)
    return out_p, {"exp_avg": out_m, "exp_avg_sq": out_v}, {}


def _step_adams(A, h, p, g, st, t, lr):
    one = A.s(1.0)
    b1, b2 = A.s(h["betas"][0]), A.s(h["betas"][1])
    c = one - A.spow(b1, t) if h["bias_correction"] else one
    lr_s, wd = A.s(lr), A.s(h["weight_decay"])
    ec, eb1, eb1c, eb2, eb2c = A.e(c), A.e(b1), A.e(one - b1), A.e(b2), A.e(one - b2)
    elr, eps = A.e(lr_s), A.e(A.s(h["eps"]))
    out_p, out_m = [], []
    for pi, gi, mi in zip(p, g, st["exp_avg"]):
        pi = A.madd(-A.e(lr_s * wd), pi, pi) if A.reorder else pi * A.e(one - lr_s * wd)
        m_old = A.ediv(mi, ec)
        nu = A.madd(eb2, m_old * m_old, eb2c * (gi * gi))
        mi = A.madd(eb1c, gi - mi, mi) if A.reorder else A.madd(eb1, mi, eb1c * gi)
        m_hat = A.ediv(mi, ec)
        den = A.esqrt(nu) + eps
        pi = (pi - _div(A, elr * m_hat, den) if A.reorder
              else A.madd(-elr, _div(A, m_hat, den), pi))
        out_p.append(pi), out_m.append(mi)
    return out_p, {"exp_avg": out_m}, {}


def _adam_core(A, h, p, g, st, t, lr, bias_correction, decay_mode):
    """Moments and direction u of the Adam family; returns (params after decay, m, v, u, step)."""
    one = A.s(1.0)
    b1, b2 = A.s(h["betas"][0]), A.s(h["betas"][1])
    bc1, bc2 = _adam_bc(A, h, t, bias_correction)
    lr_s, wd = A.s(lr), A.s(h["weight_decay"])
    if bias_correction == "torch":
        step_size, denom_div = lr_s / bc1, A.ssqrt(bc2)
    elif bias_correction == "hf":
        step_size, denom_div = lr_s * A.ssqrt(bc2) / bc1, one
    else:
        step_size, denom_div = lr_s, one
    eb1, eb1c, eb2, eb2c = A.e(b1), A.e(one - b1), A.e(b2), A.e(one - b2)
    eps, ediv = A.e(A.s(h["eps"])), A.e(denom_div)
    ps, ms, vs, us = [], [], [], []
    for pi, gi, mi, vi in zip(p, g, st["exp_avg"], st["exp_avg_sq"]):
        if decay_mode == "decoupled":
            pi = A.madd(-A.e(lr_s * wd), pi, pi) if A.reorder else pi * A.e(one - lr_s * wd)
        elif decay_mode == "l2":
            gi = A.madd(A.e(wd), pi, gi)
        if A.reorder:
            mi = A.madd(eb1c, gi - mi, mi)
            vi = A.madd(eb2c * gi, gi, vi * eb2)  # torch: mul_ then addcmul_
        else:
            mi = A.madd(eb1, mi, eb1c * gi)
            vi = A.madd(eb2, vi, eb2c * (gi * gi))
        ps.append(pi), ms.append(mi), vs.append(vi)
        us.append(_div(A, mi, A.ediv(A.esqrt(vi), ediv) + eps))
    return ps, ms, vs, us, step_size


def _step_adam(A, h, p, g, st, t, lr, decay_mode="l2"):
    ps, ms, vs, us, step_size = _adam_core(A, h, p, g, st, t, lr, h["bias_correction"], decay_mode)
    es = A.e(step_size)
    out = [A.madd(-es, ui, pi) for pi, ui in zip(ps, us)]
    return out, {"exp_avg": ms, "exp_avg_sq": vs}, {}


def _step_adamw(A, h, p, g, st, t, lr):
    return _step_adam(A, h, p, g, st, t, lr, decay_mode="decoupled")


def _alpha(A, h, kept, n, us, mask):
    rule = h["alpha_rule"]
    floor = A.s(h["density_floor"])
    q = A.s(kept) / A.s(n) if n else A.s(1.0)
    if rule == "count":
        return A.s(1.0) / max(q, floor)
    if rule == "count+1":
        return A.s(n) / A.s(kept + 1)
    if rule == "soft":
        return max(q, floor)
    if rule == "norm":
        kept_sq = sum((A.s(A.to_float(u)) if isinstance(A, FloatArith) else u) ** 2
                      for u, k in zip(us, mask) if k)
        if kept_sq == 0:
            return A.s(1.0)
        all_sq = sum((A.s(A.to_float(u)) if isinstance(A, FloatArith) else u) ** 2 for u in us)
        return min(A.s(h["alpha_max"]), A.ssqrt(all_sq) / A.ssqrt(kept_sq))
    return A.s(1.0)


def _step_alphaadam(A, h, p, g, st, t, lr):
    m_prev = st["exp_avg"]
    ps, ms, vs, us, step_size = _adam_core(A, h, p, g, st, t, lr, h["bias_correction"],
                                           "decoupled")
    n = len(ps)
    source, first = h["mask_source"], h["first_step"]
    unmasked = source == "ones" or (source == "m_prev" and t == 1 and first == "unmasked")
    if unmasked:
        mask = [True] * n
    else:
        use_new = source == "m_t" or (t == 1 and first == "cautious")
        scores = [(mi if use_new else mo) * gi for mi, mo, gi in zip(ms, m_prev, g)]
        mask = [s > 0 if h["strict"] else s >= 0 for s in scores]
    kept = sum(mask)
    if source == "m_prev" and t == 1 and first == "unmasked":
        alpha = A.s(1.0)
    else:
        alpha = _alpha(A, h, kept, n, us, mask)
    ea, eg, one = A.e(alpha), A.e(A.s(h["gamma"])), A.e(1.0)
    es = A.e(step_size)
    out = []
    for pi, ui, k in zip(ps, us, mask):
        if h["alpha_rule"] == "soft":
            psi = A.ediv(one, ea) if k else ea
        else:
            psi = ea if k else eg
        out.append(A.madd(-es, psi * ui, pi))
    return out, {"exp_avg": ms, "exp_avg_sq": vs}, {"mask": mask, "alpha": alpha, "kept": kept}


def _step_cadamw(A, h, p, g, st, t, lr):
    hh = dict(h)
    mode = h.get("bias_correction", "hf")
    ps, ms, vs, _, step_size = _adam_core(A, hh, p, g, st, t, lr, mode, "decoupled")
    # torch: sqrt(v)/sqrt(1-b2^t) + eps; hf: sqrt(v) + eps (as _adam_core's u, but the mask
    # multiplies m before the division, C-Optim's order).
    denom_div = A.ssqrt(_adam_bc(A, h, t, mode)[1]) if mode == "torch" else None
    n = len(ps)
    mask = [mi * gi > 0 for mi, gi in zip(ms, g)]
    k = sum(mask)
    if h["scaling"] == "count":
        r = A.s(1.0) / max(A.s(k) / A.s(n) if n else A.s(1.0), A.s(1e-3))
    else:
        r = A.s(n) / A.s(k + 1)
    er, es, eps = A.e(r), A.e(step_size), A.e(A.s(h["eps"]))
    out = []
    for pi, mi, vi, keep in zip(ps, ms, vs, mask):
        num = mi * er if keep else A.e(0.0) * mi
        root = A.esqrt(vi) if denom_div is None else A.ediv(A.esqrt(vi), A.e(denom_div))
        out.append(A.madd(-es, _div(A, num, root + eps), pi))
    return out, {"exp_avg": ms, "exp_avg_sq": vs}, {}


def _step_adax(A, h, p, g, st, t, lr):
    one = A.s(1.0)
    b1, b = A.s(h["betas"][0]), A.s(h["betas"][1])
    lr_s, wd = A.s(lr), A.s(h["weight_decay"])
    step_size = lr_s * A.ssqrt(A.sexpm1(t * A.slog1p(b)))
    eb1, eb1c, grow, eb = A.e(b1), A.e(one - b1), A.e(one + b), A.e(b)
    eps, es = A.e(A.s(h["eps"])), A.e(step_size)
    decoupled = h["weight_decay_mode"] == "decoupled"
    out_p, out_m, out_v = [], [], []
    for pi, gi, mi, vi in zip(p, g, st["exp_avg"], st["exp_avg_sq"]):
        if decoupled:
            pi = A.madd(-A.e(lr_s * wd), pi, pi) if A.reorder else pi * A.e(one - lr_s * wd)
        else:
            gi = A.madd(A.e(wd), pi, gi)
        mi = A.madd(eb1c, gi - mi, mi) if A.reorder else A.madd(eb1, mi, eb1c * gi)
        vi = A.madd(grow, vi, eb * (gi * gi))
        pi = A.madd(-es, _div(A, mi, A.esqrt(vi) + eps), pi)
        out_p.append(pi), out_m.append(mi), out_v.append(vi)
    return out_p, {"exp_avg": out_m, "exp_avg_sq": out_v}, {}


def _step_sgdm(A, h, p, g, st, t, lr):
    one = A.s(1.0)
    mom, wd = A.e(A.s(h["momentum"])), A.e(A.s(h["weight_decay"]))
    damp_c = A.e(one - A.s(h["dampening"]))
    elr = A.e(A.s(lr))
    out_p, out_b = [], []
    for pi, gi, bi in zip(p, g, st["momentum_buffer"]):
        gi = A.madd(wd, pi, gi)
        bi = gi if t == 1 else A.madd(mom, bi, damp_c * gi)
        d = A.madd(mom, bi, gi) if h["nesterov"] else bi
        out_p.append(A.madd(-elr, d, pi)), out_b.append(bi)
    return out_p, {"momentum_buffer": out_b}, {}


STEPS: dict[str, Callable] = {"adamx": _step_adamx, "adams": _step_adams, "adam": _step_adam,
                              "adamw": _step_adamw, "alphaadam": _step_alphaadam,
                              "cadamw": _step_cadamw, "adax": _step_adax, "sgdm": _step_sgdm}
BUFFERS = {"adamx": ("exp_avg", "exp_avg_sq"), "adams": ("exp_avg",),
           "adam": ("exp_avg", "exp_avg_sq"), "adamw": ("exp_avg", "exp_avg_sq"),
           "alphaadam": ("exp_avg", "exp_avg_sq"), "cadamw": ("exp_avg", "exp_avg_sq"),
           "adax": ("exp_avg", "exp_avg_sq"), "sgdm": ("momentum_buffer",)}


def run(A, rule: str, hyper: dict, init_params: Sequence[np.ndarray],
        grad_source: Sequence[np.ndarray] | Callable, n_steps: int,
        lr_schedule: Sequence[float] | None = None, record: Sequence[int] | None = None,
        as_array: Callable | None = None) -> dict[int, dict[str, Any]]:
    """Run ``rule`` for ``n_steps`` in arithmetic ``A``; return the values at the ``record`` steps.

    ``grad_source`` is a list of streams shaped (T, *shape) (replayed) or a callable
    ``grad_fn(params_as_arrays, t)`` (closed loop, float contexts only; ``as_array`` turns a
    flat element list back into an ndarray of the tensor's shape). The result maps each recorded
    step to ``{"param.i": [elements], "<buffer>.i": [...], "step.i": int}``.
    """
    step_fn, bufs = STEPS[rule], BUFFERS[rule]
    shapes = [np.shape(p) for p in init_params]
    params = [[A.el(x) for x in np.asarray(p).reshape(-1)] for p in init_params]
    state = [{b: [A.e(0.0)] * len(p) for b in bufs} for p in params]
    counts = [0] * len(params)
    wanted = set(record if record is not None else range(n_steps + 1))
    out: dict[int, dict] = {}

    def snapshot(k):
        snap = {}
        for i, p in enumerate(params):
            snap[f"param.{i}"] = list(p)
            for b in bufs:
                snap[f"{b}.{i}"] = list(state[i][b])
            snap[f"step.{i}"] = counts[i]
        out[k] = snap

    if 0 in wanted:
        snapshot(0)
    with np.errstate(all="ignore"):  # IEEE overflow in float32 is part of the cases
        _loop(A, hyper, step_fn, params, state, counts, grad_source, n_steps, lr_schedule,
              shapes, as_array, wanted, snapshot)
    return out


def _loop(A, hyper, step_fn, params, state, counts, grad_source, n_steps, lr_schedule, shapes,
          as_array, wanted, snapshot):
    for k in range(1, n_steps + 1):
        lr = hyper["lr"] if lr_schedule is None else float(lr_schedule[k - 1])
        if callable(grad_source):
            arrays = [as_array(p, s) for p, s in zip(params, shapes)]
            grads = [np.asarray(gg).reshape(-1) for gg in grad_source(arrays, k)]
        else:
            grads = [np.asarray(gs[k - 1]).reshape(-1) for gs in grad_source]
        finite = all(np.all(np.isfinite(gg)) for gg in grads)
        if not finite and hyper.get("nonfinite") == "skip":
            if k in wanted:
                snapshot(k)
            continue
        for i in range(len(params)):
            counts[i] += 1
            g = [A.el(x) for x in grads[i]]
            params[i], state[i], _ = step_fn(A, hyper, params[i], g, state[i], counts[i], lr)
        if k in wanted:
            snapshot(k)


def float_array(dtype: str) -> Callable:
    def as_array(elements, shape):
        return np.array([float(x) for x in elements], dtype=dtype).reshape(shape)
    return as_array
