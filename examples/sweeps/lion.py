"""Lion (Chen et al. 2023, arXiv 2302.06675, "Symbolic Discovery of Optimization Algorithms"),
written with refopt's public extension API only (``refopt.extend``; ``docs/extending.md``).

Per tensor, elementwise, weight decay decoupled and applied first:

    c_t = beta1 m_{t-1} + (1 - beta1) g_t
    w_t = (1 - eta lambda) w_{t-1} - eta sign(c_t)
    m_t = beta2 m_{t-1} + (1 - beta2) g_t

Use it by import path: ``refopt.get_rule("lion:Lion", lr=1e-4)`` with this folder on sys.path,
or ``{"name": "lion:Lion"}`` in a sweep spec (``refopt sweep`` puts the spec's folder on
sys.path).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from refopt.extend import COMMON_DEFAULTS, Rule, decay_factor


class LionState(NamedTuple):
    step: tuple
    exp_avg: tuple


class Lion(Rule):
    __doc__ = __doc__
    name = "lion"
    state_type = LionState
    buffers = ("exp_avg",)
    defaults = {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0, **COMMON_DEFAULTS}

    def _validate_hyper(self, h):
        b1, b2 = (float(b) for b in h["betas"])
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must both lie in [0, 1), got {h['betas']!r}")
        h["betas"] = (b1, b2)
        return h

    def scalars(self, t, lr):
        b1, b2 = self.hyper["betas"]
        return {"lr": lr, "decay": decay_factor(lr, self.hyper["weight_decay"]),
                "beta1": b1, "one_minus_beta1": 1.0 - b1, "beta2": b2,
                "one_minus_beta2": 1.0 - b2}

    def _update_tensor(self, param, grad, bufs, t, sc):
        m = bufs["exp_avg"]
        direction = np.sign(sc["beta1"] * m + sc["one_minus_beta1"] * grad)
        new_param = param * sc["decay"] - sc["lr"] * direction
        return new_param, {"exp_avg": sc["beta2"] * m + sc["one_minus_beta2"] * grad}, {}
