"""CIFAR-10 sources: the official binary release, or an image folder (directory or zip).

Binary release (``cifar-10-binary.tar.gz`` or its ``cifar-10-batches-bin/`` folder):
``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``, records of 3073
bytes: one label byte, then the 1024 red, 1024 green and 1024 blue bytes of a 32x32
image in row-major order.

Image folder: ``[prefix/]train/<class>/*.jpg`` and ``[prefix/]test/<class>/*.jpg``
(or ``.png``), in a directory or a zip; the class index is the position of ``<class>``
in `CLASS_NAMES`.  Images are decoded with Pillow.

Every damage found raises `CorruptDatasetError` naming the file (and zip member).
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lrjax.data.errors import CorruptDatasetError

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)
RECORD_BYTES = 1 + 32 * 32 * 3  # 3073
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
BINARY_DIR = "cifar-10-batches-bin"
BINARY_ARCHIVE = "cifar-10-binary.tar.gz"
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

# ---------------------------------------------------------------------------------------
# Binary release.


def parse_batch(data: bytes, path) -> tuple[np.ndarray, np.ndarray]:
  """Images ``(N, 32, 32, 3)`` uint8 and labels ``(N,)`` int64 of one binary batch."""
  if len(data) == 0 or len(data) % RECORD_BYTES:
    raise CorruptDatasetError(
        path, f"{len(data)} bytes is not a whole number of {RECORD_BYTES}-byte records "
        "(truncated, or not a CIFAR-10 binary batch).")
  records = np.frombuffer(data, np.uint8).reshape(-1, RECORD_BYTES)
  labels = records[:, 0].astype(np.int64)
  if labels.max() >= len(CLASS_NAMES):
    raise CorruptDatasetError(
        path, f"label {int(labels.max())} out of range [0, {len(CLASS_NAMES)}).")
  images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), labels


def _concat(parts):
  xs, ys = zip(*parts, strict=True)
  return np.concatenate(xs), np.concatenate(ys)


def read_binary_dir(directory: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{"train": (x, y), "test": (x, y)}`` from the six ``.bin`` batches in ``directory``."""
  directory = Path(directory)
  train = _concat([parse_batch((directory / n).read_bytes(), directory / n)
                   for n in TRAIN_BATCHES])
  test = parse_batch((directory / TEST_BATCH).read_bytes(), directory / TEST_BATCH)
  return {"train": train, "test": test}


def read_binary_archive(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The same from the ``.tar.gz`` release, read in memory (nothing is extracted)."""
  path = Path(path)
  wanted = set(TRAIN_BATCHES) | {TEST_BATCH}
  found = {}
  try:
    with tarfile.open(path, "r:*") as tar:
      for member in tar:
        name = os.path.basename(member.name)
        if member.isfile() and name in wanted:
          file = tar.extractfile(member)
          assert file is not None  # a regular file's member
          found[name] = file.read()
  except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
    raise CorruptDatasetError(path, f"unreadable tar archive ({err}).") from err
  missing = sorted(wanted - set(found))
  if missing:
    raise CorruptDatasetError(path, f"archive lacks {', '.join(missing)}.")
  train = _concat([parse_batch(found[n], f"{path}::{n}") for n in TRAIN_BATCHES])
  test = parse_batch(found[TEST_BATCH], f"{path}::{TEST_BATCH}")
  return {"train": train, "test": test}


# ---------------------------------------------------------------------------------------
# Image folder.


def _member_split_class(parts) -> tuple[str, str] | None:
  """``(split, class)`` of an image path ``.../<split>/<class>/<file>``, else None."""
  if len(parts) < 3 or "__MACOSX" in parts or parts[-1].startswith("."):
    return None
  if not parts[-1].lower().endswith(IMAGE_SUFFIXES) or parts[-3] not in SPLITS:
    return None
  return parts[-3], parts[-2]


def _decode(data: bytes, where: str) -> np.ndarray:
  try:
    from PIL import Image  # pylint: disable=g-import-not-at-top
  except ImportError as err:  # pragma: no cover
    raise ImportError("Reading a CIFAR-10 image folder needs Pillow: pip install pillow") from err
  try:
    with Image.open(io.BytesIO(data)) as image:
      array = np.asarray(image.convert("RGB"))
  except (OSError, ValueError, SyntaxError) as err:  # UnidentifiedImageError is an OSError
    raise CorruptDatasetError(where, f"cannot decode the image ({err}).") from err
  if array.shape != IMAGE_SHAPE:
    raise CorruptDatasetError(where, f"image is {array.shape}, expected {IMAGE_SHAPE}.")
  return array


def _assemble(entries, read, where, describe) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Decodes ``entries`` [(split, class, key)] in (class, key) order per split.

  ``read(key)`` gives the encoded bytes, ``describe(key)`` the name used in errors.
  """
  out = {}
  for split in SPLITS:
    chosen = sorted((CLASS_NAMES.index(c), k) for s, c, k in entries if s == split)
    if not chosen:
      raise CorruptDatasetError(where, f"no {split}/<class>/ images.")
    images = np.empty((len(chosen),) + IMAGE_SHAPE, np.uint8)
    for i, (_, key) in enumerate(chosen):
      images[i] = _decode(read(key), describe(key))
    out[split] = images, np.asarray([label for label, _ in chosen], np.int64)
  return out


def _check_classes(entries, where):
  unknown = sorted({c for _, c, _ in entries if c not in CLASS_NAMES})
  if unknown:
    raise CorruptDatasetError(
        where, f"unknown class folder(s) {unknown}; expected CIFAR-10 names {CLASS_NAMES}.")


def read_image_zip(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{"train": (x, y), "test": (x, y)}`` from a zip of ``train/<class>/*.jpg``, ``test/...``.

  Each member is read whole, so zipfile checks its CRC-32; a damaged member or archive
  raises `CorruptDatasetError` naming the zip and the member.
  """
  path = Path(path)
  try:
    archive = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError, EOFError) as err:
    raise CorruptDatasetError(path, f"unreadable zip archive ({err}).") from err
  with archive:
    entries = []
    for info in archive.infolist():
      if info.is_dir():
        continue
      found = _member_split_class(info.filename.split("/"))
      if found is not None:
        entries.append(found + (info.filename,))
    _check_classes(entries, path)

    def read(name):
      try:
        return archive.read(name)
      except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise CorruptDatasetError(f"{path}::{name}", f"damaged zip member ({err}).") from err

    return _assemble(entries, read, str(path), lambda key: f"{path}::{key}")


def read_image_dir(directory: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The same from a directory holding ``[prefix/]train/<class>/*.jpg`` and ``test/...``."""
  directory = Path(directory)
  entries = []
  for root, _, names in os.walk(directory):
    for name in names:
      full = Path(root) / name
      found = _member_split_class(full.relative_to(directory).parts)
      if found is not None:
        entries.append(found + (str(full),))
  _check_classes(entries, directory)
  return _assemble(entries, lambda key: Path(key).read_bytes(), str(directory), str)
