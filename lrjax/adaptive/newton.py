r"""Second-order adaptive rate: Newton's method on eta by finite differences.

Gorti & Ravaut, "Faster gradient descent convergence via an adaptive learning rate
schedule", section 3.2.  With :math:`f(\eta) = L(w(t) - \eta\, g(t))` (eq. 3-4), Newton's
method on the rate (eq. 10), :math:`\eta \leftarrow \eta - f'(\eta) / f''(\eta)`, with
central differences of step :math:`\epsilon` for :math:`f'` (eq. 15) and step
:math:`2\epsilon` for :math:`f''` (eq. 12-14) gives (eq. 16)

.. math::

  \eta(t+1) = \eta(t) - 2\epsilon\,
    \frac{f(\eta + \epsilon) - f(\eta - \epsilon)}
         {f(\eta + 2\epsilon) + f(\eta - 2\epsilon) - 2 f(\eta)}

and, only when the denominator is ~0, the smoothed form (eq. 17-18) whose denominator
is ``denominator + delta``.  Two smoothing rules (argument ``smoothing``):

* ``"robust"`` (default, `robust_smoothing`): ``max(denominator, 0) + delta``.  A ~0
  denominator's sign is rounding noise, so a negative one counts as 0: the smoothed
  denominator is >= delta, never a sum that cancels to ~0 again.  For training in
  float32, where a denominator inside the tolerance is noise.
* ``"paper"`` (`paper_smoothing`): ``denominator + delta``, eq. 18 exactly.  To
  reproduce the paper, or in float64 where a small negative denominator is real
  (concave ``f``).  It differs from the default only on a negative ~0 denominator,
  where the step is larger, of either sign (unbounded as ``denominator -> -delta``):
  e.g. ``eta = 0.1, eps = 1e-3, f(eta+eps) - f(eta-eps) = -2.025e-3``, denominator
  ``-5e-7``: paper 8.2, robust 4.15.

Any other rule is a function ``(denominator, delta) -> smoothed denominator`` passed
as ``smoothing``; it is applied only where ``|denominator| <= denominator_tol``.

Order of operations (section 4.1), at the step that receives ``g = g(t)`` with the
current rate ``eta^(k)``:

1. the five losses ``f(eta^(k) + j eps)``, ``j = -2..2``, in ONE ``jax.vmap``-ed call of
   ``value_fn`` over the five step sizes;
2. ``L^(k+1) = f(eta^(k))`` is stored as ``state.loss`` (the loss *after* this update);
3. this step's update uses ``eta^(k)``: ``w(t+1) = w(t) - eta^(k) g(t)`` (eq. 9);
4. ``eta^(k+1)`` from eq. 16 (or 18), through the guard of `lrjax.adaptive._common`,
   becomes ``state.lr``, the rate of the *next* step.

On a quadratic loss :math:`f` is a parabola in :math:`\eta`, so the finite differences
are exact (up to rounding) and ``eta^(k+1)`` is the exact line minimum along ``-g(t)``,
:math:`\eta^* = g^\top g / g^\top A g`, applied one step later.

``value_fn`` reaches the transformation as optax's line searches get it: as an extra
argument of ``update`` (``update(updates, state, params, *, value_fn, **extra)``);
extra args whose names ``value_fn`` accepts (a batch, ...) are passed on to it, the
others are ignored.  Each step costs five forward passes (no backward pass).

Precision (paper section 6.1)
-----------------------------
The paper's ``eps = 1e-5`` is fine in float64 but *not* in float32: **in float32 with
eps = 1e-5 practically every step takes the smoothed branch (eq. 18), not the Newton
step (eq. 16)** (all 50 steps of gradient descent on a 5-d quadratic, in the tests);
the rate then moves by a first-order step on the look-ahead loss.  ``state.smoothed``
says which branch the last update took, ``state.num_smoothed`` counts the smoothed
ones.  The engine (`lrjax.train`) therefore uses ``eps = 1e-2`` for its Newton
optimizer unless a variant sets ``eps`` (there most steps take eq. 16, in the tests).

Why: the second difference is :math:`4\epsilon^2 f''(\eta) \approx 4\cdot10^{-10}\,
g^\top H g`, while each float32 loss value carries a rounding error of about
:math:`6\cdot10^{-8}|L|` (plus the rounding of ``w - eta g`` itself): for ordinary
losses the float32 denominator is rounding noise of random sign.  This module therefore
treats a denominator as "~0" (eq. 17) when ``|denominator| <= denominator_tol``, whose
default is the rounding level ``8 * finfo(dtype).eps * max_j |f_j|``; then it is
smoothed (eq. 18; with the default rule ``max(denominator, 0) + delta``) and the rate
moves by a small, first-order-like step, at most ``4 eps^2 (g . g) / delta`` (about
``4e-4 g . g`` with the defaults), instead of jumping by noise.  For a real
second-order step in float32 use a larger ``eps`` (1e-3 .. 1e-2 for losses of order
1), or float64 params under ``jax_enable_x64``.  The internal computation (the rate,
the five step sizes, the differences) uses the params' dtype (at least float32):
float64 params give a float64 rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _validation
from lrjax.adaptive import _common
from lrjax.errors import ArgumentError, ArgumentTypeError

# Step sizes of the five evaluations, in units of eps: f(eta + j eps), j = -2..2.
_OFFSETS = (-2.0, -1.0, 0.0, 1.0, 2.0)

# A smoothing rule: (denominator, delta) -> the denominator eq. 18 divides by, applied
# only where the denominator is ~0.
SmoothingRule = Callable[[jax.Array, jax.Array], jax.Array]


def robust_smoothing(denominator: jax.Array, delta: jax.Array) -> jax.Array:
  """``max(denominator, 0) + delta`` (>= delta): a ~0 denominator's sign is noise."""
  return jnp.maximum(denominator, 0.0) + delta


def paper_smoothing(denominator: jax.Array, delta: jax.Array) -> jax.Array:
  """``denominator + delta``: the paper's eq. 18 exactly."""
  return denominator + delta


# The named rules of ``newton_lr(smoothing=...)``; any other is passed as a function.
SMOOTHING_RULES: dict[str, SmoothingRule] = {
    "robust": robust_smoothing,
    "paper": paper_smoothing,
}


def _smoothing_rule(smoothing: Any) -> SmoothingRule:
  if isinstance(smoothing, str):
    if smoothing not in SMOOTHING_RULES:
      raise ArgumentError("smoothing", f"must be one of {sorted(SMOOTHING_RULES)} or a "
                          f"function (denominator, delta) -> denominator, got {smoothing!r}.")
    return SMOOTHING_RULES[smoothing]
  if not callable(smoothing):
    raise ArgumentTypeError("smoothing", "must be one of "
                            f"{sorted(SMOOTHING_RULES)} or a function (denominator, delta) -> "
                            f"denominator, got {type(smoothing).__name__}.")
  return smoothing


class NewtonLRState(NamedTuple):
  """State of `newton_lr` (arrays only).

  Attributes:
    count: int32, number of updates.
    lr: eta^(k), the rate the *next* update applies (dtype of the params, >= float32).
    loss: ``L^(k) = f(eta^(k-1))``, the loss after the last update (NaN before any).
    nonfinite: bool, sticky: a proposed rate was NaN/inf (a NaN/inf loss, or a zero
      denominator with ``delta = 0``) and was discarded.
    smoothed: bool, the branch of the last update: True when its denominator was ~0
      and was smoothed (eq. 18), False when it took the Newton step (eq. 16).
    num_smoothed: int32, updates whose denominator was ~0 and was smoothed (eq. 18).
    num_clipped: int32, proposed rates clipped into ``[min_lr, max_lr]``.
  """

  count: jax.Array  # type: ignore[assignment]  # a field named like tuple's method, by design
  lr: jax.Array
  loss: jax.Array
  nonfinite: jax.Array
  smoothed: jax.Array
  num_smoothed: jax.Array
  num_clipped: jax.Array


# The learned rate starts at the `learning_rate` hyperparameter: a sweep that changes that
# hyperparameter between epochs restarts it there (lrjax.train.engine.hyperparams).  A
# class attribute, set here because every assignment in a NamedTuple's body is a field
# to a type checker.
NewtonLRState.hyperparameter_fields = ("lr",)  # type: ignore[attr-defined]


def five_losses(value_fn: Callable[..., Any], params: Any, direction: Any,
                etas: jax.Array, **fn_kwargs: Any) -> jax.Array:
  """``[value_fn(params - eta_j * direction) for eta_j in etas]`` as one vmapped call.

  ``params`` and ``direction`` (and ``fn_kwargs``) are shared by every evaluation; only
  the step size is batched, so ``value_fn`` is traced once.
  """

  # as JAX arrays: numpy float64 params without jax_enable_x64 compute in float32
  params, direction = jax.tree.map(jnp.asarray, (params, direction))

  def f(eta):
    moved = jax.tree.map(
        lambda p, d: (p - eta.astype(p.dtype) * d.astype(p.dtype)).astype(p.dtype),
        params, direction)
    return value_fn(moved, **fn_kwargs)

  losses = jax.vmap(f)(etas)
  if jnp.shape(losses) != jnp.shape(etas):
    raise ArgumentError("value_fn", "must return a scalar loss, got shape "
                        f"{jnp.shape(losses)[1:]}.")
  return losses


def newton_lr(
    learning_rate: float,
    *,
    eps: float = 1e-5,
    delta: float = 1e-6,
    min_lr: float | None = _common.DEFAULT_MIN_LR,
    max_lr: float | None = _common.DEFAULT_MAX_LR,
    denominator_tol: float | None = None,
    smoothing: str | SmoothingRule = "robust",
) -> optax.GradientTransformationExtraArgs:
  r"""Gradient descent whose rate follows Newton's method by finite differences.

  .. math:: \eta^{(k+1)} = \eta^{(k)} - 2\epsilon\,
            \frac{f(\eta+\epsilon) - f(\eta-\epsilon)}
                 {f(\eta+2\epsilon) + f(\eta-2\epsilon) - 2f(\eta)\;[+\,\delta]}

  with :math:`f(\eta) = ` ``value_fn(params - eta * updates)``; only when
  ``|denominator| <= denominator_tol`` (eq. 17-18) the denominator is smoothed:
  ``max(denominator, 0) + delta`` by default, ``denominator + delta`` (the paper's
  eq. 18 exactly) with ``smoothing="paper"``.  The output updates are
  ``-eta^(k) * updates`` (plain SGD with the current rate; chain an inner
  transformation before it for a preconditioned direction: ``f`` then moves along that
  direction).

  Args:
    learning_rate: initial rate eta^(0) (> 0, inside ``[min_lr, max_lr]``).
    eps: finite-difference step (> 0).  1e-5 (the paper's) needs float64: in float32
      with eps = 1e-5 practically every step takes the smoothed branch (eq. 18), a
      first-order-like step, not Newton's (``state.smoothed`` tells).  Use 1e-3 ..
      1e-2 in float32 for losses of order 1 (the engine uses 1e-2); see the module
      docstring.
    delta: smoothing added to a ~0 denominator (>= 0, paper: 1e-6).
    min_lr: lower bound of the learned rate (> 0), or None: no lower bound, so the
      rate follows eq. 16 exactly, negative values included (the paper's method;
      with a bound the clip is a guard, see `lrjax.adaptive._common`).
    max_lr: upper bound of the learned rate (>= ``min_lr``), or None: none.
    denominator_tol: a denominator with ``|den| <= denominator_tol`` is "~0".  None
      (default): the rounding level of the five losses,
      ``8 * finfo(dtype).eps * max_j |f_j|``.  0.0: only an exact zero.
    smoothing: how a ~0 denominator is smoothed: ``"robust"`` (default,
      ``max(den, 0) + delta``: float32 training, where the sign of a ~0 denominator is
      noise), ``"paper"`` (``den + delta``, eq. 18 exactly: reproducing the paper, or
      float64), or a function ``(denominator, delta) -> denominator``.

  Returns:
    A ``GradientTransformationExtraArgs`` with
    ``update(updates, state, params, *, value_fn, **extra)``; ``value_fn(params) ->
    scalar loss`` (plus any of ``extra`` it names) is required.

  Example:
    >>> import jax.numpy as jnp, lrjax
    >>> A = jnp.array([1.0, 4.0])                    # L(w) = 0.5 sum(A w^2)
    >>> value_fn = lambda w: 0.5 * jnp.sum(A * w ** 2)
    >>> tx = lrjax.adaptive.newton_lr(0.01, eps=1e-2)
    >>> params = jnp.array([1.0, 1.0])
    >>> state = tx.init(params)
    >>> g = A * params
    >>> updates, state = tx.update(g, state, params, value_fn=value_fn)
    >>> round(float(state.lr), 3)                    # g.g / g.Ag = 17 / 65
    0.262
  """
  _common.check_bounds(learning_rate, min_lr, max_lr)
  _validation.check_positive("eps", eps)
  _validation.check_non_negative("delta", delta)
  if denominator_tol is not None:
    _validation.check_non_negative("denominator_tol", denominator_tol)
  smooth = _smoothing_rule(smoothing)

  def init_fn(params):
    dtype = _common.compute_dtype(params)
    return NewtonLRState(
        count=jnp.zeros((), jnp.int32),
        lr=_common.init_lr(learning_rate, min_lr, max_lr, dtype),
        loss=jnp.full((), jnp.nan, dtype),
        nonfinite=jnp.zeros((), jnp.bool_),
        smoothed=jnp.zeros((), jnp.bool_),
        num_smoothed=jnp.zeros((), jnp.int32),
        num_clipped=jnp.zeros((), jnp.int32))

  def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
    if value_fn is None:
      raise ArgumentTypeError(
          "newton_lr", "needs the loss as a function of the params: call "
          "`update(updates, state, params, value_fn=loss_fn)` (`value_fn` is missing).")
    if not callable(value_fn):
      raise ArgumentTypeError("value_fn", f"must be callable, got {type(value_fn).__name__}.")
    if params is None:
      raise ArgumentError("newton_lr", "needs `params` to evaluate `value_fn` along the "
                          "update direction.")
    fn_kwargs = _common.split_fn_kwargs(value_fn, extra_args)
    dtype = state.lr.dtype
    lr = state.lr
    eps_ = jnp.asarray(eps, dtype)

    # 1. the five losses at eta^(k), one vmapped call.
    etas = lr + eps_ * jnp.asarray(_OFFSETS, dtype)
    losses = five_losses(value_fn, params, updates, etas, **fn_kwargs).astype(dtype)
    f_m2, f_m1, f_0, f_p1, f_p2 = (losses[j] for j in range(5))

    # 4. eta^(k+1), eq. 16, smoothed (eq. 17-18) only when the denominator is ~0.
    numerator = f_p1 - f_m1
    denominator = f_p2 + f_m2 - 2.0 * f_0
    if denominator_tol is None:
      tol = 8.0 * jnp.finfo(dtype).eps * jnp.max(jnp.abs(losses))
    else:
      tol = jnp.asarray(denominator_tol, dtype)
    near_zero = jnp.abs(denominator) <= tol
    # eq. 18 (the rule chosen by `smoothing`), only where the denominator is ~0.
    smoothed = jnp.asarray(smooth(denominator, jnp.asarray(delta, dtype)), dtype)
    denominator = jnp.where(near_zero, smoothed, denominator)
    proposed = lr - 2.0 * eps_ * numerator / denominator
    new_lr, nonfinite, clipped = _common.guard_lr(lr, proposed, min_lr, max_lr)

    new_state = NewtonLRState(
        count=optax.safe_increment(state.count),
        lr=new_lr,
        loss=f_0,  # 2. L^(k+1) = f(eta^(k))
        nonfinite=state.nonfinite | nonfinite,
        smoothed=near_zero,
        num_smoothed=state.num_smoothed + near_zero.astype(jnp.int32),
        num_clipped=state.num_clipped + clipped.astype(jnp.int32))
    # 3. this step's update uses eta^(k).
    return _common.scale_updates(lr, updates), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = [
    "NewtonLRState", "newton_lr", "five_losses", "SmoothingRule", "robust_smoothing",
    "paper_smoothing", "SMOOTHING_RULES",
]
