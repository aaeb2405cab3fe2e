r"""A resumable sweep runner: rules x objectives x hyperparameter grid x seeds.

A *run* is a JSON-serialisable dict (its **spec**); its result is a deterministic function of the
spec alone (:func:`run_one`), so a run can be redone anywhere and gives the same numbers. Results
go to a JSON Lines file, one line per finished run, each appended with ``write + flush + fsync``:
a crash loses at most the runs in flight, never a finished one. On restart, runs whose ``key``
(the sha256 of the canonical spec) is already in the file are skipped. A torn last line (a crash
in the middle of a write) is dropped by an atomic rewrite before anything is appended. Records
carry their task's version; after a version bump the old records are redone, not reused.

One writer per results file: :func:`run_sweep` holds an exclusive ``fcntl.flock`` on
``<out>.lock`` for the whole sweep, and a second sweep on the same file is refused at once with
:class:`ResultsLockedError` (it would run every run twice). Each record is appended with one
``write`` on an ``O_APPEND`` descriptor; a write that fails part-way is truncated away. A file
that an older version left with a torn line followed by a whole record (two writers, one
killed) is repaired on the next open, keeping the whole record.

Executors:

* ``executor="local"`` (default): a :class:`concurrent.futures.ProcessPoolExecutor`;
  ``max_workers=1`` runs in this process (no pool), in spec order;
* ``scheduler="tcp://host:8786"`` (or a ``distributed.Client``): the same runs on a Dask
  distributed cluster; ``dask.distributed`` is imported only then.

Sweep file format (``refopt sweep SPEC.json``)::

    {"rules": [{"name": "adam", "hyper": {"betas": [0.9, 0.99]}, "grid": {"lr": [1e-3, 1e-2]}}],
     "objectives": [{"name": "cosh", "constants": {"noise": "gaussian", "noise_scale": 0.1}}],
     "seeds": [0, 1, 2], "steps": 200, "x0": {"dim": 10, "scale": 2.0}, "record_every": 10}

``hyper`` holds fixed hyperparameters, ``grid`` lists values whose Cartesian product is swept.
A rule or objective ``name`` is a registered name or an import path ``"module:attr"`` of a user
rule or objective (``refopt.extend``, ``docs/extending.md``); it is imported when the sweep is
planned and again in each worker, so the module must be importable there (``refopt sweep`` puts
the spec's folder on the path; a Dask worker needs it on its own ``PYTHONPATH``). Example:
``examples/sweeps/lion_vs_adams.json``.
"""
from __future__ import annotations

import errno
import hashlib
import itertools
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .. import _io
from ..registry import canonical_name

# Registry of run functions ("tasks"): name -> callable(spec) -> dict of JSON-able metrics, and
# each task's version: records of an older version are not reused on resume (they are redone and
# the new record supersedes the old line).
TASKS: dict[str, Callable[[dict], dict]] = {}
TASK_VERSIONS: dict[str, int] = {}


def task(name: str, version: int = 1):
    """Decorator: register a run function under ``name`` (looked up by ``spec["task"]``).

    Bump ``version`` whenever the function's output for a given spec changes.
    """
    def deco(fn):
        TASKS[name] = fn
        TASK_VERSIONS[name] = int(version)
        return fn
    return deco


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_key(spec: Mapping) -> str:
    """The run's identity: sha256 of its canonical JSON spec (first 16 hex digits)."""
    return hashlib.sha256(canonical_json(dict(spec)).encode()).hexdigest()[:16]


def jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays to Python; non-finite floats become ``None`` (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


# -- specs -----------------------------------------------------------------------------------

def expand_sweep(sweep: Mapping) -> list[dict]:
    """The list of run specs of a sweep description (see the module docstring), in a fixed order."""
    for key in ("rules", "objectives", "seeds"):
        if key not in sweep:
            raise ValueError(f"sweep is missing {key!r} (needs rules, objectives, seeds)")
    allowed = {"rules", "objectives", "seeds", "steps", "x0", "record_every", "task", "lr_schedule"}
    unknown = sorted(set(sweep) - allowed)
    if unknown:
        raise ValueError(f"sweep has unknown key(s) {unknown}; accepted: {sorted(allowed)}")
    steps = _count("steps", sweep.get("steps", 100))
    record_every = (_count("record_every", sweep["record_every"]) if "record_every" in sweep
                    else max(1, steps // 50))
    for key in ("rules", "objectives", "seeds"):
        if not isinstance(sweep[key], (list, tuple)):
            raise ValueError(f"{key} must be a list, got {type(sweep[key]).__name__}")
    seeds = list(sweep["seeds"])
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    specs = []
    rules = [_named("rules", i, r) for i, r in enumerate(sweep["rules"])]
    objectives = [_named("objectives", i, o) for i, o in enumerate(sweep["objectives"])]
    if sweep.get("task", "optimize") == "optimize":
        _check_names(rules, objectives)
    for rule in rules:
        grid = dict(rule.get("grid", {}))
        names = sorted(grid)
        for values in itertools.product(*(list(grid[n]) for n in names)) if names else [()]:
            hyper = {**rule.get("hyper", {}), **dict(zip(names, values))}
            if sweep.get("task", "optimize") == "optimize" and canonical_name(rule["name"]) == \
                    "adamx":
                _check_horizon(hyper, steps)
            for obj in objectives:
                for seed in seeds:
                    spec = {"task": sweep.get("task", "optimize"), "rule": rule["name"],
                            "hyper": hyper, "objective": obj["name"],
                            "constants": dict(obj.get("constants", {})), "seed": seed,
                            "steps": steps, "x0": dict(sweep.get("x0", {})),
                            "record_every": record_every}
                    if "lr_schedule" in sweep:
                        spec["lr_schedule"] = sweep["lr_schedule"]
                    specs.append(jsonable(spec))
    return specs


def _count(name: str, value: Any) -> int:
    """An integer >= 1 (``1.9`` or ``True`` refused, ``2.0`` accepted), else ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                       np.floating)):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if isinstance(value, (float, np.floating)) and not (math.isfinite(value)
                                                         and float(value).is_integer()):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _named(key: str, i: int, entry: Any) -> dict:
    """A rules/objectives entry: a name, or a mapping with a string "name"."""
    if isinstance(entry, str):
        return {"name": entry}
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise ValueError(f"{key}[{i}] must be a name or an object with a string \"name\", got "
                         f"{entry!r}")
    for sub in ("hyper", "grid", "constants"):
        if sub in entry and not isinstance(entry[sub], Mapping):
            raise ValueError(f"{key}[{i}].{sub} must be an object, got {entry[sub]!r}")
    return dict(entry)


def _check_names(rules: Sequence[Mapping], objectives: Sequence[Mapping]) -> None:
    """Every rule and objective name resolves (a registered name or an import path
    ``module:attr``, imported here): ValueError naming the field otherwise."""
    from ..extend import is_import_path, objective_from_path
    from ..objectives import OBJECTIVES

    for i, rule in enumerate(rules):
        try:
            canonical_name(rule["name"])
        except ValueError as exc:
            raise ValueError(f"rules[{i}].name: {exc}") from None
    for i, obj in enumerate(objectives):
        name = obj["name"]
        if is_import_path(name):
            try:
                objective_from_path(name, obj.get("constants", {}))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"objectives[{i}].name: {exc}") from None
        elif name.lower() not in OBJECTIVES:
            raise ValueError(f"objectives[{i}].name: unknown objective {name!r}; allowed: "
                             f"{sorted(OBJECTIVES)} or an import path 'module:attr' of an "
                             f"Objective or a factory returning one")


def _check_horizon(hyper: Mapping, steps: int) -> None:
    """Warn (in the planning process, not in a worker) if an AdamX run is shorter than H."""
    from ..trajectory import warn_if_shorter_than_horizon

    warn_if_shorter_than_horizon(_adamx_beta2(hyper), steps)


def _adamx_beta2(hyper: Mapping) -> float:
    """AdamX's validated beta2 for ``hyper`` (ValueError/TypeError as ``get_rule`` if bad)."""
    from .._validation import HyperparameterWarning
    from ..registry import get_rule

    # The rule is built here only to read beta2: its own warnings come from the run itself,
    # which builds it again (they showed twice in a one-process sweep).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HyperparameterWarning)
        return get_rule("adamx", **hyper).hyper["betas"][1]


def _check_spec_horizons(specs: Sequence[Mapping]) -> None:
    """:func:`_check_horizon` for a list of run specs, once per distinct (hyper, steps)."""
    from ..trajectory import warn_if_shorter_than_horizon

    seen = set()
    for spec in specs:
        if not isinstance(spec, Mapping) or spec.get("task", "optimize") != "optimize" \
                or not isinstance(spec.get("rule"), str) or "steps" not in spec:
            continue  # (a spec without steps is refused by its run)
        try:
            if canonical_name(spec["rule"]) != "adamx":
                continue
            key = (canonical_json(spec.get("hyper", {})), int(spec["steps"]))
            if key in seen:
                continue
            seen.add(key)
            beta2 = _adamx_beta2(spec.get("hyper", {}))
        except (ValueError, TypeError):
            # The run itself raises on a bad spec: planning must not refuse the whole sweep
            # (the runs before it are recorded; one past ``limit`` is not run at all).
            continue
        warn_if_shorter_than_horizon(beta2, key[1])


def lr_at(schedule: Any, t: int, base: float, total: int) -> float:
    """The scheduled lr at step t (1-based): None/"constant", {"kind": "cosine"|"inv_sqrt"}."""
    if schedule in (None, "constant"):
        return base
    kind = schedule.get("kind") if isinstance(schedule, Mapping) else schedule
    if kind == "cosine":
        floor = float(schedule.get("floor", 0.1)) if isinstance(schedule, Mapping) else 0.1
        return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (t - 1) / total)))
    if kind == "inv_sqrt":
        return base / math.sqrt(t)
    raise ValueError(f"lr_schedule must be None, 'constant', 'cosine' or 'inv_sqrt', got {schedule!r}")


def initial_point(objective, x0: Mapping, rng: np.random.Generator) -> np.ndarray:
    """x0 from its spec: ``{"value": [...]}`` or ``{"dim": n, "scale": s, "center": c}`` (Gaussian)."""
    if "value" in x0:
        return np.asarray(x0["value"], dtype=np.float64)
    dim = objective.shape[0] if objective.shape is not None else int(x0.get("dim", 10))
    center = float(x0.get("center", 0.0))
    return center + float(x0.get("scale", 1.0)) * rng.standard_normal(dim)


@task("optimize")
def optimize(spec: dict) -> dict:
    """Run ``spec["rule"]`` on ``spec["objective"]`` with stochastic gradients; record metrics.

    Seeded from ``spec["seed"]``: one stream draws x0, another the gradient noise. Records, every
    ``record_every`` steps and at the end, f(x_t), ||grad f(x_t)|| and f(x_t) - f* (when known);
    also min_t ||grad f(x_t)||, the mean gradient norm over t = 0..T-1 and a divergence flag
    (non-finite iterate).
    """
    from ..objectives import make_objective
    from ..registry import get_rule

    objective = make_objective(spec["objective"], **spec.get("constants", {}))
    rule = get_rule(spec["rule"], **spec.get("hyper", {}))
    x_rng, noise_rng = (np.random.default_rng(s)
                        for s in np.random.SeedSequence(spec["seed"]).spawn(2))
    x = initial_point(objective, spec.get("x0", {}), x_rng)
    state = rule.init([x])
    steps, every = int(spec["steps"]), int(spec.get("record_every", 1))
    base_lr = rule.hyper["lr"]
    fstar = objective.min_value_like(x)
    rec_t, rec_f, rec_g = [], [], []
    grad_norms = np.empty(steps)
    diverged = False
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            gnorm = float(np.linalg.norm(objective.grad(x)))
            if t < steps:
                grad_norms[t] = gnorm
            if t % every == 0 or t == steps:
                rec_t.append(t)
                rec_f.append(objective.value(x))
                rec_g.append(gnorm)
            if not np.all(np.isfinite(x)):
                diverged = True
                grad_norms[t:] = np.inf
                break
            if t == steps:
                break
            # An online objective (Reddi's cyclic sequence) gives the t-th loss's gradient.
            g = (objective.online_grad(x, t + 1) if objective.online
                 else objective.stochastic_grad(x, noise_rng))
            if not np.all(np.isfinite(g)):
                diverged = True
                grad_norms[t:] = np.inf
                break
            (x,), state = rule.step([x], [g], state,
                                    lr=lr_at(spec.get("lr_schedule"), t + 1, base_lr, steps))
            if objective.constrained:  # projected method on the feasible set (reddi)
                x = objective.project(x)
    final_f = rec_f[-1]
    return {"t": rec_t, "loss": rec_f, "grad_norm": rec_g,
            "gap": [None if fstar is None else f - fstar for f in rec_f],
            "final_loss": final_f, "min_grad_norm": float(np.min(grad_norms)),
            "mean_grad_norm": float(np.mean(grad_norms)), "diverged": diverged}


def run_one(spec: Mapping) -> dict:
    """Run one spec and return its record ``{"key", "spec", "result"}`` (deterministic)."""
    spec = jsonable(dict(spec))
    name = spec.get("task", "optimize")
    if name not in TASKS:
        _import_task_modules()
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return {"key": run_key(spec), "spec": spec, "task_version": TASK_VERSIONS[name],
            "result": jsonable(TASKS[name](spec))}


def _is_current(record: Mapping) -> bool:
    name = record.get("spec", {}).get("task", "optimize")
    if name not in TASKS:
        _import_task_modules()
    return name in TASKS and record.get("task_version") == TASK_VERSIONS[name]


def _import_task_modules() -> None:
    # Experiment modules register their own tasks on import (needed in fresh worker processes).
    import importlib
    for mod in ("adamx_transition", "adams_rate", "alphaadam_masks", "real_data"):
        importlib.import_module(f"refopt.experiments.{mod}")


# -- results file ----------------------------------------------------------------------------

class ResultsLockedError(RuntimeError):
    """Another sweep holds the results file's lock."""


_RECORD_START = b'{"key":'


def _record(line: bytes) -> dict:
    rec = json.loads(line)
    if not isinstance(rec, dict) or "key" not in rec:
        raise ValueError("not a run record")
    return rec


def read_results(path: str | os.PathLike, *, repair: bool = False) -> list[dict]:
    """All complete records of a JSONL results file (missing file: []).

    A torn final line (no newline, or not valid JSON) is what a crash mid-write leaves; it is
    ignored, and with ``repair=True`` removed from the file by an atomic rewrite. A line that is
    a torn fragment followed by a whole record (a writer appended after another was killed
    mid-write) keeps the record and drops the fragment (rewritten with ``repair=True``). Any
    other malformed line raises :class:`refopt._io.CorruptFileError`.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = _io.read_regular_bytes(path, 1 << 40)
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]   # tail is b"" when the file ends with a newline
    records, kept, torn = [], [], bool(tail.strip())
    for i, line in enumerate(complete):
        if not line.strip():
            continue
        try:
            rec = _record(line)
        except ValueError as exc:
            # A line that ends in a newline was written whole, unless a torn fragment precedes
            # a whole record on it; anything else is corruption, not a crash.
            at = line.rfind(_RECORD_START)
            try:
                if at <= 0:
                    raise ValueError("no whole record after a torn fragment")
                rec = _record(line[at:])
            except ValueError:
                raise _io.CorruptFileError(f"{path}: line {i + 1} is not a run record: "
                                           f"{exc}") from exc
            line, torn = line[at:], True
        records.append(rec)
        kept.append(line)
    if torn and repair:
        _io.atomic_write_bytes(path, b"".join(line + b"\n" for line in kept))
    return records


def append_record(path: str | os.PathLike, record: Mapping) -> None:
    """Append one record as a JSON line with one write; fsynced before returning.

    A write that fails part-way (disk full, an interrupt) is truncated back, so the file never
    holds a partial line written by a live process.
    """
    data = (canonical_json(jsonable(dict(record))) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                 0o666)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


class _ResultsLock:
    """An exclusive, non-blocking ``flock`` on ``<out>.lock`` (refused at once when held); the
    lock file is removed when the sweep ends."""

    def __init__(self, out: Path):
        self.path = out.with_name(out.name + ".lock")
        self.fd = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ResultsLockedError(
                        f"another sweep is writing {self.path.with_suffix('')} (it holds "
                        f"{self.path.name}); wait for it to finish or use another --out") from None
                raise
            # The sweep that held it may have removed the file between our open and our flock
            # (see __exit__): a lock on a file no longer at the path locks nothing; open again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)
        raise ResultsLockedError(f"could not lock {self.path}: it keeps being replaced")

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            # Removed while still held, so no results file keeps a stale .lock beside it; a
            # sweep that opened it meanwhile finds it gone after its flock and opens anew.
            try:
                if os.path.samestat(os.fstat(self.fd), os.stat(self.path)):
                    os.unlink(self.path)
            except OSError:
                pass
            os.close(self.fd)  # releases the lock
            self.fd = None


class Progress:
    """The sweep's progress bar on a text stream (stderr by default), labelled with the sweep's
    task (its phase) and an estimate of the time left; silent when disabled
    (:class:`refopt._progress.Bar`: tqdm when installed)."""

    def __init__(self, total: int, *, enabled: bool = True, stream=None, label: str = "runs",
                 phase: str = ""):
        from .._progress import Bar

        self._bar = Bar(total, "refopt sweep" if not phase else phase, unit=label,
                        stream=stream, enabled=enabled)
        self.total, self.label = total, label
        self.enabled = self._bar.enabled

    @property
    def done(self) -> int:
        return self._bar.done

    def update(self, n: int = 1) -> None:
        self._bar.update(n)
        if self._bar.done >= self.total:
            self._bar.close()

    def text(self) -> str:
        return self._bar.text()


# -- the sweep -------------------------------------------------------------------------------

class SweepRecords(list):
    """The records of a sweep in spec order (a list), with what this call did:

    ``new`` (runs run and recorded now), ``reused`` (found in the results file), ``failed``
    (``(spec, "ExceptionType: message")`` pairs of runs that raised, with ``keep_going=True``;
    not recorded, so a rerun retries them) and ``pending`` (left for later by ``limit``).
    """

    def __init__(self, records=(), *, new: int = 0, reused: int = 0, failed=(), pending: int = 0):
        super().__init__(records)
        self.new, self.reused, self.pending = int(new), int(reused), int(pending)
        self.failed = list(failed)

    def counts_line(self) -> str:
        """``"N new, M reused, K failed"`` (and the runs left by a limit)."""
        line = f"{self.new} new, {self.reused} reused, {len(self.failed)} failed"
        return line + (f", {self.pending} not yet run (--limit)" if self.pending else "")


def run_sweep(specs: Sequence[Mapping] | Mapping, out: str | os.PathLike, *,
              executor: str = "local", max_workers: int | None = None,
              scheduler: Any = None, limit: int | None = None,
              progress: bool | Any = False, keep_going: bool = False) -> SweepRecords:
    """Run every spec not yet in ``out`` and return all records in spec order.

    The result is a :class:`SweepRecords` list, which also counts the runs that were new,
    reused and failed. With ``keep_going=False`` (default) the first run that raises ends the
    sweep with its exception (finished runs are kept); with ``keep_going=True`` the error is
    counted in ``failed`` and the other runs go on.

    Parameters
    ----------
    specs : list of dict, or a sweep description (expanded with :func:`expand_sweep`)
    out : path
        The JSON Lines results file (created with its folder if needed).
    executor : {"local"}
        Local processes; ignored when ``scheduler`` is given.
    max_workers : int, optional
        Local worker processes (default: ``os.cpu_count()``); 1 runs in this process.
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``"tcp://..."``) or a client: run on that cluster.
    limit : int, optional
        Run at most this many missing runs, then return (the rest resume later).
    progress : bool or a text stream
        Draw a progress bar (on stderr, or on the given stream).
    """
    if isinstance(specs, Mapping):
        specs = expand_sweep(specs)  # warns about short AdamX runs as it plans them
    else:
        specs = list(specs)
        _check_spec_horizons(specs)
    specs = [jsonable(dict(s)) for s in specs]
    keys = [run_key(s) for s in specs]
    if len(set(keys)) != len(keys):
        raise ValueError("specs contain duplicates (identical runs); remove them")
    if executor != "local" and scheduler is None:
        raise ValueError(f"executor must be 'local' (or pass scheduler=ADDRESS for Dask), "
                         f"got {executor!r}")
    if limit is not None and int(limit) < 0:
        raise ValueError(f"limit must be None or an integer >= 0, got {limit!r}")
    if max_workers is not None and (isinstance(max_workers, bool)
                                    or not isinstance(max_workers, (int, np.integer))
                                    or max_workers < 1):
        raise ValueError(f"max_workers (--workers) must be None or an integer >= 1, got "
                         f"{max_workers!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _ResultsLock(out):
        return _run_sweep_locked(specs, keys, out, scheduler=scheduler, max_workers=max_workers,
                                 limit=limit, progress=progress, keep_going=keep_going)


def _run_sweep_locked(specs, keys, out: Path, *, scheduler, max_workers, limit, progress,
                      keep_going=False):
    # Later lines supersede earlier ones (a rerun after a task's version changed).
    done = {rec["key"]: rec for rec in read_results(out, repair=True) if _is_current(rec)}
    reused = sum(1 for k in keys if k in done)
    missing = [s for s, k in zip(specs, keys) if k not in done]
    todo = missing[:int(limit)] if limit is not None else missing
    tasks = sorted({str(s.get("task", "optimize")) for s in todo})
    bar = Progress(len(todo), enabled=bool(progress),
                   stream=None if progress is True or not progress else progress,
                   phase=f"{out.stem} ({', '.join(tasks)})" if tasks else out.stem)
    failed: list[tuple[dict, str]] = []

    def finished(record: dict) -> None:
        append_record(out, record)
        done[record["key"]] = record
        bar.update()

    def failure(spec: dict, exc: BaseException) -> None:
        if not keep_going or not isinstance(exc, Exception):
            raise exc
        failed.append((spec, f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
        bar.update()

    if todo:
        if scheduler is not None:
            _run_dask(todo, scheduler, finished, failure)
        elif max_workers == 1 or len(todo) == 1:
            for spec in todo:
                try:
                    record = run_one(spec)
                except Exception as exc:
                    failure(spec, exc)
                    continue
                finished(record)
        else:
            _run_processes(todo, max_workers, finished, failure)
    return SweepRecords([done[k] for k in keys if k in done], new=len(todo) - len(failed),
                        reused=reused, failed=failed, pending=len(missing) - len(todo))


def _worker_init(parent_pid: int) -> None:
    """Pool worker set-up: die with the parent, leave Ctrl-C to it.

    On Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has the kernel kill the worker when the
    parent dies (even by SIGKILL); a daemon thread that polls ``os.getppid()`` is the fallback
    elsewhere (and covers a parent that died before the prctl). SIGINT is ignored: a Ctrl-C
    reaches the whole process group, and the parent ends the workers itself; SIGTERM is reset
    to its default (a forked worker would inherit the CLI's handler).
    """
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (inherited by fork)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watchdog() -> None:
        import time

        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watchdog, name="refopt-parent-watchdog", daemon=True).start()


def _run_processes(todo: list[dict], max_workers: int | None, finished, failure=None) -> None:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=max_workers, initializer=_worker_init,
                               initargs=(os.getpid(),))
    futures = []
    try:
        futures = [pool.submit(run_one, spec) for spec in todo]
        spec_of = dict(zip(futures, todo))
        for fut in as_completed(futures):
            exc = fut.exception()
            if exc is not None and failure is not None:
                failure(spec_of[fut], exc)   # re-raises unless the sweep keeps going
                continue
            finished(fut.result())
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM) or a run failed: do not wait for the runs in flight.
        for fut in futures:
            fut.cancel()
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            try:
                proc.terminate()
            except (OSError, ValueError, AttributeError):
                pass
        for proc in procs:
            try:
                proc.join(5)
            except (OSError, ValueError, AttributeError, AssertionError):
                pass
        raise
    else:
        pool.shutdown(wait=True)


def _run_dask(todo: list[dict], scheduler: Any, finished, failure=None) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("running a sweep on a Dask cluster needs dask[distributed] "
                          "(pip install 'refopt[dask]')") from exc
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler) if own else scheduler
    except (ValueError, TypeError) as exc:  # a malformed address
        raise ValueError(f"scheduler (--scheduler) {scheduler!r}: {exc}") from exc
    try:
        futures = [client.submit(run_one, spec, key=f"refopt-run-{run_key(spec)}", pure=False)
                   for spec in todo]
        spec_of = {fut.key: spec for fut, spec in zip(futures, todo)}
        for fut in as_completed(futures):
            if fut.status == "error" and failure is not None:
                failure(spec_of[fut.key], fut.exception())
                continue
            finished(fut.result())
    finally:
        if own:
            client.close()


def results_table(records: Iterable[Mapping], *fields: str) -> list[dict]:
    """Flatten records to rows: rule, objective, seed, hyper fields and the chosen result fields."""
    rows = []
    for rec in records:
        s, r = rec["spec"], rec["result"]
        row = {"rule": s.get("rule"), "objective": s.get("objective"), "seed": s.get("seed"),
               **{f"hyper.{k}": v for k, v in s.get("hyper", {}).items()}}
        row.update({f: r.get(f) for f in fields})
        rows.append(row)
    return rows
