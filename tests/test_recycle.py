"""Recycling of out-of-place outputs (refopt.kernels.recycle) and its use by the numba backend.

The claim under test: an array is handed out again only when nothing but the recycler refers to
it, so a caller can never see a returned array change, and results are bitwise those of fresh
allocation. Small ``min_bytes`` make every array eligible so that the tests stay small.
"""
import gc
import threading
import weakref

import numpy as np
import pytest

from refopt.kernels.recycle import SOLE_OWNER_COUNT, Recycler

pytestmark = pytest.mark.skipif(SOLE_OWNER_COUNT is None,
                                reason="this interpreter has no sys.getrefcount: recycling is off")


def _address(a) -> int:
    return a.__array_interface__["data"][0]


def _call(recycler, shape=(5,), dtype=np.float64):
    recycler.new_call()
    return recycler.empty(shape, dtype)


def test_sole_owner_count_is_calibrated():
    assert isinstance(SOLE_OWNER_COUNT, int) and SOLE_OWNER_COUNT >= 1


def test_an_array_let_go_two_calls_ago_is_reused():
    r = Recycler(min_bytes=0)
    first = _call(r)
    addr = _address(first)
    del first
    second = _call(r)  # the first is still "the last call's": not a candidate yet
    assert _address(second) != addr and r.reused == 0
    third = _call(r)
    assert _address(third) == addr and r.reused == 1 and r.allocated == 2
    assert third.shape == (5,) and third.dtype == np.float64 and third.flags.c_contiguous


def _torch_from_numpy(a):
    torch = pytest.importorskip("torch", reason="torch is optional (pip install refopt[torch])")
    return torch.from_numpy(a)


def _as_ctypes(a):
    return np.ctypeslib.as_ctypes(a)


@pytest.mark.parametrize("hold", ["variable", "view", "memoryview", "list", "base_of_view",
                                  "torch_from_numpy", "as_ctypes"])
def test_an_array_still_held_is_never_reused(hold):
    r = Recycler(min_bytes=0)
    first = _call(r)
    first[:] = np.arange(5.0)
    keep = {"variable": lambda a: a, "view": lambda a: a[1:3], "memoryview": memoryview,
            "list": lambda a: [a], "base_of_view": lambda a: a.reshape(5, 1),
            "torch_from_numpy": _torch_from_numpy, "as_ctypes": _as_ctypes}[hold](first)
    ref = weakref.ref(first)
    del first
    _call(r)
    third = _call(r)
    third[:] = -1.0  # what a kernel would do to a recycled array
    held = np.asarray(keep if hold != "list" else keep[0]).reshape(-1)  # (zero-copy views)
    np.testing.assert_array_equal(held, np.arange(5.0)[1:3] if hold == "view" else np.arange(5.0))
    assert r.reused == 0
    del keep, held
    gc.collect()
    assert ref() is None  # forgotten by the recycler, not kept alive by it


def test_shape_dtype_and_size_threshold():
    r = Recycler(min_bytes=64)
    a = _call(r, (8,), np.float64)  # 64 bytes: eligible
    b_addr = _address(a)
    del a
    _call(r, (8,), np.float64)
    assert _address(_call(r, (8,), np.float32)) != b_addr  # other dtype: not reused
    small = Recycler(min_bytes=65)
    x = _call(small, (8,), np.float64)
    del x
    _call(small, (8,), np.float64)
    _call(small, (8,), np.float64)
    assert small.reused == 0 and small.allocated == 0  # below the threshold: plain np.empty


def test_disabled_recycler_allocates_every_time():
    r = Recycler(enabled=False, min_bytes=0)
    a = _call(r)
    del a
    _call(r)
    _call(r)
    assert r.reused == 0 and r.allocated == 0


def test_read_only_flag_of_a_former_holder_is_cleared():
    r = Recycler(min_bytes=0)
    a = _call(r)
    a.flags.writeable = False
    del a
    _call(r)
    assert _call(r).flags.writeable


def test_memory_held_is_bounded_by_two_calls_and_release_frees_it():
    r = Recycler(min_bytes=0)
    refs = []
    for _ in range(10):
        r.new_call()
        out = [r.empty((4,), np.float64) for _ in range(3)]
        refs += [weakref.ref(a) for a in out]
        del out
    gc.collect()
    assert len({id(w()) for w in refs if w() is not None}) <= 6  # reused ones appear twice
    r.release()
    gc.collect()
    assert all(w() is None for w in refs)


# -- the numba backend with recycling ----------------------------------------------------------

def _numba_rules():
    pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")
    from refopt.registry import RULES

    return sorted(RULES)


@pytest.mark.parametrize("name", ["adamx", "adams", "alphaadam", "adam", "adamw", "cadamw",
                                  "adax", "sgdm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_loop_with_recycling_is_bitwise_the_reference(name, dtype):
    pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")
    import refopt

    rng = np.random.default_rng(7)
    shapes = [(1023,), (3, 5), ()]
    params0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(8)]
    ref = refopt.get_rule(name)
    fast = refopt.get_rule(name, backend="numba")
    fast.recycler = Recycler(min_bytes=0)  # every output eligible
    p_ref, s_ref = list(params0), ref.init(params0)
    p_fast, s_fast = list(params0), fast.init(params0)
    for g in grads:  # the usual loop: the previous step's arrays are let go
        p_ref, s_ref = ref.step(p_ref, g, s_ref)
        p_fast, s_fast = fast.step(p_fast, g, s_fast)
    assert fast.recycler.reused > 0
    for a, b in zip(p_ref, p_fast):
        assert a.tobytes() == b.tobytes()
    for buf in ref.buffers:
        for a, b in zip(getattr(s_ref, buf), getattr(s_fast, buf)):
            assert a.tobytes() == b.tobytes()


def test_kept_history_never_aliases_and_matches_the_reference():
    pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")
    import refopt

    rng = np.random.default_rng(3)
    params = [rng.standard_normal(257)]
    ref = refopt.get_rule("adamx")
    fast = refopt.get_rule("adamx", backend="numba")
    fast.recycler = Recycler(min_bytes=0)
    s_ref, s_fast, p_ref, p_fast = ref.init(params), fast.init(params), params, params
    kept_ref, kept_fast = [], []
    for t in range(6):
        g = [rng.standard_normal(257)]
        p_ref, s_ref = ref.step(p_ref, g, s_ref)
        p_fast, s_fast = fast.step(p_fast, g, s_fast)
        kept_ref.append([p_ref[0].copy(), s_ref.exp_avg[0].copy(), s_ref.exp_avg_sq[0].copy()])
        if t % 2 == 0:  # keep every other step's arrays themselves, drop the rest
            kept_fast.append((t, [p_fast[0], s_fast.exp_avg[0], s_fast.exp_avg_sq[0]]))
    for t, arrays in kept_fast:
        for a, b in zip(arrays, kept_ref[t]):
            assert a.tobytes() == b.tobytes()
    flat = [a for _, arrays in kept_fast for a in arrays]
    for i, a in enumerate(flat):
        for b in flat[i + 1:]:
            assert not np.shares_memory(a, b)


def test_two_threads_sharing_one_rule_object_get_correct_results():
    pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")
    import refopt

    fast = refopt.get_rule("adams", backend="numba")
    fast.recycler = Recycler(min_bytes=0)
    ref = refopt.get_rule("adams")
    results, errors = {}, []

    def loop(seed):
        try:
            rng = np.random.default_rng(seed)
            p = [rng.standard_normal(333)]
            gs = [[rng.standard_normal(333)] for _ in range(40)]
            pf, sf, pr, sr = p, fast.init(p), p, ref.init(p)
            for g in gs:
                pf, sf = fast.step(pf, g, sf)
                pr, sr = ref.step(pr, g, sr)
            results[seed] = (pf[0].tobytes() == pr[0].tobytes(),
                             sf.exp_avg[0].tobytes() == sr.exp_avg[0].tobytes())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(seed,)) for seed in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert results == {1: (True, True), 2: (True, True)}


def test_default_rule_recycles_large_outputs_and_can_be_turned_off():
    pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")
    import refopt
    from refopt.kernels.numba_backend import make_rule
    from refopt.kernels.recycle import MIN_BYTES

    n = MIN_BYTES // 4  # float32: exactly the threshold
    p = [np.ones(n, np.float32)]
    g = [np.full(n, 0.5, np.float32)]
    on = refopt.get_rule("adams", backend="numba")
    off = make_rule(refopt.get_rule("adams"), recycle=False)
    for rule in (on, off):
        pp, st = p, rule.init(p)
        for _ in range(4):
            pp, st = rule.step(pp, g, st)
    assert on.recycler.reused > 0 and off.recycler.reused == 0
    on.release_buffers()
    assert on.recycler.reused > 0  # counters stay; the arrays are gone


def test_a_weakly_referenced_array_is_not_reused():
    r = Recycler(min_bytes=0)
    first = _call(r)
    first[:] = 7.0
    ref = weakref.ref(first)
    del first
    _call(r)
    third = _call(r)
    third[:] = -1.0
    assert r.reused == 0
    gc.collect()
    assert ref() is None or (ref() is not third and np.all(ref() == 7.0))


def test_calibration_is_not_fooled_by_a_tracer_reading_locals():
    import sys

    from refopt.kernels.recycle import _calibrate

    def tracer(frame, event, arg):
        frame.f_locals  # what debuggers and coverage-style tools do
        return tracer

    sys.settrace(tracer)
    try:
        traced = _calibrate()
    finally:
        sys.settrace(None)
    assert traced == SOLE_OWNER_COUNT


def test_a_refused_step_leaves_no_outputs_alive_in_the_traceback():
    pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")
    import tracemalloc

    import refopt
    from refopt.kernels.numba_backend import make_rule

    n = 10**6
    fast = make_rule(refopt.get_rule("adamx"), recycle=False)
    params = [np.ones(n)]
    state = fast.init(params)
    grads = [np.ones(n)]
    grads[0][-1] = np.nan
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        try:
            fast.step(params, grads, state)
        except FloatingPointError as exc:
            kept = exc  # a caller that keeps the exception keeps its frames
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept.__traceback__ is not None
    assert held < 8 * n / 4, f"{held} bytes still held: the step's outputs (3 x {8 * n})"
