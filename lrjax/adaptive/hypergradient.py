r"""First-order adaptive rate: hypergradient descent (Baydin et al. 2018).

Gorti & Ravaut, "Faster gradient descent convergence via an adaptive learning rate
schedule", section 3.1, learn the rate by gradient descent on
:math:`f(\eta) = L(w(t) - \eta\, g(t))` (eq. 3-4):

.. math::

  w(t+1) = w(t) - \eta(t)\, g(t) \qquad (5)

  \eta(t+1) = \eta(t) - \alpha\, f'(\eta(t)) \qquad (6)

  f'(\eta(t)) = -g(t)^\top g(t+1) \qquad (8)

Eq. 8 costs no extra forward pass: the gradient ``g(t+1)`` that the next step receives
anyway is dotted with the previous gradient, kept in the state.  At the call that
receives ``g_t`` the rate is therefore updated *first*, then used (Baydin et al.,
Algorithm "SGD-HD")::

  h_t   = -g_t . g_{t-1}            (g_0 = 0: the first step keeps eta_0)
  eta_t = eta_{t-1} - hyper_lr * h_t
  u_t   = -eta_t * g_t

``state.lr`` after a call is the rate that call applied.  Consecutive gradients pointing
the same way (the rate is too small) make ``h_t < 0`` and the rate grows; anti-aligned
gradients (the iterate oscillates across a valley: the rate is too large) shrink it.

The same derivation holds for any direction ``d_t = inner(g_t)`` that the step
scales, ``w(t+1) = w(t) - eta_t d_t``: then :math:`f(\eta) = L(w(t) - \eta\, d_t)` and
:math:`f'(\eta_t) = -g_{t+1}^\top d_t`.  `hypergradient` is that one method, wrapped
around any optax transformation ``inner`` that makes the direction::

  h_t   = -g_t . d_{t-1}            (d_0 = 0: the first step keeps eta_0)
  eta_t = eta_{t-1} - hyper_lr * h_t
  d_t   = inner(g_t)
  u_t   = -eta_t * d_t

`hypergradient_sgd` is ``hypergradient(optax.identity(), ...)`` (``d = g``: SGD-HD
above), `hypergradient_adam` is ``hypergradient(optax.scale_by_adam(b1, b2, eps), ...)``
(``d_t = m_hat_t / (sqrt(v_hat_t) + eps)``: Baydin et al.'s Algorithm "Adam-HD"); any
other optax direction (``optax.scale_by_rms()``, ``optax.trace(0.9)``...) gives its
hypergradient form without new code.

Every new rate goes through the guard of `lrjax.adaptive._common` (finite, inside
``[min_lr, max_lr]``; a NaN/inf proposal keeps the previous rate and sets the sticky
``state.nonfinite`` flag).  A NaN/inf gradient is stored as the previous direction like
any other, so the rate is also held on the step after it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _validation
from lrjax.adaptive import _common
from lrjax.errors import ArgumentTypeError


class HypergradientState(NamedTuple):
  """State of `hypergradient` (and so of `hypergradient_sgd`, `hypergradient_adam`).

  Arrays only; the float leaves keep the params' dtype (``lr`` and ``hypergradient``:
  at least float32, see `lrjax.adaptive._common.compute_dtype`).

  Attributes:
    count: int32, number of updates.
    lr: the learned rate eta_t (the rate of the last update).
    inner_state: the state of the inner transformation (``EmptyState()`` for SGD,
      ``ScaleByAdamState`` for Adam: its ``count``, ``mu``, ``nu``).
    prev_direction: the previous direction ``d_{t-1} = inner(g_{t-1})`` (zeros before
      the first update), in the params' dtypes.
    hypergradient: ``h_t = f'(eta_{t-1}) = -g_t . d_{t-1}`` of the last update.
    nonfinite: bool, sticky: a proposed rate was NaN/inf (and was discarded).
    num_clipped: int32, proposed rates clipped into ``[min_lr, max_lr]``.
  """

  count: jax.Array  # type: ignore[assignment]  # a field named like tuple's method, by design
  lr: jax.Array
  inner_state: optax.OptState
  prev_direction: optax.Updates
  hypergradient: jax.Array
  nonfinite: jax.Array
  num_clipped: jax.Array


# The learned rate starts at the `learning_rate` hyperparameter: a sweep that changes that
# hyperparameter between epochs restarts it there (lrjax.train.engine.hyperparams).  A
# class attribute, set here because every assignment in a NamedTuple's body is a field
# to a type checker.
HypergradientState.hyperparameter_fields = ("lr",)  # type: ignore[attr-defined]


# The two named methods share the state type (one implementation).
HypergradientSGDState = HypergradientState
HypergradientAdamState = HypergradientState


def _check_inner(inner: Any) -> None:
  if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
    raise ArgumentTypeError("inner", "must be an optax.GradientTransformation (with `init` and "
                            f"`update`), got {type(inner).__name__}.")


def hypergradient(
    inner: optax.GradientTransformation,
    learning_rate: float,
    hyper_lr: float,
    *,
    min_lr: float | None = _common.DEFAULT_MIN_LR,
    max_lr: float | None = _common.DEFAULT_MAX_LR,
) -> optax.GradientTransformationExtraArgs:
  r"""Learns the rate that scales ``inner``'s direction by hypergradient descent.

  .. math:: \eta_t = \eta_{t-1} + \alpha\, g_t^\top d_{t-1},\qquad
            d_t = \mathrm{inner}(g_t),\qquad u_t = -\eta_t\, d_t

  Args:
    inner: the optax transformation that turns gradients into the direction ``d``
      (``optax.identity()``: SGD; ``optax.scale_by_adam()``: Adam; any other).  Extra
      args of ``update`` reach it when it accepts them.
    learning_rate: initial rate eta_0 (> 0, inside ``[min_lr, max_lr]``).
    hyper_lr: alpha, the rate of the rate (> 0).
    min_lr: lower bound of the learned rate (> 0), or None: no lower bound (the rate
      may go negative, as the paper's method allows).
    max_lr: upper bound of the learned rate (>= ``min_lr``), or None: no upper bound.

  Returns:
    A ``GradientTransformationExtraArgs`` whose updates are ``-eta_t d_t`` (add them to
    the params, as optax's) and whose state is a `HypergradientState`.

  Example:
    >>> import jax.numpy as jnp, optax, lrjax
    >>> tx = lrjax.adaptive.hypergradient(optax.scale_by_rms(), 0.01, hyper_lr=1e-3)
    >>> params = jnp.array([1.0, -2.0])
    >>> state = tx.init(params)
    >>> for _ in range(2):
    ...   updates, state = tx.update(params, state, params)
    ...   params = params + updates
    >>> bool(state.lr > 0.01)  # the second gradient agrees with the first direction
    True
  """
  _check_inner(inner)
  _check(learning_rate, hyper_lr, min_lr, max_lr)
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    dtype = _common.compute_dtype(params)
    return HypergradientState(
        count=jnp.zeros((), jnp.int32),
        lr=_common.init_lr(learning_rate, min_lr, max_lr, dtype),
        inner_state=inner.init(params),
        prev_direction=optax.tree.zeros_like(params),
        hypergradient=jnp.zeros((), dtype),
        nonfinite=jnp.zeros((), jnp.bool_),
        num_clipped=jnp.zeros((), jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    dtype = state.lr.dtype
    h = -_common.tree_vdot(updates, state.prev_direction, dtype)  # eq. 8
    lr, nonfinite, clipped = _common.guard_lr(
        state.lr, state.lr - jnp.asarray(hyper_lr, dtype) * h, min_lr, max_lr)  # eq. 6
    direction, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
    # fresh buffers in the params' dtypes (identity's direction *is* the caller's g)
    direction = _common.owned_like(direction, state.prev_direction)
    new_state = HypergradientState(
        count=optax.safe_increment(state.count),
        lr=lr,
        inner_state=inner_state,
        prev_direction=direction,
        hypergradient=h,
        nonfinite=state.nonfinite | nonfinite,
        num_clipped=state.num_clipped + clipped.astype(jnp.int32))
    return _common.scale_updates(lr, direction), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _check(learning_rate, hyper_lr, min_lr, max_lr):
  _common.check_bounds(learning_rate, min_lr, max_lr)
  _validation.check_positive("hyper_lr", hyper_lr)


def hypergradient_sgd(
    learning_rate: float,
    hyper_lr: float = 1e-3,
    *,
    min_lr: float | None = _common.DEFAULT_MIN_LR,
    max_lr: float | None = _common.DEFAULT_MAX_LR,
) -> optax.GradientTransformationExtraArgs:
  r"""SGD whose rate is learned by hypergradient descent (paper eq. 5-8, SGD-HD).

  .. math:: \eta_t = \eta_{t-1} + \alpha\, g_t^\top g_{t-1},\qquad
            u_t = -\eta_t\, g_t

  ``hypergradient(optax.identity(), learning_rate, hyper_lr, ...)``.

  Args:
    learning_rate: initial rate eta_0 (> 0, inside ``[min_lr, max_lr]``).
    hyper_lr: alpha, the rate of the rate (> 0; Baydin et al. use 1e-3 for SGD).
    min_lr: lower bound of the learned rate (> 0), or None: none (the paper's method).
    max_lr: upper bound of the learned rate (>= ``min_lr``), or None: none.

  Returns:
    A ``GradientTransformationExtraArgs`` whose updates are ``-eta_t g_t`` (add them to
    the params, as optax's); extra args are accepted and ignored.

  Example:
    >>> import jax.numpy as jnp, lrjax
    >>> tx = lrjax.adaptive.hypergradient_sgd(0.1, hyper_lr=0.01)
    >>> params = jnp.array([1.0, -2.0])
    >>> state = tx.init(params)
    >>> for _ in range(2):  # L(w) = 0.5 |w|^2: g = w, consecutive g's aligned
    ...   updates, state = tx.update(params, state, params)
    ...   params = params + updates
    >>> round(float(state.lr), 6)  # 0.1 + 0.01 * (g_1 . g_0) = 0.1 + 0.01 * 0.9 * 5
    0.145
  """
  _check(learning_rate, hyper_lr, min_lr, max_lr)
  return hypergradient(optax.identity(), learning_rate, hyper_lr,
                       min_lr=min_lr, max_lr=max_lr)


def hypergradient_adam(
    learning_rate: float,
    hyper_lr: float = 1e-7,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    min_lr: float | None = _common.DEFAULT_MIN_LR,
    max_lr: float | None = _common.DEFAULT_MAX_LR,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam whose rate is learned by hypergradient descent (Baydin et al., Adam-HD).

  .. math:: \eta_t = \eta_{t-1} + \alpha\, g_t^\top d_{t-1},\qquad
            d_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon),\qquad u_t = -\eta_t\, d_t

  ``hypergradient(optax.scale_by_adam(b1, b2, eps), learning_rate, hyper_lr, ...)``;
  the Adam moments are in ``state.inner_state``.

  Args:
    learning_rate: initial rate eta_0 (> 0, inside ``[min_lr, max_lr]``).
    hyper_lr: alpha, the rate of the rate (> 0; Baydin et al. use 1e-7 for Adam).
    b1: Adam's first-moment decay, in [0, 1).
    b2: Adam's second-moment decay, in [0, 1).
    eps: Adam's denominator term (> 0), as in ``optax.scale_by_adam``.
    min_lr: lower bound of the learned rate (> 0), or None: none (the paper's method).
    max_lr: upper bound of the learned rate (>= ``min_lr``), or None: none.

  Returns:
    A ``GradientTransformationExtraArgs`` whose updates are ``-eta_t d_t``.

  Example:
    >>> import jax.numpy as jnp, lrjax
    >>> tx = lrjax.adaptive.hypergradient_adam(1e-3, hyper_lr=1e-4)
    >>> params = jnp.array([1.0, -2.0])
    >>> state = tx.init(params)
    >>> for _ in range(2):
    ...   updates, state = tx.update(params, state, params)
    ...   params = params + updates
    >>> bool(state.lr > 1e-3)  # the second gradient agrees with the first direction
    True
  """
  _check(learning_rate, hyper_lr, min_lr, max_lr)
  _validation.check_in_range("b1", b1, 0.0, 1.0, high_open=True)
  _validation.check_in_range("b2", b2, 0.0, 1.0, high_open=True)
  _validation.check_positive("eps", eps)
  return hypergradient(optax.scale_by_adam(b1=b1, b2=b2, eps=eps), learning_rate, hyper_lr,
                       min_lr=min_lr, max_lr=max_lr)


__all__ = [
    "HypergradientState", "HypergradientSGDState", "HypergradientAdamState",
    "hypergradient", "hypergradient_sgd", "hypergradient_adam",
]
