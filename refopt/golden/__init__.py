"""The golden suite: versioned cases generated from the float64 reference, for ports to check.

A case is a JSON manifest plus an uncompressed ``.npz`` payload under ``suite/v1/`` (format:
``FORMAT.md`` next to this file; schema: ``schema/golden-case-v1.schema.json``).

* :func:`load_suite` reads (and verifies) the committed cases as :class:`GoldenCase` objects;
* :func:`build_suite` regenerates them (``refopt golden build``), bit for bit;
* :func:`check_report` / :func:`check_suite` prove a directory matches the current reference
  (``refopt golden check``).
"""
from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np

from .._io import CorruptFileError, TamperedFileError
from .build import SUITE_DIR, CheckReport, build_suite, check_report, check_suite, make_grad_fn
from .case import GoldenCase
from .format import decode_float, decode_hyper, read_case

__all__ = ["GoldenCase", "SUITE_DIR", "build_suite", "check_suite", "check_report", "CheckReport",
           "load_suite", "case_from_files", "CorruptFileError", "TamperedFileError"]


def case_from_files(manifest: dict, arrays: dict | None) -> GoldenCase:
    """Build a :class:`GoldenCase` from a verified manifest and its payload arrays."""
    n = len(manifest["tensors"])
    buffers = manifest["buffers"]
    hyper = decode_hyper(manifest["hyperparams"])
    lr_schedule = None
    if arrays is None:  # invalid case: manifest only
        init, grads, steps = [], [], np.zeros(0, dtype=np.int64)
        expected_params, expected_state = [], {}
    else:
        init = [np.array(arrays[f"param.{i}"][0], copy=True) for i in range(n)]  # 0-d stays an array
        grads = [arrays[f"grad.{i}"] for i in range(n)] if manifest["explicit_gradients"] else None
        steps = arrays["steps"]
        expected_params = [arrays[f"param.{i}"] for i in range(n)]
        expected_state = {b: [arrays[f"{b}.{i}"] for i in range(n)] for b in buffers}
        expected_state["step"] = [arrays[f"step.{i}"] for i in range(n)]
        if manifest["schedule"]["kind"] == "explicit":
            lr_schedule = [float(x) for x in arrays[manifest["schedule"]["payload_key"]]]
    objective = manifest.get("objective")
    grad_fn = make_grad_fn(objective) if objective is not None else None
    tolerance = dict(manifest["tolerance"])
    return GoldenCase(
        case_id=manifest["case_id"], rule=manifest["rule"], options=dict(manifest["options"]),
        hyper=hyper, dtype=manifest["param_dtype"], tolerance=tolerance, init_params=init,
        grads=grads, n_steps=int(manifest["n_steps"]), steps=np.asarray(steps),
        expected_params=expected_params, expected_state=expected_state, grad_fn=grad_fn,
        objective=objective, lr_schedule=lr_schedule, flags=list(manifest["flags"]),
        result=manifest["result"], manifest=manifest)


def load_suite(pattern: str = "*", dtype: str | None = None,
               directory: str | Path | None = None, *, rule: str | None = None
               ) -> list[GoldenCase]:
    """Load the cases whose id matches ``pattern`` (fnmatch), optionally of one ``dtype`` and
    one ``rule`` (a registry name or alias).

    Only the selected cases are read: a broken case of another rule or dtype does not stop the
    load. A case id starts with its rule (``<rule>_<variant>_..._<dtype>``), so ``rule`` selects
    by file name; a manifest whose ``rule`` field disagrees with its id is tampered. Every read
    manifest's content hash and every payload array's sha256 are verified, and the payload is
    read under the bounds of :mod:`refopt.golden.format` (the schema's payload-name rule, a
    regular file of at most the declared size, stored members): :class:`CorruptFileError` for a
    truncated, malformed or refused file, :class:`TamperedFileError` for a hash mismatch. Cases
    come back sorted by id.
    """
    directory = Path(directory) if directory is not None else SUITE_DIR
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    target = prefix = None
    if rule is not None:
        from ..registry import canonical_name, is_builtin, rule_info

        target = prefix = canonical_name(rule)
        if not is_builtin(target):  # a user rule's cases: <label>_user_... (golden.user_rules)
            from .user_rules import rule_label
            prefix = rule_label(rule_info(target).cls)
    ids = sorted(p.stem for p in directory.glob("*.json") if p.name != "index.json")
    if not ids:
        raise FileNotFoundError(f"no golden cases in {directory}")
    out = []
    for case_id in ids:
        if not fnmatch.fnmatchcase(case_id, pattern):
            continue
        if dtype is not None and not case_id.endswith(f"_{dtype}"):
            continue
        if prefix is not None and not case_id.startswith(f"{prefix}_"):
            continue
        manifest, arrays = read_case(directory, case_id)
        if target is not None and manifest.get("rule") != target:
            raise TamperedFileError(f"{directory}/{case_id}.json: case id names rule {target!r} "
                                    f"but the manifest says {manifest.get('rule')!r}")
        out.append(case_from_files(manifest, arrays))
    return out


def hex_value(obj: dict) -> float:
    """A manifest float (``{"hex", "bits", "decimal"}``) as a Python float."""
    return decode_float(obj)
