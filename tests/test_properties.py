"""Hypothesis property tests: random shapes, magnitudes 1e-30 .. 1e30 and sign patterns."""
import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refopt

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=6)


@st.composite
def gradient_streams(draw, steps=6):
    shape = draw(shapes)
    exponent = draw(st.integers(-30, 30))  # one magnitude per stream, sign pattern random
    signs = draw(hnp.arrays(np.int8, (steps,) + shape, elements=st.sampled_from([-1, 0, 1])))
    mantissa = draw(hnp.arrays(np.float64, (steps,) + shape,
                               elements=st.floats(0.5, 2.0, allow_nan=False)))
    return shape, signs * mantissa * 10.0 ** exponent


SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(stream=gradient_streams(), name=st.sampled_from(sorted(refopt.RULES)))
def test_finite_gradients_give_finite_float64_outputs(stream, name):
    shape, g = stream
    tr = refopt.trajectory(name, [np.ones(shape)], [g])
    assert np.all(np.isfinite(tr.params[0]))
    for buf, values in tr.state.items():
        assert np.all(np.isfinite(values[0])), buf


@SETTINGS
@given(stream=gradient_streams(), b1=st.floats(0.0, 0.99), b2=st.floats(0.01, 0.999))
def test_adams_paper_form_step_bounded_by_sqrt_C(stream, b1, b2):
    # Spec A2: with lambda = 0, |dw_i| <= lr * sqrt(C), C = b1^2/b2 + (1-b1)^2/(1-b2).
    shape, g = stream
    lr = 0.01
    tr = refopt.trajectory("adams", [np.zeros(shape)], [g], lr=lr, betas=(b1, b2),
                           weight_decay=0.0)
    bound = lr * math.sqrt(b1 ** 2 / b2 + (1 - b1) ** 2 / (1 - b2))
    assert np.all(np.abs(np.diff(tr.params[0], axis=0)) <= bound * (1 + 1e-12))


@SETTINGS
@given(stream=gradient_streams(steps=8), b2=st.floats(0.5, 0.999))
def test_adamx_v_between_min_and_max_of_past_squared_gradients(stream, b2):
    # Spec T2: v_t is a weighted average of g_1^2..g_t^2.
    shape, g = stream
    tr = refopt.trajectory("adamx", [np.zeros(shape)], [g], betas=(0.9, b2))
    v = tr.state["exp_avg_sq"][0][1:]
    sq = g * g
    running_min = np.minimum.accumulate(sq, axis=0)
    running_max = np.maximum.accumulate(sq, axis=0)
    assert np.all(v >= running_min * (1 - 1e-12)) and np.all(v <= running_max * (1 + 1e-12))


@SETTINGS
@given(stream=gradient_streams(), rule=st.sampled_from(["count", "count+1", "norm", "soft", "none"]),
       source=st.sampled_from(["m_prev", "m_t"]), strict=st.booleans())
def test_alphaadam_mask_and_alpha_are_consistent(stream, rule, source, strict):
    shape, g = stream
    tr = refopt.trajectory("alphaadam", [np.zeros(shape)], [g], alpha_rule=rule,
                           mask_source=source, strict=strict)
    masks, kept, alpha = tr.info["mask"][0], tr.info["kept"][0], tr.info["alpha"][0]
    n = int(np.prod(shape))
    assert np.array_equal(masks.reshape(len(g), -1).sum(axis=1), kept)  # integer count
    assert np.all((kept >= 0) & (kept <= n))
    if rule == "count":
        later = slice(1, None) if source == "m_prev" else slice(None)
        np.testing.assert_allclose(alpha[later], 1 / np.maximum(kept[later] / n, 1e-3), rtol=1e-15)
    if rule == "norm":
        assert np.all((alpha >= 1 - 1e-12) & (alpha <= 10))


@SETTINGS
@given(stream=gradient_streams(), name=st.sampled_from(sorted(refopt.RULES)))
def test_float32_inputs_compute_in_float32(stream, name):
    shape, g = stream
    g32 = g.astype(np.float32)
    # Outside float32's range a float32 user cannot have these gradients.
    assume(np.all(np.isfinite(g32)) and np.array_equal(g32 == 0, g == 0))
    tr = refopt.trajectory(name, [np.ones(shape, np.float32)], [g32])
    assert tr.params[0].dtype == np.float32
    assert all(v[0].dtype == (np.int64 if k == "step" else np.float32) for k, v in tr.state.items())
