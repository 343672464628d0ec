"""Linear and logistic regression as Flax modules (the convex baselines).

Both flatten every non-batch axis, so they take feature vectors (N, F) or images
(N, H, W, C) alike.
"""

from __future__ import annotations

import flax.linen as nn

from lrjax import _validation


class LinearRegression(nn.Module):
  """``y = w . x + b``: flatten, Dense(1), squeezed to shape (N,) (for the MSE loss)."""

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(1, name="linear")(x)[:, 0]


class LogisticRegression(nn.Module):
  """Multinomial logistic regression: flatten, Dense(num_classes) -> logits.

  Attributes:
    num_classes: number of classes.
  """

  num_classes: int = 10

  def __post_init__(self):
    _validation.check_positive_int("num_classes", self.num_classes)
    super().__post_init__()

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(self.num_classes, name="linear")(x)
