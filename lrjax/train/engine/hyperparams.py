"""Hyperparameters as state: a variant's numbers in force, and the copies an optimizer keeps.

A variant's numeric hyperparameters are an input of its compiled epoch (the
`lrjax.train.engine.epoch.VariantState`'s ``hyper``), and ``optimizer_fn(h)`` is called
inside the traced program with them (`Transform`), so a value changed between epochs
reaches every closure of the optimizer from the next step: ``optax.sgd(h["lr"],
momentum=h["momentum"])`` needs nothing more.

Some optimizers also keep a *copy* of a hyperparameter in their state, and from then on
read the copy, not the closure:

* ``optax.inject_hyperparams`` stores its numeric arguments in ``state.hyperparams`` at
  ``init`` and reads them from there at every update (its schedules it re-evaluates at
  every step, from the count);
* lrjax's adaptive rates (`lrjax.adaptive`) start their learned rate ``state.lr`` at the
  given ``learning_rate`` and then learn it.

`sync` writes such copies when the hyperparameters change: for every node of the state
whose type lists fields holding copies (`copy_fields`: optax's inject states, and any
``NamedTuple`` declaring a ``hyperparameter_fields`` class attribute, as the adaptive
states do), each leaf of those fields is set to what ``init`` gives with the new
hyperparameters, where that differs from what ``init`` gives with the old ones.  So an
injected ``momentum`` takes its new value, an adaptive rate restarts from a new
``learning_rate`` (and keeps what it learned when only ``hyper_lr`` changed), and
nothing else of the state moves: accumulators (Adam's moments, Adagrad's sums) keep
their history.  lrjax's strategies need no copy: they apply ``sequence(index)`` of the
current sequence at every step (`lrjax.strategies.scale_by_strategy`), so a new ``r0``
applies at the strategy's current position.

A user's own transformation that caches a hyperparameter declares it the same way::

  class MyState(NamedTuple):
    hyperparameter_fields = ("lr",)   # a class attribute, not a field
    lr: jax.Array
    ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax.errors import ArgumentTypeError

# optax's states holding copies of hyperparameters, by type (optax cannot declare them).
_OPTAX_COPY_FIELDS = {
    optax.InjectHyperparamsState: ("hyperparams",),
    optax.InjectStatefulHyperparamsState: ("hyperparams",),
}


class VariantHyper(NamedTuple):
  """A variant's hyperparameters in force: the numbers and the seed (leading variant
  axis when stacked)."""

  h: dict  # name -> float32 / int32
  seed: Any  # int32: the variant's initialisation, data order and RNG streams


def copy_fields(node) -> tuple[str, ...] | None:
  """The fields of ``node`` that hold copies of hyperparameters, or None (not such a
  state node)."""
  fields = _OPTAX_COPY_FIELDS.get(type(node))
  if fields is None and isinstance(node, tuple) and hasattr(node, "_fields"):
    fields = getattr(type(node), "hyperparameter_fields", None)
  return tuple(fields) if fields is not None else None


def _is_copy_node(x) -> bool:
  return copy_fields(x) is not None


def _changed(state, before, after):
  """``state``'s leaves, replaced by ``after``'s where ``after`` differs from ``before``."""
  def pick(s, b, a):
    a = jnp.asarray(a)
    return jnp.where(jnp.asarray(b) != a, a.astype(jnp.result_type(s)), s)
  return jax.tree.map(pick, state, before, after)


def sync(opt_state, before, after):
  """``opt_state`` with its hyperparameter copies updated (see the module docstring).

  ``before`` / ``after``: the optimizer's ``init`` (same structure as ``opt_state``)
  under the old and the new hyperparameters.  Pure; jit- and vmap-safe.
  """
  def visit(state, b, a):
    fields = copy_fields(state)
    if fields is None:
      return state  # a leaf outside any node that keeps copies
    return type(state)(**{
        name: (_changed if name in fields else sync)(getattr(state, name), getattr(b, name),
                                                      getattr(a, name))
        for name in state._fields})

  return jax.tree.map(visit, opt_state, before, after, is_leaf=_is_copy_node)


_TRACED_AS_PYTHON = (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
                     jax.errors.TracerIntegerConversionError)


def make_tx(optimizer_fn: Callable, h: dict) -> optax.GradientTransformationExtraArgs:
  """``optimizer_fn(h)``, checked, accepting the engine's extra args."""
  try:
    tx = optimizer_fn(h)
  except _TRACED_AS_PYTHON as err:
    raise ArgumentTypeError(
        "optimizer_fn", "used a numeric hyperparameter as a Python value (in an `if`, "
        f"`int()`, a shape ...), but numbers in `hparams` reach it as traced arrays so "
        f"that one program serves many values; pass that one as a non-numeric value "
        f"(e.g. a string) to make it static, or use jnp.where. Hyperparameters: "
        f"{sorted(h)}.") from err
  if not isinstance(tx, optax.GradientTransformation):
    raise ArgumentTypeError("optimizer_fn", "must return an optax.GradientTransformation, got "
                            f"{type(tx).__name__} for hparams {h!r}.")
  return optax.with_extra_args_support(tx)


# What ``optimizer_fn(h)`` is told of the run besides the variant's hyperparameters
# (Python ints, so a schedule's length can be set from them): its optimizer steps in all,
# per epoch, and its epochs.
RUN_KEYS = ("total_steps", "steps_per_epoch", "epochs")


def run_info(*, epochs: int, steps_per_epoch: int) -> dict[str, int]:
  """The `RUN_KEYS` of a run of ``epochs`` epochs of ``steps_per_epoch`` steps."""
  return {"total_steps": int(epochs * steps_per_epoch),
          "steps_per_epoch": int(steps_per_epoch), "epochs": int(epochs)}


class Transform:
  """``hyper -> tx`` of one variant of a group: ``optimizer_fn`` with the group's static
  hyperparameters, the variant's numeric ones (a `VariantHyper`) and the run's length
  (``run``: `run_info`)."""

  def __init__(self, optimizer_fn: Callable, static: dict, run: dict | None = None):
    self.optimizer_fn, self.static, self.run = optimizer_fn, dict(static), dict(run or {})

  def __call__(self, hyper: VariantHyper) -> optax.GradientTransformationExtraArgs:
    return make_tx(self.optimizer_fn, {**self.static, **hyper.h, **self.run})
