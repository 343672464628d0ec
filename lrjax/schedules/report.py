"""The four decaying sequences of Yang & Huang, "Learning rate investigation" (2019).

The sequences are indexed by the sequence position ``n``: the report writes them for
``n >= 1`` (``r_1, r_2, ...`` are popped one by one by the strategies).  Position
``n = 0`` is the initial rate ``r0`` that training starts with (Algorithm 1, line 1),
which also removes the division by zero of seq1 and seq2 at ``n = 0``.
"""

from __future__ import annotations

import jax.numpy as jnp

from lrjax import _validation
from lrjax.schedules._numerics import pow_f32
from lrjax.schedules.base import Schedule


def _position(count):
  return jnp.asarray(count, jnp.float32)


def seq1(r0: float) -> Schedule:
  r"""seq1: :math:`r_n = r_0 / n` (a divergent series), ``r_0`` at ``n = 0``.

  Example:
    >>> import lrjax
    >>> [round(float(lrjax.schedules.seq1(0.01)(n)), 6) for n in range(4)]
    [0.01, 0.01, 0.005, 0.003333]
  """
  _validation.check_positive("r0", r0)

  def schedule(count):
    n = _position(count)
    return r0 / jnp.maximum(n, 1.0)

  return schedule


def seq2(r0: float) -> Schedule:
  r"""seq2: :math:`r_n = r_0 / \sqrt{n}`, ``r_0`` at ``n = 0``."""
  _validation.check_positive("r0", r0)

  def schedule(count):
    n = _position(count)
    return r0 / jnp.sqrt(jnp.maximum(n, 1.0))

  return schedule


def seq3(r0: float, decay: float = 0.9) -> Schedule:
  r"""seq3: :math:`r_n = \mathrm{decay}^n r_0` (the report uses ``decay = 0.9``)."""
  _validation.check_positive("r0", r0)
  _validation.check_in_range("decay", decay, 0.0, 1.0, low_open=True)

  def schedule(count):
    n = _position(count)
    # not jnp.power(float32(decay), n): float32(0.9) = 0.89999998 raised to the n-th
    # power drifts by ~n * 3e-8 relative (1e-6 at n = 40); see _numerics.pow_f32.
    return r0 * pow_f32(decay, n)

  return schedule


def seq4(r0: float, period: int = 10) -> Schedule:
  r"""seq4, the decaying cyclic sequence: :math:`r_n = q_n r_0` with

  .. math:: q_n = \Bigl(1 - \frac{(n-1) \bmod p}{p}\Bigr)\,
            \frac{1}{\lfloor n / p \rfloor + 1},\qquad p = 10,

  written exactly as in the report (note that the cycle term resets at
  ``n = 11, 21, ...`` while the decay term steps at ``n = 10, 20, ...``).
  ``r_0`` at ``n = 0`` (the formula would give ``0.1 r0`` there).
  """
  _validation.check_positive("r0", r0)
  _validation.check_positive_int("period", period)

  def schedule(count):
    n = jnp.asarray(count, jnp.int32)
    p = jnp.asarray(period, jnp.int32)
    cycle = 1.0 - jnp.mod(n - 1, p).astype(jnp.float32) / p.astype(jnp.float32)
    decay = 1.0 / (jnp.floor_divide(n, p).astype(jnp.float32) + 1.0)
    return jnp.where(n <= 0, jnp.asarray(r0, jnp.float32) + 0.0 * cycle, r0 * cycle * decay)

  return schedule


REPORT_SEQUENCES = {"seq1": seq1, "seq2": seq2, "seq3": seq3, "seq4": seq4}
