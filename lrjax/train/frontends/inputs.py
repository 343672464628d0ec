"""Checks of what a user hands the training entry points, shared by all of them.

`lrjax.sweep` and the LR range tests (`lrjax.train.range_finder`) take the same kinds
of argument: a model (Linen, or NNX through `as_linen`), a dataset, an optimizer factory
and a batch size.  One checker per kind keeps their errors the same, each naming the
argument, raised at the call instead of as a traceback from inside the traced program.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Sequence

import flax.linen as nn

from lrjax.errors import ArgumentError, ArgumentTypeError
from lrjax.train.engine.nnx_adapter import as_linen


def check_int(name: str, value, low: int = 1) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` is an integer >= ``low``."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
    what = "a positive integer" if low == 1 else f"an integer >= {low}"
    raise ArgumentError(name, f"must be {what}, got {value!r}.")


def check_train_argument(model: nn.Module) -> None:
  """Raises ``TypeError`` unless the Linen ``model``'s ``__call__`` takes ``train`` (a
  parameter of that name, or ``**kwargs``): the engine calls ``model(x, train=...)``
  (dropout and batch statistics on in training, off in evaluation)."""
  try:
    parameters = inspect.signature(type(model).__call__).parameters.values()
  except (TypeError, ValueError):  # no signature to read: the call will tell
    return
  if any(p.name == "train" or p.kind == p.VAR_KEYWORD for p in parameters):
    return
  name = type(model).__name__
  raise ArgumentTypeError("model", ": lrjax calls model(x, train=...): add a `train` "
                          f"argument to {name}.__call__ (e.g. `def __call__(self, x, *, "
                          "train)`, passing `deterministic=not train` to dropout and "
                          "`use_running_average=not train` to batch norm).")


def check_model(model) -> nn.Module:
  """The Linen module to train: ``model`` itself (its ``__call__`` must take ``train``,
  `check_train_argument`), or an NNX instance / factory converted (`as_linen`, which
  raises ``TypeError`` naming ``model`` otherwise; an NNX ``__call__`` needs no
  ``train``: the engine sets ``.train()`` / ``.eval()``)."""
  linen = as_linen(model)
  if linen is model:
    check_train_argument(model)
  return linen


def check_dataset(dataset, fields: Sequence[str], batch_size: int) -> None:
  """``dataset`` has the arrays ``fields`` and at least ``batch_size`` training
  examples (``batch_size`` is checked first)."""
  for field in fields:
    if not hasattr(dataset, field):
      what = ("train/valid/test x and y arrays" if "valid_x" in fields
              else " and ".join(fields) + " arrays")
      raise ArgumentTypeError("dataset", f"must have {what} (a lrjax.data.Dataset); it has no "
                              f"{field!r}.")
  check_int("batch_size", batch_size)
  if batch_size > len(dataset.train_x):
    raise ArgumentError("batch_size", f"({batch_size}) exceeds the training set "
                        f"({len(dataset.train_x)} examples).")


def check_optimizer_fn(optimizer_fn, argument: str) -> None:
  """``optimizer_fn`` is callable (``argument``: what it receives, for the message)."""
  if not callable(optimizer_fn):
    raise ArgumentTypeError("optimizer_fn", f"must be a callable {argument} -> "
                            f"optax.GradientTransformation, got {type(optimizer_fn).__name__}.")
