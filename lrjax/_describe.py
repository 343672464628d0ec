"""`describe`: any value as JSON that is the same in every process (a run's identity).

Numbers, strings, lists and dicts as they are; dataclasses (a controller, the report
preset's group spec, a sweep file's optimizer) as their class and fields; functions
and classes by module and name; anything else by its ``repr`` without memory
addresses.
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _is_number(value) -> bool:
  if isinstance(value, (bool, np.bool_)):
    return False
  if isinstance(value, numbers.Real):
    return True
  return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf" \
      or (hasattr(value, "dtype") and getattr(value, "ndim", None) == 0
          and np.dtype(value.dtype).kind in "iuf")


def _is_module(value) -> bool:
  try:
    import flax.linen as nn
  except ImportError:  # the library's core needs no Flax
    return False
  return isinstance(value, nn.Module)


def describe(value) -> Any:
  """``value`` as a JSON value that is the same in every process (module docstring)."""
  if value is None or isinstance(value, (bool, str)):
    return value
  if isinstance(value, np.bool_):
    return bool(value)
  if _is_number(value):
    value = np.asarray(value).item()
    return value if not isinstance(value, float) or np.isfinite(value) else repr(value)
  if isinstance(value, Mapping):
    return {str(k): describe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
    return [describe(v) for v in value]
  if dataclasses.is_dataclass(value) and not isinstance(value, type) and not _is_module(value):
    cls = type(value)
    return {"class": f"{cls.__module__}.{cls.__qualname__}",
            **{f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value)
               if f.repr}}
  if callable(value) and hasattr(value, "__qualname__") and not _is_module(value):
    return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
  return ADDRESS.sub("", repr(value))
