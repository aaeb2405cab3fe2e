r"""The public way to bring your own rule and objective (``docs/extending.md``).

Rules
-----
* Subclass :class:`Rule` (set ``name``, ``state_type``, ``buffers``, ``defaults``; implement
  ``scalars(t, lr)`` and ``_update_tensor(param, grad, bufs, t, sc)``), or
* build one from a plain pair of functions with :func:`define_rule`.

Either is then usable by name after :func:`register_rule`, or, without registering, by its import
path ``"package.module:ClassName"`` wherever a rule name is accepted (``refopt.get_rule``,
``refopt.trajectory``, sweep specs ``"rule": "my_module:Lion"``). An import path is resolved by
importing the module, so a fresh worker process (a process pool, a Dask worker) finds the rule as
long as the module is importable there.

Objectives
----------
* :func:`define_objective` makes an :class:`~refopt.objectives.Objective` from a value and a
  gradient function, with optional (L0, L1) constants, minimiser and minimum value; its gradient
  noise uses refopt's laws (``none``, ``gaussian``, ``subgaussian``, ``heavy_tailed``).
* :func:`register_objective` adds a factory ``(**constants) -> Objective`` under a name; an import
  path ``"module:attr"`` (an Objective, or a factory) works without registering.
"""
from __future__ import annotations

import importlib
import math
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from .rules._base import COMMON_DEFAULTS, Rule, decay_factor

__all__ = ["COMMON_DEFAULTS", "Rule", "decay_factor", "define_objective", "define_rule",
           "is_import_path", "load_object", "register_objective", "register_rule"]


def is_import_path(name: Any) -> bool:
    """True for ``"module:attr"`` (one colon, both sides non-empty)."""
    if not isinstance(name, str) or name.count(":") != 1:
        return False
    module, attr = name.split(":")
    return bool(module.strip()) and bool(attr.strip())


def load_object(path: str, what: str) -> Any:
    """Import ``"package.module:attr"`` (attr may be dotted) and return the attribute.

    ``what`` names the field for the one-line error (``ValueError``) when the module or the
    attribute cannot be found.
    """
    if not is_import_path(path):
        raise ValueError(f"{what} {path!r} is not an import path 'module:attr'")
    module_name, attr = path.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{what} {path!r}: cannot import module {module_name!r} ({exc}); it "
                         f"must be importable (on sys.path / PYTHONPATH) in every process that "
                         f"runs it") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{what} {path!r}: module {module_name!r} has no attribute "
                             f"{attr!r}") from None
    return obj


# -- rules -----------------------------------------------------------------------------------

def rule_class_from_path(path: str, what: str = "rule") -> type:
    """The :class:`Rule` subclass named by an import path (ValueError naming ``what`` if not)."""
    obj = load_object(path, what)
    if not (isinstance(obj, type) and issubclass(obj, Rule)):
        raise ValueError(f"{what} {path!r} must name a refopt.extend.Rule subclass (or one made "
                         f"by refopt.extend.define_rule), got {type(obj).__name__}")
    return obj


def register_rule(cls: type, *, name: str | None = None, source: str = "user-defined",
                  variants: Mapping[str, tuple] | None = None,
                  aliases: tuple[str, ...] = ()) -> type:
    """Add a :class:`Rule` subclass to :data:`refopt.RULES` under ``name`` (default
    ``cls.name``); returns ``cls`` (usable as a decorator). Registration lasts for this process:
    for sweeps on other processes name the rule by its import path instead."""
    from . import registry

    if not (isinstance(cls, type) and issubclass(cls, Rule)):
        raise TypeError(f"register_rule needs a refopt.extend.Rule subclass, got {cls!r}")
    key = str(name or cls.name).lower()
    if not key or is_import_path(key):
        raise ValueError(f"rule name must be a non-empty name without ':', got {key!r}")
    if key in registry.RULES and registry.RULES[key].cls is not cls:
        raise ValueError(f"rule name {key!r} is taken by {registry.RULES[key].cls.__name__}; "
                         f"choose another name")
    registry.RULES[key] = registry.RuleInfo(key, cls, source, dict(variants or {}),
                                            tuple(aliases))
    for alias in aliases:
        registry._ALIASES[alias.lower()] = key
    return cls


def define_rule(name: str, *, init: Callable[[np.ndarray], Mapping[str, np.ndarray]],
                step: Callable[..., tuple[np.ndarray, Mapping[str, np.ndarray]]],
                defaults: Mapping[str, Any], buffers: tuple[str, ...]) -> type:
    """A :class:`Rule` subclass from a plain init/step pair, applied tensor by tensor.

    Parameters
    ----------
    name : str
        The rule's name (shown in messages; register it with :func:`register_rule` to use it).
    init : callable ``param -> {buffer: array}``
        The initial buffers of one tensor (arrays of the param's shape and dtype).
    step : callable ``(param, grad, buffers, t, lr, hyper) -> (new_param, new_buffers)``
        One step of one tensor; ``t`` is the 1-based step count, ``lr`` the step's rate (a float
        in the tensor's dtype), ``hyper`` the validated hyperparameters. Must not mutate inputs.
    defaults : mapping
        Every hyperparameter with its default; must include ``lr``.
    buffers : tuple of str
        The buffer names, in the order of the state.
    """
    if "lr" not in defaults:
        raise ValueError("define_rule: defaults must include 'lr'")
    buffers = tuple(buffers)
    state_type = NamedTuple(f"{name.title().replace('_', '')}State",
                            [("step", tuple)] + [(b, tuple) for b in buffers])

    def scalars(self, t, lr):
        return {"lr": float(lr)}

    def _update_tensor(self, param, grad, bufs, t, sc):
        new_param, new_bufs = step(param, grad, dict(bufs), t, sc["lr"], dict(self.hyper))
        missing = [b for b in buffers if b not in new_bufs]
        if missing:
            raise ValueError(f"{name}: step must return every buffer, missing {missing}")
        return new_param, dict(new_bufs), {}

    def rule_init(self, params):
        state = Rule.init(self, params)
        first = [dict(init(np.asarray(p))) for p in params]
        return state._replace(**{b: tuple(np.asarray(f[b], dtype=p.dtype)
                                          for f, p in zip(first, params)) for b in buffers})

    return type(name.title().replace("_", ""), (Rule,), {
        "__doc__": f"{name}: a rule defined with refopt.extend.define_rule.",
        "name": name, "state_type": state_type, "buffers": buffers,
        "defaults": {**COMMON_DEFAULTS, **dict(defaults)}, "scalars": scalars,
        "_update_tensor": _update_tensor, "init": rule_init})


# -- objectives ------------------------------------------------------------------------------

def define_objective(name: str, value: Callable[[np.ndarray], float],
                     grad: Callable[[np.ndarray], np.ndarray], *,
                     hessian: Callable[[np.ndarray], np.ndarray] | None = None,
                     l0l1: tuple[float, float] | None = None, minimizer: Any = None,
                     min_value: float | None = None, dim: int | None = None,
                     noise: str = "none", noise_scale: float = 1.0, noise_df: float = 3.0,
                     source: str = "user-defined", constants: Mapping[str, Any] | None = None):
    """An :class:`~refopt.objectives.Objective` from f and its gradient.

    ``dim``: a fixed number of elements (then ``minimizer`` is that vector), or ``None`` for a
    separable f of any shape (then ``minimizer``/``min_value`` are one coordinate's). ``l0l1``:
    (L0, L1) with ||Hess f|| <= L0 + L1 ||grad f||. ``noise`` is one of refopt's laws with
    per-coordinate standard deviation ``noise_scale``. ``constants`` (JSON-able) are recorded
    with the noise settings in ``Objective.constants``.
    """
    from .objectives import Objective, _noise_constants

    # The built-in objectives' checks of the noise law, its scale and its df.
    c = _noise_constants({**dict(constants or {}), "noise": noise, "noise_scale": noise_scale,
                          "noise_df": noise_df})
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise ValueError(f"dim must be None or an integer >= 1, got {dim!r}")
    if l0l1 is not None:
        l0l1 = (float(l0l1[0]), float(l0l1[1]))
        if not all(math.isfinite(c) and c >= 0 for c in l0l1):
            raise ValueError(f"l0l1 must be two finite numbers >= 0, got {l0l1!r}")
    x_star = None if minimizer is None else np.asarray(minimizer, dtype=np.float64)
    return Objective(name=name, constants=c, minimizer=x_star,
                     min_value=None if min_value is None else float(min_value), l0l1=l0l1,
                     shape=None if dim is None else (dim,), source=source,
                     _value=value, _grad=grad, _hessian=hessian)


def register_objective(name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``factory(**constants) -> Objective`` to :data:`refopt.objectives.OBJECTIVES`."""
    from .objectives import OBJECTIVES

    key = str(name).lower()
    if not key or is_import_path(key):
        raise ValueError(f"objective name must be a non-empty name without ':', got {name!r}")
    if key in OBJECTIVES and OBJECTIVES[key] is not factory:
        raise ValueError(f"objective name {key!r} is taken; choose another name")
    OBJECTIVES[key] = factory
    return factory


def objective_from_path(path: str, constants: Mapping[str, Any], what: str = "objective"):
    """The Objective named by an import path: an Objective (no constants allowed) or a factory
    called with ``constants``."""
    from .objectives import Objective

    obj = load_object(path, what)
    if isinstance(obj, Objective):
        if constants:
            raise ValueError(f"{what} {path!r} is a built Objective and takes no constants; "
                             f"name a factory (**constants) -> Objective to pass "
                             f"{sorted(constants)}")
        return obj
    if callable(obj):
        built = obj(**dict(constants))
        if not isinstance(built, Objective):
            raise ValueError(f"{what} {path!r} must return a refopt Objective (see "
                             f"refopt.extend.define_objective), got {type(built).__name__}")
        return built
    raise ValueError(f"{what} {path!r} must name an Objective or a factory returning one, got "
                     f"{type(obj).__name__}")
