"""Small PyTorch ports of AdamX, AdamS and AlphaAdam, written as a porter would: examples for
``refopt verify`` and fixtures of ``tests/test_verify.py``.

Verify one with (from this directory)::

    refopt verify adams torch_ports:AdamS --dtype float64

Each optimizer takes refopt's hyperparameter names, so ``refopt verify`` can configure it for
every golden case; it computes each tensor in its own dtype and the per-step scalars in Python
floats (float64), as refopt's dtype contract asks. The moments are written as plain
``mul_``/``add_`` in the reference's operation order: torch's fused ``add_(x, alpha=a)``,
``addcmul_`` and ``lerp_`` round once (an FMA) where the reference rounds twice, which the
suite's tolerances allow (``tests/test_verify.py::test_fused_torch_port``). The bottom of the file holds copies with one
known mistake planted each; ``refopt verify`` must fail them and name the mistake.
"""
from __future__ import annotations

import math

import torch
from torch.optim import Optimizer


def _check(lr, betas, eps, weight_decay, beta2_open_low=False):
    # A conforming port refuses what the golden suite marks invalid (NaN fails every test).
    if not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be finite and >= 0, got {lr}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
    for i, b in enumerate(betas):
        low_ok = b > 0 if (beta2_open_low and i == 1) else b >= 0
        if not (low_ok and b < 1):
            raise ValueError(f"betas[{i}] must be in [0, 1), got {b}")


class _Port(Optimizer):
    """The loop every port shares: skip tensors without a gradient, create the zeroed buffers
    on first use, advance t, then the rule's own ``_update(p, grad, state, group, t)``."""

    buffers = ("exp_avg", "exp_avg_sq")

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, **{b: torch.zeros_like(p) for b in self.buffers})
                state["step"] += 1
                self._update(p, p.grad, state, group, state["step"])


class AdamX(_Port):
    """AdamX / AdamNX (arXiv 2511.13465): Adam with the bias correction folded into the betas,
    beta1_t = (b1 - b1^t)/(1 - b1^t), beta2_t = expm1((t-1) l)/expm1(t l), l = (1-b2) ln b2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01):
        _check(lr, betas, eps, weight_decay, beta2_open_low=True)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        beta1_t = (b1 - b1 ** t) / (1 - b1 ** t)
        ell = (1 - b2) * math.log(b2)
        beta2_t = math.expm1((t - 1) * ell) / math.expm1(t * ell)
        p.mul_(1 - lr * wd)                                   # decoupled, before the moments
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1_t).add_((1 - beta1_t) * grad)
        v.mul_(beta2_t).add_((1 - beta2_t) * (grad * grad))
        p.sub_(lr * _safe_div(m, v.sqrt() + eps))             # eps outside the sqrt


class AdamS(_Port):
    """AdamS (arXiv 2505.16363): the denominator is a weighted RMS of the OLD momentum and g.
    ``bias_correction=False`` is the paper form, ``True`` the official code (both momenta
    divided by c_t = 1 - b1^t, the old one too)."""

    def __init__(self, params, lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                 bias_correction=False):
        _check(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      bias_correction=bool(bias_correction)))

    buffers = ("exp_avg",)

    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        c = 1 - b1 ** t if group["bias_correction"] else 1.0
        m = state["exp_avg"]
        p.mul_(1 - lr * wd)
        m_prev = m / c
        nu = b2 * (m_prev * m_prev) + (1 - b2) * (grad * grad)   # from m_{t-1}: before m moves
        m.mul_(b1).add_((1 - b1) * grad)
        p.sub_(lr * _safe_div(m / c, nu.sqrt() + eps))


class AlphaAdam(_Port):
    """AlphaAdam (arXiv 2501.18094 v1) with refopt's default options: AdamW (hf-style bias
    correction) whose update keeps only the coordinates where m_{t-1} * g > 0, scaled by
    alpha = 1/max(kept fraction, 1e-3); step 1 is unmasked."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        _check(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _mask(self, m_prev, m_new, grad, t):
        if t == 1:
            return torch.ones_like(grad, dtype=torch.bool)   # first step unmasked
        return m_prev * grad > 0                              # historical momentum, strict

    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        step_size = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        p.mul_(1 - lr * wd)
        m_prev = m.clone()
        m.mul_(b1).add_((1 - b1) * grad)
        v.mul_(b2).add_((1 - b2) * (grad * grad))
        mask = self._mask(m_prev, m, grad, t)
        n = mask.numel()
        alpha = 1.0 if t == 1 or n == 0 else 1.0 / max(int(mask.sum()) / n, 1e-3)
        u = _safe_div(m, v.sqrt() + eps)
        p.sub_(step_size * (alpha * mask.to(p.dtype) * u))


class AdamSFused(AdamS):
    """AdamS written like the official code, with the fused ``lerp_`` (one rounding, an FMA)."""

    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        c = 1 - b1 ** t if group["bias_correction"] else 1.0
        m = state["exp_avg"]
        p.mul_(1 - lr * wd)
        nu = b2 * (m / c) ** 2 + (1 - b2) * (grad * grad)
        m.lerp_(grad, 1 - b1)
        p.sub_(lr * _safe_div(m / c, nu.sqrt() + eps))


def _safe_div(num, den):
    """num / den with 0/0 := 0 (reachable only when eps = 0), as refopt defines it."""
    return torch.where((num == 0) & (den == 0), torch.zeros_like(num), num / den)


# -- copies with one known mistake planted each (must fail with the right diagnosis) ----------

class AdamXEpsInsideSqrt(AdamX):
    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        beta1_t = (b1 - b1 ** t) / (1 - b1 ** t)
        ell = (1 - b2) * math.log(b2)
        beta2_t = math.expm1((t - 1) * ell) / math.expm1(t * ell)
        p.mul_(1 - lr * wd)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1_t).add_((1 - beta1_t) * grad)
        v.mul_(beta2_t).add_((1 - beta2_t) * (grad * grad))
        p.sub_(lr * (m / (v + eps).sqrt()))                  # MISTAKE: eps inside the sqrt


class AdamXExtraBiasCorrection(AdamX):
    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        beta1_t = (b1 - b1 ** t) / (1 - b1 ** t)
        ell = (1 - b2) * math.log(b2)
        beta2_t = math.expm1((t - 1) * ell) / math.expm1(t * ell)
        p.mul_(1 - lr * wd)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1_t).add_((1 - beta1_t) * grad)
        v.mul_(beta2_t).add_((1 - beta2_t) * (grad * grad))
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)  # MISTAKE: Adam's correction again
        p.sub_(lr * (m_hat / (v_hat.sqrt() + eps)))


class AdamSMtDenominator(AdamS):
    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        c = 1 - b1 ** t if group["bias_correction"] else 1.0
        m = state["exp_avg"]
        p.mul_(1 - lr * wd)
        m.mul_(b1).add_((1 - b1) * grad)
        nu = b2 * (m / c) ** 2 + (1 - b2) * (grad * grad)    # MISTAKE: the updated m_t
        p.sub_(lr * _safe_div(m / c, nu.sqrt() + eps))


class AdamSCoupledDecay(AdamS):
    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        c = 1 - b1 ** t if group["bias_correction"] else 1.0
        m = state["exp_avg"]
        grad = grad + wd * p                                   # MISTAKE: L2, coupled
        m_prev = m / c
        nu = b2 * (m_prev * m_prev) + (1 - b2) * (grad * grad)
        m.mul_(b1).add_((1 - b1) * grad)
        p.sub_(lr * _safe_div(m / c, nu.sqrt() + eps))


class AdamSIgnoresBiasCorrection(AdamS):
    """Accepts bias_correction but never applies it: fails the official-code-form cases."""

    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        m = state["exp_avg"]                                   # MISTAKE: no c_t anywhere
        p.mul_(1 - lr * wd)
        nu = b2 * (m * m) + (1 - b2) * (grad * grad)
        m.mul_(b1).add_((1 - b1) * grad)
        p.sub_(lr * _safe_div(m, nu.sqrt() + eps))


class AlphaAdamCautiousMask(AlphaAdam):
    def _mask(self, m_prev, m_new, grad, t):
        if t == 1:
            return torch.ones_like(grad, dtype=torch.bool)
        return m_new * grad > 0                                # MISTAKE: m_t, i.e. Cautious


class AlphaAdamDecayAfterStep(AlphaAdam):
    def _update(self, p, grad, state, group, t):
        decay = 1 - group["lr"] * group["weight_decay"]
        wd, group["weight_decay"] = group["weight_decay"], 0.0
        try:
            super()._update(p, grad, state, group, t)
        finally:
            group["weight_decay"] = wd
        p.mul_(decay)                                          # MISTAKE: decay after the step


class AlphaAdamNoBiasCorrection(AlphaAdam):
    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        p.mul_(1 - lr * wd)
        m_prev = m.clone()
        m.mul_(b1).add_((1 - b1) * grad)
        v.mul_(b2).add_((1 - b2) * (grad * grad))
        mask = self._mask(m_prev, m, grad, t)
        n = mask.numel()
        alpha = 1.0 if t == 1 or n == 0 else 1.0 / max(int(mask.sum()) / n, 1e-3)
        p.sub_(lr * (alpha * mask.to(p.dtype) * (m / (v.sqrt() + eps))))  # MISTAKE: step size lr


class AdamSNoValidation(AdamS):
    """Accepts beta2 = 1, lr < 0, ...: must fail the suite's invalid cases."""

    def __init__(self, params, lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                 bias_correction=False):
        Optimizer.__init__(self, params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                              weight_decay=weight_decay,
                                              bias_correction=bool(bias_correction)))
