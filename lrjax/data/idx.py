"""IDX files (MNIST, Fashion-MNIST): read, checked, and never trusted blindly.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, ``ndim`` big-endian
uint32 dimensions, then the ``prod(dims)`` values.  The releases ship them gzipped
(``train-images-idx3-ubyte.gz``); uncompressed files of the same name are accepted too.
Every check failing raises `CorruptDatasetError` naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from lrjax.data.errors import CorruptDatasetError

UBYTE = 0x08
# split -> (images stem, labels stem), the names of the MNIST and Fashion-MNIST releases.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find(directory: Path, stem: str) -> Path | None:
  """``directory/stem.gz`` or ``directory/stem``, whichever exists (gzip first)."""
  for candidate in (directory / f"{stem}.gz", directory / stem):
    if candidate.is_file():
      return candidate
  return None


def read_bytes(path: Path) -> bytes:
  """The file's bytes, gunzipped when it ends in ``.gz`` (CRC and length are checked)."""
  path = Path(path)
  if path.suffix != ".gz":
    return path.read_bytes()
  try:
    with gzip.open(path, "rb") as f:
      return f.read()
  except (gzip.BadGzipFile, EOFError, zlib.error) as err:
    # BadGzipFile: not gzip or CRC/length mismatch; EOFError: truncated stream.
    raise CorruptDatasetError(path, f"bad gzip stream ({err}).") from err


def parse(data: bytes, path, ndim: int) -> np.ndarray:
  """The uint8 array of an IDX file's bytes ``data`` (``path`` only names it in errors)."""
  if len(data) < 4:
    raise CorruptDatasetError(path, f"{len(data)} bytes, too short for an IDX header.")
  if data[0] != 0 or data[1] != 0 or data[2] != UBYTE or data[3] != ndim:
    magic = int.from_bytes(data[:4], "big")
    expected = (UBYTE << 8) | ndim
    raise CorruptDatasetError(
        path, f"bad IDX magic number 0x{magic:08x}, expected 0x{expected:08x} "
        f"(unsigned bytes, {ndim} dimension(s)).")
  header = 4 + 4 * ndim
  if len(data) < header:
    raise CorruptDatasetError(path, "truncated IDX header.")
  dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
  expected = int(np.prod(dims, dtype=np.int64))
  actual = len(data) - header
  if actual != expected:
    what = "truncated" if actual < expected else "trailing bytes"
    raise CorruptDatasetError(
        path, f"{what}: the header says dims {dims} ({expected} bytes of data), "
        f"the file has {actual}.")
  return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def read(path: Path, ndim: int) -> np.ndarray:
  """Reads and checks one IDX file of unsigned bytes with ``ndim`` dimensions."""
  return parse(read_bytes(path), path, ndim)


def read_split(images_path: Path, labels_path: Path, *, image_shape=(28, 28),
               num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
  """Images ``(N, H, W, 1)`` uint8 and labels ``(N,)`` int64 of one split, cross-checked."""
  images = read(images_path, 3)
  labels = read(labels_path, 1)
  if images.shape[1:] != tuple(image_shape):
    raise CorruptDatasetError(
        images_path, f"images are {images.shape[1:]}, expected {tuple(image_shape)}.")
  if images.shape[0] != labels.shape[0]:
    raise CorruptDatasetError(
        labels_path, f"{labels.shape[0]} labels for {images.shape[0]} images in "
        f"{Path(images_path).name}.")
  if images.shape[0] == 0:
    raise CorruptDatasetError(images_path, "no images.")
  if labels.max() >= num_classes:
    raise CorruptDatasetError(
        labels_path, f"label {int(labels.max())} out of range [0, {num_classes}).")
  return images[..., None], labels.astype(np.int64)


def read_splits(directory: Path, **kwargs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{"train": (x, y), "test": (x, y)}`` from the four IDX files in ``directory``."""
  out = {}
  for split, (images_stem, labels_stem) in FILES.items():
    images_path, labels_path = find(directory, images_stem), find(directory, labels_stem)
    if images_path is None or labels_path is None:
      missing = images_stem if images_path is None else labels_stem
      raise FileNotFoundError(f"{directory / missing}[.gz] does not exist.")
    out[split] = read_split(images_path, labels_path, **kwargs)
  return out
