"""Population-based training (Jaderberg et al. 2017), inside the compiled sweep.

Every ``interval`` epochs (from ``burn_in`` on), within each group, the variants still
training are ranked by the task's monitored validation metric; each of the bottom
``fraction`` continues from the state of a member of the top ``fraction`` drawn at
random (*exploit*: parameters, model state and optimizer state copied on the device)
with that member's hyperparameters *explored*: each searched numeric hyperparameter is,
with probability ``resample_probability``, drawn afresh from the search space, else
multiplied by a factor drawn from ``perturb`` (0.8 or 1.2 by default, as Ray Tune's
PBT) and kept inside the space's bounds; a numeric choice moves to a neighbouring
option.  Without a space, every numeric hyperparameter is multiplied by a factor.  The
rate a variant's line trained with is then a schedule discovered by the search
(`lrjax.train.SweepResult.lr_schedule`).

The random draws come from ``numpy.random.default_rng((seed, epoch))``: the same at
every run, so a resumed search explores as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lrjax.errors import ArgumentError
from lrjax.train.search.controller import Setup, View
from lrjax.train.search.halving import _check_int, draw
from lrjax.train.search.space import SearchSpace


def _check_fraction(name: str, value, high: float) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
    raise ArgumentError(name, f"must be a number in [0, {high}], got {value!r}.")


@dataclasses.dataclass(frozen=True)
class PBT:
  """Population-based training (module docstring); `pbt` builds one."""

  population: int | None = None
  interval: int = 1
  fraction: float = 0.25
  perturb: tuple = (0.8, 1.2)
  resample_probability: float = 0.25
  burn_in: int = 0
  seed: int = 0

  def __post_init__(self):
    if self.population is not None:
      _check_int("population", self.population, 2)
    _check_int("interval", self.interval, 1)
    _check_fraction("fraction", self.fraction, 0.5)
    if self.fraction == 0:
      raise ArgumentError("fraction", "must be above 0 (the share of the population replaced).")
    factors = tuple(self.perturb) if isinstance(self.perturb, (list, tuple)) else ()
    if not factors or any(isinstance(f, bool) or not isinstance(f, (int, float))
                          or not math.isfinite(f) or f <= 0 for f in factors):
      raise ArgumentError("perturb", "must be a non-empty list of positive factors, got "
                          f"{self.perturb!r}.")
    object.__setattr__(self, "perturb", tuple(float(f) for f in factors))
    _check_fraction("resample_probability", self.resample_probability, 1.0)
    _check_int("burn_in", self.burn_in, 0)
    _check_int("seed", self.seed, 0)

  def init(self, setup: Setup):
    return draw(setup, self.population, self.seed, "pbt"), {}

  def explore(self, hparams: Mapping[str, Any], numeric, space: SearchSpace | None,
              rng: np.random.Generator) -> dict[str, Any]:
    """``hparams`` with each numeric searched value resampled or perturbed."""
    out = dict(hparams)
    searched = space.distributions if space is not None else {n: None for n in numeric}
    for name, dist in searched.items():
      if name not in numeric or name not in out:
        continue  # static (it selects the program) or not this variant's
      if dist is not None and rng.random() < self.resample_probability:
        out[name] = dist.value(float(rng.random()))
        continue
      factor = self.perturb[int(rng.integers(len(self.perturb)))]
      out[name] = dist.perturb(out[name], factor) if dist is not None else out[name] * factor
    return out

  def decide(self, state, view: View):
    decisions = view.keep()
    epoch = view.epoch
    if epoch < max(self.burn_in, 1) or epoch % self.interval or epoch >= view.epochs:
      return state, decisions
    rng = np.random.default_rng((self.seed, epoch))
    for g in np.unique(view.groups):
      ranked = view.ranking(np.flatnonzero(view.alive & (view.groups == g)))
      n = ranked.size
      q = min(max(1, int(math.floor(self.fraction * n))), n // 2)
      if q == 0:
        continue
      top, bottom = ranked[:q], ranked[n - q:]
      for slot in bottom:
        source = int(top[int(rng.integers(q))])
        explored = self.explore(view.hparams[source], view.numeric[slot], view.space, rng)
        decisions.exploit(int(slot), source, explored)
    return state, decisions


def pbt(population: int | None = None, *, interval: int = 1, fraction: float = 0.25,
        perturb=(0.8, 1.2), resample_probability: float = 0.25, burn_in: int = 0,
        seed: int = 0) -> PBT:
  """Population-based training over ``population`` configurations drawn from the
  search space (or the given ``hparams`` when ``population`` is None)."""
  return PBT(population, interval, fraction, tuple(perturb) if isinstance(
      perturb, (list, tuple)) else perturb, resample_probability, burn_in, seed)
