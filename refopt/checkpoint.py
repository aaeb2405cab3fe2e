"""Save and restore a rule's state (JSON + .npz, atomic, no pickle), so that a resumed run is
bitwise identical to an uninterrupted one: ``t`` is stored with the buffers.

``save_state("runs/ckpt.step100", rule, state)`` writes ``runs/ckpt.step100.json`` and
``runs/ckpt.step100.npz`` (the suffixes are appended, never substituted). The JSON records the
rule, its hyperparameters, the step counts, a sha256 digest of every array and a sha256 of the
JSON itself (with that field zeroed), so an edited step count or hyperparameter is detected as
well as an altered array.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from . import _io
from .registry import canonical_name, get_rule

FORMAT = "refopt-state/1"
_ZERO_HASH = "0" * 64


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    return path.with_name(path.name + ".json"), path.with_name(path.name + ".npz")


def _meta_hash(meta: dict) -> str:
    body = json.dumps({**meta, "meta_sha256": _ZERO_HASH}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def save_state(path: str | os.PathLike, rule, state) -> None:
    """Write ``path``.json and ``path``.npz atomically (arrays first, then the JSON that names them)."""
    json_path, npz_path = _paths(path)
    arrays = {f"{b}.{i}": np.asarray(x) for b in rule.buffers for i, x in enumerate(getattr(state, b))}
    _io.atomic_savez(npz_path, arrays)
    meta = {"format": FORMAT, "rule": rule.name, "hyper": _jsonable(dict(rule.hyper)),
            "step": [int(s) for s in state.step],
            "digests": {k: _io.array_digest(v) for k, v in arrays.items()}}
    meta["meta_sha256"] = _meta_hash(meta)
    _io.atomic_write_json(json_path, meta)


def load_state(path: str | os.PathLike, backend: str = "numpy"):
    """Return ``(rule, state)`` saved by :func:`save_state`.

    Raises :class:`refopt._io.CorruptFileError` for an unreadable or incomplete file and
    :class:`refopt._io.TamperedFileError` when the JSON or an array does not match its hash.
    """
    json_path, npz_path = _paths(path)
    meta = _io.load_json(json_path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _io.CorruptFileError(f"{json_path}: not a {FORMAT} file")
    missing = [k for k in ("rule", "hyper", "step", "digests", "meta_sha256") if k not in meta]
    if missing:
        raise _io.CorruptFileError(f"{json_path}: missing fields {missing}")
    if _meta_hash(meta) != meta["meta_sha256"]:
        raise _io.TamperedFileError(f"{json_path}: content does not match its recorded sha256 "
                                    f"(edited step counts or hyperparameters?)")
    hyper = dict(meta["hyper"])
    if "betas" in hyper:
        hyper["betas"] = tuple(hyper["betas"])
    rule = get_rule(canonical_name(meta["rule"]), backend=backend, **hyper)
    n = len(meta["step"])
    required = tuple(f"{b}.{i}" for b in rule.buffers for i in range(n))
    arrays = _io.load_npz(npz_path, required)
    for key in required:
        if _io.array_digest(arrays[key]) != meta["digests"].get(key):
            raise _io.TamperedFileError(f"{npz_path}: array {key!r} does not match its recorded hash")
    fields = {"step": tuple(int(s) for s in meta["step"])}
    for b in rule.buffers:
        fields[b] = tuple(arrays[f"{b}.{i}"] for i in range(n))
    return rule, rule.state_type(**fields)


def _jsonable(h: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in h.items()}
