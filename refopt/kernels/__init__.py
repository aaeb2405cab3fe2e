"""Fused optimizer kernels: numba on CPU (:mod:`.numba_backend`), CuPy on GPU
(:mod:`.cupy_backend`).

Pick one with ``refopt.get_rule(name, backend="numba" | "cupy", **hyper)`` (or ``backend=`` of
:func:`refopt.trajectory`). Every backend returns an object with the reference rule's API and an
in-place ``step_``; the shared logic lives in :mod:`.fused`, the benchmark in :mod:`.bench`
(``refopt bench``). Nothing here imports numba or CuPy until a backend module is imported.
"""
