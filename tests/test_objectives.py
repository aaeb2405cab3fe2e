"""Tests of refopt.objectives: exact derivatives, minimisers, (L0, L1) constants, noise laws, dtypes."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from refopt.objectives import OBJECTIVES, make_objective

# Small instances so the dense Hessians and finite differences stay cheap.
SMALL = {
    "quadratic": {"dim": 6, "condition_number": 100.0},
    "heterogeneous_quadratic": {"dim": 8},
    "noisy_quadratic": {"dim": 8},
    "rosenbrock": {"dim": 4},
    "logistic": {"n_samples": 50, "dim": 5},
    "cosh": {}, "exp": {}, "quartic": {}, "logcosh": {}, "reddi": {},
}


def _point(f, seed=0, scale=1.0):
    n = f.shape[0] if f.shape else 5
    return scale * np.random.default_rng(seed).standard_normal(n)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_registry_names_and_json_constants(name):
    f = make_objective(name, **SMALL[name])
    assert f.name == name
    json.dumps(f.constants, allow_nan=False)  # JSON-serialisable, finite
    for key, value in SMALL[name].items():
        assert f.constants[key] == value


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_gradient_matches_central_differences(name):
    f = make_objective(name, **SMALL[name])
    x = _point(f, seed=1)
    g = f.grad(x)
    h = 1e-6
    fd = np.array([(f.value(x + h * e) - f.value(x - h * e)) / (2 * h) for e in np.eye(x.size)])
    # Central differences: truncation O(h^2 f''') ~ 1e-12 * 1e3, rounding O(eps |f| / h) ~ 1e-8.
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * max(1.0, abs(f.value(x))))


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_hessian_matches_gradient_differences_and_hvp(name):
    f = make_objective(name, **SMALL[name])
    x = _point(f, seed=2)
    H = f.hessian(x)
    assert H.shape == (x.size, x.size)
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-12)
    h = 1e-6
    fd = np.stack([(f.grad(x + h * e) - f.grad(x - h * e)) / (2 * h) for e in np.eye(x.size)], 1)
    # Differences of exact gradients: error O(eps |g| / h) ~ 1e-9 relative to the entries.
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(H).max()))
    v = np.random.default_rng(3).standard_normal(x.size)
    np.testing.assert_allclose(f.hvp(x, v), H @ v, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_minimizer_has_zero_gradient_and_stated_value(name):
    f = make_objective(name, **SMALL[name])
    x = _point(f)
    xstar = f.minimizer_like(x)
    if name == "exp":
        assert f.minimizer is None and f.min_value is None
        return
    assert xstar is not None and xstar.shape == x.shape
    assert f.value(xstar) == pytest.approx(f.min_value_like(x), rel=1e-12, abs=1e-12)
    if name == "reddi":
        # Constrained optimum of a linear loss on [-1, 1]: not stationary, but no feasible
        # point does better, and the projected gradient step stays there.
        grid = np.linspace(-1, 1, 41)
        assert all(f.value(np.full(5, t)) >= f.value(xstar) - 1e-15 for t in grid)
        np.testing.assert_array_equal(f.project(xstar - 0.1 * f.grad(xstar)), xstar)
        return
    # logistic's minimiser is computed by Newton to ||grad|| < 1e-12.
    assert np.linalg.norm(f.grad(xstar)) < 1e-10
    # ...and it is a minimum: nearby points are no lower.
    for seed in range(5):
        assert f.value(xstar + 1e-3 * _point(f, seed)) >= f.value(xstar)


def test_rosenbrock_constants_and_minimiser_for_other_a():
    f = make_objective("rosenbrock")
    assert (f.constants["a"], f.constants["b"]) == (1.0, 100.0)  # not torch-optimizer's b = 1
    assert f.value(np.array([-1.2, 1.0])) == pytest.approx(24.2)  # the classic starting value
    g = make_objective("rosenbrock", a=2.0)
    np.testing.assert_array_equal(g.minimizer, [2.0, 4.0])
    assert np.all(g.grad(g.minimizer) == 0)
    assert make_objective("rosenbrock", a=2.0, dim=3).minimizer is None


@pytest.mark.parametrize("name,expected", [("cosh", (1.0, 1.0)), ("exp", (0.0, 1.0)),
                                           ("quartic", (12.0, 3.0)), ("logcosh", (1.0, 0.0))])
def test_l0l1_constants_hold_on_a_grid(name, expected):
    f = make_objective(name)
    assert f.l0l1 == expected  # AdamS spec A11
    L0, L1 = f.l0l1
    x = np.linspace(-20, 20, 40001)
    d1 = f.grad(x)
    d2 = np.diag(f.hessian(x[:1]))  # shape check on one point; the grid uses the 1-D identity
    assert d2.shape == (1,)
    d2 = np.array([f.hessian(np.array([t]))[0, 0] for t in x[::50]])
    assert np.all(np.abs(d2) <= (L0 + L1 * np.abs(d1[::50])) * (1 + 1e-12))
    if name != "quartic":  # (12, 3) is valid but not tight (at x = 1: 12 <= 24)
        # Tight: equality is reached on the grid (cosh and log cosh at 0, exp everywhere).
        slack = (L0 + L1 * np.abs(d1[::50])) - np.abs(d2)
        assert slack.min() < 1e-9 * max(1.0, L0)


@pytest.mark.parametrize("name", ["quadratic", "heterogeneous_quadratic", "logistic", "cosh",
                                  "quartic", "logcosh", "exp"])
def test_l0l1_in_several_dimensions(name):
    f = make_objective(name, **SMALL[name])
    L0, L1 = f.l0l1
    for seed in range(20):
        x = _point(f, seed, scale=2.0)
        spectral = np.linalg.norm(f.hessian(x), 2)
        assert spectral <= (L0 + L1 * np.linalg.norm(f.grad(x))) * (1 + 1e-12)


@pytest.mark.parametrize("law", ["gaussian", "subgaussian", "heavy_tailed"])
def test_noise_mean_and_variance(law):
    sigma = 0.7
    df = 9.0  # finite fourth moment, so the sample variance has a finite standard error
    f = make_objective("cosh", noise=law, noise_scale=sigma, noise_df=df)
    x = np.linspace(-1, 1, 4)
    rng = np.random.default_rng(123)
    n = 20000
    samples = np.stack([f.stochastic_grad(x, rng) for _ in range(n)])
    xi = samples - f.grad(x)
    # Mean: standard error sigma / sqrt(n) = 0.005; 5 standard errors.
    np.testing.assert_allclose(xi.mean(0), 0.0, atol=5 * sigma / math.sqrt(n))
    # Variance: standard error sigma^2 sqrt((kurtosis - 1) / n); kurtosis 3 (Gaussian),
    # 1 (Rademacher: the sample variance is almost exact), 3 + 6/(df-4) = 4.2 (t_9). 5 s.e.
    kurt = {"gaussian": 3.0, "subgaussian": 1.0, "heavy_tailed": 3.0 + 6.0 / (df - 4.0)}[law]
    tol = 5 * sigma ** 2 * math.sqrt((kurt - 1.0) / n) + 1e-12
    # Second moment about the true mean 0 (the sample variance would subtract mean^2 ~ sigma^2/n).
    np.testing.assert_allclose(np.mean(xi ** 2, 0), sigma ** 2, atol=tol)
    if law == "subgaussian":
        np.testing.assert_allclose(np.abs(xi), sigma, rtol=1e-12)  # bounded by sigma


def test_heavy_tailed_default_law_is_scaled_student_t():
    sigma, df = 2.0, 3.0
    f = make_objective("quartic", noise="heavy_tailed", noise_scale=sigma)
    assert f.constants["noise_df"] == df
    xi = np.concatenate([f.stochastic_grad(np.zeros(1000), s) for s in range(20)])
    z = xi / (sigma * math.sqrt((df - 2) / df))
    # Kolmogorov-Smirnov against t_3 on 20000 draws; p < 1e-3 only by chance 0.1% of the time.
    assert stats.kstest(z, stats.t(df).cdf).pvalue > 1e-3
    # Heavier tails than a Gaussian of the same variance: P(|xi| > 4 sigma) is ~1.4% vs 6e-5.
    assert np.mean(np.abs(xi) > 4 * sigma) > 5e-3


def test_noise_is_seeded_and_hessian_covariance_option():
    f = make_objective("noisy_quadratic", dim=8)
    x = np.ones(8)
    np.testing.assert_array_equal(f.stochastic_grad(x, 5), f.stochastic_grad(x, 5))
    assert not np.array_equal(f.stochastic_grad(x, 5), f.stochastic_grad(x, 6))
    nqm = make_objective("noisy_quadratic", dim=8, noise_covariance="hessian", noise_scale=1.0)
    h = np.diag(nqm.hessian(x))
    rng = np.random.default_rng(0)
    xi = np.stack([nqm.stochastic_grad(x, rng) for _ in range(20000)]) - nqm.grad(x)
    # Var = sigma^2 h_i; relative standard error sqrt(2/n) = 1%; 5 s.e.
    np.testing.assert_allclose(xi.var(0) / h, 1.0, atol=5 * math.sqrt(2 / 20000))


def test_logistic_minibatch_is_unbiased():
    f = make_objective("logistic", n_samples=40, dim=3, noise="minibatch", batch_size=4)
    x = np.array([0.3, -0.2, 0.5])
    rng = np.random.default_rng(1)
    samples = np.stack([f.stochastic_grad(x, rng) for _ in range(20000)])
    se = samples.std(0) / math.sqrt(len(samples))
    assert np.all(np.abs(samples.mean(0) - f.grad(x)) < 5 * se)


def test_reddi_two_point_law_and_online_sequence():
    C, delta = 10.0, 0.1
    f = make_objective("reddi", C=C, delta=delta)
    p = (1 + delta) / (C + 1)
    g = np.concatenate([f.stochastic_grad(np.zeros(1000), s) for s in range(40)])
    assert set(np.unique(g)) == {C, -1.0}
    n = g.size
    var = p * C ** 2 + (1 - p) - delta ** 2
    assert abs(g.mean() - delta) < 5 * math.sqrt(var / n)  # E g = delta > 0: x* = -1
    cyc = make_objective("reddi", mode="cyclic", C=3.0)
    seq = [float(cyc.online_grad(np.zeros(1), t)[0]) for t in range(1, 7)]
    assert seq == [3.0, -1.0, -1.0, 3.0, -1.0, -1.0]
    assert cyc.grad(np.zeros(1))[0] == pytest.approx(np.mean(seq[:3]))
    np.testing.assert_array_equal(f.project(np.array([-3.0, 0.5, 2.0])), [-1.0, 0.5, 1.0])
    with pytest.raises(NotImplementedError):
        make_objective("cosh").online_grad(np.zeros(1), 1)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_preserved(name, dtype):
    f = make_objective(name, **SMALL[name])
    n = f.shape[0] if f.shape else 6
    x = (0.5 * np.random.default_rng(0).standard_normal(n)).astype(dtype)
    if f.shape is None:
        x = x.reshape(2, 3)
    for out in (f.grad(x), f.stochastic_grad(x, 0), f.hvp(x, np.ones_like(x))):
        assert out.dtype == dtype and out.shape == x.shape
    assert f.hessian(x).dtype == dtype
    assert isinstance(f.value(x), float)
    # float32 is computed in float32: agrees with float64 to a few float32 ulps of |g|.
    g64 = f.grad(x.astype(np.float64))
    np.testing.assert_allclose(f.grad(x), g64, rtol=1e-5, atol=1e-5 * np.abs(g64).max())


def test_bad_constants_are_named():
    with pytest.raises(ValueError, match="unknown objective"):
        make_objective("himmelblau")
    with pytest.raises(TypeError, match="unknown constant"):
        make_objective("cosh", dim=3)
    with pytest.raises(ValueError, match="noise must be one of"):
        make_objective("cosh", noise="cauchy")
    with pytest.raises(ValueError, match="noise_df"):
        make_objective("cosh", noise="heavy_tailed", noise_df=2.0)
    with pytest.raises(ValueError, match="condition_number"):
        make_objective("quadratic", condition_number=0.5)
    with pytest.raises(ValueError, match="C must be > 2"):
        make_objective("reddi", C=1.5)
    with pytest.raises(ValueError, match="x must have 6 elements"):
        make_objective("quadratic", dim=6).grad(np.zeros(5))


def test_constrained_and_online_flags():
    assert make_objective("reddi").constrained and not make_objective("cosh").constrained
    assert make_objective("reddi", mode="cyclic").online
    assert not make_objective("reddi").online and not make_objective("quadratic").online
