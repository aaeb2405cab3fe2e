"""Small JAX/optax ports of AdamX, AdamS and AlphaAdam: examples for ``refopt verify`` and
fixtures of ``tests/test_verify.py``.

Each function is an optax-style factory returning a ``GradientTransformation`` over a list of
arrays. ``learning_rate`` may be a float or an optax schedule ``count -> lr``. The update computes
the new params in refopt's order and returns their difference, so ``optax.apply_updates``
reproduces them up to one rounding. Verify one with (from this directory)::

    refopt verify adamx optax_ports:adamx --dtype float64

float64 needs ``jax.config.update("jax_enable_x64", True)``, which ``refopt verify`` switches on
for float64 cases; it is also done here so the scalars below are float64 in every case.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

jax.config.update("jax_enable_x64", True)


class AdamState(NamedTuple):
    count: jnp.ndarray
    exp_avg: list
    exp_avg_sq: list


class MomentumState(NamedTuple):
    count: jnp.ndarray
    exp_avg: list


def _lr(learning_rate, count):
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _check(lr, betas, eps, weight_decay, beta2_open_low=False):
    if not callable(lr) and not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"learning_rate must be finite and >= 0, got {lr}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
    for i, b in enumerate(betas):
        if not ((b > 0 if beta2_open_low and i == 1 else b >= 0) and b < 1):
            raise ValueError(f"betas[{i}] must be in [0, 1), got {b}")


def _safe_div(num, den):
    """num / den with 0/0 := 0 (only when eps = 0), as refopt defines it."""
    return jnp.where((num == 0) & (den == 0), jnp.zeros_like(num), num / den)


def _cast(x, like):
    # Per-step scalars are computed in float64 and rounded once to the tensor's dtype.
    return jnp.asarray(x, dtype=like.dtype)


def adamx(learning_rate=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01):
    """AdamX / AdamNX (arXiv 2511.13465): the bias correction folded into the betas."""
    _check(learning_rate, betas, eps, weight_decay, beta2_open_low=True)
    b1, b2 = betas
    ell = (1 - b2) * math.log(b2)

    def init(params):
        zeros = [jnp.zeros_like(p) for p in params]
        return AdamState(jnp.zeros([], jnp.int32), zeros, list(zeros))

    def update(grads, state, params):
        t = (state.count + 1).astype(jnp.float64)
        lr = _lr(learning_rate, state.count)
        beta1_t = (b1 - b1 ** t) / (1 - b1 ** t)
        beta2_t = jnp.expm1((t - 1) * ell) / jnp.expm1(t * ell)
        updates, ms, vs = [], [], []
        for p, g, m, v in zip(params, grads, state.exp_avg, state.exp_avg_sq):
            k1, k2 = _cast(beta1_t, p), _cast(beta2_t, p)
            new_p = p * _cast(1 - lr * weight_decay, p)
            m = k1 * m + _cast(1 - beta1_t, p) * g
            v = k2 * v + _cast(1 - beta2_t, p) * (g * g)
            new_p = new_p - _cast(lr, p) * _safe_div(m, jnp.sqrt(v) + _cast(eps, p))
            updates.append(new_p - p)
            ms.append(m)
            vs.append(v)
        return updates, AdamState(state.count + 1, ms, vs)

    return optax.GradientTransformation(init, update)


def adams(learning_rate=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
          bias_correction=False, _m_t_denominator=False):
    """AdamS (arXiv 2505.16363); ``bias_correction=True`` is the official-code form.

    ``_m_t_denominator`` plants the ReaLLM-Forge mistake (tests only)."""
    _check(learning_rate, betas, eps, weight_decay)
    b1, b2 = betas

    def init(params):
        return MomentumState(jnp.zeros([], jnp.int32), [jnp.zeros_like(p) for p in params])

    def update(grads, state, params):
        t = (state.count + 1).astype(jnp.float64)
        lr = _lr(learning_rate, state.count)
        c = 1 - b1 ** t if bias_correction else jnp.float64(1.0)
        updates, ms = [], []
        for p, g, m in zip(params, grads, state.exp_avg):
            cc = _cast(c, p)
            new_p = p * _cast(1 - lr * weight_decay, p)
            m_prev = m / cc
            m = _cast(b1, p) * m + _cast(1 - b1, p) * g
            m_den = m / cc if _m_t_denominator else m_prev
            nu = _cast(b2, p) * (m_den * m_den) + _cast(1 - b2, p) * (g * g)
            new_p = new_p - _cast(lr, p) * _safe_div(m / cc, jnp.sqrt(nu) + _cast(eps, p))
            updates.append(new_p - p)
            ms.append(m)
        return updates, MomentumState(state.count + 1, ms)

    return optax.GradientTransformation(init, update)


def alphaadam(learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0,
              _mask_from_m_t=False):
    """AlphaAdam (arXiv 2501.18094 v1), refopt's default options: AdamW (hf correction) keeping
    coordinates where m_{t-1} * g > 0, alpha = 1/max(kept fraction, 1e-3), step 1 unmasked.

    ``_mask_from_m_t`` plants the Cautious mistake (tests only)."""
    _check(learning_rate, betas, eps, weight_decay)
    b1, b2 = betas

    def init(params):
        zeros = [jnp.zeros_like(p) for p in params]
        return AdamState(jnp.zeros([], jnp.int32), zeros, list(zeros))

    def update(grads, state, params):
        t = (state.count + 1).astype(jnp.float64)
        lr = _lr(learning_rate, state.count)
        step_size = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        updates, ms, vs = [], [], []
        for p, g, m_prev, v in zip(params, grads, state.exp_avg, state.exp_avg_sq):
            new_p = p * _cast(1 - lr * weight_decay, p)
            m = _cast(b1, p) * m_prev + _cast(1 - b1, p) * g
            v = _cast(b2, p) * v + _cast(1 - b2, p) * (g * g)
            mask = ((m if _mask_from_m_t else m_prev) * g > 0) | (t == 1)
            q = jnp.sum(mask) / max(p.size, 1)
            alpha = jnp.where(t == 1, 1.0, 1.0 / jnp.maximum(q, 1e-3))
            u = _safe_div(m, jnp.sqrt(v) + _cast(eps, p))
            psi = _cast(alpha, p) * mask.astype(p.dtype)
            new_p = new_p - _cast(step_size, p) * (psi * u)
            updates.append(new_p - p)
            ms.append(m)
            vs.append(v)
        return updates, AdamState(state.count + 1, ms, vs)

    return optax.GradientTransformation(init, update)


def adamx_eps_inside_sqrt(learning_rate=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01):
    """AdamX with eps inside the sqrt (planted mistake): v <- v + eps before the port's sqrt."""
    inner = adamx(learning_rate, betas, 0.0, weight_decay)

    def update(grads, state, params):
        # Same as adamx with eps = 0 but sqrt(v + eps): rebuild the step from the new moments.
        _, new_state = inner.update(grads, state, params)
        lr = _lr(learning_rate, state.count)
        updates = []
        for p, m, v in zip(params, new_state.exp_avg, new_state.exp_avg_sq):
            new_p = p * _cast(1 - lr * weight_decay, p)
            new_p = new_p - _cast(lr, p) * (m / jnp.sqrt(v + _cast(eps, p)))   # MISTAKE
            updates.append(new_p - p)
        return updates, new_state

    return optax.GradientTransformation(inner.init, update)


def adams_m_t_denominator(learning_rate=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                          bias_correction=False):
    """AdamS with nu from the updated m_t (planted mistake, as in ReaLLM-Forge)."""
    return adams(learning_rate, betas, eps, weight_decay, bias_correction, _m_t_denominator=True)


def alphaadam_cautious(learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
    """AlphaAdam with the mask from m_t (planted mistake: this is Cautious AdamW)."""
    return alphaadam(learning_rate, betas, eps, weight_decay, _mask_from_m_t=True)
