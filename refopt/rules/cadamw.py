r"""C-AdamW, the Cautious AdamW (Liang, Chen, Liu, Liu 2024, arXiv 2411.16085;
github.com/kyleliang919/C-Optim ``c_adamw.py``).

AdamW whose update is masked by the agreement of the *updated* momentum with the gradient,
written in C-Optim's order (the mask multiplies m before the division):

.. math::

    \theta &\leftarrow \theta(1-\eta\lambda),\quad m_t, v_t \text{ as Adam},\quad
    \phi = 1[m_t \odot g_t > 0] \\
    \theta &\leftarrow \theta - \eta_t\,\frac{m_t \odot (\phi\cdot r)}{\sqrt{v_t}/d_t + \epsilon}

``bias_correction`` selects where eps acts (spec alphaadam.md 2.2 and E5):

* ``"hf"`` (default; C-Optim's single-tensor path): :math:`d_t = 1`,
  :math:`\eta_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)`: eps on the uncorrected sqrt(v);
* ``"torch"`` (timm ``AdamWLegacy(caution=True)``, heavyball ``caution=True``, C-Optim's foreach
  path): :math:`d_t = \sqrt{1-\beta_2^t}`, :math:`\eta_t = \eta/(1-\beta_1^t)`, i.e.
  u = m_hat/(sqrt(v_hat) + eps). eps keeps its default 1e-6 (C-Optim's constructor); timm's
  default is 1e-8, pass it explicitly.

``scaling`` selects the published rescale r: ``"count"`` (current code) r = 1/max(mean(phi), 1e-3);
``"count+1"`` (the original, kept as a comment in the code) r = n/(k+1), k = sum(phi).

Kept as an independent, naive implementation: it is the oracle for AlphaAdam's
``mask_source="m_t"`` identities (spec E2/E3, and E5 with ``bias_correction="torch"``), so it
shares no masking code with AlphaAdam.
"""
from __future__ import annotations

import numpy as np

from .. import _validation as V
from ._base import COMMON_DEFAULTS, Rule, safe_divide
from .adam import AdamMoments, adam_moments, adam_scalars

#: The two eps placements of public Cautious AdamW code (spec alphaadam.md E5).
BIAS_CORRECTIONS = ("hf", "torch")


class CAdamWState(AdamMoments):
    """C-AdamW's state (AdamMoments' fields)."""

    __slots__ = ()


class CAdamW(Rule):
    __doc__ = __doc__
    name = "cadamw"
    state_type = CAdamWState
    buffers = ("exp_avg", "exp_avg_sq")
    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.0,
                "scaling": "count", "bias_correction": "hf", **COMMON_DEFAULTS}

    def _validate_hyper(self, h):
        h["betas"] = V.betas(h["betas"])
        h["scaling"] = V.choice("scaling", h["scaling"], ("count", "count+1"))
        h["bias_correction"] = V.choice("bias_correction", h["bias_correction"],
                                        BIAS_CORRECTIONS)
        return h

    def scalars(self, t, lr):
        b1, b2 = self.hyper["betas"]
        return adam_scalars(b1, b2, t, lr, self.hyper["weight_decay"],
                            self.hyper["bias_correction"], self.hyper["eps"])

    def _update_tensor(self, param, grad, bufs, t, sc):
        param = param * sc["decay"]
        exp_avg, exp_avg_sq = adam_moments(bufs["exp_avg"], bufs["exp_avg_sq"], grad, sc)
        # denom_div is 1.0 under "hf" (x / 1.0 is exact: bit-identical to sqrt(v) + eps).
        denom = np.sqrt(exp_avg_sq) / sc["denom_div"] + sc["eps"]
        mask = (exp_avg * grad > 0).astype(param.dtype)
        if self.hyper["scaling"] == "count":
            mean = float(np.mean(mask, dtype=np.float64)) if mask.size else 1.0
            mask = mask / param.dtype.type(max(mean, 1e-3))
        else:
            mask = mask * param.dtype.type(mask.size / (float(mask.sum()) + 1.0))
        param = param - sc["step_size"] * safe_divide(exp_avg * mask, denom)
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, {}
