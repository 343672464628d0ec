r"""PyTorch's ``ReduceLROnPlateau``, exactly, as an lrjax strategy transformation.

``on_plateau`` (in `lrjax.strategies.strategy`) follows ``optax.contrib.reduce_on_plateau``;
a user porting PyTorch code expects PyTorch's own rule, which differs in each detail:

* improvement (``is_better``), with ``best`` = inf (``mode="min"``) or -inf (``"max"``):
  ``"min"``/``"rel"``: ``loss < best (1 - threshold)``; ``"min"``/``"abs"``:
  ``loss < best - threshold``; ``"max"``/``"rel"``: ``loss > best (1 + threshold)``;
  ``"max"``/``"abs"``: ``loss > best + threshold``;
* ``num_bad_epochs`` counts the non-improving observations; during a cooldown
  (``cooldown_counter > 0``) the counter is decremented and ``num_bad_epochs`` reset;
* when ``num_bad_epochs > patience`` (strictly: ``patience + 1`` bad epochs), the rate
  becomes ``new = max(old * factor, min_lr)`` **only if** ``old - new > eps``; then
  ``cooldown_counter = cooldown`` and ``num_bad_epochs = 0``.

The rate is kept as ``max(lr factor^n, min_lr)`` with ``n`` the number of applied
reductions (equal to PyTorch's repeated products, without their float32 drift).

Extra-args contract: as every lrjax strategy (see `lrjax.strategies.strategy`), the
validation loss arrives as ``valid_loss=`` (PyTorch's ``scheduler.step(metrics)``),
once per epoch, with ``epoch_boundary`` defaulting to True when it is given; the step's
updates are multiplied by ``-lr`` after the observation, so the epoch after
``scheduler.step(loss)`` uses the new rate, as in PyTorch.  One deliberate difference: a
NaN/inf metric is not counted as a bad epoch (PyTorch counts it, since NaN compares
false); it changes nothing and sets the sticky ``nonfinite`` flag, as in every lrjax
strategy.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules._numerics import pow_f32
from lrjax.strategies.strategy import register_state

MODES = ("min", "max")
THRESHOLD_MODES = ("rel", "abs")


class TorchPlateauState(NamedTuple):
  """State of `reduce_lr_on_plateau`.

  Attributes:
    lr: float32, the rate applied to the updates now.
    best: float32, best observed metric (inf for ``"min"``, -inf for ``"max"`` before any).
    num_bad_epochs: int32, PyTorch's ``num_bad_epochs``.
    cooldown_counter: int32, PyTorch's ``cooldown_counter``.
    num_reductions: int32, reductions applied: ``lr = max(lr0 factor^n, min_lr)``.
    num_observations: int32, finite metrics observed (PyTorch's ``last_epoch``).
    nonfinite: bool, sticky: a NaN/inf metric was observed.
  """

  lr: jax.Array
  best: jax.Array
  num_bad_epochs: jax.Array
  cooldown_counter: jax.Array
  num_reductions: jax.Array
  num_observations: jax.Array
  nonfinite: jax.Array

  @property
  def index(self) -> jax.Array:  # type: ignore[override]  # lrjax's `index`, not tuple's
    """The position in the rate's sequence ``lr0 factor^n``: ``num_reductions`` (what
    `lrjax.strategies.current_index` reads, as ``index`` of every lrjax strategy)."""
    return self.num_reductions


register_state(TorchPlateauState)


def _choice(name, value, choices):
  if value not in choices:
    raise ArgumentError(name, f"must be one of {choices}, got {value!r}.")


def reduce_lr_on_plateau(
    learning_rate: chex.Numeric,
    *,
    mode: str = "min",
    factor: chex.Numeric = 0.1,
    patience: chex.Numeric = 10,
    threshold: chex.Numeric = 1e-4,
    threshold_mode: str = "rel",
    cooldown: chex.Numeric = 0,
    min_lr: chex.Numeric = 0.0,
    eps: chex.Numeric = 1e-8,
) -> optax.GradientTransformationExtraArgs:
  """PyTorch's ``ReduceLROnPlateau(optimizer(lr=learning_rate), ...)``, same arguments.

  Place it after the inner optimizer, as every lrjax strategy (it scales the updates by
  ``-lr``)::

    tx = optax.chain(optax.trace(0.9), reduce_lr_on_plateau(0.1, patience=5))
    updates, state = tx.update(grads, state, params, valid_loss=loss)  # once per epoch

  Numbers may be traced (vmapped over variants); ``mode`` and ``threshold_mode`` are
  Python strings.  The current rate inside a chain: ``lrjax.strategies.current_lr(state)``
  (PyTorch's ``get_last_lr()[0]``); the reductions applied: ``current_index(state)``.

  Args:
    learning_rate: the optimizer's initial rate, > 0.
    mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
    factor: reduction factor, in [0, 1).
    patience: bad epochs tolerated before a reduction, int >= 0.
    threshold: improvement threshold, >= 0.
    threshold_mode: ``"rel"`` or ``"abs"``.
    cooldown: epochs ignored after a reduction, int >= 0.
    min_lr: the floor of the rate, >= 0.
    eps: reductions smaller than ``eps`` are not applied, >= 0.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> tx = reduce_lr_on_plateau(0.1, factor=0.5, patience=0)
    >>> state = tx.init(jnp.zeros(2))
    >>> for loss in (1.0, 1.0):
    ...   _, state = tx.update(jnp.ones(2), state, valid_loss=loss)
    >>> round(float(state.lr), 6)
    0.05
  """
  _choice("mode", mode, MODES)
  _choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
  _validation.check_positive("learning_rate", learning_rate)
  _validation.check_in_range("factor", factor, 0.0, 1.0, high_open=True)
  _validation.check_non_negative_int("patience", patience)
  _validation.check_non_negative("threshold", threshold)
  _validation.check_non_negative_int("cooldown", cooldown)
  _validation.check_non_negative("min_lr", min_lr)
  _validation.check_non_negative("eps", eps)
  f32 = jnp.float32

  def rate(num_reductions):
    lr0 = jnp.asarray(learning_rate, f32)
    # factor = 0: one reduction gives min_lr (pow_f32 needs a positive base)
    safe = jnp.where(jnp.asarray(factor, f32) > 0, jnp.asarray(factor, f32), 1.0)
    scaled = jnp.where(jnp.asarray(factor, f32) > 0, lr0 * pow_f32(safe, num_reductions),
                       jnp.where(num_reductions > 0, 0.0, lr0))
    return jnp.maximum(scaled, jnp.asarray(min_lr, f32)).astype(f32)

  def init_fn(params) -> TorchPlateauState:
    del params
    worst = jnp.inf if mode == "min" else -jnp.inf
    return TorchPlateauState(
        lr=jnp.asarray(learning_rate, f32).reshape(()) + jnp.zeros((), f32),
        best=jnp.full((), worst, f32),
        num_bad_epochs=jnp.zeros((), jnp.int32),
        cooldown_counter=jnp.zeros((), jnp.int32),
        num_reductions=jnp.zeros((), jnp.int32),
        num_observations=jnp.zeros((), jnp.int32),
        nonfinite=jnp.zeros((), bool))

  def is_better(current, best):
    thr = jnp.asarray(threshold, f32)
    if mode == "min":
      return current < (best * (1.0 - thr) if threshold_mode == "rel" else best - thr)
    return current > (best * (1.0 + thr) if threshold_mode == "rel" else best + thr)

  def observe(state: TorchPlateauState, metric, boundary) -> TorchPlateauState:
    current = jnp.asarray(metric, f32).reshape(())
    finite = jnp.isfinite(current)
    obs = boundary & finite
    better = is_better(current, state.best)
    best = jnp.where(better, current, state.best)
    bad = jnp.where(better, 0, state.num_bad_epochs + 1)
    in_cooldown = state.cooldown_counter > 0
    cooldown_counter = jnp.where(in_cooldown, state.cooldown_counter - 1,
                                 state.cooldown_counter)
    bad = jnp.where(in_cooldown, 0, bad)
    reduce = bad > jnp.asarray(patience, jnp.int32)
    candidate = rate(state.num_reductions + 1)
    applied = reduce & (state.lr - candidate > jnp.asarray(eps, f32))
    keep = lambda new, old: jnp.where(obs, new, old)  # noqa: E731
    return TorchPlateauState(
        lr=keep(jnp.where(applied, candidate, state.lr), state.lr).astype(f32),
        best=keep(best, state.best).astype(f32),
        num_bad_epochs=keep(jnp.where(reduce, 0, bad), state.num_bad_epochs).astype(
            jnp.int32),
        cooldown_counter=keep(jnp.where(reduce, jnp.asarray(cooldown, jnp.int32),
                                        cooldown_counter),
                              state.cooldown_counter).astype(jnp.int32),
        num_reductions=keep(state.num_reductions + applied.astype(jnp.int32),
                            state.num_reductions).astype(jnp.int32),
        num_observations=keep(state.num_observations + 1,
                              state.num_observations).astype(jnp.int32),
        nonfinite=state.nonfinite | (boundary & ~finite))

  def update_fn(updates, state: TorchPlateauState, params=None, *, valid_loss=None,
                epoch_boundary=None, **extra_args):
    del params, extra_args
    if epoch_boundary is None:
      epoch_boundary = valid_loss is not None
    if valid_loss is not None and epoch_boundary is not False:
      boundary = jnp.asarray(epoch_boundary).astype(bool).reshape(())
      state = observe(state, valid_loss, boundary)
    # The rate of the reductions so far, from the arguments as they are now (lr0 before
    # any): a sweep that changes them between epochs gets the new rate from the next step.
    state = state._replace(lr=jnp.where(state.num_reductions > 0, rate(state.num_reductions),
                                        jnp.asarray(learning_rate, f32)).astype(f32))
    step = -state.lr
    updates = jax.tree.map(lambda g: jnp.asarray(step, g.dtype) * g, updates)
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


TORCH_STRATEGIES = {"ReduceLROnPlateau": reduce_lr_on_plateau}
"""PyTorch schedulers that depend on a metric: name -> lrjax strategy factory."""


def from_torch(name: str, *, lr: float, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
  """The lrjax strategy of PyTorch's ``torch.optim.lr_scheduler.<name>(optimizer, **kwargs)``.

  ``lr`` is the optimizer's initial rate.  Step-function schedulers are schedules:
  ``lrjax.schedules.from_torch``.

  Example:
    >>> tx = from_torch("ReduceLROnPlateau", lr=0.1, mode="max", patience=3)
  """
  if name not in TORCH_STRATEGIES:
    raise ValueError(f"PyTorch scheduler {name!r} is not an lrjax strategy; supported: "
                     f"{sorted(TORCH_STRATEGIES)} (step-function schedulers: "
                     "lrjax.schedules.from_torch).")
  _validation.check_positive("lr", lr)
  factory = TORCH_STRATEGIES[name]
  allowed = [p for p in inspect.signature(factory).parameters if p != "learning_rate"]
  unknown = sorted(set(kwargs) - set(allowed))
  if unknown:
    raise ValueError(f"{name}: unsupported argument(s) {unknown}; supported: {allowed}.")
  return factory(lr, **kwargs)


__all__ = ["MODES", "THRESHOLD_MODES", "TorchPlateauState", "reduce_lr_on_plateau",
           "TORCH_STRATEGIES", "from_torch"]
