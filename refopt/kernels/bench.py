r"""``refopt bench``: time per step of the fused kernels against the reference, rooflines, torch.

For each size n (float32 elements, one tensor) and each rule, in one run on one machine:

* ``numpy`` ``step``: the float64-reference code run in float32, returning new arrays;
* ``numba`` ``step`` (new arrays, default ``nonfinite="raise"``; large outputs recycled from
  the arrays of two calls ago, as a training loop lets them go: :mod:`.recycle`), ``step_fresh``
  (the same with ``recycle=False``: every output fresh from the allocator), ``step_`` (in place,
  ``nonfinite="propagate"``: the kernel alone) and ``step_checked`` (in place with the default
  ``"raise"``, which adds a read-only pass over g);
* rooflines of the same bytes per element with the same threads (:mod:`.roofline`): a numba
  ``prange`` copy, NumPy's (single-threaded) copy, and the read-modify-write pattern;
* ``torch.optim.AdamW`` with ``foreach=True``, ``fused=True`` and the single-tensor loop (CPU),
  on the same n and thread count: its best is the yardstick for the in-place step;
* ``cupy`` (GPU): the in-place kernels, a device-to-device copy and torch's fused CUDA AdamW,
  timed with CUDA events (``cupyx.profiler.benchmark``), when CuPy and a device are usable;
  otherwise the reason is recorded and no GPU figure is written;
* a model-like parameter list (``--many K N``: K tensors of N elements, default 200 of 1000):
  the same steps over the list, where the cost per tensor (Python, launches) counts rather than
  bandwidth: numba's ``step_`` and ``step`` and NumPy's ``step`` against torch's fused and
  foreach AdamW over the same list, and on a GPU CuPy's multi-tensor ``step_`` against torch's
  fused CUDA AdamW (``many_tensors`` in the JSON; no target, reported as measured);
* a real model's parameter list (``--model gpt2-small/DIV``, default every width, the vocabulary
  and the context halved: 148 tensors, 31M parameters), the same steps (``model_tensors``), with
  C-AdamW besides the default rules on both lists; ratios to torch's fused AdamW are recorded as
  ``speed_vs_torch_fused``.

Time per step is the median of repeats (fewer at large n), with min/quartiles/max. Effective
GB/s uses the bytes the rule must move per element (AdamX 28 B in float32: read w, g, m, v;
write w, m, v; AdamS 20 B; AlphaAdam 28 B plus its 8 B count pass, recorded as
``bytes_actual``). Results go to ``<out>/bench_cpu.json`` and ``bench_cpu.png`` (``<out>``:
``--out``, else :func:`default_out_dir`, outside the repository; and
``bench_gpu.*`` for a GPU run) with the machine described. Nothing here is a unit test: timings
are never asserted.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

DEFAULT_SIZES = (10**4, 10**5, 10**6, 10**7, 10**8)
QUICK_SIZES = (10**4, 10**5)
DEFAULT_RULES = ("adamx", "adams", "alphaadam")
DEFAULT_BACKENDS = ("numpy", "numba", "torch", "cupy")
TARGET_SIZE = 10**7
DEFAULT_MANY, QUICK_MANY = (200, 1000), (4, 100)  # (tensors, elements each)
# A real model's parameter list, scaled: GPT-2 small (124M parameters) at full size needs about
# 15 GB here (params, grads, states and outputs of every timed call), so by default every width,
# the vocabulary and the context are halved (31M parameters, same 148 tensors).
DEFAULT_MODEL, QUICK_MODEL = "gpt2-small/2", "gpt2-small/32"
# Rules of the many-tensor lists when --rules is not given: C-AdamW too (issue 19).
MANY_RULES = DEFAULT_RULES + ("cadamw",)


def gpt2_small_shapes(div: int = 1) -> list[tuple[str, tuple[int, ...]]]:
    """GPT-2 small's parameter tensors (Hugging Face names and Conv1D shapes; lm_head is tied to
    wte), every width, the vocabulary and the context divided by ``div``: 148 tensors,
    124,439,808 parameters at ``div`` = 1."""
    d, vocab, ctx = 768 // div, -(-50257 // div), 1024 // div
    shapes = [("wte.weight", (vocab, d)), ("wpe.weight", (ctx, d))]
    for layer in range(12):
        h = f"h.{layer}."
        shapes += [(h + "ln_1.weight", (d,)), (h + "ln_1.bias", (d,)),
                   (h + "attn.c_attn.weight", (d, 3 * d)), (h + "attn.c_attn.bias", (3 * d,)),
                   (h + "attn.c_proj.weight", (d, d)), (h + "attn.c_proj.bias", (d,)),
                   (h + "ln_2.weight", (d,)), (h + "ln_2.bias", (d,)),
                   (h + "mlp.c_fc.weight", (d, 4 * d)), (h + "mlp.c_fc.bias", (4 * d,)),
                   (h + "mlp.c_proj.weight", (4 * d, d)), (h + "mlp.c_proj.bias", (d,))]
    shapes += [("ln_f.weight", (d,)), ("ln_f.bias", (d,))]
    return shapes


MODELS = {"gpt2-small": gpt2_small_shapes}


def _model(text: str | None):
    """'NAME[/DIV]' -> (name, div), or None for 'none'."""
    if text is None or text.lower() == "none":
        return None
    name, _, div = text.partition("/")
    if name not in MODELS:
        raise argparse.ArgumentTypeError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    try:
        value = int(div or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: DIV must be an integer") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{text!r}: DIV must be in [1, 64]")
    return name, value

# Arrays read and written per element by the fused in-place step (params, grads, state).
_ARRAYS_MOVED = {"adamx": 7, "adam": 7, "adamw": 7, "adax": 7, "alphaadam": 7, "cadamw": 7,
                 "adams": 5, "sgdm": 5}
# Extra arrays read by a pre-pass: AlphaAdam's and C-AdamW's count reads m and g.
_EXTRA_READS = {"alphaadam": 2, "cadamw": 2}
TARGETS = {"numba_step_speedup_vs_numpy_step": 8.0, "numba_inplace_fraction_of_copy_roofline": 0.6,
           "numba_inplace_speed_vs_torch_best_cpu": 1.0,
           "cupy_inplace_fraction_of_device_copy": 0.8,
           "cupy_inplace_speed_vs_torch_fused_cuda": 1.0}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="time the fused kernels against the reference, a memory roofline and torch",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=_size, default=None, metavar="N",
                   help="element counts, e.g. 1e4 1e7 (default 1e4 .. 1e8; --quick: 1e4 1e5)")
    p.add_argument("--rules", nargs="+", default=None, metavar="RULE",
                   help=f"rules to time (default {' '.join(DEFAULT_RULES)}; --quick: adamx)")
    p.add_argument("--backends", nargs="+", default=list(DEFAULT_BACKENDS),
                   choices=list(DEFAULT_BACKENDS), help="what to time (missing ones are skipped "
                   "with the reason recorded)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for numba, the roofline and torch (default: numba's default)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes, one rule, few repeats (a smoke run, seconds)")
    p.add_argument("--many", nargs=2, type=int, default=None, metavar=("K", "N"),
                   help=f"also time a list of K tensors of N elements each (default "
                        f"{DEFAULT_MANY[0]} {DEFAULT_MANY[1]}; --quick: {QUICK_MANY[0]} "
                        f"{QUICK_MANY[1]}; 0 0 leaves it out)")
    p.add_argument("--model", default=None, metavar="NAME[/DIV]",
                   help=f"also time a real model's parameter list: {' or '.join(MODELS)}, every "
                        f"width, the vocabulary and the context divided by DIV (default "
                        f"{DEFAULT_MODEL}; --quick: {QUICK_MODEL}; 'none' leaves it out)")
    p.add_argument("--note", default="", help="free text stored in the JSON (e.g. machine load)")
    p.add_argument("--out", default=None,
                   help=f"output folder (default {default_out_dir()}, outside the repository: "
                        f"the committed figures/bench_cpu.* are written only when asked, "
                        f"--out figures)")
    p.add_argument("--name", default="bench_cpu",
                   help="file stem of the CPU results (default bench_cpu: .json and .png)")
    from .._cliutil import add_json, add_quiet

    add_quiet(p)
    add_json(p, "the CPU results (the same object as <out>/<name>.json)")
    p.set_defaults(func=run)


def _size(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_integer() or not 1 <= value <= 2 * 10**9:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer in [1, 2e9]")
    return int(value)


def run(args) -> int:
    from .._cliutil import json_problem, write_json
    from .._io import atomic_write_json
    from ..registry import canonical_name

    quiet, json_path = args.quiet, args.json
    problem = json_problem(json_path)
    if problem:
        print(f"refopt bench: {problem}", file=sys.stderr)
        return 2
    def say(msg: str) -> None:   # (with --json -, refopt.cli.main sends it to stderr)
        print(msg, flush=True)

    sizes = tuple(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    try:
        rules = tuple(canonical_name(r) for r in (args.rules or (("adamx",) if args.quick
                                                                 else DEFAULT_RULES)))
    except ValueError as exc:
        print(f"refopt bench: --rules: {exc}", file=sys.stderr)
        return 2
    if args.threads is not None:
        most = _max_threads()
        if not 1 <= args.threads <= most:
            print(f"refopt bench: --threads must be in [1, {most}] (numba's thread pool on this "
                  f"machine), got {args.threads}", file=sys.stderr)
            return 2
    many = tuple(args.many) if args.many is not None else (QUICK_MANY if args.quick
                                                           else DEFAULT_MANY)
    if many != (0, 0) and not (many[0] >= 1 and many[1] >= 1):
        print(f"refopt bench: --many K N needs K >= 1 and N >= 1 (or 0 0), got {many}",
              file=sys.stderr)
        return 2
    try:
        model = _model(args.model if args.model is not None else
                       (QUICK_MODEL if args.quick else DEFAULT_MODEL))
    except argparse.ArgumentTypeError as exc:
        print(f"refopt bench: --model: {exc}", file=sys.stderr)
        return 2
    many_rules = rules if args.rules or args.quick else MANY_RULES
    out = Path(args.out) if args.out is not None else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    report = benchmark(sizes, rules, tuple(args.backends), threads=args.threads,
                       quick=args.quick, note=args.note, many=many, model=model,
                       many_rules=many_rules, progress=(lambda msg: None) if quiet else say)
    cpu = {k: v for k, v in report.items() if k != "gpu_results"}
    stem = Path(args.name).name
    if cpu["results"] or cpu["torch_cpu"]:
        atomic_write_json(out / f"{stem}.json", cpu)
        plot(cpu, out / f"{stem}.png")
        say(f"wrote {out / (stem + '.json')} and {out / (stem + '.png')}")
    else:
        say("no CPU backend requested: no CPU figures written")
    if report["gpu"]["measured"]:
        gpu = {**{k: report[k] for k in ("schema", "created", "machine", "config", "note")},
               "gpu": report["gpu"], "results": report["gpu_results"],
               "targets": report["gpu"]["targets"]}
        atomic_write_json(out / "bench_gpu.json", gpu)
        plot(gpu, out / "bench_gpu.png")
        say(f"wrote {out / 'bench_gpu.json'} and {out / 'bench_gpu.png'}")
    else:
        say(f"GPU figures not measured: {report['gpu']['reason']}")
    for line in summary_lines(report):
        say(line)
    if report.get("note"):
        # The load the JSON records, said where the figures are read: a loaded machine's
        # medians are slower and noisier, and parallel regions stall (see _load_note).
        loaded = (report.get("other_processes") or {}).get("other_fraction_of_all_cpus") or 0.0
        # Said even with --quiet when it is a warning: it changes how the figures read.
        if loaded > LOAD_WARNING_FRACTION:
            print("warning: " + report["note"], file=sys.stderr if quiet else sys.stdout)
        elif not quiet:
            say(report["note"])
    write_json(json_path, cpu)
    return 0


#: Above this fraction of all CPUs' time used by other processes during a run, ``refopt bench``
#: prints its load note as a warning.
LOAD_WARNING_FRACTION = 0.05


def default_out_dir() -> Path:
    """Where ``refopt bench`` writes without ``--out``: a per-user cache folder, never the
    repository's committed ``figures/`` (``$XDG_CACHE_HOME/refopt/bench``, else
    ``~/.cache/refopt/bench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "refopt" / "bench"


# -- timing -----------------------------------------------------------------------------------

def _repeats(n: int, quick: bool) -> int:
    if quick:
        return 3
    if n <= 10**5:
        return 100
    if n <= 10**6:
        return 30
    if n <= 10**7:
        return 30
    return 5


def _stats(samples: list[float]) -> dict:
    q = np.quantile(samples, [0.25, 0.75]) if len(samples) > 1 else [samples[0]] * 2
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "q25": float(q[0]), "q75": float(q[1]), "repeats": len(samples)}


# -- the run ------------------------------------------------------------------------------------

def _max_threads() -> int:
    """The most threads numba can run here (NUMBA_NUM_THREADS), else the CPU count."""
    try:
        import numba
        return int(numba.config.NUMBA_NUM_THREADS)
    except ImportError:  # pragma: no cover - numba is an extra
        return os.cpu_count() or 1


def benchmark(sizes, rules, backends, *, threads=None, quick=False, note="", many=(0, 0),
              model=None, many_rules=None,
              progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Run the benchmark and return the report (a JSON-ready dict); see the module docstring."""
    from .. import get_rule

    skipped: dict[str, str] = {}
    numba_ok = "numba" in backends and _importable("numba", skipped)
    torch_ok = "torch" in backends and _importable("torch", skipped)
    if numba_ok:
        import numba

        if threads:
            numba.set_num_threads(int(threads))
        threads = numba.get_num_threads()
    threads = threads or os.cpu_count() or 1
    if torch_ok:
        import torch

        torch.set_num_threads(int(threads))

    load_before = _loadavg()
    cpu_before = _cpu_snapshot()
    results, rooflines, torch_rows = [], [], []
    rng = np.random.default_rng(0)
    cpu_sizes = sizes if {"numpy", "numba", "torch"} & set(backends) else ()
    for n in cpu_sizes:  # (a GPU-only run skips the host part)
        reps = _repeats(n, quick)
        g = rng.standard_normal(n).astype(np.float32)
        p0 = rng.standard_normal(n).astype(np.float32)
        progress(f"n = {n:.0e}: {reps} repeats")
        roof: dict[str, Any] = {"n": n}
        for name in rules:
            nbytes = 4 * _ARRAYS_MOVED[name]
            row = {"rule": name, "n": n, "dtype": "float32", "bytes_per_element": nbytes,
                   "bytes_actual": nbytes + 4 * _EXTRA_READS.get(name, 0), "threads": threads}
            # A state one step in, so that masks and moments are in their running regime.
            ref = get_rule(name)
            state = ref.step([p0], [g], ref.init([p0]))[1]
            # Group 1, new arrays: the reference against numba's step (numpy capped: slow).
            calls = {}
            if "numpy" in backends:
                calls["numpy step"] = (lambda: ref.step([p0], [g], state), 10)
            if numba_ok:
                from .numba_backend import make_rule

                fast = get_rule(name, backend="numba")
                fresh = make_rule(ref, recycle=False)
                calls["numba step"] = (lambda: fast.step([p0], [g], state), reps)
                calls["numba step_fresh"] = (lambda: fresh.step([p0], [g], state), reps)
            stats = interleaved(calls, reps)
            if "numpy step" in stats:
                results.append({**row, "backend": "numpy", "mode": "step",
                                "time_s": stats["numpy step"], "threads": 1})
            for mode in ("step", "step_fresh"):
                if f"numba {mode}" in stats:
                    results.append({**row, "backend": "numba", "mode": mode,
                                    "time_s": stats[f"numba {mode}"]})
            del calls, stats
            # Group 2, in place: numba's step_ against the rooflines and torch, same arrays.
            calls = {}
            if numba_ok:
                calls.update(_inplace_calls(name, p0, g))
                calls.update(_roofline_calls(n, _ARRAYS_MOVED[name], g))
            if torch_ok:
                calls.update(_torch_calls(p0, g))
            stats = interleaved(calls, reps)
            for mode, policy in (("step_", "propagate"), ("step_checked", "raise")):
                if f"numba {mode}" in stats:
                    results.append({**row, "backend": "numba", "mode": mode,
                                    "time_s": stats[f"numba {mode}"], "nonfinite": policy})
            for key, value in stats.items():
                if key.startswith("roofline "):
                    roof[key.split(" ", 1)[1]] = value
                elif key.startswith("torch "):
                    impl = key.split(" ", 1)[1]
                    torch_rows.append({"impl": impl, "n": n, "measured_with": name,
                                       "time_s": value, "bytes_per_element": 28,
                                       "GBps": 28 * n / value["median"] / 1e9})
            del calls, stats
            progress(f"n = {n:.0e}: {name} done")
        rooflines.append(roof)
    _add_rates_and_ratios(results, rooflines, torch_rows)
    many_cpu = model_cpu = None
    many_rules = tuple(many_rules or rules)
    if many != (0, 0) and {"numpy", "numba", "torch"} & set(backends):
        shapes = [(f"t{k}", (many[1],)) for k in range(many[0])]
        many_cpu = _many_tensors_cpu(many_rules, shapes, backends, numba_ok, torch_ok, quick)
        many_cpu["n_each"] = many[1]
        progress(f"{many[0]} tensors of {many[1]}: done")
    if model is not None and {"numpy", "numba", "torch"} & set(backends):
        name, div = model
        shapes = MODELS[name](div)
        progress(f"{name}/{div}: {len(shapes)} tensors, "
                 f"{sum(int(np.prod(s)) for _, s in shapes):,} parameters")
        model_cpu = _many_tensors_cpu(many_rules, shapes, backends, numba_ok, torch_ok, quick)
        model_cpu.update(model=name, div=div, shapes=[[k, list(s)] for k, s in shapes])
        progress(f"{name}/{div}: done")

    gpu = {"measured": False, "reason": "not requested (--backends without cupy)"}
    gpu_results: list[dict] = []
    if "cupy" in backends:
        from .cupy_backend import cupy_unavailable_reason

        reason = cupy_unavailable_reason()
        if reason:
            gpu = {"measured": False, "reason": reason}
        else:
            gpu, gpu_results = _bench_gpu(sizes, rules, quick, progress, many)

    report = {
        "schema": "refopt-bench/1",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "config": {"sizes": list(sizes), "rules": list(rules), "backends": list(backends),
                   "dtype": "float32", "threads": threads, "quick": bool(quick),
                   "skipped": skipped},
        "load_average": {"before": load_before, "after": _loadavg()},
        "note": "",
        "rooflines": rooflines,
        "torch_cpu": torch_rows,
        "results": results,
        "targets": _targets(results, rooflines, torch_rows),
        "many_tensors": many_cpu,
        "model_tensors": model_cpu,
        "gpu": gpu,
        "gpu_results": gpu_results,
    }
    report["other_processes"] = _other_cpu(cpu_before, _cpu_snapshot())
    report["note"] = _load_note(report["other_processes"], threads) + (f" {note}" if note else "")
    return report


def _importable(module: str, skipped: dict) -> bool:
    try:
        __import__(module)
        return True
    except ImportError as exc:
        skipped[module] = f"not installed: {exc}"
        return False


def balanced_orders(k: int) -> list[list[int]]:
    """Orders of k calls in which each call directly follows each other call equally often.

    A Williams design: the first order is 0, 1, k-1, 2, k-2, ..., the others add 1, 2, ...
    (mod k) to it; for odd k the reversed orders are appended. Over all the orders each ordered
    pair (i, j), i != j, is adjacent once (k even) or twice (k odd).
    """
    first, low, high = [0], 1, k - 1
    while len(first) < k:
        first.append(low)
        low += 1
        if len(first) < k:
            first.append(high)
            high -= 1
    orders = [[(x + shift) % k for x in first] for shift in range(k)]
    if k % 2:
        orders += [order[::-1] for order in orders]
    return orders


def interleaved(calls: dict, reps: int, warmup: int = 2) -> dict:
    """Time several callables round-robin: repeat r runs each once, so load hits all alike.

    Repeat r takes the calls in the order ``balanced_orders(k)[r % len]``, so each call follows
    each other call equally often: what one call leaves behind (torch's OpenMP threads still
    spinning for a while after its parallel region, caches full of its arrays) is not charged to
    the same neighbour every time. In a fixed order numba's ``step_``, always run right after
    torch, measured 20-60% slower than ``step_checked`` (the same kernels plus a pass over g) at
    10^4..10^6 elements.

    ``calls`` maps a label to ``(fn, max_repeats)``; returns the label's :func:`_stats`.
    """
    for fn, _ in calls.values():
        for _ in range(warmup if reps > 3 else 1):
            fn()
    samples: dict[str, list] = {k: [] for k in calls}
    keys = list(calls)
    orders = balanced_orders(len(keys)) if keys else [[]]
    for r in range(reps):
        for index in orders[r % len(orders)]:
            key = keys[index]
            fn, cap = calls[key]
            if r < max(1, cap):
                t0 = time.perf_counter()
                fn()
                samples[key].append(time.perf_counter() - t0)
    return {k: _stats(v) for k, v in samples.items()}


def _inplace_calls(name: str, p0, g) -> dict:
    """numba's step_ with and without the non-finite pre-pass, stepping the same arrays."""
    from .. import get_rule

    params = [p0.copy()]
    base = get_rule(name, backend="numba")
    state = base.step([p0], [g], base.init([p0]))[1]  # fresh arrays, one step in
    calls = {}
    for mode, policy in (("step_", "propagate"), ("step_checked", "raise")):
        rule = get_rule(name, backend="numba", nonfinite=policy)
        holder = [state]

        def step(rule=rule, holder=holder):
            holder[0] = rule.step_(params, [g], holder[0])

        calls[f"numba {mode}"] = (step, 10**9)
    return calls


def _roofline_calls(n: int, arrays_moved: int, g) -> dict:
    from .roofline import copy_kernel, rmw2_kernel, rmw3_kernel

    k = arrays_moved
    half = (k * n * 4) // 8  # float32 elements in each of src and dst: k arrays' bytes in all
    src = np.ones(half, dtype=np.float32)
    dst = np.empty_like(src)
    state = [np.ones(n, dtype=np.float32) for _ in range(k // 2)]
    rmw = rmw3_kernel if k // 2 == 3 else rmw2_kernel
    small_g = np.full(n, 1e-3, dtype=np.float32)
    # The same thread count as the kernels: one thread below their serial threshold.
    from .numba_backend import _sized

    copy = _sized(copy_kernel, n)
    rmw = _sized(rmw, n)
    return {f"roofline numba_copy_{4 * k}B": (lambda: copy(src, dst), 10**9),
            f"roofline numpy_copy_{4 * k}B": (lambda: np.copyto(dst, src), 10**9),
            f"roofline numba_rmw_{4 * k}B": (lambda: rmw(small_g, *state), 10**9)}


_TORCH_IMPLS = {"foreach": {"foreach": True}, "fused": {"fused": True},
                "single_tensor": {"foreach": False}}


def _torch_calls(p0, g, impls=tuple(_TORCH_IMPLS)) -> dict:
    """torch's AdamW steps over the same values: one tensor (arrays) or a list of them."""
    import torch

    p0, g = (list(x) if isinstance(x, (list, tuple)) else [x] for x in (p0, g))
    calls = {}
    for impl in impls:
        weights = []
        for p, grad in zip(p0, g):
            w = torch.nn.Parameter(torch.from_numpy(p.copy()))
            w.grad = torch.from_numpy(grad)
            weights.append(w)
        try:
            opt = torch.optim.AdamW(weights, lr=1e-3, **_TORCH_IMPLS[impl])
            opt.step()
        except (RuntimeError, TypeError, ValueError):
            continue  # e.g. fused=True unsupported on this build: left out of the report
        calls[f"torch {impl}"] = (opt.step, 10**9)
    return calls


def _many_tensors_cpu(rules, shapes, backends, numba_ok, torch_ok, quick) -> dict:
    """Each rule's steps over a parameter list (``shapes``: (name, shape) pairs, float32),
    interleaved with torch's fused and foreach AdamW over the same list.

    numba ``step_`` runs on a state from ``init`` and ``step_`` (a training loop's); ``step``
    on the state of one reference step, returning new arrays each call (its outputs of two calls
    ago recycled, as a loop ``params, state = rule.step(...)`` lets them go).
    """
    from .. import get_rule

    rng = np.random.default_rng(1)
    p0 = [rng.standard_normal(s).astype(np.float32) for _, s in shapes]
    g = [rng.standard_normal(s).astype(np.float32) for _, s in shapes]
    total = sum(p.size for p in p0)
    reps = 3 if quick else (100 if total <= 10**6 else 20)
    numpy_reps = 3 if quick else (20 if total <= 10**6 else 3)
    rows = []
    for name in rules:
        ref = get_rule(name)
        state = ref.step(p0, g, ref.init(p0))[1]
        calls = {}
        if "numpy" in backends:
            calls["numpy step"] = (lambda: ref.step(p0, g, state), numpy_reps)
        if numba_ok:
            fast = get_rule(name, backend="numba")
            calls["numba step"] = (lambda: fast.step(p0, g, state), reps)
            inplace = get_rule(name, backend="numba", nonfinite="propagate")
            params = [p.copy() for p in p0]
            holder = [inplace.step_(params, g, inplace.init(params))]

            def step_(rule=inplace, params=params, holder=holder):
                holder[0] = rule.step_(params, g, holder[0])

            calls["numba step_"] = (step_, reps)
        if torch_ok:
            calls.update(_torch_calls(p0, g, impls=("fused", "foreach")))
        stats = interleaved(calls, reps)
        del calls
        torch_best = min((v["median"] for k, v in stats.items() if k.startswith("torch ")),
                         default=None)
        fused = stats.get("torch fused", {}).get("median")
        for key, value in stats.items():
            backend, mode = key.split(" ", 1)
            row = {"rule": "adamw" if backend == "torch" else name, "measured_with": name,
                   "backend": backend, "mode": mode, "time_s": value,
                   "us_per_tensor": value["median"] / len(shapes) * 1e6}
            if torch_best and backend == "numba":
                row["speed_vs_torch_best"] = torch_best / value["median"]
            if fused and backend == "numba":
                row["speed_vs_torch_fused"] = fused / value["median"]
            rows.append(row)
    return {"tensors": len(shapes), "elements": total, "dtype": "float32", "results": rows}


def _add_rates_and_ratios(results, rooflines, torch_rows) -> None:
    roof = {r["n"]: r for r in rooflines}
    numpy_step = {(r["rule"], r["n"]): r["time_s"]["median"] for r in results
                  if r["backend"] == "numpy"}
    torch_best = {}  # measured in the same interleaved group as the rule's step_
    for t in torch_rows:
        key = (t["measured_with"], t["n"])
        torch_best[key] = min(torch_best.get(key, np.inf), t["time_s"]["median"])
    for r in results:
        med = r["time_s"]["median"]
        r["GBps"] = r["bytes_per_element"] * r["n"] / med / 1e9
        key = (r["rule"], r["n"])
        if key in numpy_step and r["backend"] != "numpy":
            r["speedup_vs_numpy_step"] = numpy_step[key] / med
        rf = roof.get(r["n"], {})
        copy = rf.get(f"numba_copy_{r['bytes_per_element']}B")
        rmw = rf.get(f"numba_rmw_{r['bytes_per_element']}B")
        if copy:
            r["fraction_of_copy_roofline"] = copy["median"] / med
        if rmw:
            r["fraction_of_rmw_roofline"] = rmw["median"] / med
        if key in torch_best and r["mode"] != "step":
            r["speed_vs_torch_best"] = torch_best[key] / med


def _targets(results, rooflines, torch_rows) -> dict:
    """The issue's CPU targets at 10**7 float32 elements, per rule: measured value and verdict."""
    out = {}
    for r in results:
        if r["n"] != TARGET_SIZE or r["backend"] != "numba":
            continue
        entry = out.setdefault(r["rule"], {})
        if r["mode"] == "step" and "speedup_vs_numpy_step" in r:
            v = r["speedup_vs_numpy_step"]
            entry["numba_step_speedup_vs_numpy_step"] = {
                "measured": v, "target": TARGETS["numba_step_speedup_vs_numpy_step"],
                "met": v >= TARGETS["numba_step_speedup_vs_numpy_step"]}
        if r["mode"] == "step_fresh" and "speedup_vs_numpy_step" in r:
            # No target: what ``step`` gives without recycling (every output page-faulted).
            entry["numba_step_fresh_speedup_vs_numpy_step"] = {
                "measured": r["speedup_vs_numpy_step"], "target": None, "met": None}
        if r["mode"] == "step_":
            if "fraction_of_copy_roofline" in r:
                v = r["fraction_of_copy_roofline"]
                entry["numba_inplace_fraction_of_copy_roofline"] = {
                    "measured": v, "target": TARGETS["numba_inplace_fraction_of_copy_roofline"],
                    "met": v >= TARGETS["numba_inplace_fraction_of_copy_roofline"]}
            if "speed_vs_torch_best" in r:
                v = r["speed_vs_torch_best"]
                entry["numba_inplace_speed_vs_torch_best_cpu"] = {
                    "measured": v, "target": TARGETS["numba_inplace_speed_vs_torch_best_cpu"],
                    "met": v >= TARGETS["numba_inplace_speed_vs_torch_best_cpu"]}
    return out


# -- GPU ----------------------------------------------------------------------------------------

def _bench_gpu(sizes, rules, quick, progress, many=(0, 0)) -> tuple[dict, list[dict]]:
    """CuPy kernels in place vs a device copy of the same bytes and torch's fused CUDA AdamW."""
    import cupy
    from cupyx.profiler import benchmark as cupy_benchmark

    from .. import get_rule

    def gpu_time(fn, reps, with_host=False):
        res = cupy_benchmark(fn, (), n_warmup=3, n_repeat=reps)
        stats = _stats([float(x) for x in np.asarray(res.gpu_times).ravel()])
        if with_host:  # launch-bound work: the host's time per call counts too
            return stats, _stats([float(x) for x in np.asarray(res.cpu_times).ravel()])
        return stats

    device = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(device.id)
    info = {"measured": True, "device": props["name"].decode() if isinstance(props["name"], bytes)
            else str(props["name"]), "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "driver": cupy.cuda.runtime.driverGetVersion(), "cupy": cupy.__version__,
            "total_memory_bytes": int(props["totalGlobalMem"])}
    try:
        import torch
        torch_cuda = torch.cuda.is_available()
    except ImportError:
        torch_cuda = False
    rows: list[dict] = []
    rng = np.random.default_rng(0)
    for n in sizes:
        reps = 5 if quick else (200 if n <= 10**6 else 50)
        g = cupy.asarray(rng.standard_normal(n).astype(np.float32))
        p0 = cupy.asarray(rng.standard_normal(n).astype(np.float32))
        copies = {}
        for k in sorted({_ARRAYS_MOVED[r] for r in rules}):
            src = cupy.ones((k * n * 4) // 8, dtype=cupy.float32)
            dst = cupy.empty_like(src)
            copies[4 * k] = gpu_time(lambda d=dst, s=src: d.__setitem__(Ellipsis, s), reps)
            del src, dst
        torch_fused = None
        if torch_cuda:
            import torch

            w = torch.nn.Parameter(torch.as_tensor(p0.copy(), device="cuda"))  # not shared
            w.grad = torch.as_tensor(g, device="cuda")
            opt = torch.optim.AdamW([w], lr=1e-3, fused=True)
            torch_fused = gpu_time(opt.step, reps)
            rows.append({"backend": "torch_cuda", "rule": "adamw", "mode": "fused", "n": n,
                         "bytes_per_element": 28, "time_s": torch_fused,
                         "GBps": 28 * n / torch_fused["median"] / 1e9})
        for name in rules:
            rule = get_rule(name, backend="cupy", nonfinite="propagate")
            params = [p0.copy()]
            holder = [rule.step(params, [g], rule.init(params))[1]]

            def inplace(rule=rule, params=params, holder=holder):
                holder[0] = rule.step_(params, [g], holder[0])

            stats = gpu_time(inplace, reps)
            nbytes = 4 * _ARRAYS_MOVED[name]
            row = {"backend": "cupy", "rule": name, "mode": "step_", "n": n,
                   "bytes_per_element": nbytes, "time_s": stats,
                   "GBps": nbytes * n / stats["median"] / 1e9,
                   "fraction_of_copy_roofline": copies[nbytes]["median"] / stats["median"],
                   "device_copy_time_s": copies[nbytes]}
            if torch_fused:
                row["speed_vs_torch_fused"] = torch_fused["median"] / stats["median"]
            rows.append(row)
        progress(f"GPU n = {n:.0e}: done")
    targets = {}
    for r in rows:
        if r["n"] == TARGET_SIZE and r["backend"] == "cupy":
            entry = targets.setdefault(r["rule"], {})
            v = r["fraction_of_copy_roofline"]
            entry["cupy_inplace_fraction_of_device_copy"] = {
                "measured": v, "target": 0.8, "met": v >= 0.8}
            if "speed_vs_torch_fused" in r:
                v = r["speed_vs_torch_fused"]
                entry["cupy_inplace_speed_vs_torch_fused_cuda"] = {
                    "measured": v, "target": 1.0, "met": v >= 1.0}
    info["targets"] = targets
    info["many_tensors"] = None
    if many != (0, 0):
        info["many_tensors"] = _many_tensors_gpu(rules, many, quick, gpu_time, torch_cuda)
        progress(f"GPU {many[0]} tensors of {many[1]}: done")
    return info, rows


def _many_tensors_gpu(rules, many, quick, gpu_time, torch_cuda) -> dict:
    """CuPy's multi-tensor ``step_`` over K tensors of N against torch's fused CUDA AdamW."""
    import cupy

    from .. import get_rule

    tensors, n_each = many
    rng = np.random.default_rng(1)
    p0 = [cupy.asarray(rng.standard_normal(n_each).astype(np.float32)) for _ in range(tensors)]
    g = [cupy.asarray(rng.standard_normal(n_each).astype(np.float32)) for _ in range(tensors)]
    reps = 5 if quick else 100
    rows = []
    torch_fused = None
    if torch_cuda:
        import torch

        weights = []
        for p, grad in zip(p0, g):
            w = torch.nn.Parameter(torch.as_tensor(p.copy(), device="cuda"))
            w.grad = torch.as_tensor(grad, device="cuda")
            weights.append(w)
        opt = torch.optim.AdamW(weights, lr=1e-3, fused=True)
        torch_fused, host = gpu_time(opt.step, reps, with_host=True)
        rows.append({"rule": "adamw", "measured_with": None, "backend": "torch_cuda",
                     "mode": "fused", "time_s": torch_fused, "host_time_s": host})
    for name in rules:
        rule = get_rule(name, backend="cupy", nonfinite="propagate")
        params = [p.copy() for p in p0]
        holder = [rule.step(params, g, rule.init(params))[1]]

        def inplace(rule=rule, params=params, holder=holder):
            holder[0] = rule.step_(params, g, holder[0])

        stats, host = gpu_time(inplace, reps, with_host=True)
        row = {"rule": name, "measured_with": name, "backend": "cupy", "mode": "step_",
               "time_s": stats, "host_time_s": host,
               "us_per_tensor": stats["median"] / tensors * 1e6}
        if torch_fused:
            row["speed_vs_torch_fused"] = torch_fused["median"] / stats["median"]
        rows.append(row)
    return {"tensors": tensors, "n_each": n_each, "dtype": "float32", "results": rows}


# -- machine, summary, plot ----------------------------------------------------------------------

def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _cpu_snapshot():
    """(busy CPU seconds of the whole machine, CPU seconds of this process, wall seconds)."""
    stat = _read("/proc/stat")
    if not stat:
        return None
    fields = [int(x) for x in stat.splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / hz  # all but idle and iowait
    own = os.times()
    return busy, own.user + own.system, time.perf_counter()


def _other_cpu(before, after) -> dict | None:
    """CPU time used by other processes during the run, as a fraction of all CPUs' time."""
    if not before or not after:
        return None
    wall = after[2] - before[2]
    other = (after[0] - before[0]) - (after[1] - before[1])
    cpus = os.cpu_count() or 1
    return {"wall_s": wall, "other_cpu_s": max(other, 0.0),
            "other_fraction_of_all_cpus": max(other, 0.0) / (wall * cpus) if wall > 0 else None}


def _load_note(other: dict | None, threads) -> str:
    if not other or other["other_fraction_of_all_cpus"] is None:
        return ""
    frac = other["other_fraction_of_all_cpus"]
    cpus = os.cpu_count() or 1
    if frac > LOAD_WARNING_FRACTION:
        return (f"Other processes were running: they used {100 * frac:.0f}% of the {cpus} CPUs' "
                f"time during the run. A parallel region of {threads} threads stalls whenever one "
                f"worker is descheduled, so medians are slower and noisier than on an idle "
                f"machine.")
    return f"Machine quiet: other processes used {100 * frac:.0f}% of the {cpus} CPUs' time."


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def describe_machine() -> dict:
    """CPU model, cores/threads, caches, memory and library versions of this machine."""
    model = None
    cpuinfo = _read("/proc/cpuinfo") or ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    caches = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if base.exists():
        for idx in sorted(base.glob("index*")):
            level, kind, size = (_read(str(idx / f)) for f in ("level", "type", "size"))
            caches[f"L{level} {kind}"] = size
    mem = None
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal"):
            mem = line.split(":", 1)[1].strip()
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("numba", "torch", "cupy"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    flags = set()
    family = cpu_model_number = None
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        elif line.startswith("cpu family") and family is None:
            family = line.split(":", 1)[1].strip()
        elif line.startswith("model\t") and cpu_model_number is None:
            cpu_model_number = line.split(":", 1)[1].strip()
    simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl")
            if f in flags]
    hypervisor = "hypervisor" in flags
    return {"cpu_model": model or platform.processor(), "cpu_family": family,
            "cpu_model_number": cpu_model_number, "simd": simd, "virtual_machine": hypervisor,
            "logical_cpus": os.cpu_count(),
            "usable_cpus": affinity, "caches_per_core_or_shared": caches,
            "memory_total": mem, "platform": platform.platform(),
            "transparent_hugepages": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
            "versions": versions}


def summary_lines(report: dict) -> list[str]:
    lines = [f"machine: {report['machine']['cpu_model']}, {report['config']['threads']} threads"]
    for rule, entries in report["targets"].items():
        for key, e in entries.items():
            verdict = ("no target" if e["target"] is None else
                       f"target {e['target']}, {'met' if e['met'] else 'NOT met'}")
            lines.append(f"  {rule} @1e7 {key}: {e['measured']:.2f} ({verdict})")
    for r in report["results"]:
        lines.append(f"  {r['rule']:10s} {r['backend']:6s} {r['mode']:12s} n={r['n']:<10d} "
                     f"{r['time_s']['median'] * 1e3:9.3f} ms  {r['GBps']:7.2f} GB/s")
    for where, many in (("CPU", report.get("many_tensors")),
                        ("CPU", report.get("model_tensors")),
                        ("GPU", (report.get("gpu") or {}).get("many_tensors"))):
        if not many:
            continue
        what = (f"{many['model']}/{many['div']}, {many['tensors']} tensors, "
                f"{many['elements']:,} elements" if "model" in many else
                f"{many['tensors']} tensors of {many['n_each']} elements")
        lines.append(f"  {where}, {what}:")
        for r in many["results"]:
            if "speed_vs_torch_fused" in r:
                ratio = (f"  ({r['speed_vs_torch_fused']:.2f}x torch fused, "
                         f"{r['speed_vs_torch_best']:.2f}x torch's best)")
            elif "speed_vs_torch_best" in r:
                ratio = f"  ({r['speed_vs_torch_best']:.2f}x torch's best)"
            elif "speed_vs_torch_fused" in r:
                ratio = f"  ({r['speed_vs_torch_fused']:.2f}x torch fused)"
            else:
                ratio = ""
            lines.append(f"    {(r['measured_with'] or '-'):10s} {r['backend']:10s} "
                         f"{r['mode']:8s} {r['time_s']['median'] * 1e3:9.3f} ms{ratio}")
    return lines


def plot(report: dict, path: Path) -> None:
    """Per rule (columns): time per step and effective GB/s against n, with torch and rooflines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._io import atomic_write_bytes

    rules = list(dict.fromkeys(r["rule"] for r in report["results"])) or ["-"]
    fig, axes = plt.subplots(2, len(rules), figsize=(4.6 * len(rules) + 1, 8), squeeze=False)
    colors = {("numpy", "step"): "tab:gray", ("numba", "step"): "tab:blue",
              ("numba", "step_fresh"): "tab:cyan",
              ("numba", "step_"): "tab:green", ("numba", "step_checked"): "tab:olive",
              ("cupy", "step_"): "tab:purple", ("torch_cuda", "fused"): "tab:red"}
    torch_colors = {"fused": "tab:red", "foreach": "tab:orange", "single_tensor": "tab:brown"}
    for col, rule in enumerate(rules):
        ax_t, ax_b = axes[0][col], axes[1][col]
        series: dict[tuple, list] = {}
        for r in report["results"]:
            if r["rule"] == rule:
                series.setdefault((r["backend"], r["mode"]), []).append(r)
        for (backend, mode), rows in sorted(series.items()):
            rows = sorted(rows, key=lambda r: r["n"])
            n = [r["n"] for r in rows]
            kw = dict(color=colors.get((backend, mode)), marker="o", ms=3,
                      ls=":" if backend == "numpy" else "-", label=f"{backend} {mode}")
            ax_t.loglog(n, [r["time_s"]["median"] for r in rows], **kw)
            ax_b.loglog(n, [r["GBps"] for r in rows], **kw)
        by_impl: dict[str, list] = {}
        for t in report.get("torch_cpu", []):
            if t.get("measured_with") == rule:
                by_impl.setdefault(t["impl"], []).append(t)
        for impl, rows in by_impl.items():
            rows = sorted(rows, key=lambda r: r["n"])
            kw = dict(color=torch_colors.get(impl), ls="--", marker="s", ms=3,
                      label=f"torch AdamW {impl}")
            ax_t.loglog([r["n"] for r in rows], [r["time_s"]["median"] for r in rows], **kw)
            ax_b.loglog([r["n"] for r in rows], [r["GBps"] for r in rows], **kw)
        nbytes = next((r["bytes_per_element"] for r in report["results"] if r["rule"] == rule), 28)
        for key, ls in ((f"numba_copy_{nbytes}B", "-."), (f"numba_rmw_{nbytes}B", "-")):
            rows = [r for r in report.get("rooflines", []) if key in r]
            if rows:
                ax_b.loglog([r["n"] for r in rows],
                            [nbytes * r["n"] / r[key]["median"] / 1e9 for r in rows], color="k",
                            ls=ls, lw=0.9, label=f"roofline {key.split('_')[1]} ({nbytes} B)")
        ax_t.set(title=f"{rule} ({nbytes} B/element)", xlabel="elements n (float32)",
                 ylabel="time per step [s], median")
        ax_b.set(xlabel="elements n (float32)", ylabel="effective GB/s")
        ax_b.legend(fontsize=7)
    m = report["machine"]
    gpu = report.get("gpu", {})
    fig.suptitle(f"refopt bench: {m['cpu_model']}, {report['config']['threads']} threads"
                 + (f"; GPU {gpu['device']}" if gpu.get("measured") else "")
                 + f" ({report.get('created', '')})", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def markdown_summary(report: dict, n: int = TARGET_SIZE) -> str:
    """The README's table: each rule at ``n`` elements against the issue's targets."""
    rows = [r for r in report["results"] if r["n"] == n]
    torch = {}
    for t in report.get("torch_cpu", []):
        if t["n"] == n:
            key = (t["measured_with"], t["impl"])
            torch[key] = t["time_s"]["median"]
    lines = ["| rule | NumPy `step` | numba `step` (speedup, target >= 8x) | numba `step_` | "
             "GB/s | / copy roofline (target >= 0.6) | / rmw roofline | torch AdamW best "
             "| vs torch (target >= 1) |", "|---|---|---|---|---|---|---|---|---|"]
    for rule in report["config"]["rules"]:
        by_mode = {(r["backend"], r["mode"]): r for r in rows if r["rule"] == rule}
        ref, step, inplace = (by_mode.get(k) for k in (("numpy", "step"), ("numba", "step"),
                                                       ("numba", "step_")))
        if not (ref and step and inplace):
            continue
        best = min(((v, impl) for (rr, impl), v in torch.items() if rr == rule), default=None)
        lines.append(
            f"| {rule} | {ref['time_s']['median'] * 1e3:.1f} ms | "
            f"{step['time_s']['median'] * 1e3:.1f} ms ({step['speedup_vs_numpy_step']:.1f}x) | "
            f"{inplace['time_s']['median'] * 1e3:.2f} ms | {inplace['GBps']:.1f} | "
            f"{inplace.get('fraction_of_copy_roofline', float('nan')):.2f} | "
            f"{inplace.get('fraction_of_rmw_roofline', float('nan')):.2f} | "
            + (f"{best[0] * 1e3:.2f} ms ({best[1]}) | "
               f"{inplace.get('speed_vs_torch_best', float('nan')):.2f} |" if best else "- | - |"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m refopt.kernels.bench ...``: ``refopt bench`` without the other commands.

    For a source checkout run in place (``PYTHONPATH=.``, as ``make gpu-check`` does on a GPU
    machine that cannot install anything), where ``refopt.proofs``, which the full command line
    registers, exists only once refopt is installed.
    """
    parser = argparse.ArgumentParser(prog="python -m refopt.kernels.bench")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    sub.choices["bench"].prog = parser.prog
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
