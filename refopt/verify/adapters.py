r"""Adapters: run one golden case through a port written for any framework.

Every adapter implements the :class:`Port` protocol: ``configure(case)`` says which constructor
keyword arguments the case needs (or why the port cannot express the case), and ``open(case,
params)`` returns a :class:`Session` that takes one step at a time. :func:`run_case` drives a
session through the case: it supplies the gradients (the explicit stream, or ``grad_fn`` on the
port's *own* current params for closed-loop cases), the scheduled learning rate
:math:`\eta_t` of each step, and records params and exposed state buffers at the case's
recorded steps.

Ports and how they are configured
---------------------------------
A case carries every hyperparameter of the rule (``case.hyper``). The adapter passes each one that
the port's constructor or factory accepts, under refopt's names (``lr``, ``betas``, ``eps``,
``weight_decay``, ``bias_correction``, ...), with two optax-style spellings also understood:
``learning_rate`` for ``lr`` and ``b1``/``b2`` for ``betas``. A constructor with ``**kwargs``
receives every hyperparameter. If the port has no parameter for a hyperparameter whose value in
the case differs from the rule's default (say ``bias_correction=True`` for a port that implements
only the paper form of AdamS), the case is *not run* for that port and the reason is reported.
``options`` (the CLI's ``--option NAME=VALUE``) are passed to every case; when NAME is one of the
rule's hyperparameters, cases with another value of it are not run.

* :class:`TorchOptimizerPort`: a ``torch.optim.Optimizer`` subclass, built as
  ``cls([tensors], **kwargs)`` on float32/float64 tensors; each step sets ``p.grad`` and every
  ``param_group["lr"]`` to :math:`\eta_t`, then calls ``step()``. State buffers are read from
  ``optimizer.state[p]`` under refopt's names (``exp_avg``, ``exp_avg_sq``).
* :class:`OptaxPort`: an optax ``GradientTransformation`` or a factory returning one. Params are a
  list of ``jax.Array`` (one per tensor); float64 cases switch on ``jax_enable_x64``. A scheduled
  case passes ``learning_rate`` as an optax schedule ``count -> eta_{count+1}``. Buffers are read
  from NamedTuple fields of the state named like refopt's buffers, or optax's ``mu``/``nu``.
* :class:`RulePort`: an object with refopt's rule interface, ``init(params) -> state`` and
  ``step(params, grads, state, lr=...) -> (params, state)``, or a factory ``(**hyper) -> such an
  object``. A refopt rule instance (any backend) is rebuilt for each case with
  ``get_rule(case.rule, backend=rule.backend, **case.hyper)``.
* :class:`FunctionPort`: a plain function
  ``step(params, grads, state, *, t, lr, hyper) -> (params, state)`` where params and grads are
  lists of NumPy arrays in the case dtype, ``state`` is None on the first call and whatever the
  function returned afterwards, ``t`` is the 1-based step, ``lr`` is :math:`\eta_t` and ``hyper``
  is the case's hyperparameter dict. A state that is a mapping or NamedTuple with refopt's buffer
  names (each a list of arrays, one per tensor) is compared too.

:func:`make_port` picks the adapter for any of these objects.
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

COMMON = ("lr", "betas", "eps", "weight_decay")
# optax spellings of two common hyperparameters.
_OPTAX_BUFFER_ALIASES = {"mu": "exp_avg", "nu": "exp_avg_sq"}
_KNOWN_BUFFERS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")


class NotApplicable(Exception):
    """The port cannot be configured for this case (it lacks a parameter the case needs)."""


class PortError(Exception):
    """The port raised: ``original`` is what it raised (any BaseException: a port's
    ``SystemExit(0)`` must never end a verification as a pass), ``phase`` where
    (``"construction"``, ``"step 3"``, ...), ``step`` the 1-based step (0 at construction) and
    ``params_changed`` whether any param differed from its value before that step."""

    def __init__(self, original: BaseException, phase: str, step: int, params_changed: bool):
        super().__init__(f"{type(original).__name__} at {phase}: {original}")
        self.original, self.phase, self.step = original, phase, step
        self.params_changed = params_changed


#: Set by the SIGINT handler :func:`watch_user_interrupt` installs: a KeyboardInterrupt that
#: arrives while it is set is the user's Ctrl-C (it ends the run); any other one was raised by
#: the port and is a verdict on the port.
USER_INTERRUPT = {"seen": False}


def _is_users_interrupt(exc: BaseException) -> bool:
    return isinstance(exc, KeyboardInterrupt) and (USER_INTERRUPT["seen"]
                                                   or not USER_INTERRUPT.get("watching"))


class watch_user_interrupt:
    """Context manager: tell the user's Ctrl-C from a KeyboardInterrupt raised by a port
    (main thread only; elsewhere every KeyboardInterrupt counts as the user's)."""

    def __enter__(self):
        import signal
        import threading

        self._old = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                USER_INTERRUPT["seen"] = True
                raise KeyboardInterrupt

            self._old = signal.signal(signal.SIGINT, handler)
            USER_INTERRUPT.update(seen=False, watching=True)
        return self

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            USER_INTERRUPT.update(seen=False, watching=False)
        return False


def _changed(before: list, after: list) -> bool:
    if len(before) != len(after):
        return True
    for a, b in zip(before, after):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return True
    return False


def _port_call(fn, phase: str, step: int, snapshot_of=None):
    """Run one call into the port; whatever it raises comes out as a :class:`PortError`
    (``NotApplicable`` and the user's Ctrl-C excepted). ``snapshot_of`` (a session) is read
    before and, on an error, after the call, to tell whether the port changed a param."""
    before = None
    if snapshot_of is not None:
        before = _port_call(snapshot_of.params, f"reading params before {phase}", step)
    try:
        return fn()
    except NotApplicable:
        raise
    except BaseException as exc:
        if _is_users_interrupt(exc):
            raise
        changed = False
        if before is not None:
            try:
                changed = _changed(before, snapshot_of.params())
            except BaseException as again:
                if _is_users_interrupt(again):
                    raise
                changed = True  # the params cannot even be read back
        raise PortError(exc, phase, step, changed) from exc


@dataclass
class PortRun:
    """A port's trajectory at the case's recorded steps.

    ``params`` holds one array per tensor shaped (len(steps), *shape); ``state`` maps each buffer
    the port exposes to the same form.
    """

    params: list
    state: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    other_buffers: list = field(default_factory=list)   # exposed buffers the rule does not have
    # AlphaAdam's "mask", "alpha", "kept" where the port exposes them, at the steps steps[1:].
    info: dict = field(default_factory=dict)
    # Every step 0..T, for the invariants after the pointwise horizon (refopt.verify.invariants).
    trace: Any = None

    def as_histories(self) -> dict:
        return {"param": self.params, **self.state}


class Session(Protocol):
    def step(self, grads: list, t: int, lr: float) -> None: ...
    def params(self) -> list: ...
    def buffers(self, names: tuple) -> dict: ...
    # Optional: per-step extras of the last step (AlphaAdam's mask, alpha, kept), one per tensor.
    # def info(self) -> dict: ...


# Per-step extras a session may expose (AlphaAdam), judged by the invariants.
INFO_KEYS = ("mask", "alpha", "kept")


class Port(Protocol):
    name: str

    def configure(self, case) -> dict: ...        # raises NotApplicable
    def open(self, case, params: list) -> Session: ...


# -- configuration ------------------------------------------------------------------------
def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None \
            or isinstance(a, str) or isinstance(b, str):
        return a == b
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return a == b


def rule_defaults(case) -> dict:
    """The rule's default hyperparameters, with defaults that depend on other options (AlphaAdam's
    eps and density_floor) resolved for this case's options."""
    from ..registry import get_rule, rule_info

    raw = dict(rule_info(case.rule).cls.defaults)
    out = dict(raw)
    dependent = [k for k, v in raw.items() if v is None]
    if dependent:
        try:
            fixed = {k: v for k, v in case.hyper.items() if k in raw and k not in dependent}
            resolved = get_rule(case.rule, **fixed).hyper
        except (TypeError, ValueError):
            # An invalid case: its other options cannot be validated; use the plain defaults.
            resolved = get_rule(case.rule).hyper
        out.update({k: resolved[k] for k in dependent})
    return out


def _signature_names(fn: Callable) -> tuple[set, bool]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    return names - {"self", "params"}, var_kw


def case_kwargs(case, accepted: set, var_kw: bool, options: Mapping | None = None,
                lr_value: Any = None, variant: Mapping | None = None) -> dict:
    """Constructor kwargs for ``case`` given the names a constructor accepts.

    ``variant`` (the port's declared variant, ``--variant NAME=VALUE`` or a ``refopt_variant``
    attribute) selects cases without passing anything: a case with another value of a declared
    hyperparameter is not run, one with the declared value runs without that keyword. Through
    ``**kwargs`` only the four common hyperparameters and the options whose value differs from
    the rule's default are passed (a port that does not know refopt's option names then still
    runs every default-variant case); :func:`unnamed_keys` lists what went that way.

    Raises :class:`NotApplicable` when a hyperparameter the case needs cannot be passed, when
    ``options`` fixes a hyperparameter to another value than the case's, or when the case is
    not of the declared variant.
    """
    from ..registry import rule_info

    options = dict(options or {})
    variant = dict(variant or {})
    defaults = rule_defaults(case)
    kwargs: dict = {}
    raw = rule_info(case.rule).cls.defaults
    check_variant(case, variant)
    for key, value in case.hyper.items():
        if value is None and key in raw and raw[key] is None:
            continue  # "the default" (e.g. AlphaAdam's eps=None): the port's own default
        if key in variant:
            continue  # declared: the port implements it without a keyword
        if key in options:
            if not _equal(options[key], value):
                raise NotApplicable(f"--option {key}={options[key]!r} but the case has "
                                    f"{key}={value!r}")
            continue
        if key == "lr":
            value = case.hyper["lr"] if lr_value is None else lr_value
            name = "lr" if "lr" in accepted else "learning_rate" if "learning_rate" in accepted \
                else ("lr" if var_kw else None)
            if name:
                kwargs[name] = value
                continue
        elif key == "betas" and "betas" not in accepted and {"b1", "b2"} <= accepted:
            kwargs["b1"], kwargs["b2"] = value
            continue
        elif key == "betas" and "betas" not in accepted and {"beta1", "beta2"} <= accepted:
            kwargs["beta1"], kwargs["beta2"] = value
            continue
        elif key in accepted or (var_kw and (key in COMMON or (
                key in defaults and not _equal(value, defaults[key])))):
            kwargs[key] = tuple(value) if isinstance(value, list) else value
            continue
        if key == "lr" and case.lr_schedule is not None:
            raise NotApplicable("the case has an lr schedule but the port takes no lr")
        if key not in defaults or not _equal(value, defaults[key]):
            raise NotApplicable(f"the port takes no parameter {key!r} and the case needs "
                                f"{key}={value!r}")
    kwargs.update(options)
    return kwargs


def check_variant(case, variant: Mapping | None) -> None:
    """Raise :class:`NotApplicable` if ``case`` is not of the declared ``variant``."""
    for key, value in dict(variant or {}).items():
        if key in case.hyper and not _equal(value, case.hyper[key]):
            raise NotApplicable(f"the port declares the variant {key}={value!r}; the case has "
                                f"{key}={case.hyper[key]!r}")


def unnamed_keys(kwargs: Mapping, accepted: set, options: Mapping | None = None) -> list:
    """The keywords of ``kwargs`` that reach the constructor only through its ``**kwargs``
    (refopt's option names the port may ignore or refuse), ``--option`` names excluded."""
    known = set(accepted) | set(options or {})
    return [k for k in kwargs if k not in known]


def construct(factory: Callable, args: tuple, kwargs: dict, unnamed: list, what: str):
    """``factory(*args, **kwargs)``; a TypeError that goes away without the ``**kwargs``-only
    keywords means the port refuses refopt's name for an option: the case cannot be expressed
    (:class:`NotApplicable`), not an error of the port."""
    try:
        return factory(*args, **kwargs)
    except TypeError as exc:
        if not unnamed:
            raise
        try:
            factory(*args, **{k: v for k, v in kwargs.items() if k not in unnamed})
        except Exception:
            raise exc from None
        raise NotApplicable(f"{what} refuses the keyword{'s' if len(unnamed) > 1 else ''} "
                            f"{', '.join(unnamed)} ({type(exc).__name__}: {exc}); declare the "
                            f"variant it implements with --variant NAME=VALUE") from None


def lr_at(case, t: int) -> float:
    """eta_t for step t (1-based)."""
    if case.lr_schedule is not None:
        return float(case.lr_schedule[t - 1])
    return float(case.hyper["lr"])


def _buffers_from_state(state: Any, names: tuple, n: int) -> dict:
    """Per-tensor buffers found in a NamedTuple/mapping state (searched recursively)."""
    found: dict = {}

    def visit(obj, depth=0):
        if depth > 6 or obj is None:
            return
        items = None
        if isinstance(obj, Mapping):
            items = obj.items()
        elif isinstance(obj, tuple) and hasattr(obj, "_fields"):
            items = zip(obj._fields, obj)
        if items is not None:
            for key, value in items:
                key = _OPTAX_BUFFER_ALIASES.get(key, key)
                if key in names and key not in found and isinstance(value, (list, tuple)) \
                        and len(value) == n:
                    try:
                        found[key] = [np.array(v, copy=True) for v in value]
                    except (TypeError, ValueError):
                        pass
                else:
                    visit(value, depth + 1)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                visit(value, depth + 1)

    visit(state)
    return found


# -- torch ----------------------------------------------------------------------------------
def declared_variant(target: Any, variant: Mapping | None = None) -> dict:
    """The port's ``refopt_variant`` attribute (a mapping NAME -> value), updated by
    ``variant`` (the CLI's ``--variant``)."""
    declared = getattr(target, "refopt_variant", None)
    if declared is not None and not isinstance(declared, Mapping):
        raise TypeError(f"refopt_variant must be a mapping NAME -> value, got "
                        f"{type(declared).__name__}")
    return {**dict(declared or {}), **dict(variant or {})}


class TorchOptimizerPort:
    """A ``torch.optim.Optimizer`` subclass (see the module docstring).

    After construction every param group gets the case's ``lr``, ``betas``, ``eps`` and
    ``weight_decay`` where the optimizer did not store them itself (torch's convention: a group
    entry overrides the defaults), so ports that read a hyperparameter from the groups only,
    nanoGPT style, run too.
    """

    def __init__(self, cls: type, options: Mapping | None = None, name: str | None = None,
                 variant: Mapping | None = None):
        self.cls = cls
        self.options = dict(options or {})
        self.variant = declared_variant(cls, variant)
        self.name = name or f"{cls.__module__}:{cls.__qualname__}"

    def _accepted(self):
        return _signature_names(self.cls.__init__)

    def configure(self, case) -> dict:
        accepted, var_kw = self._accepted()
        return case_kwargs(case, accepted, var_kw, self.options, variant=self.variant)

    def unnamed(self, case) -> list:
        return unnamed_keys(self.configure(case), self._accepted()[0], self.options)

    def open(self, case, params):
        import torch

        kwargs = self.configure(case)
        tensors = [torch.from_numpy(np.array(p, copy=True)) for p in params]
        optimizer = construct(self.cls, (tensors,), kwargs, self.unnamed(case), self.name)
        for group in optimizer.param_groups:
            for key in COMMON:
                if key in kwargs:
                    group.setdefault(key, kwargs[key])
        return _TorchSession(torch, optimizer, tensors)


class _TorchSession:
    def __init__(self, torch, optimizer, tensors):
        self.torch, self.optimizer, self.tensors = torch, optimizer, tensors

    def step(self, grads, t, lr):
        for p, g in zip(self.tensors, grads):
            p.grad = None if g is None else self.torch.from_numpy(np.array(g, copy=True))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()

    def params(self):
        return [p.detach().numpy().copy() for p in self.tensors]

    def buffers(self, names):
        out = {}
        for name in names:
            values = [self.optimizer.state.get(p, {}).get(name) for p in self.tensors]
            if all(v is not None and hasattr(v, "detach") for v in values):
                out[name] = [v.detach().numpy().copy() for v in values]
        return out

    def info(self):
        """``optimizer.state[p]["mask"]`` (``"alpha"``, ``"kept"``) where the port keeps them."""
        out = {}
        for name in INFO_KEYS:
            values = [self.optimizer.state.get(p, {}).get(name) for p in self.tensors]
            if all(v is not None for v in values):
                out[name] = [np.array(v.detach().numpy() if hasattr(v, "detach") else v,
                                      copy=True) for v in values]
        return out


# -- optax ----------------------------------------------------------------------------------
def _is_gradient_transformation(obj) -> bool:
    return callable(getattr(obj, "init", None)) and callable(getattr(obj, "update", None))


class OptaxPort:
    """An optax ``GradientTransformation`` or a factory ``(**hyper) -> GradientTransformation``."""

    def __init__(self, target: Any, options: Mapping | None = None, name: str | None = None,
                 variant: Mapping | None = None):
        self.target = target
        self.fixed = _is_gradient_transformation(target)
        self.options = dict(options or {})
        self.variant = declared_variant(target, variant)
        self.name = name or _describe(target)

    def configure(self, case) -> dict:
        if self.fixed:
            if case.lr_schedule is not None:
                raise NotApplicable("a built GradientTransformation cannot follow the case's lr "
                                    "schedule; pass a factory that takes learning_rate")
            check_variant(case, self.variant)
            return {}
        accepted, var_kw = _signature_names(self.target)
        return case_kwargs(case, accepted, var_kw, self.options,
                           lr_value=_optax_schedule(case), variant=self.variant)

    def unnamed(self, case) -> list:
        if self.fixed:
            return []
        return unnamed_keys(self.configure(case), _signature_names(self.target)[0], self.options)

    def open(self, case, params):
        import jax
        import jax.numpy as jnp

        if np.dtype(case.dtype) == np.float64 and not jax.config.jax_enable_x64:
            # Without x64, JAX silently computes float64 inputs in float32.
            jax.config.update("jax_enable_x64", True)
        kwargs = self.configure(case)
        tx = self.target if self.fixed else construct(self.target, (), kwargs,
                                                      self.unnamed(case), self.name)
        if not _is_gradient_transformation(tx):
            raise TypeError(f"{self.name} returned {type(tx).__name__}, not an optax "
                            f"GradientTransformation")
        jparams = [jnp.asarray(np.array(p, copy=True)) for p in params]
        if any(p.dtype != q.dtype for p, q in zip(jparams, params)):
            raise TypeError("JAX changed the params' dtype; enable jax_enable_x64 for float64")
        return _OptaxSession(jnp, tx, jparams)


def _optax_schedule(case):
    if case.lr_schedule is None:
        return None
    import jax.numpy as jnp

    table = jnp.asarray(np.asarray(case.lr_schedule, dtype=np.float64))
    # optax counts updates from 0: the update of step t sees count = t - 1.
    return lambda count: table[count]


class _OptaxSession:
    def __init__(self, jnp, tx, params):
        self.jnp, self.tx, self.p = jnp, tx, params
        self.state = tx.init(params)

    def step(self, grads, t, lr):
        import optax

        g = [self.jnp.asarray(np.array(x, copy=True)) for x in grads]
        updates, self.state = self.tx.update(g, self.state, self.p)
        self.p = optax.apply_updates(self.p, updates)

    def params(self):
        return [np.array(p, copy=True) for p in self.p]

    def buffers(self, names):
        return _buffers_from_state(self.state, names, len(self.p))

    def info(self):
        return _buffers_from_state(self.state, INFO_KEYS, len(self.p))


# -- refopt-rule-like objects ---------------------------------------------------------------
def _is_rule_like(obj) -> bool:
    return callable(getattr(obj, "init", None)) and callable(getattr(obj, "step", None)) \
        and not isinstance(obj, type)


class RulePort:
    """An object with ``init``/``step`` like a refopt rule, or a factory returning one."""

    def __init__(self, target: Any, options: Mapping | None = None, name: str | None = None,
                 rebuild: bool = True, variant: Mapping | None = None):
        self.target = target
        self.options = dict(options or {})
        self.variant = declared_variant(target, variant)
        self.name = name or _describe(target)
        self.fixed = _is_rule_like(target)
        # A refopt rule (any backend) is rebuilt per case; other instances are used as they are.
        self.backend = getattr(target, "backend", None) if (
            self.fixed and rebuild and hasattr(target, "hyper") and hasattr(target, "scalars")) \
            else None

    def configure(self, case) -> dict:
        if self.backend is not None:
            return dict(case.hyper)
        if self.fixed:
            check_variant(case, self.variant)
            return {}
        accepted, var_kw = _signature_names(self.target)
        return case_kwargs(case, accepted, var_kw, self.options, variant=self.variant)

    def unnamed(self, case) -> list:
        if self.fixed or self.backend is not None:
            return []
        return unnamed_keys(self.configure(case), _signature_names(self.target)[0], self.options)

    def open(self, case, params):
        kwargs = self.configure(case)
        if self.backend is not None:
            from ..registry import get_rule

            rule = get_rule(case.rule, backend=self.backend, **{**kwargs, **self.options})
            if self.backend == "cupy":  # the session holds NumPy arrays: copy both ways
                from ..kernels.cupy_backend import HostFacing

                rule = HostFacing(rule)
        elif self.fixed:
            rule = self.target
        else:
            rule = construct(self.target, (), kwargs, self.unnamed(case), self.name)
        if not _is_rule_like(rule):
            raise TypeError(f"{self.name} returned {type(rule).__name__}, which has no "
                            f"init/step")
        return _RuleSession(rule, params)


class _RuleSession:
    def __init__(self, rule, params):
        self.rule = rule
        self.p = [np.array(p, copy=True) for p in params]
        self.state = rule.init(self.p)
        self._info = None

    def step(self, grads, t, lr):
        with_info = getattr(self.rule, "step_with_info", None)
        if callable(with_info):
            # refopt's rules report AlphaAdam's mask, alpha and kept count per tensor.
            self.p, self.state, self._info = with_info(self.p, grads, self.state, lr=lr)
        else:
            self.p, self.state = self.rule.step(self.p, grads, self.state, lr=lr)

    def info(self):
        tensors = (self._info or {}).get("tensors") if isinstance(self._info, Mapping) else None
        if not tensors or len(tensors) != len(self.p):
            return _buffers_from_state(self.state, INFO_KEYS, len(self.p))
        out = {}
        for name in INFO_KEYS:
            values = [t.get(name) if isinstance(t, Mapping) else None for t in tensors]
            if all(v is not None for v in values):
                out[name] = [np.array(v, copy=True) for v in values]
        return out

    def params(self):
        return [np.array(p, copy=True) for p in self.p]

    def buffers(self, names):
        out = {}
        for name in names:
            value = getattr(self.state, name, None)
            if value is not None and len(value) == len(self.p):
                out[name] = [np.array(v, copy=True) for v in value]
        return out or _buffers_from_state(self.state, names, len(self.p))


# -- plain functions ------------------------------------------------------------------------
class FunctionPort:
    """``step(params, grads, state, *, t, lr, hyper) -> (params, state)``; state starts as None."""

    def __init__(self, fn: Callable, options: Mapping | None = None, name: str | None = None,
                 variant: Mapping | None = None):
        self.fn = fn
        self.options = dict(options or {})
        self.variant = declared_variant(fn, variant)
        self.name = name or _describe(fn)

    def unnamed(self, case) -> list:
        return []

    def configure(self, case) -> dict:
        check_variant(case, self.variant)
        for key, value in self.options.items():
            if key in case.hyper and not _equal(value, case.hyper[key]):
                raise NotApplicable(f"--option {key}={value!r} but the case has "
                                    f"{key}={case.hyper[key]!r}")
        return {**case.hyper, **self.options}

    def open(self, case, params):
        return _FunctionSession(self.fn, self.configure(case), params)


class _FunctionSession:
    def __init__(self, fn, hyper, params):
        self.fn, self.hyper = fn, hyper
        self.p = [np.array(p, copy=True) for p in params]
        self.state = None

    def step(self, grads, t, lr):
        out = self.fn(self.p, grads, self.state, t=t, lr=lr, hyper=dict(self.hyper))
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("a function port must return (params, state)")
        self.p = [np.asarray(p) for p in out[0]]
        self.state = out[1]

    def params(self):
        return [np.array(p, copy=True) for p in self.p]

    def buffers(self, names):
        return _buffers_from_state(self.state, names, len(self.p))

    def info(self):
        return _buffers_from_state(self.state, INFO_KEYS, len(self.p))


# -- choosing an adapter ------------------------------------------------------------------
ADAPTERS = ("auto", "torch", "optax", "rule", "function")


def _describe(obj) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    qual = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{qual}"


def _is_torch_optimizer_class(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)


def _is_step_function(obj) -> bool:
    if isinstance(obj, type) or not callable(obj):
        return False
    names, _ = _signature_names(obj)
    return {"grads", "state"} <= names


def make_port(target: Any, options: Mapping | None = None, adapter: str = "auto",
              name: str | None = None, variant: Mapping | None = None) -> Port:
    """The adapter for ``target`` (see the module docstring); ``adapter`` forces one.

    A target that already implements :class:`Port` (has ``configure`` and ``open``) is returned
    as is. A string is a refopt backend name (``"numpy"``, ``"numba"``, ``"cupy"``): the refopt
    rule of the case on that backend. ``variant`` declares the variant the port implements
    (cases of another variant are not run; see :func:`case_kwargs`).
    """
    if adapter not in ADAPTERS:
        raise ValueError(f"adapter must be one of {list(ADAPTERS)}, got {adapter!r}")
    if hasattr(target, "configure") and hasattr(target, "open"):
        return target
    if isinstance(target, str):
        from ..registry import BACKENDS

        if target not in BACKENDS:
            raise ValueError(f"a string port must be a refopt backend {sorted(BACKENDS)}, "
                             f"got {target!r}")
        return _BackendPort(target, options)
    if adapter == "torch" or (adapter == "auto" and _is_torch_optimizer_class(target)):
        return TorchOptimizerPort(target, options, name, variant=variant)
    if adapter == "optax" or (adapter == "auto" and _is_gradient_transformation(target)):
        return OptaxPort(target, options, name, variant=variant)
    if adapter == "function" or (adapter == "auto" and _is_step_function(target)):
        return FunctionPort(target, options, name, variant=variant)
    if adapter == "rule" or _is_rule_like(target):
        return RulePort(target, options, name, variant=variant)
    if callable(target):
        return _FactoryPort(target, options, name, variant=variant)
    raise TypeError(f"cannot verify a {type(target).__name__}: expected a torch.optim.Optimizer "
                    f"class, an optax GradientTransformation or factory, a refopt-rule-like "
                    f"object or factory, or a step function (see refopt.verify.adapters)")


class _BackendPort(RulePort):
    def __init__(self, backend: str, options):
        super().__init__(None, options, name=f"refopt[{backend}]")
        self.fixed, self.backend = True, backend


class _FactoryPort:
    """A factory whose product decides the adapter: an optax transformation or a rule-like."""

    def __init__(self, factory, options, name, variant=None):
        self.factory = factory
        self.options = dict(options or {})
        self.name = name or _describe(factory)
        self._optax = OptaxPort(factory, options, self.name, variant=variant)
        self._rule = RulePort(factory, options, self.name, variant=variant)

    def configure(self, case):
        return self._rule.configure(case)

    def unnamed(self, case) -> list:
        return self._rule.unnamed(case)

    def open(self, case, params):
        product = construct(self.factory, (), self._rule.configure(case), self.unnamed(case),
                            self.name)
        if _is_gradient_transformation(product):
            return self._optax.open(case, params)
        if _is_rule_like(product):
            return _RuleSession(product, params)
        raise TypeError(f"{self.name} returned {type(product).__name__}: neither an optax "
                        f"GradientTransformation nor an object with init/step")


# -- driving a case -----------------------------------------------------------------------
def run_case(port: Port, case) -> PortRun:
    """Run ``case`` through ``port`` and return its trajectory at the recorded steps.

    For a case that lists invariants (closed loop) every step is kept as well, in
    ``PortRun.trace``: params, exposed buffers, the gradients the port was given and AlphaAdam's
    mask/alpha/kept where exposed (:mod:`refopt.verify.invariants`).

    Raises :class:`NotApplicable` when the port cannot be configured for the case, and
    :class:`PortError` for anything the port raised (for ``invalid`` cases a validation error is
    the expected outcome), with where it raised and whether a param had changed by then.
    """
    from ..registry import rule_info
    from .invariants import Trace, trace_needed

    port.configure(case)  # NotApplicable before any work
    dt = np.dtype(case.dtype)
    n_steps = int(case.n_steps)
    params0 = [np.array(p, dtype=dt, copy=True) for p in case.init_params]
    session = _port_call(lambda: port.open(case, params0), "construction", 0)
    names = tuple(rule_info(case.rule).cls.buffers)
    recorded = [int(s) for s in np.asarray(case.steps)]
    tracing = trace_needed(case)
    held = list(range(n_steps + 1)) if tracing else sorted(set(recorded))
    wanted = set(held)
    hist_params = [[p.copy()] for p in params0] if 0 in wanted else [[] for _ in params0]
    # An invalid case is refused correctly only before any param changes: watch them.
    watch = session if case.result == "invalid" else None
    if 0 in wanted:
        start = _port_call(lambda: session.buffers(names), "reading the initial state", 0)
        # A lazily built state (torch) has no buffers before the first step: they start at 0.
        hist_bufs = {b: [[np.array(start[b][i]) if b in start else np.zeros_like(p)]
                         for i, p in enumerate(params0)] for b in names}
    else:
        hist_bufs = {b: [[] for _ in params0] for b in names}
    exposed = set(names)
    info_keys: set | None = None
    hist_info: dict = {k: [[] for _ in params0] for k in INFO_KEYS}
    hist_grads = [[] for _ in params0]
    get_info = getattr(session, "info", None)
    current = params0
    for t in range(1, n_steps + 1):
        if case.grads is not None:
            grads = [np.array(g[t - 1], dtype=dt) for g in case.grads]
        else:
            grads = [None if g is None else np.asarray(g, dtype=dt)
                     for g in case.grad_fn([p.copy() for p in current], t)]
        _port_call(lambda: session.step(grads, t, lr_at(case, t)), f"step {t}", t, watch)
        if t in wanted or case.grads is None:
            current = _port_call(session.params, f"reading params after step {t}", t)
        if tracing:
            for i, g in enumerate(grads):
                hist_grads[i].append(np.full(params0[i].shape, np.nan, dt) if g is None
                                     else np.asarray(g))
        if t in wanted:
            for i, p in enumerate(current):
                hist_params[i].append(np.array(p, copy=True))
            bufs = _port_call(lambda: session.buffers(tuple(exposed)),
                              f"reading the state after step {t}", t)
            exposed &= set(bufs)
            for b in exposed:
                for i in range(len(params0)):
                    hist_bufs[b][i].append(np.asarray(bufs[b][i]))
            info = _port_call(get_info, f"reading the mask after step {t}", t) \
                if callable(get_info) else {}
            info_keys = set(info) if info_keys is None else info_keys & set(info)
            for k in info_keys:
                for i in range(len(params0)):
                    hist_info[k][i].append(np.asarray(info[k][i]))
    held_params = [np.stack(h) for h in hist_params]
    held_state = {b: [np.stack(h) for h in hist_bufs[b]] for b in sorted(exposed)}
    held_info = {k: [np.stack(h) for h in hist_info[k]] for k in sorted(info_keys or ())}
    # The recorded steps, picked out of the held ones.
    rows = np.searchsorted(np.asarray(held), np.asarray(recorded))
    # Extras exist for the held steps after 0 only.
    info_rows = rows[np.asarray(recorded) != 0] - (1 if held and held[0] == 0 else 0)
    params = [h[rows] for h in held_params]
    state = {b: [h[rows] for h in v] for b, v in held_state.items()}
    notes = [] if exposed == set(names) else \
        [f"state not exposed: {', '.join(sorted(set(names) - exposed))}"]
    # Buffers the rule does not have are a sign of another algorithm under the same name.
    others = [b for b in sorted(set(_KNOWN_BUFFERS) - set(names))
              if b in _port_call(lambda: session.buffers((b,)), "reading the state", n_steps)]
    trace = None
    if tracing:
        trace = Trace(steps=np.asarray(held, dtype=np.int64), params=held_params,
                      state=held_state, grads=[np.stack(g) if g else
                                               np.zeros((0,) + p.shape, dt)
                                               for g, p in zip(hist_grads, params0)],
                      info=held_info)
    return PortRun(params=params, state=state, notes=notes, other_buffers=others,
                   info={k: [h[info_rows] for h in v] for k, v in held_info.items()},
                   trace=trace)


def expected_histories(case) -> dict:
    """The golden params and buffers of ``case`` as ``{"param": [...], "exp_avg": [...], ...}``."""
    out = {"param": list(case.expected_params)}
    for name, value in case.expected_state.items():
        if name != "step":
            out[name] = list(value)
    return out
