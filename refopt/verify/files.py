"""File mode: verify a port written in any language, through files.

``refopt verify RULE --write-inputs DIR`` writes one folder per golden case with everything a port
needs (hyperparameters, initial params, the gradient of every step, the learning rate of every
step, the steps to record), twice: as JSON + ``.npz`` and as a flat layout that C reads with
``fscanf``/``fread`` (``case.txt``, ``hyper.txt``, ``shapes.txt`` and raw little-endian ``.bin``
arrays); the port runs each case and writes its trajectory next to the inputs; ``refopt compare
RULE DIR`` judges those outputs exactly as ``refopt verify`` judges an in-process port, diagnoses
included. The format is documented in ``refopt/verify/PORTING.md`` ("Ports in other languages").

The inputs never say what is expected: a case's folder and ``case_id`` are an opaque name
(:func:`port_case_id`, a hash of the golden case id: ``invalid-lr-negative`` would tell the port
to refuse), and an invalid case has the same files as a valid one (its stored case has no
payload, so it gets a probe of four tensors and eight steps); the port must
validate the hyperparameters itself and refuse (``output/error.txt`` or ``output.json
{"error": ...}``) to pass. A port may declare a case it does not implement unsupported
(``output/unsupported.txt`` or ``output.json {"unsupported": ...}``): ``n/a``, not counted.
Outputs older than their inputs are refused (``stale``), never judged.

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

import hashlib
import math
import os
import shutil
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .._io import (CorruptFileError, atomic_savez, atomic_write_bytes, atomic_write_json,
                   load_json, load_npz, read_regular_bytes)

FORMAT = "refopt-port-inputs"
FORMAT_VERSION = "2.1.0"   # 2.1: opaque case folder names (port_case_id)
INPUTS_JSON, INPUTS_NPZ = "inputs.json", "inputs.npz"
CASE_TXT, HYPER_TXT, SHAPES_TXT = "case.txt", "hyper.txt", "shapes.txt"
OUTPUT_NPZ, OUTPUT_JSON, OUTPUT_DIR = "output.npz", "output.json", "output"
ERROR_TXT, UNSUPPORTED_TXT = "error.txt", "unsupported.txt"
INDEX_JSON, INDEX_TXT = "index.json", "index.txt"
#: Bounds of the reads of what a port wrote (a message file, output.json).
MAX_MESSAGE_BYTES = 64 << 10
MAX_OUTPUT_JSON_BYTES = 1 << 20
# Per-step extras of AlphaAdam in output/ (raw files): little-endian dtype, one row per
# recorded step after 0; "mask" rows are shaped like the tensor, the others are scalars.
INFO_FILES = {"mask": ("u1", True), "alpha": ("<f8", False), "kept": ("<i8", False)}
_TOKEN_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.:/=")


def port_case_id(case_id: str) -> str:
    """The name under which the file mode shows the golden case ``case_id`` to a port: its
    folder and the ``case_id`` of its inputs. Opaque, so that a name such as
    ``invalid-lr-negative`` does not tell the port what to answer; deterministic, so that the
    same case keeps its folder across ``--write-inputs`` runs and ``refopt compare`` finds it
    from the golden case alone (no index of refopt's is needed in the directory)."""
    return "case-" + hashlib.blake2b(case_id.encode("utf-8"), digest_size=6).hexdigest()


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


def _token(name: str, text: str) -> str:
    if not text or not set(text) <= _TOKEN_CHARS:
        raise ValueError(f"hyperparameter {name}: {text!r} cannot be written as one token of "
                         f"hyper.txt (letters, digits and _+-.:/= only)")
    return text


def hyper_lines(hyper: dict) -> list[str]:
    """``hyper.txt``: one ``name type value text`` line per scalar hyperparameter (tuples
    flattened as ``name.0``, ``name.1``); see PORTING.md."""
    lines = []

    def emit(name, v):
        if isinstance(v, (tuple, list)):
            for k, item in enumerate(v):
                emit(f"{name}.{k}", item)
        elif v is None:
            lines.append(f"{name} none - none")
        elif isinstance(v, (bool, np.bool_)):
            lines.append(f"{name} bool {int(bool(v))} {'true' if v else 'false'}")
        elif isinstance(v, str):
            lines.append(f"{name} str {_token(name, v)} {v}")
        elif isinstance(v, (int, np.integer, float, np.floating)):
            try:
                x = float(v)
            except OverflowError:
                raise ValueError(f"hyperparameter {name}: {v!r} is beyond float64") from None
            lines.append(f"{name} f64 {x.hex()} {x!r}")
        else:
            raise ValueError(f"hyperparameter {name}: a {type(v).__name__} cannot be written "
                             f"to hyper.txt")

    for key in sorted(hyper):
        emit(_token("name", key), hyper[key])
    return lines


def _port_hyper(case) -> dict:
    """The hyperparameters as the port sees them: AlphaAdam's ``None`` (= the mode's default)
    spelled out as the rule resolves it, so that an invalid case (stored unresolved) reads like
    a valid one (stored resolved)."""
    h = dict(case.hyper)
    if case.rule == "alphaadam":
        if h.get("eps", 0) is None and h.get("bias_correction") in ("hf", "torch"):
            h["eps"] = 1e-6 if h["bias_correction"] == "hf" else 1e-8
        if h.get("density_floor", 0) is None:
            h["density_floor"] = 1e-2 if h.get("alpha_rule") == "soft" else 1e-3
    return h


def file_mode_case(case):
    """``case`` as the file mode runs it. An invalid case stored without payload gets a probe
    shaped like an ordinary case (four tensors of shapes (), (1,), (2, 3), (7,), eight steps,
    every step recorded; values drawn from the case id), so its inputs do not tell it apart."""
    if case.result != "invalid" or (case.init_params and int(case.n_steps or 0) > 0):
        return case
    dt = np.dtype(case.dtype or "float64")
    rng = np.random.default_rng(zlib.crc32(case.case_id.encode()))
    shapes, n = [(), (1,), (2, 3), (7,)], 8
    init = [np.asarray(rng.normal(size=s), dtype=dt) for s in shapes]
    grads = [np.asarray(rng.normal(size=(n,) + s), dtype=dt) for s in shapes]
    return replace(case, init_params=init, grads=grads, grad_fn=None, n_steps=n,
                   steps=np.arange(n + 1, dtype=np.int64), expected_params=[],
                   expected_state={})


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


def _case_inputs(case, replayed: bool) -> tuple[dict, dict, dict]:
    """(inputs.json, arrays, flat text files) of one case. Nothing in them says the case's
    expected result: no ``result``, no flags."""
    dt = np.dtype(case.dtype)
    n = int(case.n_steps)
    hyper = _port_hyper(case)
    lr = np.array([float(case.lr_schedule[k]) if case.lr_schedule is not None
                   else float(hyper["lr"]) for k in range(n)], dtype=np.float64)
    arrays = {"steps": np.asarray(case.steps, dtype=np.int64), "lr": lr}
    tensors, shape_lines = [], []
    for i, p in enumerate(case.init_params):
        arrays[f"param.{i}"] = np.asarray(p, dtype=dt)
        arrays[f"grad.{i}"] = np.asarray(case.grads[i], dtype=dt).reshape((n,) + np.shape(p))
        tensors.append({"index": i, "shape": list(np.shape(p))})
        shape = [int(d) for d in np.shape(p)]
        shape_lines.append(" ".join(str(x) for x in [i, int(np.prod(shape)), len(shape)] + shape))
    record = [int(s) for s in case.steps]
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "case_id": port_case_id(case.case_id),
        "rule": case.rule, "dtype": str(dt),
        "hyper": {k: _json_value(v) for k, v in hyper.items()},
        "hyper_hex": {k: _hex_value(v) for k, v in hyper.items()},
        "n_steps": n, "record_steps": record, "tensors": tensors,
        "lr_schedule": case.lr_schedule is not None,
        "replayed_closed_loop": bool(replayed),
        "arrays": {k: {"file": f"{k}.bin", "dtype": np.asarray(v).dtype.newbyteorder("<").str,
                       "shape": list(np.shape(v))} for k, v in arrays.items()},
        "output": {"npz": OUTPUT_NPZ, "json": OUTPUT_JSON, "raw": f"{OUTPUT_DIR}/<key>.<i>.bin",
                   "params": "param.<i> shaped (len(record_steps), *shape), dtype as the case",
                   "optional_buffers": "exp_avg.<i>, exp_avg_sq.<i> in the same form",
                   "optional_alphaadam": "mask.<i> (bool; raw: uint8 0/1), shaped "
                                         "(len(record_steps) - 1, *shape), alpha.<i> (float64) "
                                         "and kept.<i> (int64), shaped (len(record_steps) - 1,): "
                                         "the values of the steps record_steps[1:]",
                   "refusal": f"{OUTPUT_DIR}/{ERROR_TXT} or {OUTPUT_JSON} {{\"error\": ...}}",
                   "unsupported": f"{OUTPUT_DIR}/{UNSUPPORTED_TXT} or {OUTPUT_JSON} "
                                  f"{{\"unsupported\": ...}}"},
    }
    case_txt = [f"format {FORMAT}", f"format_version {FORMAT_VERSION}",
                f"case_id {port_case_id(case.case_id)}", f"rule {case.rule}",
                f"dtype {dt}", f"n_steps {n}", f"n_tensors {len(case.init_params)}",
                f"n_record {len(record)}", "record_steps " + " ".join(map(str, [len(record)]
                                                                       + record)),
                f"lr_schedule {int(case.lr_schedule is not None)}",
                "lr_per_step " + " ".join([str(n)] + [float(x).hex() for x in lr])]
    texts = {CASE_TXT: "\n".join(case_txt) + "\n",
             HYPER_TXT: "\n".join(hyper_lines(hyper)) + "\n",
             SHAPES_TXT: "\n".join(shape_lines) + ("\n" if shape_lines else "")}
    return meta, arrays, texts


class DirectoryNotEmpty(ValueError):
    """``write_inputs`` into a directory that already holds something, without ``force``."""


def _is_case_folder(path: Path) -> bool:
    """A folder refopt's write_inputs made: a real directory whose inputs.json has this
    format and names the folder as its case."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        meta = load_json(path / INPUTS_JSON, max_bytes=MAX_OUTPUT_JSON_BYTES * 16)
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT \
        and meta.get("case_id") == path.name


def clear_inputs(directory: str | os.PathLike) -> list[str]:
    """Delete what :func:`write_inputs` wrote under ``directory``: every case folder (with the
    port's outputs in it), ``index.json`` and ``index.txt``; anything else is left alone.
    Returns the case ids removed."""
    root = Path(directory)
    removed = []
    for entry in sorted(root.iterdir()):
        if _is_case_folder(entry):
            shutil.rmtree(entry)
            removed.append(entry.name)
    index = root / INDEX_JSON
    if index.is_file() and not index.is_symlink():
        try:
            is_ours = (load_json(index, max_bytes=MAX_OUTPUT_JSON_BYTES * 16) or {}).get(
                "format") == FORMAT
        except (OSError, ValueError, AttributeError):
            is_ours = False
        if is_ours:
            index.unlink()
            text = root / INDEX_TXT
            if text.is_file() and not text.is_symlink():
                text.unlink()
    return removed


def write_inputs(cases: Iterable, directory: str | os.PathLike, *,
                 force: bool = False) -> list[str]:
    """Write each case's inputs under ``directory/<port_case_id(case_id)>/``; returns the
    golden case ids written, in order (the folders are :func:`port_case_id` of them).

    Every array is written twice: in ``inputs.npz`` and as a raw little-endian C-order ``.bin``
    file; the metadata twice too: ``inputs.json`` and the flat ``case.txt``, ``hyper.txt`` and
    ``shapes.txt``. ``directory/index.json`` and ``index.txt`` list the cases. A directory that
    holds anything is refused (:class:`DirectoryNotEmpty`) unless ``force``, which first deletes
    what an earlier ``write_inputs`` wrote there (:func:`clear_inputs`): stale outputs never
    survive.
    """
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} is a file; give a directory")
    if root.is_dir() and any(root.iterdir()):
        if not force:
            raise DirectoryNotEmpty(f"{root} is not empty; pass --force (force=True) to delete "
                                    f"the case folders refopt wrote there, or give an empty "
                                    f"directory")
        clear_inputs(root)
    folders = {}   # folder name -> golden case id, in order
    for case in cases:
        folder_name = port_case_id(case.case_id)
        if folders.setdefault(folder_name, case.case_id) != case.case_id:
            raise ValueError(f"cases {folders[folder_name]!r} and {case.case_id!r} have the "
                             f"same folder name {folder_name}; rename one")
        case = file_mode_case(case)
        replayed = case.grads is None and case.result != "invalid"
        meta, arrays, texts = _case_inputs(replay_case(case), replayed)
        folder = root / folder_name
        atomic_savez(folder / INPUTS_NPZ, arrays)
        for key, value in arrays.items():
            le = np.ascontiguousarray(value, dtype=np.asarray(value).dtype.newbyteorder("<"))
            atomic_write_bytes(folder / f"{key}.bin", le.tobytes())
        for name, text in texts.items():
            atomic_write_bytes(folder / name, text.encode("ascii"))
        atomic_write_json(folder / INPUTS_JSON, meta)   # last: a complete folder has it
    names = list(folders)
    atomic_write_json(root / INDEX_JSON, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                          "cases": names})
    # The same list for C: the number of cases, then one case id (folder name) per line.
    atomic_write_bytes(root / INDEX_TXT, "".join(f"{x}\n" for x in [len(names)] + names)
                       .encode("ascii"))
    return list(folders.values())


class NoOutput(Exception):
    """The port wrote nothing for a case."""


class PortRefused(Exception):
    """The port reported an error for the case (``error.txt`` or ``output.json`` "error")."""


class PortUnsupported(Exception):
    """The port declared the case unsupported (``unsupported.txt`` or ``output.json``
    "unsupported"): not run."""


class StaleOutput(Exception):
    """An output file older than the case's inputs (left from an earlier run)."""


def _mtime_ns(path: Path) -> int:
    return os.stat(path).st_mtime_ns


def _inputs_mtime(folder: Path) -> int:
    """When the case's inputs were written (the newest of refopt's files)."""
    names = [INPUTS_JSON, INPUTS_NPZ, CASE_TXT, HYPER_TXT, SHAPES_TXT]
    return max((_mtime_ns(folder / n) for n in names if (folder / n).exists()), default=0)


def _check_fresh(folder: Path, paths: list[Path], since: int) -> None:
    stale = [p for p in paths if _mtime_ns(p) < since]
    if stale:
        names = ", ".join(str(p.relative_to(folder)) for p in stale[:3])
        more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
        raise StaleOutput(f"stale output: {names}{more} older than the case's inputs (left "
                          f"from an earlier run?): not judged; rerun the port on {folder}")


def _message(path: Path) -> str:
    raw = read_regular_bytes(path, MAX_MESSAGE_BYTES)
    text = raw.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0].strip() if text else "(no message)"


def _raw_array(path: Path, dtype, count: int, what: str) -> np.ndarray:
    """Exactly ``count`` values of ``dtype`` from a raw file, bounded by that size."""
    dtype = np.dtype(dtype)
    want = count * dtype.itemsize
    try:
        raw = read_regular_bytes(path, want)
    except CorruptFileError as exc:
        raise ValueError(f"{path}: {what}: expected {count} values of {dtype.str} ({want} "
                         f"bytes): {exc}") from None
    if len(raw) != want:
        raise ValueError(f"{path}: {what}: {len(raw)} bytes, expected {count} values of "
                         f"{dtype.str} ({want} bytes)")
    return np.frombuffer(raw, dtype=dtype, count=count).copy()


def read_output(folder: str | os.PathLike, case, buffers: tuple = ()):
    """The port's trajectory for ``case`` from ``folder`` as a :class:`PortRun`.

    Raises :class:`PortRefused` for a refusal (``output/error.txt`` or ``output.json`` with an
    ``"error"``), :class:`PortUnsupported` for ``output/unsupported.txt`` or ``output.json``
    with ``"unsupported"``, :class:`StaleOutput` when an output file is older than the inputs,
    and :class:`NoOutput` when the port wrote neither params nor a message.
    """
    from .adapters import PortRun

    folder = Path(folder)
    since = _inputs_mtime(folder)
    out_dir = folder / OUTPUT_DIR
    for name, exc in ((ERROR_TXT, PortRefused), (UNSUPPORTED_TXT, PortUnsupported)):
        path = out_dir / name
        if path.exists():
            _check_fresh(folder, [path], since)
            raise exc(_message(path))
    if (folder / OUTPUT_JSON).exists():
        _check_fresh(folder, [folder / OUTPUT_JSON], since)
        report = load_json(folder / OUTPUT_JSON, max_bytes=MAX_OUTPUT_JSON_BYTES)
        if isinstance(report, dict) and report.get("error"):
            raise PortRefused(str(report["error"]))
        if isinstance(report, dict) and report.get("unsupported"):
            raise PortUnsupported(str(report["unsupported"]))
    dt = np.dtype(case.dtype)
    n_rec = len(case.steps)
    n_info = int(np.count_nonzero(np.asarray(case.steps) != 0))
    shapes = [tuple(np.shape(p)) for p in case.init_params]
    sizes = [int(np.prod(s)) for s in shapes]
    keys = ("param",) + tuple(b for b in buffers if b != "param")
    if (folder / OUTPUT_NPZ).exists():
        _check_fresh(folder, [folder / OUTPUT_NPZ], since)
        data = load_npz(folder / OUTPUT_NPZ, required=tuple(f"param.{i}"
                                                            for i in range(len(shapes))))
    elif out_dir.is_dir():
        data, read = {}, []
        for key in keys:
            for i, size in enumerate(sizes):
                path = out_dir / f"{key}.{i}.bin"
                if path.exists():
                    data[f"{key}.{i}"] = _raw_array(path, dt.newbyteorder("<"), n_rec * size,
                                                    f"{key}.{i} shaped {(n_rec,) + shapes[i]}"
                                                    ).astype(dt)
                    read.append(path)
        for key, (code, per_step) in INFO_FILES.items():
            for i, size in enumerate(sizes):
                path = out_dir / f"{key}.{i}.bin"
                if path.exists():
                    count = n_info * (size if per_step else 1)
                    a = _raw_array(path, code, count, f"{key}.{i}")
                    if key == "mask":
                        if a.size and a.max() > 1:
                            raise ValueError(f"{path}: mask values must be 0 or 1 (uint8)")
                        a = a.astype(bool)
                    data[f"{key}.{i}"] = a
                    read.append(path)
        missing = [f"param.{i}" for i in range(len(shapes)) if f"param.{i}" not in data]
        if missing:
            raise NoOutput(f"{out_dir}: missing {', '.join(m + '.bin' for m in missing)}")
        _check_fresh(folder, read, since)
    else:
        raise NoOutput(f"{folder}: no {OUTPUT_DIR}/param.<i>.bin, {OUTPUT_NPZ}, "
                       f"{OUTPUT_DIR}/{ERROR_TXT}, {OUTPUT_DIR}/{UNSUPPORTED_TXT} or "
                       f"{OUTPUT_JSON}")

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
    for key, (_, per_step) in INFO_FILES.items():
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
        try:
            meta = load_json(path, max_bytes=MAX_OUTPUT_JSON_BYTES * 16)
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("format") == FORMAT \
                and isinstance(meta.get("case_id"), str) and isinstance(meta.get("rule"), str):
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

    from ..registry import canonical_name, rule_info
    from . import CaseResult, ERROR, NOT_RUN, Report, judge, load_cases

    target = canonical_name(rule)
    present = {m["case_id"]: m for m in listed_cases(directory)
               if canonical_name(m["rule"]) == target}
    if cases is None:
        cases = load_cases(target, dtype=dtype, cases=pattern, directory=suite_directory)
    cases = list(cases)
    # A folder is named port_case_id(case_id); directories of format 2.0 used the case id.
    folder_of = {c.case_id: next((n for n in (port_case_id(c.case_id), c.case_id)
                                  if n in present), None) for c in cases}
    selected = [c for c in cases if folder_of[c.case_id] and canonical_name(c.rule) == target
                and fnmatch.fnmatchcase(c.case_id, pattern or "*")
                and (dtype is None or str(c.dtype) == dtype)]
    buffers = tuple(rule_info(target).cls.buffers)
    results = []
    for case in selected:
        case = replay_case(file_mode_case(case))
        folder = Path(directory) / folder_of[case.case_id]
        base = dict(case_id=case.case_id, dtype=str(case.dtype), result=case.result,
                    flags=list(case.flags), hyper=dict(case.hyper or {}), folder=folder.name)
        try:
            run = read_output(folder, case, buffers)
        except PortRefused as exc:
            results.append(replace(judge(case, None, exc, port_name=str(directory),
                                         with_diagnosis=diagnose), folder=folder.name))
            continue
        except PortUnsupported as exc:
            results.append(CaseResult(status=NOT_RUN, message=f"not run: the port declares it "
                                                              f"unsupported: {exc}", **base))
            continue
        except (NoOutput, StaleOutput, ValueError) as exc:
            results.append(CaseResult(status=ERROR, message=str(exc), **base))
            continue
        results.append(replace(judge(case, run, None, port_name=str(directory),
                                     with_diagnosis=diagnose), folder=folder.name))
    return Report(rule=target, port=f"files in {directory}", results=results)
