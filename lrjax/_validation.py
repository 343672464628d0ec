"""Construction-time checks of hyperparameters shared by every lrjax module.

Python numbers (and concrete arrays) are checked at construction and raise a
``ValueError`` naming the argument.  Traced values (a hyperparameter vmapped over,
or passed through ``jax.jit``) cannot be inspected at trace time and are accepted
as they are: that is what lets one program evaluate many variants.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


def is_concrete(value: Any) -> bool:
  """True when ``value`` can be read as a Python number now (not a tracer)."""
  return not isinstance(value, jax.core.Tracer)


def _as_float_array(name: str, value: Any) -> np.ndarray | None:
  if not is_concrete(value):
    return None
  try:
    return np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as err:
    raise ValueError(f"`{name}` must be a number, got {value!r}.") from err


def check_finite(name: str, value: Any) -> None:
  arr = _as_float_array(name, value)
  if arr is not None and not np.all(np.isfinite(arr)):
    raise ValueError(f"`{name}` must be finite, got {value!r}.")


def check_positive(name: str, value: Any) -> None:
  """Raises unless every element of ``value`` is finite and > 0."""
  arr = _as_float_array(name, value)
  if arr is not None and not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
    raise ValueError(f"`{name}` must be finite and > 0, got {value!r}.")


def check_non_negative(name: str, value: Any) -> None:
  arr = _as_float_array(name, value)
  if arr is not None and not (np.all(np.isfinite(arr)) and np.all(arr >= 0)):
    raise ValueError(f"`{name}` must be finite and >= 0, got {value!r}.")


def check_in_range(name: str, value: Any, low: float, high: float,
                   *, low_open: bool = False, high_open: bool = False) -> None:
  """Raises unless ``low <(=) value <(=) high`` elementwise."""
  arr = _as_float_array(name, value)
  if arr is None:
    return
  lo_ok = np.all(arr > low) if low_open else np.all(arr >= low)
  hi_ok = np.all(arr < high) if high_open else np.all(arr <= high)
  if not (np.all(np.isfinite(arr)) and lo_ok and hi_ok):
    lb = "(" if low_open else "["
    hb = ")" if high_open else "]"
    raise ValueError(f"`{name}` must be in {lb}{low}, {high}{hb}, got {value!r}.")


def check_positive_int(name: str, value: Any) -> None:
  if not is_concrete(value):
    return
  arr = np.asarray(value)
  if arr.dtype.kind == "f" and not np.all(np.equal(np.mod(arr, 1), 0)):
    raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
  if not np.all(arr >= 1):
    raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def check_non_negative_int(name: str, value: Any) -> None:
  if not is_concrete(value):
    return
  arr = np.asarray(value)
  if arr.dtype.kind == "f" and not np.all(np.equal(np.mod(arr, 1), 0)):
    raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}.")
  if not np.all(arr >= 0):
    raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}.")


def check_less_equal(low_name: str, low: Any, high_name: str, high: Any) -> None:
  lo = _as_float_array(low_name, low)
  hi = _as_float_array(high_name, high)
  if lo is not None and hi is not None and not np.all(lo <= hi):
    raise ValueError(f"`{low_name}` ({low!r}) must be <= `{high_name}` ({high!r}).")


__all__ = [
    "is_concrete", "check_finite", "check_positive", "check_non_negative",
    "check_in_range", "check_positive_int", "check_non_negative_int",
    "check_less_equal",
]
