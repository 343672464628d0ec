"""Construction-time checks of hyperparameters shared by every lrjax module.

Python numbers (and concrete scalar arrays) are checked at construction and a bad one
raises an error naming the argument: ``ValueError`` for a number out of its range,
`ArgumentTypeError` (a ``TypeError`` that is also a ``ValueError``) for something that
is not a real scalar number at all (a string, ``None``, a bool, a list, a complex).
The checks run on the value the maths will see, the float32 rounding of the argument:
a value that overflows float32 (``1e39`` -> inf) or that float32 can only hold as a
denormal (``1e-45``; XLA flushes denormals to zero) is rejected, and comparisons
(``min_lr <= max_lr``, ``decay <= 1``) are made between float32 values.  Integer
arguments must be integral and fit in int32 (steps are int32); an integral float
(``10.0``) is accepted as that integer.  Hyperparameters are scalars: to evaluate many
values at once, ``jax.vmap`` over them.

Traced values (a hyperparameter vmapped over, or passed through ``jax.jit``) cannot
be inspected at trace time and are accepted as they are: that is what lets one
program evaluate many variants.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy  # noqa: F401 (jax.numpy.dtype)
import numpy as np

from lrjax.errors import ArgumentError, ArgumentTypeError

F32 = np.finfo(np.float32)
F32_MAX, F32_TINY = float(F32.max), float(F32.tiny)
INT32_MAX = int(np.iinfo(np.int32).max)


def is_concrete(value: Any) -> bool:
  """True when ``value`` can be read as a Python number now (not a tracer)."""
  return not isinstance(value, jax.core.Tracer)


def _scalar(name: str, value: Any, what: str = "a real number") -> np.ndarray | None:
  """The concrete real scalar ``value`` as a 0-d float64 array (None when traced)."""
  if not is_concrete(value):
    return None
  if isinstance(value, (bool, np.bool_)) or value is None or isinstance(
      value, (str, bytes)):
    raise ArgumentTypeError(name, f"must be {what}, got {value!r}.")
  if isinstance(value, numbers.Number) and not isinstance(value, numbers.Real):
    raise ArgumentTypeError(name, f"must be {what}, got the complex {value!r}.")
  try:
    arr = np.asarray(value)
  except Exception as err:  # pylint: disable=broad-except
    raise ArgumentTypeError(name, f"must be {what}, got {value!r}.") from err
  if arr.dtype.kind not in "iuf":
    raise ArgumentTypeError(name, f"must be {what}, got {value!r} (dtype {arr.dtype}).")
  if arr.shape != ():
    raise ArgumentTypeError(
        name, f"must be a scalar, got shape {arr.shape} ({value!r}); to evaluate "
        "several values at once, jax.vmap over the hyperparameter.")
  return arr.astype(np.float64)


def _float32(name: str, value: Any) -> float | None:
  """The float32 value the maths will use (as a Python float); None when traced.

  Raises unless it is finite and not a float32 denormal.
  """
  arr = _scalar(name, value)
  if arr is None:
    return None
  x = float(arr)
  if not np.isfinite(x):
    raise ArgumentError(name, f"must be finite, got {value!r}.")
  if abs(x) > F32_MAX:
    raise ArgumentError(name, f"overflows float32 (|x| <= {F32_MAX:.4g}), got {value!r}.")
  if x != 0 and abs(x) < F32_TINY:
    raise ArgumentError(
        name, f"is below float32's smallest normal number ({F32_TINY:.4g}) "
        f"and would be flushed to 0, got {value!r}.")
  return float(np.float32(x))


def check_number(name: str, value: Any) -> None:
  """A real scalar, finite and representable (normal or 0) in float32."""
  _float32(name, value)


check_finite = check_number


def check_positive(name: str, value: Any) -> None:
  """Raises unless ``value`` is a finite float32 number > 0."""
  x = _float32(name, value)
  if x is not None and not x > 0:
    raise ArgumentError(name, f"must be finite and > 0, got {value!r}.")


def check_non_negative(name: str, value: Any) -> None:
  x = _float32(name, value)
  if x is not None and not x >= 0:
    raise ArgumentError(name, f"must be finite and >= 0, got {value!r}.")


def check_in_range(name: str, value: Any, low: float, high: float,
                   *, low_open: bool = False, high_open: bool = False) -> None:
  """Raises unless ``low <(=) value <(=) high`` (in float32)."""
  x = _float32(name, value)
  if x is None:
    return
  lo_ok = x > low if low_open else x >= low
  hi_ok = x < high if high_open else x <= high
  if not (lo_ok and hi_ok):
    lb = "(" if low_open else "["
    hb = ")" if high_open else "]"
    raise ArgumentError(name, f"must be in {lb}{low}, {high}{hb}, got {value!r}.")


def _integer(name: str, value: Any, low: int, what: str) -> None:
  arr = _scalar(name, value, what)
  if arr is None:
    return
  x = float(arr)
  integral = np.isfinite(x) and x == np.floor(x)
  if not integral or not low <= x <= INT32_MAX:
    if integral and x > INT32_MAX:
      raise ArgumentError(name, f"must fit in int32 (<= {INT32_MAX}), got {value!r}.")
    raise ArgumentError(name, f"must be {what}, got {value!r}.")


def check_positive_int(name: str, value: Any) -> None:
  """An integer (or integral float) in [1, 2**31 - 1]."""
  _integer(name, value, 1, "a positive integer")


def check_non_negative_int(name: str, value: Any) -> None:
  """An integer (or integral float) in [0, 2**31 - 1]."""
  _integer(name, value, 0, "an integer >= 0")


def check_less_equal(low_name: str, low: Any, high_name: str, high: Any) -> None:
  """``low <= high`` in float32 (each is checked as a number first)."""
  lo = _float32(low_name, low)
  hi = _float32(high_name, high)
  if lo is not None and hi is not None and not lo <= hi:
    raise ArgumentError(low_name, f"({low!r}) must be <= `{high_name}` ({high!r}).")


def check_bool(name: str, value: Any) -> None:
  """A Python or NumPy bool (not 0/1, not a string)."""
  if is_concrete(value) and not isinstance(value, (bool, np.bool_)):
    raise ArgumentTypeError(name, f"must be True or False, got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
  """One of the strings ``choices``."""
  if not isinstance(value, str):
    raise ArgumentTypeError(name, f"must be one of {choices}, got {value!r}.")
  if value not in choices:
    raise ArgumentError(name, f"must be one of {choices}, got {value!r}.")


def check_callable(name: str, value: Any, what: str = "a callable") -> None:
  if not callable(value):
    raise ArgumentTypeError(name, f"must be {what}, got {value!r}.")


def _elements(name: str, value: Any, what: str, allow_empty: bool) -> list | None:
  """The elements of a concrete list/tuple/1-d array ``value``; None when traced."""
  if not is_concrete(value):
    return None
  if isinstance(value, (list, tuple)):
    items = list(value)
  elif isinstance(value, np.ndarray) or hasattr(value, "__array__") and not isinstance(
      value, (str, bytes, numbers.Number)):
    arr = np.asarray(value)
    if arr.ndim != 1:
      raise ArgumentTypeError(name, f"must be a list of {what}, got shape {arr.shape}.")
    items = list(arr)
  else:
    raise ArgumentTypeError(name, f"must be a list of {what}, got {value!r}.")
  if not items and not allow_empty:
    raise ArgumentError(name, f"must be a non-empty list of {what}, got {value!r}.")
  return items


def _each(name: str, items: list | None, check) -> None:
  """``check(name, item)`` for each item; the error also says which element."""
  for i, item in enumerate(items or ()):
    try:
      check(name, item)
    except ArgumentError as err:  # ArgumentTypeError too
      raise type(err)(err.argument, f"{err.problem.rstrip('.')}, at `{name}[{i}]`.") from None


def check_non_negative_int_list(name: str, value: Any, *, allow_empty: bool = False) -> None:
  """A list (or 1-d array) of integers in [0, 2**31 - 1]; the error names ``name``
  and the element (``name[i]``).  A traced array (or element) is accepted as it is."""
  _each(name, _elements(name, value, "integers >= 0", allow_empty), check_non_negative_int)


def check_non_negative_list(name: str, value: Any, *, allow_empty: bool = False) -> None:
  """A list (or 1-d array) of finite float32 numbers >= 0 (errors as above)."""
  _each(name, _elements(name, value, "numbers >= 0", allow_empty), check_non_negative)


def check_float_dtype(name: str, value: Any) -> None:
  """None or a floating dtype (``jnp.float32``, ``"bfloat16"``...)."""
  if value is None:
    return
  try:
    dtype = jax.numpy.dtype(value) if not isinstance(value, (bool, list, tuple, dict)) else None
  except TypeError:
    dtype = None
  if dtype is None or not jax.numpy.issubdtype(dtype, jax.numpy.floating):
    raise ArgumentTypeError(name, "must be None or a floating dtype (jnp.float32, "
                            f"jnp.bfloat16...), got {value!r}.")


def check_finite_result(name: str, description: str, value: Any) -> None:
  """A quantity derived from several arguments (``description``) is a finite float32
  number > 0; ``name`` lists the arguments involved."""
  if not is_concrete(value):
    return
  x = np.asarray(value, np.float64)
  if not (np.all(np.isfinite(x)) and np.all(np.abs(x) <= F32_MAX) and np.all(x > 0)):
    raise ValueError(f"{name}: {description} must be a finite float32 number > 0, "
                     f"got {float(np.max(x))!r}.")


__all__ = [
    "ArgumentTypeError", "is_concrete", "check_number", "check_finite",
    "check_positive", "check_non_negative", "check_in_range", "check_positive_int",
    "check_non_negative_int", "check_less_equal", "check_bool", "check_choice",
    "check_callable", "check_finite_result", "check_non_negative_int_list",
    "check_non_negative_list", "check_float_dtype",
]
