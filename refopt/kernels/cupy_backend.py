r"""Fused GPU kernels with CuPy: ElementwiseKernels per tensor, pointer-table RawKernels for many.

``refopt.get_rule(name, backend="cupy", **hyper)`` returns a :class:`CupyRule` with the reference
rule's API and the in-place ``step_`` of :class:`refopt.kernels.fused.FusedRule`, over CuPy
arrays. The update of one element is a CUDA C++ device function per rule (:data:`DEVICE_SOURCE`),
written as the NumPy reference's arithmetic operation by operation, with every scalar arriving in
the tensor's type ``T`` (no literals in ``T`` arithmetic) and ``safe_divide``'s 0/0 := 0. It is
used by

* one ``cupy.ElementwiseKernel`` per rule, in place (param and state passed as *outputs*) or out
  of place, for a tensor at a time;
* one ``cupy.RawKernel`` per rule and dtype for the **multi-tensor** in-place step: a device
  table of pointers, sizes and per-tensor scalars, and a grid of chunks (``multi_tensor_apply``
  style), so that a step over many small tensors is one launch, not one per tensor. Used by
  ``step_`` for tensors of at most :data:`MULTI_TENSOR_MAX` elements;
* AlphaAdam's and C-AdamW's count: a RawKernel over the same chunk table, an integer count per
  tensor (shared-memory then global ``atomicAdd``: exact and order-free), for one or many tensors
  in one launch; ``norm``'s float64 sums are CuPy reductions of a float64 ``u**2`` (a rare
  variant: two extra passes, not tuned).

Conformance build (default): NVRTC ``--fmad=false`` (no contraction of a*b+c into an FMA, which
NumPy never does), IEEE division and square root (NVRTC's defaults). Set ``REFOPT_CUPY_FMAD=1``
for the fast build (FMA contraction on, last-bit differences expected). Bitwise parity with the
reference is **expected** from the same reasoning as the numba backend but has **not been
measured on a GPU** yet; ``tests/test_kernels_cupy.py`` checks it where a device exists, on any
machine with a C++ compiler runs the same device source compiled for the host against the
reference, and where the CUDA toolkit's ``nvcc`` is installed compiles every kernel with these
options and checks that the PTX is IEEE operation by operation (no FMA, ``.rn`` on every add,
sub and mul, ``div.rn``/``sqrt.rn``, no flush-to-zero). This module's own Python runs there too,
against a stand-in ``cupy`` whose update kernels are the host build of the same source (its two
count RawKernels are emulated from their layout: compiled by nvcc, never run).

CuPy is imported lazily (``import refopt`` never touches CUDA); :func:`cupy_unavailable_reason`
says why the backend cannot run here.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .fused import FusedRule, RecordingRule

#: Tensors up to this many elements are stepped together by the multi-tensor RawKernel.
MULTI_TENSOR_MAX = 1 << 20
#: Elements per block of the chunked (multi-tensor and count) kernels; 256 threads per block.
CHUNK = 1 << 14
THREADS = 256

#: Device functions, one per rule; CUDA C++, also valid host C++ (see the tests).
DEVICE_SOURCE = r"""
#ifndef REFOPT_DEVICE
#define REFOPT_DEVICE __device__ __forceinline__
#endif

REFOPT_DEVICE float refopt_sqrt(float x) { return sqrtf(x); }
REFOPT_DEVICE double refopt_sqrt(double x) { return sqrt(x); }

// num / den with 0/0 := 0 (refopt.rules._base.safe_divide).
template <typename T>
REFOPT_DEVICE T refopt_safe_div(T num, T den, T zero) {
    T q = num / den;
    return (num == zero && den == zero) ? zero : q;
}

// x rounded to a multiple of 2**e, ties to even: one rounding of the addition, exact subtraction.
REFOPT_DEVICE double refopt_round_multiple(double x, int e) {
    double c = ldexp(1.5, 52 + e);
    return (x + c) - c;
}

REFOPT_DEVICE double refopt_round_float16(double x) {
    if (!isfinite(x) || x == 0.0) return x;
    double inf = ldexp(1.0, 1024);
    if (fabs(x) >= 65520.0) return copysign(inf, x);
    int e;
    frexp(x, &e);
    double r = refopt_round_multiple(x, (e - 1 > -14 ? e - 1 : -14) - 10);
    if (fabs(r) > 65504.0) return copysign(inf, x);
    if (r == 0.0) return copysign(0.0, x);
    return r;
}

REFOPT_DEVICE double refopt_round_bfloat16(double x) {
    double f = (double)(float)x;
    if (!isfinite(f) || f == 0.0) return f;
    double inf = ldexp(1.0, 1024);
    int e;
    frexp(f, &e);
    double r = refopt_round_multiple(f, (e - 1 > -126 ? e - 1 : -126) - 7);
    if (fabs(r) > 3.4028234663852886e38) return copysign(inf, f);
    if (r == 0.0) return copysign(0.0, f);
    return r;
}

// round_to_bits: 1 float32, 2 float16, 3 bfloat16 (0: not called).
REFOPT_DEVICE double refopt_round_state(double x, int mode) {
    if (mode == 1) return (double)(float)x;
    if (mode == 2) return refopt_round_float16(x);
    return refopt_round_bfloat16(x);
}

template <typename T>
REFOPT_DEVICE bool refopt_adamx(T& p, T g, T& m, T& v, bool l2_mode, T decay, T l2, T b1t,
                                T omb1t, T b2t, T omb2t, T lr, T eps, T zero, int round_mode) {
    T pi = p;
    if (l2_mode) g = g + l2 * pi; else pi = pi * decay;
    T mi = b1t * m + omb1t * g;
    T vi = b2t * v + omb2t * (g * g);
    if (round_mode != 0) {
        mi = (T)refopt_round_state((double)mi, round_mode);
        vi = (T)refopt_round_state((double)vi, round_mode);
    }
    m = mi;
    v = vi;
    p = pi - lr * refopt_safe_div(mi, refopt_sqrt(vi) + eps, zero);
    return true;
}

template <typename T>
REFOPT_DEVICE bool refopt_adams(T& p, T g, T& m, T decay, T b1, T omb1, T b2, T omb2, T bc1,
                                T lr, T eps, T zero) {
    T pi = p * decay;
    T mp = m;
    T m_prev = mp / bc1;
    T nu = b2 * (m_prev * m_prev) + omb2 * (g * g);
    T mi = b1 * mp + omb1 * g;
    m = mi;
    p = pi - lr * refopt_safe_div(mi / bc1, refopt_sqrt(nu) + eps, zero);
    return true;
}

template <typename T>
REFOPT_DEVICE bool refopt_adam(T& p, T g, T& m, T& v, bool decoupled, T decay, T wd, T b1,
                               T omb1, T b2, T omb2, T step_size, T denom_div, T eps, T zero) {
    T pi = p;
    if (decoupled) pi = pi * decay; else g = g + wd * pi;
    T mi = b1 * m + omb1 * g;
    T vi = b2 * v + omb2 * (g * g);
    m = mi;
    v = vi;
    p = pi - step_size * refopt_safe_div(mi, refopt_sqrt(vi) / denom_div + eps, zero);
    return true;
}

template <typename T>
REFOPT_DEVICE bool refopt_adax(T& p, T g, T& m, T& v, bool l2_mode, T decay, T l2, T b1,
                               T omb1, T growth, T b, T step_size, T eps, T zero) {
    T pi = p;
    if (l2_mode) g = g + l2 * pi; else pi = pi * decay;
    T mi = b1 * m + omb1 * g;
    T vi = growth * v + b * (g * g);
    m = mi;
    v = vi;
    p = pi - step_size * refopt_safe_div(mi, refopt_sqrt(vi) + eps, zero);
    return true;
}

template <typename T>
REFOPT_DEVICE bool refopt_sgdm(T& p, T g, T& buf, bool first, bool nesterov, T wd, T momentum,
                               T omd, T lr) {
    T pi = p;
    g = g + wd * pi;
    T bi = first ? g : momentum * buf + omd * g;
    buf = bi;
    p = nesterov ? pi - lr * (g + momentum * bi) : pi - lr * bi;
    return true;
}

// AlphaAdam's mask: mode 0 all kept, 1 score = m_prev g, 2 score = m_t g; > 0 or >= 0.
template <typename T>
REFOPT_DEVICE bool refopt_keep(T mp, T mi, T g, int mask_mode, bool strict, T zero) {
    if (mask_mode == 0) return true;
    T score = mask_mode == 1 ? mp * g : mi * g;
    return strict ? score > zero : score >= zero;
}

template <typename T>
REFOPT_DEVICE bool refopt_masked_adam(T& p, T g, T& m, T& v, T decay, T b1, T omb1, T b2,
                                      T omb2, T step_size, T denom_div, T eps, T zero,
                                      int mask_mode, bool strict, T psi_kept, T psi_drop) {
    T mp = m;
    T pi = p * decay;
    T mi = b1 * mp + omb1 * g;
    T vi = b2 * v + omb2 * (g * g);
    T u = refopt_safe_div(mi, refopt_sqrt(vi) / denom_div + eps, zero);
    bool keep = refopt_keep(mp, mi, g, mask_mode, strict, zero);
    T psi = keep ? psi_kept : psi_drop;
    m = mi;
    v = vi;
    p = pi - step_size * (psi * u);
    return keep;
}

// AlphaAdam's u = m_t / (sqrt(v_t)/d + eps) in T, widened to double (alpha_rule="norm").
template <typename T>
REFOPT_DEVICE double refopt_norm_u(T g, T m, T v, T b1, T omb1, T b2, T omb2, T denom_div, T eps,
                                   T zero, int mask_mode, bool strict, bool& keep) {
    T mi = b1 * m + omb1 * g;
    T vi = b2 * v + omb2 * (g * g);
    keep = refopt_keep(m, mi, g, mask_mode, strict, zero);
    return (double)refopt_safe_div(mi, refopt_sqrt(vi) / denom_div + eps, zero);
}

template <typename T>
REFOPT_DEVICE bool refopt_cautious_adam(T& p, T g, T& m, T& v, T decay, T b1, T omb1, T b2,
                                        T omb2, T step_size, T denom_div, T eps, T zero,
                                        T keep_val, T drop_val) {
    T pi = p * decay;
    T mi = b1 * m + omb1 * g;
    T vi = b2 * v + omb2 * (g * g);
    T scale = mi * g > zero ? keep_val : drop_val;
    m = mi;
    v = vi;
    // denom_div: one under bias_correction="hf" (an exact division), under "torch" the
    // square root of the second bias correction.
    p = pi - step_size * refopt_safe_div(mi * scale, refopt_sqrt(vi) / denom_div + eps, zero);
    return true;
}

// The count of kept coordinates for one element (score from m_prev or from m_t).
template <typename T>
REFOPT_DEVICE bool refopt_count_one(T m, T g, T b1, T omb1, int mask_mode, bool strict, T zero) {
    T mi = b1 * m + omb1 * g;
    return refopt_keep(m, mi, g, mask_mode, strict, zero);
}
"""

#: Per kernel of the namespace: the state arrays and the scalar parameters, in call order
#: (CuPy types: ``T`` the array dtype, ``bool``, ``int32``).
SPECS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {}


def _spec(name: str, state: tuple[str, ...], scalars: str) -> None:
    SPECS[name] = (state, tuple(tuple(s.split()) for s in scalars.split(",")))


_spec("adamx", ("m", "v"), "bool l2_mode, T decay, T l2, T b1t, T omb1t, T b2t, T omb2t, T lr, "
      "T eps, T zero, int32 round_mode")
_spec("adams", ("m",), "T decay, T b1, T omb1, T b2, T omb2, T bc1, T lr, T eps, T zero")
_spec("adam", ("m", "v"), "bool decoupled, T decay, T wd, T b1, T omb1, T b2, T omb2, "
      "T step_size, T denom_div, T eps, T zero")
_spec("adax", ("m", "v"), "bool l2_mode, T decay, T l2, T b1, T omb1, T growth, T b, "
      "T step_size, T eps, T zero")
_spec("sgdm", ("buf",), "bool first, bool nesterov, T wd, T momentum, T omd, T lr")
_spec("masked_adam", ("m", "v"), "T decay, T b1, T omb1, T b2, T omb2, T step_size, "
      "T denom_div, T eps, T zero, int32 mask_mode, bool strict, T psi_kept, T psi_drop")
_spec("cautious_adam", ("m", "v"), "T decay, T b1, T omb1, T b2, T omb2, T step_size, "
      "T denom_div, T eps, T zero, T keep_val, T drop_val")

_C_TYPES = {"float32": "float", "float64": "double"}


def _options() -> tuple[str, ...]:
    return () if os.environ.get("REFOPT_CUPY_FMAD", "") == "1" else ("--fmad=false",)


def cupy_unavailable_reason() -> str | None:
    """None if CuPy is importable and sees a CUDA device, else why not (for skips and errors)."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return f"CuPy is not importable ({type(exc).__name__}: {exc})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy cannot reach a CUDA device ({type(exc).__name__}: {exc})"
    if count < 1:
        return "CuPy sees no CUDA device"
    return None


def is_cupy_array(a: Any) -> bool:
    """True for a ``cupy.ndarray``, tested without importing CuPy."""
    return type(a).__module__.split(".")[0] == "cupy" and type(a).__name__ == "ndarray"


# -- source generation (pure Python: testable without CUDA) ------------------------------------

def elementwise_params(name: str, inplace: bool, with_mask: bool = False) -> tuple[str, str, str]:
    """(in_params, out_params, operation) of the ElementwiseKernel of kernel ``name``."""
    state, scalars = SPECS[name]
    scal = ", ".join(f"{t} {n}" for t, n in scalars)
    call_args = ", ".join(["p", "g", *state, *(n for _, n in scalars)])
    call = f"refopt_{name}<T>({call_args})"
    out = ", ".join(f"T {a}" for a in ("p", *state)) + (", bool mask" if with_mask else "")
    if inplace:
        ins = f"T g, {scal}"
        op = (f"mask = {call};" if with_mask else f"{call};")
    else:
        ins = ", ".join(["T p0", "T g", *(f"T {a}0" for a in state)]) + f", {scal}"
        copy = " ".join(f"{a} = {a}0;" for a in ("p", *state))
        op = f"{copy} " + (f"mask = {call};" if with_mask else f"{call};")
    return ins, out, op


#: (in_params, out_params, operation) of AlphaAdam's ``norm`` ElementwiseKernel: u**2 in float64.
NORM_PARAMS = ("T g, T m, T v, T b1, T omb1, T b2, T omb2, T denom_div, T eps, T zero, "
               "int32 mask_mode, bool strict", "float64 u2, bool keep",
               "double u = refopt_norm_u<T>(g, m, v, b1, omb1, b2, omb2, denom_div, eps, zero, "
               "mask_mode, strict, keep); u2 = u * u;")


def multi_tensor_source(name: str, dtype: str) -> tuple[str, str]:
    """(source, kernel name) of the pointer-table RawKernel of kernel ``name`` for ``dtype``.

    Arguments: ``ptrs`` (uint64, per tensor: p, g, then the state arrays), ``sizes`` (int64),
    ``chunk_tensor`` (int32) and ``chunk_start`` (int64) per block, ``tscal`` (T, per tensor the
    ``T`` scalars in spec order), ``iscal`` (int32, per tensor the bool/int32 scalars).
    """
    state, scalars = SPECS[name]
    T = _C_TYPES[dtype]
    n_arrays = 2 + len(state)
    n_t = sum(1 for t, _ in scalars if t == "T")
    n_i = len(scalars) - n_t
    kname = f"refopt_multi_{name}_{dtype}"
    args, jt, ji = [], 0, 0
    for t, n in scalars:
        if t == "T":
            args.append(f"ts[{jt}]")
            jt += 1
        else:
            args.append(f"({'bool' if t == 'bool' else 'int'})is[{ji}]")
            ji += 1
    loads = "\n".join(f"        {T} {a}_i = {a}[i];" for a in ("p", *state))
    stores = "\n".join(f"        {a}[i] = {a}_i;" for a in ("p", *state))
    ptrs = "\n".join(f"    {T}* {a} = ({T}*)ptrs[k * {n_arrays} + {j + 2}];"
                     for j, a in enumerate(state))
    call = ", ".join(["p_i", "g[i]", *(f"{a}_i" for a in state), *args])
    src = f"""{DEVICE_SOURCE}
extern "C" __global__ void {kname}(const unsigned long long* ptrs, const long long* sizes,
        const int* chunk_tensor, const long long* chunk_start, const {T}* tscal,
        const int* iscal, long long chunk) {{
    int k = chunk_tensor[blockIdx.x];
    long long start = chunk_start[blockIdx.x];
    long long end = start + chunk < sizes[k] ? start + chunk : sizes[k];
    {T}* p = ({T}*)ptrs[k * {n_arrays}];
    const {T}* g = (const {T}*)ptrs[k * {n_arrays} + 1];
{ptrs}
    const {T}* ts = tscal + k * {max(n_t, 1)};
    const int* is = iscal + k * {max(n_i, 1)};
    for (long long i = start + threadIdx.x; i < end; i += blockDim.x) {{
{loads}
        refopt_{name}<{T}>({call});
{stores}
    }}
}}
"""
    return src, kname


def count_source(dtype: str) -> tuple[str, str]:
    """(source, kernel name) of the chunked integer count of kept coordinates, per tensor."""
    T = _C_TYPES[dtype]
    kname = f"refopt_multi_count_{dtype}"
    src = f"""{DEVICE_SOURCE}
extern "C" __global__ void {kname}(const unsigned long long* ptrs, const long long* sizes,
        const int* chunk_tensor, const long long* chunk_start, const {T}* tscal,
        const int* iscal, long long chunk, unsigned long long* counts) {{
    __shared__ unsigned long long block_count;
    int k = chunk_tensor[blockIdx.x];
    long long start = chunk_start[blockIdx.x];
    long long end = start + chunk < sizes[k] ? start + chunk : sizes[k];
    const {T}* m = (const {T}*)ptrs[2 * k];
    const {T}* g = (const {T}*)ptrs[2 * k + 1];
    const {T}* ts = tscal + 3 * k;  // b1, omb1, zero
    const int* is = iscal + 2 * k;   // mask_mode, strict
    if (threadIdx.x == 0) block_count = 0;
    __syncthreads();
    unsigned long long local = 0;
    for (long long i = start + threadIdx.x; i < end; i += blockDim.x) {{
        local += refopt_count_one<{T}>(m[i], g[i], ts[0], ts[1], is[0], (bool)is[1], ts[2]);
    }}
    atomicAdd(&block_count, local);
    __syncthreads();
    if (threadIdx.x == 0) atomicAdd(&counts[k], block_count);
}}
"""
    return src, kname


def nonfinite_source(dtype: str) -> tuple[str, str]:
    """(source, kernel name) of the chunked count of non-finite gradient values, per tensor.

    The non-finite policy's pre-pass over every tensor of a dtype in one launch (and one device
    sync), instead of two launches and a sync per tensor.
    """
    T = _C_TYPES[dtype]
    kname = f"refopt_multi_nonfinite_{dtype}"
    src = f"""{DEVICE_SOURCE}
extern "C" __global__ void {kname}(const unsigned long long* ptrs, const long long* sizes,
        const int* chunk_tensor, const long long* chunk_start, long long chunk,
        unsigned long long* counts) {{
    __shared__ unsigned long long block_count;
    int k = chunk_tensor[blockIdx.x];
    long long start = chunk_start[blockIdx.x];
    long long end = start + chunk < sizes[k] ? start + chunk : sizes[k];
    const {T}* g = (const {T}*)ptrs[k];
    if (threadIdx.x == 0) block_count = 0;
    __syncthreads();
    unsigned long long local = 0;
    for (long long i = start + threadIdx.x; i < end; i += blockDim.x) {{
        local += isfinite(g[i]) ? 0 : 1;
    }}
    atomicAdd(&block_count, local);
    __syncthreads();
    if (threadIdx.x == 0) atomicAdd(&counts[k], block_count);
}}
"""
    return src, kname


def chunk_table(sizes: list[int], chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Per block: which tensor and where its chunk starts (empty tensors get no block).

    Vectorised: the pre-pass builds it over every gradient each step, 10**9-element tensors
    included (a Python loop took 4.8 ms there).
    """
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
    blocks = (sizes + (chunk - 1)) // chunk
    tensor = np.repeat(np.arange(sizes.size, dtype=np.int32), blocks)
    first = np.repeat(np.cumsum(blocks) - blocks, blocks)  # each tensor's first block
    start = (np.arange(tensor.size, dtype=np.int64) - first) * chunk
    return tensor, start


def split_scalars(name: str, scalars: tuple, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The T scalars and the bool/int32 scalars of one call, as two small host arrays."""
    _, spec = SPECS[name]
    ts = [s for (t, _), s in zip(spec, scalars) if t == "T"]
    is_ = [int(s) for (t, _), s in zip(spec, scalars) if t != "T"]
    return (np.asarray(ts or [0], dtype=dtype), np.asarray(is_ or [0], dtype=np.int32))


# -- the kernel namespace over CuPy arrays -----------------------------------------------------

class _CupyKernels:
    """Kernel namespace of :mod:`refopt.kernels.fused` (flat CuPy arrays); kernels built lazily."""

    def __init__(self) -> None:
        self._elementwise: dict[tuple, Any] = {}
        self._raw: dict[tuple, Any] = {}
        self._norm = None

    def _ew(self, name: str, inplace: bool, with_mask: bool):
        key = (name, inplace, with_mask)
        if key not in self._elementwise:
            import cupy

            ins, outs, op = elementwise_params(name, inplace, with_mask)
            self._elementwise[key] = cupy.ElementwiseKernel(
                ins, outs, op, name=f"refopt_{name}_{'inplace' if inplace else 'out'}",
                preamble=DEVICE_SOURCE, options=_options(), no_return=True)
        return self._elementwise[key]

    def raw(self, kind: str, dtype: str):
        key = (kind, dtype)
        if key not in self._raw:
            import cupy

            src, kname = (count_source(dtype) if kind == "count"
                          else nonfinite_source(dtype) if kind == "nonfinite"
                          else multi_tensor_source(kind, dtype))
            self._raw[key] = cupy.RawKernel(src, kname, options=_options())
        return self._raw[key]

    @staticmethod
    def _typed(name: str, scalars: tuple) -> list:
        _, spec = SPECS[name]
        out = []
        for (t, _), s in zip(spec, scalars):
            out.append(np.bool_(s) if t == "bool" else np.int32(s) if t == "int32" else s)
        return out

    def _update(self, name, ins, outs, scalars, mask_o=None):
        args = self._typed(name, scalars)
        extra = [mask_o] if mask_o is not None else []
        if outs is None:
            self._ew(name, True, mask_o is not None)(ins[1], *args, ins[0], *ins[2:], *extra)
        else:
            self._ew(name, False, mask_o is not None)(*ins, *args, *outs, *extra)

    def count_nonfinite_many(self, grads) -> np.ndarray:
        """Non-finite values per flat gradient (same dtype), in one launch: a host int64 array."""
        import cupy

        sizes = [int(g.size) for g in grads]
        tensor, start = chunk_table(sizes)
        counts = cupy.zeros(len(grads), dtype=cupy.uint64)
        if tensor.size:
            ptrs = np.asarray([g.data.ptr for g in grads], dtype=np.uint64)
            self.raw("nonfinite", grads[0].dtype.name)(
                (tensor.size,), (THREADS,),
                (cupy.asarray(ptrs), cupy.asarray(np.asarray(sizes, np.int64)),
                 cupy.asarray(tensor), cupy.asarray(start), np.int64(CHUNK), counts))
        return cupy.asnumpy(counts).astype(np.int64)

    def adamx(self, ins, outs, *s):
        self._update("adamx", ins, outs, s)

    def adams(self, ins, outs, *s):
        self._update("adams", ins, outs, s)

    def adam(self, ins, outs, *s):
        self._update("adam", ins, outs, s)

    def adax(self, ins, outs, *s):
        self._update("adax", ins, outs, s)

    def sgdm(self, ins, outs, *s):
        self._update("sgdm", ins, outs, s)

    def cautious_adam(self, ins, outs, *s):
        self._update("cautious_adam", ins, outs, s)

    def masked_adam(self, ins, outs, mask_o, write_mask, *s):
        self._update("masked_adam", ins, outs, s, mask_o if write_mask else None)

    def count_kept(self, m, g, b1, omb1, mask_mode, strict, zero) -> int:
        return int(self.count_many([(m, g, b1, omb1, mask_mode, strict, zero)])[0])

    def count_many(self, requests) -> np.ndarray:
        """Kept counts of several tensors (same dtype) in one launch: a host int64 array."""
        import cupy

        dtype = requests[0][0].dtype
        sizes = [int(r[1].size) for r in requests]
        tensor, start = chunk_table(sizes)
        counts = cupy.zeros(len(requests), dtype=cupy.uint64)
        if tensor.size:
            ptrs = np.asarray([a.data.ptr for r in requests for a in (r[0], r[1])], np.uint64)
            ts = np.asarray([[r[2], r[3], r[6]] for r in requests], dtype=dtype)
            is_ = np.asarray([[int(r[4]), int(r[5])] for r in requests], dtype=np.int32)
            self.raw("count", dtype.name)(
                (tensor.size,), (THREADS,),
                (cupy.asarray(ptrs), cupy.asarray(np.asarray(sizes, np.int64)),
                 cupy.asarray(tensor), cupy.asarray(start), cupy.asarray(ts), cupy.asarray(is_),
                 np.int64(CHUNK), counts))
        return cupy.asnumpy(counts).astype(np.int64)

    def norm_sums(self, g, m, v, b1, omb1, b2, omb2, denom_div, eps, zero, mask_mode, strict):
        import cupy

        if self._norm is None:
            self._norm = cupy.ElementwiseKernel(*NORM_PARAMS, name="refopt_norm_u",
                                                preamble=DEVICE_SOURCE, options=_options())
        u2, keep = self._norm(g, m, v, b1, omb1, b2, omb2, denom_div, eps, zero,
                              np.int32(mask_mode), np.bool_(strict))
        kept = int(cupy.count_nonzero(keep))
        return kept, float(u2.sum()), float(cupy.where(keep, u2, 0.0).sum())

    def multi_update(self, name: str, calls: list) -> None:
        """One launch for several in-place calls ``(ins, scalars)`` of kernel ``name``."""
        import cupy

        dtype = calls[0][0][0].dtype
        sizes = [int(ins[0].size) for ins, _ in calls]
        tensor, start = chunk_table(sizes)
        if not tensor.size:
            return
        ptrs = np.asarray([a.data.ptr for ins, _ in calls for a in ins], dtype=np.uint64)
        split = [split_scalars(name, s, dtype) for _, s in calls]
        ts = np.stack([a for a, _ in split])
        is_ = np.stack([b for _, b in split])
        self.raw(name, dtype.name)(
            (tensor.size,), (THREADS,),
            (cupy.asarray(ptrs), cupy.asarray(np.asarray(sizes, np.int64)), cupy.asarray(tensor),
             cupy.asarray(start), cupy.asarray(ts), cupy.asarray(is_), np.int64(CHUNK)))


class _Recorder:
    """A kernel namespace that records the calls of the plans instead of launching them."""

    def __init__(self, counts: list | None = None) -> None:
        self.count_requests: list = []
        self.updates: list = []
        self._counts = list(counts) if counts is not None else None

    def count_kept(self, *args):
        self.count_requests.append(args)
        return self._counts.pop(0) if self._counts is not None else 0

    def norm_sums(self, *args):
        raise _NotBatchable

    def masked_adam(self, ins, outs, mask_o, write_mask, *s):
        self.updates.append(("masked_adam", ins, s))

    def __getattr__(self, name):
        if name in SPECS:
            return lambda ins, outs, *s: self.updates.append((name, ins, s))
        raise AttributeError(name)


class _NotBatchable(Exception):
    pass


class CupyRule(FusedRule):
    """A reference rule run by the CuPy kernels (see the module docstring)."""

    backend = "cupy"

    def _validate(self, params, grads, state):
        import cupy

        if is_cupy_array(params) or isinstance(params, np.ndarray):
            raise TypeError("params must be a list of arrays (one per tensor), got a single "
                            "array; wrap it as [params]")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, cupy.ndarray):
                raise TypeError(f"params[{i}] must be a cupy.ndarray for backend='cupy', got "
                                f"{type(p).__name__}")
            if p.dtype not in (np.float32, np.float64, np.complex64, np.complex128):
                raise TypeError(f"params[{i}] has dtype {p.dtype}; supported dtypes are float32 "
                                f"and float64, and complex64/complex128 (as (real, imag) pairs)")
        if is_cupy_array(grads) or isinstance(grads, np.ndarray):
            raise TypeError("grads must be a list of arrays (one per tensor), got a single array")
        grads = list(grads)
        if len(grads) != len(params):
            raise ValueError(f"grads has {len(grads)} tensors but params has {len(params)}")
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            if not isinstance(g, cupy.ndarray):
                raise TypeError(f"grads[{i}] must be a cupy.ndarray or None, got "
                                f"{type(g).__name__}")
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape "
                                 f"{p.shape}")
            if g.dtype != p.dtype:
                raise TypeError(f"grads[{i}] has dtype {g.dtype} but params[{i}] has dtype "
                                f"{p.dtype}; cast explicitly, refopt never casts silently")
        self.reference._check_state(params, state, array_type=cupy.ndarray)
        return params, grads

    def init(self, params):
        import cupy

        params = list(params)
        fields = {"step": tuple(0 for _ in params)}
        for b in self.buffers:
            fields[b] = tuple(cupy.zeros_like(p) for p in params)
        return self.state_type(**fields)

    def _flat(self, a):
        import cupy

        return cupy.ascontiguousarray(a).reshape(-1)

    def _contiguous(self, a):
        import cupy

        return cupy.ascontiguousarray(a)

    def _address(self, a) -> int:
        return int(a.data.ptr)

    def _memory_owner(self, a):
        mem = getattr(a.data, "mem", None)  # the allocation of a cupy MemoryPointer
        return 0 if mem is None else id(mem)

    def _shares_memory(self, a, b) -> bool:
        import cupy

        exact = getattr(cupy, "shares_memory", None)
        return True if exact is None else bool(exact(a, b))

    def _empty_like(self, a):
        import cupy

        return cupy.empty(a.shape, dtype=a.dtype)

    def _ones_mask(self, shape):
        import cupy

        return cupy.ones(shape, dtype=bool)

    def _empty_mask(self, shape):
        import cupy

        return cupy.empty(shape, dtype=bool)

    def _no_mask(self):
        return None

    def _nonfinite_tensors(self, grads) -> list[int]:
        """The pre-pass over every gradient: one count launch per dtype, one sync each."""
        bad: list[int] = []
        by_dtype: dict[Any, list[int]] = {}
        for i, g in enumerate(grads):
            if g is not None:
                by_dtype.setdefault(g.dtype, []).append(i)
        for idx in by_dtype.values():
            counts = self.K.count_nonfinite_many([self._flat(grads[i]) for i in idx])
            bad += [i for i, c in zip(idx, counts) if c > 0]
        return sorted(bad)

    def _batched(self, params, grads, state, lr, scalars_for) -> set[int]:
        """The multi-tensor in-place step of the small tensors; returns the indices it did."""
        small = [i for i, (p, g) in enumerate(zip(params, grads))
                 if g is not None and p.size <= MULTI_TENSOR_MAX]
        if len(small) < 2:
            return set()
        done: set[int] = set()
        for dtype in {params[i].dtype for i in small}:
            group = [i for i in small if params[i].dtype == dtype]
            if len(group) < 2:
                continue
            try:
                self._batch_group(params, grads, state, group, scalars_for)
            except _NotBatchable:
                return done
            done.update(group)
        return done

    def _batch_group(self, params, grads, state, group, scalars_for) -> None:
        def record(counts):
            rec = _Recorder(counts)
            for i in group:
                old = {b: getattr(state, b)[i] for b in self.buffers}
                t = state.step[i] + 1
                self._plan(RecordingRule(self, rec), params[i], grads[i], old, params[i], old, t,
                           scalars_for(t, params[i].dtype), False)
            return rec

        first = record(None)  # plans run once to collect the count requests
        counts = None
        if first.count_requests:
            counts = list(self.K.count_many(first.count_requests))
        rec = record(counts) if counts is not None else first
        by_kernel: dict[str, list] = {}
        for name, ins, s in rec.updates:
            by_kernel.setdefault(name, []).append((ins, s))
        for name, calls in by_kernel.items():
            self.K.multi_update(name, calls)


class HostFacing:
    """A :class:`CupyRule` seen through NumPy arrays: copies to the device and back each call.

    For drivers that hold host arrays (``refopt verify RULE cupy``, whose sessions copy params
    with NumPy): ``init``/``step``/``step_with_info`` take and return NumPy arrays, the info's
    masks included. Not for speed.
    """

    def __init__(self, rule: CupyRule) -> None:
        self.rule = rule
        self.name, self.hyper, self.buffers = rule.name, rule.hyper, rule.buffers
        self.backend = rule.backend

    def _state(self, state, move):
        return state._replace(**{b: tuple(move(x) for x in getattr(state, b))
                                 for b in self.buffers})

    def init(self, params):
        import cupy

        return self._state(self.rule.init([cupy.asarray(p) for p in params]), cupy.asnumpy)

    def step_with_info(self, params, grads, state, *, lr=None):
        import cupy

        p, s, info = self.rule.step_with_info(
            [cupy.asarray(x) for x in params],
            [None if g is None else cupy.asarray(g) for g in grads],
            self._state(state, cupy.asarray), lr=lr)
        tensors = [{k: cupy.asnumpy(v) if is_cupy_array(v) else v for k, v in t.items()}
                   for t in info["tensors"]]
        return ([cupy.asnumpy(x) for x in p], self._state(s, cupy.asnumpy),
                {**info, "tensors": tensors})

    def step(self, params, grads, state, *, lr=None):
        p, s, _ = self.step_with_info(params, grads, state, lr=lr)
        return p, s


def make_rule(reference) -> CupyRule:
    """Wrap a NumPy reference rule (from ``refopt.get_rule``) in the CuPy kernels."""
    reason = cupy_unavailable_reason()
    if reason:
        raise RuntimeError(f"backend='cupy' cannot run here: {reason}")
    return CupyRule(reference, _CupyKernels())
