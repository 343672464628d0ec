"""Pieces shared by the adaptive learning rates: validation, dtypes and the eta guard.

The guard (documented once here, applied by every transformation of
`lrjax.adaptive`): a proposed new rate ``eta_new`` is

* kept as is when it is finite and inside ``[min_lr, max_lr]``;
* replaced by the previous rate when it is NaN or +-inf (a NaN/inf loss or
  gradient, a division by an exactly zero denominator); the sticky
  ``state.nonfinite`` flag is then set and stays set;
* clipped into ``[min_lr, max_lr]`` otherwise (a negative or zero rate goes to
  ``min_lr > 0``, a huge one to ``max_lr``); ``state.num_clipped`` counts it.

So the learned rate is always finite and ``>= min_lr > 0``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from lrjax import _validation

DEFAULT_MIN_LR = 1e-8
DEFAULT_MAX_LR = 10.0


def check_bounds(learning_rate: Any, min_lr: Any, max_lr: Any) -> None:
  """Construction-time checks of ``learning_rate``, ``min_lr`` and ``max_lr``."""
  _validation.check_positive("learning_rate", learning_rate)
  _validation.check_positive("min_lr", min_lr)
  _validation.check_positive("max_lr", max_lr)
  _validation.check_less_equal("min_lr", min_lr, "max_lr", max_lr)
  _validation.check_less_equal("min_lr", min_lr, "learning_rate", learning_rate)
  _validation.check_less_equal("learning_rate", learning_rate, "max_lr", max_lr)


def compute_dtype(params: Any) -> jnp.dtype:
  """The dtype of the rate and of the scalar arithmetic: the params' dtype, >= float32.

  float32 params -> float32; float64 params (``jax_enable_x64``) -> float64;
  bfloat16/float16 params -> float32 (the scalar rate is never kept in half precision).
  """
  if not jax.tree.leaves(params):
    return jnp.dtype(jnp.float32)
  dtype = optax.tree.dtype(params, "promote")
  return jnp.dtype(jnp.promote_types(dtype, jnp.float32))


def tree_vdot(a: Any, b: Any, dtype: Any) -> jax.Array:
  """``sum_i a_i . b_i`` over the leaves of two trees, accumulated in ``dtype``."""
  parts = [jnp.vdot(x.astype(dtype), y.astype(dtype))
           for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
  return sum(parts, jnp.zeros((), dtype))


def scale_updates(lr: jax.Array, direction: Any) -> Any:
  """``-lr * direction`` leaf by leaf, each leaf keeping its dtype (optax's sign)."""
  return jax.tree.map(lambda d: (-lr * d).astype(d.dtype), direction)


def guard_lr(old_lr: jax.Array, new_lr: jax.Array, min_lr: Any, max_lr: Any,
             ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Applies the guard of this module to a proposed rate.

  Returns:
    ``(lr, nonfinite, clipped)``: the rate to keep, whether ``new_lr`` was NaN/inf
    (then ``lr`` is ``old_lr``), whether it was clipped into ``[min_lr, max_lr]``.
  """
  dtype = old_lr.dtype
  new_lr = jnp.asarray(new_lr, dtype)
  finite = jnp.isfinite(new_lr)
  candidate = jnp.where(finite, new_lr, old_lr)
  lr = jnp.clip(candidate, jnp.asarray(min_lr, dtype), jnp.asarray(max_lr, dtype))
  return lr, jnp.logical_not(finite), lr != candidate


def init_lr(learning_rate: Any, min_lr: Any, max_lr: Any, dtype: Any) -> jax.Array:
  """The initial rate as a scalar of ``dtype``, clipped into the bounds.

  (Concrete values were already checked; the clip only matters for traced ones.)
  """
  lr = jnp.asarray(learning_rate, dtype)
  return jnp.clip(lr, jnp.asarray(min_lr, dtype), jnp.asarray(max_lr, dtype))


def split_fn_kwargs(fn: Callable[..., Any], extra: dict[str, Any]) -> dict[str, Any]:
  """The extra args that ``fn`` accepts by name (as optax's line searches pick them).

  The others (``valid_loss``, ``epoch_boundary`` of the lrjax engine, or args meant for
  other members of a chain) are ignored.
  """
  try:
    names = inspect.signature(fn).parameters
  except (TypeError, ValueError):  # builtins / C functions without a signature
    return {}
  return {k: v for k, v in extra.items() if k in names}
