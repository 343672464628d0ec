"""Composing schedules: one after another at step boundaries, or multiplied together.

``join`` is ``optax.join_schedules`` (PyTorch's ``SequentialLR``): the ``i``-th schedule
runs from ``boundaries[i-1]`` on, restarted at its own step 0, and the step may be a
traced array.  ``chained`` multiplies the factors ``s_k(t) / lr`` of schedules built on
one base rate ``lr`` (PyTorch's ``ChainedScheduler`` of multiplicative schedulers).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules.base import Schedule


def _check_schedules(schedules) -> None:
  if not isinstance(schedules, (list, tuple)) or len(schedules) == 0:
    raise ArgumentError("schedules", f"must be a non-empty list of schedules, got {schedules!r}.")
  for i, s in enumerate(schedules):
    if not callable(s):
      raise ArgumentError(f"schedules[{i}]", f"must be a callable step -> lr, got {s!r}.")


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
  """``schedules[i](t - boundaries[i-1])`` for ``boundaries[i-1] <= t < boundaries[i]``.

  ``optax.join_schedules`` with its arguments checked: ``len(boundaries) ==
  len(schedules) - 1``, boundaries non-negative, non-decreasing integers.  This is
  PyTorch's ``SequentialLR(schedulers, milestones=boundaries)``: at a milestone the next
  scheduler starts from its own step 0.  Boundaries may be traced (vmapped) arrays.

  Example:
    >>> import optax, lrjax.schedules as s
    >>> sched = s.join([optax.linear_schedule(0.0, 0.1, 5), s.cosine_annealing(0.1, 20)], [5])
    >>> [round(float(sched(t)), 6) for t in (0, 4, 5, 15, 25)]
    [0.0, 0.08, 0.1, 0.05, 0.0]
  """
  _check_schedules(schedules)
  _validation.check_non_negative_int_list("boundaries", boundaries, allow_empty=True)
  if len(boundaries) != len(schedules) - 1:
    raise ArgumentError("boundaries", f"must have len(schedules) - 1 = {len(schedules) - 1} "
                        f"entries, got {len(boundaries)}.")
  for b in boundaries:
    _validation.check_non_negative_int("boundaries", b)
  if all(_validation.is_concrete(b) for b in boundaries):
    if not np.all(np.diff(np.asarray(boundaries, np.int64)) >= 0):
      raise ArgumentError("boundaries", f"must be non-decreasing, got {list(boundaries)!r}.")
  joined = optax.join_schedules(list(schedules), list(boundaries))

  def schedule(count):
    return jnp.asarray(joined(jnp.maximum(jnp.asarray(count), 0)), jnp.float32)

  return schedule


def chained(lr: float, schedules: Sequence[Schedule]) -> Schedule:
  r"""The product :math:`lr \prod_k s_k(t) / lr` of schedules built on the base rate ``lr``.

  PyTorch's ``ChainedScheduler`` steps every scheduler on the same optimizer; for
  schedulers that multiply the current rate by a factor (``ConstantLR``, ``LinearLR``,
  ``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``PolynomialLR``,
  ``MultiplicativeLR``) the result is this product.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.chained(1.0, [s.constant_lr(1.0, 0.1, 2), s.exponential_decay(1.0, 0.1)])
    >>> [round(float(sched(t)), 6) for t in (0, 2)]
    [0.1, 0.818731]
  """
  _validation.check_positive("lr", lr)
  _check_schedules(schedules)

  def schedule(count):
    base = jnp.asarray(lr, jnp.float32)
    out = base
    for s in schedules:
      out = out * (jnp.asarray(s(count), jnp.float32) / base)
    return out.astype(jnp.float32)

  return schedule


__all__ = ["join", "chained"]
