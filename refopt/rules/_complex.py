"""Complex parameters as (real, imaginary) pairs, for every rule and backend.

The official AdamNX code updates a complex tensor through ``torch.view_as_real``, and so do
PyTorch's own optimizers (spec adamx.md section 2; shared/guides/testing-optimizers.md: "complex
params must match ``view_as_real`` params bitwise"). refopt does the same for every rule: a
complex64 (complex128) tensor of shape S is stepped as the float32 (float64) tensor of shape
S + (2,) that holds its real and imaginary parts, with its state buffers viewed alike. Each part
is then a coordinate of its own: AdamX's and Adam's ``v`` hold ``re(g)**2`` and ``im(g)**2``
separately (not ``|g|**2``), AdamS's denominator likewise, and AlphaAdam's mask and ``kept``
count the parts (its ``info["mask"]`` has shape S + (2,)).

Out of place the results are viewed back as complex arrays; in place the real views alias the
complex arrays, so the update lands in them.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

#: Complex dtype -> the dtype of its parts.
PART_DTYPES = {np.dtype(np.complex64): np.dtype(np.float32),
               np.dtype(np.complex128): np.dtype(np.float64)}


def has_complex(params) -> bool:
    return any(np.dtype(p.dtype) in PART_DTYPES for p in params)


def as_pairs(a, contiguous: Callable[[Any], Any]):
    """The real view of a complex array (shape + (2,)); other arrays and None as they are."""
    if a is None or np.dtype(a.dtype) not in PART_DTYPES:
        return a
    shape = a.shape  # (np.ascontiguousarray makes a 0-d array 1-d: keep the caller's shape)
    a = contiguous(a)
    return a.view(PART_DTYPES[np.dtype(a.dtype)]).reshape(shape + (2,))


def from_pairs(real, like):
    """The complex array of dtype and shape ``like`` whose parts ``real`` holds."""
    if like is None or np.dtype(like.dtype) not in PART_DTYPES:
        return real
    return real.view(like.dtype).reshape(like.shape)


def step_as_pairs(step: Callable, params: list, grads: list, state, buffers: tuple[str, ...],
                  contiguous: Callable[[Any], Any], *, inplace: bool, **kw):
    """Run ``step(params, grads, state, **kw) -> (params, state, info)`` on the real views.

    ``contiguous`` makes a C-contiguous array of the backend (a no-op where it already is; in
    place the arrays must already be contiguous, so the views alias them).
    """
    real_params = [as_pairs(p, contiguous) for p in params]
    real_grads = [as_pairs(g, contiguous) for g in grads]
    real_state = state._replace(**{b: tuple(as_pairs(x, contiguous) for x in getattr(state, b))
                                   for b in buffers})
    new_params, new_state, info = step(real_params, real_grads, real_state, **kw)
    if info["skipped"]:
        return list(params), state, info
    if inplace:  # the views were updated: hand back the caller's own arrays
        return list(params), state._replace(step=new_state.step), info
    # A tensor without a gradient keeps its very arrays, as on the real path.
    out_params = [p if g is None else from_pairs(r, p)
                  for r, p, g in zip(new_params, params, grads)]
    out_state = new_state._replace(**{
        b: tuple(old if g is None else from_pairs(r, p)
                 for r, old, p, g in zip(getattr(new_state, b), getattr(state, b), params, grads))
        for b in buffers})
    return out_params, out_state, info
