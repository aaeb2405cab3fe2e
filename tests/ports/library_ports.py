"""PyTorch ports written the way public libraries write them, each with one habit that refopt's
verdict must handle without a wrapper (written here from the spec, sharing no code with them):

* :class:`AdamXSwallowsKwargs`: AdamX whose constructor takes ``**kwargs`` and ignores them,
  and accepts beta2 = 0 (the official AdamNX class does both; spec adamx.md, validation);
* :class:`AdamXRefusesUnknownKwargs`: ``**kwargs`` checked against its own names, anything else
  a TypeError at construction (heavyball's habit);
* :class:`AdamSReadsGroups`: AdamS in the official-code form, with no ``bias_correction``
  keyword, whose ``weight_decay`` lives in the param groups only (nanoGPT style: the
  constructor takes it and drops it);
* :class:`AdamXFloat32State`: float32 state next to float64 params (a ``storage_dtype``);
  :class:`AdamXFloat32StateEpsInsideSqrt` adds one real mistake on top;
* :class:`CAdamWFloat32Scalars`: torch-style Cautious AdamW whose hyperparameters become
  float32 0-d tensors at every step (``torch.tensor(group["lr"])``), so the bias corrections,
  their sqrt and the step size are float32 next to float64 params (C-Optim's foreach habit);
* :class:`AdamSFloat32InPlaceMtDenominator`: AdamS whose momentum is a float32 buffer updated
  in place (``mul_``/``add_``) whatever the params' dtype, with the denominator from the updated
  m_t (ReaLLM-Forge's two habits);
* :class:`AdamXInvalidCrash`, :class:`AdamXLateRefusal`, :class:`AdamXRefusesAfterChange`:
  wrong ways to refuse an invalid case (a KeyError, a ValueError only at step 2, a ValueError
  after changing the params);
* :class:`AdamXSystemExit`, :class:`AdamXKeyboardInterrupt`: a port that ends the process
  from inside ``step()``; never a pass.
"""
from __future__ import annotations

import math

import torch

from torch_ports import AdamX, AdamS, _check, _safe_div


class AdamXSwallowsKwargs(AdamX):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01,
                 **kwargs):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= betas[1] < 1.0:               # beta2 = 0 accepted, as the official code
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        torch.optim.Optimizer.__init__(self, params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                                          weight_decay=weight_decay))

    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        beta1_t = (b1 - b1 ** t) / (1 - b1 ** t)
        # The code's own form of beta2_t (defined at beta2 = 0, where the stable form is not).
        beta2_t = (1 - b2 ** ((1 - b2) * (t - 1))) / (1 - b2 ** ((1 - b2) * t)) if b2 > 0 \
            else (0.0 if t == 1 else 1.0)
        p.mul_(1 - lr * wd)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1_t).add_((1 - beta1_t) * grad)
        v.mul_(beta2_t).add_((1 - beta2_t) * (grad * grad))
        p.sub_(lr * _safe_div(m, v.sqrt() + eps))


class AdamXRefusesUnknownKwargs(AdamX):
    KNOWN = ("foreach",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01,
                 **kwargs):
        unknown = sorted(set(kwargs) - set(self.KNOWN))
        if unknown:
            raise TypeError(f"unknown keyword arguments: {unknown}")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class AdamSReadsGroups(torch.optim.Optimizer):
    """The official-code form of AdamS (old and new m both divided by 1 - b1^t)."""

    def __init__(self, params, lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1):
        _check(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]   # KeyError if absent
            b1, b2 = group["beta1"], group["beta2"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p))
                state["step"] += 1
                c = 1 - b1 ** state["step"]
                p.mul_(1 - lr * wd)
                m_old = state["exp_avg"] / c
                denom = (b2 * m_old * m_old + (1 - b2) * p.grad * p.grad).sqrt() + eps
                state["exp_avg"].mul_(b1).add_((1 - b1) * p.grad)
                p.sub_(lr * _safe_div(state["exp_avg"] / c, denom))


class AdamXFloat32State(AdamX):
    """Moments kept in float32 whatever the params' dtype; arithmetic in the params' dtype."""

    eps_inside = False

    def _update(self, p, grad, state, group, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        beta1_t = (b1 - b1 ** t) / (1 - b1 ** t)
        ell = (1 - b2) * math.log(b2)
        beta2_t = math.expm1((t - 1) * ell) / math.expm1(t * ell)
        p.mul_(1 - lr * wd)
        m = state["exp_avg"].to(p.dtype) * beta1_t + (1 - beta1_t) * grad
        v = state["exp_avg_sq"].to(p.dtype) * beta2_t + (1 - beta2_t) * (grad * grad)
        denom = (v + eps).sqrt() if self.eps_inside else v.sqrt() + eps
        p.sub_(lr * _safe_div(m, denom))
        state["exp_avg"] = m.to(torch.float32).to(p.dtype)
        state["exp_avg_sq"] = v.to(torch.float32).to(p.dtype)


class AdamXFloat32StateEpsInsideSqrt(AdamXFloat32State):
    eps_inside = True                                         # MISTAKE: eps inside the sqrt


class AdamXInvalidCrash(AdamXSwallowsKwargs):
    """Accepts everything, then fails with a KeyError where beta2 = 1 (not a validation)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01,
                 **kwargs):
        torch.optim.Optimizer.__init__(self, params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                                          weight_decay=weight_decay))

    def _update(self, p, grad, state, group, t):
        if not group["betas"][1] < 1:
            raise KeyError("beta2_t")
        super()._update(p, grad, state, group, t)


class AdamXLateRefusal(AdamXInvalidCrash):
    def _update(self, p, grad, state, group, t):
        if not (0 < group["betas"][1] < 1) and t > 1:
            raise ValueError("betas[1] must be in (0, 1)")
        if group["betas"][1] < 1:
            AdamXSwallowsKwargs._update(self, p, grad, state, group, t)


class AdamXRefusesAfterChange(AdamXInvalidCrash):
    def _update(self, p, grad, state, group, t):
        p.mul_(1 - group["lr"] * group["weight_decay"])
        if not (0 < group["betas"][1] < 1):
            raise ValueError("betas[1] must be in (0, 1)")
        AdamXSwallowsKwargs._update(self, p, grad, state, group, t)


class AdamXSystemExit(AdamXInvalidCrash):
    """No validation; step() ends the process with status 0."""

    def _update(self, p, grad, state, group, t):
        raise SystemExit(0)


class AdamXKeyboardInterrupt(AdamXInvalidCrash):
    def _update(self, p, grad, state, group, t):
        raise KeyboardInterrupt


class CAdamWFloat32Scalars(torch.optim.Optimizer):
    """Cautious AdamW, torch-style eps and the 'count' rescale; every scalar is a float32 0-d
    tensor, so 1 - b^t, its sqrt (torch's float32 sqrt), lr/(1 - b1^t) and 1 - lr*wd are
    float32, while the tensors keep the params' dtype."""

    refopt_variant = {"bias_correction": "torch", "scaling": "count"}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        _check(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, b1, b2, wd, eps = (torch.tensor(float(x)) for x in (
                group["lr"], *group["betas"], group["weight_decay"], group["eps"]))
            for p in group["params"]:
                if p.grad is None:
                    continue
                g, state = p.grad, self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p),
                                 exp_avg_sq=torch.zeros_like(p))
                state["step"] += 1
                t = torch.tensor(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * wd)
                m.mul_(b1).add_(g * (1 - b1))
                v.mul_(b2).add_(g * g * (1 - b2))
                denom = v.sqrt() / (1 - b2 ** t).sqrt() + eps
                mask = (m * g > 0).to(p.dtype)
                if mask.numel():
                    mask = mask / mask.mean().clamp(min=1e-3)
                p.sub_(lr / (1 - b1 ** t) * _safe_div(m * mask, denom))


class AdamSFloat32InPlaceMtDenominator(torch.optim.Optimizer):
    """AdamS, paper form, with a float32 momentum buffer updated in place and the denominator
    from the updated m_t (MISTAKE): b2 * m_t^2 + (1 - b2) * g^2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0):
        _check(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], \
                group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g, state = p.grad, self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                m = state["exp_avg"]
                p.mul_(1 - lr * wd)
                m.mul_(b1).add_(g, alpha=1 - b1)
                denom = (b2 * m.square() + (1 - b2) * g.square()).sqrt() + eps
                p.sub_(lr * _safe_div(m.to(p.dtype), denom))
