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


# == item 9: option values that are not plain strings; save_state validates before writing ====

@pytest.mark.parametrize("name, key, value, expected", [
    ("adamx", "state_dtype", np.dtype("float16"), "float16"),
    ("adamx", "state_dtype", np.float32, "float32"),
    ("adamx", "coef_form", np.str_("naive"), "naive"),
    ("adamx", "nonfinite", np.str_("skip"), "skip"),
    ("alphaadam", "mask_source", np.str_("m_t"), "m_t"),
    ("cadamw", "scaling", np.str_("count+1"), "count+1"),
    ("adam", "bias_correction", np.str_("hf"), "hf"),
    ("adax", "weight_decay_mode", np.str_("decoupled"), "decoupled"),
])
def test_string_like_option_values_are_stored_as_plain_str(name, key, value, expected):
    rule = refopt.get_rule(name, **{key: value})
    assert type(rule.hyper[key]) is str and rule.hyper[key] == expected


@pytest.mark.parametrize("name, key, value", [
    ("adamx", "nonfinite", np.array("skip")),
    ("adamx", "nonfinite", np.array(["skip"])),
    ("adamx", "state_dtype", np.array("float16")),
    ("alphaadam", "mask_source", np.array("m_t")),
    ("adam", "bias_correction", b"hf"),
    ("cadamw", "scaling", 1),
    ("adamx", "coef_form", ["naive"]),
])
def test_option_values_that_are_not_strings_are_refused_at_construction(name, key, value):
    with pytest.raises(TypeError, match=rf"^{key} must be a str, one of \[") as info:
        refopt.get_rule(name, **{key: value})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [np.dtype("int8"), np.float16])
def test_a_dtype_that_is_not_an_allowed_option_value_is_a_value_error(value):
    # np.float16 names a state_dtype, not a nonfinite policy; int8 is no state_dtype.
    key = "state_dtype" if value is not np.float16 else "nonfinite"
    with pytest.raises(ValueError, match=rf"^{key} must be one of \["):
        refopt.get_rule("adamx", **{key: value})


def test_a_dtype_option_runs_on_numba_and_saves(tmp_path):
    _numba_or_skip()
    from refopt.checkpoint import load_state, save_state

    fast = refopt.get_rule("adamx", backend="numba", state_dtype=np.dtype("float16"))
    ref = refopt.get_rule("adamx", state_dtype="float16")
    params, grads = [np.linspace(-1, 1, 5, dtype=np.float32)], [np.ones(5, np.float32)]
    p_f, s_f = fast.step(params, grads, fast.init(params))
    p_r, _ = ref.step(params, grads, ref.init(params))
    assert np.array_equal(p_f[0], p_r[0])
    save_state(tmp_path / "c", fast, s_f)
    rule, state = load_state(tmp_path / "c")
    assert rule.hyper["state_dtype"] == "float16" and state.step == (1,)


def _bad_states():
    rule = refopt.get_rule("adam")
    s = rule.init([np.ones(3)])
    return rule, [
        ("negative step", s._replace(step=(-1,)), ValueError, r"state.step\[0\] must be"),
        ("boolean step", s._replace(step=(True,)), ValueError, r"state.step\[0\] must be"),
        ("fractional step", s._replace(step=(1.5,)), ValueError, r"state.step\[0\] must be"),
        ("short buffers", s._replace(exp_avg=()), ValueError, r"state.exp_avg holds 0"),
        ("list buffer", s._replace(exp_avg=([0.0] * 3,)), TypeError, r"state.exp_avg\[0\] must"),
        ("int buffer", s._replace(exp_avg=(np.zeros(3, int),)), TypeError, r"dtype int64"),
        ("object buffer", s._replace(exp_avg=(np.array([None] * 3),)), TypeError, r"dtype object"),
        ("shape mismatch", s._replace(exp_avg=(np.zeros(4),)), ValueError,
         r"state.exp_avg_sq\[0\] has shape \(3,\).* state.exp_avg\[0\] has \(4,\)"),
        ("another rule's", refopt.get_rule("adamx").init([np.ones(3)]), TypeError,
         r"state must be a AdamState from adam.init, got AdamXState"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_states()[1])),
                         ids=[c[0] for c in _bad_states()[1]])
def test_save_state_refuses_what_load_state_would_refuse_and_writes_nothing(tmp_path, case):
    from refopt.checkpoint import save_state

    rule, cases = _bad_states()
    _, state, exc, message = cases[case]
    with pytest.raises(exc, match=message):
        save_state(tmp_path / "c", rule, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_save_state_refuses_a_directory_at_the_json_path_before_writing_the_npz(tmp_path):
    from refopt.checkpoint import save_state

    rule = refopt.get_rule("adam")
    (tmp_path / "c.json").mkdir()
    with pytest.raises(IsADirectoryError, match=r"c.json: exists and is not a regular file"):
        save_state(tmp_path / "c", rule, rule.init([np.ones(3)]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_save_state_refuses_hyperparameters_that_would_not_load_back(tmp_path):
    from types import MappingProxyType

    from refopt.checkpoint import save_state

    rule = refopt.get_rule("adamx")
    forged = {**rule.hyper, "state_dtype": "float16", "coef_form": "cubic"}
    rule.hyper = MappingProxyType(forged)  # set after construction, past its validation
    with pytest.raises(ValueError, match=r"^save_state: adamx's hyperparameters would not load"):
        save_state(tmp_path / "c", rule, rule.init([np.ones(3)]))
    assert list(tmp_path.iterdir()) == []


# == item 10: overlapping memory in an in-place step; a state belongs to its rule ===============

def _aliasing_cases():
    """(id, builder): builder(rule) -> params, grads, state and the two arrays the error names."""
    def p_is_buffer(rule):
        b = rule.buffers[0]
        p = np.linspace(-1, 1, 6)
        s = rule.init([p])
        return [p], [np.ones(6)], s._replace(**{b: (p,)}), ("params[0]", f"state.{b}[0]")

    def shifted_state(rule):
        b = rule.buffers[0]
        buf = np.linspace(-1, 1, 7)
        s = rule.init([buf[1:]])
        return [buf[1:]], [np.ones(6)], s._replace(**{b: (buf[:6],)}), \
            ("params[0]", f"state.{b}[0]")

    def grad_shifted(rule):
        buf = np.linspace(-1, 1, 7)
        return [buf[:6]], [buf[1:]], rule.init([buf[:6]]), ("params[0]", "grads[0]")

    def grad_reversed(rule):
        p = np.linspace(-1, 1, 6)
        return [p], [p[::-1]], rule.init([p]), ("params[0]", "grads[0]")

    def param_twice(rule):
        p = np.linspace(-1, 1, 6)
        return [p, p], [np.ones(6), np.ones(6)], rule.init([p, p]), ("params[0]", "params[1]")

    def state_twice(rule):
        b = rule.buffers[0]
        ps = [np.linspace(-1, 1, 6), np.linspace(0, 1, 6)]
        s = rule.init(ps)
        return ps, [np.ones(6)] * 2, s._replace(**{b: (getattr(s, b)[0],) * 2}), \
            (f"state.{b}[0]", f"state.{b}[1]")

    def grad_of_other_tensor(rule):
        ps = [np.linspace(-1, 1, 6), np.linspace(0, 1, 6)]
        return ps, [np.ones(6), ps[0]], rule.init(ps), ("params[0]", "grads[1]")

    def unstepped_view(rule):
        buf = np.linspace(-1, 1, 6)
        ps = [buf, buf[2:4]]  # params[1] has no gradient: it must stay unchanged
        return ps, [np.ones(6), None], rule.init(ps), ("params[0]", "params[1]")

    return [("param-is-its-state-buffer", p_is_buffer), ("state-shifted-by-one", shifted_state),
            ("grad-shifted-by-one", grad_shifted), ("grad-reversed", grad_reversed),
            ("one-param-twice", param_twice), ("one-state-buffer-twice", state_twice),
            ("grad-is-another-param", grad_of_other_tensor),
            ("unstepped-tensor-inside-a-stepped-one", unstepped_view)]


def _match(names):
    import re

    return rf"^{re.escape(names[0])} and {re.escape(names[1])} share memory; an in-place step"


@pytest.mark.parametrize("name", ["adamx", "alphaadam", "sgdm"])
@pytest.mark.parametrize("case", _aliasing_cases(), ids=[c[0] for c in _aliasing_cases()])
def test_numba_in_place_step_refuses_overlapping_memory_naming_the_tensors(name, case):
    _numba_or_skip()
    fast = refopt.get_rule(name, backend="numba")
    params, grads, state, names = case[1](fast)
    before = [a.copy() for a in params] + [x.copy() for b in fast.buffers
                                           for x in getattr(state, b)]
    with pytest.raises(ValueError, match=_match(names)):
        fast.step_(params, grads, state)
    after = list(params) + [x for b in fast.buffers for x in getattr(state, b)]
    assert all(np.array_equal(x, y) for x, y in zip(before, after))  # nothing was written


@pytest.mark.parametrize("name", RULE_NAMES)
def test_numba_in_place_step_with_the_grad_being_the_param_matches_the_reference(name):
    _numba_or_skip()
    ref, fast = refopt.get_rule(name), refopt.get_rule(name, backend="numba")
    x = np.linspace(-1, 1, 9)
    s_r = ref.init([x])
    p_r, s_r = ref.step([x], [x.copy()], s_r)
    p = [x.copy()]
    s_f = fast.step_(p, [p[0]], fast.init(p))  # grads[0] is params[0]: read before written
    assert np.array_equal(p[0], p_r[0])
    assert all(np.array_equal(getattr(s_f, b)[0], getattr(s_r, b)[0]) for b in fast.buffers)


def test_numba_in_place_step_accepts_disjoint_views_of_one_buffer():
    _numba_or_skip()
    ref, fast = refopt.get_rule("adamx"), refopt.get_rule("adamx", backend="numba")
    flat = np.linspace(-1, 1, 10)
    views = [flat[:4], flat[4:10]]  # adjacent, not overlapping (a flat parameter buffer)
    gbuf = np.linspace(0.5, 2, 20)
    grads = [gbuf[0:8:2], gbuf[8:20:2]]  # strided: their ranges interleave, no element shared
    moments = np.zeros(20)
    state = fast.init(views)._replace(exp_avg=(moments[:4], moments[4:10]),
                                      exp_avg_sq=(moments[10:14], moments[14:20]))
    p_r, s_r = ref.step([v.copy() for v in views], [g.copy() for g in grads], ref.init(views))
    fast.step_(views, grads, state)
    assert all(np.array_equal(a, b) for a, b in zip(views, p_r))
    odd = flat[1:2]  # inside the range of a strided gradient of the same buffer, no element shared
    even = flat[0:10:2]
    rule = refopt.get_rule("sgdm", backend="numba")
    rule.step_([odd], [even[:1]], rule.init([odd]))


def test_the_reference_step_is_pure_so_aliasing_cannot_change_its_result():
    rule = refopt.get_rule("adamx")
    p = np.linspace(-1, 1, 6)
    s = rule.init([p])
    aliased = s._replace(exp_avg=(p,))
    copied = s._replace(exp_avg=(p.copy(),))
    p1, s1 = rule.step([p], [p], aliased)
    p2, s2 = rule.step([p.copy()], [p.copy()], copied)
    assert np.array_equal(p1[0], p2[0]) and np.array_equal(s1.exp_avg[0], s2.exp_avg[0])


@pytest.mark.parametrize("case", _aliasing_cases(), ids=[c[0] for c in _aliasing_cases()])
def test_cupy_glue_in_place_step_refuses_overlapping_memory(fake_cupy, case):  # noqa: F811
    gpu = refopt.get_rule("adamx", backend="cupy")
    params, grads, state, names = case[1](gpu.reference)
    wrap = fake_cupy.ndarray  # the stand-in's arrays over these very host arrays (no copy)
    d_params = [wrap(p) for p in params]
    d_grads = [None if g is None else wrap(g) for g in grads]
    d_state = state._replace(**{b: tuple(wrap(x) for x in getattr(state, b))
                                for b in gpu.buffers})
    with pytest.raises(ValueError, match=_match(names)):
        gpu.step_(d_params, d_grads, d_state)


_ADAM_FAMILY = ["adam", "adamw", "cadamw", "alphaadam"]


@pytest.mark.parametrize("owner", _ADAM_FAMILY)
@pytest.mark.parametrize("user", _ADAM_FAMILY)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_state_of_another_adam_family_rule_is_refused_by_name(owner, user, backend):
    if backend == "numba":
        _numba_or_skip()
    params, grads = [np.ones(3)], [np.ones(3)]
    state = refopt.get_rule(owner).init(params)
    rule = refopt.get_rule(user, backend=backend)
    if owner == user:
        rule.step(params, grads, state)
        return
    with pytest.raises(TypeError, match=rf"^state must be a \w+State from {user}.init, got a "
                                        rf"\w+State from {owner}.init: a state belongs to the "
                                        rf"rule that made it$"):
        rule.step(params, grads, state)


def test_load_state_gives_each_rule_its_own_state_type(tmp_path):
    from refopt.checkpoint import load_state, save_state

    for name in _ADAM_FAMILY:
        rule = refopt.get_rule(name)
        save_state(tmp_path / name, rule, rule.init([np.ones(2)]))
        _, state = load_state(tmp_path / name)
        assert type(state) is rule.state_type
        with pytest.raises(TypeError, match=r"a state belongs to the rule that made it"):
            refopt.get_rule("alphaadam" if name != "alphaadam" else "adamw").step(
                [np.ones(2)], [np.ones(2)], state)


# == item 11: hyperparameters that round to 0 or overflow in the tensor's dtype ================

def _f32(*values):
    return [np.asarray(values, dtype=np.float32)]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_an_eps_that_rounds_to_zero_in_float32_is_refused(backend):
    if backend == "numba":
        _numba_or_skip()
    rule = refopt.get_rule("adamx", eps=1e-50, backend=backend)
    params, grads = _f32(1.0, -1.0), _f32(1e-30, 1e-30)  # g**2 underflows: v = 0 in float32
    with pytest.raises(ValueError, match=r"^eps=1e-50 rounds to 0 in float32 \(its smallest "
                                         r"positive value is 1.4e-45\).*pass eps=0"):
        rule.step(params, grads, rule.init(params))
    p64 = [p.astype(np.float64) for p in params]  # float64 holds it: computed as before
    out, _ = rule.step(p64, [g.astype(np.float64) for g in grads], rule.init(p64))
    assert np.all(np.isfinite(out[0]))
    zero = refopt.get_rule("adamx", eps=0.0, backend=backend)  # eps = 0 itself stays legal
    zero.step(params, _f32(0.5, 0.5), zero.init(params))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_an_lr_whose_float32_step_size_overflows_is_refused_before_anything_is_written(backend):
    if backend == "numba":
        _numba_or_skip()
    rule = refopt.get_rule("adam", lr=3.4e38, backend=backend)
    params, grads = _f32(1.0, 0.0), _f32(0.0, 0.0)
    state = rule.init(params)
    with pytest.raises(ValueError, match=r"^lr=3.4e\+38 is too large for float32 tensors: the "
                                         r"step size .* at t=1 is 3.4e\+39, beyond float32's"):
        rule.step(params, grads, state)
    if backend == "numba":
        before = params[0].copy()
        with pytest.raises(ValueError, match=r"^lr=3.4e\+38 is too large"):
            rule.step_(params, grads, state)
        assert np.array_equal(params[0], before) and state.step == (0,)
    p64 = [p.astype(np.float64) for p in params]
    out, _ = rule.step(p64, [g.astype(np.float64) for g in grads], rule.init(p64))
    assert np.all(np.isfinite(out[0]))  # float64 holds 3.4e39: unchanged


def test_a_per_step_lr_beyond_float32_and_a_decay_factor_beyond_it_are_refused():
    params, grads = _f32(1.0), _f32(0.5)
    rule = refopt.get_rule("adamx")
    with pytest.raises(ValueError, match=r"^lr=1e\+39 is too large for float32 tensors"):
        rule.step(params, grads, rule.init(params), lr=1e39)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", refopt.HyperparameterWarning)  # lr * weight_decay >= 1
        rule = refopt.get_rule("adamw", lr=1e30, weight_decay=1e10)
    with pytest.raises(ValueError, match=r"^lr \* weight_decay is too large for float32 tensors: "
                                         r"the decoupled decay factor"):
        rule.step(params, grads, rule.init(params))


def test_adax_step_size_beyond_float64_late_in_a_run_is_refused_not_inf():
    rule = refopt.get_rule("adax")
    params, grads = [np.ones(2)], [np.full(2, 0.5)]
    late = rule.init(params)._replace(step=(8_000_000,))  # (1+b)^t - 1 = inf at b = 1e-4
    with pytest.raises(ValueError, match=r"^t=8000001: adax's per-step scalars at lr=0.001 "
                                         r"overflow float64"):
        rule.step(params, grads, late)
    with pytest.raises(ValueError, match=r"^lr=1e\+300 is too large for float64 tensors: the "
                                         r"step size .* at t=2000001 is inf"):
        refopt.get_rule("adax", lr=1e300).step(params, grads, late._replace(step=(2_000_000,)))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("alpha_rule", ["count", "soft"])
def test_alphaadam_density_floor_whose_inverse_overflows_float32_is_refused(backend, alpha_rule):
    if backend == "numba":
        _numba_or_skip()
    rule = refopt.get_rule("alphaadam", density_floor=1e-40, alpha_rule=alpha_rule,
                           mask_source="m_t", backend=backend)
    params, grads = _f32(1.0, 2.0), _f32(0.0, 0.0)  # m_t * g = 0: the strict mask keeps nothing
    with pytest.raises(ValueError, match=r"^density_floor=1e-40 is out of range for float32 "
                                         r"tensors: alpha = 1/density_floor"):
        rule.step(params, grads, rule.init(params))
    p64 = [p.astype(np.float64) for p in params]
    out, _ = rule.step(p64, [g.astype(np.float64) for g in grads], rule.init(p64))
    assert np.all(np.isfinite(out[0]))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name, hyper, named", [
    ("adamx", {"lr": 1e-50}, "lr"),
    ("adam", {"weight_decay": 1e-50}, "weight_decay"),
    ("sgdm", {"weight_decay": 1e-50}, "weight_decay"),
])
def test_an_lr_or_coupled_weight_decay_that_rounds_to_zero_warns(backend, name, hyper, named):
    if backend == "numba":
        _numba_or_skip()
    from refopt._validation import PrecisionWarning

    assert issubclass(PrecisionWarning, RuntimeWarning)
    assert issubclass(PrecisionWarning, refopt.HyperparameterWarning)
    rule = refopt.get_rule(name, backend=backend, **hyper)
    zero = refopt.get_rule(name, **{k: 0.0 for k in hyper})
    params, grads = _f32(1.0, -2.0), _f32(0.5, 0.25)
    with pytest.warns(PrecisionWarning, match=rf"^{named}=1e-50 rounds to 0 in float32"):
        out, _ = rule.step(params, grads, rule.init(params))
    expected, _ = zero.step(params, grads, zero.init(params))
    assert np.array_equal(out[0], expected[0])  # what it computed before: the value rounded


@pytest.mark.parametrize("name", RULE_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_default_hyperparameters_neither_warn_nor_refuse(name, dtype):
    rule = refopt.get_rule(name)
    params = [np.linspace(-1, 1, 5, dtype=dtype)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = rule.init(params)
        for t in range(3):
            params, state = rule.step(params, [np.full(5, 0.5 - t, dtype=dtype)], state)


def test_cupy_glue_refuses_an_eps_that_rounds_to_zero(fake_cupy):  # noqa: F811
    gpu = refopt.get_rule("adams", eps=1e-50, backend="cupy")
    params = [fake_cupy.asarray(np.ones(3, np.float32))]
    with pytest.raises(ValueError, match=r"^eps=1e-50 rounds to 0 in float32"):
        gpu.step_(params, [fake_cupy.asarray(np.ones(3, np.float32))], gpu.init(params))
