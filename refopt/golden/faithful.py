"""Legitimate implementations of a rule refopt has no arithmetic twin of (a user's rule).

refopt's own rules are measured against :mod:`.mp_reference`'s arithmetic twins (the reordered
loop, faithfully rounded runs). A rule written with :mod:`refopt.extend` is only Python over
NumPy arrays, so its legitimate implementations are made from its own code: the rule runs on
:class:`FaithfulArray`, an ndarray whose arithmetic is *faithfully rounded*: wherever a NumPy
operation's result is inexact, it is replaced, with probability 1/2 (seeded), by the other
floating-point neighbour of the exact result. That is what a correct port may produce with a
different operation order, FMA contraction, or a vectorised sqrt or division (FORMAT.md
section 5). Per-step scalars (``Rule.scalars``, Python floats rounded once to the tensor's
dtype) move by one ulp with probability 1/2 in the odd-seeded runs: a port computing them with
another libm, or in float32.

"Exact" is decided by recomputing the operation one precision wider (float32 in float64,
float64 in ``np.longdouble`` where that is wider, as on x86-64 Linux): an operation whose wide
result differs from its own is inexact, and the wide result says on which side the exact value
lies. Where ``np.longdouble`` is not wider than float64, every finite float64 result counts as
inexact (the spread, and so the tolerance, is then somewhat wider than necessary).

What is perturbed: every call of an arithmetic ufunc (:data:`INEXACT_UFUNCS`; also their
``reduce``/``accumulate``, e.g. ``x.sum()``) and every NumPy function called on a FaithfulArray
whose float result differs from the same function on the wide inputs (``np.dot``, ``np.sum``);
data movement (``np.where``, ``reshape``, comparisons, ``np.sign``) is exact and left alone.
Not thread-safe by design: the random stream is a context variable set by :func:`faithful_rounding`.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

import numpy as np

#: The ufuncs whose results may be inexact (and so may differ by one ulp in a correct port).
INEXACT_UFUNCS = frozenset({
    "add", "subtract", "multiply", "divide", "true_divide", "power", "float_power", "sqrt",
    "cbrt", "square", "reciprocal", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
    "hypot", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh",
    "tanh", "arcsinh", "arccosh", "arctanh", "logaddexp", "logaddexp2", "matmul", "vecdot",
})

#: The dtype an operation is recomputed in to tell exact from inexact results.
LONGDOUBLE_IS_WIDER = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant
WIDER = {np.dtype(np.float16): np.dtype(np.float32), np.dtype(np.float32): np.dtype(np.float64)}
if LONGDOUBLE_IS_WIDER:
    WIDER[np.dtype(np.float64)] = np.dtype(np.longdouble)

_RNG: contextvars.ContextVar = contextvars.ContextVar("refopt_faithful_rng", default=None)


@contextlib.contextmanager
def faithful_rounding(seed: int) -> Iterator[np.random.Generator]:
    """Within the block, FaithfulArray arithmetic is perturbed from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    token = _RNG.set(rng)
    try:
        yield rng
    finally:
        _RNG.reset(token)


def _plain(x: Any) -> Any:
    if isinstance(x, FaithfulArray):
        return x.view(np.ndarray)
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _wide(x: Any, wide: np.dtype) -> Any:
    """x in the wide dtype where it is a float array or scalar of a narrower dtype."""
    if isinstance(x, (tuple, list)):
        return type(x)(_wide(v, wide) for v in x)
    if isinstance(x, float) and not isinstance(x, np.floating):
        return np.asarray(x, dtype=np.float64).astype(wide)
    if isinstance(x, (np.ndarray, np.floating)) and x.dtype.kind == "f" \
            and x.dtype.itemsize < wide.itemsize:
        return np.asarray(x).astype(wide)
    return x


def perturb(result: Any, exact: Any, rng: np.random.Generator | None) -> Any:
    """``result`` with each inexact element replaced, with probability 1/2, by the neighbour
    on the side of ``exact`` (the same operation computed wider). Non-float results, results
    of a dtype without a wider one, and results of another shape are returned unchanged."""
    if rng is None:
        return result
    r = np.asarray(result)
    if r.dtype.kind != "f" or r.dtype not in WIDER:
        return result
    w = np.asarray(exact)
    if w.shape != r.shape:
        return result
    with np.errstate(all="ignore"):
        if w.dtype == r.dtype:  # no wider dtype on this machine: every finite result counts
            inexact = np.isfinite(r)
            side = np.where(rng.random(r.shape) < 0.5, np.inf, -np.inf)
        else:
            inexact = np.isfinite(r) & np.isfinite(w) & (r.astype(w.dtype) != w)
            side = np.where(w > r, np.inf, -np.inf)
        neighbour = np.nextafter(r, side.astype(r.dtype))
        take = inexact & np.isfinite(neighbour) & (rng.random(r.shape) < 0.5)
    out = np.where(take, neighbour, r).astype(r.dtype)
    return out if isinstance(result, np.ndarray) else out[()]


class FaithfulArray(np.ndarray):
    """An ndarray whose inexact arithmetic is faithfully rounded inside :func:`faithful_rounding`
    (the module docstring says what that means); outside such a block it is a plain ndarray."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = _plain(inputs)
        if out is not None:
            kwargs["out"] = _plain(out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        rng = _RNG.get()
        if rng is not None and ufunc.__name__ in INEXACT_UFUNCS and ufunc.nout == 1 \
                and method in ("__call__", "reduce", "accumulate"):
            r = np.asarray(result)
            wide = WIDER.get(r.dtype)
            if wide is not None:
                extra = {k: v for k, v in kwargs.items()
                         if k in ("axis", "keepdims", "initial", "where")}
                try:
                    with np.errstate(all="ignore"):
                        exact = getattr(ufunc, method)(*_wide(plain, wide), **extra)
                except (TypeError, ValueError):  # e.g. no such loop in the wide dtype
                    exact = r
                new = perturb(r, exact, rng)
                if out is not None:
                    kwargs["out"][0][...] = new
                    result = out[0]
                else:
                    result = new
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        plain_args, plain_kwargs = _plain(args), _plain(kwargs)
        result = func(*plain_args, **plain_kwargs)
        rng = _RNG.get()
        if rng is not None and isinstance(result, (np.ndarray, np.floating)) \
                and result.dtype in WIDER:
            wide = WIDER[result.dtype]
            try:
                with np.errstate(all="ignore"):
                    exact = func(*_wide(plain_args, wide), **_wide(plain_kwargs, wide)
                                 if isinstance(plain_kwargs, dict) else plain_kwargs)
            except (TypeError, ValueError, np.linalg.LinAlgError):
                exact = result
            result = perturb(result, exact, rng)
        return _wrap(result)


def _wrap(x: Any) -> Any:
    """Results back as FaithfulArray (0-d included), so the arithmetic after them is too."""
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    if isinstance(x, (np.ndarray, np.generic)) and not isinstance(x, FaithfulArray):
        return np.asarray(x).view(FaithfulArray)
    return x


def faithful(x: np.ndarray) -> FaithfulArray:
    """A FaithfulArray view of ``x`` (no copy)."""
    return np.asarray(x).view(FaithfulArray)


def perturb_scalars(sc: dict, rng: np.random.Generator) -> dict:
    """Each float scalar one ulp up or down with probability 1/2 (ints, bools, strings kept)."""
    out = {}
    for k, v in sc.items():
        if isinstance(v, (float, np.floating)) and not isinstance(v, bool) and np.isfinite(v) \
                and rng.random() < 0.5:
            kind = type(v) if isinstance(v, np.floating) else np.float64
            v2 = np.nextafter(kind(v), kind(np.inf if rng.random() < 0.5 else -np.inf))
            out[k] = v2 if isinstance(v, np.floating) else float(v2)
        else:
            out[k] = v
    return out
