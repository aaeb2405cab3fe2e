"""The fused numba kernels against the float64 NumPy reference (issue 4).

Parity claims and their tolerances:

* float64 and float32: **bitwise** equal to the NumPy reference run in the same dtype, params and
  every state buffer and AlphaAdam's mask/alpha/kept, for every rule and variant option: the
  kernels use the reference's scalars (cast once), operation order and parenthesisation, with
  fastmath off (shared/guides/kernels.md, "Parity conditions").
* Exception: AlphaAdam ``alpha_rule="norm"``. Its two float64 sums of squares are added in fixed
  blocks, not in NumPy's pairwise order; each sum of n non-negative terms carries a relative error
  <= (n-1) eps64 in either order, so alpha agrees within 2 n eps64 and the params within the
  change that alpha's difference makes (bounded below); masks, counts and moments stay bitwise.
* float32 kernels against the float64 reference: within 32 eps32 of the path length
  sum_t (|p_t| + |p_t - p_{t-1}|): each step rounds p, m, v and u a handful of times, each
  rounding relative to |p| or to the step; the moments' EMAs do not amplify earlier errors.
"""
import itertools

import numpy as np
import pytest

numba = pytest.importorskip("numba",
                            reason="numba is an optional backend (pip install refopt[numba])")

import refopt  # noqa: E402
from refopt.registry import RULES  # noqa: E402
from refopt.rules._base import round_to_bits  # noqa: E402

SMALL_SHAPES = [(), (1,), (7,), (1023,), (3, 5)]
LARGE_SHAPES = [(10**5 + 3,), (7,), ()]
STEPS = 6


def _grads(shapes, dtype, t, seed):
    """Step t's gradients: normal with a step-dependent scale, exact zeros (mask ties) every 5th."""
    rng = np.random.default_rng(seed * 1000 + t)
    out = []
    for s in shapes:
        g = rng.standard_normal(s) * (0.5 + t % 3)
        flat = g.reshape(-1)
        flat[t % 5::5] = 0.0
        out.append(np.asarray(g, dtype=dtype))
    return out


def _params(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]


def _lr(t):
    return 1e-2 / (1 + 0.1 * t)  # a schedule: the per-step scalars change every step


def _run(rule, params, shapes, dtype, seed, steps=STEPS, info=True):
    state = rule.init(params)
    history = []
    for t in range(1, steps + 1):
        g = _grads(shapes, dtype, t, seed)
        if info:
            params, state, inf = rule.step_with_info(params, g, state, lr=_lr(t))
        else:
            params, state = rule.step(params, g, state, lr=_lr(t))
            inf = None
        history.append((params, state, inf))
    return history


def _assert_same(ref, fast, buffers, *, alpha_rtol=0.0, param_check=None):
    for step, ((p_r, s_r, i_r), (p_f, s_f, i_f)) in enumerate(zip(ref, fast), start=1):
        assert s_r.step == s_f.step
        for b in buffers:
            for k, (x, y) in enumerate(zip(getattr(s_r, b), getattr(s_f, b))):
                assert x.dtype == y.dtype and x.shape == y.shape
                assert np.array_equal(x, y, equal_nan=True), f"step {step}: state.{b}[{k}] differs"
        for k, (x, y) in enumerate(zip(p_r, p_f)):
            assert x.dtype == y.dtype and x.shape == y.shape
            if param_check is None:
                assert np.array_equal(x, y, equal_nan=True), f"step {step}: params[{k}] differs"
            else:
                param_check(step, k, x, y)
        if i_r is None or i_f is None:
            continue
        assert i_r["skipped"] == i_f["skipped"]
        for k, (a, b) in enumerate(zip(i_r["tensors"], i_f["tensors"])):
            assert set(a) == set(b)
            if "mask" in a:
                assert a["mask"].dtype == b["mask"].dtype == np.bool_
                assert np.array_equal(a["mask"], b["mask"]), f"step {step}: mask[{k}] differs"
                assert a["kept"] == b["kept"] and isinstance(b["kept"], int)
                if alpha_rtol == 0.0:
                    assert a["alpha"] == b["alpha"], f"step {step}: alpha[{k}] differs"
                else:
                    assert abs(a["alpha"] - b["alpha"]) <= alpha_rtol * abs(a["alpha"])


def _variant_configs():
    """Every rule's default, each variant option alone, and AlphaAdam's mask/alpha product."""
    configs = []
    for name, info in RULES.items():
        configs.append((name, {}))
        for option, values in info.variants.items():
            for value in values:
                if name == "alphaadam" and option in ("alpha_rule", "mask_source", "first_step",
                                                      "strict"):
                    continue  # covered by the product below
                configs.append((name, {option: value}))
    for rule_, source, first, strict in itertools.product(
            ("count", "count+1", "soft", "none"), ("m_prev", "m_t", "ones"),
            ("unmasked", "cautious", "as_is"), (True, False)):
        if source != "m_prev" and first != "unmasked":
            continue  # first_step only matters for m_prev
        configs.append(("alphaadam", {"alpha_rule": rule_, "mask_source": source,
                                      "first_step": first, "strict": strict,
                                      **({} if rule_ == "soft" else {"gamma": 0.25})}))
    # eps = 0 reaches safe_divide's 0/0 := 0 (zero gradients on zero state).
    for name in ("adamx", "adams", "adam", "adamw", "adax", "cadamw", "alphaadam"):
        configs.append((name, {"eps": 0.0}))
    configs.append(("adams", {"bias_correction": True, "eps": 0.0}))
    # C-AdamW's torch-style eps (spec alphaadam.md E5): not in the registry's variant list.
    configs += [("cadamw", {"bias_correction": "torch"}),
                ("cadamw", {"bias_correction": "torch", "scaling": "count+1"}),
                ("cadamw", {"bias_correction": "torch", "eps": 0.0})]
    configs.append(("sgdm", {"nesterov": True, "weight_decay": 0.1}))
    configs.append(("sgdm", {"dampening": 0.3, "weight_decay": 0.1}))
    configs.append(("adamx", {"weight_decay_mode": "l2", "state_dtype": "bfloat16"}))
    return configs


CONFIGS = _variant_configs()


def _id(cfg):
    name, hyper = cfg
    return name + ("-" + ",".join(f"{k}={v}" for k, v in hyper.items()) if hyper else "")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[_id(c) for c in CONFIGS])
def test_bitwise_against_reference_small_shapes(cfg, dtype):
    name, hyper = cfg
    ref = refopt.get_rule(name, **hyper)
    fast = refopt.get_rule(name, backend="numba", **hyper)
    assert fast.backend == "numba" and fast.name == ref.name and dict(fast.hyper) == dict(ref.hyper)
    params = _params(SMALL_SHAPES, dtype, seed=1)
    _assert_same(_run(ref, params, SMALL_SHAPES, dtype, 1),
                 _run(fast, params, SMALL_SHAPES, dtype, 1), ref.buffers)


LARGE_CONFIGS = [(name, {}) for name in RULES] + [
    ("alphaadam", {"alpha_rule": r, "strict": False}) for r in ("count+1", "soft", "none")] + [
    ("adamx", {"state_dtype": s}) for s in ("float16", "bfloat16")] + [
    ("cadamw", {"bias_correction": "torch"})]  # the streamed driver with torch-style eps


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", LARGE_CONFIGS, ids=[_id(c) for c in LARGE_CONFIGS])
def test_bitwise_against_reference_large_tensor(cfg, dtype):
    # 10**5 + 3 elements: every thread gets a ragged share of the prange loop.
    name, hyper = cfg
    ref = refopt.get_rule(name, **hyper)
    fast = refopt.get_rule(name, backend="numba", **hyper)
    params = _params(LARGE_SHAPES, dtype, seed=2)
    _assert_same(_run(ref, params, LARGE_SHAPES, dtype, 2, steps=4),
                 _run(fast, params, LARGE_SHAPES, dtype, 2, steps=4), ref.buffers)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shapes", [SMALL_SHAPES, LARGE_SHAPES], ids=["small", "large"])
@pytest.mark.parametrize("source", ["m_prev", "m_t", "ones"])
def test_alphaadam_norm_within_summation_bound(source, shapes, dtype):
    hyper = {"alpha_rule": "norm", "mask_source": source, "gamma": 0.1}
    ref = refopt.get_rule("alphaadam", **hyper)
    fast = refopt.get_rule("alphaadam", backend="numba", **hyper)
    params = _params(shapes, dtype, seed=3)
    n_max = max(int(np.prod(s)) for s in shapes)
    eps64 = np.finfo(np.float64).eps
    alpha_rtol = 2 * n_max * eps64
    eps = np.finfo(dtype).eps
    alpha_max = ref.hyper["alpha_max"]

    def param_check(step, k, x, y):
        # p = p*decay - step_size*(psi*u): alpha's relative gap (after rounding to the dtype,
        # <= alpha_rtol + eps) times the largest possible step, per step so far, plus one ulp.
        step_bound = sum(ref.scalars(t, _lr(t))["step_size"] for t in range(1, step + 1))
        u_max = 1.0 / np.sqrt(1 - ref.hyper["betas"][1]) + 1.0  # |m|/sqrt(v) <= (1-b1)/sqrt(1-b2)
        bound = step_bound * alpha_max * u_max * (alpha_rtol + eps) + eps * np.abs(x).max(initial=0)
        assert np.all(np.abs(x.astype(np.float64) - y) <= bound), f"step {step}: params[{k}]"

    _assert_same(_run(ref, params, shapes, dtype, 3), _run(fast, params, shapes, dtype, 3),
                 ref.buffers, alpha_rtol=alpha_rtol, param_check=param_check)


FLOAT32_CONFIGS = [(n, {}) for n in ("adamx", "adams", "adam", "adamw", "adax", "sgdm")] + [
    ("adams", {"bias_correction": True}), ("adamx", {"coef_form": "naive"})]


@pytest.mark.parametrize("cfg", FLOAT32_CONFIGS, ids=[_id(c) for c in FLOAT32_CONFIGS])
def test_float32_kernels_against_float64_reference(cfg):
    # Masked rules are left out here: a score within float32 rounding of 0 may flip its mask bit,
    # a discontinuity, not an error (they are bitwise against the float32 reference above).
    name, hyper = cfg
    shapes = [(1023,), (7,), ()]
    ref = refopt.get_rule(name, **hyper)
    fast = refopt.get_rule(name, backend="numba", **hyper)
    p32 = _params(shapes, np.float32, seed=4)
    p64 = [p.astype(np.float64) for p in p32]
    s64, s32 = ref.init(p64), fast.init(p32)
    path = [np.zeros(s) for s in shapes]
    for t in range(1, 30):
        g32 = _grads(shapes, np.float32, t, 4)
        prev = p64
        p64, s64 = ref.step(p64, [g.astype(np.float64) for g in g32], s64, lr=_lr(t))
        p32, s32 = fast.step(p32, g32, s32, lr=_lr(t))
        for k in range(len(shapes)):
            path[k] = path[k] + np.abs(p64[k]) + np.abs(p64[k] - prev[k])
            gap = np.abs(p32[k].astype(np.float64) - p64[k])
            assert np.all(gap <= 32 * np.finfo(np.float32).eps * path[k]), (t, k, gap.max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(RULES))
def test_inplace_step_equals_out_of_place(name, dtype):
    hyper = {"alpha_rule": "count", "mask_source": "m_prev"} if name == "alphaadam" else {}
    fast = refopt.get_rule(name, backend="numba", **hyper)
    shapes = SMALL_SHAPES
    params = _params(shapes, dtype, seed=5)
    keep = [p.copy() for p in params]
    state = fast.init(params)
    inplace_params = [p.copy() for p in params]
    inplace_state = fast.init(inplace_params)
    for t in range(1, STEPS + 1):
        g = _grads(shapes, dtype, t, 5)
        g_copy = [x.copy() for x in g]
        params, state, info = fast.step_with_info(params, g, state, lr=_lr(t))
        bufs_before = {b: getattr(inplace_state, b) for b in fast.buffers}
        ids = [id(p) for p in inplace_params]
        inplace_state, info_ = fast.step_with_info_(inplace_params, g, inplace_state, lr=_lr(t))
        assert [id(p) for p in inplace_params] == ids  # mutated, not replaced
        for b in fast.buffers:
            assert all(x is y for x, y in zip(getattr(inplace_state, b), bufs_before[b]))
        assert all(np.array_equal(a, b) for a, b in zip(g, g_copy))  # grads never written
        assert inplace_state.step == state.step
        for a, b in zip(params, inplace_params):
            assert np.array_equal(a, b)
        for b in fast.buffers:
            assert all(np.array_equal(x, y) for x, y in zip(getattr(state, b),
                                                             getattr(inplace_state, b)))
        for a, b in zip(info["tensors"], info_["tensors"]):
            assert set(a) == set(b)
            if "mask" in a:
                assert np.array_equal(a["mask"], b["mask"]) and a["alpha"] == b["alpha"]
    # The out-of-place steps never touched the initial arrays.
    assert all(np.array_equal(a, b) for a, b in zip(keep, _params(shapes, dtype, seed=5)))


REPLAY_CONFIGS = [(name, {}) for name in sorted(RULES)] + [
    ("adamx", {"state_dtype": "bfloat16"}), ("adamx", {"weight_decay_mode": "l2"}),
    ("alphaadam", {"mask_source": "ones"}), ("alphaadam", {"alpha_rule": "none"}),
    # An all-ones mask under count+1 gives alpha = n/(n+1): the launch depends on the size.
    ("alphaadam", {"mask_source": "ones", "alpha_rule": "count+1"}),
    ("sgdm", {"nesterov": True, "weight_decay": 0.1}), ("adams", {"bias_correction": True})]


@pytest.mark.parametrize("cfg", REPLAY_CONFIGS, ids=_id)
def test_inplace_small_tensors_replay_the_recorded_launch_bitwise(cfg, monkeypatch):
    """numba's step_ runs the plan once per (t, dtype) and runs its launch on all the group's
    small tensors (NumbaRule._batched): one launch of the rule's table driver (AlphaAdam's
    where alpha is known without a count), or a replay per tensor where it has none (AdamX's
    state_dtype rounding). Tensors at different step counts (grads None at some steps), two dtypes,
    and one tensor above SERIAL_BELOW (the plan path) must all match the reference; plans that
    count a mask first (AlphaAdam's count rules after step 1, C-AdamW) must not be replayed:
    their small tensors go to the counted-mask table drivers
    (tests/test_kernels_numba_batch.py)."""
    from refopt.kernels import numba_backend as nb
    from refopt.kernels.numba_backend import SERIAL_BELOW, NumbaRule, _count_nonfinite_batch

    COUNTED_DRIVERS = {nb._masked_batch_in, nb._cautious_batch_in}

    name, hyper = cfg
    shapes = [(7,), (3, 5), (), (SERIAL_BELOW + 3,), (1023,), (4,)]
    dtypes = [np.float32, np.float32, np.float32, np.float32, np.float64, np.float64]
    ref = refopt.get_rule(name, **hyper)
    fast = refopt.get_rule(name, backend="numba", **hyper)
    replayed = []
    batched = NumbaRule._batched

    def spy(self, *args):
        done = batched(self, *args)
        replayed.append(len(done))
        return done

    monkeypatch.setattr(NumbaRule, "_batched", spy)
    tabled = []
    launch_table = NumbaRule._launch_table

    def table_spy(kernel, rows, sizes, args):
        if kernel is not _count_nonfinite_batch:  # (the read-only count of nonfinite="raise")
            tabled.append((kernel, len(sizes)))
        return launch_table(kernel, rows, sizes, args)

    monkeypatch.setattr(NumbaRule, "_launch_table", staticmethod(table_spy))
    rng = np.random.default_rng(11)
    p_ref = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    p_fast = [p.copy() for p in p_ref]
    s_ref, s_fast = ref.init(p_ref), fast.init(p_fast)
    skipped = {1: (), 2: (0, 4), 3: (1,), 4: (2, 5)}  # tensors whose grad is None
    for t in range(1, 5):
        grads = [None if k in skipped[t] else rng.standard_normal(s).astype(d)
                 for k, (s, d) in enumerate(zip(shapes, dtypes))]
        p_ref, s_ref = ref.step(p_ref, grads, s_ref, lr=1e-2 / t)
        s_fast = fast.step_(p_fast, grads, s_fast, lr=1e-2 / t)
        assert s_fast.step == s_ref.step
        assert len(set(s_ref.step)) > 1 or t == 1  # several (t, dtype) groups
        for k, (a, b) in enumerate(zip(p_ref, p_fast)):
            assert np.array_equal(a, b), f"step {t}: params[{k}]"
        for buf in ref.buffers:
            for k, (a, b) in enumerate(zip(getattr(s_ref, buf), getattr(s_fast, buf))):
                assert np.array_equal(a, b), f"step {t}: state.{buf}[{k}]"
    counts_a_mask = name == "cadamw" or (name == "alphaadam" and hyper.get("mask_source") !=
                                         "ones" and hyper.get("alpha_rule") != "none")
    assert sum(replayed) >= 10, replayed  # the small tensors with a gradient
    counted = sum(n for kernel, n in tabled if kernel in COUNTED_DRIVERS)
    if counts_a_mask:  # step 1 of AlphaAdam is unmasked: no count, its launch recorded
        assert counted == (sum(replayed[1:]) if name == "alphaadam" else sum(replayed)), tabled
    else:
        assert counted == 0, tabled
    if hyper.get("state_dtype"):  # no table driver for the rounded AdamX: replayed per tensor
        assert not tabled
    else:
        assert sum(n for _, n in tabled) == sum(replayed), tabled


def test_replay_survives_a_non_contiguous_gradient_on_the_recorded_tensor(monkeypatch):
    """The first tensor of a (t, dtype) records the launch; a strided grad reaches its plan as
    a flat copy, which must not switch the replay off for the whole group."""
    from refopt.kernels.numba_backend import NumbaRule

    replayed = []
    batched = NumbaRule._batched
    monkeypatch.setattr(NumbaRule, "_batched",
                        lambda self, *a: replayed.append(len(d := batched(self, *a))) or d)
    rng = np.random.default_rng(3)
    shapes = [(9,), (4, 3), (6,)]
    ref, fast = refopt.get_rule("adamx"), refopt.get_rule("adamx", backend="numba")
    p_ref = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    p_fast = [p.copy() for p in p_ref]
    s_ref, s_fast = ref.init(p_ref), fast.init(p_fast)
    for t in range(1, 3):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        grads[0] = np.repeat(grads[0], 2)[::2]  # same values, stride 2
        assert not grads[0].flags.c_contiguous
        p_ref, s_ref = ref.step(p_ref, grads, s_ref)
        s_fast = fast.step_(p_fast, grads, s_fast)
    assert replayed == [3, 3]
    assert all(np.array_equal(a, b) for a, b in zip(p_ref, p_fast))
    assert all(np.array_equal(a, b) for a, b in zip(s_ref.exp_avg_sq, s_fast.exp_avg_sq))


def test_step_without_info_equals_step_with_info():
    # AlphaAdam with alpha_rule="none" skips its count pass when no info is asked for.
    for hyper in ({"alpha_rule": "none"}, {"alpha_rule": "count"}, {"mask_source": "m_t"}):
        ref = refopt.get_rule("alphaadam", **hyper)
        fast = refopt.get_rule("alphaadam", backend="numba", **hyper)
        params = _params(SMALL_SHAPES, np.float32, seed=6)
        _assert_same(_run(ref, params, SMALL_SHAPES, np.float32, 6),
                     _run(fast, params, SMALL_SHAPES, np.float32, 6, info=False), ref.buffers)


def test_none_grad_skips_the_tensor():
    for name in ("adamx", "alphaadam", "sgdm"):
        ref = refopt.get_rule(name)
        fast = refopt.get_rule(name, backend="numba")
        params = _params([(4,), (3,)], np.float64, seed=7)
        hist = []
        for rule in (ref, fast):
            p, s = params, rule.init(params)
            for t in range(1, 4):
                g = _grads([(4,), (3,)], np.float64, t, 7)
                g[1] = None if t != 2 else g[1]
                p_new, s_new, info = rule.step_with_info(p, g, s)
                if g[1] is None:
                    assert p_new[1] is p[1] and info["tensors"][1] == {}
                    for b in rule.buffers:
                        assert getattr(s_new, b)[1] is getattr(s, b)[1]
                p, s = p_new, s_new
            assert s.step == (3, 1)
            hist.append((p, s))
        (p_r, s_r), (p_f, s_f) = hist
        assert all(np.array_equal(a, b) for a, b in zip(p_r, p_f))
        # in place: the tensor without gradient is not touched
        p = [x.copy() for x in params]
        s = fast.init(p)
        before = p[1].copy()
        s = fast.step_(p, [np.ones(4), None], s)
        assert np.array_equal(p[1], before) and s.step == (1, 0)


@pytest.mark.parametrize("inplace", [False, True])
def test_nonfinite_policies_match_reference(inplace):
    bad = [np.array([1.0, np.nan, 2.0]), np.array([np.inf])]
    shapes = [(3,), (1,)]
    for policy in ("raise", "skip", "propagate"):
        ref = refopt.get_rule("adamx", nonfinite=policy)
        fast = refopt.get_rule("adamx", backend="numba", nonfinite=policy)
        params = _params(shapes, np.float64, seed=8)
        s_ref = ref.init(params)
        p_fast = [p.copy() for p in params]
        s_fast = fast.init(p_fast)
        if policy == "raise":
            with pytest.raises(FloatingPointError, match=r"grads\[0\]"):
                ref.step(params, bad, s_ref)
            with pytest.raises(FloatingPointError, match=r"grads\[0\]"):
                fast.step_(p_fast, bad, s_fast) if inplace else fast.step(p_fast, bad, s_fast)
            assert all(np.array_equal(a, b) for a, b in zip(p_fast, params))
            assert all(not np.any(x) for x in s_fast.exp_avg)
            continue
        p_r, s_r, i_r = ref.step_with_info(params, bad, s_ref)
        if inplace:
            s_f, i_f = fast.step_with_info_(p_fast, bad, s_fast)
            p_f = p_fast
        else:
            p_f, s_f, i_f = fast.step_with_info(p_fast, bad, s_fast)
        assert i_r["skipped"] == i_f["skipped"] == (policy == "skip")
        assert s_r.step == s_f.step
        for a, b in zip(p_r, p_f):
            assert np.array_equal(a, b, equal_nan=True)
        for b in ref.buffers:
            assert all(np.array_equal(x, y, equal_nan=True)
                       for x, y in zip(getattr(s_r, b), getattr(s_f, b)))


@pytest.mark.parametrize("cfg", [(name, {}) for name in sorted(RULES)]
                         + [("adamx", {"state_dtype": "bfloat16"}),
                            ("alphaadam", {"alpha_rule": "norm"}),
                            ("alphaadam", {"mask_source": "ones"})], ids=_id)
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_out_of_place_kernels_count_nonfinite_gradients_in_their_pass(cfg, bad_value,
                                                                      monkeypatch):
    """Out of place, numba judges a step by the count its update kernels return (no pre-pass).

    The read-only pre-pass is made to fail, so a kernel that did not count would show up; the
    bad value sits in the last tensor, at the last element of a parallel-sized one, so the
    earlier tensors have been computed when the step is refused.
    """
    name, hyper = cfg
    shapes = [(7,), (10**5 + 3,), (3, 5)]
    dtype = np.float32 if name == "sgdm" else np.float64
    for policy in ("raise", "skip"):
        fast = refopt.get_rule(name, backend="numba", nonfinite=policy, **hyper)
        params = _params(shapes, dtype, seed=5)
        state = fast.init(params)
        for t in (1, 2):  # a second step: masks from a non-zero momentum
            params, state = fast.step(params, _grads(shapes, dtype, t, seed=5), state)
        grads = _grads(shapes, dtype, 3, seed=5)
        grads[1].reshape(-1)[-1] = bad_value
        monkeypatch.setattr(fast.K, "count_nonfinite", staticmethod(_no_prepass))
        monkeypatch.setattr(fast.K, "count_nonfinite_many", staticmethod(_no_prepass))
        before = [p.copy() for p in params]
        if policy == "raise":
            with pytest.raises(FloatingPointError, match=r"grads\[1\]"):
                fast.step(params, grads, state)
            new_params, new_state = params, state
        else:
            new_params, new_state, info = fast.step_with_info(params, grads, state)
            assert info["skipped"] and new_state is state
        monkeypatch.undo()
        assert new_state.step == (2, 2, 2)
        for a, b in zip(new_params, before):
            assert a.tobytes() == b.tobytes()
        # ... and a good step after it goes through the same kernels without complaint.
        grads[1].reshape(-1)[-1] = 0.5
        assert fast.step(params, grads, state)[1].step == (3, 3, 3)


def _no_prepass(g):
    raise AssertionError("the out-of-place step ran the read-only pre-pass over g")


def test_inplace_refuses_non_contiguous_and_out_of_place_accepts_it():
    fast = refopt.get_rule("adams", backend="numba")
    ref = refopt.get_rule("adams")
    base = np.random.default_rng(9).standard_normal((6, 4))
    params = [base.T]  # F-contiguous view
    grads = [np.ones((4, 6))]
    p_f, _ = fast.step(params, grads, fast.init(params))
    p_r, _ = ref.step(params, grads, ref.init(params))
    assert np.array_equal(p_f[0], p_r[0])
    with pytest.raises(ValueError, match=r"params\[0\] must be C-contiguous"):
        fast.step_(params, grads, fast.init(params))


def test_validation_errors_are_the_reference_ones():
    fast = refopt.get_rule("adamx", backend="numba")
    params = [np.zeros(3)]
    state = fast.init(params)
    with pytest.raises(TypeError, match="grads must be a list"):
        fast.step(params, np.zeros(3), state)
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float32"):
        fast.step(params, [np.zeros(3, np.float32)], state)
    with pytest.raises(ValueError, match="lr must be finite"):
        fast.step(params, [np.zeros(3)], state, lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        refopt.get_rule("adamx", backend="numba", betas=(0.9, 1.0))


def test_trajectory_accepts_the_numba_backend():
    shapes = [(5,), ()]
    params = _params(shapes, np.float64, seed=10)
    grads = [np.stack([_grads(shapes, np.float64, t, 10)[k] for t in range(1, 9)])
             for k in range(len(shapes))]
    for name in ("adamx", "alphaadam"):
        a = refopt.trajectory(name, params, grads)
        b = refopt.trajectory(name, params, grads, backend="numba")
        for x, y in zip(a.params, b.params):
            assert np.array_equal(x, y)
        for key in a.info:
            for x, y in zip(a.info[key], b.info[key]):
                assert np.array_equal(x, y)
        assert set(a.info) == set(b.info)


def test_numba_is_not_imported_by_refopt():
    import subprocess
    import sys

    code = "import refopt, sys; refopt.get_rule('adamx'); print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- AdamX's state_dtype rounding helpers, value by value -------------------------------------

def _special_values():
    rng = np.random.default_rng(11)
    f32_bits = rng.integers(0, 2**32, size=20000, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):  # signalling NaNs among the random bit patterns
        f32 = f32_bits.view(np.float32).astype(np.float64)
    f64 = rng.standard_normal(5000) * np.exp(rng.uniform(-40, 25, 5000))
    # Exact ties and neighbours at float16/bfloat16 spacings, the overflow and subnormal edges.
    half = np.arange(-2048, 2048, dtype=np.float64)
    ties = np.concatenate([(half + 0.5) * 2.0**e for e in (-24, -20, -14, -10, 0, 5)])
    ties = np.concatenate([ties, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf)])
    bf_ties = np.concatenate([(np.arange(-256, 256) + 0.5) * 2.0**e
                              for e in (-133, -126, -100, 0, 120)])
    edges = np.array([65504.0, 65519.99, 65520.0, 65536.0, 2.0**-24, 2.0**-25, 3 * 2.0**-26,
                      6.1e-5, 3.3895313892515355e38, 3.4e38, 3.4028234663852886e38, 1e39, 1e-45,
                      0.0, -0.0, np.inf, -np.inf, 1e300, -1e-300])
    values = np.concatenate([f32, f64, ties, bf_ties, edges, -edges])
    return values[np.isfinite(values) | np.isinf(values)]


@pytest.mark.parametrize("state_dtype, mode", [("float32", 1), ("float16", 2), ("bfloat16", 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_rounding_matches_round_to_bits(state_dtype, mode, dtype):
    from refopt.kernels.numba_backend import _round_state

    @numba.njit
    def apply(xs, mode):
        out = np.empty_like(xs)
        for i in range(xs.size):
            out[i] = _round_state(np.float64(xs[i]), mode)
        return out

    with np.errstate(over="ignore"):
        x = _special_values().astype(dtype)
        expected = round_to_bits(x, state_dtype)
    got = apply(x, mode)
    if np.dtype(dtype).name == state_dtype:
        expected = x  # round_to_bits is the identity there, and the kernel is not called
        got = x
    assert np.array_equal(got.view(np.uint8), expected.view(np.uint8))


# -- the golden suite and the bench -------------------------------------------------------------

@pytest.mark.parametrize("rule", sorted(RULES))
def test_golden_suite_passes_through_the_numba_backend(rule):
    from refopt.verify import load_cases, verify_rule

    if not load_cases(rule):
        pytest.skip(f"the golden suite has no case for {rule}")
    report = verify_rule(rule, "numba", diagnose=False)
    assert report.counted, report.table()
    assert report.passed, report.table()


def test_bench_quick_writes_valid_json(tmp_path):
    import json

    from refopt.cli import main

    status = main(["bench", "--quick", "--sizes", "1000", "--backends", "numpy", "numba",
                   "--out", str(tmp_path)])
    assert status == 0
    data = json.loads((tmp_path / "bench_cpu.json").read_text())
    assert (tmp_path / "bench_cpu.png").stat().st_size > 0
    assert data["schema"] == "refopt-bench/1" and data["machine"]["logical_cpus"] >= 1
    modes = {(r["backend"], r["mode"]) for r in data["results"]}
    assert modes == {("numpy", "step"), ("numba", "step"), ("numba", "step_fresh"),
                     ("numba", "step_"), ("numba", "step_checked")}
    for r in data["results"]:
        assert r["n"] == 1000 and r["time_s"]["median"] > 0 and r["GBps"] > 0
        assert r["time_s"]["min"] <= r["time_s"]["median"] <= r["time_s"]["max"]
    assert data["rooflines"][0]["numba_copy_28B"]["median"] > 0
    assert data["gpu"]["measured"] is False and data["gpu"]["reason"]
    many = data["many_tensors"]  # --quick: 4 tensors of 100 elements
    assert (many["tensors"], many["n_each"]) == (4, 100)
    assert {(r["backend"], r["mode"]) for r in many["results"]} == {
        ("numpy", "step"), ("numba", "step"), ("numba", "step_")}  # torch not requested
    for r in many["results"]:
        assert r["measured_with"] == "adamx" and r["time_s"]["median"] > 0
        assert r["us_per_tensor"] == pytest.approx(r["time_s"]["median"] / 4 * 1e6)
    status = main(["bench", "--quick", "--sizes", "1000", "--backends", "numba", "--many", "0",
                   "0", "--out", str(tmp_path / "none")])
    assert status == 0
    assert json.loads((tmp_path / "none" / "bench_cpu.json").read_text())["many_tensors"] is None
    assert main(["bench", "--quick", "--many", "3", "0", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8])
def test_balanced_orders_put_every_call_after_every_other_equally_often(k):
    from collections import Counter

    from refopt.kernels.bench import balanced_orders

    orders = balanced_orders(k)
    assert all(sorted(order) == list(range(k)) for order in orders)
    follows = Counter(pair for order in orders for pair in zip(order, order[1:]))
    expected = 1 if k % 2 == 0 else 2
    assert follows == Counter({(i, j): expected for i in range(k) for j in range(k) if i != j})


def test_interleaved_timing_uses_the_balanced_orders_and_honours_caps():
    from refopt.kernels.bench import balanced_orders, interleaved

    order = []
    calls = {k: ((lambda k=k: order.append(k)), cap) for k, cap in
             (("a", 10**9), ("b", 10**9), ("c", 10**9), ("d", 2))}
    stats = interleaved(calls, reps=8, warmup=1)
    assert [stats[k]["repeats"] for k in "abcd"] == [8, 8, 8, 2]
    expected = [k for r in range(8) for k in ("abcd"[i] for i in balanced_orders(4)[r % 4])
                if k != "d" or r < 2]
    assert order[4:] == expected  # after one warm-up call each


def test_fastmath_build_is_not_cached_and_keeps_the_nonfinite_check(tmp_path):
    """REFOPT_NUMBA_FASTMATH=1: numba's cache keys on no flag, so such a build must not be
    cached (it would load or leave bitwise-breaking kernels); NaN must still be refused."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, refopt\n"
        "from refopt.kernels import numba_backend as nb\n"
        "assert nb._JIT['cache'] is False and nb._JIT_SERIAL['cache'] is False\n"
        "r = refopt.get_rule('adams', backend='numba')\n"
        "assert r.counts_nonfinite is False\n"
        "p = [np.ones(7)]\n"
        "try:\n"
        "    r.step(p, [np.array([1, 2, np.nan, 4, 5, 6, 7.0])], r.init(p))\n"
        "except FloatingPointError as exc:\n"
        "    print('refused:', exc)\n")
    env = {**os.environ, "REFOPT_NUMBA_FASTMATH": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "refused: grads[0] contains NaN" in out.stdout
    assert not any(tmp_path.rglob("*.nbi")), "a fastmath build wrote numba cache files"
