r"""AdamS (Zhang, Wang, Chen 2025, arXiv 2505.16363; EMNLP 2025 main, pp. 10730-10749).

"Momentum itself can be a normalizer": no second moment. The denominator is a weighted RMS of the
*previous* momentum and the current gradient. Per tensor, elementwise (``proofs/spec/adams.md``
section 2):

Paper form, ``bias_correction=False`` (default; sources: the paper's public descriptions):

.. math::

    \nu_t &= \beta_2 m_{t-1}^2 + (1-\beta_2) g_t^2          && \text{OLD momentum} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
    w_t &= (1 - \eta_t\lambda) w_{t-1} - \eta_t\, m_t / (\sqrt{\nu_t} + \epsilon)

Official-code form, ``bias_correction=True`` (github.com/pku-huzhang/AdamS ``new_optimizers.py``),
with :math:`c_t = 1 - \beta_1^t` dividing both the old and the new momentum (the old one by
:math:`c_t`, not :math:`c_{t-1}`: kept as the code has it):

.. math::

    \nu_t = \beta_2 (m_{t-1}/c_t)^2 + (1-\beta_2) g_t^2,\qquad
    w_t = (1 - \eta_t\lambda) w_{t-1} - \eta_t\, (m_t/c_t) / (\sqrt{\nu_t} + \epsilon)

Weight decay is decoupled and applied first; epsilon sits outside the square root; 0/0 := 0 when
epsilon = 0 (nu = 0 implies m = 0). Guarantee (spec A2, proved in ``proofs/``): in the paper form
:math:`|m_t|/\sqrt{\nu_t} \le \sqrt{C}`, :math:`C = \beta_1^2/\beta_2 + (1-\beta_1)^2/(1-\beta_2)`,
so each coordinate moves at most :math:`\eta(\sqrt{C} + \lambda|w|)` per step.

Not the ``AdamS`` of pytorch-optimizer ("Adam with stable weight decay", arXiv 2011.11152).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as V
from ._base import COMMON_DEFAULTS, Rule, decay_factor, safe_divide


class AdamSState(NamedTuple):
    step: tuple[int, ...]
    exp_avg: tuple[np.ndarray, ...]


class AdamS(Rule):
    __doc__ = __doc__
    name = "adams"
    state_type = AdamSState
    buffers = ("exp_avg",)
    defaults = {"lr": 3e-4, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1,
                "bias_correction": False, **COMMON_DEFAULTS}

    def _validate_hyper(self, h):
        h["betas"] = V.betas(h["betas"])
        h["bias_correction"] = V.boolean("bias_correction", h["bias_correction"])
        return h

    def scalars(self, t, lr):
        b1, b2 = self.hyper["betas"]
        # The paper form uses no correction: c_t = 1 and the divisions below are exact no-ops.
        c = 1.0 - b1 ** t if self.hyper["bias_correction"] else 1.0
        return {"lr": lr, "decay": decay_factor(lr, self.hyper["weight_decay"]),
                "beta1": b1, "one_minus_beta1": 1.0 - b1, "beta2": b2, "one_minus_beta2": 1.0 - b2,
                "bias_correction1": c, "eps": self.hyper["eps"]}

    def _update_tensor(self, param, grad, bufs, t, sc):
        param = param * sc["decay"]
        m_prev = bufs["exp_avg"] / sc["bias_correction1"]
        nu = sc["beta2"] * (m_prev * m_prev) + sc["one_minus_beta2"] * (grad * grad)
        exp_avg = sc["beta1"] * bufs["exp_avg"] + sc["one_minus_beta1"] * grad
        m_hat = exp_avg / sc["bias_correction1"]
        param = param - sc["lr"] * safe_divide(m_hat, np.sqrt(nu) + sc["eps"])
        return param, {"exp_avg": exp_avg}, {}
