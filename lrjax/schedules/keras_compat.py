r"""The schedules of ``keras.optimizers.schedules``, as pure ``step -> lr`` functions.

Keras calls a schedule with the optimizer's ``iterations``, the number of updates
applied so far: the same step as optax's count, so ``schedule(i)`` is the rate of the
``i``-th update (0-based) in both.  The formulas are those of the Keras documentation
(and source, Keras 3.15), evaluated in float32 without the cancellations of the
literal expressions (``1 + cos`` near the minimum, ``t / D`` rounded before a power).
``porting.from_keras`` maps every class name to these functions.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules import _growth
from lrjax.schedules._numerics import cosine_weights, linear_weights
from lrjax.schedules._numerics import f32 as _f32
from lrjax.schedules._numerics import float_step as _step
from lrjax.schedules.base import Schedule


def piecewise_constant_decay(boundaries, values) -> Schedule:
  """Keras' ``PiecewiseConstantDecay``: ``values[0]`` while ``t <= boundaries[0]``,
  ``values[i]`` while ``boundaries[i-1] < t <= boundaries[i]``, ``values[-1]`` after.

  Note Keras' inclusive right ends: the first value is used for ``boundaries[0] + 1``
  steps (``optax.piecewise_constant_schedule`` multiplies scales instead).

  Args:
    boundaries: increasing non-negative steps (a list or an int array).
    values: ``len(boundaries) + 1`` rates, each finite and >= 0 (may be traced).

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.piecewise_constant_decay([3, 6], [1.0, 0.5, 0.1])
    >>> [round(float(sched(t)), 6) for t in (3, 4, 6, 7)]
    [1.0, 0.5, 0.5, 0.1]
  """
  if _validation.is_concrete(boundaries):
    _validation.check_non_negative_int_list("boundaries", boundaries)
    marks = np.asarray(boundaries)
    if not np.all(np.diff(marks) > 0):
      raise ArgumentError("boundaries", f"must be increasing, got {boundaries!r}.")
  _validation.check_non_negative_list("values", values)
  if _validation.is_concrete(values) and _validation.is_concrete(boundaries):
    if np.shape(values)[-1:] != (np.shape(boundaries)[-1] + 1,):
      raise ArgumentError("values", f"must have len(boundaries) + 1 = {len(boundaries) + 1} "
                          f"entries, got {np.shape(values)}.")

  def schedule(count):
    t = _step(count)
    marks = _f32(boundaries).reshape(-1)
    index = jnp.sum((t[..., None] > marks).astype(jnp.int32), axis=-1)
    return jnp.take(_f32(values).reshape(-1), index).astype(jnp.float32)

  return schedule


def keras_cosine_decay(initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                       warmup_target: float | None = None,
                       warmup_steps: int = 0) -> Schedule:
  r"""Keras' ``CosineDecay``, with its optional linear warm-up.

  Without ``warmup_target``: :math:`lr_0 ((1 - \alpha) c(\min(t, D) / D) + \alpha)`,
  :math:`c(p) = (1 + \cos \pi p) / 2`.  With ``warmup_target`` (``W = warmup_steps``):
  linear from ``initial_learning_rate`` to ``warmup_target`` over ``W`` steps, then the
  cosine from ``warmup_target`` to ``alpha * warmup_target`` over ``D`` steps, then
  ``alpha * warmup_target``.  (Keras ignores ``warmup_steps`` when ``warmup_target`` is
  None; so does this function.)

  Args:
    initial_learning_rate: the rate at step 0, > 0 (>= 0 with a warm-up).
    decay_steps: ``D``, positive int.
    alpha: final rate as a fraction of the decayed-from rate, in [0, 1].
    warmup_target: the rate reached after the warm-up, > 0, or None.
    warmup_steps: ``W``, int >= 0.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.keras_cosine_decay(0.0, 10, alpha=0.1, warmup_target=0.1, warmup_steps=5)
    >>> [round(float(sched(t)), 6) for t in (0, 5, 10, 15, 99)]
    [0.0, 0.1, 0.055, 0.01, 0.01]
  """
  if warmup_target is None:
    _validation.check_positive("initial_learning_rate", initial_learning_rate)
  else:
    _validation.check_non_negative("initial_learning_rate", initial_learning_rate)
    _validation.check_positive("warmup_target", warmup_target)
  _validation.check_positive_int("decay_steps", decay_steps)
  _validation.check_in_range("alpha", alpha, 0.0, 1.0)
  _validation.check_non_negative_int("warmup_steps", warmup_steps)

  def decay(elapsed, start):
    w_start, w_end = cosine_weights(elapsed, _f32(decay_steps))
    return start * (w_start + _f32(alpha) * w_end)

  def schedule(count):
    t = _step(count)
    d = _f32(decay_steps)
    if warmup_target is None:
      return decay(jnp.minimum(t, d), _f32(initial_learning_rate)).astype(jnp.float32)
    w = _f32(warmup_steps)
    target = _f32(warmup_target)
    safe_w = jnp.maximum(w, 1.0)
    w_init, w_target = linear_weights(jnp.minimum(t, safe_w), safe_w)
    up = _f32(initial_learning_rate) * w_init + target * w_target
    down = decay(jnp.clip(t - w, 0.0, d), target)
    return jnp.where(t < w, up, down).astype(jnp.float32)

  return schedule


def keras_cosine_decay_restarts(initial_learning_rate: float, first_decay_steps: int,
                                t_mul: float = 2.0, m_mul: float = 1.0,
                                alpha: float = 0.0) -> Schedule:
  r"""Keras' ``CosineDecayRestarts`` (SGDR): cycles of length :math:`T_0 t_{mul}^i`.

  Cycle ``i`` starts at :math:`S_i = T_0 (t_{mul}^i - 1) / (t_{mul} - 1)` (``i T_0``
  for ``t_mul = 1``); with :math:`p = (t - S_i) / (T_0 t_{mul}^i)` the rate is

  .. math:: lr_0 \bigl((1 - \alpha)\, m_{mul}^i\, (1 + \cos \pi p)/2 + \alpha\bigr)

  (``alpha`` is not scaled by ``m_mul``, as in Keras).  The cycle index is computed in
  closed form and corrected at the restarts, so a step on a restart is never put in
  the previous cycle (Keras' float32 ``log`` can).  With an integer ``t_mul`` the
  restarts are integers and exact; a fractional ``t_mul`` has float32 restarts.

  Args:
    initial_learning_rate: > 0.
    first_decay_steps: ``T_0`` > 0.
    t_mul: cycle-length factor, >= 1 (Keras' ``t_mul < 1`` runs out of cycles).
    m_mul: rate factor per restart, in [0, 1].
    alpha: floor as a fraction of ``initial_learning_rate``, in [0, 1].

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.keras_cosine_decay_restarts(0.1, 10, t_mul=2.0, m_mul=0.5)
    >>> [round(float(sched(t)), 6) for t in (0, 5, 10, 20, 30)]
    [0.1, 0.05, 0.05, 0.025, 0.025]
  """
  _validation.check_positive("initial_learning_rate", initial_learning_rate)
  _validation.check_positive("first_decay_steps", first_decay_steps)
  _validation.check_in_range("t_mul", t_mul, 1.0, 1e6)
  _validation.check_in_range("m_mul", m_mul, 0.0, 1.0)
  _validation.check_in_range("alpha", alpha, 0.0, 1.0)

  def schedule(count):
    t = _step(count)
    t0 = _f32(first_decay_steps)
    m = _f32(t_mul)
    geometric = m > 1.0
    m_safe = jnp.where(geometric, m, 2.0)
    integral = geometric & (m_safe == jnp.round(m_safe))

    def start(i):
      s = t0 * (jnp.power(m_safe, i) - 1.0) / (m_safe - 1.0)
      return jnp.where(integral & (t0 == jnp.round(t0)), jnp.round(s), s)

    guess = jnp.floor(jnp.log1p(t / t0 * (m_safe - 1.0)) / jnp.log(m_safe))
    guess = jnp.maximum(guess, 0.0)
    guess = guess - (t < start(guess)).astype(jnp.float32)
    guess = guess + (t >= start(guess + 1.0)).astype(jnp.float32)
    elapsed_geo = t - start(guess)
    length_geo = start(guess + 1.0) - start(guess)

    elapsed_lin = jnp.mod(t, t0)
    restart = jnp.where(geometric, guess, jnp.round((t - elapsed_lin) / t0))
    elapsed = jnp.where(geometric, elapsed_geo, elapsed_lin)
    length = jnp.where(geometric, length_geo, t0)
    w_top, _ = cosine_weights(jnp.clip(elapsed, 0.0, length), length)
    a = _f32(alpha)
    factor = jnp.power(_f32(m_mul), restart)
    return (_f32(initial_learning_rate) * ((1.0 - a) * factor * w_top + a)).astype(
        jnp.float32)

  return schedule


def keras_exponential_decay(initial_learning_rate: float, decay_steps: float,
                            decay_rate: float, staircase: bool = False, *,
                            lr_cap: float | None = None) -> Schedule:
  r"""Keras' ``ExponentialDecay``: :math:`lr_0\,r^{t / D}`
  (``staircase``: :math:`r^{\lfloor t/D \rfloor}`).

  ``decay_rate > 1`` grows and needs ``lr_cap`` (the rate is then ``min(.., lr_cap)``).
  The exponential is evaluated with a stopped clock (``lrjax.schedules._growth``), so the
  rate is finite at every int32 step, decaying or growing.

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.keras_exponential_decay(0.1, 10, 0.5)(t)), 6) for t in (0, 5, 10)]
    [0.1, 0.070711, 0.05]
  """
  _validation.check_positive("initial_learning_rate", initial_learning_rate)
  _validation.check_positive("decay_steps", decay_steps)
  _validation.check_positive("decay_rate", decay_rate)
  _validation.check_bool("staircase", staircase)
  grows = _validation.is_concrete(decay_rate) and np.any(np.asarray(decay_rate) > 1)
  if grows and lr_cap is None:
    raise ArgumentError("decay_rate", f"= {decay_rate!r} > 1 makes the rate grow without "
                        "bound: pass `lr_cap`, the largest rate allowed.")
  if lr_cap is None:  # a decay: the cap is the initial rate (finite at every step)
    lr_cap = initial_learning_rate
  else:
    _growth.check_cap("lr_cap", lr_cap, "initial_learning_rate", initial_learning_rate)
  log_rate = _growth.log_of(decay_rate)
  if not staircase:
    # exp(log(r) / D * t): the per-step exponent in float64 when concrete, then split.
    steps = (np.asarray(decay_steps, np.float64) if _validation.is_concrete(decay_steps)
             else _f32(decay_steps))
    return _growth.capped_exponential(initial_learning_rate, log_rate / steps, lr_cap)
  capped = _growth.capped_exponential(initial_learning_rate, log_rate, lr_cap)

  def schedule(count):
    return capped(jnp.floor_divide(_step(count), _f32(decay_steps)))

  return schedule


def keras_inverse_time_decay(initial_learning_rate: float, decay_steps: float,
                             decay_rate: float, staircase: bool = False) -> Schedule:
  r"""Keras' ``InverseTimeDecay``: :math:`lr_0 / (1 + r\,p)`, :math:`p = t / D`
  (``staircase``: :math:`\lfloor t / D \rfloor`).

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.keras_inverse_time_decay(0.1, 10, 0.5, True)(t)), 6) for t in (9, 10)]
    [0.1, 0.066667]
  """
  _validation.check_positive("initial_learning_rate", initial_learning_rate)
  _validation.check_positive("decay_steps", decay_steps)
  _validation.check_non_negative("decay_rate", decay_rate)
  _validation.check_bool("staircase", staircase)

  def schedule(count):
    p = _step(count) / _f32(decay_steps)
    if staircase:
      p = jnp.floor_divide(_step(count), _f32(decay_steps))
    return (_f32(initial_learning_rate) / (1.0 + _f32(decay_rate) * p)).astype(jnp.float32)

  return schedule


def keras_polynomial_decay(initial_learning_rate: float, decay_steps: float,
                           end_learning_rate: float = 0.0001, power: float = 1.0,
                           cycle: bool = False) -> Schedule:
  r"""Keras' ``PolynomialDecay``: :math:`(lr_0 - e)(1 - p)^{power} + e`, :math:`p = \min(t, D)/D`.

  With ``cycle=True`` the horizon is the first multiple of ``D`` at or above ``t``
  (``D`` itself at ``t = 0``): :math:`D' = D \lceil t / D \rceil`, :math:`p = t / D'`.
  ``end_learning_rate`` may exceed ``initial_learning_rate`` (an increasing ramp).

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.keras_polynomial_decay(0.1, 10, 0.0, power=2.0, cycle=True)
    >>> [round(float(sched(t)), 6) for t in (0, 5, 10, 15)]
    [0.1, 0.025, 0.0, 0.00625]
  """
  _validation.check_non_negative("initial_learning_rate", initial_learning_rate)
  _validation.check_positive("decay_steps", decay_steps)
  _validation.check_non_negative("end_learning_rate", end_learning_rate)
  _validation.check_positive("power", power)
  _validation.check_bool("cycle", cycle)

  def schedule(count):
    t = _step(count)
    d = _f32(decay_steps)
    if cycle:
      horizon = d * jnp.maximum(jnp.ceil(t / d), 1.0)
      elapsed = t
    else:
      horizon, elapsed = d, jnp.minimum(t, d)
    remaining = (horizon - elapsed) / horizon  # 1 - p without cancellation
    # (lr0 - e) w + e = lr0 w + e (1 - w), w = (1 - p)^power: two terms >= 0, and
    # 1 - w = -expm1(power log(1 - p)) accurate where w is close to 1
    log_remaining = jnp.log(remaining)
    w = jnp.clip(jnp.power(remaining, _f32(power)), 0.0, 1.0)
    one_minus_w = jnp.clip(-jnp.expm1(_f32(power) * log_remaining), 0.0, 1.0)
    return (_f32(initial_learning_rate) * w + _f32(end_learning_rate) * one_minus_w).astype(
        jnp.float32)

  return schedule


__all__ = ["piecewise_constant_decay", "keras_cosine_decay", "keras_cosine_decay_restarts",
           "keras_exponential_decay", "keras_inverse_time_decay", "keras_polynomial_decay"]
