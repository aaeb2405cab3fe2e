"""Exact identities between rules (issue 2): each would break under a planted mistake."""
import numpy as np
import pytest

import refopt
from refopt.rules.adamx import memory_horizon

RNG = np.random.default_rng(20251118)


def _stream(shape, steps, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((steps,) + shape)


def test_adamx_first_moment_is_adams_bias_corrected_m():
    # Spec T3: the folded beta1_t makes m_t = m_t^Adam / (1 - beta1^t) for any history. The two
    # recursions round differently: the gap is a few ulp of the largest |g| (spec: <= 4.4e-16 abs
    # at |g| ~ 1 over 500 steps), so relative error is unbounded where m itself cancels to ~0.
    shape, steps = (37,), 500
    g = _stream(shape, steps)
    p0 = RNG.standard_normal(shape)
    ax = refopt.trajectory("adamx", [p0], [g], weight_decay=0.0)
    ad = refopt.trajectory("adam", [p0], [g], betas=(0.9, 0.99))
    t = np.arange(1, steps + 1)[:, None]
    m_hat = ad.state["exp_avg"][0][1:] / (1.0 - 0.9 ** t)
    ulp = np.finfo(np.float64).eps
    np.testing.assert_allclose(ax.state["exp_avg"][0][1:], m_hat, rtol=8 * ulp,
                               atol=4 * ulp * np.abs(g).max())


@pytest.mark.parametrize("beta2", [0.9, 0.99, 0.999])
def test_adamx_second_moment_is_closed_form_weighted_average(beta2):
    # Spec T2: v_t = sum_k w_{t,k} g_k^2 with w_{t,k} = (1-c) c^(k-1) / (1-c^t), c = beta2^(1-beta2).
    shape, steps = (5,), 300
    g = _stream(shape, steps, seed=1) * np.logspace(-3, 3, 5)
    tr = refopt.trajectory("adamx", [np.zeros(shape)], [g], betas=(0.9, beta2), weight_decay=0.0)
    # Written with log c = (1-beta2) ln beta2 and expm1: 1 - c computed directly cancels
    # (1 - c ~ 1e-6 at beta2 = 0.999 would carry a 1e-10 relative error into the oracle).
    log_c = (1.0 - beta2) * np.log(beta2)
    for t in (1, 2, 17, steps):
        k = np.arange(1, t + 1)
        w = np.expm1(log_c) * np.exp((k - 1) * log_c) / np.expm1(t * log_c)
        assert w.sum() == pytest.approx(1.0, rel=1e-12)
        assert np.all(np.diff(w) < 0) or t == 1  # the oldest gradients weigh most
        expected = (w[:, None] * g[:t] ** 2).sum(axis=0)
        np.testing.assert_allclose(tr.state["exp_avg_sq"][0][t], expected, rtol=1e-11)
        lo, hi = (g[:t] ** 2).min(axis=0), (g[:t] ** 2).max(axis=0)
        v = tr.state["exp_avg_sq"][0][t]
        assert np.all(v >= lo * (1 - 1e-13)) and np.all(v <= hi * (1 + 1e-13))


def test_adamx_equals_adax_normalised_second_moment():
    # Spec T7: AdaX's v_t / ((1+b)^t - 1) equals AdamX's v_t when b = beta2^-(1-beta2) - 1.
    beta2, steps = 0.99, 2000
    b = beta2 ** -(1.0 - beta2) - 1.0
    g = _stream((3,), steps, seed=2)
    ax = refopt.trajectory("adamx", [np.zeros(3)], [g], betas=(0.9, beta2), weight_decay=0.0)
    adax = refopt.trajectory("adax", [np.zeros(3)], [g], betas=(0.9, b), weight_decay=0.0)
    t = np.arange(1, steps + 1)[:, None]
    normalised = adax.state["exp_avg_sq"][0][1:] / np.expm1(t * np.log1p(b))
    np.testing.assert_allclose(ax.state["exp_avg_sq"][0][1:], normalised, rtol=4e-13)


def test_adamx_first_step_is_adamw_first_step():
    g = _stream((11,), 1, seed=3)
    p0 = RNG.standard_normal(11)
    ax = refopt.trajectory("adamx", [p0], [g], lr=0.1, weight_decay=0.01)
    aw = refopt.trajectory("adamw", [p0], [g], lr=0.1, weight_decay=0.01, betas=(0.9, 0.99))
    # Same value, different operation order (AdamW divides sqrt(v) by sqrt(1 - beta2)): the steps
    # agree to an ulp of the step size lr, not of the (possibly cancelling) new parameter.
    np.testing.assert_allclose(ax.params[0][1], aw.params[0][1], rtol=0,
                               atol=4 * np.finfo(np.float64).eps * (0.1 + np.abs(p0).max()))


def test_adamx_memory_horizon_matches_spec_table():
    # Spec T6: H = 95.41 / 9,950.4 / 999,500.4.
    assert memory_horizon(0.9) == pytest.approx(95.41, abs=0.01)
    assert memory_horizon(0.99) == pytest.approx(9950.4, abs=0.1)
    assert memory_horizon(0.999) == pytest.approx(999500.4, abs=0.1)


@pytest.mark.parametrize("bias_correction", ["hf", "torch"])
@pytest.mark.parametrize("alpha_rule", ["none", "count"])
def test_alphaadam_ones_mask_is_adamw_bit_for_bit(bias_correction, alpha_rule):
    # Spec E1: psi = 1.0 exactly, so every operation is AdamW's.
    shapes = [(), (7,), (3, 5)]
    params = [RNG.standard_normal(s) for s in shapes]
    grads = [_stream(s, 60, seed=i) for i, s in enumerate(shapes)]
    kw = dict(lr=3e-3, weight_decay=0.05, eps=1e-7, bias_correction=bias_correction)
    a = refopt.trajectory("alphaadam", params, grads, mask_source="ones", alpha_rule=alpha_rule, **kw)
    w = refopt.trajectory("adamw", params, grads, **kw)
    for i in range(len(shapes)):
        assert np.array_equal(a.params[i], w.params[i])
        for b in ("exp_avg", "exp_avg_sq"):
            assert np.array_equal(a.state[b][i], w.state[b][i])


def test_alphaadam_default_first_step_is_adamw():
    # Spec E4.
    g = _stream((9,), 1, seed=4)
    p0 = RNG.standard_normal(9)
    a = refopt.trajectory("alphaadam", [p0], [g], weight_decay=0.1)
    w = refopt.trajectory("adamw", [p0], [g], weight_decay=0.1, bias_correction="hf", eps=1e-6)
    assert np.array_equal(a.params[0], w.params[0])


@pytest.mark.parametrize("scaling, alpha_rule", [("count", "count"), ("count+1", "count+1")])
def test_alphaadam_mask_from_m_t_is_cautious_adamw(scaling, alpha_rule):
    # Spec E2/E3: to float64 rounding over 100 steps (the two multiply mask and m in different
    # orders, so bitwise equality is not expected).
    shapes = [(1,), (13,), (4, 6)]
    params = [RNG.standard_normal(s) for s in shapes]
    grads = [_stream(s, 100, seed=10 + i) + 0.3 for i, s in enumerate(shapes)]
    kw = dict(lr=1e-2, weight_decay=0.1, eps=1e-6)
    a = refopt.trajectory("alphaadam", params, grads, mask_source="m_t", alpha_rule=alpha_rule, **kw)
    c = refopt.trajectory("cadamw", params, grads, scaling=scaling, **kw)
    for i in range(len(shapes)):
        np.testing.assert_allclose(a.params[i], c.params[i], rtol=1e-12, atol=1e-14)
    # The masks really differed from all-ones somewhere, or the test would prove nothing.
    assert any(not m.all() for m in a.info["mask"])


@pytest.mark.parametrize("scaling, alpha_rule", [("count", "count"), ("count+1", "count+1")])
def test_alphaadam_m_t_torch_is_cautious_adamw_torch(scaling, alpha_rule):
    # Spec E5: the Cautious AdamW of timm/heavyball/C-Optim's foreach path is mask_source=m_t
    # with bias_correction=torch; same tolerance as E2/E3 (mask and m multiply in other orders).
    shapes = [(1,), (13,), (4, 6)]
    params = [RNG.standard_normal(s) for s in shapes]
    grads = [_stream(s, 100, seed=20 + i) + 0.3 for i, s in enumerate(shapes)]
    kw = dict(lr=1e-2, weight_decay=0.1, eps=1e-8, bias_correction="torch")
    a = refopt.trajectory("alphaadam", params, grads, mask_source="m_t", alpha_rule=alpha_rule, **kw)
    c = refopt.trajectory("cadamw", params, grads, scaling=scaling, **kw)
    hf = refopt.trajectory("cadamw", params, grads, scaling=scaling,
                           **{**kw, "bias_correction": "hf"})
    for i in range(len(shapes)):
        np.testing.assert_allclose(a.params[i], c.params[i], rtol=1e-12, atol=1e-14)
    assert any(not m.all() for m in a.info["mask"])
    # The eps placement is visible at this eps, or the option would be untested here.
    worst = max(np.max(np.abs(c.params[i] - hf.params[i]) / np.abs(c.params[i]))
                for i in range(len(shapes)))
    assert worst > 1e-9, worst


def test_alphaadam_m_prev_mask_is_subset_of_cautious_mask():
    # Spec B4: m_prev * g > 0 implies m_t * g > 0.
    g = _stream((200,), 50, seed=5)
    a = refopt.trajectory("alphaadam", [np.zeros(200)], [g], first_step="as_is")
    c = refopt.trajectory("alphaadam", [np.zeros(200)], [g], mask_source="m_t")
    assert not np.any(a.info["mask"][0] & ~c.info["mask"][0])
    assert not a.info["mask"][0][0].any()  # strict m_prev mask is empty at t = 1 (m_0 = 0)


def test_adams_equal_betas_identity():
    # Spec A5 / testing guide section 2: with beta1 = beta2 = beta, nu_t - m_t^2 = beta(1-beta)(g_t - m_{t-1})^2.
    # nu is recovered from the rule's own step (lambda = eps = 0): nu = (lr m / dw)^2.
    beta, lr = 0.8, 0.01
    g = _stream((50,), 30, seed=6)
    tr = refopt.trajectory("adams", [np.zeros(50)], [g], lr=lr, betas=(beta, beta), eps=0.0,
                           weight_decay=0.0)
    m = tr.state["exp_avg"][0]
    dw = np.diff(tr.params[0], axis=0)
    nu = (lr * m[1:] / dw) ** 2
    # nu comes back through (lr m / dw)^2 with dw = w_t - w_(t-1) (a cancellation of ~|w|/|dw|
    # digits) and nu - m^2 cancels again where m^2 ~ nu: 1e-9 relative keeps 6 digits of slack.
    np.testing.assert_allclose(nu - m[1:] ** 2, beta * (1 - beta) * (g - m[:-1]) ** 2,
                               rtol=1e-9, atol=1e-15)
    assert np.all(np.abs(dw) <= lr * (1 + 1e-12))  # C = 1: the step never exceeds lr


def test_adams_first_step_magnitudes():
    # Spec 2.3: paper form moves (1-beta1)/sqrt(1-beta2) * lr, code form lr/sqrt(1-beta2).
    g = np.array([[3.0, -2e-3, 7e5]])
    for bc, factor in ((False, 0.1 / np.sqrt(0.05)), (True, 1 / np.sqrt(0.05))):
        tr = refopt.trajectory("adams", [np.zeros(3)], [g], lr=1.0, weight_decay=0.0, eps=0.0,
                               bias_correction=bc)
        np.testing.assert_allclose(tr.params[0][1], -factor * np.sign(g[0]), rtol=1e-14)


@pytest.mark.parametrize("beta2", [0.9, 0.99, 0.999])
def test_adamx_newest_weight_has_no_cancellation(beta2):
    # 1 - beta2_t is formed directly; by subtraction it loses |log10(1 - beta2_t)| digits
    # (2.6e-8 relative at beta2 = 0.99, t = 1e5). Oracle: mpmath at 50 digits.
    import mpmath

    from refopt.rules.adamx import one_minus_beta2_t

    mpmath.mp.dps = 50
    c = mpmath.mpf(beta2) ** (1 - mpmath.mpf(beta2))
    for t in (1, 2, 10, 1000, 10**5):
        exact = (1 - c) * c ** (t - 1) / (1 - c ** t)
        # (beta2 = 0.9, t = 1e5: the exact 2.8e-460 underflows float64, so 0 is the right answer)
        assert abs(one_minus_beta2_t(beta2, t) - exact) <= 4e-15 * exact + 2.0 ** -1074
