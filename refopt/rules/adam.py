r"""Adam and AdamW baselines (Kingma & Ba 2015, arXiv 1412.6980; Loshchilov & Hutter 2019,
arXiv 1711.05101), with PyTorch's semantics by default.

.. math::

    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2

``bias_correction`` selects how the two moments are corrected (all equal in exact arithmetic
except ``"none"``):

* ``"torch"`` (default): ``denom = sqrt(v)/sqrt(1-b2^t) + eps``, step size ``lr/(1-b1^t)``
  (``torch.optim.AdamW``'s single-tensor path);
* ``"hf"``: ``denom = sqrt(v) + eps``, step size ``lr*sqrt(1-b2^t)/(1-b1^t)`` (Hugging Face's
  AdamW, C-Optim, AlphaAdam's ``hf`` mode: eps acts on the uncorrected sqrt(v));
* ``"none"``: no correction (``denom = sqrt(v) + eps``, step size ``lr``).

Then ``theta <- theta - step_size * (m / denom)``. ``adam`` adds ``weight_decay * theta`` to the
gradient (L2, coupled, as ``torch.optim.Adam``); ``adamw`` multiplies theta by
``1 - lr*weight_decay`` before the moments (decoupled, as ``torch.optim.AdamW``).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import _validation as V
from ._base import COMMON_DEFAULTS, Rule, decay_factor, safe_divide

BIAS_CORRECTIONS = ("torch", "hf", "none")


class AdamMoments(NamedTuple):
    """The fields of every Adam-family state (two EMAs per tensor). Each rule has its own
    subclass, so that a state records the rule it belongs to: AlphaAdam refuses AdamW's."""

    step: tuple[int, ...]
    exp_avg: tuple[np.ndarray, ...]
    exp_avg_sq: tuple[np.ndarray, ...]


class AdamState(AdamMoments):
    """Adam's state."""

    __slots__ = ()


class AdamWState(AdamMoments):
    """AdamW's state."""

    __slots__ = ()


def adam_scalars(beta1: float, beta2: float, t: int, lr: float, weight_decay: float,
                 bias_correction: str, eps: float) -> dict[str, float]:
    """The float64 per-step scalars shared by Adam, AdamW, C-AdamW and AlphaAdam."""
    if bias_correction == "none":
        bc1, bc2 = 1.0, 1.0
    else:
        bc1, bc2 = 1.0 - beta1 ** t, 1.0 - beta2 ** t
    if bias_correction == "torch":
        step_size, denom_div = lr / bc1, math.sqrt(bc2)
    elif bias_correction == "hf":
        step_size, denom_div = lr * math.sqrt(bc2) / bc1, 1.0
    else:
        step_size, denom_div = lr, 1.0
    return {"lr": lr, "decay": decay_factor(lr, weight_decay), "weight_decay": weight_decay,
            "beta1": beta1, "one_minus_beta1": 1.0 - beta1,
            "beta2": beta2, "one_minus_beta2": 1.0 - beta2,
            "step_size": step_size, "denom_div": denom_div, "eps": eps}


def adam_moments(exp_avg, exp_avg_sq, grad, sc):
    """The two EMAs, in the order every Adam-family rule of refopt uses."""
    exp_avg = sc["beta1"] * exp_avg + sc["one_minus_beta1"] * grad
    exp_avg_sq = sc["beta2"] * exp_avg_sq + sc["one_minus_beta2"] * (grad * grad)
    return exp_avg, exp_avg_sq


def adam_direction(exp_avg, exp_avg_sq, sc):
    """u = m / (sqrt(v)/denom_div + eps), with 0/0 := 0 (reachable only when eps = 0)."""
    return safe_divide(exp_avg, np.sqrt(exp_avg_sq) / sc["denom_div"] + sc["eps"])


class Adam(Rule):
    __doc__ = __doc__
    name = "adam"
    state_type = AdamState
    buffers = ("exp_avg", "exp_avg_sq")
    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                "bias_correction": "torch", **COMMON_DEFAULTS}
    decoupled = False

    def _validate_hyper(self, h):
        h["betas"] = V.betas(h["betas"])
        h["bias_correction"] = V.choice("bias_correction", h["bias_correction"], BIAS_CORRECTIONS)
        return h

    @property
    def decouples_weight_decay(self) -> bool:
        return self.decoupled

    def scalars(self, t, lr):
        b1, b2 = self.hyper["betas"]
        return adam_scalars(b1, b2, t, lr, self.hyper["weight_decay"],
                            self.hyper["bias_correction"], self.hyper["eps"])

    def _update_tensor(self, param, grad, bufs, t, sc):
        if self.decoupled:
            param = param * sc["decay"]
        else:
            grad = grad + sc["weight_decay"] * param
        exp_avg, exp_avg_sq = adam_moments(bufs["exp_avg"], bufs["exp_avg_sq"], grad, sc)
        param = param - sc["step_size"] * adam_direction(exp_avg, exp_avg_sq, sc)
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, {}


class AdamW(Adam):
    __doc__ = __doc__
    name = "adamw"
    state_type = AdamWState
    defaults = {**Adam.defaults, "weight_decay": 1e-2}
    decoupled = True
