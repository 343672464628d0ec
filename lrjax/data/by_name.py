"""The datasets a name selects: ``lrjax sweep --dataset NAME`` and a sweep file's
``data.dataset``.

`NAMES` are the built-in synthetic demo (`SYNTHETIC`, no files) and the catalogue's
datasets (`lrjax.data.catalog.SPECS`); `default_model` and `task` say what a run
without ``--model`` / ``[model]`` trains and how it scores (the catalogue's
``num_classes``: None means regression); `load` reads one, optionally cut to a seeded
random subset of its training examples (``--train-size``).
"""

from __future__ import annotations

import numpy as np

from lrjax.data import catalog
from lrjax.data.dataset import Dataset
from lrjax.data.load import load as load_files
from lrjax.data.synthetic import synthetic
from lrjax.errors import ArgumentError

SYNTHETIC = "synthetic"
# The default demo's data: noisy enough (pixel noise 1.5 on images in [0, 1]) that the
# task is not learnt within the default 10 epochs at the report's rates, so its 14
# settings end apart: on this data seed the final validation accuracies span 0.20 (SGD
# at 0.001) to 0.47 (by-cutoff), 11 distinct values, every final loss distinct; at
# noise 0.4 twelve rows reached 100% and eight were identical.  About a minute on a
# 2-core CPU.
SYNTHETIC_NOISE = 1.5
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 2400, 500
SYNTHETIC_MODEL = "mnist_cnn"  # its images have MNIST's shape and ten classes

NAMES = (SYNTHETIC, *catalog.SPECS)


def _check(name: str) -> str:
  if name not in NAMES:
    raise ArgumentError("dataset", f"must be one of {', '.join(NAMES)}, got {name!r}.")
  return name


def default_model(name: str) -> str:
  """The built-in model trained on ``name`` when none is given."""
  _check(name)
  return SYNTHETIC_MODEL if name == SYNTHETIC else catalog.SPECS[name].default_model


def task(name: str) -> str:
  """``"classification"`` or ``"regression"``: how a run on ``name`` is scored."""
  _check(name)
  return "classification" if name == SYNTHETIC else catalog.SPECS[name].task


def load(name: str, *, source_dir=None, data_dir=None, validation_fraction: float = 0.1,
         train_size: int | None = None, seed: int = 0) -> Dataset:
  """The dataset ``name`` (`SYNTHETIC` is built; the others are read by
  `lrjax.data.load`), with only a random ``train_size`` of its training examples when
  given (drawn with ``seed``: files sorted by class would otherwise give one class).

  Raises:
    ArgumentError: an unknown ``name``, or ``train_size`` below 1.
    DatasetNotFoundError, CorruptDatasetError: as `lrjax.data.load`.
  """
  _check(name)
  if train_size is not None and (isinstance(train_size, bool) or not isinstance(
      train_size, (int, np.integer)) or train_size < 1):
    raise ArgumentError("train_size", f"must be an integer of at least 1, got {train_size!r}.")
  if name == SYNTHETIC:
    dataset = synthetic("mnist", num_train=SYNTHETIC_TRAIN, num_test=SYNTHETIC_TEST,
                        seed=seed, noise=SYNTHETIC_NOISE,
                        validation_fraction=validation_fraction)
  else:
    dataset = load_files(name, source_dir=source_dir, data_dir=data_dir,
                         validation_fraction=validation_fraction, seed=seed)
  if train_size is not None and train_size < len(dataset.train_x):
    keep = np.sort(np.random.default_rng(seed).permutation(len(dataset.train_x))[:train_size])
    dataset = dataset._replace(train_x=dataset.train_x[keep], train_y=dataset.train_y[keep])
  return dataset


__all__ = ["NAMES", "SYNTHETIC", "default_model", "task", "load"]
