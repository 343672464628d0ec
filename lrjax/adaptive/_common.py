"""Pieces shared by the adaptive learning rates: validation, dtypes and the eta guard.

The guard (documented once here, applied by every transformation of
`lrjax.adaptive`): a proposed new rate ``eta_new`` is

* kept as is when it is finite and inside ``[min_lr, max_lr]``;
* replaced by the previous rate when it is NaN or +-inf (a NaN/inf loss or
  gradient, a division by an exactly zero denominator); the sticky
  ``state.nonfinite`` flag is then set and stays set;
* clipped into ``[min_lr, max_lr]`` otherwise (a negative or zero rate goes to
  ``min_lr > 0``, a huge one to ``max_lr``); ``state.num_clipped`` counts it.

So with the default bounds the learned rate is always finite and ``>= min_lr > 0``.
The clip is a guard, not part of the papers' methods: ``min_lr=None`` (and/or
``max_lr=None``) removes that side of it, and the rate then follows the paper's
formula exactly, negative values included (Gorti & Ravaut section 6.1: "reaching
either too high values or even negative values").  Only the non-finite guard stays.

The states own their buffers: no two leaves of a state, and no leaf of a state and an
array the caller passed in (params, gradients, ``learning_rate``), share memory, so
``jax.jit(update, donate_argnums=...)`` may donate any state.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrjax import _validation

DEFAULT_MIN_LR = 1e-8
DEFAULT_MAX_LR = 10.0


def check_bounds(learning_rate: Any, min_lr: Any, max_lr: Any) -> None:
  """Construction-time checks of ``learning_rate``, ``min_lr`` and ``max_lr``.

  ``min_lr`` / ``max_lr`` may be None: no bound on that side (see the module docstring).
  """
  _validation.check_positive("learning_rate", learning_rate)
  if min_lr is not None:
    _validation.check_positive("min_lr", min_lr)
    _validation.check_less_equal("min_lr", min_lr, "learning_rate", learning_rate)
  if max_lr is not None:
    _validation.check_positive("max_lr", max_lr)
    _validation.check_less_equal("learning_rate", learning_rate, "max_lr", max_lr)
  if min_lr is not None and max_lr is not None:
    _validation.check_less_equal("min_lr", min_lr, "max_lr", max_lr)


def clip_lr(lr: jax.Array, min_lr: Any | None, max_lr: Any | None) -> jax.Array:
  """``lr`` clipped into ``[min_lr, max_lr]``; a None bound is no bound."""
  if min_lr is not None:
    lr = jnp.maximum(lr, jnp.asarray(min_lr, lr.dtype))
  if max_lr is not None:
    lr = jnp.minimum(lr, jnp.asarray(max_lr, lr.dtype))
  return lr


def compute_dtype(params: Any) -> jnp.dtype:
  """The dtype of the rate and of the scalar arithmetic: the params' dtype, >= float32.

  float32 params -> float32; float64 params (``jax_enable_x64``) -> float64, numpy
  float64 params without ``jax_enable_x64`` -> float32 (what JAX computes them in);
  bfloat16/float16 params -> float32 (the scalar rate is never kept in half precision).
  """
  if not jax.tree.leaves(params):
    return jnp.dtype(jnp.float32)
  dtype = optax.tree.dtype(params, "promote")
  # canonicalized: numpy float64 params without jax_enable_x64 compute in float32
  return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.promote_types(dtype, jnp.float32)))


def tree_vdot(a: Any, b: Any, dtype: Any) -> jax.Array:
  """``sum_i a_i . b_i`` over the leaves of two trees, accumulated in ``dtype``.

  (optax's ``tree_vdot`` on both trees cast to ``dtype`` first: half-precision
  gradients are not dotted in half precision.)
  """
  return jnp.asarray(optax.tree.vdot(optax.tree.cast(a, dtype), optax.tree.cast(b, dtype)),
                     dtype)


def scale_updates(lr: jax.Array, direction: Any) -> Any:
  """``-lr * direction`` leaf by leaf, each leaf keeping its dtype (optax's sign).

  (numpy leaves become JAX arrays first: their dtype is then the one JAX computes in.)
  """
  direction = jax.tree.map(jnp.asarray, direction)
  return optax.tree.cast_like(optax.tree.scale(-lr, direction), direction)


def owned_like(tree: Any, like: Any) -> Any:
  """``tree`` cast to the dtypes of ``like``, in fresh buffers.

  ``astype`` to an equal dtype returns the same array, so a state storing the caller's
  gradient that way would alias it (and donating the state would delete it).
  """
  return jax.tree.map(lambda t, o: jnp.array(t, dtype=o.dtype, copy=True), tree, like)


def guard_lr(old_lr: jax.Array, new_lr: jax.Array, min_lr: Any | None,
             max_lr: Any | None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Applies the guard of this module to a proposed rate.

  Returns:
    ``(lr, nonfinite, clipped)``: the rate to keep, whether ``new_lr`` was NaN/inf
    (then ``lr`` is ``old_lr``), whether it was clipped into ``[min_lr, max_lr]``.
  """
  dtype = old_lr.dtype
  new_lr = jnp.asarray(new_lr, dtype)
  finite = jnp.isfinite(new_lr)
  candidate = jnp.where(finite, new_lr, old_lr)
  lr = clip_lr(candidate, min_lr, max_lr)
  return lr, jnp.logical_not(finite), lr != candidate


def init_lr(learning_rate: Any, min_lr: Any | None, max_lr: Any | None,
            dtype: Any) -> jax.Array:
  """The initial rate as a fresh scalar of ``dtype``, clipped into the bounds.

  (Concrete values were already checked; the clip only matters for traced ones.  The
  copy keeps a state from aliasing a ``learning_rate`` array of the caller.)
  """
  lr = jnp.array(learning_rate, dtype=dtype, copy=True)
  return clip_lr(lr, min_lr, max_lr)


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
