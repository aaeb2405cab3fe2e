r"""A custom objective for ``lion_vs_adams.json``, built with ``refopt.extend.define_objective``.

The pseudo-Huber loss :math:`f(x) = \sum_i (\sqrt{1 + x_i^2} - 1)`: quadratic near 0, linear far
out, so a sign method (Lion) and a normalised one (AdamS) both make steady progress from far away.
:math:`f'(x) = x/\sqrt{1+x^2}`, :math:`f''(x) = (1+x^2)^{-3/2} \le 1`: L-smooth with L = 1, so
(L0, L1) = (1, 0). Minimiser 0, minimum 0, any dimension (separable).

``pseudo_huber(**constants)`` is a factory: the sweep spec passes its ``constants``
(``noise``, ``noise_scale``) to it.
"""
from __future__ import annotations

import numpy as np

from refopt.extend import define_objective


def _value(x):
    return np.sum(np.sqrt(1 + x * x) - 1)


def _grad(x):
    return x / np.sqrt(1 + x * x)


def _hessian(x):
    return np.diag(((1 + x * x) ** -1.5).reshape(-1))


def pseudo_huber(noise: str = "none", noise_scale: float = 1.0):
    """The pseudo-Huber objective with the given gradient noise (refopt's noise laws)."""
    return define_objective("pseudo_huber", _value, _grad, hessian=_hessian, l0l1=(1.0, 0.0),
                            minimizer=0.0, min_value=0.0, noise=noise, noise_scale=noise_scale,
                            source="examples/sweeps/my_objective.py")
