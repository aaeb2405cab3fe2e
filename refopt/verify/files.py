"""File mode: verify a port written in any language, through files.

``refopt verify RULE --write-inputs DIR`` writes one folder per golden case with everything a port
needs (hyperparameters, initial params, the gradient of every step, the learning rate of every
step, the steps to record); the port runs each case and writes its trajectory next to the inputs;
``refopt compare RULE DIR`` judges those outputs exactly as ``refopt verify`` judges an in-process
port, diagnoses included. The format is documented in ``refopt/verify/PORTING.md``.

Closed-loop cases are *replayed*: the inputs hold the gradients the reference computed along its
own trajectory, so a foreign port needs no objective function; it is checked open loop on those
gradients (and diagnoses re-run the mutated references on the same gradients). After the
pointwise horizon the case's invariants are judged on the recorded steps the port wrote
(:mod:`refopt.verify.invariants`): the final loss of its last params, AdamX's v against the
replayed gradients when ``exp_avg_sq`` is written, AlphaAdam's kept fraction when ``mask``/
``kept`` are written, and AdamS's step bound over the recorded stride (k steps apart:
``k*lr*sqrt(C)``).
"""
from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .._io import atomic_savez, atomic_write_bytes, atomic_write_json, load_json, load_npz

FORMAT = "refopt-port-inputs"
FORMAT_VERSION = "1.0.0"
INPUTS_JSON, INPUTS_NPZ = "inputs.json", "inputs.npz"
OUTPUT_NPZ, OUTPUT_JSON = "output.npz", "output.json"


def _json_value(value: Any) -> Any:
    """JSON has no NaN/inf: non-finite floats become the strings "nan", "inf", "-inf"."""
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        return bool(value) if isinstance(value, np.bool_) else value
    if isinstance(value, (int, np.integer)):
        return int(value)
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _hex_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_hex_value(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value).hex()
    return _json_value(value)


def replay_case(case):
    """``case`` with an explicit gradient stream: closed-loop cases get the gradients the
    reference computed on its own trajectory (the payload's ``grad.*`` when the loader kept them,
    else recomputed with :func:`refopt.trajectory`)."""
    if case.grads is not None or case.result == "invalid":
        return case
    import warnings

    from .._validation import HorizonWarning
    from ..trajectory import trajectory

    with warnings.catch_warnings():  # golden runs are short on purpose
        warnings.simplefilter("ignore", HorizonWarning)
        tr = trajectory(case.rule, case.init_params, case.grad_fn, steps=int(case.n_steps),
                        lr_schedule=case.lr_schedule, **case.hyper)
    return replace(case, grads=[np.asarray(g) for g in tr.grads], grad_fn=None)


def _case_inputs(case, replayed: bool) -> tuple[dict, dict]:
    dt = np.dtype(case.dtype)
    n = int(case.n_steps)
    lr = np.array([float(case.lr_schedule[k]) if case.lr_schedule is not None
                   else float(case.hyper["lr"]) for k in range(n)], dtype=np.float64)
    arrays = {"steps": np.asarray(case.steps, dtype=np.int64), "lr": lr}
    tensors = []
    for i, p in enumerate(case.init_params):
        arrays[f"param.{i}"] = np.asarray(p, dtype=dt)
        arrays[f"grad.{i}"] = np.asarray(case.grads[i], dtype=dt).reshape((n,) + np.shape(p))
        tensors.append({"index": i, "shape": list(np.shape(p))})
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "case_id": case.case_id,
        "rule": case.rule, "dtype": str(dt), "result": case.result,
        "hyper": {k: _json_value(v) for k, v in case.hyper.items()},
        "hyper_hex": {k: _hex_value(v) for k, v in case.hyper.items()},
        "n_steps": n, "record_steps": [int(s) for s in case.steps], "tensors": tensors,
        "replayed_closed_loop": bool(replayed),
        "flags": list(case.flags),
        "arrays": {k: {"file": f"{k}.bin", "dtype": np.asarray(v).dtype.newbyteorder("<").str,
                       "shape": list(np.shape(v))} for k, v in arrays.items()},
        "output": {"npz": OUTPUT_NPZ, "refusal": OUTPUT_JSON,
                   "params": "param.<i> shaped (len(record_steps), *shape), dtype as the case",
                   "optional_buffers": "exp_avg.<i>, exp_avg_sq.<i> in the same form",
                   "optional_alphaadam": "in output.npz only: mask.<i> (bool, shaped "
                                         "(len(record_steps) - 1, *shape)), alpha.<i> (float64) "
                                         "and kept.<i> (int64), shaped (len(record_steps) - 1,): "
                                         "the values of the steps record_steps[1:]"},
    }
    return meta, arrays


def write_inputs(cases: Iterable, directory: str | os.PathLike) -> list[str]:
    """Write each case's inputs under ``directory/<case_id>/``; returns the case ids written.

    Every array is written twice: in ``inputs.npz`` and as a raw little-endian C-order ``.bin``
    file (for languages without an NPY reader). ``directory/index.json`` lists the cases.
    """
    from . import _with_probe_inputs

    root = Path(directory)
    written = []
    for case in cases:
        case = _with_probe_inputs(case)
        replayed = case.grads is None and case.result != "invalid"
        meta, arrays = _case_inputs(replay_case(case), replayed)
        folder = root / case.case_id
        atomic_savez(folder / INPUTS_NPZ, arrays)
        for key, value in arrays.items():
            le = np.ascontiguousarray(value, dtype=np.asarray(value).dtype.newbyteorder("<"))
            atomic_write_bytes(folder / f"{key}.bin", le.tobytes())
        atomic_write_json(folder / INPUTS_JSON, meta)
        written.append(case.case_id)
    atomic_write_json(root / "index.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                            "cases": written})
    return written


class NoOutput(Exception):
    """The port wrote nothing for a case."""


class PortRefused(Exception):
    """The port reported an error for the case (``output.json`` with ``"error"``)."""


def read_output(folder: str | os.PathLike, case, buffers: tuple = ()):
    """The port's trajectory for ``case`` from ``folder`` as a :class:`PortRun`.

    Raises :class:`PortRefused` for an ``output.json`` with an ``"error"`` and :class:`NoOutput`
    when neither an ``output.npz`` nor ``output/param.<i>.bin`` files exist.
    """
    from .adapters import PortRun

    folder = Path(folder)
    if (folder / OUTPUT_JSON).exists():
        report = load_json(folder / OUTPUT_JSON)
        if isinstance(report, dict) and report.get("error"):
            raise PortRefused(str(report["error"]))
    dt = np.dtype(case.dtype)
    n_rec = len(case.steps)
    shapes = [tuple(np.shape(p)) for p in case.init_params]
    if (folder / OUTPUT_NPZ).exists():
        data = load_npz(folder / OUTPUT_NPZ, required=tuple(f"param.{i}"
                                                            for i in range(len(shapes))))
    elif (folder / "output").is_dir():
        data = {}
        for path in sorted((folder / "output").glob("*.bin")):
            raw = np.fromfile(path, dtype=dt.newbyteorder("<"))
            data[path.stem] = raw.astype(dt)
        missing = [f"param.{i}" for i in range(len(shapes)) if f"param.{i}" not in data]
        if missing:
            raise NoOutput(f"{folder / 'output'}: missing {missing}")
    else:
        raise NoOutput(f"{folder}: no {OUTPUT_NPZ}, output/*.bin or {OUTPUT_JSON}")

    def history(key, shape):
        a = np.asarray(data[key])
        want = (n_rec,) + shape
        if a.size != int(np.prod(want)):
            raise ValueError(f"{folder}: {key} has {a.size} values, expected shape {want} "
                             f"(recorded steps x tensor shape)")
        return a.reshape(want)

    params = [history(f"param.{i}", s) for i, s in enumerate(shapes)]
    state = {}
    for b in buffers:
        if all(f"{b}.{i}" in data for i in range(len(shapes))):
            state[b] = [history(f"{b}.{i}", s) for i, s in enumerate(shapes)]
    # AlphaAdam's optional per-step extras, as in the golden payload: at record_steps[1:].
    info = {}
    n_info = int(np.count_nonzero(np.asarray(case.steps) != 0))
    for key, per_step in (("mask", True), ("alpha", False), ("kept", False)):
        if all(f"{key}.{i}" in data for i in range(len(shapes))):
            arrays = []
            for i, shape in enumerate(shapes):
                a = np.asarray(data[f"{key}.{i}"])
                want = (n_info,) + (shape if per_step else ())
                if a.size != int(np.prod(want)):
                    raise ValueError(f"{folder}: {key}.{i} has {a.size} values, expected shape "
                                     f"{want} (one row per recorded step after 0)")
                arrays.append(a.reshape(want))
            info[key] = arrays
    return PortRun(params=params, state=state, info=info)


def listed_cases(directory: str | os.PathLike) -> list[dict]:
    """The ``inputs.json`` of every case folder under ``directory``."""
    root = Path(directory)
    out = []
    for path in sorted(root.glob(f"*/{INPUTS_JSON}")):
        meta = load_json(path)
        if isinstance(meta, dict) and meta.get("format") == FORMAT:
            out.append(meta)
    return out


def compare_directory(rule: str, directory: str | os.PathLike, cases: Iterable | None = None, *,
                      dtype: str | None = None, pattern: str = "*", suite_directory: Any = None,
                      diagnose: bool = True):
    """Judge the outputs a foreign port wrote under ``directory`` (see :func:`write_inputs`).

    ``cases`` are the golden cases to judge against (default: the committed suite's cases whose
    ids have a folder in ``directory``). Returns a :class:`refopt.verify.Report`.
    """
    import fnmatch

    from ..registry import RULES, canonical_name
    from . import CaseResult, ERROR, Report, _with_probe_inputs, judge, load_cases

    target = canonical_name(rule)
    present = {m["case_id"]: m for m in listed_cases(directory)
               if canonical_name(m["rule"]) == target}
    if cases is None:
        cases = load_cases(target, dtype=dtype, cases=pattern, directory=suite_directory)
    selected = [c for c in cases if c.case_id in present and canonical_name(c.rule) == target
                and fnmatch.fnmatchcase(c.case_id, pattern or "*")
                and (dtype is None or str(c.dtype) == dtype)]
    buffers = tuple(RULES[target].cls.buffers)
    results = []
    for case in selected:
        case = replay_case(_with_probe_inputs(case))
        folder = Path(directory) / case.case_id
        try:
            run = read_output(folder, case, buffers)
        except PortRefused as exc:
            results.append(judge(case, None, exc, port_name=str(directory),
                                 with_diagnosis=diagnose))
            continue
        except (NoOutput, ValueError) as exc:
            results.append(CaseResult(case.case_id, str(case.dtype), case.result, ERROR,
                                      message=str(exc), flags=list(case.flags)))
            continue
        results.append(judge(case, run, None, port_name=str(directory), with_diagnosis=diagnose))
    return Report(rule=target, port=f"files in {directory}", results=results)
