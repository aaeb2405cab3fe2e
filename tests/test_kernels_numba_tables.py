"""numba's table launches for every rule's small tensors, and the plain-call validation (issue 19).

Claims: ``step_`` and ``step`` over lists that mix float32 and float64, hold None gradients,
0-d, empty and strided arrays and a large tensor beside the small ones are bitwise equal to the
NumPy reference for every rule whose small tensors go to a table driver (AdamX, AdamS, Adam,
AdamW, AdaX, SGDM, AlphaAdam under every ``alpha_rule`` but ``norm``, whose blocked sums are
bounded elsewhere, C-AdamW), and the drivers really run; the in-place steps' read-only count of
non-finite gradients (one table launch per dtype) names the same first tensor as the reference;
:func:`refopt._validation.plain_lists` says yes only to calls the checked path accepts, returning
the same lists, so that every error message still comes from the checked path.
"""
import warnings

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")

import refopt  # noqa: E402
from refopt import _validation as V  # noqa: E402
from refopt.kernels import numba_backend as nb  # noqa: E402
from kernel_histories import assert_bitwise, step_history  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

SHAPES = [(9,), (3, 4), (), (0,), (nb.SERIAL_BELOW + 5,), (257,), (5,), (2, 3)]
DTYPES = [np.float32, np.float64, np.float32, np.float64, np.float32, np.float64, np.float32,
          np.float64]
NONE_AT = {1: (6,), 2: (0, 5), 3: (), 4: (1, 7)}  # tensors without a gradient at step t

CONFIGS = [("adamx", {}), ("adamx", {"weight_decay_mode": "l2", "weight_decay": 0.01}),
           ("adams", {}), ("adams", {"bias_correction": True}), ("adam", {}), ("adamw", {}),
           ("adax", {}), ("sgdm", {}), ("sgdm", {"nesterov": True, "weight_decay": 0.1}),
           ("cadamw", {}), ("cadamw", {"scaling": "count+1"})] + [
    ("alphaadam", {"alpha_rule": rule, "mask_source": source})
    for rule in ("count", "count+1", "soft", "none") for source in ("m_prev", "m_t", "ones")]


def _id(cfg):
    return cfg[0] + "-" + ",".join(f"{k}={v}" for k, v in cfg[1].items())


@pytest.fixture
def tables(monkeypatch):
    """(driver, tensors) of every table launch."""
    seen = []
    original = nb.NumbaRule._launch_table

    def spy(kernel, rows, sizes, args):
        seen.append((kernel, len(sizes)))
        return original(kernel, rows, sizes, args)

    monkeypatch.setattr(nb.NumbaRule, "_launch_table", staticmethod(spy))
    return seen


def _grads(rng, t):
    out = []
    for k, (s, d) in enumerate(zip(SHAPES, DTYPES)):
        if k in NONE_AT[t]:
            out.append(None)
            continue
        g = rng.standard_normal(s) * (0.5 + t % 3)
        g.reshape(-1)[t % 3::3] = 0.0  # exact zeros: mask ties
        out.append(g.astype(d))
    if out[1] is not None:  # a strided gradient of the same values
        out[1] = np.repeat(out[1], 2, axis=1)[:, ::2]
        assert not out[1].flags.c_contiguous
    return out


def _history(rule, mode, steps=4):
    return step_history(rule, mode, SHAPES, DTYPES, _grads, lambda t: 1e-2 / t, steps, 7)


@pytest.mark.parametrize("mode", ["step_", "step"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=_id)
def test_table_launches_bitwise_against_reference(cfg, mode, tables):
    name, hyper = cfg
    assert_bitwise(_history(refopt.get_rule(name, **hyper), "step"),
                   _history(refopt.get_rule(name, backend="numba", **hyper), mode))
    updates = [(kernel, n) for kernel, n in tables if kernel is not nb._count_nonfinite_batch]
    # Every small tensor with a gradient, at every step, went through a table driver.
    small = sum(1 for t in NONE_AT for k in range(len(SHAPES))
                if k not in NONE_AT[t] and k != 4)
    assert sum(n for _, n in updates) == small, updates
    # One launch per (t, dtype) group (and size, where the plan reads it and does not count).
    assert len(updates) <= sum(len({(DTYPES[k], SHAPES[k]) for k in range(len(SHAPES))
                                    if k not in NONE_AT[t] and k != 4}) for t in NONE_AT)


@pytest.mark.parametrize("policy", ["raise", "skip"])
@pytest.mark.parametrize("where", [0, 1, 4, 5])
def test_inplace_nonfinite_count_names_the_first_bad_tensor(policy, where, tables):
    """The read-only pass of an in-place step: one table launch per dtype for the small
    gradients, a count each for the large; the first bad tensor is named (strided grads[1])."""
    rng = np.random.default_rng(3)
    fast = refopt.get_rule("adamx", backend="numba", nonfinite=policy)
    params = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, DTYPES)]
    state = fast.step_(params, _grads(rng, 3), fast.init(params))
    grads = _grads(rng, 3)
    grads[where].reshape(-1)[-1:] = np.nan if where != 1 else 0.0
    if where == 1:
        grads[1][-1, -1] = np.inf  # a strided view: set through it
    grads[7].reshape(-1)[0] = -np.inf  # a later bad tensor too
    before = [p.tobytes() for p in params] + [m.tobytes() for m in state.exp_avg]
    tables.clear()
    if policy == "raise":
        with pytest.raises(FloatingPointError, match=rf"grads\[{where}\] contains NaN"):
            fast.step_(params, grads, state)
    else:
        new_state = fast.step_(params, grads, state)
        assert new_state.step == state.step
    assert [p.tobytes() for p in params] + [m.tobytes() for m in state.exp_avg] == before
    assert {kernel for kernel, _ in tables} == {nb._count_nonfinite_batch}
    assert sorted(n for _, n in tables) == [3, 4]  # float32: 0, 2, 6; float64: 1, 3, 5, 7


def _variants():
    """(label, params, grads, state) of calls around a valid one, valid or not."""
    rule = refopt.get_rule("adamx")
    p = [np.ones(3, np.float32), np.zeros((2, 2))]
    g = [np.ones(3, np.float32), np.ones((2, 2))]
    s = rule.init(p)
    yield "valid", p, g, s
    yield "tuples", tuple(p), tuple(g), s
    yield "None grad", p, [None, g[1]], s
    yield "generator params", (x for x in p), g, s
    yield "bare array", p[0], g, s
    with warnings.catch_warnings():  # (numpy.matrix is pending deprecation)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        matrix = np.asmatrix(np.ones((1, 3), np.float32))
    yield "matrix", [matrix, p[1]], g, s
    yield "masked", [np.ma.masked_array(p[0]), p[1]], g, s
    yield "numpy scalar", [np.float32(1.0), p[1]], [np.float32(1.0), g[1]], \
        rule.init([np.asarray(np.float32(1.0)), p[1]])
    yield "complex", [p[0].astype(np.complex64), p[1]], [g[0].astype(np.complex64), g[1]], \
        rule.init([p[0].astype(np.complex64), p[1]])
    yield "int dtype", [np.ones(3, np.int32), p[1]], g, s
    yield "big-endian", [p[0].astype(">f4"), p[1]], [g[0].astype(">f4"), g[1]], s
    yield "grad shape", p, [np.ones(4, np.float32), g[1]], s
    yield "grad dtype", p, [g[0].astype(np.float64), g[1]], s
    yield "grad list too short", p, g[:1], s
    yield "grad bare array", p, g[0], s
    yield "grad int", p, [1, g[1]], s
    yield "grad subclass", p, [np.ma.masked_array(g[0]), g[1]], s
    yield "state type", p, g, refopt.get_rule("adams").init(p)
    yield "state tuple", p, g, tuple(s)
    yield "numpy steps", p, g, s._replace(step=(np.int64(2), np.uint8(1)))
    yield "bool step", p, g, s._replace(step=(True, 0))
    yield "negative step", p, g, s._replace(step=(-1, 0))
    yield "steps list", p, g, s._replace(step=[0, 0])
    yield "steps short", p, g, s._replace(step=(0,))
    yield "buffers list", p, g, s._replace(exp_avg=list(s.exp_avg))
    yield "buffer dtype", p, g, s._replace(exp_avg=(s.exp_avg[0].astype(np.float64),
                                                    s.exp_avg[1]))
    yield "buffer shape", p, g, s._replace(exp_avg_sq=(s.exp_avg_sq[0], np.zeros(4)))
    yield "buffer short", p, g, s._replace(exp_avg_sq=s.exp_avg_sq[:1])
    yield "buffer subclass", p, g, s._replace(exp_avg=(np.ma.masked_array(s.exp_avg[0]),
                                                       s.exp_avg[1]))


def _checked(rule, params, grads, state):
    params = V.as_param_list("params", params)
    grads = V.check_grads(params, grads)
    rule._check_state(params, state)
    return params, grads


@pytest.mark.parametrize("case", list(_variants()), ids=lambda c: c[0])
def test_plain_lists_says_yes_only_where_the_checked_path_accepts(case):
    label, params, grads, state = case
    rule = refopt.get_rule("adamx")
    plain = V.plain_lists(params, grads, state, rule.state_type, rule.buffers)
    if label in ("valid", "tuples", "None grad"):
        assert plain is not None, label
    if plain is None:
        return  # the checked path decides (and words any error)
    checked = _checked(rule, params, grads, state)
    assert [type(x) for x in plain] == [list, list]
    for a, b in zip(plain, checked):
        assert len(a) == len(b) and all(x is y for x, y in zip(a, b))


@pytest.mark.parametrize("case", [c for c in _variants() if c[0] not in
                                  ("valid", "tuples", "None grad", "generator params",
                                   "numpy steps", "numpy scalar", "complex", "steps list",
                                   "buffers list", "buffer subclass")], ids=lambda c: c[0])
@pytest.mark.parametrize("mode", ["step", "step_"])
def test_refused_calls_raise_the_reference_message(case, mode):
    """Where the quick test says no to a bad call, the fused step raises the reference's own
    error (type and message)."""
    label, params, grads, state = case
    ref = refopt.get_rule("adamx")
    fast = refopt.get_rule("adamx", backend="numba")
    with pytest.raises((TypeError, ValueError)) as expected:
        ref.step(params, grads, state)
    with pytest.raises(expected.type) as got:
        getattr(fast, mode)(params, grads, state)
    if mode == "step" or "scalar" not in label:
        assert str(got.value) == str(expected.value)
