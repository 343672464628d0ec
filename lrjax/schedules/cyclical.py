r"""Cyclical learning rates (Smith, "Cyclical learning rates for training neural networks").

Two independent choices describe a cyclical schedule:

* ``mode``, Smith's amplitude policy (PyTorch ``CyclicLR`` semantics):
  ``"triangular"`` (constant amplitude), ``"triangular2"`` (amplitude halved every
  cycle) and ``"exp_range"`` (amplitude scaled by ``gamma**t``);
* ``window``, the shape of one cycle (the survey's list): ``"triangular"`` (linear),
  ``"welch"`` (parabolic) and ``"hann"`` (sinusoidal).

With ``u`` the triangular wave (0 at the start of a cycle, 1 after ``step_size`` steps,
back to 0 after ``step_size_down`` more):

.. math:: \mathrm{lr}_t = \mathrm{min} + (\mathrm{max} - \mathrm{min})\,w(u)\,s(t),
   \quad w(u) \in \{u,\ 1 - (1 - u)^2,\ \tfrac12(1 - \cos \pi u)\}.

For a symmetric cycle with phase ``x`` in [0, 1) (``u = 1 - |2x - 1|``) the Welch
window is ``1 - (2x - 1)^2`` and the Hann window ``sin^2(pi x)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lrjax import _validation
from lrjax.schedules import _growth
from lrjax.schedules._numerics import f32 as _f32
from lrjax.schedules._numerics import pow_f32
from lrjax.schedules.base import Schedule

MODES = ("triangular", "triangular2", "exp_range")
WINDOWS = ("triangular", "welch", "hann")


def cyclical(min_lr: float, max_lr: float, step_size: float, *,
             step_size_down: float | None = None, mode: str = "triangular",
             gamma: float = 1.0, window: str = "triangular",
             lr_cap: float | None = None) -> Schedule:
  r"""Cyclical learning rate between ``min_lr`` and ``max_lr``.

  With the triangular window this is PyTorch's
  ``CyclicLR(base_lr=min_lr, max_lr=max_lr, step_size_up=step_size,
  step_size_down=step_size_down, mode=mode, gamma=gamma)``: cycle
  :math:`c = \lfloor 1 + t / (s_{up} + s_{down}) \rfloor`, position in the cycle
  :math:`p = t \bmod (s_{up} + s_{down})`, triangle
  :math:`u = p / s_{up}` while :math:`p \le s_{up}`, else
  :math:`(s_{up} + s_{down} - p) / s_{down}`, and amplitude scale
  :math:`s = 1`, :math:`2^{1 - c}` or :math:`\gamma^t` for ``mode`` triangular,
  triangular2, exp_range.  ``window`` reshapes ``u`` (see the module docstring).

  Args:
    min_lr: lower bound (PyTorch's ``base_lr``), >= 0.
    max_lr: upper bound, >= ``min_lr`` and > 0.
    step_size: steps from ``min_lr`` up to ``max_lr`` (half a cycle), > 0.
    step_size_down: steps back down, > 0; defaults to ``step_size``.
    mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
    gamma: exp_range's per-step amplitude factor, in (0, 1]; any ``gamma > 0`` when
      ``lr_cap`` is given (``gamma > 1``: PyTorch's growing amplitude).
    window: ``"triangular"``, ``"welch"`` or ``"hann"``.
    lr_cap: optional cap on the rate, >= ``max_lr`` (at most 1e15); required for
      ``gamma > 1``: the rate is ``min(lr, lr_cap)``, finite at every step.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.cyclical(0.001, 0.006, 5, mode="triangular2")
    >>> [round(float(sched(t)), 6) for t in (0, 5, 10, 15, 20)]
    [0.001, 0.006, 0.001, 0.0035, 0.001]
  """
  _validation.check_choice("mode", mode, MODES)
  _validation.check_choice("window", window, WINDOWS)
  _validation.check_non_negative("min_lr", min_lr)
  _validation.check_positive("max_lr", max_lr)
  _validation.check_less_equal("min_lr", min_lr, "max_lr", max_lr)
  _validation.check_positive("step_size", step_size)
  if step_size_down is None:
    step_size_down = step_size
  _validation.check_positive("step_size_down", step_size_down)
  if lr_cap is None:
    if mode == "exp_range":
      _growth.refuse_growth("gamma", gamma, lambda g: g > 1)
    _validation.check_in_range("gamma", gamma, 0.0, 1.0, low_open=True)
  else:  # growth allowed (gamma > 1), see lrjax.schedules._growth
    _validation.check_positive("gamma", gamma)
    _growth.check_cap("lr_cap", lr_cap, "max_lr", max_lr)
    _validation.check_in_range("lr_cap", lr_cap, 0.0, 1e15)

  def schedule(count):
    t = jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)
    up = _f32(step_size)
    down = _f32(step_size_down)
    total = up + down
    pos = jnp.mod(t, total)  # exact (fmod), unlike 1 + t/total - cycle
    u = jnp.where(pos <= up, pos / up, (total - pos) / down)
    if window == "welch":
      w = u * (2.0 - u)
    elif window == "hann":
      w = jnp.sin(0.5 * jnp.pi * u) ** 2  # (1 - cos(pi u)) / 2, accurate near 0
    else:
      w = u
    scale: jax.Array | float
    if mode == "triangular2":
      cycle = jnp.round((t - pos) / total) + 1.0
      scale = jnp.exp2(1.0 - cycle)
    elif mode == "exp_range" and lr_cap is not None:
      return _capped_exp_range(_f32(min_lr), _f32(max_lr), w, gamma, t, lr_cap)
    elif mode == "exp_range":
      scale = pow_f32(gamma, t)
    else:
      scale = 1.0
    lo = _f32(min_lr)
    return (lo + (_f32(max_lr) - lo) * w * scale).astype(jnp.float32)

  return schedule


def _capped_exp_range(lo, hi, w, gamma, t, lr_cap):
  """``min(lo + (hi - lo) w gamma^t, lr_cap)`` without overflow.

  Past the step where ``gamma^t`` exceeds ``2**64 (lr_cap - lo) / (hi - lo)`` every
  window value ``w > 0`` of an integer step (``w >= 2**-62``) puts the rate above the cap,
  so the cap is the exact result there and ``gamma^t`` is never evaluated beyond it.
  """
  amplitude = hi - lo
  cap = jnp.asarray(lr_cap, jnp.float32)
  has_amplitude = amplitude > 0
  log_room = (jnp.log(jnp.maximum(cap - lo, jnp.finfo(jnp.float32).tiny))
              - jnp.log(jnp.where(has_amplitude, amplitude, 1.0)) + 64.0 * np.log(2.0))
  scale, passed = _growth.exp_until(_growth.log_of(gamma), t, log_room)
  rate = jnp.minimum(lo + amplitude * w * scale, cap)
  return jnp.where(passed & (w > 0) & has_amplitude, cap, rate).astype(jnp.float32)


def triangular(min_lr: float, max_lr: float, step_size: float,
               step_size_down: float | None = None) -> Schedule:
  """Smith's ``triangular`` policy: linear up and down with constant amplitude.

  ``cyclical(min_lr, max_lr, step_size, mode="triangular")``; PyTorch
  ``CyclicLR(mode="triangular")``.

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.triangular(0.0, 1.0, 4)(t)), 6) for t in (0, 2, 4, 6, 8)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
  """
  return cyclical(min_lr, max_lr, step_size, step_size_down=step_size_down,
                  mode="triangular")


def triangular2(min_lr: float, max_lr: float, step_size: float,
                step_size_down: float | None = None) -> Schedule:
  """Smith's ``triangular2`` policy: the amplitude is halved after every cycle.

  ``cyclical(min_lr, max_lr, step_size, mode="triangular2")``; PyTorch
  ``CyclicLR(mode="triangular2")``.

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.triangular2(0.0, 1.0, 4)(t)), 6) for t in (4, 12, 20)]
    [1.0, 0.5, 0.25]
  """
  return cyclical(min_lr, max_lr, step_size, step_size_down=step_size_down,
                  mode="triangular2")


def exp_range(min_lr: float, max_lr: float, step_size: float, gamma: float,
              step_size_down: float | None = None, *,
              lr_cap: float | None = None) -> Schedule:
  r"""Smith's ``exp_range`` policy: amplitude scaled by :math:`\gamma^t`.

  ``cyclical(min_lr, max_lr, step_size, mode="exp_range", gamma=gamma)``; PyTorch
  ``CyclicLR(mode="exp_range", gamma=gamma)``.  ``gamma > 1`` (a growing amplitude)
  needs ``lr_cap``, the largest rate allowed (see :func:`cyclical`).

  Example:
    >>> import lrjax.schedules as s
    >>> round(float(s.exp_range(0.0, 1.0, 4, gamma=0.5)(4)), 6)  # 0.5**4
    0.0625
  """
  return cyclical(min_lr, max_lr, step_size, step_size_down=step_size_down,
                  mode="exp_range", gamma=gamma, lr_cap=lr_cap)


def welch(min_lr: float, max_lr: float, step_size: float,
          step_size_down: float | None = None) -> Schedule:
  r"""Cyclical rate with the survey's Welch (parabolic) window, constant amplitude.

  For a symmetric cycle of phase ``x`` in [0, 1):
  :math:`\mathrm{lr} = \mathrm{min} + (\mathrm{max} - \mathrm{min})(1 - (2x - 1)^2)`.

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.welch(0.0, 1.0, 4)(t)), 6) for t in (0, 2, 4, 6)]
    [0.0, 0.75, 1.0, 0.75]
  """
  return cyclical(min_lr, max_lr, step_size, step_size_down=step_size_down,
                  window="welch")


def hann(min_lr: float, max_lr: float, step_size: float,
         step_size_down: float | None = None) -> Schedule:
  r"""Cyclical rate with the survey's Hann (sinusoidal) window, constant amplitude.

  For a symmetric cycle of phase ``x`` in [0, 1):
  :math:`\mathrm{lr} = \mathrm{min} + (\mathrm{max} - \mathrm{min})\sin^2(\pi x)`.

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.hann(0.0, 1.0, 4)(t)), 6) for t in (0, 2, 4, 6)]
    [0.0, 0.5, 1.0, 0.5]
  """
  return cyclical(min_lr, max_lr, step_size, step_size_down=step_size_down,
                  window="hann")


__all__ = ["MODES", "WINDOWS", "cyclical", "triangular", "triangular2", "exp_range",
           "welch", "hann"]
