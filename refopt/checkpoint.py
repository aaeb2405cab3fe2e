"""Save and restore a rule's state (JSON + .npz, atomic, no pickle), so that a resumed run is
bitwise identical to an uninterrupted one: ``t`` is stored with the buffers.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import _io
from .registry import canonical_name, get_rule

FORMAT = "refopt-state/1"


def save_state(path: str | os.PathLike, rule, state) -> None:
    """Write ``path``.json and ``path``.npz; the JSON records the rule, hyperparameters and hashes."""
    path = Path(path)
    arrays = {f"{b}.{i}": np.asarray(x) for b in rule.buffers for i, x in enumerate(getattr(state, b))}
    _io.atomic_savez(path.with_suffix(".npz"), arrays)
    meta = {"format": FORMAT, "rule": rule.name, "hyper": _jsonable(dict(rule.hyper)),
            "step": [int(s) for s in state.step],
            "digests": {k: _io.array_digest(v) for k, v in arrays.items()}}
    _io.atomic_write_json(path.with_suffix(".json"), meta)


def load_state(path: str | os.PathLike, backend: str = "numpy"):
    """Return ``(rule, state)`` from :func:`save_state` files; raises on a corrupt or altered file."""
    path = Path(path)
    meta = _io.load_json(path.with_suffix(".json"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _io.CorruptFileError(f"{path}.json: not a {FORMAT} file")
    hyper = dict(meta["hyper"])
    if "betas" in hyper:
        hyper["betas"] = tuple(hyper["betas"])
    rule = get_rule(canonical_name(meta["rule"]), backend=backend, **hyper)
    n = len(meta["step"])
    required = tuple(f"{b}.{i}" for b in rule.buffers for i in range(n))
    arrays = _io.load_npz(path.with_suffix(".npz"), required)
    for key in required:
        if _io.array_digest(arrays[key]) != meta["digests"].get(key):
            raise _io.TamperedFileError(f"{path}.npz: array {key!r} does not match its recorded hash")
    fields = {"step": tuple(int(s) for s in meta["step"])}
    for b in rule.buffers:
        fields[b] = tuple(arrays[f"{b}.{i}"] for i in range(n))
    return rule, rule.state_type(**fields)


def _jsonable(h: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in h.items()}
