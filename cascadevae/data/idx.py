"""Reader for the IDX files MNIST and FashionMNIST ship in (raw or gzipped), validating the
magic number, dimensions and byte count so a corrupt file fails here, with its name."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import DatasetError
from .paths import PathLike

# IDX type codes (third magic byte) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        if head == _GZIP_MAGIC:  # sniffed, so a .gz without its suffix (or vice versa) works
            with gzip.open(path, "rb") as g:
                return g.read()
        if path.suffix == ".gz":
            raise DatasetError(f"IDX file {str(path)!r} ends in .gz but is not gzip data "
                               "(bad gzip header); re-download it")
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetError(f"IDX file {str(path)!r} is not a valid gzip stream ({exc}); it is "
                           "probably truncated: re-download it") from None
    except FileNotFoundError:
        raise DatasetError(f"IDX file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {str(path)!r}: {exc}") from None


def read_idx(path: PathLike, *, expect_ndim: Optional[int] = None,
             expect_dtype: Optional[str] = "u1") -> np.ndarray:
    """The array stored in an IDX file (native byte order).

    The header is two zero bytes, a type code, the number of dimensions, then one big-endian
    uint32 per dimension; the data must fill exactly the rest of the file. ``expect_ndim``
    and ``expect_dtype`` (numpy kind+size, e.g. ``"u1"``) are checked when given: MNIST
    images are ``idx3`` uint8 (magic 0x00000803), labels ``idx1`` uint8 (0x00000801).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        got = raw[:4].hex() if len(raw) >= 4 else f"only {len(raw)} bytes"
        raise DatasetError(f"IDX file {str(path)!r} has a wrong magic number ({got}); an IDX "
                           "file starts with 00 00, a type code (08 for uint8) and the number "
                           "of dimensions. Is it the right file, and fully downloaded?")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    if expect_ndim is not None and ndim != expect_ndim:
        raise DatasetError(f"IDX file {str(path)!r} has {ndim} dimensions (magic "
                           f"{raw[:4].hex()}), expected {expect_ndim} (magic "
                           f"0000080{expect_ndim}): images and labels swapped?")
    if expect_dtype is not None and dtype.newbyteorder("=") != np.dtype(expect_dtype):
        raise DatasetError(f"IDX file {str(path)!r} holds {dtype.name}, expected "
                           f"{np.dtype(expect_dtype).name}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"IDX file {str(path)!r} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(f"IDX file {str(path)!r} holds {len(raw) - header} data bytes, its "
                           f"header {shape} announces {expected}: the file is "
                           f"{'truncated' if len(raw) - header < expected else 'corrupt'}; "
                           "re-download it")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def idx_candidates(directory: Path, stem: str) -> Sequence[Path]:
    """File names an IDX file goes by: ``train-images-idx3-ubyte`` as distributed (and as
    torchvision stores it), with ``.gz``, and the variant with a dot before ``idx``."""
    dotted = stem.replace("-idx", ".idx")
    names = [stem, stem + ".gz", dotted, dotted + ".gz"]
    return [directory / name for name in dict.fromkeys(names)]


def find_idx_file(directory: Path, stem: str) -> Optional[Path]:
    for path in idx_candidates(directory, stem):
        if path.is_file():
            return path
    return None
