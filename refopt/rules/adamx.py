r"""AdamX / AdamNX (Zhu, Xiao, Min 2025, arXiv 2511.13465; renamed AdamNX in v3).

Algorithm (official code, github.com/mengzhu0308/AdamNX ``adamnx/adamnx.py`` @ b68c319; the paper
body was not available, see ``proofs/spec/adamx.md`` section 2). Per tensor, elementwise, with
:math:`\eta_t` the scheduled learning rate and :math:`c = \beta_2^{1-\beta_2}`:

.. math::

    t &\leftarrow t + 1 \\
    \theta &\leftarrow \theta\,(1 - \eta_t\lambda)                     && \text{decoupled, first} \\
    \hat\beta_{1,t} &= (\beta_1 - \beta_1^t)/(1 - \beta_1^t),\quad
        m \leftarrow \hat\beta_{1,t} m + (1 - \hat\beta_{1,t}) g \\
    \hat\beta_{2,t} &= \frac{1 - \beta_2^{(1-\beta_2)(t-1)}}{1 - \beta_2^{(1-\beta_2)t}}
        = \frac{\mathrm{expm1}((t-1)\ell)}{\mathrm{expm1}(t\ell)},\ \ell = (1-\beta_2)\ln\beta_2,\quad
        v \leftarrow \hat\beta_{2,t} v + (1 - \hat\beta_{2,t}) g^2 \\
    \theta &\leftarrow \theta - \eta_t\, m / (\sqrt{v} + \epsilon)      && \epsilon \text{ outside the sqrt}

There is no separate bias correction: it is folded into the betas. At t = 1 both betas are 0, so
step 1 is AdamW's first step. ``m`` equals Adam's bias-corrected ``m_hat`` exactly (spec T3) and
``v`` is the normalised average :math:`\sum_k w_{t,k} g_k^2` with weights
:math:`(1-c)c^{k-1}/(1-c^t)` that favour the *oldest* gradients (T2); as t grows beyond
:math:`H = 1/(1-c) \approx (1-\beta_2)^{-2}` the rule becomes momentum SGD with a frozen diagonal
preconditioner (T5).

Options (spec section 2): ``coef_form`` ``"expm1"`` (default, no cancellation) or ``"naive"`` (the
code's formula, in float64); ``weight_decay_mode`` ``"decoupled"`` (default, the code) or ``"l2"``
(adds :math:`\lambda\theta` to g, for AdaX ablations); ``state_dtype`` None (= the param dtype) or
``"float32"``/``"float16"``/``"bfloat16"`` to round m and v after each update (spec T9).

Not to be confused with the AdamX of Tran & Phong (arXiv 1904.03590), an unrelated AMSGrad fix.

References: arXiv 2511.13465 v1 (18 Nov 2025) and v3; official code as above.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import _validation as V
from ._base import COMMON_DEFAULTS, STATE_DTYPES, Rule, decay_factor, round_to_bits, safe_divide


class AdamXState(NamedTuple):
    step: tuple[int, ...]
    exp_avg: tuple[np.ndarray, ...]
    exp_avg_sq: tuple[np.ndarray, ...]


def beta1_t(beta1: float, t: int) -> float:
    """AdamX's first-moment coefficient (beta1 - beta1**t) / (1 - beta1**t); 0 at t = 1."""
    return (beta1 - beta1 ** t) / (1.0 - beta1 ** t)


def beta2_t(beta2: float, t: int, coef_form: str = "expm1") -> float:
    """AdamX's second-moment coefficient at step t (1-based), in float64.

    ``"expm1"``: expm1((t-1) l) / expm1(t l) with l = (1 - beta2) ln beta2 (no cancellation);
    ``"naive"``: (1 - beta2**((1-beta2)(t-1))) / (1 - beta2**((1-beta2) t)), the official code.
    """
    if coef_form == "expm1":
        ell = (1.0 - beta2) * math.log(beta2)
        return math.expm1((t - 1) * ell) / math.expm1(t * ell)
    if coef_form == "naive":
        e = 1.0 - beta2
        return (1.0 - beta2 ** (e * (t - 1))) / (1.0 - beta2 ** (e * t))
    raise ValueError(f"coef_form must be 'expm1' or 'naive', got {coef_form!r}")


def one_minus_beta2_t(beta2: float, t: int, coef_form: str = "expm1") -> float:
    """1 - beta2_t, the weight of the newest g**2, in float64 without cancellation.

    ``"expm1"``: expm1(l) exp((t-1) l) / expm1(t l) = (1-c) c^(t-1) / (1-c^t), accurate to a few
    ulp at every t (1 - beta2_t formed by subtraction loses |log10(1 - beta2_t)| digits: 2.6e-8
    relative at beta2 = 0.99, t = 1e5). ``"naive"``: 1 - beta2_t, as the official code has it.
    """
    if coef_form == "expm1":
        ell = (1.0 - beta2) * math.log(beta2)
        return math.expm1(ell) * math.exp((t - 1) * ell) / math.expm1(t * ell)
    return 1.0 - beta2_t(beta2, t, coef_form)


def memory_horizon(beta2: float) -> float:
    """H = 1 / (1 - c), c = beta2**(1 - beta2): the number of steps v remembers (spec T6)."""
    return -1.0 / math.expm1((1.0 - beta2) * math.log(beta2))


class AdamX(Rule):
    __doc__ = __doc__
    name = "adamx"
    state_type = AdamXState
    buffers = ("exp_avg", "exp_avg_sq")
    defaults = {"lr": 1e-3, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.01,
                "coef_form": "expm1", "weight_decay_mode": "decoupled", "state_dtype": None,
                **COMMON_DEFAULTS}

    def _validate_hyper(self, h):
        # beta2 = 0 gives c = 0 and v frozen at g_1**2 forever (spec pitfalls): refused.
        h["betas"] = V.betas(h["betas"], beta2_open_low=True)
        h["coef_form"] = V.choice("coef_form", h["coef_form"], ("expm1", "naive"))
        h["weight_decay_mode"] = V.choice("weight_decay_mode", h["weight_decay_mode"],
                                          ("decoupled", "l2"))
        h["state_dtype"] = V.choice("state_dtype", h["state_dtype"], STATE_DTYPES)
        return h

    def scalars(self, t, lr):
        b1, b2 = self.hyper["betas"]
        wd = self.hyper["weight_decay"]
        b1t = beta1_t(b1, t)
        b2t = beta2_t(b2, t, self.hyper["coef_form"])
        # The complements are formed directly, not as 1 - beta_t (cancellation late in training):
        # 1 - beta1_t = (1 - beta1)/(1 - beta1^t) exactly in real arithmetic.
        decoupled = self.hyper["weight_decay_mode"] == "decoupled"
        return {"lr": lr, "decay": decay_factor(lr, wd) if decoupled else 1.0,
                "l2": 0.0 if decoupled else wd,
                "beta1_t": b1t, "one_minus_beta1_t": (1.0 - b1) / (1.0 - b1 ** t),
                "beta2_t": b2t,
                "one_minus_beta2_t": one_minus_beta2_t(b2, t, self.hyper["coef_form"]),
                "eps": self.hyper["eps"]}

    def _update_tensor(self, param, grad, bufs, t, sc):
        if self.hyper["weight_decay_mode"] == "l2":
            grad = grad + sc["l2"] * param
        else:
            param = param * sc["decay"]
        exp_avg = sc["beta1_t"] * bufs["exp_avg"] + sc["one_minus_beta1_t"] * grad
        exp_avg_sq = sc["beta2_t"] * bufs["exp_avg_sq"] + sc["one_minus_beta2_t"] * (grad * grad)
        exp_avg = round_to_bits(exp_avg, self.hyper["state_dtype"])
        exp_avg_sq = round_to_bits(exp_avg_sq, self.hyper["state_dtype"])
        param = param - sc["lr"] * safe_divide(exp_avg, np.sqrt(exp_avg_sq) + sc["eps"])
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, {}
