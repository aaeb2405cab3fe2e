r"""Seeded synthetic objectives with exact gradients and stochastic gradients of a stated noise law.

Every objective is built by :func:`make_objective` from its registry name and constants; all of
its constants (dimension, condition number, Rosenbrock's ``a`` and ``b``, the noise law and scale,
the data seed, ...) are recorded in :attr:`Objective.constants`, a JSON-serialisable dict, so a run
is reproduced from ``(name, constants)`` alone.

=============================  ==========================================================  ==========
name                           f(x)                                                        minimiser
=============================  ==========================================================  ==========
``quadratic``                  :math:`\tfrac12\sum_i h_i x_i^2`, h log-spaced 1..kappa     0
``heterogeneous_quadratic``    same, h log-spaced h_min..h_max (AlphaAdam spec 4.5)        0
``noisy_quadratic``            alias of the above (Gaussian noise; NQM option)             0
``rosenbrock``                 :math:`\sum_i b(x_{i+1}-x_i^2)^2 + (a-x_i)^2`, a=1, b=100   (1,...,1)
``logistic``                   mean logistic loss on seeded data + L2                      by Newton
``cosh``                       :math:`\sum_i \cosh x_i`                                    0
``exp``                        :math:`\sum_i e^{x_i}`                                      none
``quartic``                    :math:`\sum_i x_i^4`                                        0
``logcosh``                    :math:`\sum_i \log\cosh x_i`                                0
``reddi``                      Reddi, Kale, Kumar (2018) online linear counterexample      -1 (box)
=============================  ==========================================================  ==========

Noise laws (``noise`` constant; ``noise_scale`` = sigma is the per-coordinate standard deviation,
so every law has E[xi] = 0 and Var[xi_i] = sigma^2, independent across coordinates and calls):

* ``"none"``: the exact gradient;
* ``"gaussian"``: :math:`\xi_i \sim N(0, \sigma^2)`;
* ``"subgaussian"``: :math:`\xi_i = \sigma\,r_i`, r Rademacher (+-1): bounded, hence sub-Gaussian
  with variance proxy sigma^2 (Hoeffding: P(|xi_i| >= s) <= 2 exp(-s^2 / (2 sigma^2)));
* ``"heavy_tailed"``: :math:`\xi_i = \sigma\sqrt{(\nu-2)/\nu}\,T_\nu`, Student t with ``noise_df``
  = nu > 2 degrees of freedom (default 3: finite variance, infinite fourth moment);
* ``"minibatch"`` (``logistic`` only): the gradient of a uniformly drawn minibatch of
  ``batch_size`` samples (with replacement); unbiased, variance set by the data;
* ``"two_point"`` (``reddi`` only): the paper's own law, see :func:`_reddi`.

The (L0, L1) constants :attr:`Objective.l0l1` are for the Hessian form
:math:`\|\nabla^2 f(x)\| \le L_0 + L_1\|\nabla f(x)\|` (Zhang, He, Sra, Jadbabaie 2019, arXiv
1905.11881), with the spectral norm and the Euclidean norm; the scalar constants are AdamS spec
A11: cosh (1, 1), exp (0, 1), x^4 (12, 3), log cosh (1, 0). For a sum-separable f the Hessian is
diagonal, so :math:`\|\nabla^2 f\| = \max_i |f''(x_i)| \le L_0 + L_1\max_i|f'(x_i)| \le
L_0 + L_1\|\nabla f\|`: the scalar constants carry over to any dimension.

Dtype contract: ``grad``, ``hessian``, ``hvp`` and ``stochastic_grad`` return arrays of x's shape
and dtype, computed in x's dtype (float16/32/64; other dtypes are promoted to float64). ``value``
returns a Python float computed in x's dtype.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

NOISE_LAWS = ("none", "gaussian", "subgaussian", "heavy_tailed")

__all__ = ["NOISE_LAWS", "OBJECTIVES", "Objective", "make_objective"]


def _as_float_array(x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    return a


def _rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator or an int seed, got {type(rng).__name__}")


def additive_noise(law: str, scale: float, df: float, shape: tuple, dtype: np.dtype,
                   rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise with per-coordinate variance ``scale**2`` of the named law (see module doc).

    Drawn in float64 (so a seed gives the same stream for every dtype) and rounded once to ``dtype``.
    """
    if law == "none" or scale == 0.0:
        return np.zeros(shape, dtype=dtype)
    if law == "gaussian":
        xi = rng.standard_normal(shape)
    elif law == "subgaussian":
        xi = rng.integers(0, 2, size=shape) * 2.0 - 1.0
    elif law == "heavy_tailed":
        xi = rng.standard_t(df, size=shape) * math.sqrt((df - 2.0) / df)
    else:  # pragma: no cover - validated in the constructors
        raise ValueError(f"noise must be one of {NOISE_LAWS}, got {law!r}")
    return (scale * xi).astype(dtype)


@dataclass(frozen=True, eq=False)
class Objective:
    r"""A deterministic objective f with its exact derivatives and a stochastic gradient oracle.

    Attributes
    ----------
    name : str
        Registry name (see :data:`OBJECTIVES`).
    constants : dict
        Every constant that defines f and its noise (JSON-serialisable).
    minimizer : ndarray or None
        A global minimiser (float64), where known; ``None`` if none exists or it is unknown. For
        separable objectives of any shape (``shape is None``) it is one coordinate's minimiser as
        a 0-d array; :meth:`minimizer_like` broadcasts it to x's shape.
    min_value : float or None
        :math:`\min f` (the optimal value over the feasible set for ``reddi``), where known; per
        coordinate for separable objectives (see :meth:`min_value_like`).
    l0l1 : (float, float) or None
        (L0, L1) with :math:`\|\nabla^2 f(x)\| \le L_0 + L_1\|\nabla f(x)\|` for all x; ``None``
        when the objective is not claimed to be (L0, L1)-smooth.
    shape : tuple or None
        The required number of elements as ``(n,)`` for objectives with a fixed dimension
        (x may have any shape with that many elements); ``None`` for separable objectives of any
        shape.
    source : str
        Where the objective comes from.
    """

    name: str
    constants: dict
    minimizer: np.ndarray | None
    min_value: float | None
    l0l1: tuple[float, float] | None
    shape: tuple | None
    source: str
    _value: Callable = field(repr=False)
    _grad: Callable = field(repr=False)
    _hessian: Callable | None = field(repr=False, default=None)
    _noisy_grad: Callable | None = field(repr=False, default=None)
    _project: Callable | None = field(repr=False, default=None)
    _online_grad: Callable | None = field(repr=False, default=None)

    # -- exact -------------------------------------------------------------------------------
    def _check(self, x: Any) -> np.ndarray:
        a = _as_float_array(x)
        if self.shape is not None and a.size != self.shape[0]:
            raise ValueError(f"x must have {self.shape[0]} elements for objective {self.name!r} "
                             f"(dim={self.shape[0]}), got shape {a.shape}")
        return a

    def value(self, x: Any) -> float:
        """f(x) as a Python float, computed in x's dtype."""
        a = self._check(x)
        with np.errstate(over="ignore"):
            return float(self._value(a))

    def grad(self, x: Any) -> np.ndarray:
        r"""The exact gradient :math:`\nabla f(x)`, same shape and dtype as x."""
        a = self._check(x)
        with np.errstate(over="ignore"):
            g = self._grad(a)
        return np.asarray(g, dtype=a.dtype).reshape(a.shape)

    def hessian(self, x: Any) -> np.ndarray:
        r"""The dense Hessian :math:`\nabla^2 f(x)` of the flattened x, shape (x.size, x.size)."""
        if self._hessian is None:  # pragma: no cover - every registered objective has one
            raise NotImplementedError(f"objective {self.name!r} has no Hessian")
        a = self._check(x)
        with np.errstate(over="ignore"):
            return np.asarray(self._hessian(a), dtype=a.dtype).reshape(a.size, a.size)

    def hvp(self, x: Any, v: Any) -> np.ndarray:
        r"""The Hessian-vector product :math:`\nabla^2 f(x)\,v`, shaped like x."""
        a = self._check(x)
        vv = np.asarray(v, dtype=a.dtype)
        if vv.size != a.size:
            raise ValueError(f"v must have {a.size} elements like x, got shape {vv.shape}")
        return (self.hessian(a) @ vv.reshape(-1)).reshape(a.shape)

    # -- stochastic --------------------------------------------------------------------------
    def stochastic_grad(self, x: Any, rng: Any = None) -> np.ndarray:
        r"""An unbiased stochastic gradient: :math:`\nabla f(x) + \xi` with the objective's law.

        ``rng`` is a :class:`numpy.random.Generator` (advanced in place) or an int seed. With
        ``noise="none"`` this is :meth:`grad`.
        """
        a = self._check(x)
        gen = _rng(rng)
        if self._noisy_grad is not None:
            with np.errstate(over="ignore"):
                g = self._noisy_grad(a, gen)
            return np.asarray(g, dtype=a.dtype).reshape(a.shape)
        c = self.constants
        noise = additive_noise(c.get("noise", "none"), float(c.get("noise_scale", 0.0)),
                               float(c.get("noise_df", 3.0)), a.shape, a.dtype, gen)
        return self.grad(a) + noise

    def online_grad(self, x: Any, t: int) -> np.ndarray:
        """The gradient of the t-th online loss f_t (t = 1, 2, ...); only for online objectives."""
        if self._online_grad is None:
            raise NotImplementedError(f"objective {self.name!r} is not an online sequence")
        a = self._check(x)
        if int(t) < 1:
            raise ValueError(f"t must be an integer >= 1, got {t!r}")
        return np.asarray(self._online_grad(a, int(t)), dtype=a.dtype).reshape(a.shape)

    def project(self, x: Any) -> np.ndarray:
        """Euclidean projection onto the feasible set (identity for unconstrained objectives)."""
        a = _as_float_array(x)
        return a.copy() if self._project is None else np.asarray(self._project(a), dtype=a.dtype)

    def minimizer_like(self, x: Any) -> np.ndarray | None:
        """The minimiser shaped like x, in x's dtype (None where no minimiser is known)."""
        a = self._check(x)
        if self.minimizer is None:
            return None
        return np.broadcast_to(self.minimizer.astype(a.dtype), a.shape).reshape(a.shape).copy() \
            if self.shape is None else self.minimizer.astype(a.dtype).reshape(a.shape)

    def min_value_like(self, x: Any) -> float | None:
        """min f over x's dimension: ``min_value`` times x.size for separable objectives."""
        a = self._check(x)
        if self.min_value is None:
            return None
        return self.min_value * a.size if self.shape is None else self.min_value

    @property
    def constrained(self) -> bool:
        """True when :meth:`project` is not the identity (``reddi``: the box [-1, 1])."""
        return self._project is not None

    @property
    def online(self) -> bool:
        """True for an online sequence f_1, f_2, ... (:meth:`online_grad`; ``reddi`` cyclic)."""
        return self._online_grad is not None and self.constants.get("mode") == "cyclic"

    @property
    def noise(self) -> str:
        return str(self.constants.get("noise", "none"))


# -- validation ------------------------------------------------------------------------------

def _pos(name: str, value: Any, *, allow_zero: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {value!r}")
    return x


def _int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _noise_constants(c: dict, extra_laws: tuple = ()) -> dict:
    laws = NOISE_LAWS + extra_laws
    if c["noise"] not in laws:
        raise ValueError(f"noise must be one of {list(laws)}, got {c['noise']!r}")
    c["noise_scale"] = _pos("noise_scale", c["noise_scale"], allow_zero=True)
    df = float(c["noise_df"])
    if not math.isfinite(df) or df <= 2.0:
        raise ValueError(f"noise_df must be finite and > 2 (finite variance), got {c['noise_df']!r}")
    c["noise_df"] = df
    return c


_NOISE_DEFAULTS = {"noise": "none", "noise_scale": 1.0, "noise_df": 3.0}


def _merge(name: str, defaults: dict, given: dict) -> dict:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(f"objective {name!r}: unknown constant(s) {unknown}; accepted: "
                        f"{sorted(defaults)}")
    return {**defaults, **given}


# -- quadratics ------------------------------------------------------------------------------

def _diag_quadratic(name: str, h: np.ndarray, c: dict, source: str) -> Objective:
    h = np.asarray(h, dtype=np.float64)
    d = h.size
    hessian_noise = c.get("noise_covariance", "identity") == "hessian"
    noise_std = np.sqrt(h) if hessian_noise else None

    def value(x):
        hx = h.astype(x.dtype).reshape(x.shape)
        return 0.5 * np.sum(hx * x * x)

    def grad(x):
        return h.astype(x.dtype).reshape(x.shape) * x

    def hessian(x):
        return np.diag(h.astype(x.dtype))

    noisy = None
    if hessian_noise:
        def noisy(x, gen):
            xi = additive_noise(c["noise"], c["noise_scale"], c["noise_df"], x.shape, np.float64, gen)
            return grad(x) + (noise_std.reshape(x.shape) * xi).astype(x.dtype)

    return Objective(name=name, constants=c, minimizer=np.zeros(d), min_value=0.0,
                     l0l1=(float(h.max()), 0.0), shape=(d,), source=source,
                     _value=value, _grad=grad, _hessian=hessian, _noisy_grad=noisy)


def _quadratic(**given) -> Objective:
    r"""Ill-conditioned diagonal quadratic :math:`f(x) = \tfrac12\sum_i h_i x_i^2`.

    :math:`h_i = \kappa^{(i-1)/(d-1)}` (log-spaced from 1 to the condition number kappa);
    :math:`\nabla f = h\odot x`, :math:`\nabla^2 f = \mathrm{diag}(h)`; minimiser 0, value 0;
    L-smooth with L = kappa, so (L0, L1) = (kappa, 0).

    Constants: ``dim`` (10), ``condition_number`` (1e3), noise (``none``).
    """
    c = _merge("quadratic", {"dim": 10, "condition_number": 1e3, **_NOISE_DEFAULTS}, given)
    c["dim"] = _int("dim", c["dim"])
    kappa = c["condition_number"] = _pos("condition_number", c["condition_number"])
    if kappa < 1:
        raise ValueError(f"condition_number must be >= 1, got {kappa!r}")
    _noise_constants(c)
    h = np.logspace(0.0, math.log10(kappa), c["dim"]) if c["dim"] > 1 else np.array([1.0])
    return _diag_quadratic("quadratic", h, c, "diagonal quadratic, condition number kappa")


def _heterogeneous_quadratic(name: str = "heterogeneous_quadratic", **given) -> Objective:
    r"""Heterogeneous quadratic of AlphaAdam spec 4.5: :math:`f = \tfrac12\sum_i h_i x_i^2`.

    h log-spaced over [h_min, h_max] = [1e-2, 1e2], d = 1000; stochastic gradient
    :math:`h\odot x + \xi`, :math:`\xi \sim N(0, \sigma^2 I)` with sigma = 1 (spec: "N(0,1)
    noise"). ``noise_covariance="hessian"`` gives instead :math:`\xi = \sqrt{h}\odot\zeta`
    (covariance sigma^2 diag(h): the noisy quadratic model of Zhang et al. 2019, arXiv 1907.04164).
    Minimiser 0, value 0; (L0, L1) = (h_max, 0).
    """
    c = _merge(name, {"dim": 1000, "h_min": 1e-2, "h_max": 1e2, "noise_covariance": "identity",
                      **{**_NOISE_DEFAULTS, "noise": "gaussian"}}, given)
    c["dim"] = _int("dim", c["dim"])
    c["h_min"] = _pos("h_min", c["h_min"])
    c["h_max"] = _pos("h_max", c["h_max"])
    if c["h_max"] < c["h_min"]:
        raise ValueError(f"h_max must be >= h_min, got h_min={c['h_min']!r}, h_max={c['h_max']!r}")
    if c["noise_covariance"] not in ("identity", "hessian"):
        raise ValueError(f"noise_covariance must be 'identity' or 'hessian', got "
                         f"{c['noise_covariance']!r}")
    _noise_constants(c)
    h = np.logspace(math.log10(c["h_min"]), math.log10(c["h_max"]), c["dim"])
    return _diag_quadratic(name, h, c, "AlphaAdam spec 4.5 (arXiv 2501.18094); NQM: Zhang et al. "
                           "2019, arXiv 1907.04164")


def _noisy_quadratic(**given) -> Objective:
    """Alias of ``heterogeneous_quadratic`` (same constants and defaults, Gaussian noise)."""
    return _heterogeneous_quadratic("noisy_quadratic", **given)


# -- Rosenbrock ------------------------------------------------------------------------------

def _rosenbrock(**given) -> Objective:
    r"""Chained Rosenbrock :math:`f(x) = \sum_{i=1}^{d-1} b(x_{i+1}-x_i^2)^2 + (a-x_i)^2`.

    Rosenbrock (1960) with a = 1, b = 100 (not torch-optimizer's b = 1).
    :math:`\partial_i f = -4b x_i(x_{i+1}-x_i^2) - 2(a-x_i) + 2b(x_i - x_{i-1}^2)` (terms that
    exist); the Hessian is tridiagonal. Minimiser: (1, ..., 1) with value 0 when a = 1; for d = 2
    and any a, (a, a^2). Otherwise ``minimizer`` is None. Not claimed (L0, L1)-smooth.

    Constants: ``dim`` (2), ``a`` (1), ``b`` (100), noise (``none``).
    """
    c = _merge("rosenbrock", {"dim": 2, "a": 1.0, "b": 100.0, **_NOISE_DEFAULTS}, given)
    c["dim"] = _int("dim", c["dim"], low=2)
    c["a"] = float(c["a"])
    c["b"] = _pos("b", c["b"])
    _noise_constants(c)
    d = c["dim"]

    def value(x):
        x = x.reshape(-1)
        a, b = x.dtype.type(c["a"]), x.dtype.type(c["b"])
        return np.sum(b * (x[1:] - x[:-1] ** 2) ** 2 + (a - x[:-1]) ** 2)

    def grad(x):
        x = x.reshape(-1)
        a, b = x.dtype.type(c["a"]), x.dtype.type(c["b"])
        g = np.zeros_like(x)
        r = x[1:] - x[:-1] ** 2
        g[:-1] += -4 * b * x[:-1] * r - 2 * (a - x[:-1])
        g[1:] += 2 * b * r
        return g

    def hessian(x):
        x = x.reshape(-1)
        b = x.dtype.type(c["b"])
        H = np.zeros((d, d), dtype=x.dtype)
        i = np.arange(d - 1)
        H[i, i] += 12 * b * x[:-1] ** 2 - 4 * b * x[1:] + 2
        H[i + 1, i + 1] += 2 * b
        H[i, i + 1] = H[i + 1, i] = -4 * b * x[:-1]
        return H

    if c["a"] == 1.0:
        xstar, fstar = np.ones(d), 0.0
    elif d == 2:
        xstar, fstar = np.array([c["a"], c["a"] ** 2]), 0.0
    else:
        xstar, fstar = None, None
    return Objective(name="rosenbrock", constants=c, minimizer=xstar, min_value=fstar, l0l1=None,
                     shape=(d,), source="Rosenbrock 1960, chained form", _value=value,
                     _grad=grad, _hessian=hessian)


# -- logistic regression ---------------------------------------------------------------------

def _logistic(**given) -> Objective:
    r"""L2-regularised logistic regression on seeded synthetic data.

    Data: :math:`A \in R^{n\times d}` with i.i.d. N(0, 1) entries, :math:`w_\star \sim N(0, I)`,
    labels :math:`y_i = \pm 1` with :math:`P(y_i = 1) = \sigma(a_i^\top w_\star)`, all from
    ``numpy.random.default_rng(data_seed)``.

    .. math::

        f(w) = \frac1n\sum_i \log(1 + e^{-y_i a_i^\top w}) + \frac\lambda2\|w\|^2,\quad
        \nabla f = -\frac1n A^\top(y\,\sigma(-y\odot Aw)) + \lambda w,\quad
        \nabla^2 f = \frac1n A^\top \mathrm{diag}(\sigma(1-\sigma)) A + \lambda I.

    f is lambda-strongly convex, so the minimiser is unique; it is computed once, in float64, by
    Newton's method to :math:`\|\nabla f\| < 10^{-12}`. L-smooth with
    :math:`L = \lambda_{max}(A^\top A)/(4n) + \lambda`, so (L0, L1) = (L, 0).

    Constants: ``n_samples`` (200), ``dim`` (10), ``l2`` (1e-2), ``data_seed`` (0),
    ``batch_size`` (10, for ``noise="minibatch"``), noise (``none``).
    """
    c = _merge("logistic", {"n_samples": 200, "dim": 10, "l2": 1e-2, "data_seed": 0,
                            "batch_size": 10, **_NOISE_DEFAULTS}, given)
    n = c["n_samples"] = _int("n_samples", c["n_samples"])
    d = c["dim"] = _int("dim", c["dim"])
    lam = c["l2"] = _pos("l2", c["l2"])
    c["data_seed"] = _int("data_seed", c["data_seed"], low=0)
    c["batch_size"] = _int("batch_size", c["batch_size"])
    _noise_constants(c, extra_laws=("minibatch",))
    gen = np.random.default_rng(c["data_seed"])
    A = gen.standard_normal((n, d))
    w_true = gen.standard_normal(d)
    y = np.where(gen.random(n) < 1.0 / (1.0 + np.exp(-A @ w_true)), 1.0, -1.0)

    def _parts(x, rows=None):
        AA = A.astype(x.dtype) if rows is None else A[rows].astype(x.dtype)
        yy = y.astype(x.dtype) if rows is None else y[rows].astype(x.dtype)
        return AA, yy, yy * (AA @ x.reshape(-1))

    def value(x):
        _, _, z = _parts(x)
        return np.mean(np.logaddexp(x.dtype.type(0), -z)) + x.dtype.type(lam / 2) * np.sum(x * x)

    def _grad_rows(x, rows=None):
        AA, yy, z = _parts(x, rows)
        s = 0.5 * (1 + np.tanh(-z / 2))   # sigma(-z), overflow-free
        return -(AA.T @ (yy * s)) / x.dtype.type(AA.shape[0]) + x.dtype.type(lam) * x.reshape(-1)

    def grad(x):
        return _grad_rows(x)

    def hessian(x):
        AA, _, z = _parts(x)
        s = 0.5 * (1 + np.tanh(z / 2))
        w = s * (1 - s)
        return (AA.T * w) @ AA / x.dtype.type(n) + x.dtype.type(lam) * np.eye(d, dtype=x.dtype)

    noisy = None
    if c["noise"] == "minibatch":
        def noisy(x, g):
            return _grad_rows(x, g.integers(0, n, size=c["batch_size"]))

    w = np.zeros(d)
    for _ in range(100):
        gw = grad(w)
        if np.linalg.norm(gw) < 1e-12:
            break
        w = w - np.linalg.solve(hessian(w), gw)
    L = float(np.linalg.eigvalsh(A.T @ A / n).max()) / 4.0 + lam
    return Objective(name="logistic", constants=c, minimizer=w, min_value=float(value(w)),
                     l0l1=(L, 0.0), shape=(d,), source="synthetic logistic regression",
                     _value=value, _grad=grad, _hessian=hessian, _noisy_grad=noisy)


# -- scalar (L0, L1)-smooth family, sum-separable --------------------------------------------

def _separable(name: str, f, df, d2f, minimizer_value, l0l1, source, given) -> Objective:
    c = _merge(name, dict(_NOISE_DEFAULTS), given)
    _noise_constants(c)

    def hessian(x):
        return np.diag(d2f(x.reshape(-1)))

    # One coordinate's minimiser as a 0-d array: it broadcasts to x's shape (minimizer_like).
    xstar = None if minimizer_value is None else np.zeros(())
    return Objective(name=name, constants=c, minimizer=xstar,
                     min_value=None if minimizer_value is None else minimizer_value,
                     l0l1=l0l1, shape=None, source=source,
                     _value=lambda x: np.sum(f(x)), _grad=df, _hessian=hessian)


def _cosh(**given) -> Objective:
    r""":math:`f(x) = \sum_i \cosh x_i`; :math:`f' = \sinh`, :math:`f'' = \cosh`.

    Minimiser 0 with value x.size (``min_value`` = 1.0 is per coordinate, see ``min_value_like``).
    (L0, L1) = (1, 1) since :math:`\cosh x \le 1 + |\sinh x|` (AdamS spec A11). Used for AdamS
    spec N1: fixed-step gradient descent diverges from x0 = 5 at lr 0.5.
    """
    return _separable("cosh", np.cosh, np.sinh, np.cosh, 1.0, (1.0, 1.0),
                      "AdamS spec A11/N1 (arXiv 2505.16363)", given)


def _exp(**given) -> Objective:
    r""":math:`f(x) = \sum_i e^{x_i}`; :math:`f' = f'' = e^x`. No minimiser (inf 0, not attained).

    (L0, L1) = (0, 1) (AdamS spec A11).
    """
    return _separable("exp", np.exp, np.exp, np.exp, None, (0.0, 1.0),
                      "AdamS spec A11 (arXiv 2505.16363)", given)


def _quartic(**given) -> Objective:
    r""":math:`f(x) = \sum_i x_i^4`; :math:`f' = 4x^3`, :math:`f'' = 12x^2`. Minimiser 0, value 0.

    (L0, L1) = (12, 3): :math:`12x^2 \le 12` for |x| <= 1 and :math:`\le 12|x|^3 = 3|f'|` beyond
    (AdamS spec A11). Not L-smooth for any L.
    """
    return _separable("quartic", lambda x: x ** 4, lambda x: 4 * x ** 3, lambda x: 12 * x ** 2,
                      0.0, (12.0, 3.0), "AdamS spec A11 (arXiv 2505.16363)", given)


def _log_cosh(x):
    # log cosh x = |x| + log1p(e^{-2|x|}) - log 2, overflow-free.
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2 * ax)) - x.dtype.type(math.log(2.0))


def _logcosh(**given) -> Objective:
    r""":math:`f(x) = \sum_i \log\cosh x_i`; :math:`f' = \tanh`, :math:`f'' = 1 - \tanh^2`.

    Minimiser 0, value 0. (L0, L1) = (1, 0) (AdamS spec A11).
    """
    return _separable("logcosh", _log_cosh, np.tanh, lambda x: 1 - np.tanh(x) ** 2, 0.0,
                      (1.0, 0.0), "AdamS spec A11 (arXiv 2505.16363)", given)


# -- Reddi et al. online counterexample ------------------------------------------------------

def _reddi(**given) -> Objective:
    r"""The online linear counterexample of Reddi, Kale, Kumar (ICLR 2018, "On the convergence
    of Adam and beyond"), on the feasible set [-1, 1] (x of any shape, coordinatewise).

    * ``mode="stochastic"`` (Theorem 3): :math:`f_t(x) = C x` with probability
      :math:`p = (1+\delta)/(C+1)`, else :math:`-x`. ``stochastic_grad`` draws :math:`g \in
      \{C, -1\}` with these probabilities (``noise="two_point"``): mean
      :math:`pC - (1-p) = \delta`, variance :math:`p C^2 + (1-p) - \delta^2`.
      ``value`` is the expected loss :math:`F(x) = \delta x`.
    * ``mode="cyclic"`` (Theorem 1): :math:`f_t(x) = C x` for t mod 3 = 1, else :math:`-x`
      (``online_grad(x, t)``); ``value`` is the average loss :math:`F(x) = (C-2)x/3`.

    In both modes the optimum over [-1, 1] is x = -1 with value :math:`-\delta` (stochastic) or
    :math:`-(C-2)/3` per coordinate (cyclic; requires C > 2); Adam with small beta2 drifts to +1.
    ``project`` clips to [-1, 1]. The gradient is constant, so the Hessian is 0 and (L0, L1) =
    (0, 0). An additive law (``gaussian``, ``heavy_tailed``, ...) can replace ``two_point``:
    then g = E[g] + xi.

    Constants: ``mode`` ("stochastic"), ``C`` (10), ``delta`` (0.1), noise (``two_point``).
    """
    c = _merge("reddi", {"mode": "stochastic", "C": 10.0, "delta": 0.1,
                         **{**_NOISE_DEFAULTS, "noise": "two_point"}}, given)
    if c["mode"] not in ("stochastic", "cyclic"):
        raise ValueError(f"mode must be 'stochastic' or 'cyclic', got {c['mode']!r}")
    C = c["C"] = _pos("C", c["C"])
    if C <= 2:
        raise ValueError(f"C must be > 2 (so that x = -1 is optimal), got {C!r}")
    delta = c["delta"] = _pos("delta", c["delta"])
    _noise_constants(c, extra_laws=("two_point",))
    if c["mode"] == "stochastic":
        p = (1.0 + delta) / (C + 1.0)
        if p >= 1.0:
            raise ValueError(f"delta must be < C (so that p = (1+delta)/(C+1) < 1), got {delta!r}")
        slope = delta
    else:
        p = 1.0 / 3.0
        slope = (C - 2.0) / 3.0
    c["p"] = p

    def value(x):
        return np.sum(x.dtype.type(slope) * x)

    def grad(x):
        return np.full(x.shape, slope, dtype=x.dtype)

    def hessian(x):
        return np.zeros((x.size, x.size), dtype=x.dtype)

    noisy = None
    if c["noise"] == "two_point":
        def noisy(x, gen):
            return np.where(gen.random(x.shape) < p, C, -1.0).astype(x.dtype)

    def online(x, t):
        return np.full(x.shape, C if t % 3 == 1 else -1.0, dtype=x.dtype)

    # The constrained optimum -1 (one coordinate, 0-d): the gradient there is not 0.
    return Objective(name="reddi", constants=c, minimizer=np.array(-1.0), min_value=-slope, l0l1=(0.0, 0.0),
                     shape=None, source="Reddi, Kale, Kumar 2018 (ICLR), Theorems 1 and 3",
                     _value=value, _grad=grad, _hessian=hessian, _noisy_grad=noisy,
                     _project=lambda x: np.clip(x, -1.0, 1.0), _online_grad=online)


OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "quadratic": _quadratic,
    "heterogeneous_quadratic": _heterogeneous_quadratic,
    "noisy_quadratic": _noisy_quadratic,
    "rosenbrock": _rosenbrock,
    "logistic": _logistic,
    "cosh": _cosh,
    "exp": _exp,
    "quartic": _quartic,
    "logcosh": _logcosh,
    "reddi": _reddi,
}


def make_objective(name: str, **constants: Any) -> Objective:
    """Build the objective ``name`` of :data:`OBJECTIVES` with the given constants.

    Unknown names or constants raise with the list of accepted ones; every constant (given or
    default) is recorded in ``Objective.constants``. ``name`` may be an import path
    ``"module:attr"`` naming an Objective or a factory ``(**constants) -> Objective``
    (``refopt.extend``).

    Examples
    --------
    >>> import numpy as np
    >>> f = make_objective("rosenbrock")
    >>> f.constants["b"], f.value(np.array([1.0, 1.0]))
    (100.0, 0.0)
    """
    from .extend import is_import_path, objective_from_path

    if is_import_path(name):
        return objective_from_path(name, constants)
    key = str(name).lower()
    if key not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; known: {sorted(OBJECTIVES)}, or an import "
                         f"path 'module:attr' of an Objective or a factory returning one")
    return OBJECTIVES[key](**constants)
