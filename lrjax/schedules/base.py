"""Building blocks shared by every schedule: the constant rate and `switch`."""

from __future__ import annotations

import collections.abc
from collections.abc import Callable, Sequence

import chex
import jax
import jax.numpy as jnp

from lrjax import _validation
from lrjax.errors import ArgumentError, ArgumentTypeError

Schedule = Callable[[chex.Numeric], chex.Numeric]


def constant(learning_rate: float) -> Schedule:
  """A fixed rate: ``lr_n = learning_rate`` for every step ``n``.

  Example:
    >>> import lrjax
    >>> round(float(lrjax.schedules.constant(0.001)(10)), 6)
    0.001
  """
  _validation.check_positive("learning_rate", learning_rate)

  def schedule(count):
    return jnp.full(jnp.shape(count), learning_rate, jnp.float32)

  return schedule


def switch(schedules: Sequence[Schedule], index: chex.Numeric) -> Schedule:
  """Selects ``schedules[index]`` where ``index`` may be a traced integer.

  Variants whose schedules differ (seq1 vs seq3, say) can then run in one
  ``jax.vmap``-ed program: ``index`` is part of the vmapped data.  A concrete
  ``index`` must be an integer in ``[0, len(schedules) - 1]``; a traced one out of
  that range is clamped, as ``jax.lax.switch`` does.

  Example:
    >>> import jax, jax.numpy as jnp, lrjax
    >>> bank = [lrjax.schedules.seq1(0.01), lrjax.schedules.seq3(0.01)]
    >>> lrs = jax.vmap(lambda i: lrjax.schedules.switch(bank, i)(2))(jnp.arange(2))
    >>> [round(float(lr), 6) for lr in lrs]  # seq1: 0.01 / 2, seq3: 0.9**2 * 0.01
    [0.005, 0.0081]
  """
  if not isinstance(schedules, collections.abc.Sequence) or isinstance(schedules, str):
    raise ArgumentTypeError(
        "schedules", f"must be a list of schedules, got {schedules!r}.")
  if len(schedules) == 0:
    raise ArgumentError("schedules", "must not be empty.")
  for i, s in enumerate(schedules):
    if not callable(s):
      raise ArgumentTypeError(
          "schedules", f"must hold schedules (callables), got {s!r} at position {i}.")
  _validation.check_non_negative_int("index", index)
  _validation.check_less_equal("index", index, "len(schedules) - 1", len(schedules) - 1)
  branches = [lambda c, s=s: jnp.asarray(s(c), jnp.float32) for s in schedules]

  def schedule(count):
    return jax.lax.switch(jnp.asarray(index, jnp.int32), branches, count)

  return schedule


def from_values(values) -> Schedule:
  """A recorded trajectory as a schedule: ``lr_n = values[n]``, the last value after
  the end (a searched variant's rates, `lrjax.train.SweepResult.lr_schedule`).

  ``values``: a non-empty 1-D sequence of finite, non-negative rates (checked here, on
  the host).  The step may be traced; steps below 0 give ``values[0]``.

  Example:
    >>> import lrjax
    >>> schedule = lrjax.schedules.from_values([0.1, 0.1, 0.05])
    >>> [round(float(schedule(n)), 3) for n in (0, 2, 10)]
    [0.1, 0.05, 0.05]
  """
  import numpy as np
  try:
    table = np.asarray(values)
    ok = table.dtype.kind in "iuf" and table.ndim == 1 and table.size > 0
  except (TypeError, ValueError):  # ragged or otherwise not an array of numbers
    ok = False
  if not ok:
    raise ArgumentTypeError(
        "values", f"must be a non-empty 1-D sequence of numbers (rates), got {values!r}.")
  table = table.astype(np.float32)  # as the schedule holds them
  bad = ~np.isfinite(table) | (table < 0)
  if bad.any():
    i = int(np.flatnonzero(bad)[0])
    raise ArgumentError("values", "must be finite (in float32) and >= 0, got "
                        f"{np.asarray(values)[i]!r} at step {i}.")
  rates = jnp.asarray(table, jnp.float32)

  def schedule(count):
    return rates[jnp.clip(jnp.asarray(count, jnp.int32), 0, table.size - 1)]

  return schedule
