"""`synthetic`: small learnable datasets in the `Dataset` format, for tests and demos.

Classification: each class has a template image (a Gaussian blob at a class-specific
place on a circle, plus a fixed random texture); an example is its class template,
randomly brightened, plus pixel noise, rendered as uint8 and then finished exactly as
the real image datasets are (scaled, split, standardised).  Regression (a 1-D shape or
``"boston_housing"``): Gaussian features and a noisy linear target.
"""

from __future__ import annotations

import numpy as np

from lrjax.data.dataset import Dataset, finish
from lrjax.errors import ArgumentError

SHAPES = {
    "tiny": (8, 8, 1),
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
    "boston_housing": (13,),
}


def _shape(name_or_shape) -> tuple[str, tuple[int, ...]]:
  if isinstance(name_or_shape, str):
    key = name_or_shape.lower().replace("-", "_")
    if key not in SHAPES:
      raise ValueError(f"Unknown synthetic shape {name_or_shape!r}; use one of "
                       f"{list(SHAPES)} or a shape tuple (H, W, C) / (F,).")
    return key, SHAPES[key]
  shape = tuple(int(d) for d in name_or_shape)
  if len(shape) not in (1, 3) or min(shape) < 1:
    raise ValueError(f"A synthetic shape is (H, W, C) or (F,), got {name_or_shape!r}.")
  return "x".join(map(str, shape)), shape


def _templates(rng, shape, num_classes) -> np.ndarray:
  """``(num_classes, H, W, C)`` templates in [0, 1]."""
  h, w, c = shape
  yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  radius, sigma = 0.3 * min(h, w), max(0.12 * min(h, w), 0.8)
  angles = 2 * np.pi * np.arange(num_classes) / num_classes
  cy, cx = (h - 1) / 2 + radius * np.sin(angles), (w - 1) / 2 + radius * np.cos(angles)
  blobs = np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2)
                 / (2 * sigma ** 2))
  colours = rng.uniform(0.5, 1.0, size=(num_classes, 1, 1, c))
  texture = rng.uniform(0.0, 1.0, size=(num_classes, h, w, c))
  return 0.6 * blobs[..., None] * colours + 0.4 * texture


def synthetic(name_or_shape="tiny", num_train: int = 1000, num_test: int = 200,
              num_classes: int | None = 10, seed: int = 0, *,
              validation_fraction: float = 0.1, noise: float = 0.25,
              normalize: bool = True, dtype=np.float32) -> Dataset:
  """A small learnable dataset.

  Args:
    name_or_shape: ``"tiny"`` (8x8x1), ``"mnist"`` / ``"fashion_mnist"`` (28x28x1),
      ``"cifar10"`` (32x32x3), ``"boston_housing"`` (13 features, regression), or a
      shape ``(H, W, C)`` (classification) / ``(F,)`` (regression).
    num_train: training examples, the validation set included (as `load` splits it).
    num_test: test examples.
    num_classes: number of classes (ignored for regression, which has None).
    seed: seeds the templates, the examples and the validation split.
    validation_fraction: fraction of ``num_train`` held out for validation.
    noise: pixel noise standard deviation (images in [0, 1]) or target noise.
    normalize: standardise the inputs with the training statistics.
    dtype: input dtype.

  Returns:
    A `Dataset` named ``synthetic_<name>``.
  """
  name, shape = _shape(name_or_shape)
  if num_train < 1 or num_test < 1:
    raise ArgumentError("num_train", f"and `num_test` must be >= 1, got {num_train}, {num_test}.")
  rng = np.random.default_rng(seed)
  n = num_train + num_test
  if len(shape) == 1:
    weights = rng.normal(size=shape)
    x = rng.normal(size=(n,) + shape)
    y = x @ weights / np.sqrt(shape[0]) + 3.0 + noise * rng.normal(size=n)
    splits = {"train": (x[:num_train], y[:num_train]), "test": (x[num_train:], y[num_train:])}
    return finish(f"synthetic_{name}", splits, num_classes=None,
                  validation_fraction=validation_fraction, seed=seed,
                  normalize=normalize, dtype=dtype)
  if num_classes is None or num_classes < 2:
    raise ArgumentError("num_classes", f"must be >= 2 for images, got {num_classes}.")
  templates = _templates(rng, shape, num_classes)
  y = rng.integers(0, num_classes, size=n)
  brightness = rng.uniform(0.8, 1.2, size=(n, 1, 1, 1))
  images = templates[y] * brightness + noise * rng.normal(size=(n,) + shape)
  x = np.clip(np.round(255 * images), 0, 255).astype(np.uint8)
  splits = {"train": (x[:num_train], y[:num_train]), "test": (x[num_train:], y[num_train:])}
  return finish(f"synthetic_{name}", splits, num_classes=num_classes,
                class_names=tuple(str(i) for i in range(num_classes)),
                validation_fraction=validation_fraction, seed=seed,
                normalize=normalize, dtype=dtype)
