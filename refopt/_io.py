"""Atomic writes and strict, pickle-free reads of JSON and .npz files.

Writes go through a temporary file in the destination's directory, are fsynced and then
``os.replace``d (the directory is fsynced too), so a reader sees the old file or the new one,
never a torn one. A temporary file's name carries its writer's process id
(``.<name>.<pid>.<random>.tmp``) so that :func:`remove_stale_temporaries` can delete what a
killed writer left behind without touching a live writer's file.

Reads never unpickle (``allow_pickle=False``), are bounded and tell a *truncated or malformed*
file apart from one that loads but does not match its recorded hash (*tampered*):

* only regular files are opened (a directory, FIFO, socket or device, also behind a symlink, is
  :class:`CorruptFileError` before anything is read; the descriptor is opened non-blocking and
  checked again, so a FIFO swapped in meanwhile cannot hang the reader);
* a file larger than the caller's ``max_bytes`` is refused before it is read;
* an ``.npz`` member must be *stored* (not deflated) and its ``.npy`` header must declare a
  numeric dtype and a shape whose byte size is exactly the member's data: a compressed member or
  an absurd shape is refused before any array memory is allocated;
* JSON nested deeper than ``max_depth`` (or deep enough to exhaust the parser) is corrupt.

See ``docs/reliability.md`` for the guarantees these give.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np


class CorruptFileError(ValueError):
    """A file that cannot be read as what it claims to be (truncated, malformed, wrong keys)."""


class TamperedFileError(ValueError):
    """A file that reads fine but whose content does not match its recorded hash."""


#: Default bounds of the readers (callers pass tighter ones where they know the size).
MAX_NPZ_BYTES = 4 << 30
MAX_JSON_BYTES = 64 << 20
MAX_JSON_DEPTH = 64
MAX_NPZ_MEMBERS = 100_000


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
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
        _fsync_dir(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


_TMP_PID = re.compile(r"\.(\d+)\.[A-Za-z0-9_]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike, *, min_age_s: float = 60.0) -> list[Path]:
    """Delete the temporary files a killed writer of ``path`` left (``.<name>.*.tmp``).

    A temporary whose name carries a process id is removed when that process no longer exists;
    one without (written before ids were recorded) only when older than ``min_age_s``. Returns
    the paths removed.
    """
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        rest = name[len(prefix) - 1:]
        m = _TMP_PID.fullmatch(rest)
        try:
            if m is not None and rest.count(".") == 3:
                stale = not _pid_alive(int(m.group(1)))
            elif rest.count(".") == 2:  # .<name>.<random>.tmp: no writer id recorded
                stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > min_age_s
            else:
                continue
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def json_text(obj: Any) -> str:
    """The JSON refopt writes (files and ``--json -`` alike): strict (no NaN/inf), sorted."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json_text(obj).encode("utf-8"))


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


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return word
    return "not a regular file"


def read_regular_bytes(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; :class:`CorruptFileError` otherwise.

    Directories, FIFOs, sockets and devices (also behind a symlink) are refused before they are
    opened; the file is opened non-blocking and checked again through its descriptor.
    ``FileNotFoundError`` stays what it is (a missing file is not a corrupt one).
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot be read: {exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise CorruptFileError(f"{path}: is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > max_bytes:
        raise CorruptFileError(f"{path}: {st.st_size} bytes, more than the {max_bytes} allowed")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot be read: {exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CorruptFileError(f"{path}: is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            raise CorruptFileError(f"{path}: {st.st_size} bytes, more than the {max_bytes} "
                                   f"allowed")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 22, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # grew while being read
                raise CorruptFileError(f"{path}: more than the {max_bytes} bytes allowed")
        return b"".join(chunks)
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot be read: {exc}") from exc
    finally:
        os.close(fd)


def _npy_member(path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One stored ``.npy`` member, its header checked against its size before any allocation."""
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        raise CorruptFileError(f"{path}: member {name!r} is compressed; refopt writes and reads "
                               f"only stored (uncompressed) .npz members")
    if info.file_size != info.compress_size:
        raise CorruptFileError(f"{path}: member {name!r} declares {info.file_size} bytes but "
                               f"stores {info.compress_size}")
    with zf.open(info) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, EOFError, SyntaxError, TypeError) as exc:
            raise CorruptFileError(f"{path}: member {name!r} has no valid .npy header: "
                                   f"{exc}") from exc
        if dtype.hasobject or dtype.kind not in "biufc":
            raise CorruptFileError(f"{path}: member {name!r} has dtype {dtype}; only numeric "
                                   f"arrays are read (no pickles, no object arrays)")
        header_end = fh.tell()
        count = 1
        for n in shape:
            count *= int(n)
        declared = count * dtype.itemsize
        if declared != info.file_size - header_end:
            raise CorruptFileError(f"{path}: member {name!r} declares shape {tuple(shape)} of "
                                   f"{dtype} ({declared} bytes) but holds "
                                   f"{info.file_size - header_end} bytes of data")
        data = fh.read(declared)  # CRC checked at the end of the member
        fh.read()
    a = np.frombuffer(data, dtype=dtype, count=count)
    a = a.reshape(shape, order="F" if fortran else "C")
    return np.array(a, copy=True, order="K")  # writable, owns its memory


def load_npz(path: str | os.PathLike, required: tuple[str, ...] = (), *,
             max_bytes: int = MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """Read every array of an .npz into memory, refusing pickles; CorruptFileError if unreadable.

    Bounded (see the module docstring): a non-regular file, a file over ``max_bytes``, a
    compressed member or a header whose shape does not fit the member is refused before the
    arrays are read.
    """
    raw = read_regular_bytes(path, max_bytes)
    return npz_from_bytes(raw, path, required)


def npz_from_bytes(raw: bytes, path: str | os.PathLike = "<bytes>",
                   required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """:func:`load_npz` of bytes already read (``path`` only names them in messages)."""
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_NPZ_MEMBERS:
                raise CorruptFileError(f"{path}: {len(infos)} members, more than the "
                                       f"{MAX_NPZ_MEMBERS} allowed")
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise CorruptFileError(f"{path}: member {info.filename!r} is not an .npy "
                                           f"array (not a readable .npz file)")
                key = info.filename[:-4]
                if key in out:
                    raise CorruptFileError(f"{path}: member {info.filename!r} appears twice")
                out[key] = _npy_member(path, zf, info)
    except CorruptFileError as exc:
        raise CorruptFileError(f"{exc} (truncated or malformed)") from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, RuntimeError) as exc:
        raise CorruptFileError(f"{path}: not a readable .npz file (truncated or malformed): "
                               f"{exc}") from exc
    missing = [k for k in required if k not in out]
    if missing:
        raise CorruptFileError(f"{path}: missing arrays {missing}")
    return out


def json_depth(obj: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (iterative; stops counting past ``limit``)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = value.values() if isinstance(value, dict) else value
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def parse_json_bytes(data: bytes, path: str | os.PathLike = "<bytes>", *,
                     max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON of ``data``: CorruptFileError for bad UTF-8/JSON or nesting over max_depth."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: not valid JSON (truncated or malformed): {exc}") from exc
    except RecursionError:
        raise CorruptFileError(f"{path}: JSON nested too deeply (more than {max_depth} "
                               f"levels)") from None
    if json_depth(obj, max_depth) > max_depth:
        raise CorruptFileError(f"{path}: JSON nested too deeply (more than {max_depth} levels)")
    return obj


def load_json(path: str | os.PathLike, *, max_bytes: int = MAX_JSON_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON file (regular, at most ``max_bytes``, nested at most ``max_depth``)."""
    return parse_json_bytes(read_regular_bytes(path, max_bytes), path, max_depth=max_depth)
