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
again, the same one is only read back.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from lrjax import _atomic
from lrjax.data import preparing
from lrjax.data.discovery import Source

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


def is_prepared(b) -> bool:
  """Whether ``b`` is prepared (checked quietly: tfds warns about absent folders)."""
  return (Path(b.data_dir) / "dataset_info.json").is_file() and b.is_prepared()


def _recorded_fingerprint(b) -> str | None:
  path = Path(b.data_dir) / SOURCE_RECORD
  try:
    return json.loads(path.read_text())["fingerprint"]
  except (OSError, ValueError, KeyError):
    return None


def prepare(source: Source, data_dir) -> tfds.core.DatasetBuilder:
  """Prepares ``source`` into ``data_dir`` unless that very source is prepared already.

  Returns the builder, prepared.  Whether it parsed the source is logged at INFO.
  """
  b = builder(source.dataset, source.layout, data_dir, source)
  fingerprint = source.fingerprint()
  if is_prepared(b) and _recorded_fingerprint(b) == fingerprint:
    return b
  version_dir = Path(b.data_dir)
  # One preparation at a time; what a killed one left is undone first; and the source may
  # have been prepared by another process meanwhile.
  with preparing.exclusive(version_dir.parent):
    preparing.recover(version_dir)
    b = builder(source.dataset, source.layout, data_dir, source)
    if is_prepared(b) and _recorded_fingerprint(b) == fingerprint:
      return b
    _log.info("Preparing %s/%s from %s into %s", b.name, source.layout, source.path, data_dir)
    # A stale copy is set aside, not deleted by tfds, until the new one is in place.
    with preparing.replacing(version_dir), _quiet_progress():
      b = builder(source.dataset, source.layout, data_dir, source)
      mode = tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
      b.download_and_prepare(download_config=tfds.download.DownloadConfig(download_mode=mode))
      record = {"fingerprint": fingerprint, "layout": source.layout, "path": str(source.path)}
      _atomic.write_text(version_dir / SOURCE_RECORD, json.dumps(record, indent=1))
  return b


def prepared(dataset: str, layouts, data_dir):
  """The first already-prepared builder of ``dataset`` among ``layouts``, or None."""
  for layout in layouts:
    b = builder(dataset, layout, data_dir)
    version_dir = Path(b.data_dir)
    if preparing.needs_recovery(version_dir):  # a preparation was killed: its copy back
      with preparing.exclusive(version_dir.parent):
        preparing.recover(version_dir)
      b = builder(dataset, layout, data_dir)
    if is_prepared(b):
      return b
  return None


def read(b) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{split: (x, y)}`` of a prepared builder, in source order."""
  out = {}
  for split, source in b.as_data_source().items():
    records = source.__getitems__(list(range(len(source))))
    order = np.argsort([r["index"] for r in records], kind="stable")
    x = np.stack([records[i][b.X_KEY] for i in order])
    y = np.asarray([records[i][b.Y_KEY] for i in order])
    out[str(split)] = x, y
  return out
