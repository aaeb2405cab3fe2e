r"""AdaX (Li, Wu, Luo, Xie 2020, arXiv 2004.09740; github.com/switchablenorms/AdaX
``cifar10-code/AdaX.py``): an exponential *long-term* memory of past g^2.

.. math::

    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \quad(\text{no bias correction}) \\
    v_t &= (1+b) v_{t-1} + b\, g_t^2 \\
    \theta &\leftarrow \theta - \eta\sqrt{(1+b)^t - 1}\; m_t/(\sqrt{v_t} + \epsilon)

``betas = (beta1, b)``: the second entry is AdaX's growth rate b (default 1e-4), not an EMA
coefficient. :math:`v_t/((1+b)^t - 1)` is AdamX's normalised average with :math:`c' = 1/(1+b)`
(spec T7), so AdaX is the oracle for AdamX's v at ``b = beta2**-(1-beta2) - 1``.
``weight_decay_mode`` ``"l2"`` (AdaX, default) adds lambda*theta to g; ``"decoupled"`` is AdaXW.
The factor (1+b)^t - 1 is computed as expm1(t*log1p(b)) in float64. Note: a float32 ``v``
overflows near t = 1.03e6 at b = 1e-4 (spec T7); AdamX's normalised state cannot.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import _validation as V
from ._base import COMMON_DEFAULTS, Rule, decay_factor, safe_divide


class AdaXState(NamedTuple):
    step: tuple[int, ...]
    exp_avg: tuple[np.ndarray, ...]
    exp_avg_sq: tuple[np.ndarray, ...]


class AdaX(Rule):
    __doc__ = __doc__
    name = "adax"
    state_type = AdaXState
    buffers = ("exp_avg", "exp_avg_sq")
    defaults = {"lr": 1e-3, "betas": (0.9, 1e-4), "eps": 1e-12, "weight_decay": 5e-4,
                "weight_decay_mode": "l2", **COMMON_DEFAULTS}

    def _validate_hyper(self, h):
        h["betas"] = V.betas(h["betas"], beta2_open_low=True)
        h["weight_decay_mode"] = V.choice("weight_decay_mode", h["weight_decay_mode"],
                                          ("l2", "decoupled"))
        return h

    def scalars(self, t, lr):
        b1, b = self.hyper["betas"]
        wd = self.hyper["weight_decay"]
        decoupled = self.hyper["weight_decay_mode"] == "decoupled"
        return {"lr": lr, "decay": decay_factor(lr, wd) if decoupled else 1.0,
                "l2": 0.0 if decoupled else wd,
                "beta1": b1, "one_minus_beta1": 1.0 - b1, "growth": 1.0 + b, "b": b,
                "step_size": lr * math.sqrt(math.expm1(t * math.log1p(b))),
                "eps": self.hyper["eps"]}

    def _update_tensor(self, param, grad, bufs, t, sc):
        if self.hyper["weight_decay_mode"] == "l2":
            grad = grad + sc["l2"] * param
        else:
            param = param * sc["decay"]
        exp_avg = sc["beta1"] * bufs["exp_avg"] + sc["one_minus_beta1"] * grad
        exp_avg_sq = sc["growth"] * bufs["exp_avg_sq"] + sc["b"] * (grad * grad)
        param = param - sc["step_size"] * safe_divide(exp_avg, np.sqrt(exp_avg_sq) + sc["eps"])
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, {}
