r"""PyTorch optimizers of refopt's rules, verified against the golden suite.

>>> from refopt.torch import AdamS                                   # doctest: +SKIP
>>> opt = AdamS(model.parameters(), lr=3e-4, weight_decay=0.1)       # doctest: +SKIP
>>> loss = model(x).sum(); loss.backward(); opt.step(); opt.zero_grad()   # doctest: +SKIP

Classes: :class:`AdamX` (alias :class:`AdamNX`), :class:`AdamS` (``bias_correction=False``: the
paper form; ``True``: the official code's form), :class:`AlphaAdam` (every option of the
reconstructed family) and :class:`CAdamW`. Each is a ``torch.optim.Optimizer`` with

* refopt's hyperparameter names, defaults and validation: each param group is checked by the
  reference rule itself (:mod:`refopt.rules`), so a bad value raises the reference's one-line
  ``ValueError``/``TypeError`` naming the parameter and its range;
* the reference's arithmetic: per-step scalars from the rule's own ``scalars(t, lr)`` in float64,
  rounded once to the tensor's dtype (``refopt.rules._base.cast_scalars_checked``, which also
  refuses an ``eps`` that rounds to 0), and the elementwise operations in the reference's order,
  one rounding each (no fused ``addcmul_``/``lerp_``; a division by a scalar stays a division
  on CUDA). float64 results equal the NumPy reference bit for bit except where torch's own
  float64 ``sqrt`` misrounds (on this CPU build about one element in 10^3, next to a rounding
  tie; the golden suite's tolerances allow it, and ``refopt verify`` passes every case);
* a single-tensor path (``foreach=False``) and a multi-tensor path (``foreach=True``,
  ``torch._foreach_*``; the default where every param is on CUDA), equal bit for bit;
* param groups, ``lr`` as a float or a 1-element tensor, closures, ``maximize``, complex params
  stepped as (real, imaginary) pairs (``torch.view_as_real``, as refopt and torch do), tensors
  without a gradient skipped (their step count does not advance), and ``nonfinite``
  (``"raise"``: ``FloatingPointError`` before anything is updated; ``"skip"``: the whole step is
  skipped; ``"propagate"``);
* state under refopt's buffer names (``step`` as a Python int, ``exp_avg``, ``exp_avg_sq``;
  AlphaAdam also keeps the last step's ``kept`` count and ``alpha``), so ``state_dict`` survives
  ``torch.save``/``torch.load(weights_only=True)`` and a split run equals an uninterrupted one.

Params must be float32, float64, complex64 or complex128 (the reference's dtypes). torch is
imported by this module only: ``import refopt`` never needs it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch.optim import Optimizer

from . import _validation as V
from .registry import get_rule
from .rules._base import cast_scalars_checked
from .rules.alphaadam import alpha_for

__all__ = ["AdamX", "AdamNX", "AdamS", "AlphaAdam", "CAdamW"]

_NP_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}
_STATE_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


# -- the two paths: one rule description, run tensor by tensor or with torch._foreach_* -------
def _each(y, n):
    return y if isinstance(y, list) else [y] * n


def _scalar(y, x):
    """A divisor as a 0-d tensor on x's device: CUDA divides by a Python scalar as a multiply by
    its reciprocal (two roundings); by a device tensor it divides (one rounding, as NumPy)."""
    return torch.tensor(y, dtype=x.dtype, device=x.device) if x.device.type != "cpu" else y


class _Single:
    """Single-tensor path: plain tensor operations, one tensor at a time."""

    foreach = False

    @staticmethod
    def mul(xs, y):
        return [torch.mul(x, b) for x, b in zip(xs, _each(y, len(xs)))]

    @staticmethod
    def mul_(xs, y):
        for x, b in zip(xs, _each(y, len(xs))):
            x.mul_(b)
        return xs

    @staticmethod
    def add(xs, y):
        return [torch.add(x, b) for x, b in zip(xs, _each(y, len(xs)))]

    @staticmethod
    def add_(xs, y):
        for x, b in zip(xs, _each(y, len(xs))):
            x.add_(b)
        return xs

    @staticmethod
    def sub_(xs, y):
        for x, b in zip(xs, _each(y, len(xs))):
            x.sub_(b)
        return xs

    @staticmethod
    def div(xs, y):
        return [torch.div(x, b if isinstance(b, torch.Tensor) else _scalar(b, x))
                for x, b in zip(xs, _each(y, len(xs)))]

    @staticmethod
    def div_(xs, y):
        for x, b in zip(xs, _each(y, len(xs))):
            x.div_(b if isinstance(b, torch.Tensor) else _scalar(b, x))
        return xs

    @staticmethod
    def sqrt(xs):
        return [torch.sqrt(x) for x in xs]

    @staticmethod
    def neg(xs):
        return [torch.neg(x) for x in xs]


class _Foreach:
    """Multi-tensor path: ``torch._foreach_*`` on the whole list (same roundings)."""

    foreach = True
    mul = staticmethod(torch._foreach_mul)
    mul_ = staticmethod(torch._foreach_mul_)
    add = staticmethod(torch._foreach_add)
    add_ = staticmethod(torch._foreach_add_)
    sub_ = staticmethod(torch._foreach_sub_)
    div = staticmethod(torch._foreach_div)
    div_ = staticmethod(torch._foreach_div_)
    sqrt = staticmethod(torch._foreach_sqrt)
    neg = staticmethod(torch._foreach_neg)


def _safe_div(F, num, den, eps):
    """num / den with 0/0 := 0, as refopt defines it (reachable only when eps = 0)."""
    out = F.div(num, den)
    if eps == 0:
        for q, n, d in zip(out, num, den):
            q.masked_fill_((n == 0) & (d == 0), 0)
    return out


def _apply(F, P, decay, step_size, U):
    """theta <- theta * decay - step_size * u (the reference's two roundings, in its order)."""
    if decay != 1.0:   # x * 1.0 is exact: skipping it changes no bit
        F.mul_(P, decay)
    F.sub_(P, F.mul_(U, step_size))


def _adam_moments(F, G, m, v, sc):
    F.mul_(m, sc["beta1"])
    F.add_(m, F.mul(G, sc["one_minus_beta1"]))
    F.mul_(v, sc["beta2"])
    F.add_(v, F.mul_(F.mul(G, G), sc["one_minus_beta2"]))


def _round_state(xs, state_dtype):
    """refopt.rules._base.round_to_bits in torch: m and v rounded to the storage precision."""
    for x in xs:
        if state_dtype is None or str(x.dtype).replace("torch.", "") == state_dtype:
            continue
        if state_dtype == "bfloat16":   # via float32, as the reference
            x.copy_(x.to(torch.float32).to(torch.bfloat16).to(x.dtype))
        else:
            x.copy_(x.to(_STATE_DTYPES[state_dtype]).to(x.dtype))


def _adamx_kernel(F, P, G, B, sc, h, t, state):
    if h["weight_decay_mode"] == "l2":
        G = F.add(G, F.mul(P, sc["l2"]))
    m, v = B["exp_avg"], B["exp_avg_sq"]
    F.mul_(m, sc["beta1_t"])
    F.add_(m, F.mul(G, sc["one_minus_beta1_t"]))
    F.mul_(v, sc["beta2_t"])
    F.add_(v, F.mul_(F.mul(G, G), sc["one_minus_beta2_t"]))
    _round_state(m, h["state_dtype"])
    _round_state(v, h["state_dtype"])
    U = _safe_div(F, m, F.add_(F.sqrt(v), sc["eps"]), sc["eps"])
    _apply(F, P, sc["decay"], sc["lr"], U)


def _adams_kernel(F, P, G, B, sc, h, t, state):
    m, c = B["exp_avg"], sc["bias_correction1"]
    m_prev = F.div(m, c) if c != 1.0 else m          # x / 1.0 is exact (the paper form)
    nu = F.mul_(F.mul(m_prev, m_prev), sc["beta2"])  # from m_{t-1}: before m moves
    F.add_(nu, F.mul_(F.mul(G, G), sc["one_minus_beta2"]))
    F.mul_(m, sc["beta1"])
    F.add_(m, F.mul(G, sc["one_minus_beta1"]))
    m_hat = F.div(m, c) if c != 1.0 else m
    U = _safe_div(F, m_hat, F.add_(F.sqrt(nu), sc["eps"]), sc["eps"])
    _apply(F, P, sc["decay"], sc["lr"], U)


def _adam_denominator(F, v, sc):
    den = F.sqrt(v)
    if sc["denom_div"] != 1.0:
        F.div_(den, sc["denom_div"])
    return F.add_(den, sc["eps"])


def _f64(x, like):
    return torch.tensor(x, dtype=torch.float64, device=like.device)


def _alpha(rule, mask, u, n, floor, amax):
    """alpha_for of refopt.rules.alphaadam as a 0-d float64 tensor (no host sync)."""
    if n == 0:
        return _f64(alpha_for(rule, 0, 0, floor, amax, np.zeros(0), np.zeros(0, bool)), u)
    kept = mask.sum().to(torch.float64)
    q = torch.div(kept, _f64(float(n), u))
    if rule == "count":
        return torch.div(_f64(1.0, u), torch.clamp(q, min=floor))
    if rule == "count+1":
        return torch.div(_f64(float(n), u), kept + 1.0)
    if rule == "soft":
        return torch.clamp(q, min=floor)
    if rule == "norm":
        u64 = u.to(torch.float64)
        full = torch.sqrt((u64 * u64).sum())
        kept_u = torch.where(mask, u64, torch.zeros_like(u64))
        kept_norm = torch.sqrt((kept_u * kept_u).sum())
        ratio = torch.clamp(torch.div(full, kept_norm), max=amax)
        return torch.where(kept_norm == 0, _f64(1.0, u), ratio)
    return _f64(1.0, u)


def _alphaadam_kernel(F, P, G, B, sc, h, t, state):
    m, v = B["exp_avg"], B["exp_avg_sq"]
    source = h["mask_source"]
    if source == "ones" or (source == "m_prev" and t == 1 and h["first_step"] == "unmasked"):
        when = None
    elif source == "m_prev" and not (t == 1 and h["first_step"] == "cautious"):
        when = "before"
    else:
        when = "after"
    score = F.mul(m, G) if when == "before" else None   # m_{t-1} * g, read before m moves
    _adam_moments(F, G, m, v, sc)
    if when == "after":
        score = F.mul(m, G)
    U = _safe_div(F, m, _adam_denominator(F, v, sc), sc["eps"])
    for i, u in enumerate(U):
        if score is None:
            mask = torch.ones_like(u, dtype=torch.bool)
        else:
            mask = score[i] > 0 if h["strict"] else score[i] >= 0
        if score is None and t == 1 and source == "m_prev":
            alpha = _f64(1.0, u)           # the unmasked first step: AdamW's step, psi = 1
        else:
            alpha = _alpha(h["alpha_rule"], mask, u, u.numel(), h["density_floor"],
                           h["alpha_max"])
        phi = mask.to(u.dtype)
        a = alpha.to(u.dtype)
        if h["alpha_rule"] == "soft":
            psi = torch.div(phi, a) + torch.rsub(phi, 1.0) * a
        else:
            psi = a * phi + torch.rsub(phi, 1.0) * h["gamma"]
        u.mul_(psi)
        state[i]["kept"] = mask.sum()
        state[i]["alpha"] = alpha
    _apply(F, P, sc["decay"], sc["step_size"], U)


def _cadamw_kernel(F, P, G, B, sc, h, t, state):
    m, v = B["exp_avg"], B["exp_avg_sq"]
    _adam_moments(F, G, m, v, sc)
    den = _adam_denominator(F, v, sc)
    num = []
    for mi, gi in zip(m, G):
        mask = (mi * gi > 0).to(mi.dtype)
        n = mask.numel()
        if h["scaling"] == "count":
            if n:
                mean = torch.div(mask.sum(dtype=torch.float64), _f64(float(n), mi))
                mask = torch.div(mask, torch.clamp(mean, min=1e-3).to(mi.dtype))
        else:
            r = torch.div(_f64(float(n), mi), mask.sum().to(torch.float64) + 1.0)
            mask = mask * r.to(mi.dtype)
        num.append(mi * mask)
    U = _safe_div(F, num, den, sc["eps"])
    _apply(F, P, sc["decay"], sc["step_size"], U)


# -- the optimizer ------------------------------------------------------------------------
def _freeze(x):
    return tuple(_freeze(y) for y in x) if isinstance(x, (list, tuple)) else x


def _lr_float(lr) -> float:
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1:
            raise ValueError(f"lr must be a float or a 1-element tensor, got a tensor of "
                             f"{lr.numel()} elements")
        lr = lr.item()
    return V.finite_nonneg("lr", lr)


class _RefoptOptimizer(Optimizer):
    """The loop every rule shares; a subclass names its refopt rule and its kernel."""

    rule_name: str = ""
    buffers: tuple = ()
    _kernel: Callable = None

    def __init__(self, params, hyper: dict, maximize: bool, foreach: Any):
        V.boolean("maximize", maximize)
        if foreach is not None:
            V.boolean("foreach", foreach)
        self._rules: dict = {}
        super().__init__(params, dict(hyper, maximize=bool(maximize), foreach=foreach))

    # Each group is validated by the reference rule itself (its messages, its ranges).
    def _hyper(self, group) -> dict:
        from .registry import RULES

        return {k: group[k] for k in RULES[self.rule_name].cls.defaults if k in group}

    def _rule_for(self, group):
        hyper = self._hyper(group)
        key = tuple((k, _freeze(v)) for k, v in hyper.items() if k != "lr")
        rule = self._rules.get(key)
        if rule is None:
            rule = get_rule(self.rule_name, **dict(hyper, lr=0.0))
            self._rules[key] = rule
        return rule

    def add_param_group(self, param_group: dict) -> None:
        merged = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        hyper = self._hyper(merged)
        hyper["lr"] = _lr_float(hyper["lr"])
        get_rule(self.rule_name, **hyper)   # raises the reference's message; warns as it does
        V.boolean("maximize", merged["maximize"])
        super().add_param_group(param_group)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("_rules", {})

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One step of the rule on every param with a gradient; returns ``closure()``'s loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        plans, index = [], 0
        for group in self.param_groups:
            rule = self._rule_for(group)
            lr = _lr_float(group["lr"])
            items = []
            for p in group["params"]:
                i, index = index, index + 1
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse "
                                       f"gradients (params[{i}])")
                if p.dtype not in _NP_DTYPES and p.dtype not in _REAL:
                    raise TypeError(f"params[{i}] has dtype {p.dtype}; supported dtypes are "
                                    f"float32 and float64 (float64 is the ground truth), and "
                                    f"complex64/complex128 (stepped as (real, imag) pairs)")
                if p.grad.dtype != p.dtype:
                    raise TypeError(f"grads[{i}] has dtype {p.grad.dtype} but params[{i}] has "
                                    f"dtype {p.dtype}; cast explicitly, refopt never casts "
                                    f"silently")
                items.append((i, p))
            plans.append((group, rule, lr, items))
        if self._nonfinite_skips(plans):
            return loss
        # Every bucket's scalars are computed (and checked) before anything is updated.
        work = []
        for group, rule, lr, items in plans:
            buckets: dict = {}
            for i, p in items:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    for b in self.buffers:
                        state[b] = torch.zeros_like(p, memory_format=torch.preserve_format)
                t = int(state["step"]) + 1
                real = _REAL.get(p.dtype, p.dtype)
                buckets.setdefault((p.device, real, t), []).append(p)
            for (device, real, t), ps in buckets.items():
                sc = cast_scalars_checked(rule, t, lr, _NP_DTYPES[real])
                sc = {k: float(v) if isinstance(v, np.floating) else v for k, v in sc.items()}
                work.append((group, rule, t, sc, ps))
        for group, rule, t, sc, ps in work:
            foreach = group["foreach"]
            if foreach is None:
                foreach = all(p.is_cuda for p in ps)
            F = _Foreach if foreach else _Single
            P = [_real(p) for p in ps]
            G = [_real(p.grad) for p in ps]
            if group["maximize"]:
                G = F.neg(G)
            B = {b: [_real(self.state[p][b]) for p in ps] for b in self.buffers}
            states = [self.state[p] for p in ps]
            type(self)._kernel(F, P, G, B, sc, rule.hyper, t, states)
            for s in states:
                s["step"] = t
        return loss

    def _nonfinite_skips(self, plans) -> bool:
        """Apply each group's ``nonfinite`` policy; True when the step is to be skipped."""
        skip = False
        for group, rule, lr, items in plans:
            policy = rule.hyper["nonfinite"]
            if policy == "propagate" or not items:
                continue
            finite = torch.stack([torch.isfinite(p.grad).all().cpu() for i, p in items])
            if bool(finite.all()):
                continue
            bad = items[int((~finite).nonzero()[0])][0]
            if policy == "raise":
                raise FloatingPointError(
                    f"grads[{bad}] contains NaN or inf (nonfinite='raise'); pass "
                    f"nonfinite='skip' to skip such steps or 'propagate' to compute anyway")
            skip = True
        return skip


def _real(x):
    return torch.view_as_real(x) if x.is_complex() else x


class AdamX(_RefoptOptimizer):
    __doc__ = ("AdamX / AdamNX (arXiv 2511.13465) as a torch optimizer: refopt.rules.adamx with "
               "its options coef_form, weight_decay_mode and state_dtype.")
    rule_name = "adamx"
    buffers = ("exp_avg", "exp_avg_sq")
    _kernel = staticmethod(_adamx_kernel)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01, *,
                 coef_form="expm1", weight_decay_mode="decoupled", state_dtype=None,
                 nonfinite="raise", maximize=False, foreach=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      coef_form=coef_form, weight_decay_mode=weight_decay_mode,
                                      state_dtype=state_dtype, nonfinite=nonfinite),
                         maximize, foreach)


AdamNX = AdamX


class AdamS(_RefoptOptimizer):
    __doc__ = ("AdamS (arXiv 2505.16363) as a torch optimizer: bias_correction=False is the "
               "paper form, True the official code's (both momenta divided by 1 - beta1^t).")
    rule_name = "adams"
    buffers = ("exp_avg",)
    _kernel = staticmethod(_adams_kernel)

    def __init__(self, params, lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, *,
                 bias_correction=False, nonfinite="raise", maximize=False, foreach=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      bias_correction=bias_correction, nonfinite=nonfinite),
                         maximize, foreach)


class AlphaAdam(_RefoptOptimizer):
    __doc__ = ("AlphaAdam (arXiv 2501.18094 v1), the reconstructed family of "
               "refopt.rules.alphaadam with every option; state also holds the last step's "
               "'kept' count and 'alpha' per tensor.")
    rule_name = "alphaadam"
    buffers = ("exp_avg", "exp_avg_sq")
    _kernel = staticmethod(_alphaadam_kernel)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=None, weight_decay=0.0, *,
                 mask_source="m_prev", strict=True, alpha_rule="count", density_floor=None,
                 alpha_max=10.0, gamma=0.0, first_step="unmasked", bias_correction="hf",
                 nonfinite="raise", maximize=False, foreach=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      mask_source=mask_source, strict=strict,
                                      alpha_rule=alpha_rule, density_floor=density_floor,
                                      alpha_max=alpha_max, gamma=gamma, first_step=first_step,
                                      bias_correction=bias_correction, nonfinite=nonfinite),
                         maximize, foreach)


class CAdamW(_RefoptOptimizer):
    __doc__ = ("C-AdamW, the Cautious AdamW (arXiv 2411.16085), as refopt.rules.cadamw: "
               "scaling 'count' | 'count+1', bias_correction 'hf' (C-Optim) | 'torch' (timm).")
    rule_name = "cadamw"
    buffers = ("exp_avg", "exp_avg_sq")
    _kernel = staticmethod(_cadamw_kernel)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, *,
                 scaling="count", bias_correction="hf", nonfinite="raise", maximize=False,
                 foreach=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      scaling=scaling, bias_correction=bias_correction,
                                      nonfinite=nonfinite),
                         maximize, foreach)
