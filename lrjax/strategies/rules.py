r"""Strategy rules: pure functions ``Statistics -> bool`` that say whether to advance.

A rule is called by `lrjax.strategies.scale_by_strategy` at every epoch boundary (and
only there) with the strategy's `Statistics` and returns a boolean scalar: True moves
the sequence to its next element.  Rules are plain functions of arrays, so a user adds
one without editing lrjax:

  >>> import jax.numpy as jnp
  >>> from lrjax.schedules import seq1
  >>> from lrjax.strategies import scale_by_strategy, strategy_state
  >>> def every_other_epoch(stats):   # advance at boundaries 2, 4, 6, ...
  ...   return stats.num_boundaries % 2 == 1
  >>> tx = scale_by_strategy(seq1(0.01), every_other_epoch)
  >>> state = tx.init(jnp.zeros(3))
  >>> for epoch in range(4):
  ...   _, state = tx.update(jnp.ones(3), state, valid_loss=jnp.asarray(1.0))
  >>> [int(strategy_state(state).index)]
  [2]

and `switch_rule((epoch, cutoff, every_other_epoch), rule_id)` selects one of several
rules by a (traced) integer with `jax.lax.switch`, so variants with different rules,
built-in or not, run as one ``jax.vmap``-ed program.

The built-in rules are the report's Algorithms 1-3 (Yang & Huang 2019, section 3.2),
reduce-on-plateau and the constant benchmark.  Algorithm 1 never looks at the loss: the
``epoch`` rule advances at every boundary, with or without a (finite) loss.  The
loss-based rules advance only on a finite loss (``stats.has_loss``) with a previous one
to compare to (``stats.num_observations > 0``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from lrjax.errors import ArgumentError, ArgumentTypeError


class Statistics(NamedTuple):
  """What a rule sees at an epoch boundary (scalar arrays; may be traced).

  Attributes:
    loss: this boundary's validation loss (inf when the boundary came without one).
    has_loss: bool, a finite validation loss came with this boundary.
    prev_loss: the last finite loss observed before this one (``loss_0`` at the first
      decision; inf before any).
    best_loss: the best loss in the plateau sense before this one (inf before any).
    cutoff: the by-cutoff threshold ``c_t`` now (inf until ``loss_0`` sets ``c_0``).
    num_observations: int32, finite losses observed before this one (``loss_0``
      included, whether it came as the initial observation or at the first boundary).
    num_boundaries: int32, boundaries seen before this one (0 at the first).
    index: int32, the sequence position ``n`` now.
    plateau_reached: bool, ``patience`` non-improving finite losses were reached at
      this boundary outside the cooldown (the decision of optax's reduce_on_plateau).
  """

  loss: jax.Array
  has_loss: jax.Array
  prev_loss: jax.Array
  best_loss: jax.Array
  cutoff: jax.Array
  num_observations: jax.Array
  num_boundaries: jax.Array
  index: jax.Array  # type: ignore[assignment]  # a field named like tuple's method, by design
  plateau_reached: jax.Array


RuleFn = Callable[[Statistics], chex.Array]


def fixed(stats: Statistics) -> jax.Array:
  """Never advances (the report's constant-rate benchmarks)."""
  del stats
  return jnp.asarray(False)


def epoch(stats: Statistics) -> jax.Array:
  """Algorithm 1: advances at every boundary; never looks at the loss."""
  del stats
  return jnp.asarray(True)


def cutoff(stats: Statistics) -> jax.Array:
  r"""Algorithm 2: :math:`|L_t - L_{t-1}| < c_t` (the strategy then decays ``c_t``)."""
  return (stats.has_loss & (stats.num_observations > 0)
          & (jnp.abs(stats.loss - stats.prev_loss) < stats.cutoff))


def oscillate(stats: Statistics) -> jax.Array:
  r"""Algorithm 3: the validation loss rose, :math:`L_t - L_{t-1} > 0`."""
  return stats.has_loss & (stats.num_observations > 0) & (stats.loss - stats.prev_loss > 0)


def plateau(stats: Statistics) -> jax.Array:
  """``optax.contrib.reduce_on_plateau``'s "reduce" (``accumulation_size=1``)."""
  return stats.has_loss & stats.plateau_reached


def decide(rule: RuleFn, stats: Statistics) -> jax.Array:
  """``rule(stats)`` as a boolean scalar, with a clear error for a wrong shape."""
  out = jnp.asarray(rule(stats))
  if out.shape != ():
    raise ValueError(f"a strategy rule must return a boolean scalar, got shape "
                     f"{out.shape} from {rule!r}.")
  return out.astype(bool)


def switch_rule(rules: Sequence[RuleFn], index: chex.Numeric) -> RuleFn:
  """The rule ``rules[index]``, with ``index`` a (traced) integer (``jax.lax.switch``).

  Like `lrjax.schedules.switch` for sequences: variants with different rules run as
  one vmapped program (under ``jax.vmap`` every rule is evaluated and one selected, a
  handful of scalar operations each).  A traced index is clipped into range.

  Raises:
    ValueError: if ``rules`` is empty or holds a non-callable, or a concrete ``index``
      is not an integer in ``[0, len(rules))``.

  Example:
    >>> switch_rule((epoch, plateau), 1) is plateau   # a concrete index: that rule
    True
    >>> switch_rule((epoch, plateau), 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrjax.errors.ArgumentError: `index` must be an integer in [0, 2), got 2.
  """
  if isinstance(rules, (str, bytes)) or not isinstance(rules, Iterable):
    raise ArgumentTypeError(
        "rules", "must be a non-empty sequence of functions Statistics -> bool, "
        f"got {rules!r}.")
  rules = tuple(rules)
  if not rules or not all(callable(r) for r in rules):
    raise ArgumentError("rules", "must be a non-empty sequence of functions "
                        f"Statistics -> bool, got {rules!r}.")
  if not isinstance(index, jax.core.Tracer):
    arr = np.asarray(index)
    if (isinstance(index, (bool, np.bool_)) or arr.dtype.kind not in "iu"
        or arr.shape != () or not 0 <= int(arr) < len(rules)):
      raise ArgumentError("index", f"must be an integer in [0, {len(rules)}), got {index!r}.")
    if isinstance(index, (int, np.integer)):
      return rules[int(index)]
  branches = [lambda s, r=r: decide(r, s) for r in rules]

  def switched(stats: Statistics) -> jax.Array:
    i = jnp.clip(jnp.asarray(index, jnp.int32), 0, len(rules) - 1)
    return jax.lax.switch(i, branches, stats)

  return switched
