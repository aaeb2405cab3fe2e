r"""Diagnoses: which known mistake explains a failing port?

For a failing case, refopt's reference is re-run with each known mistake planted (a small mutated
rule: a subclass of the reference rule whose ``_update_tensor`` makes the mistake, or the reference
with one option flipped) on the same inputs; for closed-loop cases the mutant runs its own closed
loop, as the port did. The mistakes whose trajectory matches the port's within tolerance are
reported, best first; if none matches, the report says "no known mistake matches" and names the
closest candidate.

Known mistakes (``proofs/spec/*.md``, pitfalls sections; :data:`MISTAKES`):

==============================  ====================================================  ==========
key                             mistake                                               rules
==============================  ====================================================  ==========
``eps_inside_sqrt``             sqrt(v + eps) instead of sqrt(v) + eps                all but sgdm
``torch_style_eps``             eps on the corrected sqrt(v)/sqrt(1-b2^t) where the   alphaadam,
                                case has HF style (and ``hf_style_eps`` the reverse)  adam(w), cadamw
``wd_coupled``                  weight decay added to the gradient (L2) instead of    all decoupled
                                decoupled :math:`\theta(1-\eta\lambda)`
``wd_decoupled``                decoupled where the case couples it (L2)              adam, sgdm, adax
``wd_after_step``               decoupled decay applied after the step                all decoupled
``adams_m_t_denominator``       AdamS :math:`\nu_t` from the updated :math:`m_t`      adams
``adams_old_m_c_prev``          AdamS code form: old m corrected by 1-b1^(t-1)        adams (code)
``missing_bias_correction``     adams code form without correction (= paper form);    adamx, adams,
                                AdamX with constant betas; AlphaAdam, Adam(W) with    alphaadam,
                                none                                                  adam(w)
``extra_bias_correction``       adams paper form with correction; AdamX with Adam's   adamx, adams,
                                correction on top of the folded betas; AlphaAdam      alphaadam
                                corrected twice
``count_plus_one_rescale``      n/(k+1) where the case has 1/max(k/n, floor)          cadamw,
                                (``count_rescale`` the reverse)                       alphaadam
``alphaadam_mask_from_m_t``     the mask from :math:`m_t`: Cautious, not AlphaAdam    alphaadam
``alphaadam_no_mask``           no mask at all: plain AdamW                           alphaadam
``plain_adamw``                 torch.optim.AdamW with the same hyperparameters      adamx, adams
``adamx_naive_coef``            AdamX beta2_t in the naive pow form (and              adamx
                                ``adamx_expm1_coef`` the reverse)
``sgdm_dampened_first_step``    first momentum buffer (1-dampening)*g instead of g    sgdm
``ignores:NAME``                an option taken by name and ignored (the default's    every rule
                                numbers)
``state_float32``               state stored in float32 next to float64 params; also  every rule,
                                ``state_float32+KEY`` with each mistake above          float64
``scalars_float32``             per-step scalars (lr, betas, bias corrections, ...)   every rule,
                                computed in float32 next to float64 tensors           float64
==============================  ====================================================  ==========

The simplest explanation wins (a single mistake before float32 state plus one); "closest" is
named only within :data:`NEAR_MISS` tolerances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..registry import canonical_name, get_rule
from ..rules._base import round_to_bits, safe_divide
from ..rules.adams import AdamS
from ..rules.adamx import AdamX
from ..rules.alphaadam import AlphaAdam, alpha_for
from .adapters import PortError, PortRun, RulePort, run_case
from .compare import Comparison, compare_trajectories

# -- mutated reference rules ----------------------------------------------------------------


class _Mutant:
    """Mixin: ``mistake`` names the planted mistake; helpers shared by the mutants."""

    mistake: str = ""
    # Store the moments in float32 as soon as they are computed (a float32 buffer updated in
    # place): the update of the same step already sees the rounded value.
    state_store: bool | str = False
    state_rounding: str = "nearest"

    def _stored(self, x):
        if not self.state_store:
            return x
        narrowed = narrow_to_float32(x, self.state_rounding)
        # "native": the float32 buffer itself takes part in what follows (StateFloat32Arithmetic)
        return narrowed if self.state_store == "native" else narrowed.astype(np.asarray(x).dtype)

    def _decay_in(self, param, grad, dtype_type):
        """Weight decay before the update, as planted: returns (param, grad)."""
        wd = self.hyper.get("weight_decay", 0.0)
        if self.mistake == "wd_coupled":
            return param, grad + dtype_type(wd) * param
        if self.mistake == "wd_after_step":
            return param, grad
        return None

    def _denominator(self, second, eps):
        if self.mistake == "eps_inside_sqrt":
            return np.sqrt(second + eps)
        return np.sqrt(second) + eps


class AdamXMutant(_Mutant, AdamX):
    """AdamX with one planted mistake (``mistake`` attribute)."""

    def _update_tensor(self, param, grad, bufs, t, sc):
        f = param.dtype.type
        planted = self._decay_in(param, grad, f)
        if planted is not None:
            param, grad = planted
        elif self.hyper["weight_decay_mode"] == "l2":
            grad = grad + sc["l2"] * param
        else:
            param = param * sc["decay"]
        b1, b2 = self.hyper["betas"]
        if self.mistake == "missing_bias_correction":
            # Adam's constant betas without any correction, instead of the folded beta_t's.
            k1, k2, j1, j2 = f(b1), f(b2), f(1.0 - b1), f(1.0 - b2)
        else:
            k1, k2 = sc["beta1_t"], sc["beta2_t"]
            j1, j2 = sc["one_minus_beta1_t"], sc["one_minus_beta2_t"]
        exp_avg = k1 * bufs["exp_avg"] + j1 * grad
        exp_avg_sq = k2 * bufs["exp_avg_sq"] + j2 * (grad * grad)
        exp_avg = self._stored(round_to_bits(exp_avg, self.hyper["state_dtype"]))
        exp_avg_sq = self._stored(round_to_bits(exp_avg_sq, self.hyper["state_dtype"]))
        num, second = exp_avg, exp_avg_sq
        if self.mistake == "extra_bias_correction":
            # Adam's correction applied on top of the betas that already fold it in.
            num = num / f(1.0 - b1 ** t)
            second = second / f(1.0 - b2 ** t)
        param = param - sc["lr"] * safe_divide(num, self._denominator(second, sc["eps"]))
        if self.mistake == "wd_after_step":
            param = param * sc["decay"]
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, {}


class AdamSMutant(_Mutant, AdamS):
    """AdamS with one planted mistake (``mistake`` attribute)."""

    def _update_tensor(self, param, grad, bufs, t, sc):
        f = param.dtype.type
        planted = self._decay_in(param, grad, f)
        if planted is not None:
            param, grad = planted
        else:
            param = param * sc["decay"]
        c = sc["bias_correction1"]
        c_old = c
        if self.mistake == "adams_old_m_c_prev":
            b1 = self.hyper["betas"][0]
            # m_0 = 0, so the t = 1 value does not matter; avoid 0/0.
            c_old = f(1.0 - b1 ** (t - 1)) if t > 1 else f(1)
        exp_avg = self._stored(sc["beta1"] * bufs["exp_avg"] + sc["one_minus_beta1"] * grad)
        m_for_nu = (exp_avg if self.mistake == "adams_m_t_denominator" else bufs["exp_avg"])
        m_for_nu = m_for_nu / (c if self.mistake == "adams_m_t_denominator" else c_old)
        nu = sc["beta2"] * (m_for_nu * m_for_nu) + sc["one_minus_beta2"] * (grad * grad)
        m_hat = exp_avg / c
        param = param - sc["lr"] * safe_divide(m_hat, self._denominator(nu, sc["eps"]))
        if self.mistake == "wd_after_step":
            param = param * sc["decay"]
        return param, {"exp_avg": exp_avg}, {}


class AlphaAdamMutant(_Mutant, AlphaAdam):
    """AlphaAdam with one planted mistake (``mistake`` attribute)."""

    def scalars(self, t, lr):
        sc = dict(super().scalars(t, lr))
        b1, b2 = self.hyper["betas"]
        bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        if self.mistake == "missing_bias_correction":
            sc["step_size"], sc["denom_div"] = lr, 1.0
        elif self.mistake == "extra_bias_correction":
            # Both corrections in the direction (torch style) and the hf step size on top.
            sc["step_size"], sc["denom_div"] = lr * math.sqrt(bc2) / bc1 / bc1, math.sqrt(bc2)
        return sc

    def mask_product(self, exp_avg_prev, exp_avg, grad, t):
        if self.mistake == "alphaadam_mask_from_m_t" and t > 1:
            return exp_avg * grad   # the first step keeps the case's own rule
        return super().mask_product(exp_avg_prev, exp_avg, grad, t)

    def _update_tensor(self, param, grad, bufs, t, sc):
        h = self.hyper
        f = param.dtype.type
        planted = self._decay_in(param, grad, f)
        if planted is not None:
            param, grad = planted
        else:
            param = param * sc["decay"]
        exp_avg = self._stored(sc["beta1"] * bufs["exp_avg"] + sc["one_minus_beta1"] * grad)
        exp_avg_sq = self._stored(sc["beta2"] * bufs["exp_avg_sq"]
                                  + sc["one_minus_beta2"] * (grad * grad))
        score = self.mask_product(bufs["exp_avg"], exp_avg, grad, t)
        if self.mistake == "eps_inside_sqrt":
            u = safe_divide(exp_avg, np.sqrt(exp_avg_sq / (sc["denom_div"] * sc["denom_div"])
                                             + sc["eps"]))
        else:
            u = safe_divide(exp_avg, np.sqrt(exp_avg_sq) / sc["denom_div"] + sc["eps"])
        if score is None:
            mask = np.ones(param.shape, dtype=bool)
            alpha = 1.0 if t == 1 and h["mask_source"] == "m_prev" else alpha_for(
                h["alpha_rule"], mask.size, mask.size, h["density_floor"], h["alpha_max"], u, mask)
        else:
            mask = score > 0 if h["strict"] else score >= 0
            alpha = alpha_for(h["alpha_rule"], int(np.count_nonzero(mask)), mask.size,
                              h["density_floor"], h["alpha_max"], u, mask)
        phi = mask.astype(param.dtype)
        a = f(alpha)
        psi = phi / a + (f(1) - phi) * a if h["alpha_rule"] == "soft" else \
            a * phi + f(h["gamma"]) * (f(1) - phi)
        param = param - sc["step_size"] * (psi * u)
        if self.mistake == "wd_after_step":
            param = param * sc["decay"]
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, {}


class AdamFamilyEpsInsideSqrt(_Mutant):
    """Adam, AdamW and C-AdamW with eps inside the square root, sqrt(v/denom_div^2 + eps), or
    (``mistake = "eps_floor"``) eps as a floor, max(sqrt(v)/denom_div, eps)."""

    mistake = "eps_inside_sqrt"

    def _update_tensor(self, param, grad, bufs, t, sc):
        from ..rules.adam import adam_moments

        f = param.dtype.type
        if getattr(self, "decoupled", True):   # Adam couples (L2); AdamW and C-AdamW do not
            param = param * sc["decay"]
        else:
            grad = grad + sc["weight_decay"] * param
        exp_avg, exp_avg_sq = adam_moments(bufs["exp_avg"], bufs["exp_avg_sq"], grad, sc)
        div = f(sc.get("denom_div", 1.0))
        if self.mistake == "eps_floor":
            denom = np.maximum(np.sqrt(exp_avg_sq) / div, f(sc["eps"]))
        else:
            denom = np.sqrt(exp_avg_sq / (div * div) + sc["eps"])
        num = exp_avg
        if self.name == "cadamw":
            mask = (exp_avg * grad > 0).astype(param.dtype)
            if self.hyper["scaling"] == "count":
                mean = float(np.mean(mask, dtype=np.float64)) if mask.size else 1.0
                mask = mask / f(max(mean, 1e-3))
            else:
                mask = mask * f(mask.size / (float(mask.sum()) + 1.0))
            num = exp_avg * mask
        param = param - sc["step_size"] * safe_divide(num, denom)
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, {}


_MUTANTS = {"adamx": AdamXMutant, "adams": AdamSMutant, "alphaadam": AlphaAdamMutant}


def _baseline_eps_mutant(case, mistake="eps_inside_sqrt"):
    from ..registry import rule_info

    base = rule_info(case.rule).cls
    cls = type(f"{base.__name__}EpsInsideSqrt", (AdamFamilyEpsInsideSqrt, base), {})
    rule = cls(**case.hyper)
    rule.mistake = mistake
    return rule


# -- mistakes composed from any rule --------------------------------------------------------


class _Wrapped:
    """A rule-like object around a refopt rule: ``init``/``step`` and its buffer names."""

    def __init__(self, rule):
        self.rule = rule
        self.buffers = rule.buffers

    def init(self, params):
        return self.rule.init(params)


#: How close (in float64 ulps of the value) to a float32 rounding midpoint a value must be for
#: its last float32 bit to depend on the library: an fma or a sum in another order moves the
#: float64 result by an ulp or two, which changes the float32 rounding only next to a tie.
NEAR_TIE_ULPS = 16


def narrow_to_float32(x, rounding: str = "nearest") -> np.ndarray:
    """``x`` rounded to float32: to nearest, or with the values next to a tie (within
    :data:`NEAR_TIE_ULPS` float64 ulps of a float32 midpoint) rounded ``"up"`` or ``"down"``,
    the two extremes of what another library's last bit can be. Overflow to inf and the
    subnormal range are what every library stores, and are left as they are."""
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32's range is inf
        out = x.astype(np.float32)
        if rounding == "nearest" or x.dtype != np.float64:
            return np.asarray(out, dtype=np.float32)
        back = out.astype(np.float64)
        other = np.nextafter(out, np.where(x > back, np.float32(np.inf), np.float32(-np.inf)))
        middle = (back + other.astype(np.float64)) / 2
        normal = np.isfinite(out) & np.isfinite(other) & \
            (np.abs(out) >= np.finfo(np.float32).tiny)
        near = normal & (x != back) & \
            (np.abs(x - middle) <= NEAR_TIE_ULPS * np.spacing(np.abs(x)))
        moves = near & ((other > out) if rounding == "up" else (other < out))
        out = np.where(moves, other, out)
    return np.asarray(out, dtype=np.float32)


class StateRounded(_Wrapped):
    """The rule with its state stored in float32 between steps (float32 buffers next to
    float64 params, as libraries with a ``storage_dtype`` keep them); the arithmetic stays
    in the params' dtype."""

    def __init__(self, rule, rounding: str = "nearest"):
        super().__init__(rule)
        self.rounding = rounding

    def freedom(self) -> list:
        return [StateRounded(self.rule, r) for r in ("down", "up")]

    def step(self, params, grads, state, *, lr=None):
        params, state = self.rule.step(params, grads, state, lr=lr)
        narrowed = {b: tuple(narrow_to_float32(x, self.rounding).astype(np.asarray(x).dtype)
                             for x in getattr(state, b)) for b in self.buffers}
        return params, state._replace(**narrowed)


class StateFloat32Arithmetic(_Wrapped):
    """The rule with float32 buffers that also take part in the arithmetic as float32: a
    float32 tensor times a Python float stays float32 (in NumPy and in torch), so b1*m, m*m
    and sqrt(v) round to float32, while a product with the float64 gradient promotes to
    float64. This is a float32 buffer updated in place by ``mul_``/``add_`` next to float64
    params (ReaLLM-Forge's AdamS), the third way float32 state shows."""

    def __init__(self, rule, rounding: str = "nearest"):
        super().__init__(rule)
        self.rounding = rounding
        if isinstance(rule, _Mutant):
            rule.state_rounding = rounding

    def freedom(self) -> list:
        import copy

        return [StateFloat32Arithmetic(copy.copy(self.rule), r) for r in ("down", "up")]

    def init(self, params):
        state = self.rule.init(params)
        return state._replace(**{b: tuple(np.asarray(x).astype(np.float32)
                                          for x in getattr(state, b)) for b in self.buffers})

    def step(self, params, grads, state, *, lr=None):
        rule = self.rule
        lr = rule.hyper["lr"] if lr is None else lr
        new_params, steps = [], []
        new_bufs: dict = {b: [] for b in self.buffers}
        for i, (p, g) in enumerate(zip(params, grads)):
            old = {b: getattr(state, b)[i] for b in self.buffers}
            if g is None:
                new_params.append(p)
                steps.append(state.step[i])
                for b in self.buffers:
                    new_bufs[b].append(old[b])
                continue
            t = int(state.step[i]) + 1
            # Python floats, not float64 scalars: they must not promote the float32 buffers.
            sc = {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                  for k, v in rule.scalars(t, lr).items()}
            with np.errstate(all="ignore"):
                p_new, b_new, _ = rule._update_tensor(p, g, old, t, sc)
                for b in self.buffers:
                    new_bufs[b].append(narrow_to_float32(b_new[b], self.rounding))
            new_params.append(np.asarray(p_new).astype(p.dtype))
            steps.append(t)
        return new_params, state._replace(step=tuple(steps),
                                          **{b: tuple(v) for b, v in new_bufs.items()})


def _as_float32(value):
    if isinstance(value, (bool, np.bool_)) or value is None:
        return value
    if isinstance(value, (float, np.floating)):
        return np.float32(value)
    if isinstance(value, tuple):
        return tuple(_as_float32(v) for v in value)
    return value


def scalars_in_float32(rule, nudge: int = 0):
    """``rule`` with its per-step scalars (lr, betas, eps, weight decay, the bias corrections,
    the step size, 1 - lr*wd) computed in float32 arithmetic and applied to float64 tensors:
    the hyperparameters held as float32 0-d tensors (``torch.tensor(group["lr"])``), as in
    C-Optim's foreach path. NumPy keeps float32 through the rule's own scalar formulas (a
    Python number next to a float32 scalar is weak); each result is rounded to float32.
    ``nudge`` = +-1 moves each step-dependent scalar (a power, sqrt, exp or log of t: the bias
    corrections, their sqrt, the step size) one float32 ulp up or down: libraries evaluate
    those functions differently (torch's CPU float32 sqrt of a 0-d tensor is not correctly
    rounded, NumPy's is), while +, -, *, / of float32 numbers are the same everywhere. The
    result's ``freedom()`` is the two nudged runs."""
    import copy

    out = copy.copy(rule)
    compute = type(rule).scalars

    def scalars(t, lr):
        narrow = copy.copy(rule)
        narrow.hyper = {k: _as_float32(v) for k, v in rule.hyper.items()}
        with np.errstate(all="ignore"):
            sc = compute(narrow, t, np.float32(lr))
            later = compute(narrow, t + 1, np.float32(lr)) if nudge else sc
            return {k: (_nudged(np.float32(v), nudge if later[k] != v else 0)
                        if isinstance(v, (float, np.floating)) else v) for k, v in sc.items()}

    out.scalars = scalars
    out.freedom = lambda: [scalars_in_float32(rule, -1), scalars_in_float32(rule, 1)]
    return out


def _nudged(value: np.float32, nudge: int) -> float:
    if nudge and np.isfinite(value) and value != 0:
        value = np.nextafter(value, np.float32(np.inf if nudge > 0 else -np.inf))
    return float(value)


class _DecayMoved(_Wrapped):
    """The case's rule with weight_decay = 0 and the decay theta * (1 - lr*wd) applied by hand,
    before the step (``first``) or after it."""

    first = False

    def __init__(self, case):
        self.wd = _wd(case)
        self.lr0 = float(case.hyper.get("lr", 0.0))
        super().__init__(_with(case, weight_decay=0.0))

    def _decay(self, params, lr):
        from ..rules._base import decay_factor

        return [p * p.dtype.type(decay_factor(lr, self.wd)) for p in params]

    def step(self, params, grads, state, *, lr=None):
        lr = self.lr0 if lr is None else lr
        if self.first:
            return self.rule.step(self._decay(params, lr), grads, state, lr=lr)
        params, state = self.rule.step(params, grads, state, lr=lr)
        return self._decay(params, lr), state


class DecayAfterStep(_DecayMoved):
    """Decoupled weight decay applied after the update instead of before it."""


class DecoupledDecay(_DecayMoved):
    """Weight decay decoupled and applied first, theta * (1 - lr*wd), where the rule couples it
    to the gradient (SGD, Adam, AdaX's L2 mode)."""

    first = True


class SGDMDampenedFirstStep:
    """SGD with momentum whose first buffer is (1 - dampening)*g instead of g (torch starts
    the buffer at g)."""

    mistake = "sgdm_dampened_first_step"

    def _update_tensor(self, param, grad, bufs, t, sc):
        grad = grad + sc["weight_decay"] * param
        buf = sc["momentum"] * bufs["momentum_buffer"] + sc["one_minus_dampening"] * grad
        direction = grad + sc["momentum"] * buf if self.hyper["nesterov"] else buf
        param = param - sc["lr"] * direction
        return param, {"momentum_buffer": buf}, {}


class AdaXEpsInsideSqrt:
    mistake = "eps_inside_sqrt"

    def _update_tensor(self, param, grad, bufs, t, sc):
        if self.hyper["weight_decay_mode"] == "l2":
            grad = grad + sc["l2"] * param
        else:
            param = param * sc["decay"]
        exp_avg = sc["beta1"] * bufs["exp_avg"] + sc["one_minus_beta1"] * grad
        exp_avg_sq = sc["growth"] * bufs["exp_avg_sq"] + sc["b"] * (grad * grad)
        param = param - sc["step_size"] * safe_divide(exp_avg, np.sqrt(exp_avg_sq + sc["eps"]))
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, {}


def _subclass_mutant(mixin, case):
    from ..registry import rule_info

    base = rule_info(case.rule).cls
    return type(f"{base.__name__}{mixin.__name__}", (mixin, base), {})(**case.hyper)


class CoupledDecay(_Wrapped):
    """Weight decay as L2: wd*theta added to the gradient, no decoupled decay."""

    def __init__(self, case):
        self.wd = _wd(case)
        super().__init__(_with(case, weight_decay=0.0))

    def step(self, params, grads, state, *, lr=None):
        grads = [None if g is None else g + p.dtype.type(self.wd) * p
                 for p, g in zip(params, grads)]
        return self.rule.step(params, grads, state, lr=lr)


def _mutant(case, mistake: str, **changes):
    cls = _MUTANTS[canonical_name(case.rule)]
    rule = cls(**{**case.hyper, **changes})
    rule.mistake = mistake
    return rule


def _with(case, rule_name=None, **changes):
    import warnings

    from .._validation import HyperparameterWarning

    # The case's options stay as given; the mutation may make some of them idle (e.g. first_step
    # under mask_source="ones"): that is the mutation, not the user's choice, so no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HyperparameterWarning)
        return get_rule(rule_name or case.rule, **{**case.hyper, **changes})


# -- the catalogue --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    """One known mistake: when it applies to a case and how to build the mutated reference."""

    key: str
    title: str
    rules: tuple
    applies: Callable
    build: Callable


def _wd(case) -> float:
    return float(case.hyper.get("weight_decay", 0.0) or 0.0)


def _decoupled(case) -> bool:
    return _wd(case) > 0 and case.hyper.get("weight_decay_mode", "decoupled") == "decoupled"


def _eps(case) -> bool:
    return float(case.hyper.get("eps") or 0.0) > 0


def _adamw_hyper(case) -> dict:
    return {k: case.hyper[k] for k in ("lr", "betas", "eps", "weight_decay") if k in case.hyper}


def _bc(case):
    return case.hyper.get("bias_correction")


def _has(case, key, value) -> bool:
    return key in case.hyper and case.hyper[key] == value


BASELINES = ("adam", "adamw", "cadamw")
DECOUPLED_BASELINES = ("adamw", "cadamw")


MISTAKES: tuple = (
    Mistake("eps_inside_sqrt", "eps inside the square root: sqrt(v + eps) instead of sqrt(v) + eps",
            ("adamx", "adams", "alphaadam"), _eps,
            lambda c: _mutant(c, "eps_inside_sqrt")),
    Mistake("adams_m_t_denominator",
            "AdamS denominator from the updated m_t instead of m_{t-1}: "
            "nu = b2*m_t^2 + (1-b2)*g^2 (as in ReaLLM-Forge)",
            ("adams",), lambda c: True, lambda c: _mutant(c, "adams_m_t_denominator")),
    Mistake("adams_old_m_c_prev",
            "AdamS code form with the old momentum corrected by 1-b1^(t-1) instead of 1-b1^t "
            "(the official code divides m_{t-1} by 1-b1^t; do not 'fix' it)",
            ("adams",), lambda c: bool(c.hyper.get("bias_correction")),
            lambda c: _mutant(c, "adams_old_m_c_prev")),
    Mistake("missing_bias_correction",
            "missing bias correction (for adams: the paper form, bias_correction=False, run where "
            "the case asks for the code form)", ("adams",),
            lambda c: bool(c.hyper.get("bias_correction")),
            lambda c: _with(c, bias_correction=False)),
    Mistake("extra_bias_correction",
            "extra bias correction (for adams: the official-code form, bias_correction=True, run "
            "where the case asks for the paper form)", ("adams",),
            lambda c: not c.hyper.get("bias_correction"),
            lambda c: _with(c, bias_correction=True)),
    Mistake("missing_bias_correction",
            "missing bias correction: constant betas b1, b2 instead of AdamX's folded "
            "b1_t = (b1-b1^t)/(1-b1^t) and b2_t", ("adamx",), lambda c: True,
            lambda c: _mutant(c, "missing_bias_correction")),
    Mistake("extra_bias_correction",
            "extra bias correction: Adam's m/(1-b1^t), v/(1-b2^t) on top of AdamX's folded betas",
            ("adamx",), lambda c: True, lambda c: _mutant(c, "extra_bias_correction")),
    Mistake("missing_bias_correction",
            "missing bias correction: step size lr and denominator sqrt(v) + eps",
            ("alphaadam",), lambda c: True, lambda c: _mutant(c, "missing_bias_correction")),
    Mistake("extra_bias_correction",
            "extra bias correction: m_hat/(sqrt(v_hat) + eps) with the hf step size "
            "lr*sqrt(1-b2^t)/(1-b1^t) on top", ("alphaadam",), lambda c: True,
            lambda c: _mutant(c, "extra_bias_correction")),
    Mistake("wd_coupled", "weight decay coupled (L2: weight_decay*theta added to the gradient) "
            "instead of decoupled theta*(1 - lr*weight_decay)", ("adamx", "adams", "alphaadam"),
            _decoupled, lambda c: _mutant(c, "wd_coupled")),
    Mistake("wd_after_step", "decoupled weight decay applied after the step instead of before it",
            ("adamx", "adams", "alphaadam"), _decoupled, lambda c: _mutant(c, "wd_after_step")),
    Mistake("adamx_naive_coef", "AdamX's beta2_t in the naive form (1 - b2^((1-b2)(t-1))) / "
            "(1 - b2^((1-b2)t)), which cancels for b2 near 1, where the case has the expm1 form "
            "(the official AdamNX code; declare --variant coef_form=naive if the port means it)",
            # Visible in float64 only where the pow form loses more than ~6 digits to the
            # cancellation (1 - b2 <= 1e-3); at b2 = 0.99 it stays within rtol 1e-10.
            ("adamx",), lambda c: c.hyper.get("coef_form", "expm1") == "expm1"
            and str(c.dtype) == "float64" and 1.0 - float(c.hyper["betas"][1]) <= 1e-3,
            lambda c: _with(c, coef_form="naive")),
    Mistake("adamx_expm1_coef", "AdamX's beta2_t in the stable expm1 form where the case has "
            "the naive form (coef_form='naive')", ("adamx",),
            lambda c: c.hyper.get("coef_form") == "naive", lambda c: _with(c, coef_form="expm1")),
    Mistake("alphaadam_mask_from_m_t",
            "mask from the updated m_t (m_t*g > 0) instead of m_{t-1}: this is Cautious "
            "(C-AdamW, arXiv 2411.16085), not AlphaAdam", ("alphaadam",),
            lambda c: c.hyper.get("mask_source") == "m_prev",
            # Two readings: m_t from step 2 on (first step as the case), or C-AdamW throughout.
            lambda c: [_mutant(c, "alphaadam_mask_from_m_t"), _with(c, mask_source="m_t")]),
    Mistake("alphaadam_no_mask", "no mask and no alpha: plain AdamW", ("alphaadam",),
            lambda c: c.hyper.get("mask_source") != "ones",
            lambda c: _with(c, mask_source="ones", alpha_rule="none")),
    Mistake("plain_adamw", "plain AdamW (torch.optim.AdamW) with the same lr, betas, eps and "
            "weight_decay: a different algorithm", ("adamx", "adams"), lambda c: True,
            lambda c: get_rule("adamw", **_adamw_hyper(c))),
    # -- the baselines (adam, adamw, cadamw) and the eps styles of the Adam family --------
    Mistake("eps_inside_sqrt", "eps inside the square root: sqrt(v_hat + eps) instead of "
            "sqrt(v_hat) + eps", BASELINES, _eps, _baseline_eps_mutant),
    Mistake("eps_floor", "eps as a floor, max(sqrt(v_hat), eps), instead of added, "
            "sqrt(v_hat) + eps (heavyball's default clamp)", BASELINES, _eps,
            lambda c: _baseline_eps_mutant(c, "eps_floor")),
    Mistake("torch_style_eps", "torch-style eps: sqrt(v)/sqrt(1-b2^t) + eps with step size "
            "lr/(1-b1^t), where the case has HF style (sqrt(v) + eps, step size "
            "lr*sqrt(1-b2^t)/(1-b1^t)); if the port means it, declare --variant "
            "bias_correction=torch", BASELINES + ("alphaadam",),
            lambda c: _bc(c) == "hf" and _eps(c), lambda c: _with(c, bias_correction="torch")),
    Mistake("hf_style_eps", "HF-style eps: sqrt(v) + eps with step size "
            "lr*sqrt(1-b2^t)/(1-b1^t), where the case has torch style (sqrt(v)/sqrt(1-b2^t) + "
            "eps); if the port means it, declare --variant bias_correction=hf",
            BASELINES + ("alphaadam",), lambda c: _bc(c) == "torch" and _eps(c),
            lambda c: _with(c, bias_correction="hf")),
    Mistake("missing_bias_correction", "missing bias correction: step size lr and denominator "
            "sqrt(v) + eps", ("adam", "adamw"), lambda c: _bc(c) in ("torch", "hf"),
            lambda c: _with(c, bias_correction="none")),
    Mistake("wd_after_step", "decoupled weight decay applied after the step instead of before it",
            DECOUPLED_BASELINES, lambda c: _wd(c) > 0, DecayAfterStep),
    Mistake("wd_coupled", "weight decay coupled (L2: weight_decay*theta added to the gradient) "
            "instead of decoupled theta*(1 - lr*weight_decay)", DECOUPLED_BASELINES,
            lambda c: _wd(c) > 0, CoupledDecay),
    Mistake("wd_decoupled", "weight decay decoupled (AdamW) where the case asks for L2 coupled "
            "to the gradient (Adam)", ("adam",), lambda c: _wd(c) > 0,
            lambda c: get_rule("adamw", **_adamw_hyper(c),
                               bias_correction=c.hyper.get("bias_correction", "torch"))),
    Mistake("wd_decoupled", "weight decay decoupled, theta*(1 - lr*weight_decay) first, where "
            "the case couples it to the gradient (L2)", ("sgdm", "adax"),
            lambda c: _wd(c) > 0 and c.hyper.get("weight_decay_mode", "l2") == "l2",
            DecoupledDecay),
    Mistake("wd_coupled", "weight decay coupled (L2) where the case decouples it", ("adax",),
            lambda c: _wd(c) > 0 and c.hyper.get("weight_decay_mode") == "decoupled",
            CoupledDecay),
    Mistake("eps_inside_sqrt", "eps inside the square root: sqrt(v + eps) instead of "
            "sqrt(v) + eps", ("adax",), _eps, lambda c: _subclass_mutant(AdaXEpsInsideSqrt, c)),
    Mistake("sgdm_dampened_first_step", "the first momentum buffer dampened, (1-dampening)*g, "
            "instead of g (torch.optim.SGD starts it at g)", ("sgdm",),
            lambda c: float(c.hyper.get("dampening") or 0.0) > 0,
            lambda c: _subclass_mutant(SGDMDampenedFirstStep, c)),
    Mistake("count_plus_one_rescale", "rescale n/(k+1) (the original C-Optim 'count+1') where "
            "the case has 1/max(k/n, floor) ('count')", ("cadamw",),
            lambda c: _has(c, "scaling", "count"), lambda c: _with(c, scaling="count+1")),
    Mistake("count_rescale", "rescale 1/max(k/n, floor) ('count', current C-Optim code) where "
            "the case has n/(k+1) ('count+1')", ("cadamw",),
            lambda c: _has(c, "scaling", "count+1"), lambda c: _with(c, scaling="count")),
    Mistake("count_plus_one_rescale", "alpha from n/(k+1) ('count+1') where the case has "
            "alpha_rule='count'", ("alphaadam",), lambda c: _has(c, "alpha_rule", "count"),
            lambda c: _with(c, alpha_rule="count+1")),
    Mistake("count_rescale", "alpha from 1/max(k/n, floor) ('count') where the case has "
            "alpha_rule='count+1'", ("alphaadam",), lambda c: _has(c, "alpha_rule", "count+1"),
            lambda c: _with(c, alpha_rule="count")),
)

#: Options a port may take by name and then ignore: each, reset to the rule's default, is a
#: candidate (the port's numbers are the default variant's). Not the common hyperparameters,
#: and not the options whose reset is already a named mistake above (adams' bias_correction is
#: missing_bias_correction, alphaadam's and the baselines' is hf_style_eps, cadamw's scaling and
#: alphaadam's count+1 are count_rescale).
_COMMON_HYPER = ("lr", "betas", "eps", "weight_decay", "nonfinite")
_NAMED_RESETS = {"bias_correction": None, "scaling": None, "alpha_rule": "count+1",
                 "coef_form": None}


def _ignored_option_mistakes(case) -> list:
    from .adapters import _equal, rule_defaults

    defaults = rule_defaults(case)
    out = []
    for key, value in case.hyper.items():
        if key in _COMMON_HYPER or key not in defaults or value is None \
                or _equal(value, defaults[key]):
            continue
        if key in _NAMED_RESETS and _NAMED_RESETS[key] in (None, value):
            continue
        out.append(Mistake(f"ignores:{key}", f"the option {key}={value!r} ignored: the port's "
                           f"numbers are those of {key}={defaults[key]!r}, the default",
                           (canonical_name(case.rule),), lambda c: True,
                           lambda c, k=key, d=defaults[key]: _with(c, **{k: d})))
    return out


def _in_place(rule, mode=True):
    """``rule`` with its moments stored in float32 the moment they are computed (a float32
    buffer updated in place), where refopt has a mutant of it; else None. ``mode="native"``
    keeps the stored moment a float32 array for the rest of the step."""
    import copy
    import warnings

    from .._validation import HyperparameterWarning

    if isinstance(rule, _Mutant):
        out = copy.copy(rule)
    elif type(rule) in (AdamX, AdamS, AlphaAdam):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HyperparameterWarning)
            out = _MUTANTS[rule.name](**rule.hyper)
        out.mistake = ""
    else:
        return None
    out.state_store = mode
    if mode is True:
        def freedom(base=out):
            alts = []
            for rounding in ("down", "up"):
                alt = copy.copy(base)
                alt.state_rounding = rounding
                alts.append(alt)
            return alts
        out.freedom = freedom
    return out


def _float32_state_readings(built) -> list:
    """The three ways a library keeps float32 state: rounded after the step (the next step
    sees it), updated in place (the same step's update sees it already), and updated in place
    with float32 arithmetic wherever no float64 operand promotes it."""
    out = []
    for rule in (built if isinstance(built, list) else [built]):
        out.append(StateRounded(rule))
        inplace = _in_place(rule)
        if inplace is not None:
            out.append(inplace)
        if hasattr(rule, "_update_tensor") and hasattr(rule, "scalars"):
            out.append(StateFloat32Arithmetic(_in_place(rule, "native") or rule))
    return out


def _state_rounded(mistake: Mistake) -> Mistake:
    """The same mistake with float32 state next to float64 params."""
    def build(c, inner=mistake.build):
        return _float32_state_readings(inner(c))
    return Mistake(f"state_float32+{mistake.key}", "state stored in float32 (params float64) "
                   "and " + mistake.title, mistake.rules, mistake.applies, build)


STATE_FLOAT32 = Mistake("state_float32", "state (exp_avg, exp_avg_sq) stored in float32 next to "
                        "float64 params, as libraries with a float32 storage_dtype keep it",
                        ("*",), lambda c: str(c.dtype) == "float64",
                        lambda c: _float32_state_readings(_with(c)))


SCALARS_FLOAT32 = Mistake(
    "scalars_float32", "per-step scalars in float32 next to float64 tensors: lr, betas, eps and "
    "weight_decay held as float32 0-d tensors (torch.tensor(group['lr'])), so 1-b1, 1-b2, the "
    "bias corrections 1-b^t and their sqrt, the step size and 1-lr*wd are float32 "
    "(C-Optim's foreach path)", ("*",), lambda c: str(c.dtype) == "float64",
    lambda c: scalars_in_float32(_with(c)))


def mistakes_for(case) -> list:
    """The catalogue for ``case``: the rule's known mistakes, the options a port may ignore,
    and, for float64 cases, float32 scalars, and float32 state alone and combined with each of
    them."""
    rule = canonical_name(case.rule)
    single = [m for m in MISTAKES if rule in m.rules and m.applies(case)]
    single += _ignored_option_mistakes(case)
    if str(case.dtype) != "float64":
        return single
    if not RULE_HAS_STATE.get(rule, True):
        return single + [SCALARS_FLOAT32]
    return single + [SCALARS_FLOAT32, STATE_FLOAT32] + [_state_rounded(m) for m in single]


#: Rules whose state is worth narrowing (SGD without momentum has none).
RULE_HAS_STATE: dict = {}


# -- matching -------------------------------------------------------------------------------
_MATCH_RTOL = {"float64": 1e-9, "float32": 2e-5}


def matching_tolerance(case) -> dict:
    """The tolerance within which a port "matches" a mutant.

    The case's own tolerance when it is an ``allclose`` one; for ``bitwise``/``max_ulp`` cases a
    port in another framework cannot be expected to reproduce a mutant bit for bit, so an
    allclose tolerance at a few ulps per step is used (float64 1e-9, float32 2e-5 relative).
    """
    tol = dict(case.tolerance or {})
    if tol.get("mode") == "allclose" and tol.get("rtol") is not None:
        return tol
    rtol = _MATCH_RTOL[str(case.dtype)]
    return {"mode": "allclose", "rtol": rtol, "atol": rtol * 1e-3,
            "pointwise_horizon": tol.get("pointwise_horizon")}


#: A failing port is said to be "close" to a mistake only within this many tolerances.
NEAR_MISS = 10.0


@dataclass
class Candidate:
    mistake: Mistake
    comparison: Comparison | None
    error: str | None = None
    excess: float | None = None   # diagnose_after_horizon: |loss - mistake's| / tolerance

    @property
    def score(self) -> float:
        return math.inf if self.comparison is None else self.comparison.score


@dataclass
class Diagnosis:
    """The known mistakes that match a failing port (best first) and a one-line verdict."""

    matches: list = field(default_factory=list)      # Candidate
    closest: Candidate | None = None
    hints: list = field(default_factory=list)
    #: True when the port matched the reference up to the pointwise horizon and the mistakes
    #: were told apart by the final loss after it (:func:`diagnose_after_horizon`).
    after_horizon: bool = False

    @property
    def keys(self) -> list:
        return [c.mistake.key for c in self.matches]

    @property
    def message(self) -> str:
        if self.after_horizon:
            return self._after_horizon_message()
        parts = []
        if self.matches:
            parts.append("matches known mistake: " + "; or ".join(
                f"{c.mistake.title} [{c.mistake.key}]" for c in self.matches))
        else:
            text = "no known mistake matches"
            if self.closest is not None and math.isfinite(self.closest.score) \
                    and self.closest.score <= NEAR_MISS:
                text += (f" (closest: {self.closest.mistake.key}, "
                         f"{self.closest.score:.3g}x the tolerance)")
            else:
                # Naming a candidate hundreds of tolerances off would mislead.
                text += f"; none comes within {NEAR_MISS:g}x of the tolerance"
            parts.append(text)
        parts.extend(self.hints)
        return ". ".join(parts)

    def _after_horizon_message(self) -> str:
        if self.matches:
            text = ("after the pointwise horizon, the port's final loss is the one of known "
                    "mistake: " + "; or ".join(f"{c.mistake.title} [{c.mistake.key}]"
                                               for c in self.matches)
                    + " (final loss within the invariant's tolerance of that mistake's; weaker "
                      "evidence than a pointwise match")
            if len(self.matches) > 1:
                text += f": {len(self.matches)} mistakes give the same final loss"
            text += ")"
        else:
            text = ("after the pointwise horizon, no known mistake gives the port's final "
                    "loss")
            if self.closest is not None and self.closest.excess is not None:
                text += (f" (closest: {self.closest.mistake.key}, "
                         f"{self.closest.excess:.3g}x the tolerance)")
        return ". ".join([text] + list(self.hints))


def user_rule_hints(case) -> list:
    """For a user rule's case: what the diagnosis could and could not try."""
    from ..registry import is_builtin

    if is_builtin(case.rule):
        return []
    return ["A user rule: refopt tried only its generic mistakes (float32 per-step scalars, "
            "float32 state); the first divergence above says where the port departs"]


def name_collision_hints(case, run: PortRun | None, port_name: str = "") -> list:
    """Signs that the port implements a different algorithm under the same name."""
    hints = []
    rule = canonical_name(case.rule)
    if rule == "adams":
        keeps_v = run is not None and any(
            k in run.state or k in run.other_buffers for k in ("exp_avg_sq", "max_exp_avg_sq"))
        if "pytorch_optimizer" in port_name or keeps_v:
            hints.append(
                "name collision: refopt's adams is AdamS of Zhang, Wang, Chen 2025 "
                "(arXiv 2505.16363: no second moment, denominator from m_{t-1} and g_t); "
                + ("the port keeps a second moment (exp_avg_sq), " if keeps_v else "")
                + "pytorch_optimizer's AdamS is a different algorithm, 'Adam with stable weight "
                "decay' (Xie, Sato, Sugiyama, arXiv 2011.11152)")
    if rule == "adamx" and "1904.03590" in port_name:
        hints.append("name collision: Tran & Phong's AdamX (arXiv 1904.03590) is unrelated to "
                     "AdamX/AdamNX of Zhu, Xiao, Min (arXiv 2511.13465)")
    return hints


def _components(key: str) -> int:
    return key.count("+") + 1


def _nearest_in_envelope(center: dict, alternatives: list, actual: dict) -> dict:
    """Per element, the point of the envelope of the realisations closest to the port's value
    (the port's own value where it lies inside).

    The envelope is center +- w, w at a recorded row being the largest, over the alternatives,
    total variation of (alternative - center) up to that row: a library may round one step's
    last bit up and the next one's down, and the effects of steps whose updates have opposite
    signs add up in either order, which the alternatives (all up, all down) alone do not cover.
    """
    out = {}
    for name, tensors in center.items():
        if name not in actual:
            continue
        rows = []
        for i, c in enumerate(tensors):
            c64 = np.asarray(c, np.float64)
            a = np.asarray(actual[name][i], np.float64)
            if a.shape != c64.shape or c64.ndim == 0:
                rows.append(c)
                continue
            width = np.zeros_like(c64)
            with np.errstate(invalid="ignore", over="ignore"):
                for alt in alternatives:
                    diff = np.asarray(alt[name][i], np.float64) - c64
                    steps = np.abs(np.diff(diff, axis=0, prepend=diff[:1] * 0))
                    width = np.maximum(width, np.cumsum(np.where(np.isfinite(steps), steps, 0.0),
                                                        axis=0))
                inside = np.clip(a, c64 - width, c64 + width)
            rows.append(np.where(np.isfinite(c64), inside, c64).astype(np.asarray(c).dtype))
        out[name] = rows
    return out


#: A mutant's rounding envelope is tried only where it misses by less than this many
#: tolerances: float32 last bits (2^-24 relative) against a float64 rtol of 1e-10 are about
#: 1e3 per step; a wrong mistake misses by 1e8 or more.
FREEDOM_REACH = 1e6


def _match(mutant, expected: dict, actual: dict, case, tolerance: dict) -> Comparison:
    """Compare a mutant's histories with the port's.

    A mutant with ``freedom()`` (float32 scalars or float32 state) is one of several equally
    faithful realisations of its mistake: which way a library rounds the last float32 bit (an
    fma or a sum in another order next to a tie, a sqrt that is not correctly rounded) is not
    part of the mistake. The port is then compared, under the case's tolerance, with the
    nearest point of the elementwise envelope of the realisations.
    """
    actual = {k: v for k, v in actual.items() if k in expected}
    plain = compare_trajectories(expected, actual, case.steps, tolerance, case.dtype)
    freedom = getattr(mutant, "freedom", None)
    if freedom is None or plain.passed or not plain.score < FREEDOM_REACH:
        return plain
    alternatives = [run_case(RulePort(alt, rebuild=False), case).as_histories()
                    for alt in freedom()]
    enveloped = compare_trajectories(_nearest_in_envelope(expected, alternatives, actual),
                                     actual, case.steps, tolerance, case.dtype)
    enveloped.within_envelope = True
    return enveloped


def _state_could_be_float32(run: PortRun) -> bool:
    """False when the port exposes a state buffer with a finite value float32 cannot hold
    exactly: then no float32-state reading can explain it (and they need not be run)."""
    for tensors in run.state.values():
        for x in tensors:
            x = np.asarray(x)
            if x.dtype != np.float64 or not x.size:
                continue
            finite = x[np.isfinite(x)]
            with np.errstate(over="ignore"):
                if np.any(finite.astype(np.float32).astype(np.float64) != finite):
                    return False
    return True


def diagnose(case, run: PortRun, port_name: str = "") -> Diagnosis:
    """Which known mistake reproduces ``run`` (the port's trajectory on ``case``)?"""
    tol = matching_tolerance(case)
    actual = run.as_histories()
    candidates = []
    narrow_state = _state_could_be_float32(run)
    for mistake in mistakes_for(case):
        if not narrow_state and mistake.key.startswith("state_float32"):
            continue   # the port's state holds values float32 cannot: no float32 state
        try:
            built = mistake.build(case)
            best = None
            # A mistake may have several readings; the one closest to the port counts.
            for mutant in (built if isinstance(built, list) else [built]):
                expected = run_case(RulePort(mutant, rebuild=False), case).as_histories()
                cmp = _match(mutant, expected, actual, case, tol)
                if best is None or cmp.score < best.score:
                    best = cmp
            candidates.append(Candidate(mistake, best))
        except (ValueError, TypeError, FloatingPointError, PortError) as exc:
            candidates.append(Candidate(mistake, None, f"{type(exc).__name__}: {exc}"))
    candidates.sort(key=lambda c: c.score)
    hints = (frozen_tensor_hints(case, run) + name_collision_hints(case, run, port_name)
             + user_rule_hints(case))
    matches = [c for c in candidates if c.comparison is not None and c.comparison.passed]
    if matches:
        # The simplest explanation: one mistake before float32 state plus one.
        fewest = min(_components(c.mistake.key) for c in matches)
        matches = [c for c in matches if _components(c.mistake.key) == fewest]
        # A mistake reproduced as it is beats one matched only within a rounding envelope.
        exact = [c for c in matches if not getattr(c.comparison, "within_envelope", False)]
        matches = exact or matches
    return Diagnosis(matches=matches, closest=candidates[0] if candidates else None,
                     hints=hints)


def diagnose_after_horizon(case, run: PortRun, port_name: str = "") -> Diagnosis | None:
    """Which known mistake gives the port's final loss, for a port that matches the reference
    at every step up to the pointwise horizon and fails the final_loss invariant after it?

    Up to the horizon every mutant that differs from the reference differs from the port too,
    so the pointwise diagnosis cannot help (a float32 case whose horizon is 0, say: rounding
    alone makes trajectories part there). Each mutant is run on the same inputs and its final
    loss compared with the port's under the invariant's own tolerance (atol + rtol * |loss|).
    Returns None when the case has no final_loss invariant or the final params were not
    recorded.
    """
    from .invariants import _objective, _value, final_loss_value

    spec = next((s for s in (case.tolerance or {}).get("invariants") or []
                 if s.get("id") == "final_loss"), None)
    objective = _objective(case)
    if spec is None or objective is None or int(case.steps[-1]) != int(case.n_steps):
        return None
    rtol, atol = float(spec["rtol"]), float(spec.get("atol") or 0.0)
    port_loss = final_loss_value(objective, run.params)
    golden = _value(spec["value"])
    if not math.isfinite(port_loss) or abs(port_loss - golden) <= atol + rtol * abs(golden):
        return None     # no final loss to match, or it is not what failed
    candidates = []
    for mistake in mistakes_for(case):
        try:
            built = mistake.build(case)
            best = math.inf
            for mutant in (built if isinstance(built, list) else [built]):
                loss = final_loss_value(objective, run_case(RulePort(mutant, rebuild=False),
                                                            case).params)
                allowed = atol + rtol * abs(loss)
                # A mutant whose own final loss passes the invariant cannot explain its failure
                # (on this case it is indistinguishable from the reference).
                explains = abs(loss - golden) > atol + rtol * abs(golden)
                if math.isfinite(loss) and allowed > 0 and explains:
                    best = min(best, abs(port_loss - loss) / allowed)
            candidates.append(Candidate(mistake, None, excess=best))
        except (ValueError, TypeError, FloatingPointError, PortError) as exc:
            candidates.append(Candidate(mistake, None, f"{type(exc).__name__}: {exc}"))
    # Mutants that cannot explain the failure (excess inf) are neither matches nor closest.
    ranked = sorted((c for c in candidates if c.excess is not None and math.isfinite(c.excess)),
                    key=lambda c: c.excess)
    matches = [c for c in ranked if c.excess <= 1.0]
    if matches:
        fewest = min(_components(c.mistake.key) for c in matches)
        matches = [c for c in matches if _components(c.mistake.key) == fewest]
    return Diagnosis(matches=matches, closest=ranked[0] if ranked else None,
                     hints=name_collision_hints(case, run, port_name), after_horizon=True)


def frozen_tensor_hints(case, run: PortRun) -> list:
    """A tensor the port never moved while the reference did: a whole tensor skipped (a 0-d
    tensor left out of a fused or compiled path, a None-grad check gone wrong)."""
    from .adapters import expected_histories

    expected = expected_histories(case)["param"]
    frozen = []
    for i, (got, want) in enumerate(zip(run.params, expected)):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape[0] < 2 or got.size == 0 or got.shape != want.shape:
            continue
        still = all(np.array_equal(got[k], got[0], equal_nan=True) for k in range(got.shape[0]))
        moved = not all(np.array_equal(want[k], want[0], equal_nan=True)
                        for k in range(want.shape[0]))
        if still and moved:
            shape = "0-d " if got.ndim == 1 else ""
            frozen.append(f"param.{i} ({shape}shape {list(got.shape[1:])})")
    if not frozen:
        return []
    return [f"the port never changed {', '.join(frozen)} while the reference moved it: a tensor "
            f"skipped by the port"]


def replace_tolerance(case, **changes):
    """A copy of ``case`` with tolerance entries changed (used by tests and ``compare``)."""
    return replace(case, tolerance={**case.tolerance, **changes})
