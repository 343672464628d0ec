"""From a `Variant` to an optax transformation, in a form that vmaps over variants.

Variants are trained in groups: a group is every variant whose optimizer state has the
same structure (same inner optimizer and options, same kind of rate control).  Within a
group the per-variant numbers (r0, which sequence, which strategy rule) are *arrays*
(`GroupHyper`), and `make_transform` builds the transformation from them inside the
vmapped function, so one compiled program serves all of the group's variants.  A
`GroupSpec` is itself the group's transformation builder (``spec(hyper)``), the form
`lrjax.train.engine.epoch.GroupTrainer` takes; `lrjax.train.frontends.presets.report_preset` runs a
`SweepConfig` through `lrjax.sweep` with it.  Nothing here reads a state back: the
engine reads the rate, position and non-finite flag by field (`lrjax.train.engine.readouts`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import optax

from lrjax import adaptive, schedules, strategies
from lrjax.errors import ArgumentError
from lrjax.train.frontends.config import SELF_TUNING_OPTIMIZERS, Variant

# A consecutive-error budget so large that `apply_if_finite` never gives up: a step whose
# gradient is NaN/inf is skipped (parameters and optimizer state kept) and counted.
_NEVER_GIVE_UP = 2**30


def sequence_factory(name: str) -> Callable[..., schedules.Schedule]:
  """The schedule factory called ``name``; its first argument is the initial rate."""
  factory = getattr(schedules, name, None)
  if not callable(factory):
    raise ArgumentError("sequence", f"{name!r} is not a schedule of lrjax.schedules.")
  return factory


@dataclasses.dataclass(frozen=True)
class GroupSpec:
  """What the variants of one group share (static, hashable)."""

  optimizer: str
  optimizer_kwargs: tuple[tuple[str, Any], ...]
  per_step: bool  # rule == "step": an optax schedule evaluated at every step
  sequences: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]  # the bank

  def __call__(self, hyper: GroupHyper) -> optax.GradientTransformationExtraArgs:
    """The transformation of one variant of the group (`make_transform`)."""
    return make_transform(self, hyper)


class GroupHyper(NamedTuple):
  """Per-variant numbers of a group; leading axis = variant."""

  # numpy arrays when built, traced arrays inside the program (one variant's scalars
  # under vmap)
  learning_rate: Any  # float32 [K]
  sequence_id: Any  # int32 [K], index into GroupSpec.sequences
  rule_id: Any  # int32 [K], lrjax.strategies rule code
  seed: Any  # int32 [K]


def group_key(variant: Variant) -> tuple:
  return (variant.optimizer, variant.optimizer_kwargs, variant.rule == "step")


def group_variants(variants) -> list[tuple[GroupSpec, GroupHyper, list[int]]]:
  """Splits variants into groups of equal state structure.

  Returns, per group, its spec, its hyper arrays and the positions of its variants in
  ``variants`` (order of first appearance is kept).
  """
  keys: dict[tuple, list[int]] = {}
  for i, v in enumerate(variants):
    keys.setdefault(group_key(v), []).append(i)
  groups = []
  for (optimizer, optimizer_kwargs, per_step), members in keys.items():
    bank: list[tuple[str, tuple]] = []
    for i in members:
      entry = (variants[i].sequence, variants[i].sequence_kwargs)
      if entry not in bank:
        sequence_factory(entry[0])  # fail early on an unknown name
        bank.append(entry)
    spec = GroupSpec(optimizer, optimizer_kwargs, per_step, tuple(bank))
    hyper = GroupHyper(
        learning_rate=np.array([variants[i].learning_rate for i in members], np.float32),
        sequence_id=np.array(
            [bank.index((variants[i].sequence, variants[i].sequence_kwargs))
             for i in members], np.int32),
        rule_id=np.array(
            [0 if per_step else int(strategies.Rule[variants[i].rule.upper()])
             for i in members], np.int32),
        seed=np.array([variants[i].seed for i in members], np.int32),
    )
    groups.append((spec, hyper, members))
  return groups


def _sequence(spec: GroupSpec, hyper: GroupHyper) -> schedules.Schedule:
  bank = [sequence_factory(name)(hyper.learning_rate, **dict(kwargs))
          for name, kwargs in spec.sequences]
  if len(bank) == 1:
    return bank[0]
  return schedules.switch(bank, hyper.sequence_id)


def _inner(name: str, kw: dict[str, Any]) -> optax.GradientTransformation:
  if name == "sgd":
    return optax.identity()
  if name == "momentum":
    return optax.trace(decay=kw.get("momentum", 0.9))
  if name == "nesterov":
    return optax.trace(decay=kw.get("momentum", 0.9), nesterov=True)
  if name == "adam":
    return optax.scale_by_adam(b1=kw.get("b1", 0.9), b2=kw.get("b2", 0.999),
                               eps=kw.get("eps", 1e-8))
  if name == "rmsprop":
    return optax.scale_by_rms(decay=kw.get("decay", 0.9), eps=kw.get("eps", 1e-8))
  if name == "adagrad":
    return optax.scale_by_rss(
        initial_accumulator_value=kw.get("initial_accumulator_value", 0.1),
        eps=kw.get("eps", 1e-7))
  if name == "adadelta":
    return optax.scale_by_adadelta(rho=kw.get("rho", 0.95), eps=kw.get("eps", 1e-8))
  raise ValueError(f"unknown inner optimizer {name!r}")


# The engine's Newton preset: the engine trains in float32, where the paper's eps = 1e-5
# makes eq. 16's denominator rounding noise, so every step would take the smoothed
# branch (eq. 18), not Newton's; with eps = 1e-2 most steps take the Newton step
# (tests/test_adaptive.py).  A variant's own `eps` (optimizer_kwargs) wins.
NEWTON_PRESET = {"eps": 1e-2}


def _self_tuning(name: str, lr, kw: dict[str, Any]) -> optax.GradientTransformation:
  if name == "hypergradient_sgd":
    return adaptive.hypergradient_sgd(lr, **kw)
  if name == "hypergradient_adam":
    return adaptive.hypergradient_adam(lr, **kw)
  if name == "newton":
    return adaptive.newton_lr(lr, **{**NEWTON_PRESET, **kw})
  if name == "dog":
    return optax.contrib.dog(learning_rate=lr, **kw)
  if name == "prodigy":
    return optax.contrib.prodigy(learning_rate=lr, **kw)
  if name == "mechanic":
    return optax.contrib.mechanize(optax.sgd(lr), **kw)
  raise ValueError(f"unknown optimizer {name!r}")


def make_transform(spec: GroupSpec, hyper: GroupHyper) -> optax.GradientTransformationExtraArgs:
  """The transformation of one variant (``hyper`` holds that variant's scalars).

  The optimizer that consumes gradients is wrapped in `optax.apply_if_finite`: a step
  with a NaN/inf gradient gives zero updates and is counted instead of poisoning the
  parameters.  The strategy sits outside that wrapper so that it still observes the
  epoch boundary of such a step.  The result accepts the engine's extra args
  (`valid_loss`, `epoch_boundary`, `value_fn`) whatever it is made of.
  """
  kw = dict(spec.optimizer_kwargs)
  if spec.optimizer in SELF_TUNING_OPTIMIZERS:
    tx = optax.apply_if_finite(optax.with_extra_args_support(
        _self_tuning(spec.optimizer, hyper.learning_rate, kw)), _NEVER_GIVE_UP)
  elif spec.per_step:
    # inject_hyperparams keeps the rate of the last step in its state (`learning_rate`),
    # where the engine reads it; the update is scale_by_learning_rate's.
    tx = optax.chain(optax.apply_if_finite(_inner(spec.optimizer, kw), _NEVER_GIVE_UP),
                     optax.inject_hyperparams(optax.scale_by_learning_rate)(
                         learning_rate=_sequence(spec, hyper)))
  else:
    tx = optax.chain(optax.apply_if_finite(_inner(spec.optimizer, kw), _NEVER_GIVE_UP),
                     strategies.scale_by_strategy(_sequence(spec, hyper), hyper.rule_id))
  return optax.with_extra_args_support(tx)
