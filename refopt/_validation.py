"""Validation of hyperparameters and arrays, with messages that name the parameter and its range.

Every rule validates in its constructor (as PyTorch's optimizers do) and validates the arrays
on every call of ``init``/``step``. Errors are ``ValueError`` for bad values and ``TypeError``
for bad types; each message starts with the parameter's name.
"""
from __future__ import annotations

import math
import operator
import os
import sys
import warnings
from typing import Any, Sequence

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64),
                    np.dtype(np.complex64), np.dtype(np.complex128))


class HyperparameterWarning(UserWarning):
    """A legal but almost surely unintended hyperparameter: one the chosen variant ignores, or a
    decoupled weight decay that zeroes or flips the parameters."""


class HorizonWarning(HyperparameterWarning):
    """A run shorter than AdamX's memory horizon H (spec adamx.md T6 and section 5): it cannot
    show the turn to momentum SGD. Silence it with
    ``warnings.filterwarnings("ignore", category=refopt.HorizonWarning)`` where that is meant."""


class PrecisionWarning(HyperparameterWarning, RuntimeWarning):
    """A nonzero hyperparameter that rounds to 0 in a tensor's dtype (float32: below 1.4e-45)
    where that only loses its (tiny) effect: ``lr`` or a coupled ``weight_decay``. Where the
    rounding or an overflow changes the result (``eps`` lost, a step size beyond the dtype's
    range) the step is refused instead (``docs/reliability.md``). Also a RuntimeWarning."""


def warn(message: str, category: type = HyperparameterWarning) -> None:
    """Issue a :class:`HyperparameterWarning` pointing at the first caller outside refopt."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def ignored(name: str, value: Any, why: str) -> None:
    """Warn that ``name=value`` has no effect (``why`` says under which option)."""
    warn(f"{name}={value!r} has no effect: {why}")


def _real(name: str, value: Any) -> float:
    """``value`` as a float; bools, strings and other non-numbers are refused (no silent casts)."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range, e.g. 10**400
        raise ValueError(f"{name} must be finite, got an integer of {value.bit_length()} bits "
                         f"(beyond float64's range)") from None
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def finite_nonneg(name: str, value: Any) -> float:
    """``value`` as a float that is finite and >= 0, else ValueError naming ``name``."""
    x = _real(name, value)
    if math.isnan(x) or not math.isfinite(x) or x < 0.0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return x


def in_range(name: str, value: Any, low: float, high: float, *,
             low_open: bool = False, high_open: bool = True) -> float:
    """``value`` as a float inside the interval, else ValueError naming ``name`` and the interval."""
    x = _real(name, value)
    lo_ok = x > low if low_open else x >= low
    hi_ok = x < high if high_open else x <= high
    if math.isnan(x) or not (lo_ok and hi_ok):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return x


def betas(value: Any, n: int = 2, *, beta2_open_low: bool = False) -> tuple[float, ...]:
    """A tuple of ``n`` betas, each in [0, 1); betas[1] in (0, 1) when ``beta2_open_low``."""
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"betas must be a tuple of {n} numbers, got {value!r}") from None
    if len(items) != n:
        raise ValueError(f"betas must have {n} entries, got {len(items)}: {value!r}")
    out = []
    for i, b in enumerate(items):
        out.append(in_range(f"betas[{i}]", b, 0.0, 1.0,
                            low_open=(beta2_open_low and i == 1)))
    return tuple(out)


def _shown(value: Any) -> str:
    """A one-line description of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        inner = f" ({value.item()!r})" if value.ndim == 0 else ""
        return f"a {value.ndim}-d numpy.ndarray of dtype {value.dtype}{inner}"
    text = repr(value)
    return text if "\n" not in text and len(text) <= 80 else f"a {type(value).__name__}"


def choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` as the plain ``str`` (or None) of ``allowed`` it equals, else an error naming
    ``name`` and ``allowed``.

    A ``str`` subclass (``np.str_``) becomes a plain ``str``, a NumPy dtype (``np.dtype("float16")``
    or ``np.float16``) its name; anything else that is not a ``str`` (a 0-d string array, bytes,
    a number) is a ``TypeError``: stored as given, it would fail later (JSON, the kernels).
    """
    allowed = tuple(allowed)
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        try:
            value = np.dtype(value).name
        except TypeError:
            pass
    if isinstance(value, str):
        value = str(value)
    elif value is not None:
        raise TypeError(f"{name} must be a str, one of {list(allowed)!r}; got {_shown(value)}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)!r}, got {value!r}")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _refuse_subclass(label: str, a: np.ndarray) -> None:
    """ndarray subclasses whose arithmetic is not elementwise on all elements are refused."""
    if isinstance(a, np.matrix):
        raise TypeError(f"{label} is a numpy.matrix, whose * is a matrix product; pass "
                        f"np.asarray({label})")
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{label} is a masked array; the rules update every element and the "
                        f"fast kernels would ignore the mask: pass {label}.filled(...) or "
                        f"np.asarray({label})")


def as_param_list(name: str, arrays: Any) -> list[np.ndarray]:
    """A list of float32/float64 (or complex64/complex128) NumPy arrays, one per tensor; a bare
    array is refused."""
    if isinstance(arrays, (np.ndarray, np.generic)) or np.isscalar(arrays):
        raise TypeError(f"{name} must be a list of arrays (one per tensor), got a single "
                        f"{type(arrays).__name__}; wrap it as [{name}]")
    try:
        items = list(arrays)
    except TypeError:
        raise TypeError(f"{name} must be a list of arrays, got {type(arrays).__name__}") from None
    out = []
    for i, a in enumerate(items):
        if isinstance(a, (np.floating, np.complexfloating)):  # a NumPy scalar (e.g. stream[t]
            a = np.asarray(a)                                  # of a 1-D stream) is 0-d
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}[{i}] must be a numpy.ndarray, got {type(a).__name__}")
        _refuse_subclass(f"{name}[{i}]", a)
        if a.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{name}[{i}] has dtype {a.dtype}; supported dtypes are float32 and "
                            f"float64 (float64 is the ground truth), and complex64/complex128 "
                            f"(stepped as (real, imag) pairs)")
        out.append(a)
    return out


def check_grads(params: list[np.ndarray], grads: Any) -> list[np.ndarray | None]:
    """Grads as a list matching ``params`` tensor by tensor (None = no gradient: tensor skipped)."""
    if isinstance(grads, np.ndarray):
        raise TypeError("grads must be a list of arrays (one per tensor), got a single ndarray")
    try:
        grads = [np.asarray(g) if isinstance(g, (np.floating, np.complexfloating)) else g
                 for g in grads]
    except TypeError:
        raise TypeError(f"grads must be a list of arrays (one per tensor, None to skip one), "
                        f"got {type(grads).__name__}") from None
    if len(grads) != len(params):
        raise ValueError(f"grads has {len(grads)} tensors but params has {len(params)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            continue
        if not isinstance(g, np.ndarray):
            raise TypeError(f"grads[{i}] must be a numpy.ndarray or None, got {type(g).__name__}")
        _refuse_subclass(f"grads[{i}]", g)
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape {p.shape}")
        if g.dtype != p.dtype:
            raise TypeError(f"grads[{i}] has dtype {g.dtype} but params[{i}] has dtype {p.dtype}; "
                            f"cast explicitly, refopt never casts silently")
    return grads


_REAL_DTYPES = frozenset(SUPPORTED_DTYPES[:2])
_dtype_of = operator.attrgetter("dtype")
_shape_of = operator.attrgetter("shape")


def plain_lists(params: Any, grads: Any, state: Any, state_type: type,
                buffers: Sequence[str]) -> tuple[list, list] | None:
    """``(list(params), list(grads))`` where the call is plainly valid, else None.

    A quick sufficient test for the fused rules' every step (no messages; the per-array checks
    run as C-level passes: ``map`` and list comparisons): ``params`` and ``grads`` lists (or
    tuples) of exact ``numpy.ndarray`` of float32/float64 (a grad may be None) with matching
    shapes and dtypes, and ``state`` exactly of ``state_type`` whose step counts are Python ints
    >= 0 and whose buffers are tuples of exact ndarrays fitting the params. Where it says yes,
    :func:`as_param_list`, :func:`check_grads` and ``Rule._check_state`` accept the call and
    return the same lists; None (anything else: a subclass, a NumPy scalar, complex dtypes, NumPy
    step counts, an error) means "take those checks", which raise with their messages or convert
    as they do. (A dtype counts as real here only if it hashes and compares equal to float32's or
    float64's, which is stricter than the checks' ``in``: a stricter test only sends more calls
    to them.)
    """
    seq = (list, tuple)
    if type(params) not in seq or type(grads) not in seq or type(state) is not state_type:
        return None
    n = len(params)
    steps = state.step
    if len(grads) != n or type(steps) is not tuple or len(steps) != n:
        return None
    if n == 0:
        for b in buffers:
            arrays = getattr(state, b)
            if type(arrays) is not tuple or arrays:
                return None
        return [], []
    nd = np.ndarray
    if set(map(type, steps)) != {int} or min(steps) < 0:
        return None
    if set(map(type, params)) != {nd}:
        return None
    dtypes = list(map(_dtype_of, params))
    if not _REAL_DTYPES.issuperset(dtypes):
        return None
    shapes = list(map(_shape_of, params))
    if set(map(type, grads)) == {nd}:
        if list(map(_dtype_of, grads)) != dtypes or list(map(_shape_of, grads)) != shapes:
            return None
    else:
        for p, g in zip(params, grads):
            if g is not None and (type(g) is not nd or g.dtype != p.dtype or g.shape != p.shape):
                return None
    for b in buffers:
        arrays = getattr(state, b)
        if type(arrays) is not tuple or len(arrays) != n or set(map(type, arrays)) != {nd}:
            return None
        if list(map(_dtype_of, arrays)) != dtypes or list(map(_shape_of, arrays)) != shapes:
            return None
    return list(params), list(grads)
