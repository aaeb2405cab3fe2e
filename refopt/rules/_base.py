"""The shared shape of every rule: validated hyperparameters, ``init`` and a pure ``step``.

A rule is built from its hyperparameters (validated once, in the constructor) and offers

* ``init(params) -> State``: a small NamedTuple; ``State.step`` is a tuple of Python ints, one per
  tensor, and every other field is a tuple of arrays, one per tensor;
* ``step(params, grads, state, lr=None) -> (params, state)``: new arrays, inputs never mutated;
* ``step_with_info(...)``: the same plus per-tensor diagnostics (AlphaAdam's mask and alpha).

Dtype contract (the ``lax_reference`` convention): a tensor is computed entirely in its own dtype
(float32 or float64). Per-step scalars (bias corrections, decay factors, AdamX's beta2_t) are
computed in float64 by :meth:`Rule.scalars` and rounded once to the tensor's dtype; the fast
kernels receive exactly those values. float64 is the ground truth. A complex64/complex128
tensor is stepped as the float32/float64 array of its (real, imaginary) parts
(:mod:`refopt.rules._complex`).

Non-finite gradients (``nonfinite`` option, every rule):

* ``"raise"`` (default): ``FloatingPointError`` naming the tensor; nothing is updated;
* ``"skip"``: the whole step is skipped (params and state returned unchanged, ``t`` does not
  advance), as a loss-scaler does on overflow; ``info["skipped"]`` is True;
* ``"propagate"``: compute anyway and let NaN/inf flow into params and state.

A tensor whose gradient is ``None`` is skipped: its params, state and step count are unchanged.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar, Mapping, NamedTuple, Sequence

import numpy as np

from .. import _validation as V
from ._complex import has_complex, step_as_pairs

NONFINITE_POLICIES = ("raise", "skip", "propagate")

#: State type -> the name of the rule whose ``init`` makes it (filled as rules are defined).
STATE_OWNERS: dict[type, str] = {}


class Rule:
    """Base class; subclasses set the class attributes and implement ``_update_tensor``.

    Subclasses declare:

    * ``name``: the registry name; ``state_type``: the NamedTuple of the state;
    * ``buffers``: names of the per-tensor state arrays (fields of ``state_type`` after ``step``);
    * ``defaults``: every hyperparameter with its default;
    * ``_validate_hyper(h)``: returns the validated, normalised dict.
    """

    name: ClassVar[str] = ""
    state_type: ClassVar[type] = tuple
    buffers: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[Mapping[str, Any]] = {}
    backend: str = "numpy"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name and cls.state_type is not tuple:  # the first rule of a state type owns it
            STATE_OWNERS.setdefault(cls.state_type, cls.name)

    def __init__(self, **hyper: Any) -> None:
        unknown = sorted(set(hyper) - set(self.defaults))
        if unknown:
            raise TypeError(f"{self.name}: unknown hyperparameter(s) {unknown}; "
                            f"accepted: {sorted(self.defaults)}")
        merged = {**self.defaults, **hyper}
        merged["lr"] = V.finite_nonneg("lr", merged["lr"])
        # eps = None means "the default of the chosen mode" only where the rule's own default is
        # None (AlphaAdam); such a rule resolves and validates it in _validate_hyper.
        if "eps" in merged and not (merged["eps"] is None and self.defaults["eps"] is None):
            merged["eps"] = V.finite_nonneg("eps", merged["eps"])
        if "weight_decay" in merged:
            merged["weight_decay"] = V.finite_nonneg("weight_decay", merged["weight_decay"])
        merged["nonfinite"] = V.choice("nonfinite", merged["nonfinite"], NONFINITE_POLICIES)
        self.hyper: Mapping[str, Any] = MappingProxyType(self._validate_hyper(merged))
        lr, wd = self.hyper["lr"], self.hyper.get("weight_decay", 0.0)
        if self.decouples_weight_decay and lr * wd >= 1.0:
            # Legal, and the reference computes it, but theta * (1 - lr*wd) is zero or flips sign.
            V.warn(f"lr * weight_decay = {lr * wd:g} >= 1: decoupled weight decay multiplies the "
                   f"params by 1 - lr*weight_decay = {1.0 - lr * wd:g} every step (zero or a sign "
                   f"flip); lr * weight_decay < 1 keeps it in (0, 1]. Checked at construction "
                   f"only, not for a per-step lr.")

    @property
    def decouples_weight_decay(self) -> bool:
        """Whether weight decay multiplies the params by ``1 - lr*weight_decay`` (else L2/none)."""
        return ("weight_decay" in self.hyper
                and self.hyper.get("weight_decay_mode", "decoupled") == "decoupled")

    # -- subclass hooks -------------------------------------------------------------------
    def _validate_hyper(self, h: dict) -> dict:
        return h

    def dtype_bounds(self) -> dict[str, tuple[str, float]]:
        """Values, beyond the per-step scalars, that a tensor's dtype must hold as finite:
        hyperparameter name -> (what the value is, the float64 value). See
        :func:`cast_scalars_checked`."""
        return {}

    def scalars(self, t: int, lr: float) -> dict[str, float]:
        """Per-step scalars in float64 (Python floats) for step ``t`` (1-based) at rate ``lr``."""
        raise NotImplementedError

    def _update_tensor(self, param: np.ndarray, grad: np.ndarray, bufs: dict[str, np.ndarray],
                       t: int, sc: dict[str, Any]) -> tuple[np.ndarray, dict, dict]:
        """One tensor's update. ``sc`` holds ``scalars(t, lr)`` already cast to the tensor's dtype.

        Returns new param, new buffers and an info dict. Must not mutate its inputs.
        """
        raise NotImplementedError

    # -- public API -----------------------------------------------------------------------
    def init(self, params: Sequence[np.ndarray]) -> NamedTuple:
        params = V.as_param_list("params", params)
        fields = {"step": tuple(0 for _ in params)}
        for b in self.buffers:
            fields[b] = tuple(np.zeros_like(p) for p in params)
        return self.state_type(**fields)

    def step(self, params, grads, state, *, lr: float | None = None):
        new_params, new_state, _ = self.step_with_info(params, grads, state, lr=lr)
        return new_params, new_state

    def step_with_info(self, params, grads, state, *, lr: float | None = None):
        params = V.as_param_list("params", params)
        grads = V.check_grads(params, grads)
        self._check_state(params, state)
        state = normalise_steps(state)
        lr = self.hyper["lr"] if lr is None else V.finite_nonneg("lr", lr)
        if has_complex(params):  # stepped as (real, imag) pairs: see refopt.rules._complex
            return step_as_pairs(self.step_with_info, params, grads, state, self.buffers,
                                 np.ascontiguousarray, inplace=False, lr=lr)

        bad = [i for i, g in enumerate(grads) if g is not None and not np.all(np.isfinite(g))]
        if bad:
            policy = self.hyper["nonfinite"]
            if policy == "raise":
                raise FloatingPointError(
                    f"grads[{bad[0]}] contains NaN or inf (nonfinite='raise'); pass "
                    f"nonfinite='skip' to skip such steps or 'propagate' to compute anyway")
            if policy == "skip":
                return list(params), state, {"skipped": True, "tensors": [{} for _ in params]}

        sc_cache: dict[tuple, dict] = {}
        for i, (p, g) in enumerate(zip(params, grads)):  # checked before anything is computed
            key = (state.step[i] + 1, p.dtype)
            if g is not None and key not in sc_cache:
                sc_cache[key] = cast_scalars_checked(self, key[0], lr, p.dtype)
        new_params, steps, infos = [], [], []
        new_bufs: dict[str, list] = {b: [] for b in self.buffers}
        for i, (p, g) in enumerate(zip(params, grads)):
            t_old = state.step[i]
            old = {b: getattr(state, b)[i] for b in self.buffers}
            if g is None:
                new_params.append(p)
                steps.append(t_old)
                infos.append({})
                for b in self.buffers:
                    new_bufs[b].append(old[b])
                continue
            t = t_old + 1
            key = (t, p.dtype)
            # Overflow to inf from finite inputs (e.g. g**2 in float32 at |g| ~ 1e30) is IEEE
            # behaviour, not an error of the caller: no warnings from the reference.
            with np.errstate(all="ignore"):
                p_new, b_new, info = self._update_tensor(p, g, old, t, sc_cache[key])
            # Arithmetic on 0-d arrays yields NumPy scalars: keep every tensor an ndarray.
            new_params.append(np.asarray(p_new))
            steps.append(t)
            infos.append(info)
            for b in self.buffers:
                new_bufs[b].append(np.asarray(b_new[b]))
        new_state = self.state_type(step=tuple(steps), **{b: tuple(v) for b, v in new_bufs.items()})
        return new_params, new_state, {"skipped": False, "tensors": infos}

    # -- helpers --------------------------------------------------------------------------
    def _check_state(self, params: list[np.ndarray], state, array_type: type = np.ndarray) -> None:
        """Raise if ``state`` does not fit ``params``; ``array_type``: the backend's arrays."""
        if not isinstance(state, self.state_type):
            owner = next((name for cls, name in STATE_OWNERS.items() if isinstance(state, cls)),
                         None)
            if owner is not None:  # a state of another rule (maybe with the same fields)
                raise TypeError(f"state must be a {self.state_type.__name__} from "
                                f"{self.name}.init, got a {type(state).__name__} from "
                                f"{owner}.init: a state belongs to the rule that made it")
            raise TypeError(f"state must be a {self.state_type.__name__} from {self.name}.init, "
                            f"got {type(state).__name__}")
        if len(state.step) != len(params):
            raise ValueError(f"state holds {len(state.step)} tensors but params has {len(params)}")
        for i, t in enumerate(state.step):
            if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) or t < 0:
                raise ValueError(f"state.step[{i}] must be an integer >= 0, got {t!r}")
        for b in self.buffers:
            if len(getattr(state, b)) != len(params):
                raise ValueError(f"state.{b} holds {len(getattr(state, b))} tensors but params "
                                 f"has {len(params)}")
            for i, (p, s) in enumerate(zip(params, getattr(state, b))):
                if not isinstance(s, array_type):
                    raise TypeError(f"state.{b}[{i}] must be a {array_type.__module__}."
                                    f"{array_type.__name__}, got {type(s).__name__}")
                if s.shape != p.shape:
                    raise ValueError(f"state.{b}[{i}] has shape {getattr(s, 'shape', None)} but "
                                     f"params[{i}] has shape {p.shape}")
                if s.dtype != p.dtype:
                    raise TypeError(f"state.{b}[{i}] has dtype {s.dtype} but params[{i}] has "
                                    f"dtype {p.dtype}; state and params must share a dtype")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({args})"


#: Per-step scalar -> the hyperparameter(s) it comes from and what it is (for the messages).
_SCALAR_SOURCES = {
    "lr": ("lr", "the learning rate"),
    "step_size": ("lr", "the step size (lr with its bias correction)"),
    "decay": ("lr * weight_decay", "the decoupled decay factor 1 - lr*weight_decay"),
    "weight_decay": ("weight_decay", "the coupled weight decay"),
    "l2": ("weight_decay", "the coupled weight decay"),
    "eps": ("eps", "eps"),
}


def cast_scalars_checked(rule: Rule, t: int, lr: float, dtype) -> dict[str, Any]:
    """``rule.scalars(t, lr)`` with every float rounded once to ``dtype``, after checking that
    the dtype holds them (issue 13 item 11; ``docs/reliability.md``):

    * a scalar that is not finite in ``dtype`` though the hyperparameters are (``lr = 3.4e38``
      gives a float32 step size ``lr/(1-beta1)`` of inf; AdaX's step size beyond float64 late
      in a run), or a value of :meth:`Rule.dtype_bounds` that overflows: ``ValueError`` naming
      the hyperparameter: the params would become inf or NaN;
    * a nonzero ``eps`` that rounds to 0: ``ValueError`` (the denominator loses its guard: a
      float32 gradient of 1e-30 gives v = 0 and inf params); ``eps=0`` itself stays legal;
    * a nonzero ``lr`` or coupled ``weight_decay`` that rounds to 0: :class:`PrecisionWarning`
      (the effect lost was below the dtype's smallest number anyway).

    Valid values are untouched: the result is the cast the reference always made.
    """
    dtype = np.dtype(dtype)
    kind = dtype.type
    try:
        sc64 = rule.scalars(t, lr)
    except OverflowError as exc:  # math.expm1 & co. refuse where float arithmetic gives inf
        raise ValueError(f"t={t}: {rule.name}'s per-step scalars at lr={lr!r} overflow float64 "
                         f"({exc}), which would make the params inf or NaN") from None
    with np.errstate(over="ignore"):  # an overflowing cast is reported below, not warned
        sc = {k: (kind(v) if isinstance(v, float) else v) for k, v in sc64.items()}
        bounds = {k: (what, v, kind(v)) for k, (what, v) in rule.dtype_bounds().items()}
    for k, v in sc64.items():
        if isinstance(v, float) and not np.isfinite(sc[k]):
            name, what = _SCALAR_SOURCES.get(k, (k, f"the per-step scalar {k}"))
            value = lr if name == "lr" else rule.hyper.get(name, None)
            given = f"={value!r}" if value is not None else ""
            big = float(np.finfo(dtype).max)
            raise ValueError(f"{name}{given} is too large for {dtype} tensors: {what} at "
                             f"t={t} is {v:.6g}, beyond {dtype}'s largest finite {big:.6g}, "
                             f"which would make the params inf or NaN")
    for k, (what, v, cast) in bounds.items():
        if not np.isfinite(cast):
            big = float(np.finfo(dtype).max)
            raise ValueError(f"{k}={rule.hyper[k]!r} is out of range for {dtype} tensors: "
                             f"{what} is {v:.6g}, beyond {dtype}'s largest finite {big:.6g}, "
                             f"which would make the params inf or NaN")
    eps = sc64.get("eps")
    if isinstance(eps, float) and eps != 0.0 and sc["eps"] == 0:
        tiny = float(np.finfo(dtype).smallest_subnormal)
        raise ValueError(f"eps={eps!r} rounds to 0 in {dtype} (its smallest positive value is "
                         f"{tiny:.2g}), which removes the guard of the denominator (a tiny "
                         f"gradient would give inf params): pass eps=0 to mean no eps, or "
                         f"eps >= {tiny:.2g}")
    for k, name in (("lr", "lr"), ("weight_decay", "weight_decay"), ("l2", "weight_decay")):
        v = sc64.get(k)
        if isinstance(v, float) and v != 0.0 and sc[k] == 0:
            tiny = float(np.finfo(dtype).smallest_subnormal)
            V.warn(f"{name}={v!r} rounds to 0 in {dtype} (its smallest positive value is "
                   f"{tiny:.2g}): it has no effect on {dtype} tensors", V.PrecisionWarning)
    return sc


def normalise_steps(state):
    """``state`` with its step counts as Python ints (checked >= 0 by ``Rule._check_state``).

    A NumPy integer counter (uint8, int64, ...) would wrap or overflow in ``t + 1`` and in the
    scalars' ``beta ** t``; every backend calls this after validating the state.
    """
    if all(type(t) is int for t in state.step):
        return state
    return state._replace(step=tuple(int(t) for t in state.step))


def decay_factor(lr: float, weight_decay: float) -> float:
    """Decoupled weight decay multiplier 1 - lr * weight_decay, in float64."""
    return 1.0 - lr * weight_decay


def bias_corrections(beta1: float, beta2: float, t: int) -> tuple[float, float]:
    """Adam's 1 - beta1**t and 1 - beta2**t in float64 (t is an exact Python int)."""
    return 1.0 - beta1 ** t, 1.0 - beta2 ** t


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0/0 := 0 (only reachable when eps = 0); x/0 for x != 0 stays inf."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    zero = (num == 0) & (den == 0)
    if np.any(zero):
        out = np.where(zero, num.dtype.type(0), out)
    return out


def round_to_bits(x: np.ndarray, state_dtype: str | None) -> np.ndarray:
    """Round ``x`` to the storage precision ``state_dtype`` and back to x's dtype.

    ``None`` (default) keeps x's dtype. ``"bfloat16"`` is emulated: round-to-nearest-even of a
    float32 to 8 significand bits.
    """
    if state_dtype is None or np.dtype(x.dtype).name == state_dtype:
        return x
    if state_dtype in ("float32", "float16", "float64"):
        return x.astype(state_dtype).astype(x.dtype)
    if state_dtype == "bfloat16":
        f32 = np.array(x, dtype=np.float32, order="C")  # (ascontiguousarray would make 0-d 1-d)
        bits = f32.view(np.uint32).astype(np.uint64)
        rounding = ((bits >> 16) & 1) + 0x7FFF
        out = ((bits + rounding) >> 16 << 16).astype(np.uint32).view(np.float32)
        out = np.where(np.isfinite(f32), out, f32)
        return out.astype(x.dtype).reshape(x.shape)
    raise ValueError(f"state_dtype must be None, 'float64', 'float32', 'float16' or 'bfloat16', "
                     f"got {state_dtype!r}")


STATE_DTYPES = (None, "float64", "float32", "float16", "bfloat16")

COMMON_DEFAULTS = {"nonfinite": "raise"}

