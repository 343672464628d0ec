"""Porting PyTorch and Keras schedulers: ``from_torch(name, lr=..., **kwargs)``, ``from_keras``.

The step convention (the classic off-by-one of a port):

* PyTorch: ``from_torch(...)(i)`` is the rate PyTorch uses after ``i`` calls of
  ``scheduler.step()``.  Stepped once per update (``optimizer.step(); scheduler.step()``),
  that is the rate of the ``i``-th update (0-based), optax's count: pass the schedule as
  ``learning_rate``.  Stepped once per epoch, the index is the epoch: wrap it with
  :func:`per_epoch` (``count // steps_per_epoch``) or let a strategy (``by_epoch``) step it.
* Keras: ``from_keras(...)(i)`` is the rate of the ``i``-th update (Keras passes the
  optimizer's ``iterations``, as optax passes its count).

Both look the name up in a registry (``TORCH_SCHEDULES`` / ``KERAS_SCHEDULES``: name ->
adapter taking the original constructor arguments); an unknown name or argument is a
``ValueError`` listing what is supported.  ``ReduceLROnPlateau`` is not a function of
the step: it is ``lrjax.strategies.from_torch("ReduceLROnPlateau", ...)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules.base import Schedule
from lrjax.schedules.compose import chained, join
from lrjax.schedules.cosine import cosine_annealing, cosine_warm_restarts
from lrjax.schedules.cyclical import cyclical
from lrjax.schedules.decay import polynomial_decay, step_decay
from lrjax.schedules.keras_compat import (
  keras_cosine_decay,
  keras_cosine_decay_restarts,
  keras_exponential_decay,
  keras_inverse_time_decay,
  keras_polynomial_decay,
  piecewise_constant_decay,
)
from lrjax.schedules.one_cycle import one_cycle_torch
from lrjax.schedules.torch_compat import (
  constant_lr,
  exponential_lr,
  lambda_lr,
  linear_lr,
  multi_step_lr,
  multiplicative_lr,
)

# -- PyTorch adapters: PyTorch's argument names and defaults, minus the optimizer -------

def _lambda(lr, lr_lambda, num_steps=None):
  return lambda_lr(lr, lr_lambda, num_steps)


def _multiplicative(lr, lr_lambda, num_steps):
  return multiplicative_lr(lr, lr_lambda, num_steps)


def _step_lr(lr, step_size, gamma=0.1):
  _validation.check_in_range("gamma", gamma, 0.0, 1.0, low_open=True)
  _validation.check_positive_int("step_size", step_size)
  return step_decay(lr, gamma, step_size)


def _multi_step(lr, milestones, gamma=0.1):
  return multi_step_lr(lr, milestones, gamma)


def _constant(lr, factor=1.0 / 3, total_iters=5):
  return constant_lr(lr, factor, total_iters)


def _linear(lr, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
  return linear_lr(lr, start_factor, end_factor, total_iters)


def _exponential(lr, gamma, lr_cap=None):
  return exponential_lr(lr, gamma, lr_cap=lr_cap)


def _check_eta_min(lr, eta_min):
  _validation.check_non_negative("eta_min", eta_min)
  _validation.check_less_equal("eta_min", eta_min, "lr", lr)


# The adapters check their arguments under PyTorch's names before handing them to the
# lrjax function, whose own messages would name its arguments (`total_steps`, `min_lr`).

def _cosine(lr, T_max, eta_min=0.0):  # noqa: N803 (PyTorch's names)
  _validation.check_positive_int("T_max", T_max)
  _check_eta_min(lr, eta_min)
  return cosine_annealing(lr, T_max, eta_min, periodic=True)


def _warm_restarts(lr, T_0, T_mult=1, eta_min=0.0):  # noqa: N803
  _validation.check_positive_int("T_0", T_0)
  _validation.check_positive_int("T_mult", T_mult)
  _check_eta_min(lr, eta_min)
  return cosine_warm_restarts(lr, T_0, T_mult, eta_min)


def _polynomial(lr, total_iters=5, power=1.0):
  _validation.check_positive_int("total_iters", total_iters)
  _validation.check_positive("power", power)
  return polynomial_decay(lr, total_iters, power)


def _cyclic(lr, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
            gamma=1.0, scale_fn=None, scale_mode="cycle", cycle_momentum=True,
            base_momentum=0.8, max_momentum=0.9, lr_cap=None):
  """CyclicLR sets the optimizer's rate to ``base_lr``: ``lr`` is not used.  The momentum
  arguments concern the momentum only: see ``lrjax.schedules.cyclical_momentum``."""
  del lr, cycle_momentum, base_momentum, max_momentum, scale_mode
  _validation.check_non_negative("base_lr", base_lr)
  _validation.check_positive("max_lr", max_lr)
  _validation.check_less_equal("base_lr", base_lr, "max_lr", max_lr)
  _validation.check_positive("step_size_up", step_size_up)
  if scale_fn is not None:
    raise ValueError("CyclicLR: a custom `scale_fn` is not supported (Python callables "
                     "of the cycle are not traced); use mode='triangular', "
                     "'triangular2' or 'exp_range'.")
  return cyclical(base_lr, max_lr, step_size_up, step_size_down=step_size_down, mode=mode,
                  gamma=gamma, lr_cap=lr_cap)


def _one_cycle(lr, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
               pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
               base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
               final_div_factor=1e4, three_phase=False):
  """OneCycleLR sets the optimizer's rate itself: ``lr`` is not used.  Momentum: see
  ``lrjax.schedules.one_cycle_momentum``."""
  del lr, cycle_momentum, base_momentum, max_momentum
  if total_steps is None:
    if epochs is None or steps_per_epoch is None:
      raise ValueError("OneCycleLR needs `total_steps`, or both `epochs` and "
                       "`steps_per_epoch`.")
    _validation.check_positive_int("epochs", epochs)
    _validation.check_positive_int("steps_per_epoch", steps_per_epoch)
    total_steps = int(epochs) * int(steps_per_epoch)
  return one_cycle_torch(max_lr, total_steps, pct_start=pct_start,
                         anneal_strategy=anneal_strategy, div_factor=div_factor,
                         final_div_factor=final_div_factor, three_phase=three_phase)


def _parts(name, lr, schedulers, allowed=None):
  if not isinstance(schedulers, (list, tuple)) or not schedulers:
    raise ValueError(f"{name}: `schedulers` must be a non-empty list of (name, kwargs) "
                     f"pairs, got {schedulers!r}.")
  parts = []
  for i, pair in enumerate(schedulers):
    if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[0], str)
        or not isinstance(pair[1], Mapping)):
      raise ValueError(f"{name}: `schedulers[{i}]` must be a (name, kwargs) pair such as "
                       f"('LinearLR', {{'total_iters': 5}}), got {pair!r}.")
    part, kwargs = pair
    if allowed is not None and part not in allowed:
      raise ValueError(f"{name}: `schedulers[{i}]` = {part!r} is not supported; supported "
                       f"parts: {sorted(allowed)}.")
    if "lr" in kwargs:
      raise ValueError(f"{name}: `schedulers[{i}]` must not set `lr`: every part shares "
                       "the optimizer's rate.")
    parts.append(from_torch(part, lr=lr, **kwargs))
  return parts




def _sequential(lr, schedulers, milestones):
  for i, pair in enumerate(schedulers if isinstance(schedulers, (list, tuple)) else []):
    if isinstance(pair, (list, tuple)) and pair and pair[0] == "OneCycleLR":
      raise ValueError(f"SequentialLR: `schedulers[{i}]` = 'OneCycleLR' is not supported "
                       "(PyTorch's OneCycleLR rewrites the optimizer's initial_lr, the base "
                       "of every other part); join the parts with lrjax.schedules.join.")
  if len(schedulers) > 1:
    for i, pair in enumerate(schedulers[1:], start=1):
      if isinstance(pair, (list, tuple)) and pair and pair[0] == "MultiplicativeLR":
        raise ValueError(f"SequentialLR: `schedulers[{i}]` = 'MultiplicativeLR' is only "
                         "supported as the first part (PyTorch continues it from the "
                         "previous part's rate).")
  if not isinstance(milestones, (list, tuple)):
    raise ValueError(f"SequentialLR: `milestones` must be a list, got {milestones!r}.")
  _validation.check_non_negative_int_list("milestones", milestones, allow_empty=True)
  if len(milestones) != len(schedulers) - 1:
    raise ValueError(f"SequentialLR: `milestones` must have len(schedulers) - 1 = "
                     f"{len(schedulers) - 1} entries, got {len(milestones)}.")
  return join(_parts("SequentialLR", lr, schedulers), list(milestones))


# ChainedScheduler multiplies the optimizer's current rate by each part's factor; the
# product of closed forms is exact for these (CosineAnnealingLR, CyclicLR, OneCycleLR,
# LambdaLR ... overwrite or add to the rate instead).
CHAINABLE = ("ConstantLR", "LinearLR", "StepLR", "MultiStepLR", "ExponentialLR",
             "PolynomialLR", "MultiplicativeLR")


def _chained(lr, schedulers, optimizer=None):
  if optimizer is not None:
    raise ValueError("ChainedScheduler: `optimizer` is not used by lrjax; leave it out.")
  return chained(lr, _parts("ChainedScheduler", lr, schedulers, allowed=CHAINABLE))


TORCH_SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "LambdaLR": _lambda,
    "MultiplicativeLR": _multiplicative,
    "StepLR": _step_lr,
    "MultiStepLR": _multi_step,
    "ConstantLR": _constant,
    "LinearLR": _linear,
    "ExponentialLR": _exponential,
    "SequentialLR": _sequential,
    "CosineAnnealingLR": _cosine,
    "ChainedScheduler": _chained,
    "CyclicLR": _cyclic,
    "CosineAnnealingWarmRestarts": _warm_restarts,
    "OneCycleLR": _one_cycle,
    "PolynomialLR": _polynomial,
}
"""Every step-function scheduler of ``torch.optim.lr_scheduler`` (2.13): name -> adapter."""

# -- Keras adapters ---------------------------------------------------------------------

KERAS_SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "CosineDecay": keras_cosine_decay,
    "CosineDecayRestarts": keras_cosine_decay_restarts,
    "ExponentialDecay": keras_exponential_decay,
    "InverseTimeDecay": keras_inverse_time_decay,
    "PiecewiseConstantDecay": piecewise_constant_decay,
    "PolynomialDecay": keras_polynomial_decay,
}
"""Every class of ``keras.optimizers.schedules`` (3.15): name -> lrjax function."""


def _call(registry: Mapping[str, Callable], family: str, name: str, kwargs: dict,
          hint: str = "") -> Schedule:
  if name not in registry:
    raise ValueError(f"{family} scheduler {name!r} is not supported{hint}; supported: "
                     f"{sorted(registry)}.")
  factory = registry[name]
  params = inspect.signature(factory).parameters
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    raise ValueError(f"{name}: unsupported argument(s) {unknown}; supported: "
                     f"{list(params)}.")
  missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty
             and p not in kwargs]
  if missing:
    raise ValueError(f"{name}: missing required argument(s) {missing}; arguments: "
                     f"{list(params)}.")
  return factory(**kwargs)


def from_torch(name: str, /, *, lr: float, **kwargs: Any) -> Schedule:
  """The lrjax schedule of PyTorch's ``torch.optim.lr_scheduler.<name>(optimizer, **kwargs)``.

  ``lr`` is the optimizer's initial rate; ``kwargs`` the scheduler's own arguments
  (PyTorch's names).  ``schedule(i)`` is the rate PyTorch uses after ``i`` calls of
  ``scheduler.step()`` (see the module docstring for per-epoch stepping).  Composites take
  their parts as ``(name, kwargs)`` pairs::

    from_torch("SequentialLR", lr=0.1, milestones=[5], schedulers=[
        ("LinearLR", {"start_factor": 0.1, "total_iters": 5}),
        ("CosineAnnealingLR", {"T_max": 25})])

  lrjax extensions: ``lr_cap`` (``ExponentialLR`` with ``gamma > 1``, ``CyclicLR``
  ``exp_range`` with ``gamma > 1``: growth is capped to stay finite) and ``num_steps``
  (``MultiplicativeLR``, optionally ``LambdaLR``: the factors are tabulated in Python up
  to it).  ``CosineAnnealingLR`` continues its cosine past ``T_max`` as PyTorch does.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.from_torch("MultiStepLR", lr=0.1, milestones=[2, 4], gamma=0.5)
    >>> [round(float(sched(i)), 6) for i in (0, 2, 4)]
    [0.1, 0.05, 0.025]
  """
  _validation.check_positive("lr", lr)
  if name == "ReduceLROnPlateau":
    raise ValueError("ReduceLROnPlateau depends on the validation loss, not on the step: "
                     "use lrjax.strategies.from_torch('ReduceLROnPlateau', lr=..., ...).")
  return _call(TORCH_SCHEDULES, "PyTorch", name, dict(kwargs, lr=lr),
               hint=" (ReduceLROnPlateau: lrjax.strategies.from_torch)")


def from_keras(name: str, /, **kwargs: Any) -> Schedule:
  """The lrjax schedule of ``keras.optimizers.schedules.<name>(**kwargs)``.

  Keras' argument names; ``name=`` (Keras' op name) is accepted and ignored.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.from_keras("PiecewiseConstantDecay", boundaries=[3], values=[1.0, 0.5])
    >>> [float(sched(i)) for i in (3, 4)]
    [1.0, 0.5]
  """
  kwargs.pop("name", None)
  return _call(KERAS_SCHEDULES, "Keras", name, kwargs)


def per_epoch(schedule: Schedule, steps_per_epoch: int) -> Schedule:
  """``schedule(count // steps_per_epoch)``: a per-epoch scheduler driven by the update count.

  For a PyTorch scheduler stepped once per epoch (``for epoch ...: train(); scheduler.step()``)
  used as an optax ``learning_rate`` (which is called with the update count).

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.per_epoch(s.from_torch("StepLR", lr=0.1, step_size=2), steps_per_epoch=100)
    >>> [round(float(sched(i)), 6) for i in (0, 199, 200)]
    [0.1, 0.1, 0.01]
  """
  if not callable(schedule):
    raise ArgumentError("schedule", f"must be a callable step -> lr, got {schedule!r}.")
  _validation.check_positive_int("steps_per_epoch", steps_per_epoch)

  def schedule_by_count(count):
    epoch = jnp.floor_divide(jnp.maximum(jnp.asarray(count, jnp.int32), 0),
                             jnp.asarray(steps_per_epoch, jnp.int32))
    return jnp.asarray(schedule(epoch), jnp.float32)

  return schedule_by_count


__all__ = ["TORCH_SCHEDULES", "KERAS_SCHEDULES", "CHAINABLE", "from_torch", "from_keras",
           "per_epoch"]
