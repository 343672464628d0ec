"""`load`: a dataset by name, from local files (prepared once) or the official tfds.

Resolution, for ``load(name, source_dir=..., data_dir=...)``:

1. Local source files (see `lrjax.data.discovery` for where they are looked for) are
   prepared once into ``data_dir`` by the project's tfds builders, then read back from
   there; a later call with the same files only reads the prepared copy.
2. Without local files, a copy prepared earlier in ``data_dir`` is used (a damaged one is
   refused in one line saying how to rebuild it; with the source files it is prepared
   again).
3. Otherwise the official tfds builder downloads the dataset (``download=True``).
4. Otherwise one `DatasetNotFoundError` lists every place looked in and the files
   expected.

``data_dir`` defaults to ``$LRJAX_DATA_DIR``, else ``~/.cache/lrjax/tensorflow_datasets``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lrjax.data import builders, catalog, discovery, official
from lrjax.data.dataset import Dataset, finish
from lrjax.data.errors import CorruptPreparedCopyError, DatasetNotFoundError

ENV_DATA_DIR = "LRJAX_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/lrjax/tensorflow_datasets"


def resolve_data_dir(data_dir=None) -> Path:
  """``data_dir``, else ``$LRJAX_DATA_DIR``, else ``~/.cache/lrjax/tensorflow_datasets``."""
  chosen = data_dir or os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR
  return Path(chosen).expanduser().resolve()


def _online_hint(err: BaseException) -> str:
  text = f"{type(err).__name__}: {err}"
  if isinstance(err, ModuleNotFoundError) and "importlib_resources" in str(err):
    text += " (this tfds needs `pip install importlib_resources` for its official builders)"
  return text


def found_instead(name: str, source_dir) -> tuple[str, ...]:
  """The datasets other than ``name`` whose source files are in ``source_dir`` (a
  folder given for the wrong dataset)."""
  others = []
  for other in catalog.SPECS.values():
    if other.name != catalog.get(name).name:
      source, _ = discovery.find(other, source_dir, None)
      if source is not None:
        others.append(other.name)
  return tuple(others)


def _not_found(spec, source_dir, data_dir, looked, online: str) -> DatasetNotFoundError:
  summary, missing = "", ""
  others: tuple[str, ...] = ()
  if source_dir is not None:
    missing = looked[0].split("): ", 1)[-1] if looked else ""  # "{path} ({origin}): {why}"
    others = found_instead(spec.name, source_dir)
    summary = f"{source_dir} holds no {spec.name} files ({missing})"
    if others:
      summary += f"; it holds the files of {' or '.join(others)}"
  else:
    summary = (f"no {spec.name} data: no local source files, no prepared copy in "
               f"{data_dir}, online: {online}; get {spec.expected}")
  lines = [f"No data for {spec.name!r}."]
  lines.append("Looked for the source files in:")
  lines += [f"  - {entry}" for entry in looked]
  if source_dir is None and not os.environ.get(discovery.ENV_SOURCE_DIR):
    lines.append(f"  - ${discovery.ENV_SOURCE_DIR}: not set")
  if source_dir is None:
    prepared = ", ".join(f"lrjax_{spec.name}/{layout}" for layout in spec.layouts)
    lines.append(f"No prepared copy in {data_dir} ({prepared}).")
  lines.append(f"Online: {online}")
  lines.append(f"To provide it, get {spec.expected}; then pass "
               f"load({spec.name!r}, source_dir=DIR) with DIR the folder holding them, or "
               f"put them in $LRJAX_SOURCE_DIR/{spec.dirnames[0]}/.")
  return DatasetNotFoundError("\n".join(lines), dataset=spec.name, source_dir=source_dir,
                              missing=missing, found_instead=others, summary=summary)


def raw_splits(name: str, *, source_dir=None, data_dir=None, download: bool = True):
  """The dataset's raw ``{split: (x, y)}`` (uint8 images / float tables) by the rules above."""
  spec = catalog.get(name)
  data_dir = resolve_data_dir(data_dir)
  source, looked = discovery.find(spec, source_dir, data_dir)
  if source is not None:
    prepared = builders.prepare(source, data_dir)
    try:
      return builders.read(prepared)
    except CorruptPreparedCopyError as err:  # damage no digest saw: prepared again
      return builders.read(builders.prepare(source, data_dir, damaged=err.problem))
  if source_dir is not None:  # An explicit folder without the files is an error.
    raise _not_found(spec, source_dir, data_dir, looked,
                     "not tried: an explicit source_dir was given")
  prepared = builders.prepared(spec.name, spec.layouts, data_dir)
  if prepared is not None:
    return builders.read(prepared)
  if spec.official is None:
    raise _not_found(spec, source_dir, data_dir, looked,
                     f"tfds has no official builder for {spec.name!r}")
  if not download:
    raise _not_found(spec, source_dir, data_dir, looked, "disabled (download=False)")
  try:
    return official.read(spec.official, data_dir)
  except Exception as err:  # pylint: disable=broad-except  (reported, with the cause)
    raise _not_found(spec, source_dir, data_dir, looked,
                     f"the official tfds builder {spec.official!r} failed: "
                     f"{_online_hint(err)}") from err


def load(name: str, *, source_dir=None, data_dir=None, validation_fraction: float = 0.1,
         seed: int = 0, dtype=np.float32, normalize: bool = True,
         test_fraction: float = 0.2, download: bool = True) -> Dataset:
  """Loads ``name`` as a `Dataset` of numpy arrays.

  Args:
    name: ``mnist``, ``fashion_mnist``, ``cifar10`` or ``boston_housing``.
    source_dir: folder (or file: a zip, tar.gz or CSV) of the local source files; when
      given, nothing else is searched.
    data_dir: where the prepared tfds files live (see `resolve_data_dir`).
    validation_fraction: fraction of the training set held out for validation.
    seed: seeds the validation (and, for Boston, the test) split.
    dtype: floating dtype of the inputs (and of regression targets).
    normalize: standardise inputs with the training split's statistics (per channel
      for images, after scaling to [0, 1]; per feature for Boston).
    test_fraction: for datasets without a test split (Boston), the fraction of the
      rows drawn as the test set (before the validation split).
    download: allow the official tfds builders to download when nothing is local.

  Returns:
    The `Dataset`; labels are int32 (Boston: float ``medv`` targets, ``num_classes``
    None).

  Raises:
    DatasetNotFoundError: nothing local, nothing prepared, no download.
    CorruptDatasetError: a source file is damaged (nothing is prepared from it).
    CorruptPreparedCopyError: the prepared copy is damaged and no source files were found
      to prepare it again.
  """
  spec = catalog.get(name)
  splits = raw_splits(spec.name, source_dir=source_dir, data_dir=data_dir, download=download)
  return finish(spec.name, splits, num_classes=spec.num_classes,
                class_names=spec.class_names, validation_fraction=validation_fraction,
                test_fraction=test_fraction, seed=seed, normalize=normalize, dtype=dtype)


def prepare(name: str, *, source_dir=None, data_dir=None) -> Path:
  """Prepares the local source files of ``name`` once; returns the prepared folder."""
  spec = catalog.get(name)
  data_dir = resolve_data_dir(data_dir)
  source, looked = discovery.find(spec, source_dir, data_dir)
  if source is None:
    raise _not_found(spec, source_dir, data_dir, looked, "not used by prepare()")
  return Path(builders.prepare(source, data_dir).data_dir)
