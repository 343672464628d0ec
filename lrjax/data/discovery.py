"""Where local source files are looked for, and which layout they are in.

Search order (the first match wins):

1. ``source_dir`` when given (the folder itself, then ``source_dir/<dirname>``); nothing
   else is searched then.
2. each entry of ``$LRJAX_SOURCE_DIR`` (``os.pathsep``-separated): ``<entry>/<dirname>``.
3. the tfds manual folder ``<data_dir>/downloads/manual/<dirname>``.
4. `SYSTEM_DIRS`: ``/usr/share/datasets/<dirname>`` (Debian's dataset packages).

``<dirname>`` runs over the dataset's folder names (``fashion-mnist``,
``fashion_mnist``, ...).  A `Source` is a located dataset: its layout, its path, and a
cheap fingerprint (names, sizes, modification times) that tells whether a prepared copy
is still of the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from lrjax.data import cifar, idx, table
from lrjax.data.catalog import DatasetSpec

ENV_SOURCE_DIR = "LRJAX_SOURCE_DIR"
SYSTEM_DIRS = (Path("/usr/share/datasets"),)


@dataclasses.dataclass(frozen=True)
class Source:
  """Local source files of a dataset.

  Attributes:
    dataset: the catalog name.
    layout: ``idx``, ``binary``, ``images`` or ``csv`` (the tfds builder config).
    path: the folder or file read (an IDX folder, a binary batches folder or
      ``.tar.gz``, an image folder or zip, a CSV file).
  """

  dataset: str
  layout: str
  path: Path

  def files(self) -> list[Path]:
    """The files read, for the fingerprint."""
    if self.path.is_file():
      return [self.path]
    if self.layout == "idx":
      found = [idx.find(self.path, stem) for pair in idx.FILES.values() for stem in pair]
      return [path for path in found if path is not None]  # a found source has them all
    if self.layout == "binary":
      return [self.path / n for n in cifar.TRAIN_BATCHES + (cifar.TEST_BATCH,)]
    return sorted(Path(root) / n for root, _, names in os.walk(self.path) for n in names)

  def fingerprint(self) -> str:
    """A digest of the files' relative names, sizes and modification times."""
    entries = []
    for f in self.files():
      stat = f.stat()
      name = f.name if self.path.is_file() else str(f.relative_to(self.path))
      entries.append((name, stat.st_size, stat.st_mtime_ns))
    return hashlib.sha256(json.dumps([self.layout, entries]).encode()).hexdigest()

  def read(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Parses and checks every file: ``{split: (x, y)}`` (Boston: a single ``train``)."""
    if self.layout == "idx":
      return idx.read_splits(self.path)
    if self.layout == "binary":
      if self.path.is_file():
        return cifar.read_binary_archive(self.path)
      return cifar.read_binary_dir(self.path)
    if self.layout == "images":
      if self.path.is_file():
        return cifar.read_image_zip(self.path)
      return cifar.read_image_dir(self.path)
    if self.layout == "csv":
      return {"train": table.read_boston(self.path)}
    raise ValueError(f"Unknown layout {self.layout!r}.")


def _is_tar(path: Path) -> bool:
  return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def _locate_layout(spec: DatasetSpec, layout: str, path: Path) -> tuple[Path | None, str]:
  """``(path of the source, "")`` or ``(None, what is missing)`` for one layout."""
  if path.is_file():
    ok = {"binary": _is_tar(path), "images": path.suffix == ".zip",
          "csv": path.suffix.lower() == ".csv"}.get(layout, False)
    return (path, "") if ok else (None, f"not a {layout} source file")
  if layout == "idx":
    missing = [stem for pair in idx.FILES.values() for stem in pair
               if idx.find(path, stem) is None]
    if not missing:
      return path, ""
    return None, "missing " + ", ".join(f"{m}.gz" for m in missing)
  if layout == "binary":
    batches = cifar.TRAIN_BATCHES + (cifar.TEST_BATCH,)
    for folder in (path / cifar.BINARY_DIR, path):
      if all((folder / n).is_file() for n in batches):
        return folder, ""
    archives = sorted(p for p in path.iterdir() if p.is_file() and _is_tar(p)
                      and "cifar-10" in p.name.lower().replace("_", "-"))
    if archives:
      return archives[0], ""
    return None, f"no {cifar.BINARY_DIR}/ batches or {cifar.BINARY_ARCHIVE}"
  if layout == "images":
    for folder in (path, path / "cifar10", path / "cifar-10"):
      if all((folder / split).is_dir() for split in cifar.SPLITS):
        return folder, ""
    zips = sorted(p for p in path.iterdir()
                  if p.is_file() and p.suffix == ".zip" and "cifar" in p.name.lower())
    if zips:
      return zips[0], ""
    return None, "no train/ and test/ image folders or *cifar*.zip"
  if layout == "csv":
    for name in table.FILE_NAMES:
      if (path / name).is_file():
        return path / name, ""
    return None, f"no {' / '.join(table.FILE_NAMES)}"
  raise ValueError(f"Unknown layout {layout!r}.")


def locate(spec: DatasetSpec, path: Path) -> tuple[Source | None, str]:
  """The `Source` of ``spec`` at ``path`` (a folder or a file), or why there is none."""
  path = Path(path).expanduser()
  if not path.exists():
    return None, "does not exist"
  reasons = []
  for layout in spec.layouts:
    found, reason = _locate_layout(spec, layout, path)
    if found is not None:
      return Source(spec.name, layout, found), ""
    reasons.append(reason)
  return None, "; ".join(dict.fromkeys(reasons))


def candidates(spec: DatasetSpec, source_dir=None, data_dir=None) -> list[tuple[Path, str]]:
  """``(path, where it comes from)`` in search order (see the module docstring)."""
  if source_dir is not None:
    root = Path(source_dir).expanduser()
    return [(root, "source_dir")] + [(root / d, "source_dir") for d in spec.dirnames]
  out = []
  for entry in filter(None, os.environ.get(ENV_SOURCE_DIR, "").split(os.pathsep)):
    out += [(Path(entry).expanduser() / d, f"${ENV_SOURCE_DIR}") for d in spec.dirnames]
  if data_dir is not None:
    manual = Path(data_dir) / "downloads" / "manual"
    out += [(manual / d, "tfds manual dir") for d in spec.dirnames]
  for system in SYSTEM_DIRS:
    out += [(Path(system) / d, "system") for d in spec.dirnames]
  return out


def find(spec: DatasetSpec, source_dir=None, data_dir=None) -> tuple[Source | None, list[str]]:
  """The first `Source` found, and one line per place looked in (for error messages)."""
  looked: list[str] = []
  seen = set()
  for path, origin in candidates(spec, source_dir, data_dir):
    if path in seen:
      continue
    seen.add(path)
    source, reason = locate(spec, path)
    if source is not None:
      return source, looked
    looked.append(f"{path} ({origin}): {reason}")
  return None, looked
