"""Adaptive learning rates: transformations that learn the rate eta itself.

* `hypergradient(inner, ...)`: first order (Baydin et al. 2018; Gorti & Ravaut eq.
  5-8), from the dot product of a gradient and the previous direction of any optax
  transformation ``inner``; `hypergradient_sgd` and `hypergradient_adam` are it around
  ``optax.identity()`` and ``optax.scale_by_adam()``.
* `newton_lr`: second order (Gorti & Ravaut eq. 9-18), Newton's method on eta with
  five loss values by finite differences; needs ``value_fn`` in the extra args.

Each is an ``optax.GradientTransformationExtraArgs`` whose updates are ``-eta * direction``
and whose state (a NamedTuple of arrays) holds the learned rate as ``state.lr``;
`learned_lr` reads it from any optax state tree (chains, ``apply_if_finite``...).
Every learned rate is guarded: finite and inside ``[min_lr, max_lr]``; ``min_lr=None``
/ ``max_lr=None`` drop that bound to follow the papers exactly (see
`lrjax.adaptive._common`).  Every state owns its buffers (donatable under ``jax.jit``).
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from lrjax.adaptive.hypergradient import (
  HypergradientAdamState,
  HypergradientSGDState,
  HypergradientState,
  hypergradient,
  hypergradient_adam,
  hypergradient_sgd,
)
from lrjax.adaptive.newton import (
  SMOOTHING_RULES,
  NewtonLRState,
  SmoothingRule,
  five_losses,
  newton_lr,
  paper_smoothing,
  robust_smoothing,
)

AdaptiveState = HypergradientState | NewtonLRState
_STATE_TYPES = (HypergradientState, NewtonLRState)


def adaptive_state(opt_state: Any) -> AdaptiveState:
  """The single adaptive-rate state inside an optax state tree.

  Raises:
    ValueError: if ``opt_state`` holds none, or more than one.
  """
  if isinstance(opt_state, _STATE_TYPES):
    return opt_state
  found = []
  for cls in _STATE_TYPES:
    found += optax.tree_utils.tree_get_all_with_path(
        opt_state, cls.__name__,
        filtering=lambda path, value, cls=cls: isinstance(value, cls))
  if len(found) != 1:
    names = ", ".join(cls.__name__ for cls in _STATE_TYPES)
    raise ValueError(f"expected exactly one adaptive-rate state ({names}) in the "
                     f"optimizer state, found {len(found)}.")
  return found[0][1]


def learned_lr(opt_state: Any) -> jax.Array:
  """The learned rate ``state.lr`` of the adaptive transformation inside ``opt_state``.

  Example:
    >>> import jax.numpy as jnp, optax, lrjax
    >>> tx = optax.chain(optax.clip_by_global_norm(1.0), lrjax.adaptive.newton_lr(0.1))
    >>> float(lrjax.adaptive.learned_lr(tx.init(jnp.zeros(3))))
    0.10000000149011612
  """
  return adaptive_state(opt_state).lr


__all__ = [
    "hypergradient", "hypergradient_sgd", "hypergradient_adam", "newton_lr",
    "HypergradientState", "HypergradientSGDState", "HypergradientAdamState",
    "NewtonLRState", "AdaptiveState", "adaptive_state", "learned_lr", "five_losses",
    "SmoothingRule", "robust_smoothing", "paper_smoothing", "SMOOTHING_RULES",
]
