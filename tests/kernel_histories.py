"""Shared by the numba multi-tensor tests: a rule's trajectory on a list of tensors of mixed
shapes and dtypes, and its bitwise comparison with another (a backend against the reference)."""
from __future__ import annotations

import numpy as np


def step_history(rule, mode, shapes, dtypes, grads_fn, lr_fn, steps, seed):
    """[(params, {buffer: arrays}, step counts)] after each of ``steps`` calls of ``rule.step_``
    (``mode="step_"``) or ``rule.step``; ``grads_fn(rng, t)`` gives step t's gradients (None
    entries allowed), ``lr_fn(t)`` its rate."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    state = rule.init(params)
    history = []
    for t in range(1, steps + 1):
        grads = grads_fn(rng, t)
        if mode == "step_":
            state = rule.step_(params, grads, state, lr=lr_fn(t))
        else:
            params, state = rule.step(params, grads, state, lr=lr_fn(t))
        history.append(([p.copy() for p in params],
                        {b: [x.copy() for x in getattr(state, b)] for b in rule.buffers},
                        state.step))
    return history


def assert_bitwise(a, b):
    """Two histories of :func:`step_history` with the same bits, dtypes and shapes."""
    assert len(a) == len(b)
    for t, ((pa, sa, ka), (pb, sb, kb)) in enumerate(zip(a, b), start=1):
        assert ka == kb
        for k, (x, y) in enumerate(zip(pa, pb)):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes(), f"step {t}: params[{k}]"
        for name in sa:
            for k, (x, y) in enumerate(zip(sa[name], sb[name])):
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"step {t}: {name}[{k}]"
