"""Every validation error: bad input is refused with a message naming the parameter and range."""
import math

import numpy as np
import pytest

import refopt

ALL_RULES = sorted(refopt.RULES)
ADAM_LIKE = [n for n in ALL_RULES if "betas" in refopt.RULES[n].cls.defaults]


@pytest.mark.parametrize("name", ALL_RULES)
@pytest.mark.parametrize("lr", [-1e-3, math.nan, math.inf, -math.inf])
def test_bad_lr(name, lr):
    with pytest.raises(ValueError, match=r"lr must be finite and >= 0"):
        refopt.get_rule(name, lr=lr)


@pytest.mark.parametrize("name", [n for n in ALL_RULES if n != "sgdm"])
@pytest.mark.parametrize("field", ["eps", "weight_decay"])
@pytest.mark.parametrize("value", [-1e-8, math.nan, math.inf])
def test_bad_eps_and_weight_decay(name, field, value):
    with pytest.raises(ValueError, match=rf"{field} must be finite and >= 0"):
        refopt.get_rule(name, **{field: value})


@pytest.mark.parametrize("name", ADAM_LIKE)
@pytest.mark.parametrize("betas, index", [((1.0, 0.9), 0), ((-0.1, 0.9), 0), ((0.9, 1.0), 1),
                                          ((0.9, 1.5), 1), ((0.9, math.nan), 1)])
def test_betas_outside_unit_interval(name, betas, index):
    with pytest.raises(ValueError, match=rf"betas\[{index}\] must be in [\[(]0, 1\)"):
        refopt.get_rule(name, betas=betas)


def test_adamx_refuses_beta2_zero():
    # beta2 = 0 gives c = 0: v_t = g_1^2 forever (spec pitfalls), so AdamX needs 0 < beta2 < 1.
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \(0, 1\)"):
        refopt.get_rule("adamx", betas=(0.9, 0.0))


@pytest.mark.parametrize("betas", [(0.9,), (0.9, 0.99, 0.999), 0.9])
def test_betas_wrong_length_or_type(betas):
    with pytest.raises((ValueError, TypeError), match="betas"):
        refopt.get_rule("adams", betas=betas)


@pytest.mark.parametrize("name, option, value", [
    ("adamx", "coef_form", "exact"), ("adamx", "weight_decay_mode", "coupled"),
    ("adamx", "state_dtype", "int8"), ("adams", "bias_correction", "yes"),
    ("alphaadam", "mask_source", "m_next"), ("alphaadam", "alpha_rule", "max"),
    ("alphaadam", "first_step", "skip"), ("alphaadam", "bias_correction", "none"),
    ("alphaadam", "density_floor", 0.0), ("alphaadam", "density_floor", 1.5),
    ("alphaadam", "alpha_max", 0.5), ("alphaadam", "gamma", -0.1), ("alphaadam", "strict", 1),
    ("cadamw", "scaling", "norm"), ("adam", "bias_correction", "paper"),
    ("sgdm", "momentum", 1.0), ("sgdm", "dampening", 2.0), ("adamx", "nonfinite", "ignore"),
    ("cadamw", "bias_correction", "none"), ("cadamw", "bias_correction", True),
])
def test_bad_options(name, option, value):
    with pytest.raises((ValueError, TypeError), match=option):
        refopt.get_rule(name, **{option: value})


def test_cadamw_bias_correction_message_names_the_allowed_values():
    with pytest.raises(ValueError) as err:
        refopt.get_rule("cadamw", bias_correction="none")
    assert str(err.value) == "bias_correction must be one of ['hf', 'torch'], got 'none'"
    assert refopt.get_rule("cadamw", bias_correction="torch").hyper["bias_correction"] == "torch"
    assert refopt.get_rule("cadamw").hyper["bias_correction"] == "hf"


def test_unknown_hyperparameter_and_rule():
    # The official AdamNX code silently ignores unknown keyword arguments; refopt refuses them.
    with pytest.raises(TypeError, match=r"unknown hyperparameter\(s\) \['amsgrad'\]"):
        refopt.get_rule("adamx", amsgrad=True)
    with pytest.raises(ValueError, match="unknown rule 'adamax'"):
        refopt.get_rule("adamax")
    with pytest.raises(ValueError, match="backend must be one of"):
        refopt.get_rule("adams", backend="tpu")


def test_alias_adamnx():
    assert refopt.get_rule("AdamNX").name == "adamx"


@pytest.fixture
def adams():
    return refopt.get_rule("adams")


def test_params_must_be_a_list_of_float_arrays(adams):
    with pytest.raises(TypeError, match="params must be a list of arrays"):
        adams.init(np.zeros(3))
    with pytest.raises(TypeError, match=r"params\[1\] must be a numpy.ndarray"):
        adams.init([np.zeros(3), [1.0, 2.0]])
    with pytest.raises(TypeError, match=r"params\[0\] has dtype float16"):
        adams.init([np.zeros(3, np.float16)])
    with pytest.raises(TypeError, match=r"params\[0\] has dtype int64"):
        adams.init([np.zeros(3, np.int64)])


def test_grads_must_match_params(adams):
    params = [np.zeros(3), np.zeros((2, 2))]
    state = adams.init(params)
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(4,\) but params\[1\] has shape \(2, 2\)"):
        adams.step(params, [np.zeros(3), np.zeros(4)], state)
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float32 but params\[0\] has dtype float64"):
        adams.step(params, [np.zeros(3, np.float32), np.zeros((2, 2))], state)
    with pytest.raises(ValueError, match="grads has 1 tensors but params has 2"):
        adams.step(params, [np.zeros(3)], state)


def test_state_must_match(adams):
    params = [np.zeros(3)]
    with pytest.raises(TypeError, match="state must be a AdamSState"):
        adams.step(params, [np.zeros(3)], refopt.get_rule("adamx").init(params))
    with pytest.raises(ValueError, match=r"state.exp_avg\[0\] has shape \(4,\)"):
        adams.step(params, [np.zeros(3)], adams.init([np.zeros(4)]))


def test_nonfinite_policy_raise_is_default():
    rule = refopt.get_rule("adamx")
    params = [np.ones(4), np.ones(2)]
    state = rule.init(params)
    with pytest.raises(FloatingPointError, match=r"grads\[1\] contains NaN or inf"):
        rule.step(params, [np.ones(4), np.array([1.0, np.nan])], state)


def test_nonfinite_policy_skip_leaves_everything_unchanged():
    rule = refopt.get_rule("adamx", nonfinite="skip")
    params = [np.ones(4), np.ones(2)]
    state = rule.init(params)
    params, state = rule.step(params, [np.ones(4), np.ones(2)], state)
    new_params, new_state, info = rule.step_with_info(params, [np.ones(4), np.array([np.inf, 1.0])], state)
    assert info["skipped"]
    assert new_state.step == state.step == (1, 1)
    for a, b in zip(new_params, params):
        assert np.array_equal(a, b)


def test_nonfinite_policy_propagate_lets_nan_flow():
    rule = refopt.get_rule("adams", nonfinite="propagate")
    params = [np.ones(2)]
    new_params, state = rule.step(params, [np.array([np.nan, 1.0])], rule.init(params))
    assert np.isnan(new_params[0][0]) and np.isfinite(new_params[0][1])
    assert state.step == (1,)


def test_none_grad_skips_the_tensor_and_its_step_count():
    # As in the official AdamNX code: a parameter without gradient is skipped, t does not advance.
    rule = refopt.get_rule("adamx")
    params = [np.ones(3), np.ones(2)]
    state = rule.init(params)
    new_params, state = rule.step(params, [np.ones(3), None], state)
    assert state.step == (1, 0)
    assert new_params[1] is params[1]
    assert not np.array_equal(new_params[0], params[0])


def test_trajectory_validation():
    p = [np.zeros(3)]
    with pytest.raises(ValueError, match=r"grads\[0\] must be shaped \(T, \*\(3,\)\)"):
        refopt.trajectory("adams", p, [np.zeros(3)])
    with pytest.raises(ValueError, match="steps is required"):
        refopt.trajectory("adams", p, lambda params, t: [np.ones(3)])
    with pytest.raises(ValueError, match="lr_schedule has 2 entries but T = 3"):
        refopt.trajectory("adams", p, [np.zeros((3, 3))], lr_schedule=[0.1, 0.1])
    with pytest.raises(ValueError, match="record_every must be an integer >= 1"):
        refopt.trajectory("adams", p, [np.zeros((3, 3))], record_every=0)
    with pytest.raises(ValueError, match="steps=4 but the gradient streams hold 3"):
        refopt.trajectory("adams", p, [np.zeros((3, 3))], steps=4)
    with pytest.raises(ValueError, match="lr must be finite"):
        refopt.trajectory("adams", p, [np.zeros((3, 3))], lr_schedule=[0.1, -1.0, 0.1])


@pytest.mark.parametrize("name", ALL_RULES)
@pytest.mark.parametrize("field, value", [("lr", True), ("lr", "0.1"), ("lr", None)])
def test_numbers_are_not_guessed_from_bools_or_strings(name, field, value):
    with pytest.raises(TypeError, match=rf"{field} must be a real number"):
        refopt.get_rule(name, **{field: value})


@pytest.mark.parametrize("name", [n for n in ALL_RULES if n not in ("sgdm", "alphaadam")])
def test_eps_none_is_refused_where_it_means_nothing(name):
    # Only AlphaAdam gives eps=None a meaning (1e-6 for hf, 1e-8 for torch).
    with pytest.raises(TypeError, match="eps must be a real number"):
        refopt.get_rule(name, eps=None)
    assert refopt.get_rule("alphaadam", eps=None, bias_correction="torch").hyper["eps"] == 1e-8


def test_state_dtype_and_step_count_are_checked():
    rule = refopt.get_rule("adamx")
    with pytest.raises(TypeError, match=r"state.exp_avg\[0\] has dtype float64 but params\[0\] has dtype float32"):
        rule.step([np.ones(2, np.float32)], [np.ones(2, np.float32)], rule.init([np.ones(2)]))
    state = rule.init([np.ones(2)])
    for bad in (-5, 1.5, True):
        with pytest.raises(ValueError, match=r"state.step\[0\] must be an integer >= 0"):
            rule.step([np.ones(2)], [np.ones(2)], state._replace(step=(bad,)))
    with pytest.raises(TypeError, match="grads must be a list of arrays"):
        rule.step([np.ones(2)], None, state)


def test_trajectory_names_the_step_of_a_bad_gradient():
    def grad_fn(params, t):
        return [np.array([np.nan, 1.0]) if t == 3 else np.ones(2)]

    with pytest.raises(FloatingPointError, match=r"at step t = 3: grads\[0\] contains NaN"):
        refopt.trajectory("adams", [np.zeros(2)], grad_fn, steps=5)
    with pytest.raises(ValueError, match="record_every must be an integer >= 1, got 2.5"):
        refopt.trajectory("adams", [np.zeros(2)], [np.zeros((5, 2))], record_every=2.5)
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -3"):
        refopt.trajectory("adams", [np.zeros(2)], grad_fn, steps=-3)


# -- warnings: legal values that are almost surely not what was meant -------------------------

@pytest.mark.parametrize("hyper, match", [
    ({"alpha_rule": "soft", "gamma": 0.1}, r"gamma=0.1 has no effect: alpha_rule='soft'"),
    ({"alpha_max": 5.0}, r"alpha_max=5.0 has no effect: it caps alpha_rule='norm' only"),
    ({"alpha_rule": "none", "density_floor": 0.05},
     r"density_floor=0.05 has no effect: .* not 'none'"),
    ({"mask_source": "m_t", "first_step": "as_is"},
     r"first_step='as_is' has no effect: it applies to mask_source='m_prev' only"),
])
def test_alphaadam_options_its_variant_ignores_are_named(hyper, match):
    from refopt._validation import HyperparameterWarning

    with pytest.warns(HyperparameterWarning, match=match) as record:
        rule = refopt.get_rule("alphaadam", **hyper)
    assert record[0].filename == __file__  # points at the caller, not into refopt
    # ... and ignored means ignored: the rule steps exactly as without the option.
    plain = refopt.get_rule("alphaadam", **{k: v for k, v in hyper.items()
                                             if k in ("alpha_rule", "mask_source")})
    params, grads = [np.array([1.0, -2.0, 0.5])], [np.array([0.3, 0.1, -0.4])]
    finals = []
    for r in (rule, plain):
        p, s = params, r.init(params)
        for _ in range(3):
            p, s = r.step(p, grads, s)
        finals.append(p[0].tobytes())
    assert finals[0] == finals[1]


@pytest.mark.parametrize("hyper", [
    {}, {"alpha_rule": "soft"}, {"alpha_rule": "norm", "alpha_max": 3.0},
    {"alpha_rule": "count", "gamma": 0.2, "density_floor": 0.05},
    {"alpha_rule": "norm", "density_floor": 1e-3},  # the resolved default, as manifests pass it
    {"mask_source": "m_prev", "first_step": "cautious"}, {"lr": 0.5, "weight_decay": 1.999},
])
def test_options_that_are_read_give_no_warning(hyper):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refopt.get_rule("alphaadam", **hyper)


@pytest.mark.parametrize("name, warns", [("adamx", True), ("adams", True), ("alphaadam", True),
                                         ("adamw", True), ("cadamw", True), ("adam", False),
                                         ("adax", False), ("sgdm", False)])
def test_decoupled_decay_that_zeroes_or_flips_params_warns(name, warns):
    import warnings

    from refopt._validation import HyperparameterWarning

    if warns:
        with pytest.warns(HyperparameterWarning, match=r"lr \* weight_decay = 1 >= 1"):
            refopt.get_rule(name, lr=0.5, weight_decay=2.0)
    else:  # L2 (added to the gradient): no multiplier to flip
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            refopt.get_rule(name, lr=0.5, weight_decay=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refopt.get_rule(name, lr=0.5, weight_decay=1.9)
        if name in ("adamx", "adax"):
            refopt.get_rule(name, lr=0.5, weight_decay=2.0, weight_decay_mode="l2")


def test_warning_points_at_a_caller_whose_path_starts_like_the_package(tmp_path):
    import os

    from refopt._validation import HyperparameterWarning

    package = os.path.dirname(os.path.abspath(refopt._validation.__file__))
    fake = package + "_examples" + os.sep + "train.py"  # not inside the package
    code = compile("refopt.get_rule('alphaadam', alpha_max=5.0)", fake, "exec")
    with pytest.warns(HyperparameterWarning) as record:
        exec(code, {"refopt": refopt})
    assert record[0].filename == fake


def test_diagnosis_mutants_do_not_warn_about_options_they_make_idle():
    import warnings

    from refopt.verify import load_cases
    from refopt.verify.diagnose import mistakes_for

    cases = [c for c in load_cases("alphaadam") if c.hyper.get("first_step") == "as_is"
             and c.hyper.get("mask_source", "m_prev") == "m_prev"]
    assert cases
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for case in cases:
            for mistake in mistakes_for(case):
                mistake.build(case)


def test_sweeps_check_the_horizon_of_spec_lists_too_and_warn_about_options_once(tmp_path):
    """run_sweep given run specs (not a sweep description) checks AdamX's horizon as expand_sweep
    does; planning builds the rule only to read beta2, so its option warnings come from the run
    alone (they showed twice in a one-process sweep)."""
    import warnings

    from refopt.experiments.runner import expand_sweep, run_sweep

    sweep = {"rules": [{"name": "adamx", "hyper": {"lr": 0.5, "weight_decay": 4.0}}],
             "objectives": ["rosenbrock"], "seeds": [0, 1], "steps": 200}
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        specs = expand_sweep(sweep)
    assert [w.category for w in record] == [refopt.HorizonWarning]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_sweep(specs, tmp_path / "runs.jsonl", limit=0)  # plans, runs nothing
    # One warning for the two seeds: the same (hyper, steps).
    assert [w.category for w in record] == [refopt.HorizonWarning]
    assert "exceeds the 200 steps" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_sweep([{**specs[0], "rule": "adams"}, {**specs[0], "steps": 20000}],
                  tmp_path / "other.jsonl", limit=0)
        # No steps: the run refuses the spec; planning assumes no length for it.
        run_sweep([{k: v for k, v in specs[0].items() if k != "steps"}],
                  tmp_path / "nosteps.jsonl", limit=0)
    # The run itself still says what it thinks of the options, once (and planning, of H).
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_sweep(specs[:1], tmp_path / "one.jsonl", max_workers=1)
    assert sorted(w.category.__name__ for w in record) == ["HorizonWarning",
                                                           "HyperparameterWarning"]
    assert "weight_decay" in str(next(w.message for w in record
                                      if w.category is refopt.HyperparameterWarning))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")  # building one
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_matrix_and_masked_arrays_are_refused_by_name(backend):
    if backend == "numba":
        pytest.importorskip("numba", reason="numba is an optional backend")
    rule = refopt.get_rule("adamx", backend=backend)
    p = np.ones((2, 2))
    state = rule.init([p])
    for bad, what in ((np.asmatrix(p), "numpy.matrix"),
                      (np.ma.masked_array(p, mask=[[0, 1], [0, 0]]), "masked array")):
        with pytest.raises(TypeError, match=rf"params\[0\] is a {what}"):
            rule.step([bad], [p], state)
        with pytest.raises(TypeError, match=rf"grads\[0\] is a {what}"):
            rule.step([p], [bad], state)
    rule.step([p[:, :]], [p], state)  # plain ndarray views stay accepted


def test_adamx_run_shorter_than_its_memory_horizon_warns():
    """Planned runs only (spec adamx.md section 5): closed loop with steps=T, and sweeps."""
    import warnings

    from refopt.experiments.runner import expand_sweep
    from refopt.rules.adamx import memory_horizon

    def grad_fn(params, t):
        return [np.ones(2)]

    with pytest.warns(refopt.HorizonWarning, match=r"H = .* = 9,950 steps \(beta2 = 0.99\) "
                                                   r"exceeds the 50 steps") as record:
        refopt.trajectory("adamx", [np.zeros(2)], grad_fn, steps=50)
    assert record[0].filename == __file__
    assert issubclass(refopt.HorizonWarning, refopt.HyperparameterWarning)
    horizon = memory_horizon(0.9)  # 95.4 steps
    assert 95 < horizon < 96
    with pytest.warns(refopt.HorizonWarning, match="exceeds the 95 steps"):
        refopt.trajectory("adamx", [np.zeros(2)], grad_fn, steps=95, betas=(0.9, 0.9))
    with pytest.warns(refopt.HorizonWarning, match="exceeds the 200 steps"):
        expand_sweep({"rules": ["adamnx"], "objectives": ["rosenbrock"], "seeds": [0],
                      "steps": 200})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refopt.trajectory("adamx", [np.zeros(2)], grad_fn, steps=96, betas=(0.9, 0.9))
        refopt.trajectory("adam", [np.zeros(2)], grad_fn, steps=5)  # only AdamX has H
        refopt.trajectory("adamx", [np.zeros(2)], [np.ones((5, 2))])  # a replay plans nothing
        expand_sweep({"rules": [{"name": "adamx", "hyper": {"betas": [0.9, 0.9]}}, "adams"],
                      "objectives": ["rosenbrock"], "seeds": [0], "steps": 200})


@pytest.mark.parametrize("hyper", [{"betas": [0.9, 1.5]}, {"no_such_option": 1}, ["lr"], None])
def test_sweep_planning_leaves_a_bad_adamx_spec_to_its_run(tmp_path, hyper):
    """The horizon check of a spec list must not refuse the whole sweep over one AdamX spec
    whose hyper is malformed: the runs before it are still recorded, one past ``limit`` is not
    run at all, and the run itself raises its own error."""
    from refopt.experiments.runner import expand_sweep, run_sweep

    good = expand_sweep({"rules": ["sgdm"], "objectives": ["rosenbrock"], "seeds": [0],
                         "steps": 5})[0]
    bad = {**good, "rule": "adamx", "hyper": hyper}
    out = tmp_path / "runs.jsonl"
    assert len(run_sweep([good, bad], out, max_workers=1, limit=1)) == 1
    with pytest.raises((TypeError, ValueError)):
        run_sweep([good, bad], out, max_workers=1)
    assert len(run_sweep([good], out, max_workers=1)) == 1  # recorded, not rerun


# == reliability (issue 13, item 8) — kept together at the end of the file =====================

def test_an_integer_lr_beyond_float_range_is_a_value_error_naming_lr():
    with pytest.raises(ValueError, match=r"^lr must be finite"):
        refopt.get_rule("adam", lr=10 ** 400)


def test_a_buffer_tuple_shorter_than_the_step_tuple_is_refused_by_name():
    rule = refopt.get_rule("adam")
    params = [np.ones(2), np.ones(2)]
    state = rule.init(params)
    short = state._replace(exp_avg=state.exp_avg[:1])
    with pytest.raises(ValueError, match=r"state.exp_avg holds 1 tensors but params has 2"):
        rule.step(params, [np.ones(2)] * 2, short)


@pytest.mark.parametrize("name", ["alphaadam", "adams", "adamx"])
def test_numpy_integer_step_counters_do_not_wrap(name):
    rule = refopt.get_rule(name)
    params = [np.linspace(-1, 1, 4)]
    grads = [np.full(4, 0.5)]
    state = rule.init(params)
    for _ in range(255):
        params2, state = rule.step(params, grads, state)
    as_uint8 = state._replace(step=tuple(np.uint8(t) for t in state.step))
    p_ref, s_ref = rule.step(params, grads, state)
    p_u8, s_u8 = rule.step(params, grads, as_uint8)
    assert s_u8.step == (256,) and type(s_u8.step[0]) is int
    assert np.array_equal(p_u8[0], p_ref[0]) and np.all(np.isfinite(p_u8[0]))
    with pytest.raises(ValueError, match=r"state.step\[0\] must be an integer >= 0"):
        rule.step(params, grads, state._replace(step=(np.int8(-1),)))
