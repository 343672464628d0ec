"""The one-cycle policy (Smith, "A disciplined approach to neural network
hyper-parameters", 2018): Smith's three linear phases, and PyTorch's ``OneCycleLR``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules._numerics import cosine_weights, floor_frac, linear_weights, two_product
from lrjax.schedules._numerics import f32 as _f32
from lrjax.schedules.base import Schedule

ANNEAL_STRATEGIES = ("cos", "linear")


def check_cycle_steps(step_size, total_steps) -> None:
  """Checks the one cycle's two steps of ``step_size`` fit in ``total_steps`` (shared by
  the rate, `one_cycle`, and its momentum, `one_cycle_linear_momentum`)."""
  _validation.check_positive_int("step_size", step_size)
  _validation.check_positive_int("total_steps", total_steps)
  if _validation.is_concrete(step_size) and _validation.is_concrete(total_steps):
    if not np.all(2 * np.asarray(step_size) <= np.asarray(total_steps)):
      raise ArgumentError("total_steps", f"({total_steps!r}) must be >= 2 * `step_size` "
                          f"({step_size!r}).")


def one_cycle(min_lr: float, max_lr: float, step_size: int, total_steps: int,
              annihilation_factor: float = 10.0) -> Schedule:
  r"""One cycle of two equal linear steps, then annihilation (range-test document).

  With ``s = step_size``, ``T = total_steps`` and
  :math:`\mathrm{final} = \mathrm{min\_lr} / \mathrm{annihilation\_factor}`:

  * step 1, ``0 <= t <= s``: linear from ``min_lr`` up to ``max_lr``;
  * step 2, ``s <= t <= 2s``: linear back down to ``min_lr``;
  * annihilation, ``2s <= t <= T``: linear from ``min_lr`` to ``final``, far below
    the lower bound (the document uses 1/10 or 1/100 of it); then ``final``.

  The document's CIFAR-10 run is ``one_cycle(0.08, 0.8, 41, 95, 10)``.  It equals
  ``optax.linear_onecycle_schedule(T, max_lr, pct_start=s/T, pct_final=2s/T,
  div_factor=max_lr/min_lr, final_div_factor=annihilation_factor)``.

  Args:
    min_lr: lower bound of the cycle (1/5 or 1/10 of ``max_lr`` in the document), > 0.
    max_lr: upper bound (from the range test), >= ``min_lr``.
    step_size: length of each of the two steps (positive int).
    total_steps: total length, >= ``2 * step_size`` (int).
    annihilation_factor: ``min_lr / final``, >= 1.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.one_cycle(0.08, 0.8, 41, 95, 10.0)
    >>> [round(float(sched(t)), 6) for t in (0, 41, 82, 95)]
    [0.08, 0.8, 0.08, 0.008]
  """
  _validation.check_positive("min_lr", min_lr)
  _validation.check_positive("max_lr", max_lr)
  _validation.check_less_equal("min_lr", min_lr, "max_lr", max_lr)
  check_cycle_steps(step_size, total_steps)
  _validation.check_in_range("annihilation_factor", annihilation_factor, 1.0,
                             float("inf"), high_open=True)

  def schedule(count):
    t = jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)
    s = _f32(step_size)
    total = _f32(total_steps)
    lo, hi = _f32(min_lr), _f32(max_lr)
    final = lo / _f32(annihilation_factor)
    w_lo, w_hi = linear_weights(jnp.minimum(t, s), s)
    up = lo * w_lo + hi * w_hi
    w_hi, w_lo = linear_weights(jnp.clip(t - s, 0.0, s), s)
    down = hi * w_hi + lo * w_lo
    length = jnp.maximum(total - 2.0 * s, 1.0)
    w_lo, w_final = linear_weights(jnp.clip(t - 2.0 * s, 0.0, length), length)
    anneal = lo * w_lo + final * w_final
    lr = jnp.where(t <= s, up, jnp.where(t <= 2.0 * s, down, anneal))
    # the interpolation weights' rounding must not take the rate below its floor
    return jnp.maximum(lr, final).astype(jnp.float32)

  return schedule


def one_cycle_torch(max_lr: float, total_steps: int, *, pct_start: float = 0.3,
                    anneal_strategy: str = "cos", div_factor: float = 25.0,
                    final_div_factor: float = 1e4,
                    three_phase: bool = False) -> Schedule:
  r"""PyTorch's ``OneCycleLR`` (learning rate only), same arguments and defaults.

  ``initial = max_lr / div_factor`` and ``min = initial / final_div_factor``.
  Phases end at ``e1 = pct_start * T - 1`` and ``T - 1`` (two phases:
  ``initial -> max -> min``), or at ``e1``, ``2 * pct_start * T - 2`` and ``T - 1``
  (``three_phase``: ``initial -> max -> initial -> min``).  Inside a phase
  ``[a, b]`` with ``pct = (t - a) / (b - a)`` the rate is
  ``end + (start - end) / 2 * (1 + cos(pi * pct))`` (``"cos"``) or
  ``start + (end - start) * pct`` (``"linear"``).  PyTorch raises past
  ``T`` steps; here the rate stays at ``min`` from ``t = T - 1`` on.

  With concrete ``pct_start`` and ``total_steps`` the phase ends are computed exactly
  as PyTorch does, in float64 (``2 * 0.3 * 95 - 2 = 54.99999999999999``, so step 55
  is in the last phase), and the rates agree with PyTorch to ~3e-7 relative.  A
  traced ``pct_start`` is its float32 rounding (0.3 -> 0.30000001), which can move a
  phase end across a step.

  ``optax.cosine_onecycle_schedule`` / ``linear_onecycle_schedule`` end their
  phases at ``int(pct_start * T)`` and ``T`` instead, one step later than PyTorch.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.one_cycle_torch(0.1, 50)
    >>> [round(float(sched(t)), 6) for t in (0, 14, 49)]
    [0.004, 0.1, 0.0]
  """
  _validation.check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)
  _validation.check_bool("three_phase", three_phase)
  _validation.check_positive("max_lr", max_lr)
  _validation.check_positive_int("total_steps", total_steps)
  _validation.check_in_range("pct_start", pct_start, 0.0, 1.0)
  _validation.check_positive("div_factor", div_factor)
  _validation.check_positive("final_div_factor", final_div_factor)
  if _validation.is_concrete(max_lr) and _validation.is_concrete(div_factor):
    with np.errstate(over="ignore"):
      initial = np.float32(max_lr) / np.float32(div_factor)
    _validation.check_finite_result("`max_lr` / `div_factor`", "the initial rate", initial)

  weights = cosine_weights if anneal_strategy == "cos" else linear_weights
  # Phase ends as PyTorch computes them, in float64 (Python floats), each as
  # floor(b) + frac(b): an integer step t is in a phase ending at b iff
  # t <= floor(b), and t - a, b - t, b - a then take one rounding each.  (In float32,
  # 2 * 0.3 * 95 - 2 = 55.000004 instead of 54.99999999999999 puts step 55 in the
  # wrong phase.)  A traced pct_start is exact as float32 times T (`two_product`).
  num_phases = 3 if three_phase else 2
  bounds: list[tuple[Any, Any]]
  if _validation.is_concrete(pct_start) and _validation.is_concrete(total_steps):
    pct, total_ = float(pct_start), float(total_steps)
    ends = [pct * total_ - 1.0, 2.0 * pct * total_ - 2.0][:num_phases - 1]
    bounds = [(np.floor(b), b - np.floor(b)) for b in [0.0] + ends + [total_ - 1.0]]
  else:
    p, err = two_product(_f32(pct_start), _f32(total_steps))
    fl, fr = floor_frac(p, err)
    carry = jnp.floor(2.0 * fr)  # 2 * frac may reach 1
    end_pairs = [(fl - 1.0, fr), (2.0 * fl - 2.0 + carry, 2.0 * fr - carry)]
    bounds = [(0.0, 0.0), *end_pairs[:num_phases - 1], (_f32(total_steps) - 1.0, 0.0)]
  floors = [_f32(fl) for fl, _ in bounds]
  fracs = [_f32(fr) for _, fr in bounds]
  spans = [(floors[i + 1] - floors[i]) + (fracs[i + 1] - fracs[i])
           for i in range(num_phases)]

  def schedule(count):
    total = _f32(total_steps)
    t = jnp.clip(jnp.asarray(count, jnp.float32), 0.0, total - 1.0)
    peak = _f32(max_lr)
    initial = peak / _f32(div_factor)
    minimum = initial / _f32(final_div_factor)
    if three_phase:
      rates = [(initial, peak), (peak, initial), (initial, minimum)]
    else:
      rates = [(initial, peak), (peak, minimum)]
    # XLA would reassociate (floor - t) + frac into (floor + frac) - t, rounding
    # floor + frac: the barrier keeps the split.
    floors_, fracs_ = jax.lax.optimization_barrier((floors, fracs))
    # PyTorch picks the first phase whose end is >= t (else the last phase);
    # evaluate the phases from the last to the first so the first match wins.
    lr = None
    for i in reversed(range(len(rates))):
      lr_start, lr_end = rates[i]
      span = spans[i]
      empty = span == 0  # pct = 1 on an empty phase
      elapsed = jnp.where(empty, 1.0, (t - floors_[i]) - fracs_[i])
      remaining = jnp.where(empty, 0.0, (floors_[i + 1] - t) + fracs_[i + 1])
      w_start, w_end = weights(elapsed, jnp.where(empty, 1.0, span), remaining)
      value = lr_start * w_start + lr_end * w_end
      lr = value if lr is None else jnp.where(t <= floors[i + 1], value, lr)
    assert lr is not None  # a schedule has at least one phase
    # the interpolation weights' rounding must not take the rate below its floor
    floor = jnp.minimum(jnp.minimum(initial, peak), minimum)
    return jnp.maximum(lr, floor).astype(jnp.float32)

  return schedule


__all__ = ["ANNEAL_STRATEGIES", "one_cycle", "one_cycle_torch"]
