"""The CuPy backend: its CUDA source checked on the host, and bitwise parity on a GPU (issue 4).

Three layers, so that the GPU code is checked as far as each machine allows:

1. Source structure (always): the generated ElementwiseKernel and RawKernel parameter lists agree
   with the device functions' signatures, and the element arithmetic holds no numeric literals.
   With the CUDA toolkit's nvcc (no GPU needed): every kernel compiles, and the conformance
   build's PTX is IEEE operation by operation (no FMA, ``.rn`` everywhere, no approximations).
2. Host run of the device source (needs a C++ compiler, not a GPU): ``DEVICE_SOURCE`` and the
   generated multi-tensor kernels are compiled as host C++ (``-ffp-contract=off``, the analogue
   of NVRTC's ``--fmad=false``; ``__global__`` kernels run block by block, thread by thread) and
   driven through the same plans (:mod:`refopt.kernels.fused`) and multi-tensor batching as the
   CuPy rule. Claim: bitwise equal to the NumPy reference, as the numba kernels; AlphaAdam
   ``norm`` within the summation bound of ``test_kernels_numba``. This checks the CUDA text's
   arithmetic, scalar packing and pointer tables; it cannot check NVRTC's code generation.
3. On a GPU (``gpu`` marker; skipped with the reason where CuPy or a device is missing): the
   CuPy rule against the reference, bitwise for float64 and float32 in the conformance build.
"""
import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

import refopt
from refopt.kernels import cupy_backend as CB
from refopt.kernels.fused import FusedRule, HostArrays
from refopt.registry import RULES

# -- 1. structure ---------------------------------------------------------------------------


def _device_signature(name):
    m = re.search(rf"REFOPT_DEVICE bool refopt_{name}\((.*?)\)\s*{{", CB.DEVICE_SOURCE, re.S)
    assert m, f"device function refopt_{name} not found"
    return [a.strip().split()[-1] for a in m.group(1).split(",")]


@pytest.mark.parametrize("name", sorted(CB.SPECS))
def test_elementwise_params_match_the_device_function(name):
    state, scalars = CB.SPECS[name]
    params = _device_signature(name)
    assert params == ["p", "g", *state, *(n for _, n in scalars)]
    for inplace in (True, False):
        ins, outs, op = CB.elementwise_params(name, inplace, with_mask=(name == "masked_adam"))
        declared = [a.split()[-1] for a in (ins + ", " + outs).split(", ")]
        assert len(declared) == len(set(declared))  # no name used twice
        call = re.search(rf"refopt_{name}<T>\((.*)\)", op).group(1).split(", ")
        assert call == ["p", "g", *state, *(n for _, n in scalars)]
        assert set(call) <= set(declared)


def test_element_arithmetic_has_no_numeric_literals():
    # A floating literal like 1.0 is a double in CUDA C and would promote float math (guide:
    # kernels.md); integer literals appear only in comparisons of the int mode flags.
    for name in CB.SPECS:
        body = re.search(rf"refopt_{name}\(.*?\)\s*{{(.*?)\n}}", CB.DEVICE_SOURCE, re.S).group(1)
        assert not re.search(r"(?<![\w])(\d+\.\d*|\.\d+|\d+[eE][-+]?\d+|\d+f)(?![\w])", body), name
        for m in re.finditer(r"(?<![\w.])\d+(?![\w.])", body):
            before = body[max(0, m.start() - 16):m.start()]
            assert re.search(r"_mode\s*[!=]=\s*$", before), (name, before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multi_tensor_sources_are_generated(dtype):
    for name in CB.SPECS:
        src, kname = CB.multi_tensor_source(name, dtype)
        assert f'extern "C" __global__ void {kname}(' in src
        assert src.count("{") == src.count("}")
    src, kname = CB.count_source(dtype)
    assert "atomicAdd(&counts[k], block_count)" in src


def test_chunk_table_covers_every_element_once():
    sizes = [0, 1, CB.CHUNK, CB.CHUNK + 1, 0, 3 * CB.CHUNK - 7, 5]
    tensor, start = CB.chunk_table(sizes)
    assert tensor.dtype == np.int32 and start.dtype == np.int64
    assert np.all(np.diff(tensor) >= 0)  # blocks in tensor order, starts ascending within
    assert CB.chunk_table([])[0].size == 0 and CB.chunk_table([0, 0])[0].size == 0
    for k, n in enumerate(sizes):
        starts = start[tensor == k]
        covered = np.zeros(n, dtype=int)
        for s in starts:
            covered[s:min(s + CB.CHUNK, n)] += 1
        assert np.all(covered == 1)


# -- 1b. the CUDA compiler's output (needs the CUDA toolkit's nvcc, not a GPU) -----------------
#
# CuPy compiles with NVRTC; nvcc shares its front end and NVVM and has the same defaults (fmad on,
# ftz off, IEEE division and square root), so nvcc with the backend's own options shows what
# the conformance build asks of the device. In PTX an add/sub/mul without a rounding modifier may
# be contracted into an FMA by ptxas; with ``--fmad=false`` NVVM writes ``.rn`` on each of them.
# Claims: no fma, every float add/sub/mul ``.rn``, division and square root ``div.rn``/
# ``sqrt.rn`` (correctly rounded, not ``.approx``/``.full``), no flush-to-zero: the IEEE operations
# of the reference in its order, hence the bitwise parity that layer 2 shows for the same text.

_ARRAY_NAMES = {"p", "g", "m", "v", "buf", "p0", "m0", "v0", "buf0", "mask", "u2", "keep"}
_CUPY_TYPES = {"int32": "int", "bool": "bool", "float64": "double", "T": "T"}


def _elementwise_as_cuda(kname, params, dtype):
    """A ``__global__`` wrapper like CuPy's ElementwiseKernel code for (ins, outs, operation)."""
    ins, outs, op = params
    args, binds = [], []
    for const, decl in ((True, ins), (False, outs)):
        for item in decl.split(","):
            t, n = item.split()
            ctype = _CUPY_TYPES[t]
            if n in _ARRAY_NAMES:
                args.append(f"{'const ' if const else ''}{ctype}* _raw_{n}")
                binds.append(f"{'const ' if const else ''}{ctype}& {n} = _raw_{n}[i];")
            else:
                args.append(f"const {ctype} {n}")
    return (f'extern "C" __global__ void {kname}({", ".join(args)}, long long n) {{\n'
            f"    typedef {_C[dtype]} T;\n"
            f"    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;\n"
            f"         i += (long long)blockDim.x * gridDim.x) {{\n"
            f"        {' '.join(binds)}\n        {op}\n    }}\n}}\n")


def _all_cuda_kernels(dtype):
    """Every kernel the backend can launch for ``dtype``, in one CUDA file: (source, names)."""
    T = _C[dtype]
    parts, names = [CB.DEVICE_SOURCE, f"typedef {T} T;"], []
    for name in sorted(CB.SPECS):
        masks = (False, True) if name == "masked_adam" else (False,)
        for inplace in (True, False):
            for with_mask in masks:
                kname = f"ew_{name}_{'in' if inplace else 'out'}{'_mask' if with_mask else ''}"
                parts.append(_elementwise_as_cuda(
                    kname, CB.elementwise_params(name, inplace, with_mask), dtype))
                names.append(kname)
        src, kname = CB.multi_tensor_source(name, dtype)
        parts.append(src[len(CB.DEVICE_SOURCE):])
        names.append(kname)
    for source in (CB.count_source, CB.nonfinite_source):
        src, kname = source(dtype)
        parts.append(src[len(CB.DEVICE_SOURCE):])
        names.append(kname)
    parts.append(_elementwise_as_cuda("ew_norm_u", CB.NORM_PARAMS, dtype))
    names.append("ew_norm_u")
    return "\n".join(parts), names


def _ptx_entries(ptx):
    """{kernel name: its PTX body} (helper functions are inlined: ``__forceinline__``)."""
    pieces = re.split(r"\.visible \.entry (\w+)\(", ptx)
    return dict(zip(pieces[1::2], pieces[2::2]))


@pytest.fixture(scope="module")
def nvcc_ptx(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no nvcc (CUDA toolkit) to compile the CUDA sources; the GPU tests run them")
    d = tmp_path_factory.mktemp("nvcc")

    def compile_(dtype, options):
        source, names = _all_cuda_kernels(dtype)
        cu = d / f"k_{dtype}_{len(options)}.cu"
        cu.write_text(source)
        out = cu.with_suffix(".ptx")
        # sm_90: the H100s this project is lent; the claims do not depend on the architecture.
        cmd = [nvcc, "-ptx", "-arch=compute_90", "-std=c++17", *options, "-o", str(out), str(cu)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
        entries = _ptx_entries(out.read_text())
        assert sorted(entries) == sorted(names), "a kernel is missing from the PTX"
        return entries

    return compile_


_FLOAT_OP = re.compile(r"\b(add|sub|mul|fma|div|sqrt|rcp|rsqrt|neg|abs|min|max)"
                       r"((?:\.[a-z0-9]+)*)\.f(32|64)\b")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conformance_build_is_ieee_operation_by_operation(nvcc_ptx, dtype):
    entries = nvcc_ptx(dtype, CB._options())
    for kname, body in entries.items():
        ops = [(m.group(1), m.group(2)) for m in _FLOAT_OP.finditer(body)]
        assert ops or kname.startswith(("refopt_multi_count", "refopt_multi_nonfinite")), \
            f"{kname}: no float arithmetic?"
        for op, mods in ops:
            assert op != "fma", f"{kname}: an FMA in the conformance build"
            assert ".ftz" not in mods, f"{kname}: {op}{mods} flushes subnormals to zero"
            assert ".approx" not in mods and ".full" not in mods and op not in ("rcp", "rsqrt"), \
                f"{kname}: {op}{mods} is not correctly rounded"
            if op in ("add", "sub", "mul", "div", "sqrt"):
                assert ".rn" in mods, f"{kname}: {op}{mods} has no rounding modifier (contractible)"
        # Nothing outside the ops above: no half/packed arithmetic, no approximate intrinsics.
        assert not re.search(r"\.(f16|bf16|f16x2|bf16x2|f32x2)\b", body), kname
        assert not re.search(r"\b(ex2|lg2|sin|cos|tanh)\.", body), kname
    # The count is exact: per-block and global integer atomics, no float sums.
    for kind in ("count", "nonfinite"):
        count = entries[f"refopt_multi_{kind}_{dtype}"]
        assert "atom.shared.add.u64" in count and "atom.global.add.u64" in count


def test_fast_build_differs_where_the_conformance_build_says_it_does(nvcc_ptx):
    """REFOPT_CUPY_FMAD=1 (no --fmad=false): contraction is allowed, as documented."""
    entries = nvcc_ptx("float32", ())
    body = entries["ew_adamx_in"]
    assert re.search(r"\bfma\.rn\.f32\b", body) or re.search(r"\b(add|mul)\.f32\b", body)


def test_gpu_only_bench_without_a_device_says_so_and_writes_nothing(tmp_path, capsys):
    if CB.cupy_unavailable_reason() is None:
        pytest.skip("a GPU is usable here: the GPU bench test covers this")
    from refopt.kernels.bench import main  # (as make gpu-check runs it: no refopt.proofs needed)

    assert main(["--backends", "cupy", "--sizes", "1e8", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no CPU backend requested" in out and "GPU figures not measured" in out
    assert list(tmp_path.iterdir()) == []


def test_backend_refuses_clearly_without_a_device():
    reason = CB.cupy_unavailable_reason()
    if reason is None:
        pytest.skip("a CUDA device is present: the refusal path is not reachable")
    with pytest.raises(RuntimeError, match="backend='cupy' cannot run here"):
        refopt.get_rule("adamx", backend="cupy")


def test_is_cupy_array_without_importing_cupy():
    assert not CB.is_cupy_array(np.zeros(3))
    fake = type("ndarray", (), {"__module__": "cupy._core.core"})()
    assert CB.is_cupy_array(fake)


# -- 2. the device source on the host ------------------------------------------------------

_HOST_PRELUDE = """
#include <cmath>
#include <cstdint>
using namespace std;
#define REFOPT_DEVICE inline
#define __global__
struct refopt_dim3 { unsigned x; };
static refopt_dim3 blockIdx, threadIdx, blockDim;
"""
_C = {"float32": "float", "float64": "double"}
_CT = {"float32": ctypes.c_float, "float64": ctypes.c_double}


def _host_source():
    parts = [_HOST_PRELUDE, CB.DEVICE_SOURCE]
    for dtype, T in _C.items():
        for name, (state, scalars) in CB.SPECS.items():
            cdecl = ", ".join(f"{'int' if t == 'int32' else T if t == 'T' else t} {n}"
                              for t, n in scalars)
            arrays = ", ".join(f"{T}* {a}" for a in state)
            call = ", ".join(["p[i]", "g_i", *(f"{a}[i]" for a in state), *(n for _, n in scalars)])
            parts.append(f"""
extern "C" void host_{name}_{dtype}({T}* p, const {T}* g, {arrays}, bool* mask_o, long long n,
                                    {cdecl}) {{
    for (long long i = 0; i < n; ++i) {{
        {T} g_i = g[i];
        bool keep = refopt_{name}<{T}>({call});
        if (mask_o) mask_o[i] = keep;
    }}
}}""")
            src, kname = CB.multi_tensor_source(name, dtype)
            parts.append(src[len(CB.DEVICE_SOURCE) + 1:])
            parts.append(f"""
extern "C" void launch_{kname}(unsigned grid, unsigned block, const unsigned long long* ptrs,
        const long long* sizes, const int* ct, const long long* cs, const {T}* ts, const int* is,
        long long chunk) {{
    blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b)
        for (unsigned t = 0; t < block; ++t) {{
            blockIdx.x = b; threadIdx.x = t;
            {kname}(ptrs, sizes, ct, cs, ts, is, chunk);
        }}
}}""")
        parts.append(f"""
extern "C" long long host_count_{dtype}(const {T}* m, const {T}* g, long long n, {T} b1,
                                        {T} omb1, int mask_mode, bool strict, {T} zero) {{
    long long kept = 0;
    for (long long i = 0; i < n; ++i) kept += refopt_count_one<{T}>(m[i], g[i], b1, omb1,
                                                                   mask_mode, strict, zero);
    return kept;
}}
extern "C" void host_norm_{dtype}(const {T}* g, const {T}* m, const {T}* v, long long n, {T} b1,
        {T} omb1, {T} b2, {T} omb2, {T} denom_div, {T} eps, {T} zero, int mask_mode, bool strict,
        double* u2, bool* keep) {{
    for (long long i = 0; i < n; ++i) {{
        bool k;
        double u = refopt_norm_u<{T}>(g[i], m[i], v[i], b1, omb1, b2, omb2, denom_div, eps, zero,
                                      mask_mode, strict, k);
        u2[i] = u * u;
        keep[i] = k;
    }}
}}""")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler (g++/clang++) to run the CUDA device source on the host")
    d = tmp_path_factory.mktemp("cuda_on_host")
    (d / "k.cpp").write_text(_host_source())
    # -ffp-contract=off: no FMA contraction, as NVRTC --fmad=false; -fno-fast-math is the default.
    cmd = [cxx, "-O2", "-std=c++14", "-ffp-contract=off", "-fPIC", "-shared", str(d / "k.cpp"),
           "-o", str(d / "k.so")]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(d / "k.so"))


def _ptr(a):
    return ctypes.c_void_p(a.ctypes.data) if a is not None else ctypes.c_void_p(0)


def _scalar(t, value, dtype):
    if t == "T":
        return _CT[dtype](value)
    return ctypes.c_bool(bool(value)) if t == "bool" else ctypes.c_int(int(value))


class _HostKernels:
    """The fused kernel namespace over NumPy arrays: the CUDA source compiled for the host."""

    def __init__(self, lib):
        self.lib = lib

    def count_nonfinite(self, g):
        return int(g.size - np.count_nonzero(np.isfinite(g)))

    def _update(self, name, ins, outs, scalars, mask_o=None):
        state, spec = CB.SPECS[name]
        if outs is not None:  # out of place: the ElementwiseKernel copies, then updates
            for src, dst in zip([ins[0], *ins[2:]], outs):
                dst[...] = src
            arrays = [outs[0], ins[1], *outs[1:]]
        else:
            arrays = ins
        dtype = arrays[0].dtype.name
        fn = getattr(self.lib, f"host_{name}_{dtype}")
        fn(*(_ptr(a) for a in arrays), _ptr(mask_o), ctypes.c_longlong(arrays[0].size),
           *(_scalar(t, s, dtype) for (t, _), s in zip(spec, scalars)))

    def __getattr__(self, name):
        if name in CB.SPECS:
            return lambda ins, outs, *s: self._update(name, ins, outs, s)
        raise AttributeError(name)

    def masked_adam(self, ins, outs, mask_o, write_mask, *s):
        self._update("masked_adam", ins, outs, s, mask_o if write_mask else None)

    def count_kept(self, m, g, b1, omb1, mask_mode, strict, zero):
        dtype = g.dtype.name
        fn = getattr(self.lib, f"host_count_{dtype}")
        fn.restype = ctypes.c_longlong
        return int(fn(_ptr(m), _ptr(g), ctypes.c_longlong(g.size), _CT[dtype](b1),
                      _CT[dtype](omb1), ctypes.c_int(mask_mode), ctypes.c_bool(strict),
                      _CT[dtype](zero)))

    def count_many(self, requests):
        return np.asarray([self.count_kept(*r) for r in requests], dtype=np.int64)

    def norm_sums(self, g, m, v, b1, omb1, b2, omb2, denom_div, eps, zero, mask_mode, strict):
        dtype = g.dtype.name
        u2 = np.empty(g.size)
        keep = np.empty(g.size, dtype=bool)
        getattr(self.lib, f"host_norm_{dtype}")(
            _ptr(g), _ptr(m), _ptr(v), ctypes.c_longlong(g.size),
            *(_CT[dtype](x) for x in (b1, omb1, b2, omb2, denom_div, eps, zero)),
            ctypes.c_int(mask_mode), ctypes.c_bool(strict), _ptr(u2), _ptr(keep))
        return int(np.count_nonzero(keep)), float(u2.sum()), float(np.where(keep, u2, 0.0).sum())

    def multi_update(self, name, calls):
        dtype = calls[0][0][0].dtype
        sizes = [int(ins[0].size) for ins, _ in calls]
        tensor, start = CB.chunk_table(sizes)
        if not tensor.size:
            return
        ptrs = np.asarray([a.ctypes.data for ins, _ in calls for a in ins], dtype=np.uint64)
        split = [CB.split_scalars(name, s, dtype) for _, s in calls]
        ts = np.ascontiguousarray(np.stack([a for a, _ in split]))
        is_ = np.ascontiguousarray(np.stack([b for _, b in split]))
        sizes_a = np.asarray(sizes, np.int64)
        self.multi_launches.append((name, len(calls)))
        getattr(self.lib, f"launch_refopt_multi_{name}_{dtype.name}")(
            ctypes.c_uint(tensor.size), ctypes.c_uint(8), _ptr(ptrs), _ptr(sizes_a),
            _ptr(tensor), _ptr(start), _ptr(ts), _ptr(is_), ctypes.c_longlong(CB.CHUNK))

    multi_launches: list


class _HostRule(HostArrays, FusedRule):
    """CupyRule's logic (plans, multi-tensor batching) over NumPy arrays and the host build."""

    backend = "cuda-source-on-host"
    _batched = CB.CupyRule._batched
    _batch_group = CB.CupyRule._batch_group

    def _no_mask(self):
        return None


def _host_rule(lib, name, **hyper):
    kernels = _HostKernels(lib)
    kernels.multi_launches = []
    return _HostRule(refopt.get_rule(name, **hyper), kernels)


SHAPES = [(), (1,), (7,), (1023,), (3, 5)]


def _grads(shapes, dtype, t):
    rng = np.random.default_rng(100 + t)
    out = []
    for s in shapes:
        g = rng.standard_normal(s) * (0.5 + t % 3)
        g.reshape(-1)[t % 5::5] = 0.0
        out.append(np.asarray(g, dtype=dtype))
    return out


def _configs():
    configs = [(name, {}) for name in RULES]
    for name, info in RULES.items():
        for option, values in info.variants.items():
            configs += [(name, {option: v}) for v in values]
    configs += [("alphaadam", {"mask_source": "m_prev", "first_step": f, "strict": s,
                               "alpha_rule": r, **({"gamma": 0.25} if r != "soft" else {})})
                for f in ("unmasked", "cautious", "as_is") for s in (True, False)
                for r in ("count", "soft")]
    configs += [(n, {"eps": 0.0}) for n in ("adamx", "adams", "adam", "cadamw", "alphaadam")]
    # C-AdamW's torch-style eps (spec alphaadam.md E5): not in the registry's variant list.
    configs += [("cadamw", {"bias_correction": "torch"}),
                ("cadamw", {"bias_correction": "torch", "scaling": "count+1"})]
    configs += [("sgdm", {"nesterov": True, "weight_decay": 0.1})]
    return configs


CONFIGS = _configs()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"{n}-{h}" for n, h in CONFIGS])
def test_device_source_on_host_matches_reference(host_lib, cfg, dtype):
    name, hyper = cfg
    ref = refopt.get_rule(name, **hyper)
    host = _host_rule(host_lib, name, **hyper)
    norm = hyper.get("alpha_rule") == "norm"
    rng = np.random.default_rng(7)
    params = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES]
    p_r, s_r = params, ref.init(params)
    p_h, s_h = params, host.init(params)
    p_i = [p.copy() for p in params]  # in place: the multi-tensor path
    s_i = host.init(p_i)
    for t in range(1, 6):
        g = _grads(SHAPES, dtype, t)
        p_r, s_r, info_r = ref.step_with_info(p_r, g, s_r, lr=1e-2 / t)
        p_h, s_h, info_h = host.step_with_info(p_h, g, s_h, lr=1e-2 / t)
        s_i = host.step_(p_i, g, s_i, lr=1e-2 / t)
        for got_p, got_s in ((p_h, s_h), (p_i, s_i)):
            assert got_s.step == s_r.step
            for b in ref.buffers:
                for x, y in zip(getattr(s_r, b), getattr(got_s, b)):
                    assert np.array_equal(x, y), (t, b)
            for x, y in zip(p_r, got_p):
                if norm:  # alpha from float64 sums in another order: see the module docstring
                    np.testing.assert_allclose(y, x, rtol=0, atol=1e-6 * np.abs(x).max(initial=1))
                else:
                    assert np.array_equal(x, y), t
        for a, b in zip(info_r["tensors"], info_h["tensors"]):
            if "mask" in a:
                assert np.array_equal(a["mask"], b["mask"]) and a["kept"] == b["kept"]
                assert (a["alpha"] == b["alpha"]) if not norm else \
                    np.isclose(a["alpha"], b["alpha"])
    if not norm:  # every small tensor went through one multi-tensor launch per step
        assert host.K.multi_launches and all(k == len(SHAPES) for _, k in host.K.multi_launches)


# -- 2b. the CuPy glue on the host: a fake ``cupy`` backed by the host build ----------------
#
# Layer 2 reimplements the kernel namespace; this layer runs the backend's own Python glue
# (``_CupyKernels``: kernel construction, argument order of every ElementwiseKernel call, the
# packing of pointer tables and per-tensor scalars for the RawKernels; ``CupyRule``; HostFacing;
# trajectory's transfers) against a stand-in ``cupy`` module whose arrays live in host memory and
# whose update kernels run the host build of the same CUDA source (the two count RawKernels, which
# need barriers, are emulated in Python from their documented layout: their CUDA bodies are only
# compiled, by layer 1b). Like CuPy, its arrays refuse implicit
# conversion to NumPy, and its kernels refuse scalars of the wrong type, so code that would fail
# on a device fails here. The GPU tests below run unchanged against it.


class _FakeMemory:
    def __init__(self, ptr):
        self.ptr = ptr


class _FakeDeviceArray:
    """What refopt uses of ``cupy.ndarray``, over a NumPy array in host memory."""

    def __init__(self, a):
        self._a = a

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    flags = property(lambda self: self._a.flags)
    data = property(lambda self: _FakeMemory(self._a.ctypes.data))

    def reshape(self, *shape):
        return _FakeDeviceArray(self._a.reshape(*shape))

    def sum(self):
        return _FakeDeviceArray(np.asarray(self._a.sum()))

    def copy(self):
        return _FakeDeviceArray(self._a.copy())

    def view(self, dtype):
        return _FakeDeviceArray(self._a.view(dtype))

    def __setitem__(self, key, value):
        self._a[key] = _host(value)

    def get(self):
        return self._a.copy()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed (fake cupy)")


_FakeDeviceArray.__name__ = _FakeDeviceArray.__qualname__ = "ndarray"
_FakeDeviceArray.__module__ = "cupy"


def _host(a):
    return a._a if isinstance(a, _FakeDeviceArray) else a


def _parse_params(text):
    return [tuple(item.split()) for item in text.split(",")] if text.strip() else []


class _FakeElementwiseKernel:
    def __init__(self, lib, in_params, out_params, operation, name, preamble="", options=(),
                 no_return=False):
        assert preamble == CB.DEVICE_SOURCE and tuple(options) == CB._options()
        self.lib, self.name, self.no_return = lib, name, no_return
        self.ins, self.outs = _parse_params(in_params), _parse_params(out_params)

    def __call__(self, *args):
        params = self.ins + self.outs
        if len(args) == len(self.ins) and not self.no_return:  # outputs allocated here
            n = next(a.size for a in args if isinstance(a, _FakeDeviceArray))
            args = args + tuple(_FakeDeviceArray(np.empty(n, dtype=np.dtype(t)))
                                for t, _ in self.outs)
        assert len(args) == len(params), f"{self.name}: {len(args)} arguments for {params}"
        bound, T = {}, None
        for (t, n), a in zip(params, args):
            if isinstance(a, _FakeDeviceArray) and t == "T":
                assert T in (None, a.dtype), f"{self.name}: T is {T} and {a.dtype} ({n})"
                T = a.dtype
            bound[n] = a
        for (t, n), a in zip(params, args):  # scalars: CuPy refuses a mismatched type
            if isinstance(a, _FakeDeviceArray):
                continue
            if t == "T":
                assert isinstance(a, np.generic) and a.dtype == T, f"{self.name}: {n} = {a!r}"
            elif t == "bool":
                assert isinstance(a, (bool, np.bool_)), f"{self.name}: {n} = {a!r}"
            elif t == "int32":
                assert isinstance(a, (int, np.int32)) and not isinstance(a, bool), (n, a)
        dtype = T.name
        if self.name == "refopt_norm_u":
            b = bound
            getattr(self.lib, f"host_norm_{dtype}")(
                _ptr(_host(b["g"])), _ptr(_host(b["m"])), _ptr(_host(b["v"])),
                ctypes.c_longlong(b["g"].size),
                *(_CT[dtype](b[k]) for k in ("b1", "omb1", "b2", "omb2", "denom_div", "eps",
                                             "zero")),
                ctypes.c_int(int(b["mask_mode"])), ctypes.c_bool(bool(b["strict"])),
                _ptr(_host(b["u2"])), _ptr(_host(b["keep"])))
            return None if self.no_return else (b["u2"], b["keep"])
        kernel, mode = self.name[len("refopt_"):].rsplit("_", 1)
        state, spec = CB.SPECS[kernel]
        if mode == "out":  # p = p0; m = m0; ... then the in-place update of the outputs
            for a in ("p", *state):
                _host(bound[a])[...] = _host(bound[a + "0"])
        arrays = [bound["p"], bound["g"], *(bound[a] for a in state)]
        mask = bound.get("mask")
        getattr(self.lib, f"host_{kernel}_{dtype}")(
            *(_ptr(_host(a)) for a in arrays), _ptr(_host(mask) if mask is not None else None),
            ctypes.c_longlong(arrays[0].size),
            *(_scalar(t, bound[n], dtype) for t, n in spec))
        return None


class _FakeRawKernel:
    def __init__(self, lib, source, name, options=()):
        assert tuple(options) == CB._options()
        self.lib, self.name, self.source = lib, name, source

    launches: list = []  # (kernel name, blocks), for the tests

    def __call__(self, grid, block, args):
        _FakeRawKernel.launches.append((self.name, grid[0]))
        args = [_host(a) for a in args]
        if self.name.startswith("refopt_multi_nonfinite_"):
            # The kernel's layout (see CB.nonfinite_source): g per tensor, a count per tensor.
            ptrs, sizes, ct, cs, chunk, counts = args
            ctype = _CT[self.name.rsplit("_", 1)[1]]
            for blk in range(grid[0]):
                k, start = int(ct[blk]), int(cs[blk])
                end = min(start + int(chunk), int(sizes[k]))
                g = np.ctypeslib.as_array((ctype * (end - start)).from_address(
                    int(ptrs[k]) + start * ctypes.sizeof(ctype)))
                counts[k] += np.uint64(np.count_nonzero(~np.isfinite(g)))
            return
        if self.name.startswith("refopt_multi_count_"):
            # The kernel's layout (see CB.count_source): m, g per tensor; ts = b1, omb1, zero;
            # is = mask_mode, strict; one block per chunk, counts added per tensor.
            ptrs, sizes, ct, cs, ts, is_, chunk, counts = args
            ts, is_ = ts.reshape(-1), is_.reshape(-1)  # device memory is flat
            dtype = ts.dtype.name
            fn = getattr(self.lib, f"host_count_{dtype}")
            fn.restype = ctypes.c_longlong
            for blk in range(grid[0]):
                k, start = int(ct[blk]), int(cs[blk])
                end = min(start + int(chunk), int(sizes[k]))
                off = start * ts.dtype.itemsize
                counts[k] += np.uint64(fn(
                    ctypes.c_void_p(int(ptrs[2 * k]) + off),
                    ctypes.c_void_p(int(ptrs[2 * k + 1]) + off), ctypes.c_longlong(end - start),
                    _CT[dtype](ts[3 * k]), _CT[dtype](ts[3 * k + 1]), ctypes.c_int(int(is_[2 * k])),
                    ctypes.c_bool(bool(is_[2 * k + 1])), _CT[dtype](ts[3 * k + 2])))
            return
        ptrs, sizes, ct, cs, ts, is_, chunk = args
        getattr(self.lib, f"launch_{self.name}")(
            ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]), _ptr(ptrs), _ptr(sizes), _ptr(ct),
            _ptr(cs), _ptr(ts), _ptr(is_), ctypes.c_longlong(int(chunk)))


def _fake_cupy_module(lib):
    import types

    def wrap(a):
        return _FakeDeviceArray(np.asarray(a))

    def asarray(x, dtype=None):
        if isinstance(x, _FakeDeviceArray):
            return x if dtype is None or x.dtype == dtype else wrap(x._a.astype(dtype))
        return wrap(np.array(x, dtype=dtype, copy=True))  # host -> device: a copy

    def asnumpy(x):
        return x._a.copy() if isinstance(x, _FakeDeviceArray) else np.asarray(x)

    cupy = types.ModuleType("cupy")
    cupy.ndarray = _FakeDeviceArray
    cupy.asarray, cupy.asnumpy = asarray, asnumpy
    cupy.ascontiguousarray = lambda a: wrap(np.ascontiguousarray(a._a))
    cupy.empty = lambda shape, dtype=float: wrap(np.full(shape, np.nan, dtype=dtype)
                                                 if np.dtype(dtype).kind == "f"
                                                 else np.empty(shape, dtype=dtype))
    cupy.zeros = lambda shape, dtype=float: wrap(np.zeros(shape, dtype=dtype))
    cupy.ones = lambda shape, dtype=float: wrap(np.ones(shape, dtype=dtype))
    cupy.zeros_like = lambda a: wrap(np.zeros_like(a._a))
    cupy.isfinite = lambda a: wrap(np.isfinite(a._a))
    cupy.count_nonzero = lambda a: wrap(np.asarray(np.count_nonzero(a._a)))
    cupy.where = lambda c, a, b: wrap(np.where(_host(c), _host(a), _host(b)))
    cupy.uint64 = np.uint64
    cupy.ElementwiseKernel = lambda *a, **k: _FakeElementwiseKernel(lib, *a, **k)
    cupy.RawKernel = lambda *a, **k: _FakeRawKernel(lib, *a, **k)
    cupy.empty_like = lambda a: wrap(np.full_like(a._a, np.nan))
    cupy.float32 = np.float32
    cupy.__version__ = "fake (host)"
    cupy.cuda = types.SimpleNamespace(
        Device=lambda: types.SimpleNamespace(id=0),
        runtime=types.SimpleNamespace(
            getDeviceCount=lambda: 1, runtimeGetVersion=lambda: 0, driverGetVersion=lambda: 0,
            getDeviceProperties=lambda i: {"name": b"fake cupy on the host",
                                           "totalGlobalMem": 0}))
    return cupy


def _fake_cupyx_profiler():
    import time
    import types

    def benchmark(fn, args=(), n_warmup=1, n_repeat=1):
        for _ in range(n_warmup):
            fn(*args)
        times = []
        for _ in range(n_repeat):
            t0 = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - t0)
        # As cupyx's result: cpu_times per repeat, gpu_times per (device, repeat).
        return types.SimpleNamespace(cpu_times=np.asarray(times), gpu_times=np.asarray([times]))

    return types.SimpleNamespace(benchmark=benchmark)


@pytest.fixture
def fake_cupy(host_lib, monkeypatch):
    import sys
    import types

    cupy = _fake_cupy_module(host_lib)
    cupyx = types.ModuleType("cupyx")
    cupyx.profiler = _fake_cupyx_profiler()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setitem(sys.modules, "cupyx.profiler", cupyx.profiler)
    return cupy


# -- 3. on a GPU ----------------------------------------------------------------------------

def _cupy_or_skip():
    reason = CB.cupy_unavailable_reason()
    if reason:
        pytest.skip(f"GPU test: {reason}")
    import cupy

    return cupy


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"{n}-{h}" for n, h in CONFIGS])
def test_cupy_matches_reference(cfg, dtype):
    _check_matches_reference(_cupy_or_skip(), cfg, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"{n}-{h}" for n, h in CONFIGS])
def test_cupy_glue_on_host_matches_reference(fake_cupy, cfg, dtype):
    _check_matches_reference(fake_cupy, cfg, dtype)


def _check_matches_reference(cupy, cfg, dtype):
    name, hyper = cfg
    norm = hyper.get("alpha_rule") == "norm"
    ref = refopt.get_rule(name, **hyper)
    gpu = refopt.get_rule(name, backend="cupy", **hyper)
    shapes = SHAPES + [(10**5 + 3,)]
    rng = np.random.default_rng(8)
    params = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]
    p_r, s_r = params, ref.init(params)
    p_g = [cupy.asarray(p) for p in params]
    s_g = gpu.init(p_g)
    p_i = [cupy.asarray(p) for p in params]
    s_i = gpu.init(p_i)
    for t in range(1, 6):
        g = _grads(shapes, dtype, t)
        g_d = [cupy.asarray(x) for x in g]
        p_r, s_r, info_r = ref.step_with_info(p_r, g, s_r, lr=1e-2 / t)
        p_g, s_g, info_g = gpu.step_with_info(p_g, g_d, s_g, lr=1e-2 / t)
        s_i = gpu.step_(p_i, g_d, s_i, lr=1e-2 / t)
        for got_p, got_s in ((p_g, s_g), (p_i, s_i)):
            assert got_s.step == s_r.step
            for b in ref.buffers:
                for x, y in zip(getattr(s_r, b), getattr(got_s, b)):
                    assert np.array_equal(x, cupy.asnumpy(y)), (t, b)
            for x, y in zip(p_r, got_p):
                y = cupy.asnumpy(y)
                if norm:
                    np.testing.assert_allclose(y, x, rtol=0, atol=1e-6 * np.abs(x).max(initial=1))
                else:
                    assert np.array_equal(x, y), t
        for a, b in zip(info_r["tensors"], info_g["tensors"]):
            if "mask" in a:
                assert np.array_equal(a["mask"], cupy.asnumpy(b["mask"])) and a["kept"] == b["kept"]


@pytest.mark.gpu
def test_cupy_bench_quick_writes_gpu_json(tmp_path):
    _cupy_or_skip()
    _check_bench_quick(tmp_path)


def test_cupy_glue_on_host_bench_quick_writes_gpu_json(fake_cupy, tmp_path):
    _check_bench_quick(tmp_path)


def _check_bench_quick(tmp_path):
    import json

    from refopt.kernels.bench import main  # (as make gpu-check runs it: no refopt.proofs needed)

    assert main(["--quick", "--backends", "cupy", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert data["gpu"]["measured"] and data["gpu"]["device"]
    assert {r["rule"] for r in data["results"] if r["backend"] == "cupy"} == {"adamx"}
    assert (tmp_path / "bench_gpu.png").stat().st_size > 0
    for r in data["results"]:
        assert r["time_s"]["median"] > 0 and r["GBps"] > 0
        if r["backend"] == "cupy":
            assert r["fraction_of_copy_roofline"] > 0
    many = data["gpu"]["many_tensors"]  # --quick: 4 tensors of 100, the multi-tensor path
    assert (many["tensors"], many["n_each"]) == (4, 100)
    cupy_rows = [r for r in many["results"] if r["backend"] == "cupy"]
    assert [r["measured_with"] for r in cupy_rows] == ["adamx"]
    for r in many["results"]:
        assert r["time_s"]["median"] > 0 and r["host_time_s"]["median"] > 0


def test_cupy_arrays_select_the_cupy_backend_in_trajectory():
    if CB.cupy_unavailable_reason() is None:
        pytest.skip("a CUDA device is present: covered by test_cupy_trajectory")
    fake = type("ndarray", (), {"__module__": "cupy._core.core"})()
    with pytest.raises(RuntimeError, match="backend='cupy' cannot run here"):
        refopt.trajectory("adamx", [fake], [np.zeros((1, 1))])


@pytest.mark.gpu
def test_cupy_trajectory():
    _check_trajectory(_cupy_or_skip())


def test_cupy_glue_on_host_trajectory(fake_cupy):
    _check_trajectory(fake_cupy)


def _check_trajectory(cupy):
    rng = np.random.default_rng(9)
    params = [rng.standard_normal(5), rng.standard_normal(())]
    grads = [rng.standard_normal((6, 5)), rng.standard_normal(6)]
    host = refopt.trajectory("alphaadam", params, grads)
    dev = refopt.trajectory("alphaadam", [cupy.asarray(p) for p in params], grads)
    for x, y in zip(host.params, dev.params):
        assert isinstance(y, np.ndarray) and np.array_equal(x, y)
    for x, y in zip(host.info["mask"], dev.info["mask"]):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("hyper", [{}, {"alpha_rule": "norm"}, {"mask_source": "m_t"}])
def test_multi_tensor_path_with_mixed_dtypes_none_grads_and_a_large_tensor(host_lib, hyper):
    # Batching groups tensors by dtype, leaves None-grad tensors alone and large tensors to the
    # per-tensor kernels, and falls back to them entirely for alpha_rule="norm".
    ref = refopt.get_rule("alphaadam", **hyper)
    host = _host_rule(host_lib, "alphaadam", **hyper)
    rng = np.random.default_rng(11)
    dtypes = [np.float32, np.float64, np.float32, np.float64, np.float32]
    shapes = [(5,), (7,), (), (3, 2), (CB.MULTI_TENSOR_MAX + 1,)]
    params = [np.asarray(rng.standard_normal(s), dtype=d) for s, d in zip(shapes, dtypes)]
    p_r, s_r = params, ref.init(params)
    p_i = [p.copy() for p in params]
    s_i = host.init(p_i)
    for t in range(1, 5):
        g = [np.asarray(rng.standard_normal(s), dtype=d) for s, d in zip(shapes, dtypes)]
        if t % 2 == 0:
            g[1] = None
        p_r, s_r = ref.step(p_r, g, s_r)
        s_i = host.step_(p_i, g, s_i)
        assert s_i.step == s_r.step
        for x, y in zip(p_r, p_i):
            if hyper.get("alpha_rule") == "norm":
                np.testing.assert_allclose(y, x, rtol=0, atol=1e-6 * np.abs(x).max(initial=1))
            else:
                assert np.array_equal(x, y)
    launched = [k for _, k in host.K.multi_launches]
    if hyper.get("alpha_rule") == "norm":  # batched only at t = 1 (unmasked: no sums needed)
        assert launched == [2, 2]
    else:  # float32: tensors 0 and 2 every step; float64: 1 and 3 on odd steps only
        assert launched.count(2) >= 4 and all(k <= 2 for k in launched)


@pytest.mark.parametrize("hyper", [{}, {"alpha_rule": "norm"}, {"mask_source": "m_t"}])
def test_cupy_glue_on_host_mixed_dtypes_none_grads_and_a_large_tensor(fake_cupy, hyper):
    """The real CupyRule through batching, per-tensor kernels (in and out of place) and info."""
    ref = refopt.get_rule("alphaadam", **hyper)
    dev = refopt.get_rule("alphaadam", backend="cupy", **hyper)
    rng = np.random.default_rng(12)
    dtypes = [np.float32, np.float64, np.float32, np.float64, np.float32]
    shapes = [(5,), (7,), (), (3, 2), (CB.MULTI_TENSOR_MAX + 1,)]
    params = [np.asarray(rng.standard_normal(s), dtype=d) for s, d in zip(shapes, dtypes)]
    p_r, s_r = params, ref.init(params)
    p_i = [fake_cupy.asarray(p) for p in params]
    s_i = dev.init(p_i)
    p_o, s_o = [fake_cupy.asarray(p) for p in params], dev.init(p_i)
    for t in range(1, 5):
        g = [np.asarray(rng.standard_normal(s), dtype=d) for s, d in zip(shapes, dtypes)]
        if t % 2 == 0:
            g[1] = None
        g_d = [None if x is None else fake_cupy.asarray(x) for x in g]
        p_r, s_r, info_r = ref.step_with_info(p_r, g, s_r)
        s_i = dev.step_(p_i, g_d, s_i)
        p_o, s_o, info_o = dev.step_with_info(p_o, g_d, s_o)
        assert s_i.step == s_o.step == s_r.step
        for x, y, z in zip(p_r, p_i, p_o):
            for got in (fake_cupy.asnumpy(y), fake_cupy.asnumpy(z)):
                if hyper.get("alpha_rule") == "norm":
                    np.testing.assert_allclose(got, x, rtol=0,
                                               atol=1e-6 * np.abs(x).max(initial=1))
                else:
                    assert np.array_equal(x, got)
        for a, b in zip(info_r["tensors"], info_o["tensors"]):
            if "mask" in a:
                assert np.array_equal(a["mask"], fake_cupy.asnumpy(b["mask"]))
                assert a["kept"] == b["kept"]


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["adamx", "adams", "alphaadam", "sgdm"])
def test_cupy_complex_pairs(name):
    _check_complex(_cupy_or_skip(), name)


@pytest.mark.parametrize("name", ["adamx", "adams", "alphaadam", "sgdm"])
def test_cupy_glue_on_host_complex_pairs(fake_cupy, name):
    _check_complex(fake_cupy, name)


def _check_complex(cupy, name):
    """Complex tensors as (real, imag) pairs on the device: bitwise the NumPy reference's."""
    rng = np.random.default_rng(13)
    shapes, dtypes = [(3, 4), (), (2_000,)], [np.complex128, np.complex64, np.complex64]
    params = [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(d)
              for s, d in zip(shapes, dtypes)]
    ref = refopt.get_rule(name)
    dev = refopt.get_rule(name, backend="cupy")
    p_r, s_r = params, ref.init(params)
    p_o = [cupy.asarray(p) for p in params]
    s_o = dev.init(p_o)
    p_i = [cupy.asarray(p) for p in params]
    s_i = dev.init(p_i)
    for t in range(4):
        g = [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(d)
             for s, d in zip(shapes, dtypes)]
        g_d = [cupy.asarray(x) for x in g]
        p_r, s_r = ref.step(p_r, g, s_r)
        p_o, s_o = dev.step(p_o, g_d, s_o)
        s_i = dev.step_(p_i, g_d, s_i)
    for x, y, z in zip(p_r, p_o, p_i):
        assert x.dtype == cupy.asnumpy(y).dtype
        assert x.tobytes() == cupy.asnumpy(y).tobytes() == cupy.asnumpy(z).tobytes()
    for b in ref.buffers:
        for x, y, z in zip(getattr(s_r, b), getattr(s_o, b), getattr(s_i, b)):
            assert x.tobytes() == cupy.asnumpy(y).tobytes() == cupy.asnumpy(z).tobytes()


@pytest.mark.parametrize("bad", [3, 4, 0])
@pytest.mark.parametrize("inplace", [False, True])
def test_cupy_glue_on_host_nonfinite_prepass_is_one_launch_per_dtype(fake_cupy, inplace, bad):
    dtypes = [np.float32, np.float64, np.float32, np.float64, np.float32]
    shapes = [(5,), (7,), (), (40_000,), (3, 2)]
    params = [fake_cupy.asarray(np.ones(s, dtype=d)) for s, d in zip(shapes, dtypes)]
    grads = [np.full(s, 0.5, dtype=d) for s, d in zip(shapes, dtypes)]
    grads[bad].reshape(-1)[-1] = np.inf  # (for tensor 3: the last element of its third chunk)
    g_d = [fake_cupy.asarray(g) for g in grads]
    g_d[1] = None
    for policy in ("raise", "skip"):
        rule = refopt.get_rule("adams", backend="cupy", nonfinite=policy)
        state = rule.init(params)
        _FakeRawKernel.launches.clear()
        if policy == "raise":
            with pytest.raises(FloatingPointError, match=rf"grads\[{bad}\] contains NaN or inf"):
                rule.step_(params, g_d, state) if inplace else rule.step(params, g_d, state)
        else:
            out = rule.step_with_info_(params, g_d, state) if inplace else \
                rule.step_with_info(params, g_d, state)
            assert out[-1]["skipped"]
        prepass = [n for n, _ in _FakeRawKernel.launches if "nonfinite" in n]
        assert sorted(prepass) == ["refopt_multi_nonfinite_float32",
                                   "refopt_multi_nonfinite_float64"]
        assert all(fake_cupy.asnumpy(p).tobytes() == np.ones(s, d).tobytes()
                   for p, s, d in zip(params, shapes, dtypes))


@pytest.mark.gpu
@pytest.mark.parametrize("rule", sorted(RULES))
def test_golden_suite_passes_through_the_cupy_backend(rule):
    _cupy_or_skip()
    _check_golden(rule)


@pytest.mark.parametrize("rule", ["adamx", "adams", "alphaadam"])
def test_cupy_glue_on_host_passes_the_golden_suite(fake_cupy, rule):
    _check_golden(rule)


def _check_golden(rule):
    from refopt.verify import load_cases, verify_rule

    if not load_cases(rule):
        pytest.skip(f"the golden suite has no case for {rule}")

    report = verify_rule(rule, "cupy", diagnose=False)  # HostFacing copies both ways
    assert report.counted and report.passed, report.table()
