r"""optax ``GradientTransformation`` factories of refopt's rules, jit-able, verified against the
golden suite.

>>> import jax, optax                                                  # doctest: +SKIP
>>> from refopt.optax import adams                                     # doctest: +SKIP
>>> tx = adams(learning_rate=3e-4, weight_decay=0.1)                   # doctest: +SKIP
>>> state = tx.init(params)                                            # doctest: +SKIP
>>> updates, state = jax.jit(tx.update)(grads, state, params)          # doctest: +SKIP
>>> params = optax.apply_updates(params, updates)                      # doctest: +SKIP

Factories: :func:`adamx` (alias :func:`adamnx`), :func:`adams` (``bias_correction=False``: paper
form; ``True``: official code), :func:`alphaadam` (every option of the reconstructed family) and
:func:`cadamw`. Each takes ``learning_rate`` (a float or an optax schedule ``count -> lr``) and
refopt's other hyperparameter names (``betas``, ``eps``, ``weight_decay``, the rule's options),
validated by the reference rule itself (its one-line messages). ``update`` needs ``params``
(decoupled weight decay), works on any pytree of float32/float64 (complex: as (real, imag)
pairs) arrays, and returns ``new_params - params``, so ``optax.apply_updates`` gives the
reference's new params (exactly wherever that subtraction is exact, i.e. almost always).

Per-step scalars follow the reference's ``rule.scalars(t, lr)``: the terms that depend only on
the hyperparameters are the same Python floats, the terms in t (``beta ** t``, AdamX's expm1
form) are computed on the device in float64 when ``jax_enable_x64`` is on (XLA's pow/expm1 may
differ from the host's libm by an ulp, which the suite allows) and in float32 otherwise (which the
float32 tolerances allow: optax-style float32 scalars), then rounded once to each leaf's dtype;
an ``eps`` that rounds to 0 in a leaf's dtype is refused as the reference refuses it. As with
optax's own transformations, ``update`` is a pure function to be jitted by the caller
(``jax.jit(tx.update)`` or inside a jitted train step); AlphaAdam's and C-AdamW's per-tensor alpha
is computed on the device in the same precision.
Not offered, as optax has
no such notion: per-tensor step counts for missing gradients, ``maximize`` and the ``nonfinite``
policy (non-finite gradients propagate; wrap the transformation in ``optax.apply_if_finite`` to
skip such steps).

Works without optax installed: :class:`GradientTransformation` is then a NamedTuple of the same
protocol (``init``, ``update``) and :func:`apply_updates` adds the updates. jax is imported by
this module only: ``import refopt`` never needs it.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as V
from .registry import get_rule
from .rules.alphaadam import alpha_for

try:  # optax is optional: the protocol is two functions
    from optax import GradientTransformation
except ImportError:  # pragma: no cover - exercised where optax is absent
    class GradientTransformation(NamedTuple):
        init: Callable
        update: Callable

__all__ = ["GradientTransformation", "adamx", "adamnx", "adams", "alphaadam", "cadamw",
           "apply_updates", "AdamXState", "AdamSState", "AlphaAdamState", "CAdamWState"]


class AdamXState(NamedTuple):
    count: Any
    exp_avg: Any
    exp_avg_sq: Any


class AdamSState(NamedTuple):
    count: Any
    exp_avg: Any


class AlphaAdamState(NamedTuple):
    count: Any
    exp_avg: Any
    exp_avg_sq: Any
    kept: Any      # the last step's kept count per tensor
    alpha: Any     # and its alpha


class CAdamWState(NamedTuple):
    count: Any
    exp_avg: Any
    exp_avg_sq: Any


def apply_updates(params, updates):
    """``optax.apply_updates`` without optax: ``params + updates`` leaf by leaf."""
    return jax.tree_util.tree_map(lambda p, u: (p + u).astype(p.dtype), params, updates)


# -- shared machinery -----------------------------------------------------------------------
def _acc_dtype():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _to_real(x):
    if jnp.iscomplexobj(x):
        return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)
    return x


def _from_real(r, like):
    if jnp.iscomplexobj(like):
        return jax.lax.complex(r[..., 0], r[..., 1]).astype(like.dtype)
    return r


def _safe_div(num, den, eps):
    """num / den with 0/0 := 0, as refopt defines it (reachable only when eps = 0)."""
    q = num / den
    if eps == 0:
        q = jnp.where((num == 0) & (den == 0), jnp.zeros_like(q), q)
    return q


def _scalars(rule, t, lr, acc) -> dict:
    """``rule.scalars(t, lr)`` of the reference, written in jnp for a traced step ``t``: the
    hyperparameter-only terms are Python floats (as the reference computes them), the terms that
    depend on t or on a scheduled lr are computed in ``acc`` (float64 with ``jax_enable_x64``)."""
    h = rule.hyper
    b1, b2 = h["betas"]
    t = t.astype(acc)
    wd = h.get("weight_decay", 0.0)
    decay = 1.0 - lr * wd
    if rule.name == "adamx":
        p1 = jnp.power(jnp.asarray(b1, acc), t)
        if h["coef_form"] == "expm1":
            ell = (1.0 - b2) * math.log(b2)
            den = jnp.expm1(t * ell)
            b2t = jnp.expm1((t - 1) * ell) / den
            omb2t = math.expm1(ell) * jnp.exp((t - 1) * ell) / den
        else:
            e = 1.0 - b2
            b2t = (1.0 - jnp.power(jnp.asarray(b2, acc), e * (t - 1))) / \
                (1.0 - jnp.power(jnp.asarray(b2, acc), e * t))
            omb2t = 1.0 - b2t
        decoupled = h["weight_decay_mode"] == "decoupled"
        return {"lr": lr, "decay": decay if decoupled else 1.0, "l2": 0.0 if decoupled else wd,
                "beta1_t": (b1 - p1) / (1.0 - p1), "one_minus_beta1_t": (1.0 - b1) / (1.0 - p1),
                "beta2_t": b2t, "one_minus_beta2_t": omb2t, "eps": h["eps"]}
    common = {"lr": lr, "decay": decay, "beta1": b1, "one_minus_beta1": 1.0 - b1, "beta2": b2,
              "one_minus_beta2": 1.0 - b2, "eps": h["eps"]}
    bc1 = 1.0 - jnp.power(jnp.asarray(b1, acc), t)
    if rule.name == "adams":
        return {**common, "bias_correction1": bc1 if h["bias_correction"] else 1.0}
    bc2 = 1.0 - jnp.power(jnp.asarray(b2, acc), t)       # adam_scalars: AlphaAdam, C-AdamW
    if h["bias_correction"] == "torch":
        return {**common, "step_size": lr / bc1, "denom_div": jnp.sqrt(bc2)}
    return {**common, "step_size": lr * jnp.sqrt(bc2) / bc1, "denom_div": 1.0}


def _cast(sc: dict, dtype) -> dict:
    """The float64 scalars rounded once to a leaf's dtype; an eps that rounds to 0 is refused
    as the reference refuses it."""
    eps = sc["eps"]
    if eps != 0 and np.asarray(eps, dtype) == 0:
        tiny = float(np.finfo(dtype).smallest_subnormal)
        raise ValueError(f"eps={eps!r} rounds to 0 in {np.dtype(dtype)} (its smallest positive "
                         f"value is {tiny:.2g}), which removes the guard of the denominator: "
                         f"pass eps=0 to mean no eps, or eps >= {tiny:.2g}")
    return {k: v.astype(dtype) if not isinstance(v, float) else np.asarray(v, dtype)[()]
            for k, v in sc.items()}


def _validated(name: str, learning_rate, **hyper):
    if not callable(learning_rate):
        learning_rate = V.finite_nonneg("learning_rate", learning_rate)
    lr = 0.0 if callable(learning_rate) else learning_rate
    return get_rule(name, lr=lr, **hyper), learning_rate


def _transformation(rule, learning_rate, state_type, buffers, kernel, extra=()):
    """A GradientTransformation: ``kernel(p, g, bufs, sc, hyper, t) -> (new_p, bufs, extras)``
    on real leaves, per-step scalars shared by the leaves of one dtype."""
    hyper = rule.hyper

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        fields = {b: zeros for b in buffers}
        if "kept" in extra:
            fields["kept"] = jax.tree_util.tree_map(lambda p: jnp.zeros([], jnp.int32), params)
            fields["alpha"] = jax.tree_util.tree_map(lambda p: jnp.ones([], _acc_dtype()),
                                                     params)
        return state_type(count=jnp.zeros([], jnp.int32), **fields)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(f"{rule.name}: update needs params (decoupled weight decay and the "
                             f"reference's order)")
        leaves, treedef = jax.tree_util.tree_flatten(params)
        grads = treedef.flatten_up_to(updates)
        bufs = {b: treedef.flatten_up_to(getattr(state, b)) for b in buffers}
        reals = [_to_real(p) for p in leaves]
        dtypes = tuple(sorted({np.dtype(r.dtype).name for r in reals}))
        for d in dtypes:
            if d not in ("float32", "float64"):
                raise TypeError(f"params have dtype {d}; supported dtypes are float32 and "
                                f"float64, and complex64/complex128 (stepped as pairs)")
        t = state.count + 1
        acc = _acc_dtype()
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        if callable(learning_rate):
            lr = jnp.asarray(lr, acc)
        sc64 = _scalars(rule, t, lr, acc)
        sc_by = {np.dtype(d): _cast(sc64, np.dtype(d)) for d in dtypes}
        new_updates, new_bufs = [], {b: [] for b in buffers}
        extras = {k: [] for k in extra}
        for i, (p, r) in enumerate(zip(leaves, reals)):
            g = _to_real(grads[i])
            old = {b: _to_real(bufs[b][i]) for b in buffers}
            new_r, nb, ex = kernel(r, g, old, sc_by[np.dtype(r.dtype)], hyper, t)
            new_updates.append(_from_real(new_r, p) - p)
            for b in buffers:
                new_bufs[b].append(_from_real(nb[b], p))
            for k in extra:
                extras[k].append(ex[k])
        fields = {b: treedef.unflatten(v) for b, v in new_bufs.items()}
        fields.update({k: treedef.unflatten(v) for k, v in extras.items()})
        return treedef.unflatten(new_updates), state_type(count=t, **fields)

    return GradientTransformation(init, update)


def _round_state(x, state_dtype):
    if state_dtype is None or np.dtype(x.dtype).name == state_dtype:
        return x
    if state_dtype == "bfloat16":   # via float32, as the reference
        return x.astype(jnp.float32).astype(jnp.bfloat16).astype(x.dtype)
    return x.astype(state_dtype).astype(x.dtype)


# -- the rules ------------------------------------------------------------------------------
def _adamx_kernel(p, g, b, sc, h, t):
    if h["weight_decay_mode"] == "l2":
        g = g + sc["l2"] * p
    m = sc["beta1_t"] * b["exp_avg"] + sc["one_minus_beta1_t"] * g
    v = sc["beta2_t"] * b["exp_avg_sq"] + sc["one_minus_beta2_t"] * (g * g)
    m, v = _round_state(m, h["state_dtype"]), _round_state(v, h["state_dtype"])
    new = p * sc["decay"] - sc["lr"] * _safe_div(m, jnp.sqrt(v) + sc["eps"], h["eps"])
    return new, {"exp_avg": m, "exp_avg_sq": v}, {}


def adamx(learning_rate=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01, *,
          coef_form="expm1", weight_decay_mode="decoupled", state_dtype=None):
    """AdamX / AdamNX (arXiv 2511.13465): refopt.rules.adamx with every option."""
    rule, lr = _validated("adamx", learning_rate, betas=betas, eps=eps,
                          weight_decay=weight_decay, coef_form=coef_form,
                          weight_decay_mode=weight_decay_mode, state_dtype=state_dtype)
    return _transformation(rule, lr, AdamXState, ("exp_avg", "exp_avg_sq"), _adamx_kernel)


adamnx = adamx


def _adams_kernel(p, g, b, sc, h, t):
    c = sc["bias_correction1"]
    m_prev = b["exp_avg"] / c
    nu = sc["beta2"] * (m_prev * m_prev) + sc["one_minus_beta2"] * (g * g)
    m = sc["beta1"] * b["exp_avg"] + sc["one_minus_beta1"] * g
    new = p * sc["decay"] - sc["lr"] * _safe_div(m / c, jnp.sqrt(nu) + sc["eps"], h["eps"])
    return new, {"exp_avg": m}, {}


def adams(learning_rate=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, *,
          bias_correction=False):
    """AdamS (arXiv 2505.16363): ``bias_correction=True`` is the official code's form."""
    rule, lr = _validated("adams", learning_rate, betas=betas, eps=eps,
                          weight_decay=weight_decay, bias_correction=bias_correction)
    return _transformation(rule, lr, AdamSState, ("exp_avg",), _adams_kernel)


def _adam_moments(b, g, sc):
    m = sc["beta1"] * b["exp_avg"] + sc["one_minus_beta1"] * g
    v = sc["beta2"] * b["exp_avg_sq"] + sc["one_minus_beta2"] * (g * g)
    return m, v


def _alpha(rule, mask, u, n, floor, amax):
    acc = _acc_dtype()
    if n == 0:
        return jnp.asarray(alpha_for(rule, 0, 0, floor, amax, np.zeros(0), np.zeros(0, bool)),
                           acc)
    kept = jnp.sum(mask).astype(acc)
    q = kept / jnp.asarray(n, acc)
    if rule == "count":
        return jnp.asarray(1.0, acc) / jnp.maximum(q, floor)
    if rule == "count+1":
        return jnp.asarray(n, acc) / (kept + 1.0)
    if rule == "soft":
        return jnp.maximum(q, jnp.asarray(floor, acc))
    if rule == "norm":
        u64 = u.astype(acc)
        full = jnp.sqrt(jnp.sum(u64 * u64))
        ku = jnp.where(mask, u64, jnp.zeros_like(u64))
        kept_norm = jnp.sqrt(jnp.sum(ku * ku))
        return jnp.where(kept_norm == 0, jnp.asarray(1.0, acc),
                         jnp.minimum(jnp.asarray(amax, acc), full / kept_norm))
    return jnp.asarray(1.0, acc)


def _alphaadam_kernel(p, g, b, sc, h, t):
    m, v = _adam_moments(b, g, sc)
    u = _safe_div(m, jnp.sqrt(v) / sc["denom_div"] + sc["eps"], h["eps"])

    def mask_of(score):
        return score > 0 if h["strict"] else score >= 0

    ones = jnp.ones(p.shape, bool)
    first = t == 1
    source, fs = h["mask_source"], h["first_step"]
    if source == "ones":
        mask = ones
    elif source == "m_t":
        mask = mask_of(m * g)
    else:
        at_first = {"unmasked": ones, "cautious": mask_of(m * g),
                    "as_is": mask_of(b["exp_avg"] * g)}[fs]
        mask = jnp.where(first, at_first, mask_of(b["exp_avg"] * g))
    alpha = _alpha(h["alpha_rule"], mask, u, p.size, h["density_floor"], h["alpha_max"])
    if source == "m_prev" and fs == "unmasked":   # the unmasked first step: psi = 1
        alpha = jnp.where(first, jnp.asarray(1.0, alpha.dtype), alpha)
    phi = mask.astype(p.dtype)
    a = alpha.astype(p.dtype)
    one = jnp.asarray(1, p.dtype)
    if h["alpha_rule"] == "soft":
        psi = phi / a + (one - phi) * a
    else:
        psi = a * phi + jnp.asarray(h["gamma"], p.dtype) * (one - phi)
    new = p * sc["decay"] - sc["step_size"] * (psi * u)
    kept = jnp.sum(mask).astype(jnp.int32)
    return new, {"exp_avg": m, "exp_avg_sq": v}, {"kept": kept, "alpha": alpha}


def alphaadam(learning_rate=1e-3, betas=(0.9, 0.999), eps=None, weight_decay=0.0, *,
              mask_source="m_prev", strict=True, alpha_rule="count", density_floor=None,
              alpha_max=10.0, gamma=0.0, first_step="unmasked", bias_correction="hf"):
    """AlphaAdam (arXiv 2501.18094 v1): the reconstructed family, every option; the state also
    holds the last step's ``kept`` count and ``alpha`` per tensor."""
    rule, lr = _validated("alphaadam", learning_rate, betas=betas, eps=eps,
                          weight_decay=weight_decay, mask_source=mask_source, strict=strict,
                          alpha_rule=alpha_rule, density_floor=density_floor,
                          alpha_max=alpha_max, gamma=gamma, first_step=first_step,
                          bias_correction=bias_correction)
    return _transformation(rule, lr, AlphaAdamState, ("exp_avg", "exp_avg_sq"),
                           _alphaadam_kernel, extra=("kept", "alpha"))


def _cadamw_kernel(p, g, b, sc, h, t):
    m, v = _adam_moments(b, g, sc)
    den = jnp.sqrt(v) / sc["denom_div"] + sc["eps"]
    mask = (m * g > 0).astype(p.dtype)
    n, acc = p.size, _acc_dtype()
    if h["scaling"] == "count":
        if n:
            mean = jnp.sum(mask.astype(acc)) / jnp.asarray(n, acc)
            mask = mask / jnp.maximum(mean, 1e-3).astype(p.dtype)
    else:
        mask = mask * (jnp.asarray(n, acc) / (jnp.sum(mask).astype(acc) + 1.0)).astype(p.dtype)
    new = p * sc["decay"] - sc["step_size"] * _safe_div(m * mask, den, h["eps"])
    return new, {"exp_avg": m, "exp_avg_sq": v}, {}


def cadamw(learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, *,
           scaling="count", bias_correction="hf"):
    """C-AdamW, the Cautious AdamW (arXiv 2411.16085), as refopt.rules.cadamw."""
    rule, lr = _validated("cadamw", learning_rate, betas=betas, eps=eps,
                          weight_decay=weight_decay, scaling=scaling,
                          bias_correction=bias_correction)
    return _transformation(rule, lr, CAdamWState, ("exp_avg", "exp_avg_sq"), _cadamw_kernel)
