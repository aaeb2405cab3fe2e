"""Reliability of the inputs (issue 13, items 8-11): step counters, option values, aliasing in
in-place steps, states of another rule, hyperparameters beyond the tensor dtype's range.

Each test failed before its fix. The CuPy backend's host-side glue runs against the stand-in
``cupy`` of ``tests/test_kernels_cupy.py`` (its update kernels are the CUDA source compiled for
the host), as the glue tests there do.
"""
import warnings

import numpy as np
import pytest

import refopt
from test_kernels_cupy import fake_cupy, host_lib  # noqa: F401  (pytest fixtures)

RULE_NAMES = sorted(refopt.RULES)


def _numba_or_skip():
    return pytest.importorskip("numba")


def _fresh(rule, params, state):
    """Copies of params and state, for an in-place step."""
    return ([p.copy() for p in params],
            state._replace(**{b: tuple(x.copy() for x in getattr(state, b))
                              for b in rule.buffers}))


def _state_at(rule, params, grads, steps):
    state = rule.init(params)
    for _ in range(steps):
        _, state = rule.step(params, grads, state)
    return state


# == item 8: the step counter on the fast backends =============================================

@pytest.mark.parametrize("name", RULE_NAMES)
def test_numba_normalises_numpy_integer_step_counters(name):
    _numba_or_skip()
    ref = refopt.get_rule(name)
    fast = refopt.get_rule(name, backend="numba")
    params, grads = [np.linspace(-1, 1, 4)], [np.full(4, 0.5)]
    state = _state_at(ref, params, grads, 255)
    p_ref, s_ref = ref.step(params, grads, state)
    for kind in (np.uint8, np.int64, np.uint64):
        typed = state._replace(step=tuple(kind(t) for t in state.step))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "overflow encountered in scalar add"
            p_f, s_f = fast.step(params, grads, typed)
            p_i, s_i = _fresh(fast, params, typed)
            s_i = fast.step_(p_i, grads, s_i)
        for s in (s_f, s_i):
            assert s.step == (256,) and type(s.step[0]) is int, (kind, s.step)
        assert np.array_equal(p_f[0], p_ref[0]) and np.array_equal(p_i[0], p_ref[0])


@pytest.mark.parametrize("bad", [np.int8(-1), -1, True, np.True_, 1.0, np.float64(2.0)])
def test_numba_refuses_negative_boolean_and_fractional_step_counters(bad):
    _numba_or_skip()
    fast = refopt.get_rule("adams", backend="numba")
    params, grads = [np.ones(3)], [np.ones(3)]
    state = fast.init(params)._replace(step=(bad,))
    with pytest.raises(ValueError, match=r"^state.step\[0\] must be an integer >= 0"):
        fast.step(params, grads, state)
    with pytest.raises(ValueError, match=r"^state.step\[0\] must be an integer >= 0"):
        fast.step_(params, grads, state)


@pytest.mark.parametrize("name", ["adamx", "adams", "alphaadam", "sgdm"])
def test_cupy_glue_normalises_numpy_integer_step_counters(fake_cupy, name):  # noqa: F811
    ref = refopt.get_rule(name)
    gpu = refopt.get_rule(name, backend="cupy")
    params, grads = [np.linspace(-1, 1, 4), np.full(3, 0.25)], [np.full(4, 0.5), np.ones(3)]
    state = _state_at(ref, params, grads, 255)
    p_ref, _ = ref.step(params, grads, state)
    dev = [fake_cupy.asarray(p) for p in params]
    dev_g = [fake_cupy.asarray(g) for g in grads]
    dev_s = state._replace(step=tuple(np.uint8(t) for t in state.step),
                           **{b: tuple(fake_cupy.asarray(x) for x in getattr(state, b))
                              for b in ref.buffers})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p_o, s_o = gpu.step(dev, dev_g, dev_s)
        s_i = gpu.step_(dev, dev_g, dev_s)  # two small tensors: the multi-tensor path
    for s in (s_o, s_i):
        assert s.step == (256, 256) and all(type(t) is int for t in s.step)
    for a, b, c in zip(p_o, dev, p_ref):
        assert np.array_equal(fake_cupy.asnumpy(a), c) and np.array_equal(fake_cupy.asnumpy(b), c)
    with pytest.raises(ValueError, match=r"^state.step\[1\] must be an integer >= 0"):
        gpu.step(dev, dev_g, dev_s._replace(step=(0, np.int16(-3))))
    with pytest.raises(ValueError, match=r"^state.step\[0\] must be an integer >= 0"):
        gpu.step_(dev, dev_g, dev_s._replace(step=(np.True_, 0)))

