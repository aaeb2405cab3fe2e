"""Save and restore a rule's state (.npz + a JSON copy of its metadata, atomic, no pickle), so that
a resumed run is bitwise identical to an uninterrupted one: ``t`` is stored with the buffers.

``save_state("runs/ckpt.step100", rule, state)`` writes ``runs/ckpt.step100.npz`` and
``runs/ckpt.step100.json`` (the suffixes are appended, never substituted). The metadata records
the format, the rule, its hyperparameters, the step counts, a sha256 digest of every array and a
sha256 of the metadata itself (with that field zeroed), so an edited step count or
hyperparameter is detected as well as an altered array.

Crash safety (format ``refopt-state/2``; ``docs/reliability.md``): the checkpoint is **one
file**, the ``.npz``: it holds the arrays *and* the metadata (as the uint8 array
``__refopt_meta__``), and it is replaced atomically. The ``.json`` is a readable copy of that
metadata, written after the ``.npz``. So

* a writer killed at any point leaves the old checkpoint or the new one, and it loads: a
  ``.json`` left from the other generation (killed between the two replaces, or read by a
  loader racing a writer) is recognised by its own valid hash and ignored, never reported as
  tampering;
* a ``.json`` whose own hash fails, or an array that does not match the digest in the ``.npz``,
  can only be an edit: :class:`~refopt._io.TamperedFileError`;
* the temporary files of killed writers are removed by the next :func:`save_state` of the same
  path.

Checkpoints of the older format ``refopt-state/1`` (metadata in the ``.json`` only) still load.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import _io
from .registry import canonical_name, get_rule

FORMAT = "refopt-state/2"
FORMATS_READ = ("refopt-state/1", FORMAT)
META_KEY = "__refopt_meta__"
_ZERO_HASH = "0" * 64
_FIELDS = ("rule", "hyper", "step", "digests", "meta_sha256")


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    return path.with_name(path.name + ".json"), path.with_name(path.name + ".npz")


def _meta_hash(meta: dict) -> str:
    body = json.dumps({**meta, "meta_sha256": _ZERO_HASH}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def save_state(path: str | os.PathLike, rule, state) -> None:
    """Write ``path``.npz (arrays and metadata, one atomic replace), then its ``path``.json copy.

    Everything that can fail fails before anything is written, so a failed save leaves no
    orphan ``.npz``: a state that is not the rule's (another rule's, step counts that are not
    integers >= 0, a buffer tuple of the wrong length, a buffer that is not a float32/float64/
    complex NumPy array of its tensor's shape and dtype), hyperparameters that JSON cannot hold
    or that do not rebuild the rule (so the checkpoint would not load), a destination that is
    a directory or another non-regular file.
    """
    json_path, npz_path = _paths(path)
    steps = _check_savable(rule, state)
    for p in (npz_path, json_path):
        if os.path.lexists(p) and not os.path.isfile(p):
            raise IsADirectoryError(f"{p}: exists and is not a regular file; save_state "
                                    f"replaces checkpoint files only")
    arrays = {f"{b}.{i}": getattr(state, b)[i] for b in rule.buffers for i in range(len(steps))}
    meta = {"format": FORMAT, "rule": rule.name, "hyper": _jsonable(dict(rule.hyper)),
            "step": steps, "digests": {k: _io.array_digest(v) for k, v in arrays.items()}}
    meta["meta_sha256"] = _meta_hash(meta)
    text = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n"  # may raise: first
    try:  # what load_state will do with this metadata: rebuild the rule (its warnings were
        with warnings.catch_warnings():  # given when the rule was built)
            warnings.simplefilter("ignore")
            rebuilt = _rule_of(json.loads(text), "numpy")
    except _io.CorruptFileError as exc:
        raise ValueError(f"save_state: {rule.name}'s hyperparameters would not load back: "
                         f"{exc.__cause__ or exc}") from None
    if dict(rebuilt.hyper) != dict(rule.hyper):
        raise ValueError(f"save_state: {rule.name}'s hyperparameters do not survive JSON: "
                         f"{dict(rule.hyper)} reads back as {dict(rebuilt.hyper)}")
    payload = _io.npz_bytes({**arrays, META_KEY: np.frombuffer(text.encode("utf-8"), np.uint8)})
    _io.atomic_write_bytes(npz_path, payload)
    _io.atomic_write_bytes(json_path, text.encode("utf-8"))
    for p in (npz_path, json_path):
        _io.remove_stale_temporaries(p)


def _check_savable(rule, state) -> list[int]:
    """The step counts of ``state`` as Python ints, after checking that ``state`` is ``rule``'s
    and holds what a checkpoint stores (TypeError / ValueError naming the field)."""
    from ._validation import SUPPORTED_DTYPES

    name = getattr(rule, "name", None)
    if not isinstance(name, str) or getattr(rule, "hyper", None) is None:
        raise TypeError(f"rule must be a refopt rule (from refopt.get_rule), got "
                        f"{type(rule).__name__}")
    state_type = getattr(rule, "state_type", None)
    if state_type is not None and not isinstance(state, state_type):
        raise TypeError(f"state must be a {state_type.__name__} from {name}.init, got "
                        f"{type(state).__name__}")
    steps = list(getattr(state, "step", ()))
    for i, t in enumerate(steps):
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"state.step[{i}] must be an integer >= 0, got {t!r}")
    for b in rule.buffers:
        buffers = getattr(state, b)
        if len(buffers) != len(steps):
            raise ValueError(f"state.{b} holds {len(buffers)} tensors but state.step holds "
                             f"{len(steps)}")
        for i, x in enumerate(buffers):
            if type(x) is not np.ndarray:
                raise TypeError(f"state.{b}[{i}] must be a numpy.ndarray (move device arrays "
                                f"to the host first), got {type(x).__name__}")
            if x.dtype not in SUPPORTED_DTYPES:
                raise TypeError(f"state.{b}[{i}] has dtype {x.dtype}; a state holds float32, "
                                f"float64, complex64 or complex128 arrays")
            first = getattr(state, rule.buffers[0])[i]
            if x.shape != first.shape or x.dtype != first.dtype:
                raise ValueError(f"state.{b}[{i}] has shape {x.shape} and dtype {x.dtype} but "
                                 f"state.{rule.buffers[0]}[{i}] has {first.shape} and "
                                 f"{first.dtype}")
    return [int(t) for t in steps]


def _check_meta(meta: Any, where: Path) -> dict:
    """The metadata's structure and own hash (CorruptFileError / TamperedFileError)."""
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS_READ:
        raise _io.CorruptFileError(f"{where}: not a {FORMAT} file")
    missing = [k for k in _FIELDS if k not in meta]
    if missing:
        raise _io.CorruptFileError(f"{where}: missing fields {missing}")
    try:
        recorded_ok = _meta_hash(meta) == meta["meta_sha256"]
    except (TypeError, ValueError) as exc:  # e.g. NaN or a non-string key cannot be hashed back
        raise _io.CorruptFileError(f"{where}: metadata cannot be re-encoded: {exc}") from None
    if not recorded_ok:
        raise _io.TamperedFileError(f"{where}: content does not match its recorded sha256 "
                                    f"(edited step counts or hyperparameters?)")
    if not isinstance(meta["rule"], str):
        raise _io.CorruptFileError(f"{where}: 'rule' must be a string, got {meta['rule']!r}")
    if not isinstance(meta["hyper"], dict):
        raise _io.CorruptFileError(f"{where}: 'hyper' must be an object, got {meta['hyper']!r}")
    steps = meta["step"]
    if not isinstance(steps, list) or not all(
            type(s) is int and s >= 0 for s in steps):
        raise _io.CorruptFileError(f"{where}: 'step' must be a list of integers >= 0, got "
                                   f"{steps!r}")
    digests = meta["digests"]
    if not isinstance(digests, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in digests.items()):
        raise _io.CorruptFileError(f"{where}: 'digests' must map array names to sha256 strings")
    return meta


def load_state(path: str | os.PathLike, backend: str = "numpy"):
    """Return ``(rule, state)`` saved by :func:`save_state`.

    Raises :class:`refopt._io.CorruptFileError` for an unreadable, incomplete or malformed file
    (also a directory, FIFO or device where the file belongs, a compressed member or an array
    header that does not fit its data) and :class:`refopt._io.TamperedFileError` when the
    metadata or an array does not match its hash.
    """
    from .registry import BACKENDS

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    json_path, npz_path = _paths(path)
    try:
        arrays = _io.load_npz(npz_path)
    except FileNotFoundError:
        if json_path.exists():
            raise _io.CorruptFileError(f"{npz_path}: missing (its metadata {json_path.name} "
                                       f"exists)") from None
        raise
    if META_KEY in arrays:
        embedded = arrays.pop(META_KEY)
        if embedded.dtype != np.uint8 or embedded.ndim != 1:
            raise _io.CorruptFileError(f"{npz_path}: {META_KEY} is not a uint8 vector")
        meta = _check_meta(_io.parse_json_bytes(embedded.tobytes(), f"{npz_path}[{META_KEY}]"),
                           npz_path)
        if meta["format"] != FORMAT:
            raise _io.CorruptFileError(f"{npz_path}: embedded metadata is not {FORMAT}")
        # The JSON copy: checked for edits; one from the other generation (a crash between the
        # two replaces, or a writer racing this read) is valid but different, and ignored.
        try:
            _check_meta(_io.load_json(json_path), json_path)
        except FileNotFoundError:
            pass
    else:  # refopt-state/1: the JSON holds the metadata
        meta = _check_meta(_io.load_json(json_path), json_path)
    rule = _rule_of(meta, backend)
    n = len(meta["step"])
    required = tuple(f"{b}.{i}" for b in rule.buffers for i in range(n))
    missing = [k for k in required if k not in arrays]
    if missing:
        raise _io.CorruptFileError(f"{npz_path}: missing arrays {missing}")
    extra = sorted(set(arrays) - set(required))
    if extra or sorted(meta["digests"]) != sorted(required):
        raise _io.TamperedFileError(f"{npz_path}: arrays {extra or sorted(arrays)} do not match "
                                    f"the {n} tensor(s) of {meta['rule']} the metadata records")
    for key in required:
        if _io.array_digest(arrays[key]) != meta["digests"].get(key):
            raise _io.TamperedFileError(f"{npz_path}: array {key!r} does not match its recorded hash")
    fields = {"step": tuple(int(s) for s in meta["step"])}
    for b in rule.buffers:
        fields[b] = tuple(arrays[f"{b}.{i}"] for i in range(n))
    return rule, rule.state_type(**fields)


def _rule_of(meta: dict, backend: str):
    import warnings

    hyper = dict(meta["hyper"])
    if isinstance(hyper.get("betas"), list):
        hyper["betas"] = tuple(hyper["betas"])
    try:
        if backend == "numpy":
            return get_rule(canonical_name(meta["rule"]), **hyper)
        with warnings.catch_warnings():  # checked on the reference; the backend warns below
            warnings.simplefilter("ignore")
            get_rule(canonical_name(meta["rule"]), **hyper)
    except (TypeError, ValueError) as exc:
        raise _io.CorruptFileError(f"checkpoint metadata does not build its rule: {exc}") from exc
    return get_rule(canonical_name(meta["rule"]), backend=backend, **hyper)


def _jsonable(h: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in h.items()}
