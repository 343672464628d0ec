"""lrjax: learning-rate schedules, strategies and adaptive rates for JAX/Optax.

``lrjax.schedules``, ``lrjax.strategies``, ``lrjax.adaptive`` and ``lrjax.errors`` are
imported with the package; ``lrjax.models``, ``lrjax.data`` and ``lrjax.train`` on first
use (they pull in Flax, tensorflow-datasets and orbax), as is ``lrjax.sweep``
(`lrjax.train.api.sweep`); ``dir(lrjax)`` lists them all.
"""

import importlib as _importlib

from lrjax import adaptive, errors, schedules, strategies

__version__ = "0.1.0"

_LAZY = ("models", "data", "train")


def __getattr__(name):
  if name == "sweep":  # the library entry point, lrjax.train.api.sweep
    return _importlib.import_module("lrjax.train.api").sweep
  if name in _LAZY:
    return _importlib.import_module(f"lrjax.{name}")
  raise AttributeError(f"module 'lrjax' has no attribute {name!r}")


def __dir__():
  # The lazy names too (tab completion, `dir(lrjax)`), without importing them.
  return sorted({*globals(), "sweep", *_LAZY})


__all__ = ["adaptive", "errors", "schedules", "strategies", "sweep", *_LAZY]
