"""`Dataset`: the numpy arrays a training run puts on the device, and how they are made.

Raw splits (uint8 images, or float feature tables) become a `Dataset` in one way for
every source, local, official or synthetic:

1. the validation set is drawn from the training set (a seeded permutation, so the
   same seed gives the same split); datasets without a test split first have one drawn
   the same way;
2. images are scaled to [0, 1];
3. optionally (default) inputs are standardised with the *training* split's statistics,
   per channel for images (NHWC: over N, H, W), per feature for tables.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from lrjax.errors import ArgumentError


class Dataset(NamedTuple):
  """Train/validation/test arrays, ready for ``jax.device_put``.

  Attributes:
    train_x, valid_x, test_x: inputs, ``dtype`` (float32 by default); images NHWC
      (MNIST ``(N, 28, 28, 1)``, CIFAR-10 ``(N, 32, 32, 3)``), tables ``(N, F)``.
    train_y, valid_y, test_y: int32 labels ``(N,)``, or float targets ``(N,)`` for
      regression.
    num_classes: number of classes, None for regression.
    name: dataset name.
    class_names: class names in label order, or None.
    mean, std: the statistics the inputs were standardised with (in [0, 1] pixel units
      for images), or None when not standardised.
  """

  train_x: np.ndarray
  train_y: np.ndarray
  valid_x: np.ndarray
  valid_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int | None
  name: str
  class_names: tuple[str, ...] | None = None
  mean: np.ndarray | None = None
  std: np.ndarray | None = None

  @property
  def task(self) -> str:
    """``classification`` or ``regression``."""
    return "regression" if self.num_classes is None else "classification"

  @property
  def input_shape(self) -> tuple[int, ...]:
    """Shape of one input example."""
    return tuple(self.train_x.shape[1:])

  def __repr__(self) -> str:
    sizes = "/".join(str(len(a)) for a in (self.train_x, self.valid_x, self.test_x))
    return (f"Dataset({self.name!r}, train/valid/test={sizes}, input_shape="
            f"{self.input_shape}, num_classes={self.num_classes})")


def check_fraction(name: str, value: float) -> float:
  """``value`` as a float in [0, 1), else a ValueError naming ``name``."""
  try:
    value = float(value)
  except (TypeError, ValueError) as err:
    raise ArgumentError(name, f"must be a number in [0, 1), got {value!r}.") from err
  if not 0.0 <= value < 1.0:
    raise ArgumentError(name, f"must be in [0, 1), got {value!r}.")
  return value


def holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Sorted ``(kept, held_out)`` indices of ``range(n)``; ``round(fraction * n)`` held out.

  The held-out indices are a uniform random subset drawn from ``seed``.
  """
  size = int(math.floor(fraction * n + 0.5))
  if n and size >= n:
    raise ValueError(f"A fraction {fraction} of {n} examples leaves none to train on.")
  order = np.random.default_rng(seed).permutation(n)
  return np.sort(order[size:]), np.sort(order[:size])


def channel_moments(x: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel (last axis) mean and standard deviation of ``x``, in float64.

  Accumulated in float64 over chunks of rows (exact for uint8 pixels), without a
  float copy of the whole array.
  """
  channels = x.shape[-1]
  rows = x.reshape(len(x), -1)
  total = np.zeros(rows.shape[1])
  squares = np.zeros(rows.shape[1])
  for start in range(0, len(rows), chunk):
    block = rows[start:start + chunk].astype(np.float64)
    total += block.sum(axis=0)
    squares += np.einsum("ij,ij->j", block, block)
  count = max(rows.size // channels, 1)
  mean = total.reshape(-1, channels).sum(axis=0) / count
  var = squares.reshape(-1, channels).sum(axis=0) / count - mean ** 2
  return mean, np.sqrt(np.maximum(var, 0.0))


def _affine(x: np.ndarray, gain, shift, dtype) -> np.ndarray:
  """``x * gain + shift`` (per channel) as a new ``dtype`` array."""
  x = np.asarray(x)
  out = np.empty(x.shape, dtype)
  np.multiply(x, np.asarray(gain, dtype), out=out)  # casts on the fly: no uint8->float copy
  out += np.asarray(shift, dtype)
  return out


def finish(name: str, splits: dict, *, num_classes: int | None, class_names=None,
           validation_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
           normalize: bool = True, dtype=np.float32) -> Dataset:
  """A `Dataset` from raw ``splits`` (``{"train": (x, y)[, "test": (x, y)]}``).

  Inputs of dtype uint8 are images, scaled by 1/255.  Without a ``test`` split, a
  ``test_fraction`` of the rows is drawn as the test set first (seed ``seed``), then a
  ``validation_fraction`` of the remaining training rows as the validation set.
  """
  validation_fraction = check_fraction("validation_fraction", validation_fraction)
  dtype = np.dtype(dtype)
  if not np.issubdtype(dtype, np.floating):
    raise ArgumentError("dtype", f"must be a floating dtype, got {dtype}.")
  train_x, train_y = splits["train"]
  if "test" in splits:
    test_x, test_y = splits["test"]
  else:
    test_fraction = check_fraction("test_fraction", test_fraction)
    keep, held = holdout(len(train_x), test_fraction, seed)
    test_x, test_y = train_x[held], train_y[held]
    train_x, train_y = train_x[keep], train_y[keep]
  # A different stream than the test draw, so both splits stay fixed for a seed.
  keep, held = holdout(len(train_x), validation_fraction, seed + 1_000_003)
  parts = [train_x[keep], train_x[held], test_x]
  labels = [train_y[keep], train_y[held], test_y]

  is_image = parts[0].dtype == np.uint8
  scale = 1.0 / 255.0 if is_image else 1.0
  mean = std = None
  gain: np.ndarray | np.float64
  shift: np.ndarray | np.float64
  if normalize:
    mean, std = channel_moments(parts[0])
    mean, std = mean * scale, std * scale
    std = np.where(std > 1e-12, std, 1.0)  # a constant input stays 0, not NaN
    mean, std = mean.astype(dtype), std.astype(dtype)
    gain, shift = scale / std.astype(np.float64), -mean.astype(np.float64) / std
  else:
    gain, shift = np.float64(scale), np.float64(0.0)
  parts = [_affine(p, gain, shift, dtype) for p in parts]
  label_dtype = np.int32 if num_classes is not None else dtype
  labels = [np.asarray(y, label_dtype) for y in labels]
  if num_classes is not None:
    for y in labels:
      if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name}: labels outside [0, {num_classes}).")
  return Dataset(parts[0], labels[0], parts[1], labels[1], parts[2], labels[2],
                 num_classes=num_classes, name=name,
                 class_names=tuple(class_names) if class_names is not None else None,
                 mean=mean, std=std)
