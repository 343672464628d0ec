"""Exponential growth that stays finite (private helper of the growth options).

PyTorch lets a rate grow without bound (``ExponentialLR(gamma > 1)``, ``CyclicLR``'s
``exp_range`` with ``gamma > 1``); in float32 ``gamma ** t`` overflows to inf within a
few hundred steps and ``0 * inf`` turns into NaN.  lrjax offers growth only together
with a cap ``lr_cap`` on the rate: the exponential is evaluated only while it is below
the cap (the clock is stopped at the step where it would pass it), so no intermediate
ever overflows and every int32 step gives a finite rate.  The same stopped clock keeps a
*decaying* exponential from underflowing into ``0 * inf`` (see ``_numerics.exp_times``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules._numerics import exp_times

# exp(-104) is below the smallest normal float32: a decaying exponential is 0 from there.
_UNDERFLOW = 104.0
# Largest ratio lr_cap / lr accepted: exp(log(1e30)) = 1e30 stays far from float32 overflow.
MAX_CAP_RATIO = 1e30


def exp_until(log_growth, t, log_room):
  """``(exp(log_growth * t), passed)`` for steps ``t >= 0`` (float32).

  ``passed`` is True where ``log_growth > 0`` and ``log_growth * t >= log_room``: the
  exponential has reached ``exp(log_room)`` and the caller holds its cap there (the
  value returned is then the exponential at the step where it was stopped, not used).
  A decaying exponential (``log_growth < 0``) stops at ``-104 / log_growth`` where it is
  0 in float32.  ``log_growth`` may be concrete (split in float64, see ``exp_times``) or
  traced.
  """
  g = jnp.asarray(log_growth, jnp.float32)
  g_abs = jnp.where(g != 0, jnp.abs(g), 1.0)
  room = jnp.maximum(jnp.asarray(log_room, jnp.float32), 0.0)
  limit = jnp.where(g > 0, room / g_abs, _UNDERFLOW / g_abs)
  passed = (g > 0) & (t >= limit)
  stopped = jnp.where(passed, 0.0, jnp.minimum(t, limit))
  return exp_times(log_growth, stopped), passed


def log_of(value):
  """``log(value)``: float64 when concrete, float32 when traced."""
  if _validation.is_concrete(value):
    return np.log(np.asarray(value, np.float64))
  return jnp.log(jnp.asarray(value, jnp.float32))


def check_cap(cap_name: str, cap, low_name: str, low) -> None:
  """``cap`` finite, >= ``low`` > 0, and ``cap / low <= MAX_CAP_RATIO``."""
  _validation.check_positive(cap_name, cap)
  _validation.check_less_equal(low_name, low, cap_name, cap)
  if _validation.is_concrete(cap) and _validation.is_concrete(low):
    ratio = np.asarray(cap, np.float64) / np.asarray(low, np.float64)
    if not np.all(ratio <= MAX_CAP_RATIO):
      raise ArgumentError(cap_name, f"({cap!r}) must be at most {MAX_CAP_RATIO:g} times "
                          f"`{low_name}` ({low!r}).")


def refuse_growth(name: str, value, growth_if) -> None:
  """Raises when a concrete ``value`` of ``name`` would make the rate grow (``growth_if``
  of its float64 array is True somewhere) and no ``lr_cap`` was given.  Values that are
  not numbers are left to the argument's own check."""
  if not _validation.is_concrete(value):
    return
  try:
    grows = bool(np.any(growth_if(np.asarray(value, np.float64))))
  except (TypeError, ValueError):
    return
  if grows:
    raise ArgumentError(name, f"= {value!r} makes the rate grow without bound: pass "
                        "`lr_cap`, the largest rate allowed.")


def capped_exponential(r0, log_growth, lr_cap):
  """The schedule ``t -> min(r0 * exp(log_growth * t), lr_cap)`` (float32, t >= 0)."""

  def schedule(count):
    t = jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)
    value, passed = exp_until(log_growth, t, log_of(lr_cap) - log_of(r0))
    cap = jnp.asarray(lr_cap, jnp.float32)
    rate = jnp.minimum(jnp.asarray(r0, jnp.float32) * value, cap)
    return jnp.where(passed, cap, rate).astype(jnp.float32)

  return schedule


__all__ = ["MAX_CAP_RATIO", "exp_until", "log_of", "check_cap", "refuse_growth",
           "capped_exponential"]
