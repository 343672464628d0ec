"""Optional dependencies: the library needs jax, optax and chex; the engine more.

`pip install lrjax` gives schedules, strategies and adaptive rates.  The models, the data
layer and the engine (`lrjax.models`, `lrjax.data`, `lrjax.train`, the `lrjax` command)
need the ``train`` extra.  Each of those subpackages calls `require` first, so a missing
package is one clear ImportError naming the extra, not a traceback from deep inside Flax.
"""

from __future__ import annotations

import importlib.util

# Import name -> distribution name, for the message.
TRAIN_MODULES = {
    "flax": "flax",
    "orbax.checkpoint": "orbax-checkpoint",
    "tensorflow_datasets": "tensorflow-datasets",
    "array_record": "array_record",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "PIL": "pillow",
}


def _missing(module: str) -> bool:
  try:
    return importlib.util.find_spec(module) is None
  except (ImportError, ValueError):  # a parent package is missing or blocked
    return True


def missing_train_dependencies() -> list[str]:
  """Distribution names of the ``train`` extra that cannot be imported."""
  return [dist for module, dist in TRAIN_MODULES.items() if _missing(module)]


def require_train(what: str) -> None:
  """Raises ImportError naming the extra when ``what`` cannot run here."""
  missing = missing_train_dependencies()
  if missing:
    raise ImportError(
        f"{what} needs lrjax's 'train' extra (missing: {', '.join(missing)}); "
        "install it with: pip install 'lrjax[train]'")


def require_tensorboard(what: str) -> None:
  """Raises ImportError naming the ``tensorboard`` extra when tensorboardX is missing."""
  if _missing("tensorboardX"):
    raise ImportError(
        f"{what} needs tensorboardX, lrjax's 'tensorboard' extra; install it with: "
        'pip install "lrjax[tensorboard]"')
