r"""Fused CPU kernels with numba: one parallel pass per tensor, bitwise equal to the reference.

``refopt.get_rule(name, backend="numba", **hyper)`` returns a :class:`NumbaRule`: the reference
rule's API (``init``, ``step``, ``step_with_info``, ``buffers``, ``hyper``, ``name``,
``scalars``) plus the in-place ``step_``/``step_with_info_`` of
:class:`refopt.kernels.fused.FusedRule`.

Each kernel is a ``prange`` loop that loads ``param, grad`` and the state of one element, updates
them in registers and stores them once: AdamX moves 28 B per float32 element (read w, g, m, v;
write w, m, v), AdamS 20 B. Out of place, a plain store into memory that is not cached first
reads the line it writes (write-allocate: 40 B per AdamX element instead of 28), so a step whose
arrays exceed twice the last-level cache (:data:`STREAM_MIN_BYTES`) runs the same kernel block by
block into L1-resident scratch and copies each block out with non-temporal (streaming) stores;
see "streamed out-of-place drivers" below. A step over many small tensors runs each rule's plan
once per (step count, dtype), with a recorder for kernel namespace, and then all that group's
small tensors in one launch of the rule's table driver (:data:`_TABLE_DRIVERS`: the rule's own
one-thread kernel per tensor; :meth:`NumbaRule._batched`); AlphaAdam's and C-AdamW's counted
masks, whose launch depends on each tensor's count, have table drivers that count, derive alpha
and update per tensor (``_masked_batch``, ``_cautious_batch`` and their in-place twins), the
in-place steps' read-only pass over the gradients is one table launch per dtype, and ``step``'s
small outputs are views of one pooled array per dtype (:meth:`NumbaRule._batched_out`). Parity with the float64 NumPy reference
(``shared/guides/kernels.md``):

* ``fastmath=False`` (no reassociation, no contraction into FMA) and ``error_model="numpy"``
  (x/0 gives inf/nan as NumPy does, not ``ZeroDivisionError``);
* no numeric literals in the element arithmetic: every scalar is the reference's
  ``rule.scalars(t, lr)`` rounded once to the array dtype, ``zero`` included, so float32 stays
  float32 (numba would promote ``1 - b`` with a Python literal to float64);
* the reference's operation order and parenthesisation, operation by operation; ``np.sqrt``
  (which keeps float32, unlike ``math.sqrt``); ``safe_divide``'s 0/0 := 0.

The result is bitwise equal to the reference for every rule and option in float32 and float64,
except AlphaAdam's ``alpha_rule="norm"``, whose two float64 sums of squares are added in fixed
blocks of :data:`NORM_BLOCK` elements (independent of the thread count, but not NumPy's pairwise
order): alpha agrees to a few ulp. AdamX's ``state_dtype`` rounding (float32, float16, bfloat16)
is done in float64 arithmetic by the add-and-subtract trick, exact round-to-nearest-even.

Set ``REFOPT_NUMBA_FASTMATH=1`` before import to build with ``fastmath=True`` (faster, not
bitwise; the tests assume it is unset). Fastmath lets LLVM assume that no value is NaN or inf,
so then the non-finite policy is served by the separate pre-pass (built without fastmath), not by
the update kernels' own count.

numba is imported by this module only; ``import refopt`` never imports it.
"""
from __future__ import annotations

import ctypes
import math
import os
import platform
import types

import numpy as np
from llvmlite import ir
from numba import carray, get_num_threads, njit, prange
from numba import types as nbtypes
from numba.core import cgutils
from numba.extending import intrinsic

from .fused import (PLANS_READING_SIZE, FusedRule, HostArrays, RecordingRule,
                    alphaadam_alpha_known, alphaadam_mask_mode)
from .recycle import Recycler

_FASTMATH = os.environ.get("REFOPT_NUMBA_FASTMATH", "") == "1"
# numba's on-disk cache keys neither on fastmath nor on other flags: a fastmath build would load
# (and leave behind) kernels of the other kind, so it is never cached.
_JIT = dict(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=not _FASTMATH)
_JIT_SERIAL = dict(fastmath=_FASTMATH, error_model="numpy", cache=not _FASTMATH)

#: Block length of the deterministic float64 sums of AlphaAdam's ``norm`` rule.
NORM_BLOCK = 4096

# Largest finite values of the emulated storage formats, and the smallest normal exponents.
_HALF_MAX, _HALF_OVERFLOW = 65504.0, 65520.0
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def parallel_kernel(**options):
    """``@njit(parallel=True)``, plus ``.serial``: the same function compiled for one thread.

    Why the twin: below :data:`SERIAL_BELOW` elements waking the thread pool costs more than the
    work, and switching numba's thread count around each call instead (``set_num_threads``, a
    lock and a pool check, twice) cost 4 of the 10 us per small tensor (measured: 200 tensors of
    1000 elements). Same arithmetic, so the same bits (the reductions are integer counts and
    fixed-block sums).
    """
    def deco(func):
        kernel = njit(**{**_JIT, **options})(func)
        twin = types.FunctionType(func.__code__, func.__globals__, func.__name__ + "_serial",
                                  func.__defaults__, func.__closure__)
        twin.__qualname__ = func.__qualname__ + "_serial"  # its own numba cache file
        kernel.serial = njit(**{**_JIT_SERIAL, **options})(twin)
        return kernel
    return deco


# -- element helpers ---------------------------------------------------------------------------

@njit(**_JIT_SERIAL, inline="always")
def _safe_div(num, den, zero):
    """num / den with 0/0 := 0, as ``refopt.rules._base.safe_divide`` (select, no branch)."""
    q = num / den
    if (num == zero) & (den == zero):
        q = zero
    return q


@njit(**_JIT_SERIAL)
def _round_to_multiple(x, exponent):
    """x rounded to the nearest multiple of 2**exponent, ties to even (float64, exact).

    Adding c = 1.5 * 2**(52 + exponent) moves x into a binade whose spacing is 2**exponent, so the
    one rounding of the addition is the wanted round-to-nearest-even; subtracting c is exact.
    """
    c = math.ldexp(1.5, 52 + exponent)
    return (x + c) - c


@njit(**_JIT_SERIAL)
def _round_float16(x):
    """float64 -> nearest float16 (ties to even) -> float64, as ``x.astype(np.float16)``."""
    if not math.isfinite(x) or x == 0.0:
        return x
    if abs(x) >= _HALF_OVERFLOW:
        return math.copysign(math.inf, x)
    _, e = math.frexp(x)  # |x| in [2**(e-1), 2**e)
    r = _round_to_multiple(x, max(e - 1, -14) - 10)  # 11 significant bits; subnormals below 2**-14
    if abs(r) > _HALF_MAX:
        return math.copysign(math.inf, x)
    if r == 0.0:
        return math.copysign(0.0, x)
    return r


@njit(**_JIT_SERIAL)
def _round_bfloat16(x):
    """float64 -> float32 -> bfloat16 (ties to even) -> float64, as ``round_to_bits``."""
    f = np.float64(np.float32(x))
    if not math.isfinite(f) or f == 0.0:
        return f
    _, e = math.frexp(f)
    r = _round_to_multiple(f, max(e - 1, -126) - 7)  # 8 significant bits; float32 subnormals
    if abs(r) > _FLOAT32_MAX:
        return math.copysign(math.inf, f)
    if r == 0.0:
        return math.copysign(0.0, f)
    return r


@njit(**_JIT_SERIAL)
def _round_state(x, mode):
    """``round_to_bits`` for one value held in float64; mode 1 float32, 2 float16, 3 bfloat16."""
    if mode == 1:
        return np.float64(np.float32(x))
    if mode == 2:
        return _round_float16(x)
    return _round_bfloat16(x)


# -- non-temporal stores ---------------------------------------------------------------------

#: Bytes of one non-temporal vector store: 16 (SSE ``movntps``/``movntpd`` on x86-64, ``stnp``
#: of a q register on AArch64); every NumPy allocation is aligned to it.
_NT_BYTES = 16


@intrinsic
def _nt_store(typingctx, dst, dst_start, src, src_start, count):
    """dst[dst_start:+count] = src[src_start:+count] with non-temporal 16-byte vector stores.

    The caller guarantees that ``&dst[dst_start]`` is 16-byte aligned and that ``count`` is a
    multiple of the lanes (16 / itemsize). The stores are tagged ``!nontemporal``, which LLVM
    lowers to the target's streaming store (a plain store where it has none): the line is
    written without being read first, as a plain store must (write-allocate).
    """
    if not (isinstance(dst, nbtypes.Array) and isinstance(src, nbtypes.Array)
            and dst.dtype == src.dtype and dst.ndim == src.ndim == 1
            and dst.layout == src.layout == "C"):  # the stores ignore strides
        return None
    sig = nbtypes.void(dst, nbtypes.intp, src, nbtypes.intp, nbtypes.intp)

    def codegen(context, builder, signature, args):
        dst_ary = context.make_array(signature.args[0])(context, builder, args[0])
        src_ary = context.make_array(signature.args[2])(context, builder, args[2])
        elem = context.get_data_type(signature.args[0].dtype)
        itemsize = context.get_abi_sizeof(elem)
        lanes = _NT_BYTES // itemsize
        vec_ptr = ir.VectorType(elem, lanes).as_pointer()
        dst_ptr = builder.gep(dst_ary.data, [args[1]])
        src_ptr = builder.gep(src_ary.data, [args[3]])
        n_vec = builder.sdiv(args[4], ir.Constant(args[4].type, lanes))
        nontemporal = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        with cgutils.for_range(builder, n_vec) as loop:
            offset = builder.mul(loop.index, ir.Constant(loop.index.type, lanes))
            value = builder.load(builder.bitcast(builder.gep(src_ptr, [offset]), vec_ptr),
                                 align=itemsize)
            store = builder.store(value, builder.bitcast(builder.gep(dst_ptr, [offset]), vec_ptr),
                                  align=_NT_BYTES)
            store.set_metadata("nontemporal", nontemporal)
        return context.get_dummy_value()

    return sig, codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def _store_fence(typingctx):
    """Orders this thread's streaming stores before whatever it does next.

    Streaming stores are weakly ordered: on x86 only ``sfence``/``mfence`` is documented to order
    them (LLVM's ``fence seq_cst`` becomes ``lock or``, which the manuals do not promise for
    them), so x86 gets an explicit ``sfence``; the ``seq_cst`` fence covers the other targets.
    Each worker runs it after its last streamed block, before numba's join makes its results
    visible to the caller.
    """
    sig = nbtypes.void()

    def codegen(context, builder, signature, args):
        if _X86:
            sfence = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence")
            builder.call(sfence, [])
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


@njit(**_JIT_SERIAL)
def _stream_copy(dst, start, src, count):
    """dst[start:start + count] = src[:count], streaming the 16-byte aligned middle."""
    itemsize = dst.itemsize
    address = dst.ctypes.data + start * itemsize
    if address % itemsize:  # no element boundary is 16-byte aligned: copy plainly
        for j in range(count):
            dst[start + j] = src[j]
        return
    head = min(count, ((-address) % _NT_BYTES) // itemsize)
    for j in range(head):
        dst[start + j] = src[j]
    lanes = _NT_BYTES // itemsize
    body = (count - head) // lanes * lanes
    _nt_store(dst, start + head, src, head, body)
    for j in range(head + body, count):
        dst[start + j] = src[j]


#: Elements per block of a streamed kernel: each block is computed into scratch arrays that stay
#: in L1, then streamed to the outputs. 256 was fastest of 64..8192 (AdamX, 10**7 float32, 2
#: threads, this project's benchmark machine); much longer blocks lose the overlap of the reads
#: of one block with the streaming stores of the last.
STREAM_BLOCK = 256


@njit(**_JIT_SERIAL)
def _chunk_bounds(n, n_chunks, chunk):
    """[lo, hi) of chunk ``chunk`` of ``n_chunks`` whole blocks covering n elements."""
    n_blocks = (n + STREAM_BLOCK - 1) // STREAM_BLOCK
    per = (n_blocks + n_chunks - 1) // n_chunks
    return min(n, chunk * per * STREAM_BLOCK), min(n, (chunk + 1) * per * STREAM_BLOCK)


# -- kernels -------------------------------------------------------------------------------

# Never fastmath: under it LLVM may assume no NaN/inf and fold the test away.
@parallel_kernel(fastmath=False)
def _count_nonfinite(g):
    bad = 0
    for i in prange(g.size):
        if not np.isfinite(g[i]):
            bad += 1
    return bad


# Each rule is an element function (the reference's arithmetic, operation by operation) and two
# prange drivers: out-of-place (separate outputs) and in-place (writes back into its inputs).
# The in-place driver is a separate function because LLVM cannot prove an output that *may*
# alias an input safe to vectorise, and falls back to scalar code (2.5x slower, measured).

@njit(**_JIT_SERIAL)
def _adamx_elem(pi, gi, mi, vi, l2_mode, decay, l2, b1t, omb1t, b2t, omb2t, lr, eps, zero):
    if l2_mode:
        gi = gi + l2 * pi
    else:
        pi = pi * decay
    mi = b1t * mi + omb1t * gi
    vi = b2t * vi + omb2t * (gi * gi)
    return pi - lr * _safe_div(mi, np.sqrt(vi) + eps, zero), mi, vi


@parallel_kernel()
def _adamx_out(p, g, m, v, p_o, m_o, v_o, l2_mode, decay, l2, b1t, omb1t, b2t, omb2t, lr, eps,
               zero):
    bad = 0
    for i in prange(p.size):
        gi = g[i]
        bad += not np.isfinite(gi)  # free here: g is being read anyway
        p_o[i], m_o[i], v_o[i] = _adamx_elem(p[i], gi, m[i], v[i], l2_mode, decay, l2, b1t,
                                             omb1t, b2t, omb2t, lr, eps, zero)
    return bad


@parallel_kernel()
def _adamx_in(p, g, m, v, l2_mode, decay, l2, b1t, omb1t, b2t, omb2t, lr, eps, zero):
    for i in prange(p.size):
        p[i], m[i], v[i] = _adamx_elem(p[i], g[i], m[i], v[i], l2_mode, decay, l2, b1t, omb1t,
                                       b2t, omb2t, lr, eps, zero)


@parallel_kernel()
def _adamx_rounded(p, g, m, v, p_o, m_o, v_o, l2_mode, decay, l2, b1t, omb1t, b2t, omb2t, lr,
                   eps, zero, round_mode):
    """AdamX with ``state_dtype`` rounding; p_o, m_o, v_o may be p, m, v (rare: not tuned)."""
    bad = 0
    for i in prange(p.size):
        pi = p[i]
        gi = g[i]
        bad += not np.isfinite(gi)
        if l2_mode:
            gi = gi + l2 * pi
        else:
            pi = pi * decay
        mi = b1t * m[i] + omb1t * gi
        vi = b2t * v[i] + omb2t * (gi * gi)
        # Stored rounded (the store converts back to the array dtype exactly), then reloaded.
        m_o[i] = _round_state(np.float64(mi), round_mode)
        v_o[i] = _round_state(np.float64(vi), round_mode)
        mi = m_o[i]
        vi = v_o[i]
        p_o[i] = pi - lr * _safe_div(mi, np.sqrt(vi) + eps, zero)
    return bad


@njit(**_JIT_SERIAL)
def _adams_elem(pi, gi, mp, decay, b1, omb1, b2, omb2, bc1, lr, eps, zero):
    pi = pi * decay
    m_prev = mp / bc1
    nu = b2 * (m_prev * m_prev) + omb2 * (gi * gi)
    mi = b1 * mp + omb1 * gi
    return pi - lr * _safe_div(mi / bc1, np.sqrt(nu) + eps, zero), mi


@parallel_kernel()
def _adams_out(p, g, m, p_o, m_o, decay, b1, omb1, b2, omb2, bc1, lr, eps, zero):
    bad = 0
    for i in prange(p.size):
        gi = g[i]
        bad += not np.isfinite(gi)  # free here: g is being read anyway
        p_o[i], m_o[i] = _adams_elem(p[i], gi, m[i], decay, b1, omb1, b2, omb2, bc1, lr, eps,
                                     zero)
    return bad


@parallel_kernel()
def _adams_in(p, g, m, decay, b1, omb1, b2, omb2, bc1, lr, eps, zero):
    for i in prange(p.size):
        p[i], m[i] = _adams_elem(p[i], g[i], m[i], decay, b1, omb1, b2, omb2, bc1, lr, eps, zero)


@njit(**_JIT_SERIAL)
def _adam_elem(pi, gi, mi, vi, decoupled, decay, wd, b1, omb1, b2, omb2, step_size, denom_div,
               eps, zero):
    if decoupled:
        pi = pi * decay
    else:
        gi = gi + wd * pi
    mi = b1 * mi + omb1 * gi
    vi = b2 * vi + omb2 * (gi * gi)
    return pi - step_size * _safe_div(mi, np.sqrt(vi) / denom_div + eps, zero), mi, vi


@parallel_kernel()
def _adam_out(p, g, m, v, p_o, m_o, v_o, decoupled, decay, wd, b1, omb1, b2, omb2, step_size,
              denom_div, eps, zero):
    bad = 0
    for i in prange(p.size):
        gi = g[i]
        bad += not np.isfinite(gi)  # free here: g is being read anyway
        p_o[i], m_o[i], v_o[i] = _adam_elem(p[i], gi, m[i], v[i], decoupled, decay, wd, b1,
                                            omb1, b2, omb2, step_size, denom_div, eps, zero)
    return bad


@parallel_kernel()
def _adam_in(p, g, m, v, decoupled, decay, wd, b1, omb1, b2, omb2, step_size, denom_div, eps,
             zero):
    for i in prange(p.size):
        p[i], m[i], v[i] = _adam_elem(p[i], g[i], m[i], v[i], decoupled, decay, wd, b1, omb1, b2,
                                      omb2, step_size, denom_div, eps, zero)


@njit(**_JIT_SERIAL)
def _adax_elem(pi, gi, mi, vi, l2_mode, decay, l2, b1, omb1, growth, b, step_size, eps, zero):
    if l2_mode:
        gi = gi + l2 * pi
    else:
        pi = pi * decay
    mi = b1 * mi + omb1 * gi
    vi = growth * vi + b * (gi * gi)
    return pi - step_size * _safe_div(mi, np.sqrt(vi) + eps, zero), mi, vi


@parallel_kernel()
def _adax_out(p, g, m, v, p_o, m_o, v_o, l2_mode, decay, l2, b1, omb1, growth, b, step_size, eps,
              zero):
    bad = 0
    for i in prange(p.size):
        gi = g[i]
        bad += not np.isfinite(gi)  # free here: g is being read anyway
        p_o[i], m_o[i], v_o[i] = _adax_elem(p[i], gi, m[i], v[i], l2_mode, decay, l2, b1, omb1,
                                            growth, b, step_size, eps, zero)
    return bad


@parallel_kernel()
def _adax_in(p, g, m, v, l2_mode, decay, l2, b1, omb1, growth, b, step_size, eps, zero):
    for i in prange(p.size):
        p[i], m[i], v[i] = _adax_elem(p[i], g[i], m[i], v[i], l2_mode, decay, l2, b1, omb1,
                                      growth, b, step_size, eps, zero)


@njit(**_JIT_SERIAL)
def _sgdm_elem(pi, gi, bi, first, nesterov, wd, momentum, omd, lr):
    gi = gi + wd * pi
    if first:
        bi = gi
    else:
        bi = momentum * bi + omd * gi
    if nesterov:
        return pi - lr * (gi + momentum * bi), bi
    return pi - lr * bi, bi


@parallel_kernel()
def _sgdm_out(p, g, buf, p_o, buf_o, first, nesterov, wd, momentum, omd, lr):
    bad = 0
    for i in prange(p.size):
        gi = g[i]
        bad += not np.isfinite(gi)  # free here: g is being read anyway
        p_o[i], buf_o[i] = _sgdm_elem(p[i], gi, buf[i], first, nesterov, wd, momentum, omd, lr)
    return bad


@parallel_kernel()
def _sgdm_in(p, g, buf, first, nesterov, wd, momentum, omd, lr):
    for i in prange(p.size):
        p[i], buf[i] = _sgdm_elem(p[i], g[i], buf[i], first, nesterov, wd, momentum, omd, lr)


@parallel_kernel()
def _count_kept(m, g, b1, omb1, mask_mode, strict, zero):
    """Kept coordinates: score = m_prev g (mode 1) or m_t g (mode 2), > 0 or >= 0."""
    kept = 0
    for i in prange(g.size):
        gi = g[i]
        if mask_mode == 1:
            score = m[i] * gi
        else:
            score = (b1 * m[i] + omb1 * gi) * gi
        if strict:
            keep = score > zero
        else:
            keep = score >= zero
        if keep:
            kept += 1
    return kept


@parallel_kernel()
def _norm_sums(g, m, v, b1, omb1, b2, omb2, denom_div, eps, zero, mask_mode, strict):
    """(k, sum u^2, sum phi u^2) with u = m_t / (sqrt(v_t)/d + eps) squared in float64.

    Each block of NORM_BLOCK elements is summed in order, then the block sums in order: the
    result does not depend on the number of threads.
    """
    n = g.size
    n_blocks = (n + NORM_BLOCK - 1) // NORM_BLOCK
    part_all = np.zeros(n_blocks, dtype=np.float64)
    part_kept = np.zeros(n_blocks, dtype=np.float64)
    part_k = np.zeros(n_blocks, dtype=np.int64)
    for blk in prange(n_blocks):
        lo = blk * NORM_BLOCK
        hi = min(n, lo + NORM_BLOCK)
        s_all = np.float64(0)
        s_kept = np.float64(0)
        k = 0
        for i in range(lo, hi):
            gi = g[i]
            mp = m[i]
            mi = b1 * mp + omb1 * gi
            vi = b2 * v[i] + omb2 * (gi * gi)
            u = np.float64(_safe_div(mi, np.sqrt(vi) / denom_div + eps, zero))
            if mask_mode == 0:
                keep = True
            else:
                score = mp * gi if mask_mode == 1 else mi * gi
                keep = score > zero if strict else score >= zero
            s_all += u * u
            if keep:
                s_kept += u * u
                k += 1
        part_all[blk] = s_all
        part_kept[blk] = s_kept
        part_k[blk] = k
    sum_all = np.float64(0)
    sum_kept = np.float64(0)
    kept = 0
    for blk in range(n_blocks):
        sum_all += part_all[blk]
        sum_kept += part_kept[blk]
        kept += part_k[blk]
    return kept, sum_all, sum_kept


@njit(**_JIT_SERIAL)
def _masked_elem(pi, gi, mp, vi, decay, b1, omb1, b2, omb2, step_size, denom_div, eps, zero,
                 mask_mode, strict, psi_kept, psi_drop):
    pi = pi * decay
    mi = b1 * mp + omb1 * gi
    vi = b2 * vi + omb2 * (gi * gi)
    u = _safe_div(mi, np.sqrt(vi) / denom_div + eps, zero)
    if mask_mode == 0:
        keep = True
    else:
        score = mp * gi if mask_mode == 1 else mi * gi
        keep = score > zero if strict else score >= zero
    psi = psi_kept if keep else psi_drop
    return pi - step_size * (psi * u), mi, vi, keep


@parallel_kernel()
def _masked_adam_out(p, g, m, v, p_o, m_o, v_o, mask_o, write_mask, decay, b1, omb1, b2, omb2,
                     step_size, denom_div, eps, zero, mask_mode, strict, psi_kept, psi_drop):
    bad = 0
    for i in prange(p.size):
        gi = g[i]
        bad += not np.isfinite(gi)  # free here: g is being read anyway
        p_o[i], m_o[i], v_o[i], keep = _masked_elem(
            p[i], gi, m[i], v[i], decay, b1, omb1, b2, omb2, step_size, denom_div, eps, zero,
            mask_mode, strict, psi_kept, psi_drop)
        if write_mask:
            mask_o[i] = keep
    return bad


@parallel_kernel()
def _masked_adam_in(p, g, m, v, mask_o, write_mask, decay, b1, omb1, b2, omb2, step_size,
                    denom_div, eps, zero, mask_mode, strict, psi_kept, psi_drop):
    for i in prange(p.size):
        p[i], m[i], v[i], keep = _masked_elem(
            p[i], g[i], m[i], v[i], decay, b1, omb1, b2, omb2, step_size, denom_div, eps, zero,
            mask_mode, strict, psi_kept, psi_drop)
        if write_mask:
            mask_o[i] = keep


@njit(**_JIT_SERIAL)
def _cautious_elem(pi, gi, mi, vi, decay, b1, omb1, b2, omb2, step_size, denom_div, eps, zero,
                   keep_val, drop_val):
    pi = pi * decay
    mi = b1 * mi + omb1 * gi
    vi = b2 * vi + omb2 * (gi * gi)
    scale = keep_val if mi * gi > zero else drop_val
    # denom_div: 1 under bias_correction="hf" (x / 1 is exact), sqrt(1-b2^t) under "torch".
    return pi - step_size * _safe_div(mi * scale, np.sqrt(vi) / denom_div + eps, zero), mi, vi


@parallel_kernel()
def _cautious_adam_out(p, g, m, v, p_o, m_o, v_o, decay, b1, omb1, b2, omb2, step_size, denom_div,
                       eps, zero, keep_val, drop_val):
    bad = 0
    for i in prange(p.size):
        gi = g[i]
        bad += not np.isfinite(gi)  # free here: g is being read anyway
        p_o[i], m_o[i], v_o[i] = _cautious_elem(p[i], gi, m[i], v[i], decay, b1, omb1, b2,
                                                omb2, step_size, denom_div, eps, zero, keep_val,
                                                drop_val)
    return bad


@parallel_kernel()
def _cautious_adam_in(p, g, m, v, decay, b1, omb1, b2, omb2, step_size, denom_div, eps, zero,
                      keep_val, drop_val):
    for i in prange(p.size):
        p[i], m[i], v[i] = _cautious_elem(p[i], g[i], m[i], v[i], decay, b1, omb1, b2, omb2,
                                          step_size, denom_div, eps, zero, keep_val, drop_val)


# -- multi-tensor drivers of the counted masks --------------------------------------------------
# AlphaAdam's and C-AdamW's launch depends on each tensor's own count, so the replay of
# NumbaRule._batched cannot serve them. These drivers take a whole (t, dtype) group of small
# tensors in one launch: a table of array addresses, and per tensor its count pass (one read of
# m and g; norm: of g, m, v), its alpha from the count in float64 (the formulas of
# ``alpha_for``/``norm_alpha``, written out: the same IEEE operations on the same values), and
# the update by the per-tensor kernel's own element function. Each tensor is one iteration of
# the outer loop, so the result does not depend on the thread partition.

def _array_data_offset():
    """Offset of the data pointer in a NumPy array object: sizeof(PyObject), checked.

    ``PyArrayObject_fields`` starts with ``PyObject_HEAD`` and then ``char *data`` (NumPy's C
    API); reading it from ``id(a)`` costs 0.05 us per array where ``a.ctypes.data`` costs 0.5-3.
    Checked at import on arrays of several kinds; None (the drivers are then fed addresses
    read by ``__array_interface__``) if it does not hold on this interpreter.
    """
    offset = object.__basicsize__
    try:
        probes = [np.empty(3), np.zeros((4, 3), np.float32)[1:], np.ones(()),
                  np.arange(10.0)[::2]]
        for a in probes:
            if ctypes.c_void_p.from_address(id(a) + offset).value != \
                    a.__array_interface__["data"][0]:
                return None
    except (ValueError, TypeError, OSError):  # pragma: no cover - an unusual interpreter
        return None
    return offset


#: See :func:`_array_data_offset`; None: addresses are gathered by ``__array_interface__``.
ARRAY_DATA_OFFSET = _array_data_offset()


@intrinsic
def _data_pointer(typingctx, handle, offset, like):
    """A typed pointer to an array's data: ``*(char **)(handle + offset)``, or ``handle`` itself
    when ``offset`` is negative (the handle is then the data address)."""
    if not (isinstance(handle, nbtypes.Integer) and isinstance(offset, nbtypes.Integer)
            and isinstance(like, nbtypes.Float)):
        return None
    sig = nbtypes.CPointer(like)(handle, offset, like)

    def codegen(context, builder, signature, args):
        h, off = args[0], args[1]
        ptr_type = context.get_value_type(signature.return_type)
        slot = builder.inttoptr(builder.add(h, off), ptr_type.as_pointer())
        direct = builder.inttoptr(h, ptr_type)
        negative = builder.icmp_signed("<", off, ir.Constant(off.type, 0))
        with builder.if_else(negative) as (then, otherwise):
            with then:
                bb_then = builder.basic_block
            with otherwise:
                loaded = builder.load(slot)
                bb_else = builder.basic_block
        phi = builder.phi(ptr_type)
        phi.add_incoming(direct, bb_then)
        phi.add_incoming(loaded, bb_else)
        return phi

    return sig, codegen


@njit(**_JIT_SERIAL, inline="always")
def _view(table, k, col, offset, n, zero):
    return carray(_data_pointer(table[k, col], offset, zero), n)


# The one-thread twins, as the drivers call them (an attribute of a dispatcher is not typable).
_count_kept_1 = _count_kept.serial
_norm_sums_1 = _norm_sums.serial

#: ``alpha_rule`` codes of :func:`_masked_batch`.
_ALPHA_CODES = {"count": 0, "count+1": 1, "soft": 2, "norm": 3}


@njit(**_JIT_SERIAL, inline="always")
def _masked_psi(g, m, v, n, alpha_code, density_floor, alpha_max, gamma, one, b1, omb1, b2,
                omb2, denom_div, eps, zero, mask_mode, strict):
    """One tensor's (psi_kept, psi_drop) in its dtype: its count (norm: its sums), its alpha in
    float64 (the formulas of ``alpha_for``/``norm_alpha`` written out) rounded once."""
    if alpha_code == 3:  # norm: min(alpha_max, ||u|| / ||phi u||), 1 if phi u = 0
        kept, sum_all, sum_kept = _norm_sums_1(g, m, v, b1, omb1, b2, omb2, denom_div, eps, zero,
                                               mask_mode, strict)
        kept_norm = math.sqrt(sum_kept)
        if kept_norm == 0.0:
            alpha = 1.0
        else:
            ratio = math.sqrt(sum_all) / kept_norm
            alpha = ratio if ratio < alpha_max else alpha_max  # = min(alpha_max, ratio)
    else:
        if mask_mode == 0:
            kept = n
        else:
            kept = _count_kept_1(m, g, b1, omb1, mask_mode, strict, zero)
        q = kept / n if n else 1.0
        if alpha_code == 1:  # count+1
            alpha = n / (kept + 1)
        else:
            s = density_floor if density_floor > q else q  # = max(q, density_floor)
            alpha = 1.0 / s if alpha_code == 0 else s
    cast = np.empty(1, g.dtype)
    cast[0] = alpha  # alpha rounded once to the dtype, as kind(alpha)
    a = cast[0]
    if alpha_code == 2:  # soft: psi = phi/a + (1-phi) a
        return one / a, a
    return a, gamma


@parallel_kernel()
def _masked_batch(table, sizes, bad, offset, alpha_code, density_floor, alpha_max, gamma, one,
                  decay, b1, omb1, b2, omb2, step_size, denom_div, eps, zero, mask_mode, strict):
    """AlphaAdam over a table of tensors: row k holds the handles of p, g, m, v, p_o, m_o, v_o.
    ``bad[k]``: non-finite gradients of tensor k."""
    for k in prange(sizes.size):
        n = sizes[k]
        p = _view(table, k, 0, offset, n, zero)
        g = _view(table, k, 1, offset, n, zero)
        m = _view(table, k, 2, offset, n, zero)
        v = _view(table, k, 3, offset, n, zero)
        p_o = _view(table, k, 4, offset, n, zero)
        m_o = _view(table, k, 5, offset, n, zero)
        v_o = _view(table, k, 6, offset, n, zero)
        psi_kept, psi_drop = _masked_psi(g, m, v, n, alpha_code, density_floor, alpha_max, gamma,
                                         one, b1, omb1, b2, omb2, denom_div, eps, zero, mask_mode,
                                         strict)
        n_bad = 0
        for i in range(n):
            gi = g[i]
            n_bad += not np.isfinite(gi)
            p_o[i], m_o[i], v_o[i], keep = _masked_elem(
                p[i], gi, m[i], v[i], decay, b1, omb1, b2, omb2, step_size, denom_div, eps, zero,
                mask_mode, strict, psi_kept, psi_drop)
        bad[k] = n_bad


_masked_adam_in_1 = _masked_adam_in.serial


@parallel_kernel()
def _masked_batch_in(table, sizes, bad, offset, alpha_code, density_floor, alpha_max, gamma,
                     one, decay, b1, omb1, b2, omb2, step_size, denom_div, eps, zero, mask_mode,
                     strict):
    """AlphaAdam in place over a table of tensors: row k holds the handles of p, g, m, v. The
    update is the one-thread in-place kernel's (an out-of-place loop writing into its inputs
    would not be vectorised). ``bad`` is left alone (the in-place step counts beforehand)."""
    no_mask = np.empty(0, np.bool_)
    for k in prange(sizes.size):
        n = sizes[k]
        p = _view(table, k, 0, offset, n, zero)
        g = _view(table, k, 1, offset, n, zero)
        m = _view(table, k, 2, offset, n, zero)
        v = _view(table, k, 3, offset, n, zero)
        psi_kept, psi_drop = _masked_psi(g, m, v, n, alpha_code, density_floor, alpha_max, gamma,
                                         one, b1, omb1, b2, omb2, denom_div, eps, zero, mask_mode,
                                         strict)
        _masked_adam_in_1(p, g, m, v, no_mask, False, decay, b1, omb1, b2, omb2, step_size,
                          denom_div, eps, zero, mask_mode, strict, psi_kept, psi_drop)


@njit(**_JIT_SERIAL, inline="always")
def _cautious_values(m, g, n, plus_one, min_mean, one, b1, omb1, zero):
    """One tensor's C-AdamW mask values (keep, drop) in its dtype, from its count."""
    kept = _count_kept_1(m, g, b1, omb1, 2, True, zero)
    cast = np.empty(1, g.dtype)
    if plus_one:  # s = n / (k + 1): mask values 1*s, 0*s
        cast[0] = n / (np.float64(kept) + 1.0)
        s = cast[0]
        return one * s, zero * s
    mean = kept / n if n else 1.0  # r = max(mean, 1e-3): mask values 1/r, 0/r
    cast[0] = min_mean if min_mean > mean else mean
    r = cast[0]
    return one / r, zero / r


@parallel_kernel()
def _cautious_batch(table, sizes, bad, offset, plus_one, min_mean, one, decay, b1, omb1, b2,
                    omb2, step_size, denom_div, eps, zero):
    """C-AdamW over a table of tensors (rows as :func:`_masked_batch`)."""
    for k in prange(sizes.size):
        n = sizes[k]
        p = _view(table, k, 0, offset, n, zero)
        g = _view(table, k, 1, offset, n, zero)
        m = _view(table, k, 2, offset, n, zero)
        v = _view(table, k, 3, offset, n, zero)
        p_o = _view(table, k, 4, offset, n, zero)
        m_o = _view(table, k, 5, offset, n, zero)
        v_o = _view(table, k, 6, offset, n, zero)
        keep_val, drop_val = _cautious_values(m, g, n, plus_one, min_mean, one, b1, omb1, zero)
        n_bad = 0
        for i in range(n):
            gi = g[i]
            n_bad += not np.isfinite(gi)
            p_o[i], m_o[i], v_o[i] = _cautious_elem(p[i], gi, m[i], v[i], decay, b1, omb1, b2,
                                                    omb2, step_size, denom_div, eps, zero,
                                                    keep_val, drop_val)
        bad[k] = n_bad


_cautious_adam_in_1 = _cautious_adam_in.serial


@parallel_kernel()
def _cautious_batch_in(table, sizes, bad, offset, plus_one, min_mean, one, decay, b1, omb1, b2,
                       omb2, step_size, denom_div, eps, zero):
    """C-AdamW in place over a table of tensors (rows as :func:`_masked_batch_in`)."""
    for k in prange(sizes.size):
        n = sizes[k]
        p = _view(table, k, 0, offset, n, zero)
        g = _view(table, k, 1, offset, n, zero)
        m = _view(table, k, 2, offset, n, zero)
        v = _view(table, k, 3, offset, n, zero)
        keep_val, drop_val = _cautious_values(m, g, n, plus_one, min_mean, one, b1, omb1, zero)
        _cautious_adam_in_1(p, g, m, v, decay, b1, omb1, b2, omb2, step_size, denom_div, eps,
                            zero, keep_val, drop_val)


# -- multi-tensor drivers of the replayed rules -------------------------------------------------
# AdamX (without state_dtype rounding), AdamS, Adam/AdamW, AdaX and SGDM: the launch of a plan
# depends only on (t, dtype) and the hyperparameters (NumbaRule._batched records it once), so a
# whole group of small tensors is one launch of these drivers: row k of the table holds the
# handles of p, g, *state (in place) or p, g, *state, p_o, *state_o (out of place), and each
# tensor is one call of the rule's own one-thread kernel (the same function, so the same bits)
# on views of its arrays. ``bad[k]``: tensor k's non-finite gradients (out of place).

_adamx_in_1, _adamx_out_1 = _adamx_in.serial, _adamx_out.serial
_adams_in_1, _adams_out_1 = _adams_in.serial, _adams_out.serial
_adam_in_1, _adam_out_1 = _adam_in.serial, _adam_out.serial
_adax_in_1, _adax_out_1 = _adax_in.serial, _adax_out.serial
_sgdm_in_1, _sgdm_out_1 = _sgdm_in.serial, _sgdm_out.serial
_count_nonfinite_1 = _count_nonfinite.serial


@parallel_kernel(fastmath=False)
def _count_nonfinite_batch(table, sizes, bad, offset, zero):
    """Per-tensor counts of NaN/inf over a table of gradients (one column)."""
    for k in prange(sizes.size):
        bad[k] = _count_nonfinite_1(_view(table, k, 0, offset, sizes[k], zero))


@parallel_kernel()
def _adamx_batch_in(table, sizes, bad, offset, l2_mode, decay, l2, b1t, omb1t, b2t, omb2t, lr,
                    eps, zero):
    for k in prange(sizes.size):
        n = sizes[k]
        _adamx_in_1(_view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
                    _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
                    l2_mode, decay, l2, b1t, omb1t, b2t, omb2t, lr, eps, zero)


@parallel_kernel()
def _adamx_batch_out(table, sizes, bad, offset, l2_mode, decay, l2, b1t, omb1t, b2t, omb2t, lr,
                     eps, zero):
    for k in prange(sizes.size):
        n = sizes[k]
        bad[k] = _adamx_out_1(
            _view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
            _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
            _view(table, k, 4, offset, n, zero), _view(table, k, 5, offset, n, zero),
            _view(table, k, 6, offset, n, zero),
            l2_mode, decay, l2, b1t, omb1t, b2t, omb2t, lr, eps, zero)


@parallel_kernel()
def _adams_batch_in(table, sizes, bad, offset, decay, b1, omb1, b2, omb2, bc1, lr, eps, zero):
    for k in prange(sizes.size):
        n = sizes[k]
        _adams_in_1(_view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
                    _view(table, k, 2, offset, n, zero),
                    decay, b1, omb1, b2, omb2, bc1, lr, eps, zero)


@parallel_kernel()
def _adams_batch_out(table, sizes, bad, offset, decay, b1, omb1, b2, omb2, bc1, lr, eps, zero):
    for k in prange(sizes.size):
        n = sizes[k]
        bad[k] = _adams_out_1(
            _view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
            _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
            _view(table, k, 4, offset, n, zero),
            decay, b1, omb1, b2, omb2, bc1, lr, eps, zero)


@parallel_kernel()
def _adam_batch_in(table, sizes, bad, offset, decoupled, decay, wd, b1, omb1, b2, omb2,
                   step_size, denom_div, eps, zero):
    for k in prange(sizes.size):
        n = sizes[k]
        _adam_in_1(_view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
                   _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
                   decoupled, decay, wd, b1, omb1, b2, omb2, step_size, denom_div, eps, zero)


@parallel_kernel()
def _adam_batch_out(table, sizes, bad, offset, decoupled, decay, wd, b1, omb1, b2, omb2,
                    step_size, denom_div, eps, zero):
    for k in prange(sizes.size):
        n = sizes[k]
        bad[k] = _adam_out_1(
            _view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
            _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
            _view(table, k, 4, offset, n, zero), _view(table, k, 5, offset, n, zero),
            _view(table, k, 6, offset, n, zero),
            decoupled, decay, wd, b1, omb1, b2, omb2, step_size, denom_div, eps, zero)


@parallel_kernel()
def _adax_batch_in(table, sizes, bad, offset, l2_mode, decay, l2, b1, omb1, growth, b, step_size,
                   eps, zero):
    for k in prange(sizes.size):
        n = sizes[k]
        _adax_in_1(_view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
                   _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
                   l2_mode, decay, l2, b1, omb1, growth, b, step_size, eps, zero)


@parallel_kernel()
def _adax_batch_out(table, sizes, bad, offset, l2_mode, decay, l2, b1, omb1, growth, b,
                    step_size, eps, zero):
    for k in prange(sizes.size):
        n = sizes[k]
        bad[k] = _adax_out_1(
            _view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
            _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
            _view(table, k, 4, offset, n, zero), _view(table, k, 5, offset, n, zero),
            _view(table, k, 6, offset, n, zero),
            l2_mode, decay, l2, b1, omb1, growth, b, step_size, eps, zero)


@parallel_kernel()
def _sgdm_batch_in(table, sizes, bad, offset, first, nesterov, wd, momentum, omd, lr):
    for k in prange(sizes.size):
        n = sizes[k]
        like = lr  # the dtype of the views: every float scalar is in the array dtype
        _sgdm_in_1(_view(table, k, 0, offset, n, like), _view(table, k, 1, offset, n, like),
                   _view(table, k, 2, offset, n, like), first, nesterov, wd, momentum, omd, lr)


@parallel_kernel()
def _sgdm_batch_out(table, sizes, bad, offset, first, nesterov, wd, momentum, omd, lr):
    for k in prange(sizes.size):
        n = sizes[k]
        like = lr
        bad[k] = _sgdm_out_1(
            _view(table, k, 0, offset, n, like), _view(table, k, 1, offset, n, like),
            _view(table, k, 2, offset, n, like), _view(table, k, 3, offset, n, like),
            _view(table, k, 4, offset, n, like), first, nesterov, wd, momentum, omd, lr)


_masked_adam_out_1 = _masked_adam_out.serial


@parallel_kernel()
def _masked_adam_batch_in(table, sizes, bad, offset, decay, b1, omb1, b2, omb2, step_size,
                          denom_div, eps, zero, mask_mode, strict, psi_kept, psi_drop):
    """AlphaAdam where alpha is known without a count (the same psi for every tensor)."""
    no_mask = np.empty(0, np.bool_)
    for k in prange(sizes.size):
        n = sizes[k]
        _masked_adam_in_1(_view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
                          _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
                          no_mask, False, decay, b1, omb1, b2, omb2, step_size, denom_div, eps,
                          zero, mask_mode, strict, psi_kept, psi_drop)


@parallel_kernel()
def _masked_adam_batch_out(table, sizes, bad, offset, decay, b1, omb1, b2, omb2, step_size,
                           denom_div, eps, zero, mask_mode, strict, psi_kept, psi_drop):
    no_mask = np.empty(0, np.bool_)
    for k in prange(sizes.size):
        n = sizes[k]
        bad[k] = _masked_adam_out_1(
            _view(table, k, 0, offset, n, zero), _view(table, k, 1, offset, n, zero),
            _view(table, k, 2, offset, n, zero), _view(table, k, 3, offset, n, zero),
            _view(table, k, 4, offset, n, zero), _view(table, k, 5, offset, n, zero),
            _view(table, k, 6, offset, n, zero), no_mask, False, decay, b1, omb1, b2, omb2,
            step_size, denom_div, eps, zero, mask_mode, strict, psi_kept, psi_drop)


#: The in-place twin of each counted-mask driver (rows p, g, m, v).
_COUNTED_IN_PLACE = {_masked_batch: _masked_batch_in, _cautious_batch: _cautious_batch_in}

#: Recorded launch name -> (in-place driver, out-of-place driver, state buffers), for the
#: replayed rules' table launches (:meth:`NumbaRule._batched`; ``masked_adam``: AlphaAdam where
#: alpha is known without a count). AdamX's rounded variant (``state_dtype``) has no table
#: driver: it is replayed per tensor.
_TABLE_DRIVERS = {"adamx": (_adamx_batch_in, _adamx_batch_out, 2),
                  "adams": (_adams_batch_in, _adams_batch_out, 1),
                  "adam": (_adam_batch_in, _adam_batch_out, 2),
                  "adax": (_adax_batch_in, _adax_batch_out, 2),
                  "sgdm": (_sgdm_batch_in, _sgdm_batch_out, 1),
                  "masked_adam": (_masked_adam_batch_in, _masked_adam_batch_out, 2)}


# -- streamed out-of-place drivers ---------------------------------------------------------------
# An out-of-place step over a tensor larger than the caches writes outputs that no cache will
# hold: a plain store first reads each output line (write-allocate), 12 B per float32 element of
# AdamX on top of its 28 B. These drivers run the rule's one-thread out-of-place kernel on blocks
# of STREAM_BLOCK elements into scratch arrays (which stay in L1), then copy each block to the
# outputs with streaming stores. Same kernel on the same values, so the same bits; the scratch
# round trip costs L1 bandwidth only. Each chunk of blocks is one prange iteration and ends with
# a fence. ``n_chunks`` comes from the caller: ``numba.get_num_threads()`` inside a kernel would
# keep numba from caching it. The scalars are spelled out: passed on as ``*scalars`` they made
# the block kernel run at half speed (measured, numba 0.68).

_adamx_block = _adamx_out.serial
_adams_block = _adams_out.serial
_adam_block = _adam_out.serial
_adax_block = _adax_out.serial
_sgdm_block = _sgdm_out.serial
_masked_adam_block = _masked_adam_out.serial
_cautious_adam_block = _cautious_adam_out.serial


@njit(**_JIT_SERIAL, inline="always")
def _scratch(dtype):
    # Separate arrays, not rows of one: with rows the block kernel ran at half speed (measured).
    return np.empty(STREAM_BLOCK, dtype)


@njit(**_JIT)
def _adamx_stream(p, g, m, v, p_o, m_o, v_o, n_chunks, l2_mode, decay, l2, b1t, omb1t, b2t, omb2t,
                  lr, eps, zero):
    bad = 0
    for c in prange(n_chunks):
        lo, hi = _chunk_bounds(p.size, n_chunks, c)
        sp, sm, sv = _scratch(p_o.dtype), _scratch(p_o.dtype), _scratch(p_o.dtype)
        for i0 in range(lo, hi, STREAM_BLOCK):
            i1 = min(hi, i0 + STREAM_BLOCK)
            bad += _adamx_block(p[i0:i1], g[i0:i1], m[i0:i1], v[i0:i1], sp, sm, sv, l2_mode, decay,
                                l2, b1t, omb1t, b2t, omb2t, lr, eps, zero)
            _stream_copy(p_o, i0, sp, i1 - i0)
            _stream_copy(m_o, i0, sm, i1 - i0)
            _stream_copy(v_o, i0, sv, i1 - i0)
        _store_fence()
    return bad


@njit(**_JIT)
def _adam_stream(p, g, m, v, p_o, m_o, v_o, n_chunks, decoupled, decay, wd, b1, omb1, b2, omb2,
                 step_size, denom_div, eps, zero):
    bad = 0
    for c in prange(n_chunks):
        lo, hi = _chunk_bounds(p.size, n_chunks, c)
        sp, sm, sv = _scratch(p_o.dtype), _scratch(p_o.dtype), _scratch(p_o.dtype)
        for i0 in range(lo, hi, STREAM_BLOCK):
            i1 = min(hi, i0 + STREAM_BLOCK)
            bad += _adam_block(p[i0:i1], g[i0:i1], m[i0:i1], v[i0:i1], sp, sm, sv, decoupled,
                               decay, wd, b1, omb1, b2, omb2, step_size, denom_div, eps, zero)
            _stream_copy(p_o, i0, sp, i1 - i0)
            _stream_copy(m_o, i0, sm, i1 - i0)
            _stream_copy(v_o, i0, sv, i1 - i0)
        _store_fence()
    return bad


@njit(**_JIT)
def _adax_stream(p, g, m, v, p_o, m_o, v_o, n_chunks, l2_mode, decay, l2, b1, omb1, growth, b,
                 step_size, eps, zero):
    bad = 0
    for c in prange(n_chunks):
        lo, hi = _chunk_bounds(p.size, n_chunks, c)
        sp, sm, sv = _scratch(p_o.dtype), _scratch(p_o.dtype), _scratch(p_o.dtype)
        for i0 in range(lo, hi, STREAM_BLOCK):
            i1 = min(hi, i0 + STREAM_BLOCK)
            bad += _adax_block(p[i0:i1], g[i0:i1], m[i0:i1], v[i0:i1], sp, sm, sv, l2_mode, decay,
                               l2, b1, omb1, growth, b, step_size, eps, zero)
            _stream_copy(p_o, i0, sp, i1 - i0)
            _stream_copy(m_o, i0, sm, i1 - i0)
            _stream_copy(v_o, i0, sv, i1 - i0)
        _store_fence()
    return bad


@njit(**_JIT)
def _cautious_adam_stream(p, g, m, v, p_o, m_o, v_o, n_chunks, decay, b1, omb1, b2, omb2,
                          step_size, denom_div, eps, zero, keep_val, drop_val):
    bad = 0
    for c in prange(n_chunks):
        lo, hi = _chunk_bounds(p.size, n_chunks, c)
        sp, sm, sv = _scratch(p_o.dtype), _scratch(p_o.dtype), _scratch(p_o.dtype)
        for i0 in range(lo, hi, STREAM_BLOCK):
            i1 = min(hi, i0 + STREAM_BLOCK)
            bad += _cautious_adam_block(p[i0:i1], g[i0:i1], m[i0:i1], v[i0:i1], sp, sm, sv, decay,
                                        b1, omb1, b2, omb2, step_size, denom_div, eps, zero,
                                        keep_val, drop_val)
            _stream_copy(p_o, i0, sp, i1 - i0)
            _stream_copy(m_o, i0, sm, i1 - i0)
            _stream_copy(v_o, i0, sv, i1 - i0)
        _store_fence()
    return bad


@njit(**_JIT)
def _masked_adam_stream(p, g, m, v, p_o, m_o, v_o, mask_o, write_mask, n_chunks, decay, b1, omb1,
                        b2, omb2, step_size, denom_div, eps, zero, mask_mode, strict, psi_kept,
                        psi_drop):
    """The mask (1 B per element, only under ``step_with_info``) is stored plainly."""
    bad = 0
    for c in prange(n_chunks):
        lo, hi = _chunk_bounds(p.size, n_chunks, c)
        sp, sm, sv = _scratch(p_o.dtype), _scratch(p_o.dtype), _scratch(p_o.dtype)
        for i0 in range(lo, hi, STREAM_BLOCK):
            i1 = min(hi, i0 + STREAM_BLOCK)
            mask_block = mask_o[i0:i1] if write_mask else mask_o
            bad += _masked_adam_block(p[i0:i1], g[i0:i1], m[i0:i1], v[i0:i1], sp, sm, sv,
                                      mask_block, write_mask, decay, b1, omb1, b2, omb2, step_size,
                                      denom_div, eps, zero, mask_mode, strict, psi_kept, psi_drop)
            _stream_copy(p_o, i0, sp, i1 - i0)
            _stream_copy(m_o, i0, sm, i1 - i0)
            _stream_copy(v_o, i0, sv, i1 - i0)
        _store_fence()
    return bad


@njit(**_JIT)
def _adams_stream(p, g, m, p_o, m_o, n_chunks, decay, b1, omb1, b2, omb2, bc1, lr, eps, zero):
    bad = 0
    for c in prange(n_chunks):
        lo, hi = _chunk_bounds(p.size, n_chunks, c)
        sp, sm = _scratch(p_o.dtype), _scratch(p_o.dtype)
        for i0 in range(lo, hi, STREAM_BLOCK):
            i1 = min(hi, i0 + STREAM_BLOCK)
            bad += _adams_block(p[i0:i1], g[i0:i1], m[i0:i1], sp, sm, decay, b1, omb1, b2, omb2,
                                bc1, lr, eps, zero)
            _stream_copy(p_o, i0, sp, i1 - i0)
            _stream_copy(m_o, i0, sm, i1 - i0)
        _store_fence()
    return bad


@njit(**_JIT)
def _sgdm_stream(p, g, buf, p_o, buf_o, n_chunks, first, nesterov, wd, momentum, omd, lr):
    bad = 0
    for c in prange(n_chunks):
        lo, hi = _chunk_bounds(p.size, n_chunks, c)
        sp, sm = _scratch(p_o.dtype), _scratch(p_o.dtype)
        for i0 in range(lo, hi, STREAM_BLOCK):
            i1 = min(hi, i0 + STREAM_BLOCK)
            bad += _sgdm_block(p[i0:i1], g[i0:i1], buf[i0:i1], sp, sm, first, nesterov, wd,
                               momentum, omd, lr)
            _stream_copy(p_o, i0, sp, i1 - i0)
            _stream_copy(buf_o, i0, sm, i1 - i0)
        _store_fence()
    return bad


# -- kernel namespace (see refopt.kernels.fused) ------------------------------------------------

#: Below this many elements a kernel runs on the calling thread alone: waking the pool costs
#: more than the work, and on a loaded machine a descheduled worker stalls the parallel region
#: for a scheduler time slice (measured: 16 ms median for 10**4 elements on 2 busy cores, 3 us
#: on one thread).
SERIAL_BELOW = 1 << 15


def _sized(kernel, n):
    """``kernel`` on numba's threads when ``n`` is large, its one-thread twin otherwise."""
    return kernel if n >= SERIAL_BELOW else kernel.serial


def _last_level_cache_bytes(default: int = 32 << 20) -> int:
    """Size of the largest CPU cache (Linux sysfs), or ``default`` where it cannot be read."""
    sizes = []
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(root):
            if not entry.startswith("index"):  # e.g. the plain file "uevent": no cache
                continue
            with open(os.path.join(root, entry, "size")) as f:
                text = f.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            sizes.append(int(text.rstrip("KMG")) * scale)
    except (OSError, ValueError):
        return default
    return max(sizes, default=default)


#: An out-of-place step streams its outputs (see "streamed out-of-place drivers") when one
#: tensor's arrays, inputs and outputs, take at least this many bytes: twice the last-level
#: cache. Below it the outputs may still be cached when they are read back, and streaming them
#: past the caches costs (AdamX, float32, 32 MiB L3, 2 threads: 0.7x at 10**6 elements, 28 MB;
#: 1.05x at 2 * 10**6, 56 MB; 1.17x at 4 * 10**6 and above; measured). 0 streams every
#: out-of-place step of SERIAL_BELOW elements or more (the tests do), a huge value none.
STREAM_MIN_BYTES = 2 * _last_level_cache_bytes()


def _streamed(ins, outs) -> bool:
    """Whether an out-of-place step of these flat arrays streams its outputs."""
    if ins[0].size < SERIAL_BELOW:
        return False
    if sum(a.nbytes for a in ins) + sum(a.nbytes for a in outs) < STREAM_MIN_BYTES:
        return False
    return all(a.flags.aligned for a in outs)  # np.empty's always are: the stores need it


def _n_chunks() -> int:
    """prange iterations of a streamed driver: a few per thread, each ending with a fence."""
    return 4 * get_num_threads()


def _dispatch(out_of_place, in_place, streamed):
    """A kernel of the namespace: (ins, outs or None, *scalars) -> the matching driver.

    Returns the out-of-place kernel's count of non-finite gradients, None in place.
    """
    def kernel(ins, outs, *args):
        if outs is None:
            _sized(in_place, ins[0].size)(*ins, *args)
            return None
        if _streamed(ins, outs):
            return streamed(*ins, *outs, _n_chunks(), *args)
        return _sized(out_of_place, ins[0].size)(*ins, *outs, *args)
    return kernel


def _masked_adam(ins, outs, mask_o, write_mask, *args):
    if outs is None:
        _sized(_masked_adam_in, ins[0].size)(*ins, mask_o, write_mask, *args)
        return None
    if _streamed(ins, outs):
        return _masked_adam_stream(*ins, *outs, mask_o, write_mask, _n_chunks(), *args)
    return _sized(_masked_adam_out, ins[0].size)(*ins, *outs, mask_o, write_mask, *args)


def _adamx(ins, outs, *args):
    n = ins[0].size
    if args[-1]:  # round_mode: state_dtype rounding
        count = _sized(_adamx_rounded, n)(*ins, *(ins[:1] + ins[2:] if outs is None else outs),
                                          *args)
        return None if outs is None else count
    args = args[:-1]
    if outs is None:
        _sized(_adamx_in, n)(*ins, *args)
        return None
    if _streamed(ins, outs):
        return _adamx_stream(*ins, *outs, _n_chunks(), *args)
    return _sized(_adamx_out, n)(*ins, *outs, *args)


class _Kernels:
    """The kernel namespace of :mod:`refopt.kernels.fused` for flat NumPy arrays."""

    @staticmethod
    def count_nonfinite(g):
        return _sized(_count_nonfinite, g.size)(g)

    @staticmethod
    def count_nonfinite_many(grads):
        """Per-gradient counts of NaN/inf (an int64 array) over gradients of one dtype, any
        shape and layout: one launch of a table driver."""
        rows = [g if g.flags.c_contiguous else np.ascontiguousarray(g) for g in grads]
        return NumbaRule._launch_table(_count_nonfinite_batch, rows, [g.size for g in rows],
                                       (rows[0].dtype.type(0),))

    @staticmethod
    def count_kept(m, g, *args):
        return _sized(_count_kept, g.size)(m, g, *args)

    @staticmethod
    def norm_sums(g, *args):
        return _sized(_norm_sums, g.size)(g, *args)

    adamx = staticmethod(_adamx)
    adams = staticmethod(_dispatch(_adams_out, _adams_in, _adams_stream))
    adam = staticmethod(_dispatch(_adam_out, _adam_in, _adam_stream))
    adax = staticmethod(_dispatch(_adax_out, _adax_in, _adax_stream))
    sgdm = staticmethod(_dispatch(_sgdm_out, _sgdm_in, _sgdm_stream))
    masked_adam = staticmethod(_masked_adam)
    cautious_adam = staticmethod(_dispatch(_cautious_adam_out, _cautious_adam_in,
                                           _cautious_adam_stream))


_NO_MASK = np.zeros(0, dtype=np.bool_)


class _NotReplayable(Exception):
    """The plan needs a per-tensor count (AlphaAdam, C-AdamW): its launch depends on the data."""


class _LaunchRecorder:
    """A kernel namespace that records the one update launch of a plan instead of running it."""

    def __init__(self) -> None:
        self.launch = None

    def count_kept(self, *args):
        raise _NotReplayable

    norm_sums = count_kept

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def record(ins, outs, *args):
            if self.launch is not None:  # a plan of two launches: not this shortcut's case
                raise _NotReplayable
            self.launch = (name, ins, args)
        return record


def _address(a) -> int:
    return a.__array_interface__["data"][0]


class NumbaRule(HostArrays, FusedRule):
    """A reference rule run by the fused numba kernels (see the module docstring).

    ``recycle=True`` (default) lets ``step`` back its results of 1 MiB and more with the memory
    of arrays it returned two calls ago that nobody holds any more (:mod:`.recycle`: it saves
    the page faults of fresh memory; results are bitwise the same). ``recycle=False`` allocates
    every output anew. ``release_buffers()`` frees what is kept.
    """

    backend = "numba"
    counts_nonfinite = not _FASTMATH

    def __init__(self, reference, kernels, *, recycle: bool = True) -> None:
        super().__init__(reference, kernels)
        self.recycler = Recycler(enabled=recycle)

    def _no_mask(self):
        return _NO_MASK

    def _nonfinite_tensors(self, grads) -> list[int]:
        """The in-place steps' read-only pass over the gradients: one table launch for the small
        gradients of each dtype (``count_nonfinite_many``), a parallel count for each large one."""
        bad: list[int] = []
        small: dict = {}
        for i, g in enumerate(grads):
            if g is None:
                continue
            if g.size >= SERIAL_BELOW:
                if self.K.count_nonfinite(self._flat(g)) > 0:
                    bad.append(i)
            else:
                small.setdefault(g.dtype, []).append(i)
        for idx in small.values():
            counts = self.K.count_nonfinite_many([grads[i] for i in idx])
            bad += [i for i, c in zip(idx, counts) if c]
        return sorted(bad)

    def _batched(self, params, grads, state, lr, scalars_for) -> set[int]:
        """The in-place step of the small tensors without a plan per tensor.

        Why: for a tensor under :data:`SERIAL_BELOW` elements the kernel takes about a
        microsecond and the Python around it (the plan, the launch's arguments) several. The
        small tensors of one (t, dtype) group are stepped by one launch of a table driver
        (:meth:`_group_launch`): AlphaAdam's and C-AdamW's counted masks by theirs (per tensor
        its count, its alpha, its update); the other rules' launch depends only on (t, dtype)
        and the hyperparameters, or on the size too for the plans that read it
        (:data:`~refopt.kernels.fused.PLANS_READING_SIZE`: keyed by size then), so the plan is
        run once per group with a recorder for kernel namespace and its launch is run on all
        the group's tensors by the rule's table driver (:data:`_TABLE_DRIVERS`: the rule's
        one-thread kernel per tensor), or replayed on each tensor's flat arrays where it has
        none (AdamX's ``state_dtype`` rounding). The recorded inputs are checked to be
        (params, grads, *buffers) in ``self.buffers`` order before anything is run. Same
        kernel, same scalars: the same bits (tested).
        """
        buffers = [getattr(state, b) for b in self.buffers]
        done: set[int] = set()
        groups: dict = {}  # launch key -> [driver, args, rows, sizes] (driver None: replay)
        launch_of = self._group_key_launch(buffers, scalars_for, True)
        steps = state.step
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            n = p.size
            if n >= SERIAL_BELOW:
                continue
            group = launch_of(i, p, g, steps[i] + 1, n, groups)
            if group is None:
                continue
            if not g.flags.c_contiguous:  # (params and state: checked C-contiguous)
                g = np.ascontiguousarray(g)
            if group[0] is None:  # no table driver: the recorded launch on this tensor
                group[2]([p.ravel(), g.ravel()] + [b[i].ravel() for b in buffers], None,
                         *group[1])
            else:
                rows = group[2]
                rows.append(p)
                rows.append(g)
                for b in buffers:
                    rows.append(b[i])
                group[3].append(n)
            done.add(i)
        for group in groups.values():
            if group is not None and group[0] is not None and group[3]:
                driver, args, rows, sizes = group
                self._launch_table(driver, rows, sizes, args)
        return done

    def _group_key_launch(self, buffers, scalars_for, in_place):
        """``launch_of(i, p, g, t, n, groups)``: tensor i's entry of ``groups`` (created on its
        group's first tensor), or None where its plan must run: ``[driver, args, rows, sizes]``
        for a table launch, ``[None, args, kernel, None]`` for a replay per tensor."""
        counted_rule = self.name in ("alphaadam", "cadamw")
        by_size = self.name in PLANS_READING_SIZE  # e.g. alpha = n/(n+1): one launch per size
        counted: dict = {}  # (t, dtype) -> counted-mask (driver, args), or None

        def launch_of(i, p, g, t, n, groups):
            dtype = p.dtype
            if counted_rule:
                head = (t, dtype)
                if head not in counted:
                    counted[head] = self._counted_args(t, dtype, scalars_for(t, dtype))
                launch = counted[head]
                if launch is not None:  # the counted driver: one launch whatever the sizes
                    group = groups.get(head)
                    if group is None:
                        driver, args = launch
                        group = groups[head] = [_COUNTED_IN_PLACE[driver] if in_place
                                                else driver, args, [], []]
                    return group
            key = (t, dtype, n if by_size else None)
            group = groups.get(key, _MISSING)
            if group is _MISSING:
                group = groups[key] = self._replay_group(
                    p, g, [b[i] for b in buffers], t, scalars_for(t, dtype), in_place)
            return group

        return launch_of

    def _replay_group(self, p, g, bufs, t, sc, in_place):
        """The group entry of :meth:`_group_key_launch` from the recorded launch of tensor p's
        plan, or None (no launch to replay: the plan runs for each tensor of the group)."""
        launch = self._record_launch(p, g, bufs, t, sc)
        if launch is None:
            return None
        kernel, args, name = launch
        table = _table_driver(name, args, in_place)
        if table is None:
            return [None, args, kernel, None]
        return [table[0], table[1], [], []]

    def _batched_out(self, params, grads, state, lr, scalars_for, outputs):
        """The out-of-place step of the small tensors, into views of one pooled array per dtype.

        Why: three fresh arrays per small tensor (and the recycler's bookkeeping for each) cost
        more than its kernel. The outputs of all tensors under :data:`SERIAL_BELOW` elements of
        one dtype are views of one flat array (:meth:`_pool`: from the recycler, which reuses it
        only when no view of it, nor the array itself, is referenced any more; a view's ``base``
        is that array). The groups and launches are :meth:`_batched`'s, with the out-of-place
        drivers; a tensor whose launch cannot be recorded runs its plan into its views. Same
        kernels, same scalars: the same bits. Writes the outputs into ``outputs`` (``[params,
        *buffers]`` lists, indexed by tensor); returns (the indices stepped, those whose
        kernels counted non-finite gradients).
        """
        buffers = [getattr(state, b) for b in self.buffers]
        small = [i for i, (p, g) in enumerate(zip(params, grads))
                 if g is not None and p.size < SERIAL_BELOW]
        if not small:
            return set(), []
        parts = len(outputs)
        by_dtype: dict = {}
        for i in small:
            by_dtype.setdefault(params[i].dtype, []).append(i)
        for dtype, idx in by_dtype.items():
            by_shape: dict = {}
            for i in idx:
                by_shape.setdefault(params[i].shape, []).append(i)
            pool = self._pool(parts * sum(params[i].size for i in idx), dtype)
            start = 0
            for shape, same in by_shape.items():
                # Tensors of one shape: their outputs are the rows of one block of the pool,
                # (tensor, part, *shape), handed out by NumPy's iteration (a view per row).
                n = params[same[0]].size
                stop = start + len(same) * parts * n
                if shape:
                    rows = list(pool[start:stop].reshape((len(same) * parts,) + shape))
                else:  # 0-d: iteration would give NumPy scalars, not arrays
                    rows = [pool[j:j + 1].reshape(()) for j in range(start, stop)]
                start = stop
                k = 0
                for i in same:
                    for out in outputs:
                        out[i] = rows[k]
                        k += 1
        groups: dict = {}
        launch_of = self._group_key_launch(buffers, scalars_for, False)
        steps = state.step
        stepped: set[int] = set()
        bad: list[int] = []
        planned = []
        for i in small:
            p, g = params[i], grads[i]
            group = launch_of(i, p, g, steps[i] + 1, p.size, groups)
            if group is None:
                planned.append(i)
                continue
            if group[0] is None:  # no table driver: the recorded launch on this tensor
                if group[2]([p.ravel(), g.ravel()] + [b[i].ravel() for b in buffers],
                            [out[i].ravel() for out in outputs], *group[1]):
                    bad.append(i)
            else:
                rows = group[2]
                rows.append(p if p.flags.c_contiguous else np.ascontiguousarray(p))
                rows.append(g if g.flags.c_contiguous else np.ascontiguousarray(g))
                for b in buffers:
                    a = b[i]
                    rows.append(a if a.flags.c_contiguous else np.ascontiguousarray(a))
                for out in outputs:
                    rows.append(out[i])
                group[3].append(i)
            stepped.add(i)
        for group in groups.values():
            if group is not None and group[0] is not None and group[3]:
                driver, args, rows, idx = group
                counts = self._launch_table(driver, rows, [params[i].size for i in idx], args)
                bad += [idx[k] for k in np.flatnonzero(counts)]
        names = self.buffers
        for i in planned:  # into its views
            p, g = params[i], grads[i]
            t = steps[i] + 1
            old = {b: bufs[i] for b, bufs in zip(names, buffers)}
            out = {b: outputs[k + 1][i] for k, b in enumerate(names)}
            _, n_bad = self._plan(self, p, g, old, outputs[0][i], out, t,
                                  scalars_for(t, p.dtype), False)
            if n_bad is None:
                n_bad = self.K.count_nonfinite(self._flat(g))
            if n_bad:
                bad.append(i)
            stepped.add(i)
        return stepped, bad

    def _pool(self, size: int, dtype):
        """A flat array of ``size`` elements for the small outputs of one call."""
        if self.recycler is None:
            return np.empty(size, dtype=dtype)
        return self.recycler.empty((size,), dtype)

    def _counted_args(self, t, dtype, sc):
        """(driver, scalar args) of the counted-mask driver at (t, dtype), or None where the
        plan knows alpha without a count (its launch is replayed instead): the decisions of
        ``_plan_alphaadam``/``_plan_cadamw`` for a step without info."""
        h = self.hyper
        kind = np.dtype(dtype).type
        common = (sc["decay"], sc["beta1"], sc["one_minus_beta1"], sc["beta2"],
                  sc["one_minus_beta2"], sc["step_size"], sc["denom_div"], sc["eps"], kind(0))
        if self.name == "cadamw":
            return _cautious_batch, (h["scaling"] == "count+1", 1e-3, kind(1)) + common
        if alphaadam_alpha_known(h, t):
            return None
        return _masked_batch, ((_ALPHA_CODES[h["alpha_rule"]], float(h["density_floor"]),
                                float(h["alpha_max"]), kind(h["gamma"]), kind(1)) + common
                               + (alphaadam_mask_mode(h, t), bool(h["strict"])))

    @staticmethod
    def _launch_table(kernel, rows, sizes, args):
        """Run a table driver over ``rows`` (the same number of arrays per tensor, its columns);
        returns the per-tensor counts of non-finite gradients (zeros from an in-place driver,
        which does not count). ``rows`` keeps every array alive during the launch."""
        k = len(sizes)
        if ARRAY_DATA_OFFSET is not None:
            table = np.fromiter(map(id, rows), np.int64, len(rows)).reshape(k, -1)
            offset = ARRAY_DATA_OFFSET
        else:  # pragma: no cover - an interpreter whose array layout was not confirmed
            table = np.array([_address(a) for a in rows], dtype=np.int64).reshape(k, -1)
            offset = -1
        sizes = np.array(sizes, dtype=np.int64)
        bad = np.zeros(k, dtype=np.int64)
        _sized(kernel, int(sizes.sum()))(table, sizes, bad, offset, *args)
        return bad

    def _record_launch(self, p, g, bufs, t, sc):
        """(kernel, args, kernel name) of the plan's single launch at (t, dtype), or None if it
        has none."""
        recorder = _LaunchRecorder()
        old = dict(zip(self.buffers, bufs))
        try:
            self._plan(RecordingRule(self, recorder), p, g, old, p, old, t, sc, False)
        except _NotReplayable:
            return None
        if recorder.launch is None:
            return None
        name, ins, args = recorder.launch
        expected = [p, g] + list(bufs)
        # A non-contiguous g reaches the plan as a flat copy (so does each replay's g.ravel()):
        # its address says nothing about its role then, the others' still do.
        checked = [k for k, a in enumerate(expected) if k != 1 or a.flags.c_contiguous]
        if len(ins) != len(expected) or len({_address(a) for a in expected}) != len(expected) \
                or any(_address(ins[k]) != _address(expected[k]) for k in checked):
            return None  # not (params, grads, *buffers) in order: keep the plan
        return getattr(self.K, name), args, name


def _table_driver(name, args, in_place):
    """(table driver, its scalar args) for a recorded launch ``name(ins, outs, *args)``, or None
    where the kernel has no table driver (see :data:`_TABLE_DRIVERS`)."""
    entry = _TABLE_DRIVERS.get(name)
    if entry is None:
        return None
    if name == "adamx":
        if args[-1]:  # round_mode: state_dtype rounding, replayed per tensor
            return None
        args = args[:-1]
    elif name == "masked_adam":  # (mask_o, write_mask, *scalars): no mask without info
        if args[1]:
            return None
        args = args[2:]
    return (entry[0] if in_place else entry[1]), args


#: "Not looked up yet" in the launch caches (None there means "no launch to replay").
_MISSING = object()


def make_rule(reference, *, recycle: bool = True) -> NumbaRule:
    """Wrap a NumPy reference rule (from ``refopt.get_rule``) in the fused numba kernels."""
    return NumbaRule(reference, _Kernels, recycle=recycle)
