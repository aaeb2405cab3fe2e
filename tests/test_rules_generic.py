"""Generic tests generated from the registry (the PyTorch ``OptimizerInfo`` pattern): every rule and
every variant option value gets the same contract checks."""
import numpy as np
import pytest

import refopt
from refopt.checkpoint import load_state, save_state

SHAPES = [(), (1,), (7,), (0,), (3, 4)]


def variant_cases():
    for name, info in sorted(refopt.RULES.items()):
        yield pytest.param(name, {}, id=f"{name}-defaults")
        for option, values in info.variants.items():
            for value in values:
                if value != info.cls.defaults[option]:
                    yield pytest.param(name, {option: value}, id=f"{name}-{option}={value}")


def _problem(dtype, steps=12, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    # Gradients bounded away from 0 in magnitude and with mixed signs: no mask ties, so float32
    # and float64 take the same AlphaAdam decisions and can be compared pointwise.
    grads = [(np.sign(rng.standard_normal((steps,) + s)) * rng.uniform(0.5, 2.0, (steps,) + s)
              + 0.4).astype(dtype) for s in SHAPES]
    return params, grads


@pytest.mark.parametrize("name, options", list(variant_cases()))
def test_step_is_pure_and_keeps_dtype(name, options):
    for dtype in (np.float64, np.float32):
        rule = refopt.get_rule(name, **options)
        params, grads = _problem(dtype)
        state = rule.init(params)
        snapshot = [p.copy() for p in params], [g.copy() for g in grads]
        new_params, new_state = rule.step(params, [g[0] for g in grads], state)
        for before, after in zip(snapshot[0], params):
            assert np.array_equal(before, after)  # inputs never mutated
        for before, after in zip(snapshot[1], grads):
            assert np.array_equal(before, after)
        assert all(np.all(b == 0) for buf in rule.buffers for b in getattr(state, buf))
        assert new_state.step == tuple(1 for _ in SHAPES)
        for p_old, p_new in zip(params, new_params):
            assert p_new.dtype == dtype and p_new.shape == p_old.shape
        for buf in rule.buffers:
            for x, p in zip(getattr(new_state, buf), params):
                assert x.dtype == dtype and x.shape == p.shape


@pytest.mark.parametrize("name, options", list(variant_cases()))
def test_float32_tracks_float64(name, options):
    # float32 is computed in float32 with the float64 scalars rounded once; over 12 steps the
    # accumulated rounding is ~1e2 float32 ulps of the step size lr, so compare at 1e-4 * lr
    # (absolute) plus 1e-5 relative to |theta| for the decay product.
    hyper = {"lr": 1e-2, **options}
    p64, g64 = _problem(np.float64)
    p32, g32 = [p.astype(np.float32) for p in p64], [g.astype(np.float32) for g in g64]
    t64 = refopt.trajectory(name, p64, g64, **hyper)
    t32 = refopt.trajectory(name, p32, g32, **hyper)
    for a, b in zip(t32.params, t64.params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4 * hyper["lr"])  # measured: <= 0.06 of it
    if "mask" in t64.info:  # same decisions, else the pointwise comparison above means little
        for a, b in zip(t32.info["mask"], t64.info["mask"]):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(refopt.RULES))
def test_resume_is_bitwise_identical(name, tmp_path):
    params, grads = _problem(np.float64, steps=20, seed=3)
    straight = refopt.trajectory(name, params, grads)
    rule = refopt.get_rule(name)
    state = rule.init(params)
    p = params
    for t in range(8):
        p, state = rule.step(p, [g[t] for g in grads], state)
    save_state(tmp_path / "ckpt", rule, state)
    rule2, state2 = load_state(tmp_path / "ckpt")
    assert rule2.hyper == rule.hyper and state2.step == state.step
    for t in range(8, 20):
        p, state2 = rule2.step(p, [g[t] for g in grads], state2)
    for a, b in zip(p, straight.final_params):
        assert np.array_equal(a, b)
    for buf in rule.buffers:
        for a, b in zip(getattr(state2, buf), straight.state[buf]):
            assert np.array_equal(a, b[-1])


def test_checkpoint_detects_tampering(tmp_path):
    from refopt._io import CorruptFileError, TamperedFileError, atomic_savez, load_npz

    rule = refopt.get_rule("adamx")
    params = [np.ones(3)]
    _, state = rule.step(params, [np.ones(3)], rule.init(params))
    save_state(tmp_path / "c", rule, state)
    arrays = load_npz(tmp_path / "c.npz")
    arrays["exp_avg.0"] = arrays["exp_avg.0"] + 1e-12
    atomic_savez(tmp_path / "c.npz", arrays)
    with pytest.raises(TamperedFileError, match="exp_avg.0"):
        load_state(tmp_path / "c")
    (tmp_path / "c.npz").write_bytes((tmp_path / "c.npz").read_bytes()[:50])
    with pytest.raises(CorruptFileError, match="truncated or malformed"):
        load_state(tmp_path / "c")


def test_trajectory_shapes_record_every_and_schedule():
    params, grads = _problem(np.float64, steps=10)
    tr = refopt.trajectory("adams", params, grads, record_every=4)
    assert list(tr.steps) == [0, 4, 8, 10]
    for p, s in zip(tr.params, SHAPES):
        assert p.shape == (4,) + s
    full = refopt.trajectory("adams", params, grads)
    for a, b in zip(tr.params, full.params):
        assert np.array_equal(a, b[[0, 4, 8, 10]])
    assert list(full.state["step"][2]) == list(range(11))
    schedule = [1e-3 * (1 + t) for t in range(10)]
    by_list = refopt.trajectory("adams", params, grads, lr_schedule=schedule)
    by_fn = refopt.trajectory("adams", params, grads, lr_schedule=lambda t: 1e-3 * t)
    for a, b in zip(by_list.params, by_fn.params):
        assert np.array_equal(a, b)
    assert not np.array_equal(by_list.params[2], full.params[2])


@pytest.mark.filterwarnings("ignore::refopt.HorizonWarning")  # 15 steps, on purpose
def test_closed_loop_equals_manual_loop():
    # f(x) = sum(x^2)/2, grad = x: the gradient comes from the current params.
    x0 = [np.array([1.0, -2.0, 3.0])]
    tr = refopt.trajectory("adamx", x0, lambda params, t: [params[0].copy()], steps=15, lr=0.1)
    rule = refopt.get_rule("adamx", lr=0.1)
    p, state = x0, rule.init(x0)
    for _ in range(15):
        p, state = rule.step(p, [p[0].copy()], state)
    assert np.array_equal(tr.final_params[0], p[0])
    np.testing.assert_array_equal(tr.grads[0][0], x0[0])


def test_zero_size_tensor_is_a_no_op():
    for name in refopt.RULES:
        rule = refopt.get_rule(name)
        params = [np.zeros((0,)), np.ones(2)]
        new, state = rule.step(params, [np.zeros((0,)), np.ones(2)], rule.init(params))
        assert new[0].shape == (0,) and state.step == (1, 1)


@pytest.mark.parametrize("name", sorted(refopt.RULES))
def test_eps_zero_and_zero_gradient_gives_zero_step_not_nan(name):
    # 0/0 := 0 (documented): a zero gradient at t = 1 with eps = 0 must not create NaNs.
    hyper = {"weight_decay": 0.0}
    if "eps" in refopt.RULES[name].cls.defaults:
        hyper["eps"] = 0.0
    rule = refopt.get_rule(name, **hyper)
    params = [np.array([1.0, 2.0])]
    new, _ = rule.step(params, [np.zeros(2)], rule.init(params))
    assert np.array_equal(new[0], params[0])


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os

    from refopt._io import atomic_write_json

    atomic_write_json(tmp_path / "x.json", {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary left behind


def test_checkpoint_names_and_metadata_are_protected(tmp_path):
    import json

    from refopt._io import CorruptFileError, TamperedFileError

    rule = refopt.get_rule("adamx")
    params = [np.ones(3)]
    s1 = rule.step(params, [np.ones(3)], rule.init(params))[1]
    s2 = rule.step(params, [np.ones(3)], s1)[1]
    save_state(tmp_path / "run.step1", rule, s1)  # dotted names: suffixes appended, not replaced
    save_state(tmp_path / "run.step2", rule, s2)
    assert load_state(tmp_path / "run.step1")[1].step == (1,)
    assert load_state(tmp_path / "run.step2")[1].step == (2,)
    meta_path = tmp_path / "run.step1.json"
    meta = json.loads(meta_path.read_text())
    meta["step"] = [7]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(TamperedFileError, match="does not match its recorded sha256"):
        load_state(tmp_path / "run.step1")
    del meta["hyper"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CorruptFileError, match=r"missing fields \['hyper'\]"):
        load_state(tmp_path / "run.step1")
