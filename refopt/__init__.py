"""refopt: the float64 reference, golden outputs and theory checks for three Adam variants.

* AdamX / AdamNX (Zhu, Xiao, Min 2025, arXiv 2511.13465): ``get_rule("adamx")``
* AdamS (Zhang, Wang, Chen 2025, arXiv 2505.16363): ``get_rule("adams")``
* AlphaAdam (Chang, Li, Yuan 2025, arXiv 2501.18094): ``get_rule("alphaadam")``

plus the baselines ``adam``, ``adamw``, ``cadamw``, ``adax`` and ``sgdm``.

An AdamS step (paper form)::

    >>> import numpy as np, refopt
    >>> rule = refopt.get_rule("adams", lr=0.1, weight_decay=0.1)
    >>> params = [np.array([1.0])]
    >>> state = rule.init(params)
    >>> params, state = rule.step(params, [np.array([1.0])], state)
    >>> round(float(params[0][0]), 10)
    0.9452786425
"""
from ._validation import HorizonWarning, HyperparameterWarning, PrecisionWarning
from .registry import RULES, get_rule
from .trajectory import Trajectory, trajectory

__version__ = "0.1.0"
__all__ = ["RULES", "HorizonWarning", "HyperparameterWarning", "PrecisionWarning", "Trajectory",
           "get_rule", "trajectory", "__version__"]
