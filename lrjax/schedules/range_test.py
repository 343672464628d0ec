"""The learning-rate range test ramp (Smith 2015; range-test / one-cycle document)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lrjax import _validation
from lrjax.schedules._numerics import exp_times
from lrjax.schedules.base import Schedule


def lr_range_test(init_lr: float, max_lr: float, num_steps: int) -> Schedule:
  r"""Exponential ramp of the range test: :math:`lr_i = init\,(max / init)^{i / n}`.

  The rate is multiplied by :math:`q = (max/init)^{1/n}` after every mini-batch, so
  it reaches ``max_lr`` after ``n = num_steps`` steps and stays there (the test is
  normally stopped earlier, when the loss explodes).

  Args:
    init_lr: starting rate (1e-4 or 1e-3 in the document), > 0.
    max_lr: rate after ``num_steps`` steps (10 or 100 in the document), >= init_lr.
    num_steps: ``n``, number of mini-batches of the test (positive int).

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.lr_range_test(1e-4, 10.0, 100)
    >>> [round(float(sched(i)), 6) for i in (0, 40, 100)]
    [0.0001, 0.01, 10.0]
  """
  _validation.check_positive("init_lr", init_lr)
  _validation.check_positive("max_lr", max_lr)
  _validation.check_less_equal("init_lr", init_lr, "max_lr", max_lr)
  _validation.check_positive_int("num_steps", num_steps)

  concrete = all(_validation.is_concrete(v) for v in (init_lr, max_lr, num_steps))

  def schedule(count):
    n = jnp.asarray(num_steps, jnp.float32)
    i = jnp.clip(jnp.asarray(count, jnp.float32), 0.0, n)
    init = jnp.asarray(init_lr, jnp.float32)
    # log(q) = log(max / init) / n, in float64 when concrete; exp_times(log q, i)
    # then keeps the float32 result within a few ulps of init * q**i.
    log_q: np.ndarray | jax.Array
    if concrete:
      log_q = (np.log(np.asarray(max_lr, np.float64) / np.asarray(init_lr, np.float64))
               / np.asarray(num_steps, np.float64))
    else:
      log_q = jnp.log(jnp.asarray(max_lr, jnp.float32) / init) / n
    return jnp.maximum(init * exp_times(log_q, i), init).astype(jnp.float32)

  return schedule


__all__ = ["lr_range_test"]
