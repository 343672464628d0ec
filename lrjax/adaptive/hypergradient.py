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

The Adam form (Baydin et al., Algorithm "Adam-HD") differentiates through the previous
Adam direction ``d_{t-1} = m_hat_{t-1} / (sqrt(v_hat_{t-1}) + eps)`` instead::

  h_t   = -g_t . d_{t-1}            (d_0 = 0)
  eta_t = eta_{t-1} - hyper_lr * h_t
  m_t, v_t, m_hat_t, v_hat_t        (Adam's moments, optax.scale_by_adam)
  u_t   = -eta_t * d_t

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


class HypergradientSGDState(NamedTuple):
  """State of `hypergradient_sgd` (arrays only).

  Attributes:
    count: int32, number of updates.
    lr: the learned rate eta_t (the rate of the last update), dtype of the params
      (at least float32).
    prev_grad: the previous gradient ``g_{t-1}`` (zeros before the first update).
    hypergradient: ``h_t = f'(eta_{t-1}) = -g_t . g_{t-1}`` of the last update.
    nonfinite: bool, sticky: a proposed rate was NaN/inf (and was discarded).
    num_clipped: int32, proposed rates clipped into ``[min_lr, max_lr]``.
  """

  count: jax.Array
  lr: jax.Array
  prev_grad: optax.Updates
  hypergradient: jax.Array
  nonfinite: jax.Array
  num_clipped: jax.Array


class HypergradientAdamState(NamedTuple):
  """State of `hypergradient_adam` (arrays only).

  Attributes:
    count: int32, number of updates (Adam's bias-correction step).
    lr: the learned rate eta_t (the rate of the last update).
    mu: Adam's first moment.
    nu: Adam's second moment.
    prev_direction: the previous Adam direction ``m_hat / (sqrt(v_hat) + eps)``
      (zeros before the first update).
    hypergradient: ``h_t = -g_t . d_{t-1}`` of the last update.
    nonfinite: bool, sticky: a proposed rate was NaN/inf (and was discarded).
    num_clipped: int32, proposed rates clipped into ``[min_lr, max_lr]``.
  """

  count: jax.Array
  lr: jax.Array
  mu: optax.Updates
  nu: optax.Updates
  prev_direction: optax.Updates
  hypergradient: jax.Array
  nonfinite: jax.Array
  num_clipped: jax.Array


def _check(learning_rate, hyper_lr, min_lr, max_lr):
  _common.check_bounds(learning_rate, min_lr, max_lr)
  _validation.check_positive("hyper_lr", hyper_lr)


def _new_lr(lr, hyper_lr, h, min_lr, max_lr):
  return _common.guard_lr(lr, lr - jnp.asarray(hyper_lr, lr.dtype) * h, min_lr, max_lr)


def hypergradient_sgd(
    learning_rate: float,
    hyper_lr: float = 1e-3,
    *,
    min_lr: float = _common.DEFAULT_MIN_LR,
    max_lr: float = _common.DEFAULT_MAX_LR,
) -> optax.GradientTransformationExtraArgs:
  r"""SGD whose rate is learned by hypergradient descent (paper eq. 5-8, SGD-HD).

  .. math:: \eta_t = \eta_{t-1} + \alpha\, g_t^\top g_{t-1},\qquad
            u_t = -\eta_t\, g_t

  Args:
    learning_rate: initial rate eta_0 (> 0, inside ``[min_lr, max_lr]``).
    hyper_lr: alpha, the rate of the rate (> 0; Baydin et al. use 1e-3 for SGD).
    min_lr: lower bound of the learned rate (> 0).
    max_lr: upper bound of the learned rate (>= ``min_lr``).

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

  def init_fn(params):
    dtype = _common.compute_dtype(params)
    return HypergradientSGDState(
        count=jnp.zeros((), jnp.int32),
        lr=_common.init_lr(learning_rate, min_lr, max_lr, dtype),
        prev_grad=optax.tree.zeros_like(params),
        hypergradient=jnp.zeros((), dtype),
        nonfinite=jnp.zeros((), jnp.bool_),
        num_clipped=jnp.zeros((), jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    dtype = state.lr.dtype
    h = -_common.tree_vdot(updates, state.prev_grad, dtype)  # eq. 8
    lr, nonfinite, clipped = _new_lr(state.lr, hyper_lr, h, min_lr, max_lr)  # eq. 6
    prev_grad = jax.tree.map(lambda g, p: g.astype(p.dtype), updates, state.prev_grad)
    new_state = HypergradientSGDState(
        count=optax.safe_increment(state.count),
        lr=lr,
        prev_grad=prev_grad,
        hypergradient=h,
        nonfinite=state.nonfinite | nonfinite,
        num_clipped=state.num_clipped + clipped.astype(jnp.int32))
    return _common.scale_updates(lr, updates), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def hypergradient_adam(
    learning_rate: float,
    hyper_lr: float = 1e-7,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    min_lr: float = _common.DEFAULT_MIN_LR,
    max_lr: float = _common.DEFAULT_MAX_LR,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam whose rate is learned by hypergradient descent (Baydin et al., Adam-HD).

  .. math:: \eta_t = \eta_{t-1} + \alpha\, g_t^\top d_{t-1},\qquad
            d_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon),\qquad u_t = -\eta_t\, d_t

  Args:
    learning_rate: initial rate eta_0 (> 0, inside ``[min_lr, max_lr]``).
    hyper_lr: alpha, the rate of the rate (> 0; Baydin et al. use 1e-7 for Adam).
    b1: Adam's first-moment decay, in [0, 1).
    b2: Adam's second-moment decay, in [0, 1).
    eps: Adam's denominator term (> 0), as in ``optax.scale_by_adam``.
    min_lr: lower bound of the learned rate (> 0).
    max_lr: upper bound of the learned rate (>= ``min_lr``).

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

  def init_fn(params):
    dtype = _common.compute_dtype(params)
    return HypergradientAdamState(
        count=jnp.zeros((), jnp.int32),
        lr=_common.init_lr(learning_rate, min_lr, max_lr, dtype),
        mu=optax.tree.zeros_like(params),
        nu=optax.tree.zeros_like(params),
        prev_direction=optax.tree.zeros_like(params),
        hypergradient=jnp.zeros((), dtype),
        nonfinite=jnp.zeros((), jnp.bool_),
        num_clipped=jnp.zeros((), jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    dtype = state.lr.dtype
    h = -_common.tree_vdot(updates, state.prev_direction, dtype)
    lr, nonfinite, clipped = _new_lr(state.lr, hyper_lr, h, min_lr, max_lr)
    count = optax.safe_increment(state.count)
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    mu_hat = optax.tree.bias_correction(mu, b1, count)
    nu_hat = optax.tree.bias_correction(nu, b2, count)
    direction = jax.tree.map(
        lambda m, v, p: (m / (jnp.sqrt(v) + eps)).astype(p.dtype),
        mu_hat, nu_hat, state.prev_direction)
    mu = jax.tree.map(lambda m, p: m.astype(p.dtype), mu, state.mu)
    nu = jax.tree.map(lambda v, p: v.astype(p.dtype), nu, state.nu)
    new_state = HypergradientAdamState(
        count=count,
        lr=lr,
        mu=mu,
        nu=nu,
        prev_direction=direction,
        hypergradient=h,
        nonfinite=state.nonfinite | nonfinite,
        num_clipped=state.num_clipped + clipped.astype(jnp.int32))
    return _common.scale_updates(lr, direction), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = [
    "HypergradientSGDState", "HypergradientAdamState",
    "hypergradient_sgd", "hypergradient_adam",
]
