"""The golden cases: every rule, variant, edge case and horizon the suite pins down.

Each :class:`CaseSpec` fixes the rule and all its hyperparameters, the dtype, the initial params
(several tensors of awkward shapes: a 0-d scalar, a 1-element tensor, a 2x3 matrix, a 7-vector)
and either an explicit gradient stream or a closed-loop objective. :func:`catalogue` returns them
in a fixed order; nothing here depends on the clock or the machine.

Inputs are drawn from ``numpy.random.default_rng(seed)`` (PCG64) as *dyadic* numbers
``k * 2**-22`` with ``|k| < 2**23``: exactly representable in float32, so the float32 twin of a
case sees the very same initial params and gradients as the float64 one. The drawn values are
stored in the payload, so a port never needs the generator.

Case names follow ``<rule>_<variant>_<scenario>_<dtype>`` (Wycheproof style); no field contains
an underscore.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..registry import RULES

STANDARD_SHAPES = [(), (1,), (2, 3), (7,)]
LONG_SHAPES = [(), (3,)]

#: Namespaced label of the source form of each rule (golden-vectors.md: never a bare "AdamS").
VARIANT_IDS = {
    "adamx": "adamnx/official@b68c319",
    "adams": None,  # adams/paper or adams/official, from bias_correction
    "alphaadam": "alphaadam/paper-v1",
    "adam": "adam/torch.optim.Adam",
    "adamw": "adamw/torch.optim.AdamW",
    "cadamw": "cautious/c-optim",
    "adax": "adax/switchablenorms",
    "sgdm": "sgdm/torch.optim.SGD",
}

#: Wycheproof-style notes: each flag maps to the bug it targets and what a port sees.
FLAG_NOTES: dict[str, dict[str, str]] = {
    "SpecTable": {"bug_type": "wrong update rule",
                  "description": "the hand-checked table printed in the rule's spec",
                  "effect": "any formula slip (epsilon placement, bias correction, order) shows "
                            "in the first printed digits"},
    "Defaults": {"bug_type": "wrong default hyperparameter",
                 "description": "every hyperparameter at the rule's documented default",
                 "effect": "a port whose defaults differ fails from step 1"},
    "MultiTensor": {"bug_type": "state mixed across tensors; shape handling",
                    "description": "several tensors: 0-d scalar, 1-element, 2x3, 7-vector",
                    "effect": "a port keying state by shape or flattening wrongly diverges"},
    "ScalarTensor": {"bug_type": "0-d tensor mishandled",
                     "description": "a 0-d parameter", "effect": "crash or broadcast error"},
    "ZeroSizeTensor": {"bug_type": "0-size tensor mishandled (pytorch issue 100701)",
                       "description": "a parameter with zero elements next to a normal one",
                       "effect": "division by a zero count, crash, or NaN in the other tensor"},
    "FirstStep": {"bug_type": "t = 1 special case",
                  "description": "the first step, where m_0 = v_0 = 0 and bias corrections are "
                                 "extreme", "effect": "off-by-one in t or the corrections"},
    "ZeroGrad": {"bug_type": "0/0 or eps handling",
                 "description": "all-zero gradients (at t = 1 and later)",
                 "effect": "NaN (0/0) or a step where none is due; t must still advance"},
    "EpsZero": {"bug_type": "0/0 convention",
                "description": "eps = 0 with zero gradients: refopt defines 0/0 := 0",
                "effect": "a port that yields NaN differs only by this convention (acceptable)"},
    "EmptyMask": {"bug_type": "AlphaAdam strict mask at t = 1 (m_0 = 0)",
                  "description": "first_step='as_is': the m_prev mask is empty at t = 1",
                  "effect": "only weight decay acts at step 1; norm alpha is 0/0 -> 1"},
    "MaskTie": {"bug_type": "strict vs non-strict sign test",
                "description": "m * g = 0 exactly in some coordinates",
                "effect": "a port testing >= instead of > (or sign bits) keeps other coordinates"},
    "SignFlip": {"bug_type": "mask source (m_prev vs m_t), sign logic",
                 "description": "gradients that flip sign so momentum and gradient disagree",
                 "effect": "a Cautious (m_t) port or a wrong mask passes smooth streams but not "
                           "this one"},
    "ExtremeMagnitude": {"bug_type": "overflow/underflow, eps dominance",
                         "description": "gradients and params from 1e-30 to 1e30",
                         "effect": "g**2 overflow (float32: inf, step 0), eps-dominated steps at "
                                   "tiny g; a port that rescales or clamps differs"},
    "EpsDominated": {"bug_type": "epsilon placement",
                     "description": "|g| far below eps",
                     "effect": "eps inside vs outside the sqrt changes the step by orders"},
    "WeightDecay": {"bug_type": "decay placement or scaling",
                    "description": "decoupled decay on, applied first and scaled by the "
                                   "scheduled lr", "effect": "coupled (L2) decay or decay "
                                   "after the step differs from step 1"},
    "L2Decay": {"bug_type": "coupled vs decoupled decay",
                "description": "L2 decay added to the gradient",
                "effect": "a decoupled port differs from step 1"},
    "BiasCorrection": {"bug_type": "bias-correction form",
                       "description": "a non-default bias-correction form",
                       "effect": "eps acts on the corrected or the uncorrected sqrt(v)"},
    "LongRun": {"bug_type": "drift, late regime",
                "description": ">= 1,000 steps, stored every k-th step plus the last",
                "effect": "errors that compound or appear only late (AdamNX's frozen v)"},
    "Freeze": {"bug_type": "AdamNX late phase",
               "description": "t well beyond AdamNX's memory horizon H = 1/(1-beta2^(1-beta2))",
               "effect": "1 - beta2_t underflows the tensor dtype: v stops changing (float32)"},
    "CoefForm": {"bug_type": "cancellation in AdamNX's beta2_t",
                 "description": "coef_form='naive': the official code's formula in float64",
                 "effect": "differs from the expm1 form by ~1e-12 relative"},
    "StateRounding": {"bug_type": "low-precision state",
                      "description": "m and v rounded to float32/float16/bfloat16 each step",
                      "effect": "v stagnation (AdamNX spec T9)"},
    "LrSchedule": {"bug_type": "scheduled lr not used everywhere",
                   "description": "an explicit per-step lr (warm-up then cosine decay)",
                   "effect": "decay scaled by the base lr instead of eta_t differs"},
    "OptionVariant": {"bug_type": "variant option ignored",
                      "description": "one variant option away from the default",
                      "effect": "a port that ignores the option reproduces the default case "
                                "instead"},
    "ClosedLoop": {"bug_type": "integration as used",
                   "description": "gradients from a synthetic objective at the current params",
                   "effect": "differences feed back; pointwise only up to pointwise_horizon"},
    "NonFiniteSkip": {"bug_type": "loss-scaler skip policy",
                      "description": "a NaN gradient with nonfinite='skip': the step is skipped "
                                     "and t does not advance", "effect": "refopt-specific policy "
                                     "(acceptable): a port without it cannot run this case"},
    "InvalidHyperparam": {"bug_type": "missing validation",
                          "description": "a hyperparameter outside its range",
                          "effect": "a conforming port must raise, naming the parameter"},
}


@dataclass
class CaseSpec:
    """The definition of one golden case (the builder turns it into a manifest + payload)."""

    rule: str
    variant: str
    scenario: str
    hyper: dict
    dtype: str = "float64"
    init: list | None = None
    grads: list | None = None
    objective: dict | None = None
    n_steps: int = 0
    record_every: int = 1
    lr_schedule: list | None = None
    flags: tuple = ()
    comment: str = ""
    result: str = "valid"
    expected_error: dict | None = None
    source: dict = field(default_factory=dict)

    @property
    def case_id(self) -> str:
        return f"{self.rule}_{self.variant}_{self.scenario}_{self.dtype}"

    @property
    def variant_id(self) -> str:
        if self.rule == "adams":
            return "adams/official" if self.hyper.get("bias_correction") else "adams/paper"
        return VARIANT_IDS[self.rule]


# -- input generators (float64 values; dyadic ones are exact in float32) ----------------------

def _dyadic(rng: np.random.Generator, shape: tuple, limit_bits: int = 22) -> np.ndarray:
    """k * 2**-22 with |k| < 2**limit_bits: in (-2**(limit_bits-22), 2**(limit_bits-22))."""
    return rng.integers(-2 ** limit_bits, 2 ** limit_bits, size=shape).astype(np.float64) * 2.0 ** -22


def standard_inputs(seed: int, n_steps: int, shapes=STANDARD_SHAPES, *, zero_first: bool = False,
                    init_scale_bits: int = 22) -> tuple[list, list]:
    """Params in (-1, 1), gradients = a per-coordinate drift in (-0.5, 0.5) plus noise in (-1, 1).

    The sum of the two dyadics needs at most 24 significant bits, so it is exact in float32.
    ``zero_first`` zeroes every gradient of step 1.
    """
    rng = np.random.default_rng(seed)
    init, grads = [], []
    for shape in shapes:
        init.append(_dyadic(rng, shape, init_scale_bits))
        drift = _dyadic(rng, shape, 21)
        noise = _dyadic(rng, (n_steps,) + tuple(shape), 22)
        g = drift[None, ...] + noise
        if zero_first:
            g[0] = 0.0
        grads.append(g)
    return init, grads


def sign_flip_inputs(seed: int, n_steps: int, shapes=STANDARD_SHAPES) -> tuple[list, list]:
    """|g| drawn once per coordinate, sign alternating every 1-3 steps; ~15 % exact zeros (ties)."""
    rng = np.random.default_rng(seed)
    init, grads = [], []
    for shape in shapes:
        init.append(_dyadic(rng, shape))
        size = (n_steps,) + tuple(shape)
        mag = np.abs(_dyadic(rng, size)) + 2.0 ** -4
        period = rng.integers(1, 4, size=tuple(shape))
        t = np.arange(n_steps).reshape((n_steps,) + (1,) * len(shape))
        sign = np.where((t // period) % 2 == 0, 1.0, -1.0)
        g = sign * mag
        g[rng.random(size) < 0.15] = 0.0
        grads.append(g)
    return init, grads


def magnitude_inputs(seed: int, n_steps: int, decade: int = 10) -> tuple[list, list]:
    """Tensors whose params and gradients span 10**(-3*decade) .. 10**(3*decade) (1e-30..1e30).

    * tensor 0, shape (7,): coordinate j has |g| ~ 10**(decade*(j-3)) every step, random signs;
    * tensor 1, shape (2, 3): 1e-30-sized gradients for the first half, then 1e30-sized;
    * tensor 2, 0-d: |g| ~ 1e-30 against eps (eps-dominated), param 1e30.

    float32 twins use ``decade=5`` (1e-15..1e15): beyond |g| ~ 1.8e19 float32 g**2 overflows,
    and whether it does depends on the operation order ((1-b2)*g*g or (1-b2)*(g*g)), so no
    port-independent golden value exists there.
    """
    rng = np.random.default_rng(seed)
    # Powers of ten parsed from decimal (correctly rounded everywhere), not NumPy's array pow:
    # its SIMD paths (AVX-512 or not) differ by an ulp, and the suite must rebuild bit for bit.
    big, small = float(f"1e{3 * decade}"), float(f"1e{-3 * decade}")
    exps = np.array([float(f"1e{decade * (j - 3)}") for j in range(7)])
    p0 = (1.0 + np.abs(_dyadic(rng, (7,)))) * exps[::-1]
    s0 = np.where(rng.random((n_steps, 7)) < 0.5, -1.0, 1.0)
    g0 = s0 * (1.0 + np.abs(_dyadic(rng, (n_steps, 7)))) * exps
    p1 = _dyadic(rng, (2, 3))
    scale = np.where(np.arange(n_steps) < n_steps // 2, small, big).reshape(n_steps, 1, 1)
    g1 = _dyadic(rng, (n_steps, 2, 3)) * scale
    p2 = np.array(big)
    g2 = _dyadic(rng, (n_steps,)) * small
    return [p0, p1, p2], [g0, g1, g2]


def eps_scale_inputs(seed: int, n_steps: int, eps: float) -> tuple[list, list]:
    """Gradients with g**2 within two decades of eps (|g| = sqrt(eps) * 10**U(-1, 1)), params near 0.

    Here eps inside the sqrt (sqrt(v + eps)) and outside it (sqrt(v) + eps) differ by an O(1)
    factor in every coordinate, in float32 as in float64, and the params are the accumulated
    steps themselves, so a relative tolerance on params sees the difference. (The magnitude cases
    cannot: there the eps-dominated steps are negligible against the params.)
    """
    rng = np.random.default_rng(seed)
    shapes = [(9,), (2, 4), ()]
    root = np.sqrt(eps)
    params = [1e-3 * _dyadic(rng, s) for s in shapes]
    grads = []
    for s in shapes:
        signs = np.where(rng.random((n_steps,) + s) < 0.5, -1.0, 1.0)
        # Python's scalar pow (libm), not NumPy's array pow, whose SIMD paths differ by CPU.
        expo = rng.uniform(-1.0, 1.0, (n_steps,) + s)
        scale = np.array([10.0 ** float(x) for x in expo.reshape(-1)]).reshape(expo.shape)
        grads.append(signs * root * scale)
    return params, grads


def long_inputs(seed: int, n_steps: int) -> tuple[list, list]:
    """A slowly drifting mean plus noise, with a sign change of the mean half-way."""
    rng = np.random.default_rng(seed)
    init, grads = [], []
    for shape in LONG_SHAPES:
        init.append(_dyadic(rng, shape))
        mean = _dyadic(rng, shape, 21)
        sign = np.where(np.arange(n_steps) < n_steps // 2, 1.0, -1.0)
        sign = sign.reshape((n_steps,) + (1,) * len(shape))
        grads.append(sign * mean[None, ...] + _dyadic(rng, (n_steps,) + tuple(shape)))
    return init, grads


def warmup_cosine(n_steps: int, peak: float, warmup: int) -> list[float]:
    """eta_t for t = 1..T: linear warm-up to ``peak`` then cosine decay to 10 % of it."""
    out = []
    for t in range(1, n_steps + 1):
        if t <= warmup:
            out.append(peak * t / warmup)
        else:
            frac = (t - warmup) / max(1, n_steps - warmup)
            out.append(peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac))))
    return out


def _as_dtype(arrays, dtype):
    return None if arrays is None else [np.asarray(a, dtype=np.float64).astype(dtype) for a in arrays]


def _spec_source(path: str, section: str) -> dict:
    return {"kind": "spec-table", "reference": f"shared/spec/{path} {section}"}


def _derived(note: str = "") -> dict:
    return {"kind": "derived", "reference": note or "generated by the float64 reference"}


# -- the catalogue -----------------------------------------------------------------------------

def catalogue() -> list[CaseSpec]:
    """Every case of suite v1, in a fixed order (case ids are unique)."""
    cases: list[CaseSpec] = []
    add = cases.append
    both = ("float64", "float32")

    def explicit(rule, variant, scenario, hyper, inputs, flags, comment, dtypes=("float64",),
                 record_every=1, lr_schedule=None, result="valid", source=None):
        init, grads = inputs
        for dt in dtypes:
            add(CaseSpec(rule, variant, scenario, dict(hyper), dt, _as_dtype(init, dt),
                         _as_dtype(grads, dt), None, grads[0].shape[0], record_every,
                         lr_schedule, tuple(dict.fromkeys(flags)), comment, result, None,
                         source or _derived()))

    # 1. Spec tables (float64): adamx.md section 2, adams.md 2.4, alphaadam.md 2.6.
    g5 = [np.array([1.0, -0.5, 2.0, 0.0, 3.0])]
    adamx_table = dict(lr=0.1, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)
    explicit("adamx", "official", "spectable", adamx_table, ([np.array(1.0)], g5),
             ["SpecTable", "FirstStep", "ZeroGrad", "ScalarTensor"],
             "adamx.md section 2 scalar test table (theta_t, m_t, v_t for t = 1..5)",
             source=_spec_source("adamx.md", "section 2, scalar test table"))
    explicit("adamx", "official-naive", "spectable", {**adamx_table, "coef_form": "naive"},
             ([np.array(1.0)], g5), ["SpecTable", "CoefForm", "ScalarTensor"],
             "the same table with the official code's beta2_t formula",
             source=_spec_source("adamx.md", "section 2, scalar test table"))
    adams_table = dict(lr=0.1, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-8)
    for form, bc in (("paper", False), ("official", True)):
        explicit("adams", form, "spectable", {**adams_table, "bias_correction": bc},
                 ([np.array(1.0)], g5), ["SpecTable", "FirstStep", "ZeroGrad", "ScalarTensor"],
                 f"adams.md section 2.4 scalar test table, {form} form",
                 source=_spec_source("adams.md", "section 2.4"))
    alpha_init = [np.array([1.0, -1.0, 0.5, 2.0])]
    alpha_grads = [np.array([[1.0, -2.0, 0.5, 0.0], [-1.0, -1.0, 1.0, 2.0],
                             [0.5, 1.0, -1.0, 1.0], [2.0, -0.5, 0.25, -1.0]])]
    alpha_table = dict(lr=0.01, weight_decay=0.1, betas=(0.9, 0.999), eps=1e-6)
    explicit("alphaadam", "paper-v1", "spectable", {**alpha_table, "bias_correction": "hf"},
             (alpha_init, alpha_grads), ["SpecTable", "FirstStep", "MaskTie", "SignFlip"],
             "alphaadam.md section 2.6 vector test table (defaults, hf)",
             source=_spec_source("alphaadam.md", "section 2.6"))
    explicit("adamw", "hf", "spectable-alphaadam", {**alpha_table, "bias_correction": "hf"},
             (alpha_init, alpha_grads), ["SpecTable"],
             "alphaadam.md 2.6: AdamW theta_4 (identity E1)",
             source=_spec_source("alphaadam.md", "section 2.6, AdamW row"))
    for tag, scaling, row in (("count", "count", "current C-AdamW (E3)"),
                              ("count1", "count+1", "original C-AdamW (E2)")):
        explicit("cadamw", tag, "spectable-alphaadam", {**alpha_table, "scaling": scaling},
                 (alpha_init, alpha_grads), ["SpecTable", "MaskTie"],
                 f"alphaadam.md 2.6: {row} theta_4",
                 source=_spec_source("alphaadam.md", f"section 2.6, {row} row"))

    # 2. Defaults, several awkward tensors, float64 and float32.
    defaults = [("adamx", "official", {}), ("adams", "paper", {"bias_correction": False}),
                ("adams", "official", {"bias_correction": True}), ("alphaadam", "paper-v1", {}),
                ("adam", "torch", {}), ("adamw", "torch", {}), ("cadamw", "count", {}),
                ("adax", "l2", {}), ("sgdm", "plain", {})]
    for k, (rule, variant, hyper) in enumerate(defaults):
        explicit(rule, variant, "defaults", hyper, standard_inputs(100 + k, 25),
                 ["Defaults", "MultiTensor", "ScalarTensor", "FirstStep"],
                 "all hyperparameters at their defaults", dtypes=both)

    # 3. Weight decay on (larger lr so that decay and step are both visible).
    decay = [("adamx", "official", {"lr": 0.01, "weight_decay": 0.1}, "WeightDecay"),
             ("adamx", "official-l2", {"lr": 0.01, "weight_decay": 0.1,
                                       "weight_decay_mode": "l2"}, "L2Decay"),
             ("adams", "paper", {"lr": 0.01, "weight_decay": 0.5}, "WeightDecay"),
             ("adams", "official", {"lr": 0.01, "weight_decay": 0.5, "bias_correction": True},
              "WeightDecay"),
             ("alphaadam", "paper-v1", {"lr": 0.01, "weight_decay": 0.1}, "WeightDecay"),
             ("adam", "torch", {"lr": 0.01, "weight_decay": 0.1}, "L2Decay"),
             ("adamw", "torch", {"lr": 0.01, "weight_decay": 0.1}, "WeightDecay"),
             ("cadamw", "count", {"lr": 0.01, "weight_decay": 0.1}, "WeightDecay"),
             ("adax", "decoupled", {"lr": 0.01, "weight_decay": 0.1,
                                    "weight_decay_mode": "decoupled"}, "WeightDecay"),
             ("adax", "l2", {"lr": 0.01, "weight_decay": 0.1}, "L2Decay"),
             ("sgdm", "plain", {"lr": 0.01, "weight_decay": 0.1}, "L2Decay")]
    for k, (rule, variant, hyper, flag) in enumerate(decay):
        dts = both if rule in ("adamx", "adams", "alphaadam") else ("float64",)
        explicit(rule, variant, "decay", hyper, standard_inputs(200 + k, 20),
                 [flag, "MultiTensor"], "weight decay on", dtypes=dts)

    # 4. t = 1 edge cases: all-zero gradients at step 1 (then ordinary ones).
    zero1 = [("adamx", "official", {}), ("adams", "paper", {}),
             ("adams", "official", {"bias_correction": True}), ("alphaadam", "paper-v1", {}),
             ("adam", "torch", {}), ("adamw", "torch", {}), ("cadamw", "count", {}),
             ("adax", "l2", {}), ("sgdm", "plain", {})]
    for k, (rule, variant, hyper) in enumerate(zero1):
        explicit(rule, variant, "zerograd1", {"lr": 0.01, **hyper},
                 standard_inputs(300 + k, 8, zero_first=True),
                 ["FirstStep", "ZeroGrad", "MultiTensor"],
                 "all gradients are 0 at t = 1 (AdamS: 0/0 guarded by eps); t still advances",
                 dtypes=both if rule in ("adamx", "adams", "alphaadam") else ("float64",))
    for k, (rule, variant, hyper) in enumerate([("adamx", "official", {}),
                                                ("adams", "paper", {}),
                                                ("adams", "official", {"bias_correction": True}),
                                                ("alphaadam", "paper-v1", {})]):
        explicit(rule, variant, "zerograd1-eps0", {"lr": 0.01, "eps": 0.0, **hyper},
                 standard_inputs(320 + k, 8, zero_first=True),
                 ["FirstStep", "ZeroGrad", "EpsZero"],
                 "eps = 0 and zero gradients at t = 1: 0/0 := 0 by refopt's convention",
                 result="acceptable")
    as_is = [("as-is", {"first_step": "as_is"}, ["EmptyMask"]),
             ("as-is-norm", {"first_step": "as_is", "alpha_rule": "norm"}, ["EmptyMask"]),
             ("as-is-nonstrict", {"first_step": "as_is", "strict": False}, ["MaskTie"]),
             ("cautious-first", {"first_step": "cautious"}, ["OptionVariant"])]
    for k, (scen, opts, flags) in enumerate(as_is):
        explicit("alphaadam", "paper-v1", f"first-{scen}",
                 {"lr": 0.01, "weight_decay": 0.1, **opts}, standard_inputs(340 + k, 10),
                 ["FirstStep", *flags, "OptionVariant", "MultiTensor"],
                 f"AlphaAdam first step with {opts}", dtypes=both)

    # 5. Magnitudes from 1e-30 to 1e30.
    mags = [("adamx", "official", {}), ("adams", "paper", {}),
            ("adams", "official", {"bias_correction": True}), ("alphaadam", "paper-v1", {}),
            ("adam", "torch", {}), ("adamw", "torch", {}), ("cadamw", "count", {}),
            ("adax", "l2", {}), ("sgdm", "plain", {})]
    for k, (rule, variant, hyper) in enumerate(mags):
        explicit(rule, variant, "magnitudes", {"lr": 0.01, **hyper}, magnitude_inputs(400 + k, 12),
                 ["ExtremeMagnitude", "EpsDominated", "ScalarTensor"],
                 "params and gradients from 1e-30 to 1e30 (g**2 from 1e-60 to 1e60)")
        if rule in ("adamx", "adams", "alphaadam"):
            explicit(rule, variant, "magnitudes", {"lr": 0.01, **hyper},
                     magnitude_inputs(400 + k, 12, decade=5),
                     ["ExtremeMagnitude", "EpsDominated", "ScalarTensor"],
                     "float32: params and gradients from 1e-15 to 1e15 (beyond ~1.8e19, whether "
                     "float32 g**2 overflows depends on the operation order)",
                     dtypes=("float32",))
    # 5b. g**2 comparable to eps: where eps inside vs outside the sqrt shows in both dtypes.
    eps_scaled = [("adamx", "official", {}, 1e-8), ("adams", "paper", {}, 1e-8),
                  ("adams", "official", {"bias_correction": True}, 1e-8),
                  ("alphaadam", "paper-v1", {}, 1e-6), ("adamw", "torch", {}, 1e-8),
                  ("cadamw", "count", {}, 1e-6),
                  ("cadamw", "torch", {"bias_correction": "torch"}, 1e-8)]
    for k, (rule, variant, hyper, eps) in enumerate(eps_scaled):
        explicit(rule, variant, "epsscale", {"lr": 1e-3, "eps": eps, **hyper},
                 eps_scale_inputs(420 + k, 12, eps), ["EpsDominated", "ScalarTensor", "MultiTensor"],
                 "g**2 within two decades of eps: eps inside the sqrt changes every step by O(1)",
                 dtypes=both)

    # 6. Sign flips and exact ties that exercise the masks.
    flips = [("alphaadam", "paper-v1", {}), ("alphaadam", "paper-v1-nonstrict", {"strict": False}),
             ("alphaadam", "paper-v1-mt", {"mask_source": "m_t"}), ("cadamw", "count", {}),
             ("cadamw", "count1", {"scaling": "count+1"}), ("adamx", "official", {}),
             ("adams", "paper", {}), ("adams", "official", {"bias_correction": True})]
    for k, (rule, variant, hyper) in enumerate(flips):
        explicit(rule, variant, "signflip", {"lr": 0.01, **hyper}, sign_flip_inputs(500 + k, 30),
                 ["SignFlip", "MaskTie", "MultiTensor"],
                 "gradient signs flip every 1-3 steps; ~15 % exact zeros (m*g = 0 ties)",
                 dtypes=both if rule in ("alphaadam", "cadamw") else ("float64",))

    # 7. Long runs (>= 1,000 steps), every 50th step stored plus the last.
    longs = [("adamx", "official", "long-b2-0.9", {"betas": (0.9, 0.9), "lr": 0.01}, 2000,
              ["Freeze"], "beta2 = 0.9: H = 95.4, so t = 2000 is ~21 H: the late regime where v "
                          "is frozen (float32: 1 - beta2_t < 2**-24 from t ~ 1150)"),
             ("adamx", "official", "long-default", {"lr": 0.01}, 1000, [],
              "defaults (H = 9950): the early, running-mean regime over 1000 steps"),
             ("adamx", "official-naive", "long-b2-0.9", {"betas": (0.9, 0.9), "lr": 0.01,
                                                         "coef_form": "naive"}, 2000,
              ["Freeze", "CoefForm"], "the official code's beta2_t formula over 2000 steps"),
             ("adams", "paper", "long", {"lr": 0.01}, 1000, [], "paper form, 1000 steps"),
             ("adams", "official", "long", {"lr": 0.01, "bias_correction": True}, 1000, [],
              "official form, 1000 steps"),
             ("alphaadam", "paper-v1", "long", {"lr": 0.01}, 1000, [], "defaults, 1000 steps"),
             ("adamw", "torch", "long", {"lr": 0.01}, 1000, [], "baseline, 1000 steps")]
    for k, (rule, variant, scen, hyper, T, flags, comment) in enumerate(longs):
        explicit(rule, variant, scen, hyper, long_inputs(600 + k, T), ["LongRun", *flags],
                 comment, dtypes=both if rule != "adamw" else ("float64",), record_every=50)

    # 8. Every AlphaAdam option, one away from the defaults (sign-rich gradients).
    alpha_opts = [("mt", {"mask_source": "m_t"}), ("ones", {"mask_source": "ones"}),
                  ("nonstrict", {"strict": False}), ("count1", {"alpha_rule": "count+1"}),
                  ("norm", {"alpha_rule": "norm"}),
                  ("norm-amax1.5", {"alpha_rule": "norm", "alpha_max": 1.5}),
                  ("soft", {"alpha_rule": "soft"}),
                  ("soft-floor0.5", {"alpha_rule": "soft", "density_floor": 0.5}),
                  ("none", {"alpha_rule": "none"}), ("floor0.5", {"density_floor": 0.5}),
                  ("gamma0.25", {"gamma": 0.25}), ("torch", {"bias_correction": "torch"}),
                  ("torch-eps1e-6", {"bias_correction": "torch", "eps": 1e-6}),
                  ("ones-none", {"mask_source": "ones", "alpha_rule": "none"})]
    for k, (tag, opts) in enumerate(alpha_opts):
        explicit("alphaadam", f"paper-v1-{tag}", "options", {"lr": 0.01, **opts},
                 sign_flip_inputs(700 + k, 20), ["OptionVariant", "SignFlip", "MaskTie"],
                 f"AlphaAdam option {opts}",
                 dtypes=both if tag in ("norm", "soft", "torch", "count1") else ("float64",))

    # 9. Baselines and the other options of AdamX/AdamS.
    base = [("adam", "hf", {"bias_correction": "hf"}, "BiasCorrection"),
            ("adam", "none", {"bias_correction": "none"}, "BiasCorrection"),
            ("adamw", "hf", {"bias_correction": "hf"}, "BiasCorrection"),
            ("adamw", "none", {"bias_correction": "none"}, "BiasCorrection"),
            ("cadamw", "count1", {"scaling": "count+1"}, "OptionVariant"),
            ("adax", "decoupled", {"weight_decay_mode": "decoupled"}, "OptionVariant"),
            ("sgdm", "nesterov", {"nesterov": True}, "OptionVariant"),
            ("sgdm", "dampening", {"dampening": 0.5, "weight_decay": 0.01}, "OptionVariant"),
            ("adamx", "official-naive", {"coef_form": "naive"}, "CoefForm"),
            ("adamx", "official-state-f32", {"state_dtype": "float32"}, "StateRounding"),
            ("adamx", "official-state-f16", {"state_dtype": "float16"}, "StateRounding"),
            ("adamx", "official-state-bf16", {"state_dtype": "bfloat16"}, "StateRounding"),
            ("adams", "paper-b2-0.999", {"betas": (0.9, 0.999)}, "OptionVariant"),
            # (appended, so that the seeds of the cases above stay)
            ("cadamw", "torch", {"bias_correction": "torch"}, "BiasCorrection"),
            ("cadamw", "torch-count1", {"bias_correction": "torch", "scaling": "count+1"},
             "BiasCorrection")]
    for k, (rule, variant, hyper, flag) in enumerate(base):
        explicit(rule, variant, "variant", {"lr": 0.01, **hyper}, standard_inputs(800 + k, 20),
                 [flag, "MultiTensor"], f"{rule} with {hyper}",
                 dtypes=both if rule == "cadamw" else ("float64",))
    # timm AdamWLegacy(caution=True) at its defaults (spec alphaadam.md E5): torch-style eps,
    # eps 1e-8, weight decay 1e-2, the count rescale; what a timm port runs out of the box.
    explicit("cadamw", "torch", "timm", {"lr": 1e-3, "eps": 1e-8, "weight_decay": 1e-2,
                                         "bias_correction": "torch"},
             standard_inputs(850, 25), ["BiasCorrection", "WeightDecay", "MultiTensor",
                                        "ScalarTensor", "FirstStep"],
             "timm AdamWLegacy(caution=True) defaults: lr 1e-3, eps 1e-8 on the corrected "
             "sqrt(v), weight_decay 1e-2, r = 1/max(mean(phi), 1e-3)", dtypes=both)

    # 10. Scheduled learning rate (warm-up + cosine), decay on.
    sched = warmup_cosine(40, 0.02, 8)
    for k, (rule, variant, hyper) in enumerate([("adamx", "official", {}),
                                                ("adams", "paper", {}),
                                                ("adams", "official", {"bias_correction": True}),
                                                ("alphaadam", "paper-v1", {}),
                                                ("adamw", "torch", {}),
                                                ("cadamw", "count", {}),
                                                ("cadamw", "torch",
                                                 {"bias_correction": "torch"})]):
        explicit(rule, variant, "schedule", {"lr": 0.02, "weight_decay": 0.1, **hyper},
                 standard_inputs(900 + k, 40), ["LrSchedule", "WeightDecay", "MultiTensor"],
                 "lr_t from an explicit schedule (payload 'lr'); decay scaled by lr_t",
                 lr_schedule=sched,
                 dtypes=both if rule != "adamw" else ("float64",))

    # 11. A 0-size tensor next to a normal one.
    zs_init = [np.zeros((0,)), np.array([0.5, -0.25]), np.zeros((3, 0))]
    zs_rng = np.random.default_rng(950)
    zs_grads = [np.zeros((6, 0)), _dyadic(zs_rng, (6, 2)), np.zeros((6, 3, 0))]
    for rule, variant, hyper in (("adamx", "official", {}), ("adams", "paper", {}),
                                 ("alphaadam", "paper-v1", {}), ("cadamw", "count", {})):
        explicit(rule, variant, "zerosize", {"lr": 0.01, **hyper}, (zs_init, zs_grads),
                 ["ZeroSizeTensor", "MultiTensor"], "0-size tensors (0,) and (3, 0) around a "
                 "2-vector: nothing to update there, and no effect on the 2-vector")

    # 12. A NaN gradient with nonfinite="skip": the step is skipped, t does not advance.
    for k, (rule, variant, hyper) in enumerate((("adamx", "official", {}),
                                                ("adams", "paper", {}),
                                                ("alphaadam", "paper-v1", {}))):
        init, grads = standard_inputs(960 + k, 8)
        grads[2][3, 1, 2] = np.nan
        explicit(rule, variant, "nanskip", {"lr": 0.01, "nonfinite": "skip", **hyper},
                 (init, grads), ["NonFiniteSkip"], "grad.2 at step 4 holds a NaN: step 4 is "
                 "skipped for every tensor (loss-scaler semantics)", result="acceptable")

    cases.extend(closed_loop_cases())
    cases.extend(invalid_cases())
    return cases


def closed_loop_cases() -> list[CaseSpec]:
    """Closed-loop cases: the gradient comes from an objective at the current params."""
    out = []
    rosen = {"name": "rosenbrock", "constants": {"dim": 4, "a": 1.0, "b": 100.0, "noise": "none"}}
    rosen_init = [np.array([-1.25, 1.0, -0.75, 0.5])]
    logcosh = {"name": "logcosh", "constants": {"noise": "none"}}
    quad = {"name": "quadratic", "constants": {"dim": 6, "condition_number": 100.0,
                                               "noise": "none"}}
    rules = [("adamx", "official", {"lr": 0.01, "weight_decay": 0.0}),
             ("adams", "paper", {"lr": 0.01, "weight_decay": 0.0}),
             ("adams", "official", {"lr": 0.01, "weight_decay": 0.0, "bias_correction": True}),
             ("alphaadam", "paper-v1", {"lr": 0.01}),
             ("adamw", "torch", {"lr": 0.01, "weight_decay": 0.0})]
    cautious = [("cadamw", "count", {"lr": 0.01, "weight_decay": 0.0}),
                ("cadamw", "torch", {"lr": 0.01, "weight_decay": 0.0,
                                     "bias_correction": "torch"})]
    rng = np.random.default_rng(990)
    lc_init = [_dyadic(rng, s, 24) for s in STANDARD_SHAPES]   # in (-4, 4)
    q_init = [_dyadic(rng, (6,), 23)]
    for dt in ("float64", "float32"):
        for rule, variant, hyper in rules + cautious:
            out.append(CaseSpec(rule, variant, "rosenbrock4", dict(hyper), dt,
                                _as_dtype(rosen_init, dt), None, rosen, 1000, 20,
                                flags=("ClosedLoop", "LongRun"),
                                comment="chained Rosenbrock, dim 4, a = 1, b = 100, from "
                                        "(-1.25, 1, -0.75, 0.5); exact gradients",
                                source=_derived("closed loop on refopt.objectives.rosenbrock")))
        for rule, variant, hyper in rules[:4] + cautious[:1]:
            out.append(CaseSpec(rule, variant, "logcosh", dict(hyper, lr=0.05), dt,
                                _as_dtype(lc_init, dt), None, logcosh, 200, 10,
                                flags=("ClosedLoop", "MultiTensor", "ScalarTensor"),
                                comment="sum of log cosh over every tensor, applied tensor by "
                                        "tensor; exact gradients (tanh)",
                                source=_derived("closed loop on refopt.objectives.logcosh")))
        for rule, variant, hyper in (rules[0], rules[4]):
            out.append(CaseSpec(rule, variant, "quadratic6", dict(hyper), dt, _as_dtype(q_init, dt),
                                None, quad, 300, 10, flags=("ClosedLoop",),
                                comment="diagonal quadratic, dim 6, condition number 100",
                                source=_derived("closed loop on refopt.objectives.quadratic")))
    return out


#: ``expected_error.kind`` of an invalid case: ``undefined`` (the rule's equations have no value
#: there: a conforming port MUST refuse) or ``policy`` (the update is defined, refopt is stricter
#: than the maths: a port that accepts it is reported, advisory, not failed).
INVALID_KINDS = ("undefined", "policy")

_DEFINED_NEG_LR = "a negative lr is a defined update (gradient ascent); refopt refuses it"
_DEFINED_NEG_WD = ("a negative weight decay is a defined update (theta grows by 1 - lr*wd > 1); "
                   "refopt refuses it")
_DEFINED_NEG_EPS = ("a negative eps is a defined formula away from sqrt(v) = -eps; refopt keeps "
                    "eps >= 0 so the denominator stays positive")
_NAN_LR = "lr = NaN makes every updated parameter NaN: the step has no value"
_INF_LR = "lr = inf gives inf*0 = NaN (decay 1 - lr*wd, zero updates): the step has no value"
_NO_VARIANT = "no such variant: the rule has no equation for this option value"


def invalid_cases() -> list[CaseSpec]:
    """Hyperparameters refopt refuses (manifest only, no payload).

    Each states its kind (:data:`INVALID_KINDS`: a port must refuse the ``undefined`` ones; the
    ``policy`` ones are advisory) and why, read off the rule's equations and the specs
    (shared/spec/*.md).
    """
    U, P = "undefined", "policy"
    bad = [("adamx", "official", "beta2-1", {"betas": (0.9, 1.0)}, "betas[1]", r"betas\[1\]", U,
            "beta2 = 1 gives c = 1 and beta2_t = (1 - 1)/(1 - 1) = 0/0 (adamx.md section 2)"),
           ("adamx", "official", "beta2-0", {"betas": (0.9, 0.0)}, "betas[1]", r"betas\[1\]", P,
            "the official code accepts beta2 = 0 and its formula is defined (c = 0, v = g_1^2 "
            "forever); refopt refuses it (adamx.md, validation in the official code)"),
           ("adamx", "official", "lr-negative", {"lr": -1e-3}, "lr", r"^lr", P, _DEFINED_NEG_LR),
           ("adams", "paper", "beta2-1", {"betas": (0.9, 1.0)}, "betas[1]", r"betas\[1\]", P,
            "beta2 = 1 is defined for eps > 0 (nu = m_{t-1}^2, step m_t/(|m_{t-1}| + eps)) but "
            "the step bound sqrt(C) is infinite (adams.md A2, A10); the spec's domain is [0, 1)"),
           ("adams", "paper", "lr-nan", {"lr": math.nan}, "lr", r"^lr", U, _NAN_LR),
           ("adams", "paper", "eps-negative", {"eps": -1e-8}, "eps", r"^eps", P, _DEFINED_NEG_EPS),
           ("alphaadam", "paper-v1", "beta1-1", {"betas": (1.0, 0.999)}, "betas[0]",
            r"betas\[0\]", U, "beta1 = 1 makes 1 - beta1^t = 0: the step size "
            "lr*sqrt(1-beta2^t)/(1-beta1^t) divides by zero"),
           ("alphaadam", "paper-v1", "lr-inf", {"lr": math.inf}, "lr", r"^lr", U, _INF_LR),
           ("alphaadam", "paper-v1", "floor-0", {"density_floor": 0.0}, "density_floor",
            r"^density_floor", U, "alpha = 1/max(q, 0) is 1/0 when the mask is empty (k = 0), "
            "which the strict mask reaches"),
           ("alphaadam", "paper-v1", "alphamax-0.5", {"alpha_max": 0.5}, "alpha_max",
            r"^alpha_max", P, "a cap below 1 is a defined min(alpha_max, ratio); refopt "
            "requires alpha_max >= 1 (alphaadam.md 2.3)"),
           ("alphaadam", "paper-v1", "masksource-bad", {"mask_source": "m_next"},
            "mask_source", r"^mask_source", U, _NO_VARIANT),
           ("alphaadam", "paper-v1", "gamma-negative", {"gamma": -0.5}, "gamma", r"^gamma", P,
            "psi = alpha*phi + gamma*(1-phi) is defined for gamma < 0 (dropped coordinates step "
            "backwards); refopt requires gamma >= 0 (alphaadam.md 2.3)"),
           ("adamw", "torch", "wd-negative", {"weight_decay": -0.01}, "weight_decay",
            r"^weight_decay", P, _DEFINED_NEG_WD),
           # (appended: the cases above keep their manifests)
           ("cadamw", "count", "beta1-1", {"betas": (1.0, 0.999)}, "betas[0]", r"betas\[0\]", U,
            "beta1 = 1 makes 1 - beta1^t = 0: the step size divides by zero (hf and torch)"),
           ("cadamw", "count", "beta2-1", {"betas": (0.9, 1.0)}, "betas[1]", r"betas\[1\]", P,
            "under hf, beta2 = 1 is defined for eps > 0: v stays 0 and the step size "
            "lr*sqrt(1-beta2^t)/(1-beta1^t) is 0, no update; refopt refuses it"),
           ("cadamw", "torch", "beta2-1", {"betas": (0.9, 1.0), "bias_correction": "torch"},
            "betas[1]", r"betas\[1\]", U,
            "under torch, beta2 = 1 gives sqrt(v)/sqrt(1-beta2^t) = 0/0"),
           ("cadamw", "count", "lr-negative", {"lr": -1e-3}, "lr", r"^lr", P, _DEFINED_NEG_LR),
           ("cadamw", "count", "lr-nan", {"lr": math.nan}, "lr", r"^lr", U, _NAN_LR),
           ("cadamw", "count", "eps-negative", {"eps": -1e-6}, "eps", r"^eps", P,
            _DEFINED_NEG_EPS),
           ("cadamw", "count", "wd-negative", {"weight_decay": -0.01}, "weight_decay",
            r"^weight_decay", P, _DEFINED_NEG_WD),
           ("cadamw", "count", "scaling-bad", {"scaling": "norm"}, "scaling", r"^scaling", U,
            _NO_VARIANT),
           ("cadamw", "count", "biascorrection-bad", {"bias_correction": "none"},
            "bias_correction", r"^bias_correction", P,
            "C-AdamW with no bias correction is a defined update; refopt offers only the "
            "published hf and torch forms (alphaadam.md E5)"),
           # AdamS's official-code form (bias_correction=True, adams.md 2.2)
           ("adams", "official", "beta1-1", {"betas": (1.0, 0.95), "bias_correction": True},
            "betas[0]", r"betas\[0\]", U,
            "beta1 = 1 makes c_t = 1 - beta1^t = 0: m_{t-1}/c_t and m_t/c_t are 0/0"),
           ("adams", "official", "beta2-1", {"betas": (0.9, 1.0), "bias_correction": True},
            "betas[1]", r"betas\[1\]", P,
            "beta2 = 1 is defined for eps > 0 (nu = (m_{t-1}/c_t)^2, step m_hat/(|m_{t-1}|/c_t "
            "+ eps)) but unbounded (adams.md A4, A10); the spec's domain is [0, 1)"),
           ("adams", "official", "lr-inf", {"lr": math.inf, "bias_correction": True}, "lr",
            r"^lr", U, _INF_LR),
           ("adams", "official", "eps-negative", {"eps": -1e-8, "bias_correction": True}, "eps",
            r"^eps", P, _DEFINED_NEG_EPS),
           ("adams", "official", "wd-negative", {"weight_decay": -0.1, "bias_correction": True},
            "weight_decay", r"^weight_decay", P, _DEFINED_NEG_WD)]
    out = []
    for rule, variant, scen, hyper, param, regex, kind, why in bad:
        assert kind in INVALID_KINDS
        merged = {**RULES[rule].cls.defaults, **hyper}
        out.append(CaseSpec(rule, variant, f"invalid-{scen}", merged, "float64",
                            flags=("InvalidHyperparam",), result="invalid",
                            comment=f"{param} out of range: get_rule must raise",
                            expected_error={"exception": "ValueError", "parameter": param,
                                            "message_regex": regex, "kind": kind, "why": why},
                            source=_derived("hyperparameter validation (refopt/_validation.py)")))
    return out


def objective_formula(name: str) -> dict[str, str]:
    """Plain-text f and grad f of the objectives the suite uses (for FORMAT.md and manifests)."""
    return {
        "rosenbrock": {"f": "sum_{i=1}^{d-1} b*(x[i+1]-x[i]^2)^2 + (a-x[i])^2 (x flattened, C order)",
                       "grad": "g[i] = -4*b*x[i]*(x[i+1]-x[i]^2) - 2*(a-x[i]) for i < d-1; "
                               "g[i] += 2*b*(x[i]-x[i-1]^2) for i > 0"},
        "logcosh": {"f": "sum_i log(cosh(x[i])), each tensor on its own",
                    "grad": "g = tanh(x), elementwise"},
        "quadratic": {"f": "0.5 * sum_i h[i]*x[i]^2, h = logspace(0, log10(condition_number), dim)"
                           " = 10**(i*log10(kappa)/(dim-1)); the exact h is stored in "
                           "objective.derived.h", "grad": "g = h * x, elementwise"},
    }[name]
