"""Atomic writes and strict, pickle-free reads of JSON and .npz files.

Writes go through a temporary file in the destination's directory, are fsynced and then
``os.replace``d, so a reader sees the old file or the new one, never a torn one. Reads never
unpickle (``allow_pickle=False``) and tell a *truncated or malformed* file apart from one that
loads but does not match its recorded hash (*tampered*).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np


class CorruptFileError(ValueError):
    """A file that cannot be read as what it claims to be (truncated, malformed, wrong keys)."""


class TamperedFileError(ValueError):
    """A file that reads fine but whose content does not match its recorded hash."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the result the mode a plain open() would (0666 & ~umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Uncompressed .npz bytes; byte-deterministic for a given NumPy version."""
    buf = io.BytesIO()
    for key, a in arrays.items():
        if np.asarray(a).dtype.hasobject:
            raise TypeError(f"array {key!r} has object dtype; only numeric arrays are written")
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    atomic_write_bytes(path, npz_bytes(arrays))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def array_digest(a: np.ndarray) -> str:
    """Container-independent sha256 of one array: dtype string, shape and C-order LE bytes."""
    a = np.asarray(a)
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    h = hashlib.sha256()
    h.update(le.dtype.str.encode())
    h.update(repr(tuple(a.shape)).encode())
    h.update(np.ascontiguousarray(le).tobytes())
    return h.hexdigest()


def load_npz(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Read every array of an .npz into memory, refusing pickles; CorruptFileError if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"{path}: not a readable .npz file (truncated or malformed): {exc}") from exc
    missing = [k for k in required if k not in out]
    if missing:
        raise CorruptFileError(f"{path}: missing arrays {missing}")
    return out


def load_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: not valid JSON (truncated or malformed): {exc}") from exc
