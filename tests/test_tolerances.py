"""float32 golden tolerances: tight enough to fail the known mistakes, loose enough for every
legitimate implementation (FORMAT.md section 5, "The per-coordinate bound of float32 cases").

A float32 case's tolerance is atol + rtol|golden| capped, per element, by the ``scaled`` bound
k_b * unit * S (unit = 2^-24, S the element's largest magnitude so far accumulated over the
steps, k_b measured per case and buffer with a 10x margin).

**Applicable** (the definition FORMAT.md states): a known mistake is applicable to a float32
case when its own effect exceeds what a legitimate float32 implementation can produce. Its
effect is |mutant - reference| with both run in **float64** on the case's inputs (exact in
float64: the inputs are dyadic), so it contains no float32 rounding. What a legitimate float32
implementation can produce, at each compared element (params and every buffer, at every stored
step up to the pointwise horizon), is MARGIN (10) x the legitimate envelope: the largest
|x - golden| over the implementations of ``tolerances.LEGITIMATE``, floored at one float32 ulp
of |golden| (a port may always round its last operation the other way). A mistake whose effect
stays inside that everywhere (lr*|du| far below ulp(p), decay placement with lr*wd ~ 1e-5) cannot
be told from rounding by any tolerance that admits the legitimate ones. A mistake **fails** a case
when refopt's float32 mutant of it (``refopt.verify.diagnose.MISTAKES``; every reading of it, where
it has several) leaves the case's tolerance at some recorded step up to the pointwise horizon.

The full measurement runs every float32 case (slow); ``test_fast_subset_*`` runs a few by
default. The fractions at the stricter threshold (effect > 1x the envelope) are printed with
``-s`` for information.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import refopt
from refopt.golden import SUITE_DIR, load_suite
from refopt.golden import mp_reference as MP
from refopt.golden import tolerances as TOL
from refopt.registry import RULES, canonical_name
from refopt.verify.compare import compare_trajectories, history_scale, violation
from refopt.verify.diagnose import mistakes_for

PORTS = Path(__file__).parent / "ports"
SUITE = SUITE_DIR
UNIT32 = 2.0 ** -24
REQUIRED_FRACTION = 0.8

#: A few float32 cases that run by default: explicit (defaults, decay, schedule, epsscale) and
#: closed loop, for each rule with known mistakes.
FAST_CASES = ("adamx_official_defaults_float32", "adamx_official_decay_float32",
              "adams_official_defaults_float32", "adams_paper_schedule_float32",
              "alphaadam_paper-v1_decay_float32", "adams_paper_logcosh_float32")


@functools.lru_cache(maxsize=None)
def _cases() -> dict:
    return {c.case_id: c for c in load_suite("*", dtype="float32", directory=SUITE)
            if c.result != "invalid"}


def _case(case_id):
    cases = _cases()
    if case_id not in cases:
        pytest.skip(f"{case_id} is not in the committed suite")
    return cases[case_id]


def _buffers(case) -> tuple:
    return tuple(RULES[canonical_name(case.rule)].cls.buffers)


def _expected(case) -> dict:
    return {"param": case.expected_params,
            **{b: case.expected_state[b] for b in _buffers(case)}}


def run_rule(rule, case, dtype=None) -> dict:
    """A refopt rule instance (reference, mutant or any backend) on the case, in ``dtype``
    (default: the case's), at the recorded steps: {"param": [...], buffer: [...]}."""
    dt = np.dtype(dtype or case.dtype)
    names = _buffers(case)
    p = [np.array(x, dtype=dt, copy=True) for x in case.init_params]
    state = rule.init(p)
    recorded = {int(s) for s in case.steps}
    hist = {"param": [[x.copy()] for x in p], **{b: [[np.zeros_like(x)] for x in p] for b in names}}
    for t in range(1, int(case.n_steps) + 1):
        if case.grads is not None:
            g = [np.array(gg[t - 1], dtype=dt) for gg in case.grads]
        else:
            g = [np.asarray(x, dtype=dt) for x in case.grad_fn([x.copy() for x in p], t)]
        lr = case.lr_schedule[t - 1] if case.lr_schedule is not None else case.hyper["lr"]
        p, state = rule.step(p, g, state, lr=lr)
        if t in recorded:
            for i, x in enumerate(p):
                hist["param"][i].append(np.array(x, copy=True))
                for b in names:
                    hist[b][i].append(np.array(getattr(state, b)[i], copy=True))
    return {k: [np.stack(v) for v in vs] for k, vs in hist.items()}


def _as_float64(case):
    f = lambda xs: [np.asarray(x, np.float64) for x in xs]  # noqa: E731 (exact: dyadic)
    return dataclasses.replace(
        case, dtype="float64", init_params=f(case.init_params),
        grads=None if case.grads is None else f(case.grads),
        expected_params=f(case.expected_params),
        expected_state={k: (v if k == "step" else f(v)) for k, v in case.expected_state.items()})


def _spec(case):
    """What tolerances.measure_legitimate reads, from the loaded case (not the catalogue)."""
    return SimpleNamespace(rule=case.rule, hyper=case.hyper, dtype=case.dtype,
                           init=case.init_params, grads=case.grads, objective=case.objective,
                           n_steps=case.n_steps, lr_schedule=case.lr_schedule)


def _payload(case) -> dict:
    arrays = {"steps": np.asarray(case.steps)}
    for name, per_tensor in _expected(case).items():
        for i, a in enumerate(per_tensor):
            arrays[f"{name}.{i}"] = np.asarray(a)
    return arrays


def _legit_runs(case) -> list:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return TOL.measure_legitimate(_spec(case), _payload(case))


@functools.lru_cache(maxsize=None)
def analyse(case_id: str) -> dict:
    """For one float32 case: the legitimate runs' verdicts and, per known mistake, its effect in
    units of the legitimate envelope and whether its float32 mutant fails the case."""
    case = _cases()[case_id]
    steps = np.asarray(case.steps)
    inside = steps <= case.tolerance["pointwise_horizon"]
    expected = _expected(case)
    runs = _legit_runs(case)
    envelope = {}
    for r in runs:
        for key, got in r["got"].items():
            e, a = np.asarray(r["expected"][key], np.float64), np.asarray(got, np.float64)
            err = np.where((a == e) | (np.isnan(a) & np.isnan(e)), 0.0, np.abs(a - e))
            envelope[key] = err if key not in envelope else np.maximum(envelope[key], err)
    for key in envelope:
        name, i = key.split(".")
        gold = np.asarray(expected[name][int(i)], np.float32)
        ulp = np.spacing(np.abs(gold)).astype(np.float64)
        envelope[key] = np.maximum(envelope[key], np.where(np.isfinite(ulp), ulp, np.inf))
    legit = {}
    for r in runs:
        got = {name: [r["got"][f"{name}.{i}"] for i in range(len(case.init_params))]
               for name in expected}
        legit[r["label"]] = compare_trajectories(expected, got, steps, case.tolerance,
                                                 case.dtype).passed
    c64 = _as_float64(case)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ref64 = run_rule(refopt.get_rule(case.rule, **case.hyper), c64)
        mistakes = {}
        for m in mistakes_for(case):
            try:
                built, built64 = m.build(case), m.build(c64)
            except (ValueError, TypeError) as exc:
                mistakes[m.key] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            built = built if isinstance(built, list) else [built]
            built64 = built64 if isinstance(built64, list) else [built64]
            effect, fails, fails_allclose = 0.0, True, True
            for mut, mut64 in zip(built, built64):
                hist = run_rule(mut, case)
                fails &= not compare_trajectories(expected, hist, steps, case.tolerance,
                                                  case.dtype).passed
                plain = {k: v for k, v in case.tolerance.items() if k != "scaled"}
                fails_allclose &= not compare_trajectories(expected, hist, steps, plain,
                                                           case.dtype).passed
                h64 = run_rule(mut64, c64)
                for name in ref64:
                    for i in range(len(ref64[name])):
                        d = np.abs(h64[name][i] - ref64[name][i])[inside]
                        env = envelope[f"{name}.{i}"][inside]
                        with np.errstate(all="ignore"):
                            q = np.where(d == 0, 0.0, d / env)
                        q = np.where(np.isnan(q), np.inf, q)
                        if q.size:
                            effect = max(effect, float(np.max(q)))
            mistakes[m.key] = {"effect": effect, "fails": fails, "fails_allclose": fails_allclose}
    return {"legit": legit, "mistakes": mistakes}


def _fractions(case_ids, threshold=TOL.MARGIN) -> dict:
    """Per mistake: [failed applicable, applicable, cases where it applies at all, the
    applicable cases it passes, applicable cases failed under atol + rtol alone]."""
    out: dict = {}
    for cid in case_ids:
        for key, m in analyse(cid)["mistakes"].items():
            if "error" in m:
                continue
            n = out.setdefault(key, [0, 0, 0, [], 0])
            n[2] += 1
            if m["effect"] > threshold:
                n[1] += 1
                n[0] += m["fails"]
                n[4] += m["fails_allclose"]
                if not m["fails"]:
                    n[3].append(cid)
    return out


def _report(title, fractions) -> str:
    lines = [title]
    for key, (f, a, n, missed, before) in sorted(fractions.items()):
        share = f"{f / a:.2f}" if a else "-"
        lines.append(f"  {key:26s} fails {f:3d} of {a:3d} applicable ({share}; atol + rtol "
                     f"alone: {before}); applies to {n} cases; passes: {missed}")
    return "\n".join(lines)


def _check_fractions(case_ids):
    strict = _fractions(case_ids, 1.0)
    print("\n" + _report("effect > 1x the legitimate envelope (information)", strict))
    frac = _fractions(case_ids)
    print(_report(f"effect > {TOL.MARGIN:g}x the legitimate envelope (applicable)", frac))
    assert frac, "no known mistake applies to these cases"
    for key, (failed, applicable, *_) in frac.items():
        if applicable:
            assert failed >= REQUIRED_FRACTION * applicable, _report("", frac)
    return frac


# -- the comparison rule itself -------------------------------------------------------------

def test_history_scale_by_hand():
    e = np.array([[1.0, -0.0], [-3.0, np.inf], [2.0, 4.0]])
    got = history_scale(e, [0, 1, 3])
    # H = running max |e| (finite only): [1, 0], [3, 0], [3, 4]; S_k = sum (dt * H_j).
    assert got.tolist() == [[0.0, 0.0], [3.0, 0.0], [9.0, 8.0]]
    with pytest.raises(ValueError):
        history_scale(e, [0, 1])


def test_violation_takes_the_smaller_bound_only_with_steps_and_buffer():
    tol = {"mode": "allclose", "rtol": 1e-4, "atol": 1e-5,
           "scaled": {"unit": UNIT32, "k": {"param": 8.0, "exp_avg": None}, "statement": "x"}}
    expected = np.array([[1.0], [1.0]], dtype=np.float32)
    actual = expected.copy()
    actual[1] += np.float32(1e-6)                   # 8 ulps: inside atol + rtol (1.1e-4)
    assert np.max(violation(actual, expected, tol)) < 1                      # allclose only
    v = violation(actual, expected, tol, steps=[0, 1], buffer="param")
    assert v[1, 0] > 1                               # 8 * 2^-24 * 1 = 4.8e-7 < 1e-6
    assert np.max(violation(actual, expected, tol, steps=[0, 1], buffer="exp_avg")) < 1
    assert np.max(violation(actual, expected, tol, steps=[0, 1], buffer="exp_avg_sq")) < 1
    near = expected.copy()
    near[1] += np.float32(2.4e-7)                    # 2 ulps: inside 8 unit roundoffs
    assert np.max(violation(near, expected, tol, steps=[0, 1], buffer="param")) <= 1
    cmp = compare_trajectories({"param": [expected]}, {"param": [actual]}, np.array([0, 1]),
                               tol, "float32")
    assert not cmp.passed and cmp.first_divergence.step == 1


def test_committed_float32_cases_carry_the_measured_scaled_bound():
    """Every valid float32 case has the bound for params and each buffer, k = max(K_FLOOR,
    ceil(10 x the legitimate worst err/(unit*S))); float64 cases have none."""
    checked = 0
    for case in load_suite("*", directory=SUITE):
        tol = case.tolerance
        if case.result == "invalid" or case.dtype == "float64":
            assert "scaled" not in tol, case.case_id
            continue
        checked += 1
        scaled, meas = tol["scaled"], tol["measured"]
        assert scaled["unit"] == UNIT32 and "accumulates" in scaled["statement"]
        assert set(scaled["k"]) == {"param", *_buffers(case)}, case.case_id
        for buf, k in scaled["k"].items():
            ratio = meas["scaled_legit_worst_ratio"][buf]
            assert k is not None and math.isfinite(ratio), (case.case_id, buf)
            assert k == max(TOL.K_FLOOR, math.ceil(TOL.MARGIN * ratio)), (case.case_id, buf)
            assert k >= TOL.MARGIN * ratio and k >= TOL.K_FLOOR
        assert "per coordinate" in tol["reason"], case.case_id
    assert checked >= 50


# -- fast subset (default run) ----------------------------------------------------------------

def test_fast_subset_mistakes_fail_the_applicable_cases():
    ids = [cid for cid in FAST_CASES if cid in _cases()]
    assert len(ids) >= 4
    frac = _check_fractions(ids)
    # The bound is what catches them: some mistakes pass atol + rtol alone here.
    tightened = [(cid, key) for cid in ids for key, m in analyse(cid)["mistakes"].items()
                 if m.get("fails") and not m.get("fails_allclose")]
    assert tightened, "the scaled bound catches nothing that atol + rtol alone misses"
    assert frac["eps_inside_sqrt"][1] >= 3 and frac["wd_after_step"][1] >= 3


def test_fast_subset_legitimate_runs_pass():
    for cid in FAST_CASES:
        if cid in _cases():
            assert all(analyse(cid)["legit"].values()), (cid, analyse(cid)["legit"])


@pytest.mark.parametrize("case_id", FAST_CASES[:4] + ("adamx_official_logcosh_float32",
                                                      "alphaadam_paper-v1_logcosh_float32"))
def test_unseen_faithful_implementations_pass_the_scaled_bound(case_id):
    """Out of sample: faithfully rounded runs with seeds the builder never used, in both
    operation orders, pass the full float32 tolerance (scaled bound included)."""
    case = _case(case_id)
    steps = [int(s) for s in case.steps]
    expected = _expected(case)
    for seed, reorder in ((2000, False), (2001, True), (2002, False), (2003, True)):
        A = MP.FloatArith(case.dtype, reorder=reorder, faithful_seed=seed)
        run = MP.run(A, case.rule, TOL._full_hyper(_spec(case)), case.init_params,
                     case.gradient_source(), case.n_steps, case.lr_schedule, record=steps,
                     as_array=MP.float_array(case.dtype))
        got = {name: [np.array([np.reshape(run[s][f"{name}.{i}"], gold.shape[1:])
                                for s in steps], dtype=case.dtype)
                      for i, gold in enumerate(per)] for name, per in expected.items()}
        cmp = compare_trajectories(expected, got, np.asarray(steps), case.tolerance, case.dtype)
        assert cmp.passed, (case_id, seed, cmp.first_divergence, cmp.score)


def test_fast_subset_numba_passes():
    pytest.importorskip("numba")
    from refopt.verify import verify_cases

    cases = [_cases()[cid] for cid in FAST_CASES if cid in _cases()]
    for rule in sorted({c.rule for c in cases}):
        rep = verify_cases([c for c in cases if c.rule == rule], "numba", diagnose=False)
        assert rep.passed, rep.table()


# -- the whole float32 suite (slow) -----------------------------------------------------------

@pytest.mark.slow
def test_known_mistakes_fail_most_applicable_float32_cases():
    """Every known mistake fails >= 80 % of the float32 cases where it is applicable."""
    frac = _check_fractions(sorted(_cases()))
    assert sum(n[1] for n in frac.values()) >= 200


@pytest.mark.slow
def test_legitimate_runs_pass_every_float32_case():
    bad = [(cid, label) for cid in sorted(_cases())
           for label, ok in analyse(cid)["legit"].items() if not ok]
    assert not bad


def _torch_ports():
    pytest.importorskip("torch", reason="torch is optional (extra refopt[torch])")
    sys.path.insert(0, str(PORTS))
    import torch_ports

    return torch_ports


def _optax_ports():
    pytest.importorskip("jax", reason="jax/optax are optional")
    pytest.importorskip("optax", reason="jax/optax are optional")
    sys.path.insert(0, str(PORTS))
    import optax_ports

    return optax_ports


LEGIT_PORTS = [
    ("adamx", "torch", "AdamX", None), ("adams", "torch", "AdamS", None),
    ("adams", "torch", "AdamSFused", None), ("alphaadam", "torch", "AlphaAdam", None),
    ("adamx", "optax", "adamx", None), ("adams", "optax", "adams", None),
    ("alphaadam", "optax", "alphaadam", None),
    ("adam", "torch.optim", "Adam", {"foreach": False}),
    ("adam", "torch.optim", "Adam", {"fused": True}),
    ("adamw", "torch.optim", "AdamW", {"foreach": True}),
    ("adamw", "torch.optim", "AdamW", {"fused": True}),
] + [(rule, "numba", "numba", None) for rule in sorted(RULES)]


@pytest.mark.slow
@pytest.mark.parametrize("rule,kind,name,options", LEGIT_PORTS,
                         ids=[f"{r}-{k}-{n}-{o}" for r, k, n, o in LEGIT_PORTS])
def test_legitimate_implementation_passes_every_float32_case(rule, kind, name, options):
    """refopt's torch and optax test ports (stock torch: its float32 sqrt is not correctly
    rounded), torch.optim's own Adam/AdamW (single-tensor, foreach and fused CPU kernels) and
    the numba backend pass every float32 case they can express."""
    from refopt.verify import verify_cases

    cases = [c for c in _cases().values() if canonical_name(c.rule) == rule]
    if not cases:
        pytest.skip(f"no float32 case of {rule}")
    if kind == "torch":
        port = getattr(_torch_ports(), name)
    elif kind == "optax":
        port = getattr(_optax_ports(), name)
    elif kind == "torch.optim":
        torch = pytest.importorskip("torch")
        port = getattr(torch.optim, name)
    else:
        pytest.importorskip("numba")
        port = "numba"
    rep = verify_cases(cases, port, options=options, diagnose=False)
    assert rep.passed, rep.table()
    if kind in ("numba", "torch.optim"):
        assert len(rep.counted) == len(cases)
