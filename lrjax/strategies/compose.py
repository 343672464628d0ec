r"""Composing a strategy with optax: the sign, ``MultiSteps`` and ``apply_if_finite``.

The sign
--------
A strategy multiplies the updates it receives by ``-lr``.  Its inner transformation
must therefore give a *direction* without a rate (``optax.identity()``,
``optax.trace``, ``optax.scale_by_adam``, ``optax.scale_by_rms``, ...), never a whole
optimizer: ``optax.chain(optax.sgd(1.0), by_epoch(seq))`` applies the minus twice and
*ascends*, silently.  The complete optimizers (`lrjax.strategies.sgd`, ``adam``,
``adamw``, ``rmsprop``, ``adagrad``) leave no sign to get wrong; `with_strategy` checks.

What `with_strategy` detects, and what it cannot: it runs the inner transformation once
on a positive probe gradient (all ones, at construction on a float32 scalar, or at
``init`` on the real params when the scalar probe does not run) and refuses an inner
whose first update is <= 0 everywhere and < 0 somewhere: every optax optimizer with a
positive rate (``sgd``, ``adam``, ``rmsprop``, ``adagrad``, ..., ``scale(-c)``,
``scale_by_learning_rate``).  It cannot see an inner whose *first* update is zero
(a warm-up schedule starting at 0), whose sign does not follow the gradient's (e.g.
weight decay dominating at the probe), one it cannot run outside ``jit`` with the probe
(``init`` traced, an inner that needs extra args), nor anything chained with plain
``optax.chain``: the strategy only sees the updates, never the gradient they came from.

``optax.MultiSteps`` (gradient accumulation)
--------------------------------------------
``MultiSteps`` runs its inner transformation on every micro-step but keeps the inner
state only on the emitting one, so a boundary (``valid_loss``/``epoch_boundary``)
passed on any other micro-step is lost.  `multi_steps` wraps it and carries the pending
boundary (with its loss) and initial observation to the next emitting step.  Several
boundaries before one emit collapse into one, with the latest loss; pass a
``valid_loss`` with every boundary (one without a loss is carried as ``inf``, which the
loss rules ignore but which sets the ``nonfinite`` flag).  With plain ``MultiSteps``,
pass the boundary on the emitting micro-step yourself
(``optax.MultiSteps.has_updated`` tells, after the update, whether one was).

``optax.apply_if_finite`` (skipping NaN-gradient steps)
-------------------------------------------------------
``apply_if_finite(chain(inner, strategy))`` throws away the *whole* update of a step
with a NaN/inf gradient, the strategy's state included, so a boundary that falls on
such a step is lost and the sequence stays one position behind from then on.  Put the
strategy *outside* the wrapper, as the engine does
(``lrjax.train.frontends.optimizers.make_transform``)::

  optax.chain(optax.apply_if_finite(inner, max_consecutive_errors), strategy)

There the skipped step gives zero updates (scaled by the strategy: still zero) and the
strategy observes its boundary as usual.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _validation
from lrjax.errors import ArgumentError, ArgumentTypeError

_SIGN_HINT = (
    "chained with a strategy (which multiplies by -lr) the minus is applied twice and "
    "training ascends. Give the rate-free direction instead (optax.identity(), "
    "optax.trace(...), optax.scale_by_adam(...), optax.scale_by_rms(...)), or use "
    "lrjax.strategies.sgd / adam / adamw / rmsprop / adagrad.")


def _first_update_descends(inner: optax.GradientTransformation, params) -> bool | None:
  """Whether ``inner``'s first update of an all-ones gradient is <= 0 and < 0 somewhere.

  None when it cannot be told (the probe does not run, or runs traced).
  """
  try:
    state = inner.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = inner.update(grads, state, params)
    leaves = jax.tree.leaves(updates)
    if not leaves or any(isinstance(x, jax.core.Tracer) for x in leaves):
      return None
    values = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in leaves])
  except Exception:  # pylint: disable=broad-except  # an inner we cannot probe
    return None
  return bool(np.all(values <= 0) and np.any(values < 0))


def with_strategy(inner: optax.GradientTransformation,
                  strategy: optax.GradientTransformationExtraArgs, *,
                  check_sign: bool = True) -> optax.GradientTransformationExtraArgs:
  """``optax.chain(inner, strategy)``, refusing an ``inner`` that already descends.

  Args:
    inner: a rate-free direction (``optax.identity()``, ``optax.scale_by_adam()``...).
    strategy: an lrjax strategy (`scale_by_strategy`, `by_epoch`, ...).
    check_sign: probe ``inner`` (module docstring: what is and is not detected).

  Raises:
    ValueError: naming ``inner``, if its first update of a positive gradient is
      negative: it already scales by a negative rate (``optax.sgd(lr)``, ...).

  Example:
    >>> import optax
    >>> from lrjax.schedules import seq1
    >>> from lrjax.strategies import by_epoch
    >>> tx = with_strategy(optax.scale_by_adam(), by_epoch(seq1(0.01)))
    >>> with_strategy(optax.sgd(1.0), by_epoch(seq1(0.01)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrjax.errors.ArgumentError: `inner` already scales its updates by a negative rate ...
  """
  for name, tx in (("inner", inner), ("strategy", strategy)):
    if not isinstance(tx, optax.GradientTransformation):
      raise ArgumentTypeError(
          name, f"must be an optax.GradientTransformation, got {tx!r}.")
  _validation.check_bool("check_sign", check_sign)
  chained = optax.chain(inner, strategy)
  if not check_sign:
    return chained

  def refuse():
    raise ArgumentError("inner", "already scales its updates by a negative rate (its first "
                        f"update of a positive gradient is negative, as optax.sgd(lr) "
                        f"gives): {_SIGN_HINT}")

  verdict = _first_update_descends(inner, jnp.zeros((), jnp.float32))
  if verdict:
    refuse()
  if verdict is not None:
    return chained

  def init_fn(params):
    # The scalar probe did not run: try the real params (skipped when traced).
    if _first_update_descends(inner, params):
      refuse()
    return chained.init(params)

  return optax.GradientTransformationExtraArgs(init_fn, chained.update)


class PendingSignal(NamedTuple):
  """The boundary / initial observation waiting for `multi_steps`' next emitting step."""

  boundary: jax.Array  # bool
  boundary_loss: jax.Array  # float32, the latest boundary's validation loss
  initial: jax.Array  # bool
  initial_loss: jax.Array  # float32


class MultiStepsStrategyState(NamedTuple):
  multi_steps: optax.MultiStepsState
  pending: PendingSignal


def multi_steps(opt: optax.GradientTransformation, every_k_schedule,
                **multi_steps_kwargs) -> optax.GradientTransformationExtraArgs:
  """``optax.MultiSteps(opt, every_k_schedule)`` that does not lose a boundary.

  The strategy inside ``opt`` sees, on each emitting micro-step, the boundary (and
  initial observation) passed on any micro-step since the previous emit.  Extra
  keyword arguments go to ``optax.MultiSteps``.

  Example:
    >>> import optax
    >>> from lrjax.schedules import seq1
    >>> from lrjax.strategies import sgd
    >>> tx = multi_steps(sgd(seq1(0.1), "epoch"), every_k_schedule=4)
  """
  if not isinstance(opt, optax.GradientTransformation):
    raise ArgumentTypeError(
        "opt", f"must be an optax.GradientTransformation, got {opt!r}.")
  if not callable(every_k_schedule):  # optax: an int, or a function step -> int
    _validation.check_positive_int("every_k_schedule", every_k_schedule)
  ms = optax.MultiSteps(opt, every_k_schedule, **multi_steps_kwargs)

  def init_fn(params) -> MultiStepsStrategyState:
    return MultiStepsStrategyState(
        ms.init(params),
        PendingSignal(jnp.zeros((), bool), jnp.full((), jnp.inf, jnp.float32),
                      jnp.zeros((), bool), jnp.full((), jnp.inf, jnp.float32)))

  def update_fn(updates, state: MultiStepsStrategyState, params=None, *,
                valid_loss=None, epoch_boundary=None, initial_observation=None,
                **extra_args):
    if epoch_boundary is None:
      epoch_boundary = valid_loss is not None
    initial = jnp.asarray(False if initial_observation is None else initial_observation,
                          bool).reshape(())
    boundary = jnp.asarray(epoch_boundary, bool).reshape(()) & ~initial
    loss = jnp.asarray(jnp.inf if valid_loss is None else valid_loss,
                       jnp.float32).reshape(())
    p = state.pending
    pending_boundary = p.boundary | boundary
    boundary_loss = jnp.where(boundary, loss, p.boundary_loss)
    pending_initial = p.initial | initial
    initial_loss = jnp.where(initial, loss, p.initial_loss)
    # The initial observation goes first; a boundary pending with it waits one emit.
    send_boundary = pending_boundary & ~pending_initial
    updates, ms_state = ms.update(
        updates, state.multi_steps, params,
        valid_loss=jnp.where(pending_initial, initial_loss, boundary_loss),
        epoch_boundary=send_boundary, initial_observation=pending_initial, **extra_args)
    # gradient_step counts emits (a skipped micro-step does not move it).
    emitted = ms_state.gradient_step != state.multi_steps.gradient_step
    pending = PendingSignal(
        boundary=pending_boundary & ~(emitted & send_boundary),
        boundary_loss=boundary_loss,
        initial=pending_initial & ~emitted,
        initial_loss=initial_loss)
    return updates, MultiStepsStrategyState(ms_state, pending)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
