"""numba's streamed out-of-place drivers (non-temporal stores) against the reference (issue 4).

Above ``STREAM_MIN_BYTES`` an out-of-place numba step computes blocks into scratch arrays and
copies them to its outputs with streaming stores. Parity claim: **bitwise** equal to the float64
and float32 NumPy reference, for every rule, because the blocks run the same one-thread kernel on
the same values and the copy moves bits. The tests force streaming on test-sized tensors
(``STREAM_MIN_BYTES = 0``), check that the driver really ran, and place outputs at every
alignment a 16-byte store can meet.
"""
import platform
import re

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")

import refopt  # noqa: E402
from refopt.kernels import numba_backend as nb  # noqa: E402
from refopt.registry import RULES  # noqa: E402

CONFIGS = [(name, {}) for name in sorted(RULES)] + [
    ("alphaadam", {"alpha_rule": "norm"}), ("alphaadam", {"mask_source": "m_t", "strict": False}),
    ("alphaadam", {"mask_source": "ones"}), ("adamx", {"weight_decay_mode": "l2"}),
    ("adam", {"weight_decay": 0.1}), ("adax", {"weight_decay_mode": "l2", "weight_decay": 0.1}),
    ("sgdm", {"nesterov": True, "weight_decay": 0.1}), ("adams", {"bias_correction": True})]
# Ragged against the block (256), the chunking (4 per thread) and the 16-byte vectors.
SHAPES = [(nb.SERIAL_BELOW + 5,), (7,), (300, 411)]


def _id(cfg):
    name, hyper = cfg
    return name + ("-" + ",".join(f"{k}={v}" for k, v in hyper.items()) if hyper else "")


@pytest.fixture
def streamed_calls(monkeypatch):
    """Streams every out-of-place step of SERIAL_BELOW elements or more; counts the streamed."""
    calls = []
    decide = nb._streamed

    def spy(ins, outs):
        verdict = decide(ins, outs)
        calls.append(verdict)
        return verdict

    monkeypatch.setattr(nb, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(nb, "_streamed", spy)
    return calls


def _grads(t, dtype, seed=3):
    rng = np.random.default_rng(seed * 100 + t)
    grads = []
    for shape in SHAPES:
        g = rng.standard_normal(shape) * (0.5 + t % 3)
        g.reshape(-1)[t % 5::5] = 0.0  # ties for AlphaAdam's mask
        grads.append(g.astype(dtype))
    return grads


def _steps(rule, dtype, steps=4):
    rng = np.random.default_rng(7)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    state = rule.init(params)
    history = []
    for t in range(1, steps + 1):
        params, state, info = rule.step_with_info(params, _grads(t, dtype), state,
                                                  lr=1e-2 / (1 + 0.1 * t))
        history.append((params, state, info))
    return history


def _assert_bitwise(ref_history, fast_history, buffers):
    for t, ((p_r, s_r, i_r), (p_f, s_f, i_f)) in enumerate(zip(ref_history, fast_history), 1):
        for k, (x, y) in enumerate(zip(p_r, p_f)):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"step {t}: params[{k}]"
        for b in buffers:
            for k, (x, y) in enumerate(zip(getattr(s_r, b), getattr(s_f, b))):
                assert np.array_equal(x, y), f"step {t}: state.{b}[{k}]"
        for k, (a, b) in enumerate(zip(i_r["tensors"], i_f["tensors"])):
            if "mask" in a:
                assert np.array_equal(a["mask"], b["mask"]), f"step {t}: mask[{k}]"
                assert a["kept"] == b["kept"] and a["alpha"] == b["alpha"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=_id)
def test_streamed_step_is_bitwise_the_reference(cfg, dtype, streamed_calls, monkeypatch):
    name, hyper = cfg
    ref = refopt.get_rule(name, **hyper)
    if name == "alphaadam" and hyper.get("alpha_rule") == "norm":
        # norm's float64 sums are blocked on numba (a few ulp from NumPy's, bounded in
        # test_kernels_numba.py): here the plain numba kernels are the reference.
        ref = refopt.get_rule(name, backend="numba", **hyper)
        with monkeypatch.context() as plain:
            plain.setattr(nb, "STREAM_MIN_BYTES", 1 << 62)
            ref_history = _steps(ref, dtype)
        assert True not in streamed_calls
    else:
        ref_history = _steps(ref, dtype)
    fast = refopt.get_rule(name, backend="numba", **hyper)
    _assert_bitwise(ref_history, _steps(fast, dtype), ref.buffers)
    # Two of the three tensors are large enough to stream, in every step.
    assert streamed_calls.count(True) == 2 * 4, streamed_calls


def _misaligned_empty(offset_bytes):
    """np.empty that returns views starting ``offset_bytes`` past a 64-byte boundary."""
    def empty(shape, dtype):
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64))
        raw = np.empty(n * dtype.itemsize + 128, dtype=np.uint8)
        start = (-raw.ctypes.data) % 64 + offset_bytes
        return raw[start:start + n * dtype.itemsize].view(dtype).reshape(shape)
    return empty


@pytest.mark.parametrize("offset_elements", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["adamx", "adams", "alphaadam", "sgdm"])
def test_streamed_outputs_at_every_alignment(name, dtype, offset_elements, streamed_calls,
                                             monkeypatch):
    """Outputs that start 0..3 elements past a 64-byte line: the head before the first aligned
    16-byte store and the tail after the last are stored plainly, the rest streamed."""
    offset = offset_elements * np.dtype(dtype).itemsize
    ref = refopt.get_rule(name)
    fast = refopt.get_rule(name, backend="numba")
    monkeypatch.setattr(fast, "_empty_like",
                        lambda a: _misaligned_empty(offset)(a.shape, a.dtype))
    history = _steps(fast, dtype, steps=2)
    assert history[-1][0][0].ctypes.data % 64 == offset  # the outputs are where we put them
    _assert_bitwise(_steps(ref, dtype, steps=2), history, ref.buffers)
    assert streamed_calls.count(True) == 2 * 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stream_copy_writes_exactly_its_range(dtype):
    itemsize = np.dtype(dtype).itemsize
    src = np.arange(1, 41, dtype=dtype)
    for offset in range(0, 16 // itemsize + 1):
        for start in range(0, 5):
            for count in (0, 1, 3, 4, 5, 17, 40 - start - offset):
                dst_base = np.full(48, -1.0, dtype=dtype)
                dst = dst_base[offset:offset + 40]
                nb._stream_copy(dst, start, src, count)
                expected = np.full(48, -1.0, dtype=dtype)
                expected[offset + start:offset + start + count] = src[:count]
                assert np.array_equal(dst_base, expected), (offset, start, count)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stream_copy_into_a_misaligned_array_copies_plainly(dtype):
    """A destination whose elements sit off their natural alignment (a byte-offset view, which
    ``_streamed`` never passes on: the guard behind that guard) has no 16-byte aligned element;
    the copy must then store plainly instead of faulting on an unaligned streaming store."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(64 * itemsize + 1, dtype=np.uint8)
    dst = raw[1:].view(dtype)
    assert dst.ctypes.data % itemsize and not dst.flags.aligned
    src = np.arange(1, 65, dtype=dtype)
    nb._stream_copy(dst, 3, src, 50)
    assert np.array_equal(dst[3:53], src[:50]) and not dst[:3].any() and not dst[53:].any()


def test_streaming_store_refuses_strided_arrays():
    from numba import njit
    from numba.core.errors import TypingError

    @njit
    def store(dst, src):
        nb._nt_store(dst, 0, src, 0, 4)

    with pytest.raises(TypingError):
        store(np.zeros(16, np.float32)[::2], np.ones(8, np.float32))


@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_streamed_kernels_count_nonfinite_gradients(policy, streamed_calls, monkeypatch):
    """The streamed drivers return the block kernels' counts: the step is judged after the pass,
    with the pre-pass disabled, as for the plain out-of-place kernels."""
    for name in ("adamx", "adams", "alphaadam"):
        fast = refopt.get_rule(name, backend="numba", nonfinite=policy)
        rng = np.random.default_rng(2)
        params = [rng.standard_normal(s) for s in SHAPES]
        state = fast.init(params)
        grads = _grads(1, np.float64)
        grads[2].reshape(-1)[-1] = np.nan  # the last element of the last streamed block

        def no_prepass(g):
            raise AssertionError("pre-pass ran")

        monkeypatch.setattr(fast.K, "count_nonfinite", staticmethod(no_prepass))
        monkeypatch.setattr(fast.K, "count_nonfinite_many", staticmethod(no_prepass))
        if policy == "raise":
            with pytest.raises(FloatingPointError, match=r"grads\[2\]"):
                fast.step(params, grads, state)
        else:
            new_params, new_state, info = fast.step_with_info(params, grads, state)
            assert info["skipped"] and new_state is state
            assert all(a is b for a, b in zip(new_params, params))
        monkeypatch.undo()
        monkeypatch.setattr(nb, "STREAM_MIN_BYTES", 0)
    assert True in streamed_calls


def test_streaming_threshold():
    big = [np.empty(nb.SERIAL_BELOW, np.float32) for _ in range(3)]
    small = [np.empty(nb.SERIAL_BELOW - 1, np.float32) for _ in range(3)]
    old = nb.STREAM_MIN_BYTES
    try:
        nb.STREAM_MIN_BYTES = 0
        assert nb._streamed(big[:2], big[2:])
        assert not nb._streamed(small[:2], small[2:])  # the one-thread twin's range
        nbytes = sum(a.nbytes for a in big)
        nb.STREAM_MIN_BYTES = nbytes
        assert nb._streamed(big[:2], big[2:])
        nb.STREAM_MIN_BYTES = nbytes + 1
        assert not nb._streamed(big[:2], big[2:])
        nb.STREAM_MIN_BYTES = 0
        unaligned = np.empty(4 * nb.SERIAL_BELOW + 1, np.uint8)[1:].view(np.float32)
        assert not unaligned.flags.aligned
        assert not nb._streamed(big[:2], [unaligned])
    finally:
        nb.STREAM_MIN_BYTES = old
    # The default: twice the largest cache, so a 10**7-element AdamX step (280 MB) streams and
    # one that fits in the caches does not.
    assert nb.STREAM_MIN_BYTES == 2 * nb._last_level_cache_bytes()


def test_last_level_cache_size_is_read_or_defaulted(monkeypatch, tmp_path):
    for index, size in enumerate(["32K", "1024K", "32768K"]):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    real_listdir, real_join = nb.os.listdir, nb.os.path.join
    monkeypatch.setattr(nb.os, "listdir", lambda root: real_listdir(tmp_path))
    monkeypatch.setattr(nb.os.path, "join",
                        lambda root, *parts: real_join(tmp_path, *parts)
                        if root.startswith("/sys/") else real_join(root, *parts))
    assert nb._last_level_cache_bytes() == 32 << 20
    (tmp_path / "index2" / "size").write_text("garbage")
    assert nb._last_level_cache_bytes(default=123) == 123

    def missing(root):
        raise FileNotFoundError(root)

    monkeypatch.setattr(nb.os, "listdir", missing)
    assert nb._last_level_cache_bytes(default=456) == 456


def test_last_level_cache_size_skips_the_uevent_file(monkeypatch, tmp_path):
    """Linux's cpu0/cache holds a plain file ``uevent`` beside the index* folders: it is no
    cache, and reading ``uevent/size`` fails, which must not throw the real sizes away."""
    for index, size in enumerate(["48K", "32K", "2048K", "8192K"]):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    (tmp_path / "uevent").write_text("")
    real_listdir, real_join = nb.os.listdir, nb.os.path.join
    monkeypatch.setattr(nb.os, "listdir", lambda root: real_listdir(tmp_path))
    monkeypatch.setattr(nb.os.path, "join",
                        lambda root, *parts: real_join(tmp_path, *parts)
                        if root.startswith("/sys/") else real_join(root, *parts))
    assert nb._last_level_cache_bytes(default=123) == 8 << 20


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="checks x86-64 instructions (movntps, sfence)")
def test_machine_code_has_streaming_stores_and_a_fence():
    """What the drivers rely on, in the generated code: the aligned middle of the copy is stored
    with non-temporal vector stores, and each chunk ends with an sfence (x86 documents only
    sfence and mfence as ordering streaming stores)."""
    from numba import njit

    # Cached builds cannot be inspected: compile fresh copies of the same functions.
    copy = njit(error_model="numpy")(nb._stream_copy.py_func)
    for dtype in (np.float32, np.float64):
        copy(np.zeros(8, dtype), 0, np.ones(8, dtype), 8)
        asm = copy.inspect_asm(copy.signatures[-1])
        # movntps or movntpd (LLVM picks either for 16 bytes of doubles) of a vector register
        assert re.search(r"\bv?movntp[sd]\s+%xmm", asm), np.dtype(dtype).name
    def fence_only():
        nb._store_fence()

    fence = njit(fence_only)
    fence()
    assert re.search(r"\bsfence\b", fence.inspect_asm(fence.signatures[0]))


def test_last_level_cache_size_reads_this_machines_sysfs():
    """On the running machine, not a fake folder: the parser understands what Linux writes."""
    import glob

    sizes = glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size")
    if not sizes:
        pytest.skip("no /sys/devices/system/cpu/cpu0/cache/index*/size here (not Linux?)")
    assert nb._last_level_cache_bytes(default=-1) >= 1 << 10


def test_every_streamed_driver_fences_after_its_last_streaming_store():
    """A missing fence changes no result that a test can see (x86 happens to order the stores
    at numba's join in practice), so the drivers' structure is checked instead: in each, the
    prange body's last statement is ``_store_fence()`` and every ``_stream_copy`` comes before
    it, inside that body."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(nb))
    drivers = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.endswith("_stream")]
    assert {f.name for f in drivers} == {"_adamx_stream", "_adams_stream", "_adam_stream",
                                         "_adax_stream", "_sgdm_stream", "_cautious_adam_stream",
                                         "_masked_adam_stream"}

    def calls(node, name):
        return [n for n in ast.walk(node) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name) and n.func.id == name]

    for f in drivers:
        loops = [n for n in ast.walk(f) if isinstance(n, ast.For) and calls(n.iter, "prange")]
        assert len(loops) == 1, f.name
        *body, last = loops[0].body
        assert calls(last, "_store_fence") and isinstance(last, ast.Expr), f.name
        in_body = sum(len(calls(stmt, "_stream_copy")) for stmt in body)
        assert in_body >= 2 and in_body == len(calls(f, "_stream_copy")), f.name
        assert len(calls(f, "_store_fence")) == 1, f.name
