"""Complex parameters are stepped as (real, imaginary) pairs (refopt.rules._complex).

Claim (spec adamx.md section 2, the official code's ``view_as_real``; testing guide: "complex
params must match view_as_real params bitwise"): for every rule and backend, stepping a complex
tensor of shape S gives bitwise the result of stepping the real tensor of shape S + (2,) holding
its parts, params and every state buffer, over several steps.
"""
import numpy as np
import pytest

import refopt
from refopt.registry import RULES

PAIRS = {np.complex128: np.float64, np.complex64: np.float32}


def _as_real(z):
    return np.stack([z.real, z.imag], axis=-1)


def _complex_stream(shape, dtype, steps, seed):
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        z = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * (0.5 + t % 3)
        z.reshape(-1)[t % 4::4] = 0  # exact zeros: AlphaAdam's and C-AdamW's mask ties
        out.append(z.astype(dtype))
    return out


def _run(rule, params, streams, *, inplace=False, none_at=None):
    state = rule.init(params)
    for t, grads in enumerate(zip(*streams)):
        grads = [None if (none_at == (t, i)) else g for i, g in enumerate(grads)]
        if inplace:
            state = rule.step_(params, grads, state)
        else:
            params, state = rule.step(params, grads, state)
    return params, state


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", sorted(RULES))
def test_complex_equals_its_real_pairs_bitwise(name, dtype):
    shapes = [(3, 4), (), (5,)]
    rng = np.random.default_rng(1)
    init = [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(dtype) for s in shapes]
    init.append(rng.standard_normal(7).astype(PAIRS[dtype]))  # a real tensor alongside
    streams = [_complex_stream(s, dtype, 6, seed=i) for i, s in enumerate(shapes)]
    streams.append([np.real(g).astype(PAIRS[dtype]).reshape(-1)[:1].repeat(7) for g in streams[0]])
    rule = refopt.get_rule(name)
    p_c, s_c = _run(rule, list(init), streams, none_at=(2, 1))
    p_r, s_r = _run(rule, [_as_real(p) if np.iscomplexobj(p) else p for p in init],
                    [[_as_real(g) if np.iscomplexobj(g) else g for g in st] for st in streams],
                    none_at=(2, 1))
    assert s_c.step == s_r.step == (6, 5, 6, 6)
    for a, b in zip(p_c, p_r):
        assert a.dtype == (dtype if a.ndim + 1 == b.ndim else b.dtype)
        assert (_as_real(a) if np.iscomplexobj(a) else a).tobytes() == b.tobytes()
    for buf in rule.buffers:
        for a, b in zip(getattr(s_c, buf), getattr(s_r, buf)):
            assert (_as_real(a) if np.iscomplexobj(a) else a).tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", sorted(RULES))
def test_numba_complex_equals_the_reference_in_and_out_of_place(name, dtype):
    pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")
    shapes = [(3, 4), (10**5 + 3,)]  # the second runs the parallel kernels
    rng = np.random.default_rng(2)
    init = [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(dtype) for s in shapes]
    streams = [_complex_stream(s, dtype, 4, seed=10 + i) for i, s in enumerate(shapes)]
    ref = refopt.get_rule(name)
    fast = refopt.get_rule(name, backend="numba")
    p_ref, s_ref = _run(ref, list(init), streams)
    p_out, s_out = _run(fast, list(init), streams)
    mine = [p.copy() for p in init]
    held = list(mine)
    p_in, s_in = _run(fast, mine, streams, inplace=True)
    assert all(a is b for a, b in zip(p_in, held))  # in place: the caller's own arrays
    for got in (p_out, p_in):
        for a, b in zip(p_ref, got):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    for st in (s_out, s_in):
        assert st.step == s_ref.step
        for buf in ref.buffers:
            for a, b in zip(getattr(s_ref, buf), getattr(st, buf)):
                assert a.tobytes() == b.tobytes()


def test_non_contiguous_complex_input_is_not_mutated_out_of_place():
    z = (np.arange(12.0) + 1j * np.arange(12.0)[::-1]).reshape(3, 4)[:, ::2]
    before = z.copy()
    rule = refopt.get_rule("adams")
    p, s = rule.step([z], [np.ones_like(z) * (1 - 1j)], rule.init([z]))
    assert np.array_equal(z, before) and p[0].shape == (3, 2) and p[0].dtype == z.dtype
    p_r, _ = rule.step([_as_real(z)], [_as_real(np.ones_like(z) * (1 - 1j))],
                       rule.init([_as_real(z)]))
    assert _as_real(p[0]).tobytes() == p_r[0].tobytes()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_nonfinite_imaginary_part_follows_the_policy(backend):
    if backend == "numba":
        pytest.importorskip("numba", reason="numba is an optional backend")
    z = [np.ones(3) + 1j, np.ones(2, dtype=np.complex128)]
    bad = [np.ones(3, dtype=np.complex128), np.array([1 + 1j, complex(1.0, np.nan)])]
    rule = refopt.get_rule("adamx", backend=backend)
    with pytest.raises(FloatingPointError, match=r"grads\[1\] contains NaN or inf"):
        rule.step(z, bad, rule.init(z))
    skip = refopt.get_rule("adamx", backend=backend, nonfinite="skip")
    state = skip.init(z)
    p, s, info = skip.step_with_info(z, bad, state)
    assert info["skipped"] and s is state and all(a is b for a, b in zip(p, z))


def test_alphaadam_mask_counts_the_parts():
    rule = refopt.get_rule("alphaadam")
    z = [np.array([1 + 1j, -1 - 1j])]
    state = rule.init(z)
    z, state = rule.step(z, [np.array([1 + 1j, 1 - 1j])], state)
    _, _, info = rule.step_with_info(z, [np.array([1 + 1j, 1 - 1j])], state)
    tensor = info["tensors"][0]
    assert tensor["mask"].shape == (2, 2)  # S + (2,): one entry per part
    assert tensor["kept"] == int(tensor["mask"].sum())


def test_trajectory_and_checkpoint_carry_complex_params(tmp_path):
    from refopt.checkpoint import load_state, save_state

    z0 = [np.array([1 + 2j, -0.5j])]
    tr = refopt.trajectory("adamx", z0, [np.array([[1 - 1j, 2j]] * 4)], lr=0.1)
    assert tr.params[0].shape == (5, 2) and tr.params[0].dtype == np.complex128
    rule = refopt.get_rule("adamx", lr=0.1)
    state = rule.init(z0)
    save_state(tmp_path / "ck", rule, state)
    rule2, state2 = load_state(tmp_path / "ck")
    assert state2.exp_avg[0].dtype == np.complex128 and state2.step == (0,)


def test_complex_dtype_errors_name_the_tensor():
    rule = refopt.get_rule("adams")
    z = [np.ones(2, dtype=np.complex128)]
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float64 but params\[0\] has "
                                        r"dtype complex128"):
        rule.step(z, [np.ones(2)], rule.init(z))
    with pytest.raises(TypeError, match=r"state.exp_avg\[0\] has dtype float64 but params\[0\]"):
        rule.step(z, [np.ones(2, dtype=np.complex128)], rule.init([np.ones(2)]))
    if hasattr(np, "clongdouble") and np.dtype(np.clongdouble) != np.dtype(np.complex128):
        with pytest.raises(TypeError, match=r"complex64/complex128"):
            rule.init([np.ones(2, dtype=np.clongdouble)])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_zero_d_complex_keeps_its_shape_in_the_pairs(backend):
    if backend == "numba":
        pytest.importorskip("numba", reason="numba is an optional backend")
    rule = refopt.get_rule("alphaadam", backend=backend)
    z, s = rule.step([np.array(1 + 1j)], [np.array(1 - 1j)], rule.init([np.array(1 + 1j)]))
    _, _, info = rule.step_with_info(z, [np.array(1 + 1j)], s)
    real = refopt.get_rule("alphaadam")
    x, sx = real.step([np.array([1.0, 1.0])], [np.array([1.0, -1.0])],
                      real.init([np.array([1.0, 1.0])]))
    _, _, info_x = real.step_with_info(x, [np.array([1.0, 1.0])], sx)
    assert info["tensors"][0]["mask"].shape == (2,) == info_x["tensors"][0]["mask"].shape
    assert np.array_equal(info["tensors"][0]["mask"], info_x["tensors"][0]["mask"])
    assert z[0].shape == () and z[0].dtype == np.complex128


def test_in_place_refuses_numpy_scalars_it_could_not_update():
    pytest.importorskip("numba", reason="numba is an optional backend")
    rule = refopt.get_rule("adams", backend="numba")
    for x, g in ((np.complex128(1 + 1j), np.complex128(0.5)), (np.float64(1.0), np.float64(0.5))):
        with pytest.raises(TypeError, match=r"params\[0\] is a NumPy scalar .* in place"):
            rule.step_([x], [g], rule.init([np.asarray(x)]))
