r"""Today's practice: warm-ups in front of any schedule, warmup-stable-decay, inverse sqrt.

* :func:`warmup`: ``warmup_steps`` steps from ``init_lr`` up to the schedule's first
  rate (linear, cosine or exponential ramp), then the schedule, restarted at its step 0.
* :func:`warmup_stable_decay` (WSD; Hu et al. 2024 "MiniCPM", Hägele et al. 2024
  "Scaling laws and compute-optimal training beyond fixed training durations"): warm-up,
  a constant stage, then a cool-down that is linear, cosine or ``1 - sqrt``.
* :func:`inverse_sqrt`: the Transformer schedule (Vaswani et al. 2017), linear warm-up
  then :math:`\propto 1/\sqrt{t}`.
"""

from __future__ import annotations

import jax.numpy as jnp

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules._numerics import cosine_weights, exp_times, linear_weights
from lrjax.schedules._numerics import f32 as _f32
from lrjax.schedules.base import Schedule

WARMUPS = ("linear", "cosine", "exponential")
COOLDOWNS = ("linear", "cosine", "1-sqrt")


def _check_choice(name, value, choices):
  if value not in choices:
    raise ArgumentError(name, f"must be one of {choices}, got {value!r}.")


def _ramp(kind, start, end, elapsed, length):
  """From ``start`` (elapsed = 0) to ``end`` (elapsed = length), float32."""
  if kind == "exponential":  # start * (end / start) ** (elapsed / length)
    log_q = (jnp.log(end) - jnp.log(start)) / length
    return start * exp_times(log_q, elapsed)
  weights = cosine_weights if kind == "cosine" else linear_weights
  w_start, w_end = weights(elapsed, length)
  return start * w_start + end * w_end


def warmup(schedule: Schedule, warmup_steps: int, *, init_lr: float = 0.0,
           kind: str = "linear") -> Schedule:
  r"""``warmup_steps`` steps of ramp from ``init_lr`` to ``schedule(0)``, then ``schedule``.

  For ``t < W``: ``ramp(t)`` with ``ramp(0) = init_lr`` and ``ramp(W) = schedule(0)``;
  for ``t >= W``: ``schedule(t - W)`` (the schedule starts after the warm-up, as
  ``optax.join_schedules`` and PyTorch's ``SequentialLR`` do).  Ramps: ``"linear"``,
  ``"cosine"`` (half a cosine, :math:`(1 - \cos \pi t / W) / 2`) and ``"exponential"``
  (geometric, :math:`init (peak / init)^{t / W}`, needs ``init_lr > 0``).

  Args:
    schedule: any ``step -> lr`` callable (an lrjax or optax schedule).
    warmup_steps: ``W``, int >= 0 (0: the schedule itself).
    init_lr: rate at step 0, >= 0 (> 0 for ``kind="exponential"``), <= the peak.
    kind: ``"linear"``, ``"cosine"`` or ``"exponential"``.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.warmup(s.cosine_annealing(0.1, 100), 10)
    >>> [round(float(sched(t)), 6) for t in (0, 5, 10, 60)]
    [0.0, 0.05, 0.1, 0.05]
  """
  if not callable(schedule):
    raise ArgumentError("schedule", f"must be a callable step -> lr, got {schedule!r}.")
  _check_choice("kind", kind, WARMUPS)
  _validation.check_non_negative_int("warmup_steps", warmup_steps)
  if kind == "exponential":
    _validation.check_positive("init_lr", init_lr)
  else:
    _validation.check_non_negative("init_lr", init_lr)

  def warmed(count):
    t = jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)
    length = _f32(warmup_steps)
    peak = jnp.asarray(schedule(jnp.zeros((), jnp.int32)), jnp.float32)
    after = jnp.asarray(schedule(jnp.maximum(jnp.asarray(count) - warmup_steps, 0)),
                        jnp.float32)
    safe = jnp.maximum(length, 1.0)
    ramp = _ramp(kind, _f32(init_lr), peak, jnp.minimum(t, safe), safe)
    return jnp.where(t < length, ramp, after).astype(jnp.float32)

  return warmed


def warmup_stable_decay(peak_lr: float, warmup_steps: int, stable_steps: int,
                        decay_steps: int, *, init_lr: float = 0.0, final_lr: float = 0.0,
                        warmup_kind: str = "linear", cooldown: str = "linear") -> Schedule:
  r"""Warmup-stable-decay (WSD, "trapezoidal"): up, flat at ``peak_lr``, cool-down.

  With ``W, S, D`` the three lengths and :math:`p = (t - W - S) / D` in the cool-down:

  * ``t < W``: warm-up from ``init_lr`` to ``peak_lr`` (``warmup_kind`` as in :func:`warmup`);
  * ``W <= t < W + S``: ``peak_lr``;
  * cool-down to ``final_lr``: :math:`f + (peak - f)\,c(p)` with
    :math:`c = 1 - p` (``"linear"``), :math:`(1 + \cos \pi p)/2` (``"cosine"``) or
    :math:`1 - \sqrt{p}` (``"1-sqrt"``, Hägele et al. 2024);
  * ``t >= W + S + D``: ``final_lr``.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.warmup_stable_decay(0.1, 10, 80, 10, cooldown="1-sqrt")
    >>> [round(float(sched(t)), 6) for t in (0, 5, 50, 92, 100)]
    [0.0, 0.05, 0.1, 0.055279, 0.0]
  """
  _check_choice("warmup_kind", warmup_kind, WARMUPS)
  _check_choice("cooldown", cooldown, COOLDOWNS)
  _validation.check_positive("peak_lr", peak_lr)
  _validation.check_non_negative_int("warmup_steps", warmup_steps)
  _validation.check_non_negative_int("stable_steps", stable_steps)
  _validation.check_positive_int("decay_steps", decay_steps)
  if warmup_kind == "exponential":
    _validation.check_positive("init_lr", init_lr)
  else:
    _validation.check_non_negative("init_lr", init_lr)
  _validation.check_less_equal("init_lr", init_lr, "peak_lr", peak_lr)
  _validation.check_non_negative("final_lr", final_lr)
  _validation.check_less_equal("final_lr", final_lr, "peak_lr", peak_lr)

  def schedule(count):
    t = jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)
    w, s, d = _f32(warmup_steps), _f32(stable_steps), _f32(decay_steps)
    peak, final = _f32(peak_lr), _f32(final_lr)
    safe_w = jnp.maximum(w, 1.0)
    up = _ramp(warmup_kind, _f32(init_lr), peak, jnp.minimum(t, safe_w), safe_w)
    elapsed = jnp.clip(t - w - s, 0.0, d)
    if cooldown == "1-sqrt":
      p = elapsed / d
      # 1 - sqrt(p) = (1 - p) / (1 + sqrt(p)): no cancellation near p = 1
      w_peak = (d - elapsed) / d / (1.0 + jnp.sqrt(p))
      w_final = jnp.sqrt(p)
    else:
      weights = cosine_weights if cooldown == "cosine" else linear_weights
      w_peak, w_final = weights(elapsed, d)
    down = peak * w_peak + final * w_final
    return jnp.where(t < w, up, jnp.where(t < w + s, peak, down)).astype(jnp.float32)

  return schedule


def inverse_sqrt(peak_lr: float, warmup_steps: int) -> Schedule:
  r"""Inverse square root with linear warm-up, the Transformer schedule.

  .. math:: \mathrm{lr}_t = \mathrm{peak}\,\min\Bigl(\frac{s}{W}, \sqrt{\frac{W}{s}}\Bigr),
            \qquad s = t + 1

  Vaswani et al. (2017) write :math:`d^{-1/2} \min(s^{-1/2}, s W^{-3/2})` with the
  1-based step ``s``: that is this schedule with ``peak_lr = (d W)^{-1/2}``.  The peak
  is reached at ``t = W - 1``.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.inverse_sqrt(0.001, 4)
    >>> [round(float(sched(t)), 6) for t in (0, 3, 15)]
    [0.00025, 0.001, 0.0005]
  """
  _validation.check_positive("peak_lr", peak_lr)
  _validation.check_positive_int("warmup_steps", warmup_steps)

  def schedule(count):
    s = jnp.maximum(jnp.asarray(count, jnp.float32), 0.0) + 1.0
    w = _f32(warmup_steps)
    return (_f32(peak_lr) * jnp.minimum(s / w, jnp.sqrt(w / s))).astype(jnp.float32)

  return schedule


__all__ = ["WARMUPS", "COOLDOWNS", "warmup", "warmup_stable_decay", "inverse_sqrt"]
