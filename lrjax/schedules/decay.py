"""Monotone decays of the rate: step, exponential, inverse-time, polynomial, Keras.

Formulas of the survey (eqs 2.1-2.6) and of the Keras article, indexed by the step
``t`` that optax passes (the number of updates applied so far, or the epoch when a
schedule is advanced once per epoch).  Steps before 0 are treated as 0.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lrjax import _validation
from lrjax.schedules import _growth
from lrjax.schedules._numerics import exp_times, pow_f32
from lrjax.schedules._numerics import f32 as _f32
from lrjax.schedules._numerics import float_step as _step
from lrjax.schedules.base import Schedule


def _check_drop(drop) -> None:
  _validation.check_in_range("drop", drop, 0.0, 1.0, low_open=True)


def step_decay(r0: float, drop: float = 0.5, step_size: float = 10) -> Schedule:
  r"""Step decay (survey eq 2.2): :math:`r_t = r_0\,\mathrm{drop}^{\lfloor t / k\rfloor}`.

  The rate is multiplied by ``drop`` every ``step_size`` (``k``) steps.  Equal to
  PyTorch's ``StepLR(step_size=k, gamma=drop)`` and to
  ``optax.exponential_decay(r0, k, drop, staircase=True)``.

  Args:
    r0: initial rate, > 0.
    drop: factor applied every ``step_size`` steps, in (0, 1].
    step_size: steps between two drops, > 0.

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.step_decay(0.1, 0.5, 10)(t)), 6) for t in (0, 9, 10, 25)]
    [0.1, 0.1, 0.05, 0.025]
  """
  _validation.check_positive("r0", r0)
  _check_drop(drop)
  _validation.check_positive("step_size", step_size)

  def schedule(count):
    n = jnp.floor_divide(_step(count), _f32(step_size))
    return (_f32(r0) * pow_f32(drop, n)).astype(jnp.float32)

  return schedule


def keras_step_decay(r0: float, drop: float = 0.5,
                     epochs_drop: float = 10) -> Schedule:
  r"""Step decay as the Keras article and the survey's toy example write it:

  .. math:: r_e = r_0\,\mathrm{drop}^{\lfloor (1 + e) / \mathrm{epochs\_drop}\rfloor}

  ``e`` is the 0-based epoch that Keras' ``LearningRateScheduler`` passes, so the
  rate drops one epoch earlier than :func:`step_decay` (at ``e = 9, 19, ...`` for
  ``epochs_drop = 10``).

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.keras_step_decay(0.1, 0.5, 10)(e)), 6) for e in (0, 8, 9)]
    [0.1, 0.1, 0.05]
  """
  _validation.check_positive("r0", r0)
  _check_drop(drop)
  _validation.check_positive("epochs_drop", epochs_drop)

  def schedule(count):
    n = jnp.floor_divide(1.0 + _step(count), _f32(epochs_drop))
    return (_f32(r0) * pow_f32(drop, n)).astype(jnp.float32)

  return schedule


def exponential_decay(r0: float, k: float, *, lr_cap: float | None = None) -> Schedule:
  r"""Exponential decay (survey eqs 2.3 / 2.6): :math:`r_t = r_0 e^{-k t}`.

  Equal to PyTorch's ``ExponentialLR(gamma=exp(-k))`` and to
  ``optax.exponential_decay(r0, 1, exp(-k))``.

  Growth (PyTorch's ``ExponentialLR`` with ``gamma > 1``, i.e. ``k < 0``) is refused
  unless ``lr_cap`` is given: then :math:`r_t = \min(r_0 e^{-k t}, \mathrm{lr\_cap})`,
  finite at every step (float32 ``gamma ** t`` would overflow to inf).

  Args:
    r0: initial rate, > 0.
    k: decay rate, >= 0 (``k = 0`` is the constant rate); any finite ``k`` (``k < 0``:
      growth) when ``lr_cap`` is given.
    lr_cap: optional cap on the rate, in [r0, 1e30 r0]; required for growth.

  Example:
    >>> import lrjax.schedules as s
    >>> round(float(s.exponential_decay(1.0, 0.05)(20)), 6)  # exp(-1)
    0.367879
  """
  if lr_cap is not None:  # growth allowed: see lrjax.schedules._growth
    _validation.check_positive("r0", r0)
    _validation.check_finite("k", k)
    _growth.check_cap("lr_cap", lr_cap, "r0", r0)
    return _growth.capped_exponential(r0, -np.asarray(k, np.float64)
                                      if _validation.is_concrete(k) else -_f32(k), lr_cap)
  _growth.refuse_growth("k", k, lambda value: value < 0)
  _validation.check_positive("r0", r0)
  _validation.check_non_negative("k", k)

  def schedule(count):
    return (_f32(r0) * exp_times(-k, _step(count))).astype(jnp.float32)

  return schedule


def inverse_time_decay(r0: float, k: float) -> Schedule:
  r"""Inverse-time ("1/t") decay (survey eqs 2.1 / 2.4): :math:`r_t = r_0 / (1 + k t)`.

  Args:
    r0: initial rate, > 0.
    k: decay rate, >= 0.

  Example:
    >>> import lrjax.schedules as s
    >>> round(float(s.inverse_time_decay(0.1, 0.5)(2)), 6)
    0.05
  """
  _validation.check_positive("r0", r0)
  _validation.check_non_negative("k", k)

  def schedule(count):
    return (_f32(r0) / (1.0 + _f32(k) * _step(count))).astype(jnp.float32)

  return schedule


def keras_time_based_decay(learning_rate: float, decay: float) -> Schedule:
  r"""Keras' time-based decay, as legacy Keras SGD applies its ``decay`` argument.

  .. math:: \mathrm{lr}_t = \frac{\mathrm{lr}_0}{1 + \mathrm{decay}\cdot t}

  Legacy Keras (``keras.optimizers.SGD(lr, decay=...)``, Keras 2 /
  ``tf.keras.optimizers.legacy.SGD``) computes, at every update,
  ``lr_t = lr * (1 / (1 + decay * iterations))`` where ``iterations`` is the number
  of updates (batches) applied before this one.  So the decay is applied **per
  iteration, not per epoch**, and it is **not compounded**: the article's
  ``lr *= (1. / (1. + self.decay * self.iterations))`` rescales a local copy of the
  constant ``lr`` each step.  ``t`` is therefore exactly optax's update count, and
  the article's ``decay = lr / epochs`` is a per-iteration rate.  The formula is that
  of :func:`inverse_time_decay`; this name documents the Keras semantics.

  Args:
    learning_rate: the optimizer's ``lr``, > 0.
    decay: Keras' ``decay``, >= 0 (0 is Keras' default: constant rate).

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.keras_time_based_decay(0.1, decay=0.1 / 100)
    >>> round(float(sched(1000)), 6)  # after 1000 batches: 0.1 / 2
    0.05
  """
  _validation.check_positive("learning_rate", learning_rate)
  _validation.check_non_negative("decay", decay)

  def schedule(count):
    iterations = _step(count)
    return (_f32(learning_rate) / (1.0 + _f32(decay) * iterations)).astype(jnp.float32)

  return schedule


def polynomial_decay(r0: float, total_steps: int, power: float = 1.0,
                     end_value: float = 0.0) -> Schedule:
  r"""Polynomial decay (survey eq 2.5), clamped at ``total_steps``:

  .. math:: r_t = (r_0 - r_\mathrm{end})\Bigl(1 - \frac{\min(t, T)}{T}\Bigr)^{p}
            + r_\mathrm{end}

  With ``end_value = 0`` this is the survey's :math:`r_0 (1 - t/T)^p`; after ``T``
  steps it stays at ``end_value``.  Equal to
  ``optax.polynomial_schedule(r0, end_value, power, T)``.

  Args:
    r0: initial rate, > 0.
    total_steps: ``T``, the step at which ``end_value`` is reached (positive int).
    power: exponent ``p`` > 0 (1 is linear decay).
    end_value: final rate, in [0, r0].

  Example:
    >>> import lrjax.schedules as s
    >>> round(float(s.polynomial_decay(0.1, 100, power=2.0)(50)), 6)
    0.025
  """
  _validation.check_positive("r0", r0)
  _validation.check_positive_int("total_steps", total_steps)
  _validation.check_positive("power", power)
  _validation.check_non_negative("end_value", end_value)
  _validation.check_less_equal("end_value", end_value, "r0", r0)

  def schedule(count):
    total = _f32(total_steps)
    frac = (total - jnp.minimum(_step(count), total)) / total
    end = _f32(end_value)
    return ((_f32(r0) - end) * jnp.power(frac, _f32(power)) + end).astype(jnp.float32)

  return schedule


__all__ = [
    "step_decay", "keras_step_decay", "exponential_decay", "inverse_time_decay",
    "keras_time_based_decay", "polynomial_decay",
]
