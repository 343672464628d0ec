"""Sweep configuration: what to train (Flax-examples style: configs apart from code).

A `Variant` is one learning-rate setting (sequence x strategy x optimizer x seed).  A
`SweepConfig` is the data, the model, the budget and the variants.  Both are frozen
dataclasses of plain Python values, so they serialise into the results file and the
checkpoint as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lrjax import _validation
from lrjax.errors import ArgumentError

# Optimizers whose update is scaled by an lrjax strategy (rate = sequence(index)).
STRATEGY_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "rmsprop", "adagrad", "adadelta")
# Optimizers that set their own rate: the variant's learning_rate is their initial rate.
SELF_TUNING_OPTIMIZERS = (
    "hypergradient_sgd", "hypergradient_adam", "newton", "dog", "prodigy", "mechanic")
OPTIMIZERS = STRATEGY_OPTIMIZERS + SELF_TUNING_OPTIMIZERS
RULES = ("fixed", "epoch", "cutoff", "oscillate", "plateau", "step")


@dataclasses.dataclass(frozen=True)
class Variant:
  """One setting of a sweep.

  Attributes:
    name: label used in tables and plots.
    sequence: schedule name in `lrjax.train.frontends.optimizers.SEQUENCES` (``seq1`` ..
      ``seq4``, ``constant``, ``step_decay``, ...), indexed by the strategy's position n.
    rule: when to advance the sequence: ``fixed``, ``epoch``, ``cutoff``,
      ``oscillate``, ``plateau`` (lrjax strategies, advanced at epoch boundaries) or
      ``step`` (the schedule is evaluated at every optimizer step, as optax does).
    learning_rate: r0, the rate at n = 0 (initial eta for the self-tuning optimizers).
    optimizer: inner optimizer, one of `OPTIMIZERS`.
    seed: seeds the initial parameters, the data order and dropout.  Variants with the
      same seed see the same data order (common random numbers).
    sequence_kwargs: extra keyword arguments of the sequence factory.
    optimizer_kwargs: extra keyword arguments of the optimizer (momentum, hyper_lr...).
  """

  name: str
  sequence: str = "constant"
  rule: str = "fixed"
  learning_rate: float = 0.01
  optimizer: str = "sgd"
  seed: int = 0
  sequence_kwargs: tuple[tuple[str, Any], ...] = ()
  optimizer_kwargs: tuple[tuple[str, Any], ...] = ()

  def __post_init__(self):
    _validation.check_positive("learning_rate", self.learning_rate)
    if self.optimizer not in OPTIMIZERS:
      raise ArgumentError("optimizer", f"must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
    if self.rule not in RULES:
      raise ArgumentError("rule", f"must be one of {RULES}, got {self.rule!r}.")
    # Dicts are accepted for convenience and frozen into sorted tuples (hashable).
    for field in ("sequence_kwargs", "optimizer_kwargs"):
      value = getattr(self, field)
      if isinstance(value, dict):
        object.__setattr__(self, field, tuple(sorted(value.items())))

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["sequence_kwargs"] = dict(self.sequence_kwargs)
    d["optimizer_kwargs"] = dict(self.optimizer_kwargs)
    return d

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> Variant:
    return cls(**d)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  """Everything a sweep needs besides the data arrays.

  Attributes:
    model: name in `lrjax.models` (``mnist_cnn``, ``cifar_cnn``, ``lenet5``, ...).
    variants: the settings trained together.
    epochs: number of epochs.
    batch_size: minibatch size (the last partial batch of an epoch is dropped).
    eval_batch_size: batch size of the validation/test passes (0: the backend's
      default, `lrjax.train.engine.plan.eval_batch_size`).
    task: ``classification`` (cross-entropy) or ``regression`` (mean squared error).
    convergence_tolerance: see `lrjax.train.reports.metrics.convergence_epoch`.
    checkpoint_every: save an orbax checkpoint every this many epochs (0: never).
    model_kwargs: keyword arguments of the model constructor.
    observe_untrained_loss: the report's ``loss_0`` is the validation loss of the
      untrained model (True, the report's reading of Algorithm 2: evaluated before
      epoch 1 and passed to the strategies as their initial observation, so by-cutoff
      and by-oscillate can first advance after epoch 1), or the loss after the first
      epoch (False: first decision after epoch 2).  See `lrjax.strategies.strategy`.
    variants_per_call: variants of a group trained by one compiled call (1: one after
      another; 0: the automatic plan of `lrjax.train.engine.plan`, which vmaps the whole group
      on accelerators).  Every value gives the same results.
    concurrent_calls: calls of an epoch run at once (1: one after another; 0: the
      automatic plan, one per core on a CPU).  Every value gives the same numbers, so
      a resumed run may change it.
  """

  model: str
  variants: tuple[Variant, ...]
  epochs: int = 1
  batch_size: int = 64
  eval_batch_size: int = 0
  task: str = "classification"
  convergence_tolerance: float = 0.005
  checkpoint_every: int = 1
  model_kwargs: tuple[tuple[str, Any], ...] = ()
  observe_untrained_loss: bool = True
  variants_per_call: int = 0
  concurrent_calls: int = 0

  def __post_init__(self):
    if not isinstance(self.observe_untrained_loss, bool):
      raise ArgumentError("observe_untrained_loss", "must be a bool, "
                          f"got {self.observe_untrained_loss!r}.")
    if not self.variants:
      raise ArgumentError("variants", "must not be empty.")
    names = [v.name for v in self.variants]
    if len(set(names)) != len(names):
      raise ArgumentError("variants", f"names must be unique, got {names}.")
    _validation.check_positive_int("epochs", self.epochs)
    _validation.check_positive_int("batch_size", self.batch_size)
    _validation.check_non_negative_int("eval_batch_size", self.eval_batch_size)
    _validation.check_non_negative_int("variants_per_call", self.variants_per_call)
    _validation.check_non_negative_int("concurrent_calls", self.concurrent_calls)
    _validation.check_non_negative_int("checkpoint_every", self.checkpoint_every)
    _validation.check_non_negative("convergence_tolerance", self.convergence_tolerance)
    if self.task not in ("classification", "regression"):
      raise ArgumentError("task", f"must be 'classification' or 'regression', got {self.task!r}.")
    object.__setattr__(self, "variants", tuple(self.variants))
    if isinstance(self.model_kwargs, dict):
      object.__setattr__(self, "model_kwargs", tuple(sorted(self.model_kwargs.items())))

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["variants"] = [v.to_dict() for v in self.variants]
    d["model_kwargs"] = dict(self.model_kwargs)
    return d

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> SweepConfig:
    d = dict(d)
    d["variants"] = tuple(Variant.from_dict(v) for v in d["variants"])
    return cls(**d)


def report_variants(r0: float = 0.01, benchmark_lr: float = 0.001,
                    seeds: tuple[int, ...] = (0,)) -> tuple[Variant, ...]:
  """The 14 settings of Yang & Huang (2019), section 4.1, for each seed.

  4 sequences x 3 strategies with SGD and r0 = 0.01, plus SGD and Adam at a fixed 0.001.
  """
  variants = []
  for seed in seeds:
    suffix = f"/s{seed}" if len(seeds) > 1 else ""
    variants.append(Variant(f"SGD{suffix}", "constant", "fixed", benchmark_lr, "sgd", seed))
    variants.append(Variant(f"Adam{suffix}", "constant", "fixed", benchmark_lr, "adam", seed))
    for rule, label in (("epoch", "By Epoch"), ("cutoff", "By Cutoff"),
                        ("oscillate", "By Oscillate")):
      for seq in ("seq1", "seq2", "seq3", "seq4"):
        variants.append(Variant(f"{label} {seq}{suffix}", seq, rule, r0, "sgd", seed))
  return tuple(variants)
