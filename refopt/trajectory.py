"""Run a rule over a gradient stream and keep every step: the basis of golden outputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import _validation as V
from .registry import canonical_name, get_rule


@dataclass(frozen=True)
class Trajectory:
    """Stacked history of one run.

    Attributes
    ----------
    rule : str
        Canonical rule name.
    hyper : dict
        The validated hyperparameters actually used (defaults filled in).
    steps : ndarray of int64, shape (S,)
        The recorded step indices; ``steps[0] == 0`` is the initial point. With
        ``record_every=1`` (default) S = T + 1.
    params : list of ndarray
        One entry per tensor, shaped (S, *shape); ``params[i][0]`` is the initial value.
    state : dict of str to list of ndarray
        Each state buffer (``exp_avg``, ...) in the same form as ``params``; ``state["step"]`` is
        a list of int64 arrays shaped (S,).
    grads : list of ndarray
        The gradients used, one entry per tensor shaped (T, *shape); ``grads[i][k]`` was applied
        at step k + 1 (useful for closed-loop runs, where they are computed).
    info : dict of str to list of ndarray
        Per-step diagnostics shaped (T, ...) per tensor, e.g. AlphaAdam's ``mask``, ``alpha``,
        ``kept``; empty for rules without diagnostics.
    """

    rule: str
    hyper: dict
    steps: np.ndarray
    params: list
    state: dict
    grads: list
    info: dict = field(default_factory=dict)

    @property
    def final_params(self) -> list:
        return [p[-1] for p in self.params]


def _lr_at(lr_schedule, k: int, default: float) -> float:
    if lr_schedule is None:
        return default
    if callable(lr_schedule):
        return float(lr_schedule(k + 1))
    return float(lr_schedule[k])


def trajectory(name: str, params: Sequence[np.ndarray],
               grads: Sequence[np.ndarray] | Callable[[list, int], list], *,
               steps: int | None = None, lr_schedule: Any = None, record_every: int = 1,
               backend: str | None = None, **hyper: Any) -> Trajectory:
    """Run rule ``name`` for T steps and return every (or every k-th) step's params and state.

    Parameters
    ----------
    name : str
        A rule name of :func:`refopt.get_rule` (``"adamx"``, ``"adams"``, ``"alphaadam"``, ...).
    params : list of ndarray
        Initial values, one array per tensor (float32 or float64; complex64/complex128 as
        (real, imag) pairs); never mutated.
    grads : list of ndarray, or callable
        Either an explicit stream, one array per tensor shaped (T, *shape), or a function
        ``grad_fn(params, t) -> list of arrays`` called with the current params before step t
        (closed loop; then ``steps`` gives T).
    steps : int, optional
        Number of steps T; required with a callable, checked against the stream otherwise.
    lr_schedule : sequence of T floats or callable t -> lr, optional
        The scheduled learning rate eta_t for t = 1..T; default: the constant ``lr``.
    record_every : int
        Keep steps 0, k, 2k, ... and always the last one.
    backend : str, optional
        As in :func:`refopt.get_rule`; default ``"numpy"``, or ``"cupy"`` when ``params`` are
        CuPy arrays. With ``"cupy"`` the steps run on the device and the returned history is
        copied to NumPy arrays.
    **hyper
        The rule's hyperparameters (lr, betas, eps, weight_decay and its own options).
    """
    on_device = isinstance(params, (list, tuple)) and any(_is_cupy(p) for p in params)
    if backend is None:
        backend = "cupy" if on_device else "numpy"
    rule = get_rule(name, backend=backend, **hyper)
    to_device, to_host = _transfers(backend)
    if on_device:
        params = [to_host(p) for p in params]
    params = [np.array(p, copy=True) for p in V.as_param_list("params", params)]
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps < 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if isinstance(record_every, bool) or not isinstance(record_every, (int, np.integer)) \
            or record_every < 1:
        raise ValueError(f"record_every must be an integer >= 1, got {record_every!r}")
    if callable(grads):
        if steps is None:
            raise ValueError("steps is required when grads is a callable")
        grad_fn = grads
        total = int(steps)
    else:
        streams = V.as_param_list("grads", grads)
        if len(streams) != len(params):
            raise ValueError(f"grads has {len(streams)} tensors but params has {len(params)}")
        lengths = set()
        for i, (p, g) in enumerate(zip(params, streams)):
            if g.ndim != p.ndim + 1 or g.shape[1:] != p.shape:
                raise ValueError(f"grads[{i}] must be shaped (T, *{p.shape}), got {g.shape}")
            if g.dtype != p.dtype:
                raise TypeError(f"grads[{i}] has dtype {g.dtype} but params[{i}] has {p.dtype}")
            lengths.add(g.shape[0])
        if len(lengths) > 1:
            raise ValueError(f"every gradient stream needs the same length T, got {sorted(lengths)}")
        total = lengths.pop() if lengths else int(steps or 0)
        if steps is not None and int(steps) != total:
            raise ValueError(f"steps={steps} but the gradient streams hold {total} steps")
        grad_fn = lambda _params, t: [g[t - 1, ...] for g in streams]  # noqa: E731  (0-d stays an array)
    if lr_schedule is not None and not callable(lr_schedule) and len(lr_schedule) != total:
        raise ValueError(f"lr_schedule has {len(lr_schedule)} entries but T = {total}")
    if rule.name == "adamx" and callable(grads):  # a closed-loop run of T planned steps
        warn_if_shorter_than_horizon(rule.hyper["betas"][1], total)

    params = [to_device(p) for p in params]
    state = rule.init(params)
    recorded = [0]
    hist_params = [[np.array(to_host(p), copy=True)] for p in params]
    hist_state = {b: [[np.array(to_host(x), copy=True)] for x in getattr(state, b)]
                  for b in rule.buffers}
    hist_step = [[s] for s in state.step]
    used_grads = [[] for _ in params]
    infos = []
    for k in range(total):
        g = grad_fn(params, k + 1)
        if backend == "cupy":
            g = [None if x is None else to_device(x) for x in g]
        try:
            params, state, info = rule.step_with_info(
                params, g, state, lr=_lr_at(lr_schedule, k, rule.hyper["lr"]))
        except (FloatingPointError, ValueError, TypeError) as exc:
            raise type(exc)(f"at step t = {k + 1}: {exc}") from exc
        for i, gi in enumerate(g):
            used_grads[i].append(np.array(to_host(gi), copy=True))  # (cupy: to NumPy)
        infos.append([{key: to_host(v) if hasattr(v, "shape") else v for key, v in d.items()}
                      for d in info["tensors"]])
        t = k + 1
        if t % record_every == 0 or t == total:
            recorded.append(t)
            for i, p in enumerate(params):
                hist_params[i].append(np.array(to_host(p), copy=True))
                hist_step[i].append(state.step[i])
            for b in rule.buffers:
                for i, x in enumerate(getattr(state, b)):
                    hist_state[b][i].append(np.array(to_host(x), copy=True))

    stacked_state = {b: [np.stack(h) for h in hist_state[b]] for b in rule.buffers}
    stacked_state["step"] = [np.asarray(h, dtype=np.int64) for h in hist_step]
    grads_out = [np.stack(g) if g else np.zeros((0,) + p.shape, p.dtype)
                 for g, p in zip(used_grads, params)]
    return Trajectory(rule=canonical_name(name), hyper=dict(rule.hyper),
                      steps=np.asarray(recorded, dtype=np.int64),
                      params=[np.stack(h) for h in hist_params], state=stacked_state,
                      grads=grads_out, info=_stack_info(infos, len(params)))


def _is_cupy(a) -> bool:
    """A CuPy array, recognised without importing CuPy."""
    return type(a).__module__.split(".")[0] == "cupy"


def _transfers(backend: str):
    """(to_device, to_host) for the arrays a backend steps: identities except for CuPy."""
    if backend != "cupy":
        return (lambda a: a), (lambda a: a)
    import cupy

    return cupy.asarray, (lambda a: cupy.asnumpy(a) if _is_cupy(a) else a)


def _stack_info(infos: list[list[dict]], n_tensors: int) -> dict:
    """Stack per-step info dicts; a key is kept only if every step reported it for every tensor."""
    if not infos:
        return {}
    keys = set.intersection(*[set(d) for step in infos for d in step]) if n_tensors else set()
    return {key: [np.stack([np.asarray(step[i][key]) for step in infos]) for i in range(n_tensors)]
            for key in sorted(keys)}


def warn_if_shorter_than_horizon(beta2: float, total: int) -> None:
    """A :class:`refopt.HorizonWarning` if AdamX's planned run of ``total`` steps is shorter than
    its memory horizon H = 1/(1-c): such a run never leaves the Adam regime (spec adamx.md T6,
    section 5). Planned runs are closed-loop trajectories (``steps=`` with a ``grad_fn``) and
    sweeps; a replayed gradient stream plans nothing and is not checked."""
    from .rules.adamx import memory_horizon

    horizon = memory_horizon(beta2)
    if 0 < total < horizon:
        V.warn(f"AdamX's memory horizon H = 1/(1 - beta2**(1 - beta2)) = {horizon:,.0f} steps "
               f"(beta2 = {beta2:g}) exceeds the {total:,} steps of this run: v stays close to "
               f"the running mean of g**2 (Adam-like) throughout, and the turn to momentum SGD "
               f"needs t >> H (spec adamx.md T6)", V.HorizonWarning)
