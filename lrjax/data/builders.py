"""The project's own tfds builders: local source files -> array_record, prepared once.

Each dataset has a `tfds.core.GeneratorBasedBuilder` whose configs are the source
layouts (``lrjax_mnist/idx``, ``lrjax_cifar10/binary``, ``lrjax_cifar10/images``, ...).
Only ``tfds.features.Tensor`` features are used and the files are written as
``array_record``, read back with ``builder.as_data_source()``: that path of tfds needs
no TensorFlow (``Image``/``ClassLabel`` features and ``as_dataset`` would).  Examples
carry their position in the source (``index``), so the arrays come back in source order
whatever order tfds stores them in.

Preparing runs under `lrjax.data.preparing`'s lock: one process at a time, partial copies
of killed preparations removed, a stale copy set aside (not deleted) until its replacement
is in place, tfds' prints kept off stdout.

Next to the prepared files, ``lrjax_source.json`` records the fingerprint of the source
it was prepared from; a different source (other files, or files changed since) prepares
again, the same one is only read back.  It also records the SHA-256 of every prepared
file: a copy damaged since (a file cut short or with flipped bytes, garbage metadata,
which tfds and array_record report in 40-60 lines, or not at all) is prepared again from
the source files when they are found (one line says so), and is otherwise one
`CorruptPreparedCopyError` line saying how to rebuild it.  Hashing costs about 0.1 s per
100 MB, once per load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from lrjax import _atomic
from lrjax.data import preparing
from lrjax.data.discovery import Source
from lrjax.data.errors import CorruptPreparedCopyError

SOURCE_RECORD = "lrjax_source.json"
_log = logging.getLogger(__name__)

_LAYOUT_DESCRIPTIONS = {
    "idx": "IDX files (train-images-idx3-ubyte.gz, ...).",
    "binary": "The CIFAR-10 binary release (data_batch_*.bin, test_batch.bin).",
    "images": "A CIFAR-10 image folder train/<class>/*, test/<class>/* (JPEG re-encoded "
              "pixels can differ slightly from the binary release).",
    "csv": "The Boston housing CSV.",
}


def _configs(*layouts):
  return [tfds.core.BuilderConfig(name=layout, description=_LAYOUT_DESCRIPTIONS[layout])
          for layout in layouts]


def _bytes_tensor(shape):
  return tfds.features.Tensor(shape=shape, dtype=np.uint8,
                              encoding=tfds.features.Encoding.BYTES)


class _LocalBuilder(tfds.core.GeneratorBasedBuilder,  # type: ignore[call-arg]  # tfds's keyword
                    skip_registration=True):
  """Base of the local-file builders: ``source`` is read when preparing, else unused."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First lrjax release."}
  X_KEY = "image"
  Y_KEY = "label"

  # tfds looks up the builder's code folder (for checksums and metadata files) through
  # `importlib_resources`, which recent etils no longer installs on Python >= 3.9; the
  # local builders have neither, so the folder is given directly.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def __init__(self, *, source: Source | None = None, **kwargs):
    self._source = source
    super().__init__(**kwargs)

  def _features(self) -> dict:
    raise NotImplementedError

  def _info(self) -> tfds.core.DatasetInfo:
    features = dict(self._features(), index=tfds.features.Tensor(shape=(), dtype=np.int64))
    return tfds.core.DatasetInfo(
        builder=self, description=self.__doc__,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=(self.X_KEY, self.Y_KEY))

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing is downloaded: the files are local.
    if self._source is None:
      raise ValueError(f"{self.name}: preparing needs the local source files.")
    # Every file is parsed and checked before anything is written.
    splits = self._source.read()
    return {split: self._generate_examples(x, y) for split, (x, y) in splits.items()}

  def _generate_examples(self, x, y):
    # Keys are positions in the source; `index` restores that order when reading back.
    for i in range(len(x)):
      yield i, {self.X_KEY: x[i], self.Y_KEY: y[i], "index": i}


class LrjaxMnist(_LocalBuilder):
  """MNIST from the local IDX files: 28x28x1 uint8 images, labels 0-9."""

  name = "lrjax_mnist"
  BUILDER_CONFIGS = _configs("idx")

  def _features(self):
    return {"image": _bytes_tensor((28, 28, 1)),
            "label": tfds.features.Tensor(shape=(), dtype=np.int64)}


class LrjaxFashionMnist(LrjaxMnist):
  """Fashion-MNIST from the local IDX files: 28x28x1 uint8 images, labels 0-9."""

  name = "lrjax_fashion_mnist"
  BUILDER_CONFIGS = _configs("idx")


class LrjaxCifar10(_LocalBuilder):
  """CIFAR-10 from the binary release or an image folder: 32x32x3 uint8, labels 0-9."""

  name = "lrjax_cifar10"
  BUILDER_CONFIGS = _configs("binary", "images")

  def _features(self):
    return {"image": _bytes_tensor((32, 32, 3)),
            "label": tfds.features.Tensor(shape=(), dtype=np.int64)}


class LrjaxBostonHousing(_LocalBuilder):
  """Boston housing from the local CSV: 13 float features, target ``medv`` (one split)."""

  name = "lrjax_boston_housing"
  BUILDER_CONFIGS = _configs("csv")
  X_KEY = "features"
  Y_KEY = "target"

  def _features(self):
    # tf.train.Example stores floats as float32, so the features say so.
    return {"features": tfds.features.Tensor(shape=(13,), dtype=np.float32),
            "target": tfds.features.Tensor(shape=(), dtype=np.float32)}


BUILDERS = {cls.name[len("lrjax_"):]: cls
            for cls in (LrjaxMnist, LrjaxFashionMnist, LrjaxCifar10, LrjaxBostonHousing)}


@contextlib.contextmanager
def _quiet_progress():
  """tfds' progress bars off while preparing, restored after."""
  module = tfds.core.utils.tqdm_utils
  previous = getattr(module, "_active", True)
  tfds.display_progress_bar(False)
  try:
    yield
  finally:
    tfds.display_progress_bar(previous)


def builder(dataset: str, layout: str, data_dir, source: Source | None = None):
  """The builder of ``dataset``/``layout`` in ``data_dir`` (array_record files)."""
  return BUILDERS[dataset](source=source, config=layout, data_dir=str(data_dir),
                           file_format="array_record")


def version_dir(dataset: str, layout: str, data_dir) -> Path:
  """Where ``dataset``/``layout`` is prepared in ``data_dir`` (tfds' layout), without
  building the builder (which reads the copy's metadata)."""
  cls = BUILDERS[dataset]
  return Path(data_dir) / cls.name / layout / str(cls.VERSION)


def _one_line(err: BaseException, limit: int = 200) -> str:
  lines = [line.strip() for line in str(err).splitlines() if line.strip()]
  text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _open(dataset: str, layout: str, data_dir, source: Source | None = None):
  """`builder`; a prepared copy whose metadata tfds cannot read raises
  `CorruptPreparedCopyError` (tfds' own error is a protobuf ``ParseError``)."""
  try:
    return builder(dataset, layout, data_dir, source)
  except Exception as err:  # pylint: disable=broad-except  (only with a copy to blame)
    folder = version_dir(dataset, layout, data_dir)
    if not (folder / "dataset_info.json").exists():
      raise
    raise CorruptPreparedCopyError(folder, f"its metadata cannot be read: {_one_line(err)}",
                                   dataset) from err


def is_prepared(b) -> bool:
  """Whether ``b`` is prepared (checked quietly: tfds warns about absent folders)."""
  return (Path(b.data_dir) / "dataset_info.json").is_file() and b.is_prepared()


def _record(b) -> dict | None:
  """``lrjax_source.json`` of ``b``'s copy; None when absent or unreadable."""
  try:
    record = json.loads((Path(b.data_dir) / SOURCE_RECORD).read_text())
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def _recorded_fingerprint(b) -> str | None:
  return (_record(b) or {}).get("fingerprint")


def _sha256(path: Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _digests(folder: Path) -> dict[str, str]:
  """``{file name: SHA-256}`` of a prepared copy (the record itself left out)."""
  return {p.name: _sha256(p) for p in sorted(folder.iterdir())
          if p.is_file() and p.name != SOURCE_RECORD}


def damage(b) -> str | None:
  """What is wrong with ``b``'s prepared copy by the digests of its record, or None
  (intact, or prepared by an lrjax that recorded none)."""
  folder = Path(b.data_dir)
  if (folder / SOURCE_RECORD).exists() and _record(b) is None:
    return f"its {SOURCE_RECORD} cannot be read"
  files = (_record(b) or {}).get("files")
  if not isinstance(files, dict):
    return None
  for name, digest in files.items():
    path = folder / name
    if not path.is_file():
      return f"{name} is missing"
    if _sha256(path) != digest:
      return f"{name} differs from the file prepared (checksum mismatch)"
  return None


def _reusable(source: Source, data_dir, fingerprint: str):
  """``(builder, None)`` when ``source`` is prepared in ``data_dir`` and intact;
  ``(None, problem)`` when its copy is damaged; ``(None, None)`` when absent or stale."""
  try:
    b = _open(source.dataset, source.layout, data_dir, source)
  except CorruptPreparedCopyError as err:
    return None, err.problem
  if not (is_prepared(b) and _recorded_fingerprint(b) == fingerprint):
    return None, None
  problem = damage(b)
  return (b, None) if problem is None else (None, problem)


def prepare(source: Source, data_dir, *, damaged: str | None = None
            ) -> tfds.core.DatasetBuilder:
  """Prepares ``source`` into ``data_dir`` unless that very source is prepared already
  (and intact).

  ``damaged``: why the prepared copy cannot be read (`read` said so): it is prepared
  again.  A damaged copy is reported in one line on stderr, set aside while the new one
  is prepared and deleted once that is in place (put back if it fails).  Returns the
  builder, prepared.  Whether it parsed the source is logged at INFO.
  """
  fingerprint = source.fingerprint()
  if damaged is None:
    b, damaged = _reusable(source, data_dir, fingerprint)
    if b is not None:
      return b
  folder = version_dir(source.dataset, source.layout, data_dir)
  # One preparation at a time; what a killed one left is undone first; and the source may
  # have been prepared by another process meanwhile.
  with preparing.exclusive(folder.parent):
    preparing.recover(folder)
    if damaged is None:
      b, damaged = _reusable(source, data_dir, fingerprint)
      if b is not None:
        return b
    if damaged is not None:
      print(f"lrjax: the prepared copy of {source.dataset} in {folder} is damaged "
            f"({damaged}); preparing it again from {source.path}", file=sys.stderr,
            flush=True)
    _log.info("Preparing %s/%s from %s into %s", BUILDERS[source.dataset].name,
              source.layout, source.path, data_dir)
    # A stale (or damaged) copy is set aside, not deleted by tfds, until the new one is in
    # place; only then is its metadata out of the way of the new builder.
    with preparing.replacing(folder), _quiet_progress():
      b = builder(source.dataset, source.layout, data_dir, source)
      mode = tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
      b.download_and_prepare(download_config=tfds.download.DownloadConfig(download_mode=mode))
      record = {"fingerprint": fingerprint, "layout": source.layout, "path": str(source.path),
                "files": _digests(folder)}
      _atomic.write_text(folder / SOURCE_RECORD, json.dumps(record, indent=1))
  return b


def prepared(dataset: str, layouts, data_dir):
  """The first already-prepared builder of ``dataset`` among ``layouts``, or None.

  Raises `CorruptPreparedCopyError` when that copy is damaged (there is no source here to
  prepare it again from)."""
  for layout in layouts:
    folder = version_dir(dataset, layout, data_dir)
    if preparing.needs_recovery(folder):  # a preparation was killed: its copy back
      with preparing.exclusive(folder.parent):
        preparing.recover(folder)
    b = _open(dataset, layout, data_dir)
    if is_prepared(b):
      problem = damage(b)
      if problem is not None:
        raise CorruptPreparedCopyError(folder, problem, dataset)
      return b
  return None


def read(b) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{split: (x, y)}`` of a prepared builder, in source order.

  Raises `CorruptPreparedCopyError` when the files cannot be read back (a damaged copy
  that no digest caught: one prepared by an older lrjax)."""
  dataset = b.name[len("lrjax_"):] if b.name.startswith("lrjax_") else b.name
  try:
    out = {}
    for split, source in b.as_data_source().items():
      records = source.__getitems__(list(range(len(source))))
      order = np.argsort([r["index"] for r in records], kind="stable")
      x = np.stack([records[i][b.X_KEY] for i in order])
      y = np.asarray([records[i][b.Y_KEY] for i in order])
      out[str(split)] = x, y
  except Exception as err:  # pylint: disable=broad-except  (array_record / Riegeli errors)
    raise CorruptPreparedCopyError(b.data_dir, f"it cannot be read: {_one_line(err)}",
                                   dataset) from err
  return out
