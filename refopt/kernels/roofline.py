r"""Memory rooflines for ``refopt bench``: same bytes, same threads, measured in the same run.

Two CPU references, both numba ``prange`` loops under the kernels' thread count:

* :func:`copy_kernel`: ``dst[:] = src[:]`` over arrays sized so that read + written bytes equal
  the rule's bytes per element (e.g. 28 B for AdamX: two arrays of 14 B per element). This is the
  roofline the issue names. A copy writes into lines it never read, so on a write-allocate cache
  each written line is also read first (an RFO): the copy moves ~1.5x its nominal bytes and an
  in-place optimizer step, whose writes hit lines it just read, can beat it.
* :func:`rmw3_kernel` / :func:`rmw2_kernel`: the optimizer's own access pattern with trivial
  arithmetic (read g and three, or two, state arrays, write those back in place), the
  achievable bandwidth of that pattern: the ceiling a fused in-place step can approach.

numba is imported by this module; ``refopt bench`` imports it only when asked for numba.
"""
from __future__ import annotations

from numba import prange

from .numba_backend import parallel_kernel


@parallel_kernel(fastmath=False)
def copy_kernel(src, dst):
    """dst[:] = src[:] (flat arrays), parallel."""
    for i in prange(src.size):
        dst[i] = src[i]


@parallel_kernel(fastmath=False)
def rmw3_kernel(g, p, m, v):
    """p += g, m += g, v += g in one pass: AdamX's 28 B per float32 element, no arithmetic."""
    for i in prange(g.size):
        gi = g[i]
        p[i] = p[i] + gi
        m[i] = m[i] + gi
        v[i] = v[i] + gi


@parallel_kernel(fastmath=False)
def rmw2_kernel(g, p, m):
    """p += g, m += g in one pass: AdamS's and SGDM's 20 B per float32 element."""
    for i in prange(g.size):
        gi = g[i]
        p[i] = p[i] + gi
        m[i] = m[i] + gi
