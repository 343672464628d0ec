r"""Momentum as a schedule: the inverse cycling of one-cycle and cyclical rates.

Smith (2018) cycles the momentum opposite to the rate: high momentum while the rate is
low, low while it is high.  PyTorch's ``OneCycleLR`` and ``CyclicLR`` do this with
``cycle_momentum=True``; these are the same momentum curves as ``step -> momentum``
functions, to pass as a hyperparameter, e.g.::

  opt = optax.inject_hyperparams(optax.sgd)(
      learning_rate=one_cycle_torch(0.1, 1000),
      momentum=one_cycle_momentum(1000))

(``inject_hyperparams`` evaluates both schedules at the update count.  ``optax.sgd``
applies its momentum as ``optax.trace``, PyTorch's SGD buffer.)  Smith's one-cycle
policy (the range-test document's `~lrjax.schedules.one_cycle`) with its momentum and
weight decay, PyTorch's ``SGD(weight_decay=wd)`` (decay added to the gradient before
the momentum)::

  opt = optax.chain(
      optax.add_decayed_weights(1e-4),
      optax.inject_hyperparams(optax.sgd)(
          learning_rate=one_cycle(0.08, 0.8, 41, 95),
          momentum=one_cycle_linear_momentum(41, 95)))
"""

from __future__ import annotations

import jax.numpy as jnp

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules._numerics import cosine_weights, linear_weights
from lrjax.schedules._numerics import f32 as _f32
from lrjax.schedules.base import Schedule
from lrjax.schedules.cyclical import MODES, cyclical
from lrjax.schedules.one_cycle import ANNEAL_STRATEGIES, check_cycle_steps


def _check_momenta(base_momentum, max_momentum) -> None:
  _validation.check_in_range("base_momentum", base_momentum, 0.0, 1.0)
  _validation.check_in_range("max_momentum", max_momentum, 0.0, 1.0)
  _validation.check_less_equal("base_momentum", base_momentum, "max_momentum", max_momentum)


def one_cycle_momentum(total_steps: int, *, pct_start: float = 0.3,
                       anneal_strategy: str = "cos", base_momentum: float = 0.85,
                       max_momentum: float = 0.95, three_phase: bool = False) -> Schedule:
  r"""The momentum of PyTorch's ``OneCycleLR(cycle_momentum=True)``.

  Same phases as :func:`~lrjax.schedules.one_cycle_torch` (ends ``pct_start T - 1``
  and ``T - 1``; three phases: also ``2 pct_start T - 2``), with the momentum going
  ``max -> base -> max`` (three phases: ``max -> base -> max -> max``) while the rate
  goes ``initial -> max -> min``.  Held after ``T - 1`` steps.

  Example:
    >>> import lrjax.schedules as s
    >>> m = s.one_cycle_momentum(20)
    >>> [round(float(m(t)), 6) for t in (0, 5, 19)]
    [0.95, 0.85, 0.95]
  """
  if anneal_strategy not in ANNEAL_STRATEGIES:
    raise ArgumentError("anneal_strategy", f"must be one of {ANNEAL_STRATEGIES}, "
                        f"got {anneal_strategy!r}.")
  _validation.check_positive_int("total_steps", total_steps)
  _validation.check_in_range("pct_start", pct_start, 0.0, 1.0)
  _check_momenta(base_momentum, max_momentum)
  _validation.check_bool("three_phase", three_phase)
  weights = cosine_weights if anneal_strategy == "cos" else linear_weights

  def schedule(count):
    total = _f32(total_steps)
    t = jnp.clip(jnp.asarray(count, jnp.float32), 0.0, total - 1.0)
    low, high = _f32(base_momentum), _f32(max_momentum)
    pct_t = _f32(pct_start) * total
    if three_phase:
      phases = [(pct_t - 1.0, high, low), (2.0 * pct_t - 2.0, low, high),
                (total - 1.0, high, high)]
    else:
      phases = [(pct_t - 1.0, high, low), (total - 1.0, low, high)]
    starts = [jnp.zeros_like(total)] + [end for end, _, _ in phases[:-1]]
    value = None
    for i in reversed(range(len(phases))):  # the first phase whose end >= t wins
      end, m_start, m_end = phases[i]
      span = end - starts[i]
      safe_span = jnp.where(span != 0, span, 1.0)
      elapsed = jnp.where(span != 0, t - starts[i], 1.0)
      w_start, w_end = weights(elapsed, safe_span)
      here = m_start * w_start + m_end * w_end
      value = here if value is None else jnp.where(t <= end, here, value)
    assert value is not None  # a schedule has at least one phase
    return value.astype(jnp.float32)

  return schedule


def one_cycle_linear_momentum(step_size: int, total_steps: int, *,
                              base_momentum: float = 0.85,
                              max_momentum: float = 0.95) -> Schedule:
  r"""The momentum of Smith's one cycle (:func:`~lrjax.schedules.one_cycle`).

  The mirror image of the rate's two linear steps of ``s = step_size`` steps:

  * ``0 <= t <= s``: linear from ``max_momentum`` down to ``base_momentum`` (the rate
    goes up);
  * ``s <= t <= 2s``: linear back up to ``max_momentum`` (the rate goes down);
  * ``t >= 2s``: ``max_momentum`` (the annihilation of the rate, to ``total_steps``).

  Smith (2018) uses 0.95 -> 0.85 -> 0.95.  With ``T = total_steps`` it equals the
  momentum of PyTorch's ``OneCycleLR(total_steps=T + 1, pct_start=(s + 1) / (T + 1),
  anneal_strategy="linear", three_phase=True)``, whose rate is then
  ``one_cycle(min_lr, max_lr, s, T)`` with ``div_factor = max_lr / min_lr`` and
  ``final_div_factor`` the annihilation factor.

  Args:
    step_size: length of each of the two steps (positive int), as in ``one_cycle``.
    total_steps: total length, >= ``2 * step_size``; only checked (the momentum is
      held at ``max_momentum`` from ``2 s`` on).
    base_momentum, max_momentum: the low (at the rate's peak) and high momentum, in
      [0, 1].

  Example:
    >>> import lrjax.schedules as s
    >>> m = s.one_cycle_linear_momentum(41, 95)
    >>> [round(float(m(t)), 6) for t in (0, 41, 82, 95)]
    [0.95, 0.85, 0.95, 0.95]
  """
  check_cycle_steps(step_size, total_steps)
  _check_momenta(base_momentum, max_momentum)

  def schedule(count):
    t = jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)
    s = _f32(step_size)
    low, high = _f32(base_momentum), _f32(max_momentum)
    w_high, w_low = linear_weights(jnp.minimum(t, s), s)
    down = high * w_high + low * w_low
    w_low, w_high = linear_weights(jnp.clip(t - s, 0.0, s), s)
    up = low * w_low + high * w_high
    value = jnp.where(t <= s, down, jnp.where(t <= 2.0 * s, up, high))
    return jnp.clip(value, low, high).astype(jnp.float32)

  return schedule


def cyclical_momentum(step_size: float, *, step_size_down: float | None = None,
                      mode: str = "triangular", gamma: float = 1.0,
                      base_momentum: float = 0.8, max_momentum: float = 0.9) -> Schedule:
  r"""The momentum of PyTorch's ``CyclicLR(cycle_momentum=True)``.

  :math:`m_t = m_{max} - (m_{max} - m_{base})\,u\,s(t)`, the mirror image of the rate
  :func:`~lrjax.schedules.cyclical` (same triangle ``u`` and amplitude scale ``s``):
  ``max_momentum`` where the rate is at its lower bound, ``base_momentum`` at its peak.

  Example:
    >>> import lrjax.schedules as s
    >>> m = s.cyclical_momentum(4, step_size_down=2)
    >>> [round(float(m(t)), 6) for t in (0, 2, 4, 6)]
    [0.9, 0.85, 0.8, 0.9]
  """
  if mode not in MODES:
    raise ArgumentError("mode", f"must be one of {MODES}, got {mode!r}.")
  _check_momenta(base_momentum, max_momentum)
  _validation.check_positive("step_size", step_size)
  if step_size_down is not None:
    _validation.check_positive("step_size_down", step_size_down)
  _validation.check_in_range("gamma", gamma, 0.0, 1.0, low_open=True)
  # the rate-shaped dip (max - base) u s(t), on a unit amplitude scaled afterwards so a
  # zero-width band (base == max) is allowed
  # (lr_cap = 1 changes nothing for gamma <= 1 and takes the exp_range path that is
  # finite at every int32 step)
  dip = cyclical(0.0, 1.0, step_size, step_size_down=step_size_down, mode=mode,
                 gamma=gamma, lr_cap=1.0 if mode == "exp_range" else None)

  def schedule(count):
    high = _f32(max_momentum)
    return (high - (high - _f32(base_momentum)) * dip(count)).astype(jnp.float32)

  return schedule


__all__ = ["one_cycle_momentum", "one_cycle_linear_momentum", "cyclical_momentum"]
