"""Building blocks shared by every schedule: the constant rate and `switch`."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import chex

from lrjax import _validation

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
  ``jax.vmap``-ed program: ``index`` is part of the vmapped data.  Out-of-range
  indices are clamped, as ``jax.lax.switch`` does.

  Example:
    >>> import jax, jax.numpy as jnp, lrjax
    >>> bank = [lrjax.schedules.seq1(0.01), lrjax.schedules.seq3(0.01)]
    >>> lrs = jax.vmap(lambda i: lrjax.schedules.switch(bank, i)(2))(jnp.arange(2))
  """
  if len(schedules) == 0:
    raise ValueError("`schedules` must not be empty.")
  branches = [lambda c, s=s: jnp.asarray(s(c), jnp.float32) for s in schedules]

  def schedule(count):
    return jax.lax.switch(jnp.asarray(index, jnp.int32), branches, count)

  return schedule
