"""Checks of what a user hands the training entry points, shared by all of them.

`lrjax.sweep` and the LR range tests (`lrjax.train.range_finder`) take the same kinds
of argument: a model (Linen, or NNX through `as_linen`), a dataset, an optimizer factory
and a batch size.  One checker per kind keeps their errors the same, each naming the
argument, raised at the call instead of as a traceback from inside the traced program.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import flax.linen as nn

from lrjax.train.engine.nnx_adapter import as_linen


def check_int(name: str, value, low: int = 1) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` is an integer >= ``low``."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
    what = "a positive integer" if low == 1 else f"an integer >= {low}"
    raise ValueError(f"`{name}` must be {what}, got {value!r}.")


def check_model(model) -> nn.Module:
  """The Linen module to train: ``model`` itself, or an NNX instance / factory
  converted (`as_linen`, which raises ``TypeError`` naming ``model`` otherwise)."""
  return as_linen(model)


def check_dataset(dataset, fields: Sequence[str], batch_size: int) -> None:
  """``dataset`` has the arrays ``fields`` and at least ``batch_size`` training
  examples (``batch_size`` is checked first)."""
  for field in fields:
    if not hasattr(dataset, field):
      what = ("train/valid/test x and y arrays" if "valid_x" in fields
              else " and ".join(fields) + " arrays")
      raise TypeError(f"`dataset` must have {what} (a lrjax.data.Dataset); it has no "
                      f"{field!r}.")
  check_int("batch_size", batch_size)
  if batch_size > len(dataset.train_x):
    raise ValueError(f"`batch_size` ({batch_size}) exceeds the training set "
                     f"({len(dataset.train_x)} examples).")


def check_optimizer_fn(optimizer_fn, argument: str) -> None:
  """``optimizer_fn`` is callable (``argument``: what it receives, for the message)."""
  if not callable(optimizer_fn):
    raise TypeError(f"`optimizer_fn` must be a callable {argument} -> "
                    f"optax.GradientTransformation, got {type(optimizer_fn).__name__}.")
