"""lrjax: learning-rate schedules, strategies and adaptive rates for JAX/Optax.

``lrjax.schedules``, ``lrjax.strategies`` and ``lrjax.adaptive`` are imported with the
package; ``lrjax.models``, ``lrjax.data`` and ``lrjax.train`` on first use (they pull in
Flax, tensorflow-datasets and orbax), as is ``lrjax.sweep`` (`lrjax.train.api.sweep`).
"""

import importlib

from lrjax import adaptive, schedules, strategies

__version__ = "0.1.0"

_LAZY = ("models", "data", "train")


def __getattr__(name):
  if name == "sweep":  # the library entry point, lrjax.train.api.sweep
    return importlib.import_module("lrjax.train.api").sweep
  if name in _LAZY:
    return importlib.import_module(f"lrjax.{name}")
  raise AttributeError(f"module 'lrjax' has no attribute {name!r}")


__all__ = ["adaptive", "schedules", "strategies", "sweep", *_LAZY]
