r"""Reuse of the large host arrays an out-of-place step returned earlier, once nobody holds them.

Why: a NumPy array fresh from the allocator costs its page faults. Arrays above glibc's mmap
threshold (32 MiB at most) are mapped anew by every ``np.empty`` and the kernel zeroes each page on
first touch, whatever the step then writes into it. At 10^7 float32 elements AdamX's ``step``
returns three 40 MB arrays and those faults took about 4 of its 10 ms (measured: the same kernel
into preallocated arrays takes 6 ms; ``refopt bench`` reports both, as ``step`` and
``step_fresh``). A training loop ``params, state = rule.step(params, grads, state)`` drops the
arrays of step t - 1 as soon as step t has returned, so their memory can back step t + 1's
results: that is what CuPy's memory pool and PyTorch's caching allocator do for device memory.

Safety: an array is handed out again only if the :class:`Recycler` holds the **sole** reference
to it, checked with ``sys.getrefcount`` against the count that the same code path sees for an
array known to be unshared (calibrated at import on the running interpreter). Anything else that
keeps the array alive (a variable, a list, a state tuple, a view, whose ``base`` refers to it, a
``memoryview`` or other buffer export, ``torch.from_numpy``, ``np.ctypeslib.as_ctypes``: tested)
raises the count; a weak reference, which does not, is checked apart; either way the array is
then forgotten rather than reused. A bare address (``a.ctypes.data``, an int) keeps nothing
alive, here as with any freed array. A recycled array is fully overwritten by the kernel before
it is returned, exactly as the garbage of ``np.empty`` would be: results are bitwise those of
fresh allocation (tested).

Bound: the recycler holds the arrays handed out by the last two out-of-place calls and no others.
In the loop above that is one generation more than the caller holds, the same peak as a step
without recycling; :meth:`Recycler.release` drops it (``NumbaRule.release_buffers``). A caller who
interleaves several parameter groups through one rule object gets no reuse (each group's inputs
are still held when the next call looks): use one rule object per group.

On interpreters without ``sys.getrefcount`` (PyPy), or whose count for an unshared list item is
not the 1 or 2 this module understands, recycling is off.
"""
from __future__ import annotations

import sys
import threading
import weakref

import numpy as np

#: Arrays smaller than this come from ``np.empty`` (glibc reuses freed heap for them anyway).
MIN_BYTES = 1 << 20


def _count_last(bucket: list) -> int:
    """The reference count of the last array of ``bucket``, as seen from here.

    Taken on the list item itself, never bound to a local: a tracer or debugger that reads
    ``frame.f_locals`` would otherwise add a reference while this is calibrated.
    """
    return sys.getrefcount(bucket[-1])


def _calibrate() -> int | None:
    if not hasattr(sys, "getrefcount"):
        return None
    count = _count_last([np.empty(0)])
    # CPython: the list's slot and getrefcount's argument. Anything else is an interpreter whose
    # counts this module does not understand: no recycling there.
    return count if count in (1, 2) else None


#: What :func:`_count_last` reports for an array referenced by nothing but its bucket.
SOLE_OWNER_COUNT = _calibrate()


class Recycler:
    """Hands out C-contiguous host arrays, reusing those of two calls ago that nobody holds.

    Call :meth:`new_call` once at the start of each out-of-place step, then :meth:`empty` for
    each output array. ``reused`` and ``allocated`` count what :meth:`empty` did (large arrays
    only), for tests and the benchmark.
    """

    def __init__(self, enabled: bool = True, min_bytes: int = MIN_BYTES) -> None:
        self.enabled = bool(enabled) and SOLE_OWNER_COUNT is not None
        self.min_bytes = int(min_bytes)
        self.reused = 0
        self.allocated = 0
        self._lock = threading.Lock()
        self._candidates: dict[tuple, list] = {}  # handed out two calls ago, by (shape, dtype)
        self._previous: list = []                 # handed out by the last call
        self._current: list = []                  # handed out by this call

    def new_call(self) -> None:
        """Age the generations: the last call's arrays wait one more call before reuse.

        Why two calls: a caller's step t + 1 receives step t's arrays as its inputs; those of
        step t - 1 are the ones it has let go.
        """
        if not self.enabled:
            return
        with self._lock:
            candidates: dict[tuple, list] = {}
            for array in self._previous:
                candidates.setdefault(_key(array.shape, array.dtype), []).append(array)
            self._candidates = candidates  # what was left of the older ones is released here
            self._previous = self._current
            self._current = []

    def empty(self, shape, dtype) -> np.ndarray:
        """An uninitialised array like ``np.empty(shape, dtype)``, recycled where safe."""
        dtype = np.dtype(dtype)
        shape = tuple(shape)
        if not self.enabled or _nbytes(shape, dtype) < self.min_bytes:
            return np.empty(shape, dtype=dtype)
        with self._lock:
            bucket = self._candidates.get(_key(shape, dtype))
            while bucket:
                # Reused only if nothing else refers to it, weakly included (a weakref would
                # come back to life aliasing the new result).
                sole = (_count_last(bucket) <= SOLE_OWNER_COUNT
                        and weakref.getweakrefcount(bucket[-1]) == 0)
                array = bucket.pop()
                if sole:
                    array.flags.writeable = True  # a former holder may have cleared it
                    self._current.append(array)
                    self.reused += 1
                    return array
                del array  # still held elsewhere: forget it (its holder keeps it alive)
            array = np.empty(shape, dtype=dtype)
            self._current.append(array)
            self.allocated += 1
            return array

    def release(self) -> None:
        """Forget every array (those nobody else holds are freed)."""
        with self._lock:
            self._candidates, self._previous, self._current = {}, [], []


def _key(shape, dtype) -> tuple:
    return tuple(shape), np.dtype(dtype).str


def _nbytes(shape, dtype) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n * dtype.itemsize
