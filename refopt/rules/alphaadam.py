r"""AlphaAdam (Chang, Li, Yuan 2025, arXiv 2501.18094 v1; v2 withdrew Theorem 3.5).

AdamW with an elementwise, intra-layer mask :math:`\phi_t` that keeps the coordinates where the
*historical* momentum :math:`m_{t-1}` agrees in sign with the gradient :math:`g_t`, and a dynamic
per-tensor strength :math:`\alpha_t` that compensates for the masked coordinates. The paper body
(Algorithm 1, the alpha formula) was not available: this is the **reconstructed family** of
``proofs/spec/alphaadam.md`` section 2.2, every choice a named option. One tensor of n elements:

.. math::

    t &\leftarrow t+1,\quad \theta \leftarrow \theta(1 - \eta\lambda)   && \text{decoupled, unmasked, first}\\
    s &= m_{t-1} \odot g_t          && \text{mask\_source=m\_prev, read before m is updated}\\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
    \phi &= 1[s > 0]\ (\text{strict})\ \text{or}\ 1[s \ge 0] \\
    u &= m_t / (\sqrt{v_t}/d_t + \epsilon),\quad \psi = \alpha_t\phi + \gamma(1-\phi) \\
    \theta &\leftarrow \theta - \eta_t\,(\psi \odot u)

with ``bias_correction="hf"``: :math:`d_t = 1`, :math:`\eta_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)`;
``"torch"``: :math:`d_t = \sqrt{1-\beta_2^t}`, :math:`\eta_t = \eta/(1-\beta_1^t)`. With k = sum(phi),
q = k/n:

===============  =================================================================
``alpha_rule``   alpha_t
===============  =================================================================
``count``        1/max(q, density_floor)   (default; the current Cautious rescale)
``count+1``      n/(k+1)                   (the original Cautious rescale)
``norm``         min(alpha_max, ||u||/||phi*u||); 1 if phi*u = 0 (norms in float64)
``soft``         psi = phi/s + (1-phi)*s, s = max(q, density_floor); gamma ignored
``none``         1
===============  =================================================================

Options and defaults (spec 2.3; all Assumed except ``mask_source``, which is Source):
``mask_source`` ``"m_prev"`` | ``"m_t"`` (= Cautious) | ``"ones"``; ``strict`` True;
``alpha_rule`` ``"count"``; ``density_floor`` None = 1e-3 (1e-2 for ``soft``); ``alpha_max`` 10;
``gamma`` 0; ``first_step`` ``"unmasked"`` (psi = 1 at t = 1: AdamW's step) | ``"cautious"`` (the
t = 1 mask from m_1*g_1) | ``"as_is"`` (the strict m_prev mask is empty at t = 1), used only with
``m_prev``; ``bias_correction`` ``"hf"``; ``eps`` None = 1e-6 (hf) or 1e-8 (torch).

Identities checked by the tests (spec 2.5): ``mask_source="ones"`` with ``alpha_rule`` in
{none, count} equals :class:`refopt.rules.adam.AdamW` bit for bit; ``mask_source="m_t"`` equals
C-AdamW under each published rescale to float64 rounding. ``info`` per tensor: ``mask`` (bool),
``alpha`` (float) and ``kept`` (k). The mask draws no random numbers.

Every AlphaAdam theorem is treated as unreliable: the authors withdrew Theorem 3.5 in v2.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _validation as V
from ._base import COMMON_DEFAULTS, Rule
from .adam import AdamMoments, adam_direction, adam_moments, adam_scalars

ALPHA_RULES = ("count", "count+1", "norm", "soft", "none")


def alpha_for(rule: str, kept: int, size: int, density_floor: float, alpha_max: float,
              u: np.ndarray | None = None, mask: np.ndarray | None = None) -> float:
    """The per-tensor strength alpha (for ``soft``, the s of psi = phi/s + (1-phi)s), float64."""
    q = kept / size if size else 1.0
    if rule == "count":
        return 1.0 / max(q, density_floor)
    if rule == "count+1":
        return size / (kept + 1)
    if rule == "soft":
        return max(q, density_floor)
    if rule == "norm":
        u64 = np.asarray(u, dtype=np.float64)
        kept_norm = math.sqrt(float(np.sum(np.where(mask, u64, 0.0) ** 2)))
        if kept_norm == 0.0:
            return 1.0
        return min(alpha_max, math.sqrt(float(np.sum(u64 ** 2))) / kept_norm)
    return 1.0


class AlphaAdamState(AdamMoments):
    """AlphaAdam's state (AdamMoments' fields): not Adam's, AdamW's or C-AdamW's."""

    __slots__ = ()


class AlphaAdam(Rule):
    __doc__ = __doc__
    name = "alphaadam"
    state_type = AlphaAdamState
    buffers = ("exp_avg", "exp_avg_sq")
    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": None, "weight_decay": 0.0,
                "mask_source": "m_prev", "strict": True, "alpha_rule": "count",
                "density_floor": None, "alpha_max": 10.0, "gamma": 0.0,
                "first_step": "unmasked", "bias_correction": "hf", **COMMON_DEFAULTS}

    def _validate_hyper(self, h):
        h["betas"] = V.betas(h["betas"])
        h["mask_source"] = V.choice("mask_source", h["mask_source"], ("m_prev", "m_t", "ones"))
        h["strict"] = V.boolean("strict", h["strict"])
        h["alpha_rule"] = V.choice("alpha_rule", h["alpha_rule"], ALPHA_RULES)
        h["first_step"] = V.choice("first_step", h["first_step"],
                                   ("unmasked", "cautious", "as_is"))
        h["bias_correction"] = V.choice("bias_correction", h["bias_correction"], ("hf", "torch"))
        if h["eps"] is None:
            h["eps"] = 1e-6 if h["bias_correction"] == "hf" else 1e-8
        h["eps"] = V.finite_nonneg("eps", h["eps"])
        floor_given = h["density_floor"] is not None
        if h["density_floor"] is None:
            h["density_floor"] = 1e-2 if h["alpha_rule"] == "soft" else 1e-3
        h["density_floor"] = V.in_range("density_floor", h["density_floor"], 0.0, 1.0,
                                        low_open=True, high_open=False)
        h["alpha_max"] = V.in_range("alpha_max", h["alpha_max"], 1.0, math.inf)
        h["gamma"] = V.finite_nonneg("gamma", h["gamma"])
        # Options the chosen variant does not read (spec 2.2-2.3): legal, but say so.
        rule_ = h["alpha_rule"]
        if h["gamma"] != self.defaults["gamma"] and rule_ == "soft":
            V.ignored("gamma", h["gamma"], "alpha_rule='soft' sets psi = phi/s + (1-phi) s")
        if h["alpha_max"] != self.defaults["alpha_max"] and rule_ != "norm":
            V.ignored("alpha_max", h["alpha_max"], f"it caps alpha_rule='norm' only, not {rule_!r}")
        if floor_given and h["density_floor"] != 1e-3 and rule_ not in ("count", "soft"):
            # (1e-3, the resolved default, is what a manifest of resolved options passes.)
            V.ignored("density_floor", h["density_floor"],
                      f"it floors the kept fraction of alpha_rule 'count' and 'soft' only, "
                      f"not {rule_!r}")
        if h["first_step"] != self.defaults["first_step"] and h["mask_source"] != "m_prev":
            V.ignored("first_step", h["first_step"],
                      f"it applies to mask_source='m_prev' only, not {h['mask_source']!r}")
        return h

    def dtype_bounds(self):
        # count and soft: alpha (or 1/s) reaches 1/density_floor for a tensor whose mask keeps
        # nothing, and inf * 0 is NaN in psi = alpha*phi + gamma*(1-phi).
        if self.hyper["alpha_rule"] in ("count", "soft"):
            return {"density_floor": ("alpha = 1/density_floor (a mask that keeps nothing)",
                                      1.0 / self.hyper["density_floor"])}
        return {}

    def scalars(self, t, lr):
        b1, b2 = self.hyper["betas"]
        return adam_scalars(b1, b2, t, lr, self.hyper["weight_decay"],
                            self.hyper["bias_correction"], self.hyper["eps"])

    def mask_product(self, exp_avg_prev, exp_avg, grad, t):
        """The score s whose sign decides the mask, or None for an all-ones mask."""
        h = self.hyper
        if h["mask_source"] == "ones":
            return None
        if h["mask_source"] == "m_t":
            return exp_avg * grad
        if t == 1 and h["first_step"] == "unmasked":
            return None
        if t == 1 and h["first_step"] == "cautious":
            return exp_avg * grad
        return exp_avg_prev * grad

    def _update_tensor(self, param, grad, bufs, t, sc):
        h = self.hyper
        param = param * sc["decay"]
        exp_avg, exp_avg_sq = adam_moments(bufs["exp_avg"], bufs["exp_avg_sq"], grad, sc)
        score = self.mask_product(bufs["exp_avg"], exp_avg, grad, t)
        u = adam_direction(exp_avg, exp_avg_sq, sc)
        one = param.dtype.type(1)
        if score is None:
            # An all-ones mask with psi = 1 exactly (unmasked first step, mask_source="ones").
            mask = np.ones(param.shape, dtype=bool)
            kept = mask.size
            alpha = 1.0 if t == 1 and h["mask_source"] == "m_prev" else \
                alpha_for(h["alpha_rule"], kept, mask.size, h["density_floor"], h["alpha_max"], u, mask)
        else:
            mask = score > 0 if h["strict"] else score >= 0
            kept = int(np.count_nonzero(mask))
            alpha = alpha_for(h["alpha_rule"], kept, mask.size, h["density_floor"],
                              h["alpha_max"], u, mask)
        phi = mask.astype(param.dtype)
        a = param.dtype.type(alpha)
        if h["alpha_rule"] == "soft":
            psi = phi / a + (one - phi) * a
        else:
            psi = a * phi + param.dtype.type(h["gamma"]) * (one - phi)
        param = param - sc["step_size"] * (psi * u)
        info = {"mask": mask, "alpha": alpha, "kept": kept}
        return param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, info
