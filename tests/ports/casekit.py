"""Small golden cases built from ``refopt.trajectory`` (the tests' own, independent of the suite).

Explicit-gradient cases draw gradients of mixed magnitude (1e-3 .. 1) so that eps placement and
bias correction both show; closed-loop cases run on a quadratic with a fixed diagonal curvature.
"""
from __future__ import annotations

import warnings

import numpy as np

import refopt
from refopt.golden.case import GoldenCase

# Same dtype, different operation order (torch/XLA may fuse or reorder): float64 agrees to
# ~1e-13 relative over 30 steps; float32 to a few ulp per step, ~1e-5 over 30 steps.
TOL = {"float64": {"mode": "allclose", "rtol": 1e-10, "atol": 1e-13, "max_ulp": None,
                   "pointwise_horizon": None, "reason": "same dtype, other op order"},
       "float32": {"mode": "allclose", "rtol": 1e-5, "atol": 1e-7, "max_ulp": None,
                   "pointwise_horizon": None, "reason": "same dtype, other op order"}}

SHAPES = [(5,), (2, 3)]
HYPER = {"adamx": dict(lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1),
         "adams": dict(lr=0.05, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
         "alphaadam": dict(lr=0.05, betas=(0.9, 0.999), weight_decay=0.1)}


def _gradients(seed, n_steps, dtype):
    rng = np.random.default_rng(seed)
    out = []
    for shape in SHAPES:
        scale = 10.0 ** rng.uniform(-3, 0, size=shape)
        out.append((rng.standard_normal((n_steps,) + shape) * scale).astype(dtype))
    return out


def make_case(rule, dtype="float64", *, n_steps=12, closed_loop=False, schedule=False,
              seed=0, record_every=1, **options):
    hyper = {**HYPER[rule], **options}
    full = dict(refopt.get_rule(rule, **hyper).hyper)
    rng = np.random.default_rng(100 + seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    lr_schedule = None
    if schedule:
        lr_schedule = [hyper["lr"] * min(1.0, t / 4) for t in range(1, n_steps + 1)]
    if closed_loop:
        curv = [np.linspace(0.5, 2.0, int(np.prod(s))).reshape(s).astype(dtype) for s in SHAPES]

        def grad_fn(params, t):
            return [(c * p).astype(dtype) for c, p in zip(curv, params)]
        source, grads = grad_fn, None
    else:
        grads = _gradients(seed, n_steps, dtype)
        source, grad_fn = grads, None
    with warnings.catch_warnings():  # short golden-style runs, on purpose
        warnings.simplefilter("ignore", refopt.HorizonWarning)
        tr = refopt.trajectory(rule, init, source, steps=n_steps, lr_schedule=lr_schedule,
                               record_every=record_every, **hyper)
    variant = "-".join(f"{k}={v}" for k, v in sorted(options.items())) or "default"
    kind = "quadratic" if closed_loop else "explicit"
    return GoldenCase(
        case_id=f"{rule}_{variant}_{kind}{'_sched' if schedule else ''}_{dtype}",
        rule=rule, options={k: full[k] for k in options}, hyper=full, dtype=dtype,
        tolerance=dict(TOL[dtype]), init_params=init, grads=grads, n_steps=n_steps,
        steps=tr.steps, expected_params=tr.params, expected_state=tr.state, grad_fn=grad_fn,
        lr_schedule=lr_schedule)


def invalid_case(rule, dtype="float64", **bad):
    """A case a conforming port must refuse (beta2 = 1, lr < 0, ...)."""
    case = make_case(rule, dtype, n_steps=2)
    case.hyper = {**case.hyper, **bad}
    case.result = "invalid"
    case.case_id = f"{rule}_invalid-{'-'.join(bad)}_{dtype}"
    return case
