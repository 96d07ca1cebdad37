"""On-disk array cache: one self-describing file per (kind, parameters), written atomically
and validated on read, so a half-written, truncated or stale cache is never used.

File layout: a fixed 4096-byte header (magic line, then JSON: format version, kind,
parameters, dtype, shape, byte count, CRC-32 of the data), then the raw C-order array bytes.
The file name carries the kind, the format version and a digest of the parameters, so a
change of parameters never even opens the old file; the header repeats them so that a
renamed or colliding file is still rejected.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .errors import CacheInvalid
from .paths import PathLike, cache_dir

FORMAT_VERSION = 1
MAGIC = b"CASCADEVAE-CACHE\n"
HEADER_BYTES = 4096
_CHUNK_BYTES = 1 << 24


def _canonical(params: Mapping[str, Any]) -> Any:
    # A JSON round trip normalises tuples to lists and keys to strings, so that parameters
    # compare equal to what a header read back from disk holds.
    return json.loads(json.dumps(params, sort_keys=True))


def cache_file(kind: str, params: Mapping[str, Any], directory: Optional[PathLike] = None) -> Path:
    """The cache path for ``kind`` built with ``params``: ``<cache dir>/<kind>-v<version>-
    <16 hex digits of sha256(params)>.bin``."""
    blob = json.dumps({"kind": kind, "version": FORMAT_VERSION, "params": _canonical(params)},
                      sort_keys=True).encode()
    digest = hashlib.sha256(blob).hexdigest()[:16]
    return cache_dir(directory) / f"{kind}-v{FORMAT_VERSION}-{digest}.bin"


class AtomicArrayWriter:
    """Stream an array of known shape and dtype into a cache file, atomically.

    The bytes go to a temporary file in the target's directory; only when exactly the
    announced number of bytes has been written is the header (with the CRC) filled in, the
    file fsync'ed and renamed over the target with ``os.replace``. On any error the
    temporary file is removed and the target is left as it was.

        with AtomicArrayWriter(path, "kind", params, shape, np.uint8) as w:
            for chunk in chunks:
                w.write(chunk)
    """

    def __init__(self, path: PathLike, kind: str, params: Mapping[str, Any],
                 shape: Sequence[int], dtype: Any):
        self.path = Path(path)
        self.kind = kind
        self.params = _canonical(params)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self._written = 0
        self._crc = 0
        self._file = None
        self._tmp: Optional[str] = None

    def __enter__(self) -> "AtomicArrayWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".",
                                         suffix=".tmp")
        self._file = os.fdopen(fd, "wb")
        self._file.write(b"\0" * HEADER_BYTES)  # placeholder until the CRC is known
        return self

    def write(self, chunk: np.ndarray) -> None:
        chunk = np.ascontiguousarray(chunk)
        if chunk.dtype != self.dtype:
            raise TypeError(f"cache {self.kind}: chunk dtype {chunk.dtype} != {self.dtype}")
        data = memoryview(chunk).cast("B")
        if self._written + len(data) > self.nbytes:
            raise ValueError(f"cache {self.kind}: more than the announced {self.nbytes} bytes")
        self._file.write(data)
        self._crc = zlib.crc32(data, self._crc)
        self._written += len(data)

    def _header(self) -> bytes:
        meta = {"format": "cascadevae-cache", "version": FORMAT_VERSION, "kind": self.kind,
                "params": self.params, "dtype": self.dtype.str, "shape": list(self.shape),
                "nbytes": self.nbytes, "crc32": self._crc}
        text = MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n"
        if len(text) > HEADER_BYTES:
            raise ValueError(f"cache {self.kind}: parameters too large for the "
                             f"{HEADER_BYTES}-byte header")
        return text.ljust(HEADER_BYTES, b" ")

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                if self._written != self.nbytes:
                    raise ValueError(f"cache {self.kind}: wrote {self._written} of "
                                     f"{self.nbytes} bytes")
                self._file.seek(0)
                self._file.write(self._header())
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                os.chmod(self._tmp, 0o644)  # mkstemp makes it private; a cache is shareable
                os.replace(self._tmp, self.path)
                self._tmp = None
                _fsync_dir(self.path.parent)
        finally:
            if self._file is not None and not self._file.closed:
                self._file.close()
            if self._tmp is not None:
                try:
                    os.unlink(self._tmp)
                except FileNotFoundError:
                    pass
        return False


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_array(path: PathLike, kind: str, params: Mapping[str, Any], array: np.ndarray) -> Path:
    """Write ``array`` as a cache file, atomically (see :class:`AtomicArrayWriter`)."""
    array = np.ascontiguousarray(array)
    with AtomicArrayWriter(path, kind, params, array.shape, array.dtype) as writer:
        flat = array.reshape(-1)
        step = max(1, _CHUNK_BYTES // max(1, array.dtype.itemsize))
        for start in range(0, flat.size, step):
            writer.write(flat[start:start + step])
    return Path(path)


def read_header(path: PathLike) -> dict:
    """The parsed header of a cache file; :class:`CacheInvalid` if it is not one."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except FileNotFoundError:
        raise CacheInvalid(f"cache file {str(path)!r} does not exist") from None
    if len(head) < HEADER_BYTES or not head.startswith(MAGIC):
        raise CacheInvalid(f"cache file {str(path)!r} has no valid header (truncated or not a "
                           "cascadevae cache)")
    try:
        meta = json.loads(head[len(MAGIC):].decode().strip())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheInvalid(f"cache file {str(path)!r} has an unreadable header ({exc})") from None
    if not isinstance(meta, dict):
        raise CacheInvalid(f"cache file {str(path)!r} has an unreadable header")
    return meta


def read_array(path: PathLike, kind: str, params: Mapping[str, Any], *,
               check_crc: bool = True) -> np.ndarray:
    """Read a cache file written for exactly ``(kind, params)`` into memory.

    Raises :class:`CacheInvalid` (saying why) if the file is missing, has another format
    version, kind or parameters, is shorter or longer than its header says, or fails its
    CRC-32: callers then rebuild it.
    """
    path = Path(path)
    meta = read_header(path)
    if meta.get("format") != "cascadevae-cache" or meta.get("version") != FORMAT_VERSION:
        raise CacheInvalid(f"cache file {str(path)!r} has format version {meta.get('version')!r}, "
                           f"this code reads version {FORMAT_VERSION}")
    if meta.get("kind") != kind:
        raise CacheInvalid(f"cache file {str(path)!r} holds {meta.get('kind')!r}, not {kind!r}")
    if meta.get("params") != _canonical(params):
        raise CacheInvalid(f"cache file {str(path)!r} was built with other parameters (stale)")
    try:
        dtype = np.dtype(meta["dtype"])
        shape = tuple(int(s) for s in meta["shape"])
        nbytes = int(meta["nbytes"])
        crc = int(meta["crc32"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CacheInvalid(f"cache file {str(path)!r}: incomplete header ({exc})") from None
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != nbytes:
        raise CacheInvalid(f"cache file {str(path)!r}: header shape {shape} and byte count "
                           f"{nbytes} disagree")
    size = path.stat().st_size
    if size != HEADER_BYTES + nbytes:
        raise CacheInvalid(f"cache file {str(path)!r} is {size} bytes, expected "
                           f"{HEADER_BYTES + nbytes} (truncated or overwritten)")
    out = np.empty(shape, dtype=dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    with open(path, "rb") as f:
        f.seek(HEADER_BYTES)
        got = f.readinto(view)
    if got != nbytes:
        raise CacheInvalid(f"cache file {str(path)!r}: read {got} of {nbytes} bytes")
    if check_crc:
        actual = 0
        for start in range(0, nbytes, _CHUNK_BYTES):
            actual = zlib.crc32(view[start:start + _CHUNK_BYTES], actual)
        if actual != crc:
            raise CacheInvalid(f"cache file {str(path)!r} fails its CRC-32 check (corrupt)")
    return out
