"""Random search and median stopping: controllers that draw, and one that stops.

* `random_search`: ``samples`` configurations drawn from the space, all trained to the
  end (the baseline a search is compared with).
* `median_stopping`: Optuna's MedianPruner rule in the compiled sweep: after
  ``warmup_epochs``, a variant stops when its best monitored value so far is worse than
  the median of the other variants' values at the same epoch (with at least
  ``min_variants`` of them); Optuna compares with the trials that completed before, here
  the others train at the same time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lrjax.errors import UsageError
from lrjax.train.search.controller import Setup, View
from lrjax.train.search.halving import _check_int, draw


@dataclasses.dataclass(frozen=True)
class RandomSearch:
  """``samples`` configurations from the space, none stopped; `random_search`."""

  samples: int
  seed: int = 0

  def __post_init__(self):
    _check_int("samples", self.samples, 1)
    _check_int("seed", self.seed, 0)

  def init(self, setup: Setup):
    if setup.space is None:
      raise UsageError("random_search draws from a search space; give "
                       "hparams=lrjax.train.search_space(...).")
    return draw(setup, self.samples, self.seed, "random_search"), {}

  def decide(self, state, view: View):
    return state, view.keep()


@dataclasses.dataclass(frozen=True)
class MedianStopping:
  """The median stopping rule (module docstring); `median_stopping` builds one."""

  warmup_epochs: int = 0
  min_variants: int = 5
  interval: int = 1
  samples: int | None = None
  seed: int = 0

  def __post_init__(self):
    _check_int("warmup_epochs", self.warmup_epochs, 0)
    _check_int("min_variants", self.min_variants, 1)
    _check_int("interval", self.interval, 1)
    if self.samples is not None:
      _check_int("samples", self.samples, 1)
    _check_int("seed", self.seed, 0)

  def init(self, setup: Setup):
    return draw(setup, self.samples, self.seed, "median_stopping"), {}

  def decide(self, state, view: View):
    decisions = view.keep()
    epoch = view.epoch
    if epoch <= self.warmup_epochs or (epoch - self.warmup_epochs) % self.interval:
      return state, decisions
    now = view.score[-1]
    best = np.where(np.isfinite(view.score), view.score, -np.inf).max(axis=0)
    stop = []
    for k in np.flatnonzero(view.alive):
      others = np.delete(now, k)
      others = others[np.isfinite(others)]
      if others.size >= self.min_variants and best[k] < np.median(others):
        stop.append(k)
    decisions.stop(stop)
    return state, decisions


def random_search(samples: int, *, seed: int = 0) -> RandomSearch:
  """``samples`` configurations drawn from the search space (seeded), none stopped."""
  return RandomSearch(samples, seed)


def median_stopping(*, warmup_epochs: int = 0, min_variants: int = 5, interval: int = 1,
                    samples: int | None = None, seed: int = 0) -> MedianStopping:
  """The median stopping rule over the given ``hparams``, or over ``samples``
  configurations drawn from the search space."""
  return MedianStopping(warmup_epochs, min_variants, interval, samples, seed)
