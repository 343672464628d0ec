"""Successive halving and Hyperband: train many configurations briefly, keep the best.

Rungs are at ``min_epochs * reduction**i`` epochs (``i = 0, 1, ...``, below the run's
epochs).  At each rung the variants still training are ranked by the task's monitored
validation metric (ties to the lower variant index, a NaN last) and the top
``floor(n / reduction)`` (at least one) go on; the others stop.  With ``samples = 9,
reduction = 3, min_epochs = 2`` over 6 epochs, 9 variants train epochs 1-2 and the best
3 train epochs 3-6 (Jamieson & Talwalkar 2016; Optuna's SuccessiveHalvingPruner).

Hyperband (Li et al. 2018) runs brackets of successive halving that start cutting at
later rungs: bracket ``b`` (``b = 0 .. s``, ``s`` the number of rungs) skips the first
``b`` rungs and starts ``ceil((s + 1) / (s + 1 - b) * reduction**(s - b))``
configurations, so that each bracket spends about the same budget; with
``min_epochs = 1, reduction = 3`` over 81 epochs the brackets start 81, 34, 15, 8 and 5
configurations, as in the paper.  Here every bracket runs at once, side by side in the
same compiled programs (the paper runs them one after another): the same decisions and
budget, in the wall time of one bracket.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lrjax.errors import ArgumentError, UsageError
from lrjax.train.search.controller import Decisions, Setup, View


def _check_int(name: str, value, low: int) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
    raise ArgumentError(name, f"must be an integer >= {low}, got {value!r}.")


def draw(setup: Setup, samples, seed: int, who: str):
  """The configurations a controller starts: ``samples`` drawn from the space, or the
  given ones (None: `lrjax.sweep`'s ``hparams``)."""
  if setup.space is None:
    if samples is not None:
      raise UsageError(f"{who}: `samples` draws from a search space, but `hparams` is a "
                       f"list of configurations; give hparams=lrjax.train.search_space(...) "
                       f"or leave `samples` out.")
    return None
  if samples is None:
    raise UsageError(f"{who}: `samples` is required to draw from the search space (how many "
                     f"configurations to start).")
  return setup.space.sample(int(samples), seed=int(seed))


def rungs(epochs: int, min_epochs: int, reduction: int) -> list[int]:
  """The rung epochs below ``epochs``: ``min_epochs * reduction**i``."""
  out, rung = [], min_epochs
  while rung < epochs:
    out.append(rung)
    rung *= reduction
  return out


def halve(decisions: Decisions, view: View, slots, reduction: int) -> None:
  """Stops all but the top ``floor(len / reduction)`` (at least one) of ``slots``."""
  slots = np.asarray([s for s in slots if view.alive[s]], int)
  if slots.size == 0:
    return
  keep = max(1, slots.size // reduction)
  decisions.stop(view.ranking(slots)[keep:])


@dataclasses.dataclass(frozen=True)
class SuccessiveHalving:
  """Successive halving (module docstring); `successive_halving` builds one."""

  samples: int | None = None
  reduction: int = 3
  min_epochs: int = 1
  seed: int = 0

  def __post_init__(self):
    if self.samples is not None:
      _check_int("samples", self.samples, 1)
    _check_int("reduction", self.reduction, 2)
    _check_int("min_epochs", self.min_epochs, 1)
    _check_int("seed", self.seed, 0)

  def init(self, setup: Setup):
    return draw(setup, self.samples, self.seed, "successive_halving"), {}

  def decide(self, state, view: View):
    decisions = view.keep()
    if view.epoch in rungs(view.epochs, self.min_epochs, self.reduction):
      halve(decisions, view, np.arange(view.num_slots), self.reduction)
    return state, decisions


@dataclasses.dataclass(frozen=True)
class Hyperband:
  """Hyperband (module docstring); `hyperband` builds one."""

  reduction: int = 3
  min_epochs: int = 1
  seed: int = 0

  def __post_init__(self):
    _check_int("reduction", self.reduction, 2)
    _check_int("min_epochs", self.min_epochs, 1)
    _check_int("seed", self.seed, 0)

  def bracket_sizes(self, epochs: int) -> list[int]:
    """Configurations started per bracket (bracket ``b`` skips the first ``b`` rungs)."""
    s = len(rungs(epochs, self.min_epochs, self.reduction))
    return [math.ceil((s + 1) / (s + 1 - b) * self.reduction ** (s - b)) for b in range(s + 1)]

  def init(self, setup: Setup):
    if setup.space is None:
      raise UsageError("hyperband draws its configurations from a search space (bracket "
                       "sizes are its own); give hparams=lrjax.train.search_space(...).")
    sizes = self.bracket_sizes(setup.epochs)
    configurations = setup.space.sample(sum(sizes), seed=self.seed)
    bracket = np.repeat(np.arange(len(sizes)), sizes)
    # Variants are configurations x seeds (configuration-major).
    return configurations, {"bracket": np.repeat(bracket, setup.num_seeds).astype(np.int32)}

  def decide(self, state, view: View):
    decisions = view.keep()
    bracket = np.asarray(state["bracket"])
    all_rungs = rungs(view.epochs, self.min_epochs, self.reduction)
    for b in range(int(bracket.max()) + 1):
      if view.epoch in all_rungs[b:]:
        halve(decisions, view, np.flatnonzero(bracket == b), self.reduction)
    return state, decisions


def successive_halving(samples: int | None = None, *, reduction: int = 3, min_epochs: int = 1,
                       seed: int = 0) -> SuccessiveHalving:
  """Successive halving over ``samples`` configurations drawn from the search space
  (seeded by ``seed``), or over the given ``hparams`` when ``samples`` is None."""
  return SuccessiveHalving(samples, reduction, min_epochs, seed)


def hyperband(*, reduction: int = 3, min_epochs: int = 1, seed: int = 0) -> Hyperband:
  """Hyperband's brackets over the rungs of successive halving, drawn from the space."""
  return Hyperband(reduction, min_epochs, seed)
