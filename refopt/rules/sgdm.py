r"""SGD with heavy-ball momentum, ``torch.optim.SGD`` semantics (the late-training limit of AdamX).

.. math::

    g &\leftarrow g + \lambda\theta \quad(\text{coupled, as torch}) \\
    b_t &= g_1 \ (t = 1),\qquad b_t = \mu b_{t-1} + (1-\delta) g_t \ (t > 1) \\
    d &= g + \mu b_t \ (\text{nesterov})\ \text{or}\ b_t,\qquad \theta \leftarrow \theta - \eta d

``momentum`` mu (default 0.9), ``dampening`` delta (default 0), ``nesterov`` (default False).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as V
from ._base import COMMON_DEFAULTS, Rule


class SGDMState(NamedTuple):
    step: tuple[int, ...]
    momentum_buffer: tuple[np.ndarray, ...]


class SGDM(Rule):
    __doc__ = __doc__
    name = "sgdm"
    state_type = SGDMState
    buffers = ("momentum_buffer",)
    defaults = {"lr": 1e-2, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0,
                "nesterov": False, **COMMON_DEFAULTS}

    def _validate_hyper(self, h):
        h["momentum"] = V.in_range("momentum", h["momentum"], 0.0, 1.0)
        h["dampening"] = V.in_range("dampening", h["dampening"], 0.0, 1.0, high_open=False)
        h["nesterov"] = V.boolean("nesterov", h["nesterov"])
        if h["nesterov"] and (h["momentum"] == 0.0 or h["dampening"] != 0.0):
            raise ValueError("nesterov requires momentum > 0 and dampening = 0")
        return h

    @property
    def decouples_weight_decay(self) -> bool:
        return False  # torch.optim.SGD adds weight_decay * param to the gradient (L2)

    def scalars(self, t, lr):
        return {"lr": lr, "weight_decay": self.hyper["weight_decay"],
                "momentum": self.hyper["momentum"], "one_minus_dampening": 1.0 - self.hyper["dampening"]}

    def _update_tensor(self, param, grad, bufs, t, sc):
        grad = grad + sc["weight_decay"] * param
        if t == 1:
            buf = grad.copy()
        else:
            buf = sc["momentum"] * bufs["momentum_buffer"] + sc["one_minus_dampening"] * grad
        direction = grad + sc["momentum"] * buf if self.hyper["nesterov"] else buf
        param = param - sc["lr"] * direction
        return param, {"momentum_buffer": buf}, {}
