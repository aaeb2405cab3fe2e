"""The in-memory form of one golden case, shared by the suite builder and ``refopt verify``.

A case fixes a rule, its variant options and hyperparameters, the initial params, the gradient
stream (explicit) or the objective that supplies it (closed loop), and the expected params and
state at the recorded steps. The on-disk format (JSON manifest + .npz) is documented in
``refopt/golden/FORMAT.md``; this class is what a loaded case looks like.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass
class GoldenCase:
    """One golden case.

    Attributes
    ----------
    case_id : str
        Unique, Wycheproof-style name: ``<rule>_<variant>_<objective>_<dtype>``.
    rule : str
        A :func:`refopt.get_rule` name.
    options : dict
        Every variant option of the rule (e.g. ``{"bias_correction": False}``).
    hyper : dict
        lr, betas, eps, weight_decay (Python floats / tuples) and the rule's other options;
        ``get_rule(rule, **hyper)`` rebuilds the rule (``options`` is a subset of ``hyper``).
    dtype : str
        ``"float64"`` or ``"float32"``: the dtype of params, grads and state.
    tolerance : dict
        ``{"mode", "rtol", "atol", "max_ulp", "pointwise_horizon", "reason"}`` for this dtype.
    init_params : list of ndarray
        Initial values, one per tensor.
    grads : list of ndarray or None
        Explicit stream, one per tensor shaped (T, *shape); None for closed-loop cases.
    grad_fn : callable or None
        Closed loop: ``grad_fn(params, t) -> list of arrays`` (from ``objective``).
    objective : dict or None
        The closed-loop objective's name and every constant.
    lr_schedule : list of float or None
        eta_t for t = 1..T, or None for the constant ``hyper["lr"]``.
    n_steps : int
        T.
    steps : ndarray of int64
        Recorded step indices (0 first, T last).
    expected_params : list of ndarray
        One per tensor, shaped (len(steps), *shape).
    expected_state : dict
        Buffer name -> list of arrays in the same form; ``"step"`` -> list of int64 (len(steps),).
    flags : list of str
        Wycheproof-style flags (``FirstStep``, ``ZeroGrad``, ``SignFlip``, ``MaskTie``, ...).
    result : str
        ``"valid"`` (a port must reproduce it), ``"invalid"`` (a port must raise) or
        ``"acceptable"``.
    manifest : dict
        The full JSON manifest as loaded.

    Invalid cases also expose :attr:`expected_error` (the manifest's block: ``exception``,
    ``parameter``, ``message_regex``, ``kind``, ``why``) and :attr:`invalid_kind`.
    """

    case_id: str
    rule: str
    options: dict
    hyper: dict
    dtype: str
    tolerance: dict
    init_params: list
    grads: list | None
    n_steps: int
    steps: np.ndarray
    expected_params: list
    expected_state: dict
    grad_fn: Callable[[list, int], list] | None = None
    objective: dict | None = None
    lr_schedule: list | None = None
    flags: list = field(default_factory=list)
    result: str = "valid"
    manifest: dict = field(default_factory=dict)

    @property
    def expected_error(self) -> dict | None:
        """The manifest's ``expected_error`` (None for valid and acceptable cases)."""
        return self.manifest.get("expected_error")

    @property
    def invalid_kind(self) -> str | None:
        """``"undefined"`` (the rule has no value there: a port must refuse), ``"policy"`` (the
        update is defined, refopt is stricter: advisory) or None (not an invalid case, or a
        manifest from before the field existed)."""
        return (self.expected_error or {}).get("kind")

    def gradient_source(self) -> Any:
        """What :func:`refopt.trajectory` takes as ``grads``: the stream or the closed-loop fn."""
        return self.grads if self.grads is not None else self.grad_fn
