"""Reading and writing one golden case: a JSON manifest plus an uncompressed ``.npz`` payload.

The format is documented for porters in ``refopt/golden/FORMAT.md`` and fixed by the JSON Schema
``refopt/golden/schema/golden-case-v1.schema.json`` (draft-07). This module is the only code that
touches the files:

* :func:`write_case` writes the payload first and the manifest last, each atomically (temp file in
  the same directory, fsync, ``os.replace``; :mod:`refopt._io`), so a reader never sees a manifest
  whose payload is missing or torn.
* :func:`read_case` tells a *truncated or malformed* file (:class:`~refopt._io.CorruptFileError`:
  bad JSON, zip error, CRC failure, a missing array) from a *tampered* one
  (:class:`~refopt._io.TamperedFileError`: the file reads fine but a hash does not match).

Floats in the manifest are written three ways (:func:`encode_float`): a C99 hex float, the IEEE
bit pattern as hex digits (for JavaScript and Rust, which read neither hex floats nor NaN in
JSON) and a decimal string for people; ``"nan"``, ``"inf"`` and ``"-inf"`` stand for the
non-finite values, which JSON cannot hold.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._io import (CorruptFileError, TamperedFileError, array_digest, atomic_write_bytes,
                   npz_bytes, npz_from_bytes, parse_json_bytes, read_regular_bytes)

# Bounded reads (docs/reliability.md): a manifest is a few kB, a payload is its declared arrays
# plus the .npz container's per-member overhead.
MAX_MANIFEST_BYTES = 16 << 20
MAX_MANIFEST_DEPTH = 32
MAX_PAYLOAD_BYTES = 1 << 30
_PAYLOAD_OVERHEAD_PER_ARRAY = 1024
# The schema's rule for payload["file"]: a plain name in the suite directory, nothing else.
PAYLOAD_FILE_RE = re.compile(r"^[A-Za-z0-9._+-]+\.npz$")

SCHEMA_FILE = "golden-case-v1.schema.json"
SCHEMA_VERSION = "1.0.0"
SCHEMA_PATH = Path(__file__).with_name("schema") / SCHEMA_FILE
CONTENT_HASH_PLACEHOLDER = "0" * 64

__all__ = ["CorruptFileError", "TamperedFileError", "SCHEMA_FILE", "SCHEMA_VERSION",
           "encode_float", "decode_float", "encode_hyper", "decode_hyper", "manifest_bytes",
           "content_hash_of", "write_case", "read_case", "read_manifest", "validate_manifest",
           "payload_entry"]


# -- floats ------------------------------------------------------------------------------------

def _float_hex(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x).hex()


def encode_float(x: float, dtype: str = "float64") -> dict:
    """``{"hex", "bits", "decimal"}`` for one float of ``dtype`` (float32 goes through float64).

    >>> encode_float(1 / 3, "float32")["hex"], encode_float(1 / 3, "float32")["bits"]
    ('0x1.5555560000000p-2', '3eaaaaab')
    """
    if dtype == "float32":
        x32 = np.float32(x)
        bits = format(struct.unpack("<I", struct.pack("<f", x32))[0], "08x")
        x = float(x32)
    elif dtype == "float64":
        x = float(x)
        bits = format(struct.unpack("<Q", struct.pack("<d", x))[0], "016x")
    else:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return {"hex": _float_hex(x), "bits": bits, "decimal": repr(x)}


def decode_float(obj: Mapping[str, str]) -> float:
    """The float of an :func:`encode_float` object, read from its hex field (exact)."""
    h = obj["hex"]
    if h in ("nan", "inf", "-inf"):
        return float(h)
    return float.fromhex(h)


def encode_hyper(hyper: Mapping[str, Any]) -> dict:
    """Hyperparameters for the manifest: floats encoded, tuples of floats as lists, rest as is."""
    out = {}
    for key in sorted(hyper):
        value = hyper[key]
        if value is None or isinstance(value, (bool, str, int)):
            out[key] = value
        elif isinstance(value, float):
            out[key] = encode_float(value)
        elif isinstance(value, (tuple, list)):
            out[key] = [encode_float(float(v)) for v in value]
        else:
            raise TypeError(f"hyperparameter {key!r} has unsupported type {type(value).__name__}")
    return out


def decode_hyper(encoded: Mapping[str, Any]) -> dict:
    """Inverse of :func:`encode_hyper` (lists of floats come back as tuples, as rules take them)."""
    out = {}
    for key, value in encoded.items():
        if isinstance(value, dict) and "hex" in value:
            out[key] = decode_float(value)
        elif isinstance(value, list):
            out[key] = tuple(decode_float(v) for v in value)
        else:
            out[key] = value
    return out


# -- manifest bytes and the content hash -------------------------------------------------------

def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The exact bytes of a manifest file: sorted keys, 1-space indent, ASCII, final newline."""
    text = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False, ensure_ascii=True)
    return (text + "\n").encode("ascii")


def _placeholder_bytes(data: bytes, recorded: str) -> bytes:
    needle = f'"content_hash": "{recorded}"'.encode("ascii")
    if data.count(needle) != 1:
        raise CorruptFileError("manifest must hold exactly one \"content_hash\" entry")
    return data.replace(needle, f'"content_hash": "{CONTENT_HASH_PLACEHOLDER}"'.encode("ascii"))


def content_hash_of(data: bytes, recorded: str) -> str:
    """sha256 of the manifest file's bytes with its content_hash value replaced by 64 zeros."""
    return hashlib.sha256(_placeholder_bytes(data, recorded)).hexdigest()


def _finalise_manifest(manifest: dict) -> bytes:
    manifest = dict(manifest)
    manifest["content_hash"] = CONTENT_HASH_PLACEHOLDER
    draft = manifest_bytes(manifest)
    digest = hashlib.sha256(draft).hexdigest()
    manifest["content_hash"] = digest
    return manifest_bytes(manifest)


# -- payload -----------------------------------------------------------------------------------

def payload_entry(file_name: str, data: bytes, arrays: Mapping[str, np.ndarray]) -> dict:
    """The manifest's ``payload`` block: file name, file sha256, per-array dtype/shape/sha256."""
    return {"file": file_name, "sha256": hashlib.sha256(data).hexdigest(),
            "arrays": {key: {"dtype": np.asarray(a).dtype.str, "shape": list(np.shape(a)),
                             "sha256": array_digest(a)} for key, a in sorted(arrays.items())}}


def _check_numeric(arrays: Mapping[str, np.ndarray]) -> None:
    for key, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.hasobject or a.dtype.kind not in "biuf":
            raise TypeError(f"payload array {key!r} has dtype {a.dtype}; only bool, integer and "
                            f"float arrays are allowed (no pickles, no object arrays)")


def encode_case(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None
                ) -> tuple[bytes, bytes | None]:
    """The manifest and payload bytes of one case (payload None for manifest-only cases)."""
    manifest = dict(manifest)
    payload = None
    if arrays is not None:
        _check_numeric(arrays)
        ordered = {k: np.ascontiguousarray(arrays[k]) for k in sorted(arrays)}
        payload = npz_bytes(ordered)
        manifest["payload"] = payload_entry(f"{manifest['case_id']}.npz", payload, ordered)
    else:
        manifest["payload"] = None
    return _finalise_manifest(manifest), payload


def write_case(directory: str | Path, manifest: Mapping[str, Any],
               arrays: Mapping[str, np.ndarray] | None) -> tuple[bytes, bytes | None]:
    """Write ``<case_id>.npz`` (if any) then ``<case_id>.json``, both atomically; returns bytes."""
    directory = Path(directory)
    data, payload = encode_case(manifest, arrays)
    if payload is not None:
        atomic_write_bytes(directory / f"{manifest['case_id']}.npz", payload)
    atomic_write_bytes(directory / f"{manifest['case_id']}.json", data)
    return data, payload


# -- reading -----------------------------------------------------------------------------------

def read_manifest(path: str | Path) -> tuple[dict, bytes]:
    """Parse one manifest and verify its content hash; returns (manifest, raw bytes)."""
    path = Path(path)
    # A directory, FIFO or device where the manifest belongs, an oversized or deeply nested
    # file: CorruptFileError, before anything unbounded is read or parsed.
    data = read_regular_bytes(path, MAX_MANIFEST_BYTES)
    manifest = parse_json_bytes(data, path, max_depth=MAX_MANIFEST_DEPTH)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("content_hash"), str):
        raise CorruptFileError(f"{path}: not a golden-case manifest (no content_hash string)")
    try:
        actual = content_hash_of(data, manifest["content_hash"])
    except CorruptFileError as exc:
        raise CorruptFileError(f"{path}: {exc}") from None
    if actual != manifest["content_hash"]:
        raise TamperedFileError(f"{path}: manifest content hash mismatch (recorded "
                                f"{manifest['content_hash'][:16]}..., actual {actual[:16]}...): "
                                f"the manifest was edited after it was generated")
    return manifest, data


def read_payload(directory: str | Path, manifest: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """Load and verify the payload named by ``manifest`` (None for manifest-only cases)."""
    entry = manifest.get("payload")
    if entry is None:
        return None
    bound = _payload_bound(directory, manifest)
    path = Path(directory) / entry["file"]
    if not path.exists():
        raise CorruptFileError(f"{path}: payload file missing (manifest {manifest['case_id']})")
    expected_keys = tuple(sorted(entry["arrays"]))
    raw = read_regular_bytes(path, bound)  # regular file of at most the declared size
    file_ok = hashlib.sha256(raw).hexdigest() == entry["sha256"]
    # CorruptFileError on zip/CRC/missing key, a compressed member or a header that lies
    arrays = npz_from_bytes(raw, path, required=expected_keys)
    extra = sorted(set(arrays) - set(expected_keys))
    if extra:
        raise TamperedFileError(f"{path}: arrays {extra} are not listed in the manifest")
    for key in expected_keys:
        a = arrays[key]
        if a.dtype.hasobject:
            raise CorruptFileError(f"{path}: array {key!r} has object dtype")
        spec = entry["arrays"][key]
        if a.dtype.str != spec["dtype"] or list(a.shape) != spec["shape"]:
            raise TamperedFileError(f"{path}: array {key!r} is {a.dtype.str}{list(a.shape)}, "
                                    f"manifest says {spec['dtype']}{spec['shape']}")
        if array_digest(a) != spec["sha256"]:
            raise TamperedFileError(f"{path}: array {key!r} does not match its sha256 in the "
                                    f"manifest (content changed)")
    if not file_ok:
        raise TamperedFileError(f"{path}: file sha256 differs from the manifest although every "
                                f"array matches its digest (the container was rewritten)")
    return arrays


def _payload_bound(directory, manifest: Mapping[str, Any]) -> int:
    """The payload entry's shape checked (the schema's rule, applied by every reader) and the
    most bytes its file may have: the declared arrays plus the container's overhead."""
    entry = manifest["payload"]
    where = f"{directory}/{manifest.get('case_id')}.json"
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) \
            or not isinstance(entry.get("arrays"), dict) or not isinstance(entry.get("sha256"), str):
        raise CorruptFileError(f"{where}: payload must name a file, its sha256 and its arrays")
    if not PAYLOAD_FILE_RE.match(entry["file"]) or entry["file"] in (".npz", "..npz"):
        raise CorruptFileError(f"{where}: payload file {entry['file']!r} is not a plain .npz name "
                               f"in the suite directory (pattern {PAYLOAD_FILE_RE.pattern})")
    total = 0
    for key, spec in entry["arrays"].items():
        try:
            itemsize = np.dtype(spec["dtype"]).itemsize
            shape = [int(n) for n in spec["shape"]]
            if any(n < 0 for n in shape) or any(type(n) is not int for n in spec["shape"]):
                raise ValueError("negative or non-integer extent")
        except (TypeError, ValueError, KeyError) as exc:
            raise CorruptFileError(f"{where}: payload array {key!r} has no valid dtype and shape: "
                                   f"{exc}") from None
        count = 1
        for n in shape:
            count *= n
        total += count * itemsize + _PAYLOAD_OVERHEAD_PER_ARRAY + 2 * len(key)
        if total > MAX_PAYLOAD_BYTES:
            raise CorruptFileError(f"{where}: payload declares more than {MAX_PAYLOAD_BYTES} "
                                   f"bytes of arrays")
    return total + _PAYLOAD_OVERHEAD_PER_ARRAY


def read_case(directory: str | Path, case_id: str) -> tuple[dict, dict | None]:
    """Read and verify one case: (manifest, arrays or None)."""
    manifest, _ = read_manifest(Path(directory) / f"{case_id}.json")
    if manifest.get("case_id") != case_id:
        raise TamperedFileError(f"{directory}/{case_id}.json: manifest says case_id "
                                f"{manifest.get('case_id')!r}")
    return manifest, read_payload(directory, manifest)


# -- schema ------------------------------------------------------------------------------------

def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_manifest(manifest: Mapping[str, Any]) -> list[str]:
    """Schema errors of one manifest as messages naming the field (empty list if valid).

    Needs ``jsonschema`` (a core dependency).
    """
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - jsonschema is a core dependency
        raise ImportError("schema validation needs jsonschema: pip install jsonschema") from exc
    validator = jsonschema.Draft7Validator(load_schema())
    errors = []
    try:
        found = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    except RecursionError:  # read_manifest bounds the depth; a manifest built in memory may not
        raise CorruptFileError("manifest nested too deeply to validate") from None
    for err in found:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        errors.append(f"{where}: {err.message}")
    return errors
