"""Cosine annealing (survey eq 2.7) and cosine annealing with warm restarts (SGDR)."""

from __future__ import annotations

import jax.numpy as jnp

from lrjax import _validation
from lrjax.schedules._numerics import cosine_weights
from lrjax.schedules._numerics import f32 as _f32
from lrjax.schedules._numerics import float_step as _step
from lrjax.schedules.base import Schedule


def _cosine(min_lr, max_lr, elapsed, length):
  w_max, w_min = cosine_weights(elapsed, length)
  # w_max + w_min may round to 1 - 1 ulp: never fall below min_lr (e.g. min = max).
  return jnp.maximum(max_lr * w_max + min_lr * w_min, min_lr)


def cosine_annealing(max_lr: float, total_steps: int, min_lr: float = 0.0, *,
                     periodic: bool = False) -> Schedule:
  r"""Cosine annealing from ``max_lr`` to ``min_lr`` (survey eq 2.7):

  .. math:: \eta_t = \eta_{\min} + \tfrac12(\eta_{\max} - \eta_{\min})
            \Bigl(1 + \cos\frac{\pi \min(t, T)}{T}\Bigr)

  For ``0 <= t <= T`` this is the closed form of PyTorch's
  ``CosineAnnealingLR(T_max=T, eta_min=min_lr)`` with base rate ``max_lr``, and
  ``optax.cosine_decay_schedule(max_lr, T, alpha=min_lr / max_lr)``.  After ``T``
  steps the rate stays at ``min_lr``; ``periodic=True`` continues the cosine past
  ``T`` as PyTorch's ``CosineAnnealingLR`` does (back up to ``max_lr`` at ``2T``, down
  again at ``3T``: period ``2T``).  Use :func:`cosine_warm_restarts` for restarts.

  Args:
    max_lr: initial (maximum) rate, > 0.
    total_steps: ``T``, the step at which ``min_lr`` is reached (positive int).
    min_lr: final (minimum) rate, in [0, max_lr].
    periodic: False (default): hold ``min_lr`` after ``T``; True: PyTorch's cosine of
      period ``2T`` for every step.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.cosine_annealing(0.1, 100, min_lr=0.001)
    >>> [round(float(sched(t)), 6) for t in (0, 50, 100, 200)]
    [0.1, 0.0505, 0.001, 0.001]
  """
  _validation.check_positive("max_lr", max_lr)
  _validation.check_positive_int("total_steps", total_steps)
  _validation.check_non_negative("min_lr", min_lr)
  _validation.check_less_equal("min_lr", min_lr, "max_lr", max_lr)
  _validation.check_bool("periodic", periodic)

  def schedule(count):
    total = _f32(total_steps)
    if periodic:  # t mod 2T, folded onto [0, T]; integer arithmetic, exact for int32
      t = jnp.maximum(jnp.asarray(count, jnp.int32), 0)
      length = jnp.asarray(total_steps, jnp.int32)
      into, half = jnp.mod(t, length), jnp.mod(jnp.floor_divide(t, length), 2)
      elapsed = jnp.where(half == 0, into, length - into).astype(jnp.float32)
    else:
      elapsed = jnp.minimum(_step(count), total)
    return _cosine(_f32(min_lr), _f32(max_lr), elapsed, total).astype(jnp.float32)

  return schedule


def cosine_warm_restarts(max_lr: float, first_cycle_steps: int,
                         cycle_mult: int = 1, min_lr: float = 0.0) -> Schedule:
  r"""Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017).

  .. math:: \eta_t = \eta_{\min} + \tfrac12(\eta_{\max} - \eta_{\min})
            \Bigl(1 + \cos\frac{\pi T_{cur}}{T_i}\Bigr)

  Cycle ``i`` (from 0) lasts :math:`T_i = T_0\,m^i` steps and starts at
  :math:`S_i = T_0 (m^i - 1)/(m - 1)` (:math:`S_i = i\,T_0` for ``m = 1``);
  :math:`T_{cur} = t - S_i`.  The rate jumps back to ``max_lr`` at each restart.
  Same semantics as PyTorch's ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``
  (and ``optax.sgdr_schedule`` with cosine cycles of lengths ``T_i``).

  Args:
    max_lr: rate at the start of every cycle, > 0.
    first_cycle_steps: ``T_0``, length of the first cycle (positive int).
    cycle_mult: ``T_mult``, growth factor of the cycle length (positive int).
    min_lr: the rate the cosine reaches at the end of a cycle, in [0, max_lr].

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.cosine_warm_restarts(0.1, 10, cycle_mult=2)
    >>> [round(float(sched(t)), 6) for t in (0, 5, 10, 20, 30)]
    [0.1, 0.05, 0.1, 0.05, 0.1]
  """
  _validation.check_positive("max_lr", max_lr)
  _validation.check_positive_int("first_cycle_steps", first_cycle_steps)
  _validation.check_positive_int("cycle_mult", cycle_mult)
  _validation.check_non_negative("min_lr", min_lr)
  _validation.check_less_equal("min_lr", min_lr, "max_lr", max_lr)

  def schedule(count):
    t = _step(count)
    t0 = _f32(first_cycle_steps)
    m = _f32(cycle_mult)
    geometric = m > 1.0
    m_safe = jnp.where(geometric, m, 2.0)

    def start(i):
      # Integer-valued: rounding removes the error of the float power.
      return jnp.round(t0 * (jnp.power(m_safe, i) - 1.0) / (m_safe - 1.0))

    # Closed form of the cycle index, then corrected by one where float rounding
    # put a step that lies exactly on a restart into the wrong cycle.
    guess = jnp.floor(jnp.log1p(t / t0 * (m_safe - 1.0)) / jnp.log(m_safe))
    guess = jnp.maximum(guess, 0.0)
    guess = guess - (t < start(guess)).astype(jnp.float32)
    guess = guess + (t >= start(guess + 1.0)).astype(jnp.float32)
    t_cur_geo = t - start(guess)
    t_i_geo = jnp.round(t0 * jnp.power(m_safe, guess))

    t_cur = jnp.where(geometric, t_cur_geo, jnp.mod(t, t0))
    t_i = jnp.where(geometric, t_i_geo, t0)
    return _cosine(_f32(min_lr), _f32(max_lr), t_cur, t_i).astype(jnp.float32)

  return schedule


__all__ = ["cosine_annealing", "cosine_warm_restarts"]
