"""The spec's hand tables, one short test per rule: read these first.

Each table was computed independently of refopt (spec: closed forms at 60 digits, the official
code in float64); the printed values have 10 significant digits, hence rtol 1e-9.
"""
import numpy as np
import pytest

import refopt
from refopt.rules.adamx import beta1_t, beta2_t

GRADS_5 = np.array([1.0, -0.5, 2.0, 0.0, 3.0])


def test_adamx_scalar_table():
    # proofs/spec/adamx.md section 2: theta_0 = 1, lr 0.1, wd 0.01, betas (0.9, 0.99), eps 1e-8.
    b1t = [0, 0.4736842105, 0.6309963100, 0.7092177959, 0.7558057190]
    b2t = [0, 0.5000251258, 0.6667001672, 0.7500376875, 0.8000401993]
    m = [1.0, 0.2105263158, 0.8708487085, 0.6176214016, 1.199384630]
    v = [1.0, 0.6250188444, 1.749899499, 1.312490574, 2.849683426]
    theta = [0.8990000010, 0.8714716962, 0.8047683600, 0.7500529828, 0.6782535701]
    tr = refopt.trajectory("adamx", [np.array(1.0)], [GRADS_5], lr=0.1, weight_decay=0.01,
                           betas=(0.9, 0.99), eps=1e-8)
    np.testing.assert_allclose([beta1_t(0.9, t) for t in range(1, 6)], b1t, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([beta2_t(0.99, t) for t in range(1, 6)], b2t, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tr.state["exp_avg"][0][1:], m, rtol=1e-9)
    np.testing.assert_allclose(tr.state["exp_avg_sq"][0][1:], v, rtol=1e-9)
    np.testing.assert_allclose(tr.params[0][1:], theta, rtol=1e-9)
    assert list(tr.state["step"][0]) == [0, 1, 2, 3, 4, 5]


def test_adamx_coef_forms_agree_in_float64():
    # Equal in exact arithmetic; the naive form loses ~|log10(1-c)| digits to cancellation
    # (4 at beta2 = 0.99, 6 at 0.999), so 1e-9 is what float64 can promise for both.
    for b2 in (0.9, 0.99, 0.999):
        for t in (2, 10, 1000, 10**5):
            assert beta2_t(b2, t, "naive") == pytest.approx(beta2_t(b2, t, "expm1"), rel=1e-9)
        assert beta2_t(b2, 1, "naive") == beta2_t(b2, 1, "expm1") == 0.0


@pytest.mark.parametrize("bias_correction, expected", [
    (False, [0.9452786425, 0.9088578633, 0.8471974764, 0.7463874539, 0.6689616065]),
    (True, [0.5427864245, 0.4972607031, 0.3069158977, 0.2115086885, 0.0666063101]),
])
def test_adams_scalar_table(bias_correction, expected):
    # proofs/spec/adams.md section 2.4: w_0 = 1, lr 0.1, wd 0.1, betas (0.9, 0.95), eps 1e-8.
    tr = refopt.trajectory("adams", [np.array(1.0)], [GRADS_5], lr=0.1, weight_decay=0.1,
                           betas=(0.9, 0.95), eps=1e-8, bias_correction=bias_correction)
    np.testing.assert_allclose(tr.params[0][1:], expected, rtol=1e-9)
    np.testing.assert_allclose(tr.state["exp_avg"][0][1:], [0.1, 0.04, 0.236, 0.2124, 0.49116],
                               rtol=1e-12)


THETA0 = np.array([1.0, -1.0, 0.5, 2.0])
GRADS_4 = np.array([[1, -2, 0.5, 0], [-1, -1, 1, 2], [0.5, 1, -1, 1], [2, -0.5, 0.25, -1.0]])
ALPHA_KW = dict(lr=0.01, weight_decay=0.1, betas=(0.9, 0.999), eps=1e-6)


def test_alphaadam_vector_table():
    # proofs/spec/alphaadam.md section 2.6 (defaults, hf).
    tr = refopt.trajectory("alphaadam", [THETA0], [GRADS_4], **ALPHA_KW)
    masks = ["1111", "0110", "0001", "1110"]
    assert ["".join(str(int(x)) for x in row) for row in tr.info["mask"][0]] == masks
    np.testing.assert_allclose(tr.info["alpha"][0], [1, 2, 4, 4 / 3], rtol=1e-15)
    expected = [[0.9890003162, -0.9890001581, 0.4895006324, 1.9980000000],
                [0.9880113159, -0.9693678289, 0.4697080373, 1.9960020000],
                [0.9870233046, -0.9683984611, 0.4692383293, 1.9619967983],
                [0.9786909277, -0.9616335939, 0.4660944921, 1.9600348015]]
    np.testing.assert_allclose(tr.params[0][1:], expected, rtol=1e-9)


@pytest.mark.parametrize("name, kw, expected", [
    ("adamw", dict(bias_correction="hf"), [0.9793070468, -0.9684227074, 0.4750973683, 1.9729825402]),
    ("cadamw", dict(scaling="count"), [0.9724019989, -0.9676133336, 0.4724036128, 1.9685970212]),
    ("cadamw", dict(scaling="count+1"), [0.9786201726, -0.9742463477, 0.4783218464, 1.9754118281]),
])
def test_alphaadam_table_baselines(name, kw, expected):
    tr = refopt.trajectory(name, [THETA0], [GRADS_4], **ALPHA_KW, **kw)
    np.testing.assert_allclose(tr.params[0][-1], expected, rtol=1e-9)
