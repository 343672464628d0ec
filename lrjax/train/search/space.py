"""Search spaces: where a search draws its configurations from.

A `SearchSpace` maps hyperparameter names to distributions (`uniform`, `log_uniform`,
`int_uniform`, `choice`) or to fixed values, and draws configurations from them with a
seeded quasi-random sequence (scrambled Halton or Sobol points, `scipy.stats.qmc`) or
plain pseudo-random numbers::

  space = search_space(learning_rate=log_uniform(1e-3, 0.3), momentum=uniform(0.0, 0.95),
                       nesterov=choice([False, True]), weight_decay=1e-4)
  space.sample(9, seed=0)          # 9 dicts, the first 9 points of the sequence
  space.sample(4, seed=0, skip=9)  # the next 4 (a refill continues the sequence)

Quasi-random points cover the space more evenly than random ones for few samples (the
reason Optuna's QMCSampler and Vizier use them).  Each point's coordinate ``u`` in
[0, 1) becomes a value by the distribution's inverse CDF (`Distribution.value`), so the
same point gives the same configuration on every machine and in every process.

A distribution also says how population-based training perturbs a value
(`Distribution.perturb`: multiplied by a factor, then kept inside the bounds; a choice
moves to a neighbouring option) and whether the value is a number (a traced,
per-variant array in the sweep) or static (one compiled program per value).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lrjax.errors import ArgumentError, UsageError

SAMPLERS = ("halton", "sobol", "random")


def _number(name: str, value) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
    raise ArgumentError(name, f"must be a number, got {value!r}.")
  value = float(value)
  if not math.isfinite(value):
    raise ArgumentError(name, f"must be finite, got {value!r}.")
  return value


class Distribution:
  """A one-dimensional distribution of a search space (see the module docstring)."""

  @property
  def numeric(self) -> bool:
    """Whether drawn values are numbers (traced in the sweep)."""
    return True

  def value(self, u: float) -> Any:
    """The value at quantile ``u`` in [0, 1)."""
    raise NotImplementedError

  def perturb(self, value, factor: float) -> Any:
    """``value`` moved by ``factor`` (population-based training's explore step)."""
    raise NotImplementedError

  def contains(self, value) -> bool:
    raise NotImplementedError


class _Range(Distribution):
  """A distribution on ``[low, high]``: a value is perturbed by a factor, then kept
  inside the range."""

  low: float
  high: float

  def perturb(self, value, factor):
    return float(np.clip(value * factor, self.low, self.high))

  def contains(self, value):
    return self.low <= value <= self.high


@dataclasses.dataclass(frozen=True)
class Uniform(_Range):
  """Uniform on ``[low, high]``."""

  low: float
  high: float

  def __post_init__(self):
    low, high = _number("low", self.low), _number("high", self.high)
    if not low < high:
      raise ArgumentError("low", f"must be below `high`, got low={self.low!r}, high={self.high!r}.")
    object.__setattr__(self, "low", low)
    object.__setattr__(self, "high", high)

  def value(self, u):
    return float(self.low + u * (self.high - self.low))



@dataclasses.dataclass(frozen=True)
class LogUniform(_Range):
  """Uniform in ``log`` on ``[low, high]``, ``0 < low < high`` (rates, decays)."""

  low: float
  high: float

  def __post_init__(self):
    low, high = _number("low", self.low), _number("high", self.high)
    if not 0 < low < high:
      raise ArgumentError("low", f"and `high` must satisfy 0 < low < high, got low={self.low!r}, "
                          f"high={self.high!r}.")
    object.__setattr__(self, "low", low)
    object.__setattr__(self, "high", high)

  def value(self, u):
    return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))



@dataclasses.dataclass(frozen=True)
class IntUniform(_Range):
  """Integers ``low, low + 1, ..., high`` with equal probability."""

  low: int
  high: int

  def __post_init__(self):
    for name in ("low", "high"):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ArgumentError(name, f"must be an integer, got {v!r}.")
    if not self.low < self.high:
      raise ArgumentError("low", f"must be below `high`, got low={self.low!r}, high={self.high!r}.")
    object.__setattr__(self, "low", int(self.low))
    object.__setattr__(self, "high", int(self.high))

  def value(self, u):
    return int(min(self.high, self.low + math.floor(u * (self.high - self.low + 1))))

  def perturb(self, value, factor):
    moved = int(round(value * factor))
    if moved == value:  # a factor too small to move an integer moves it by one
      moved = value + (1 if factor > 1 else -1)
    return int(np.clip(moved, self.low, self.high))


@dataclasses.dataclass(frozen=True)
class Choice(Distribution):
  """One of ``options`` with equal probability (numbers, strings or booleans)."""

  options: Sequence[Any]  # a tuple once built

  def __post_init__(self):
    options = tuple(self.options) if isinstance(self.options, (list, tuple)) else None
    if not options:
      raise ArgumentError("options", f"must be a non-empty list, got {self.options!r}.")
    object.__setattr__(self, "options", options)

  @property
  def numeric(self) -> bool:  # numbers are traced; a string or a boolean is static
    return all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in self.options)

  def value(self, u):
    return self.options[min(len(self.options) - 1, math.floor(u * len(self.options)))]

  def perturb(self, value, factor):
    # An ordered choice moves to the neighbour in the factor's direction.
    i = self.options.index(value)
    j = int(np.clip(i + (1 if factor > 1 else -1), 0, len(self.options) - 1))
    return self.options[j]

  def contains(self, value):
    return value in self.options


def uniform(low: float, high: float) -> Uniform:
  """Uniform on ``[low, high]``."""
  return Uniform(low, high)


def log_uniform(low: float, high: float) -> LogUniform:
  """Log-uniform on ``[low, high]`` (``0 < low``): rates, weight decays."""
  return LogUniform(low, high)


def int_uniform(low: int, high: int) -> IntUniform:
  """Integers from ``low`` to ``high`` inclusive."""
  return IntUniform(low, high)


def choice(options: Sequence) -> Choice:
  """One of ``options``: numbers (traced, one program) or strings / booleans (static)."""
  return Choice(tuple(options) if isinstance(options, (list, tuple)) else options)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """Hyperparameter name -> `Distribution` or a fixed value (every configuration's).

  Build one with `search_space`.  ``sample(n, seed=..., skip=...)`` draws ``n``
  configurations (dicts), the points ``skip .. skip + n - 1`` of the seeded sequence.
  """

  dimensions: tuple  # ((name, Distribution | fixed value), ...), in the given order
  sampler: str = "halton"

  def __post_init__(self):
    if self.sampler not in SAMPLERS:
      raise ArgumentError("sampler", f"must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}.")
    if not self.dimensions:
      raise UsageError("a search space needs at least one hyperparameter, e.g. "
                       "search_space(learning_rate=log_uniform(1e-3, 0.3)).")
    for name, _ in self.dimensions:
      if not isinstance(name, str) or not name:
        raise UsageError(f"search space names must be non-empty strings, got {name!r}.")

  @property
  def names(self) -> list[str]:
    return [name for name, _ in self.dimensions]

  @property
  def distributions(self) -> dict[str, Distribution]:
    """The searched hyperparameters (the fixed ones left out)."""
    return {n: d for n, d in self.dimensions if isinstance(d, Distribution)}

  def fixed(self) -> dict[str, Any]:
    return {n: d for n, d in self.dimensions if not isinstance(d, Distribution)}

  def _points(self, n: int, seed: int, skip: int) -> np.ndarray:
    d = len(self.distributions)
    if d == 0 or n == 0:
      return np.zeros((n, d))
    if self.sampler == "random":
      rng = np.random.default_rng(seed)
      return rng.random((skip + n, d))[skip:]
    from scipy.stats import qmc
    engine = (qmc.Halton(d, scramble=True, seed=seed) if self.sampler == "halton"
              else qmc.Sobol(d, scramble=True, seed=seed))
    if skip:
      engine.fast_forward(skip)
    if self.sampler == "sobol":
      import warnings
      with warnings.catch_warnings():  # balance is a property of 2^m points: not needed here
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(n)
    return engine.random(n)

  def sample(self, n: int, *, seed: int = 0, skip: int = 0) -> list[dict[str, Any]]:
    """``n`` configurations: the points ``skip`` .. ``skip + n - 1`` of the sequence."""
    for name, value in (("n", n), ("skip", skip), ("seed", seed)):
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ArgumentError(name, f"must be a non-negative integer, got {value!r}.")
    points = self._points(int(n), int(seed), int(skip))
    searched = list(self.distributions.items())
    out = []
    for row in points:
      config = {}
      for name, dim in self.dimensions:
        config[name] = dim
      for (name, dist), u in zip(searched, row, strict=True):
        config[name] = dist.value(float(u))
      out.append(config)
    return out

  def resample(self, name: str, rng: np.random.Generator) -> Any:
    """One pseudo-random value of dimension ``name`` (population-based training)."""
    return self.distributions[name].value(float(rng.random()))

  def static_names(self) -> list[str]:
    """The dimensions whose values are static (strings, booleans, fixed non-numbers)."""
    static = [n for n, d in self.distributions.items() if not d.numeric]
    static += [n for n, v in self.fixed().items()
               if isinstance(v, (bool, str)) or not isinstance(v, (int, float))]
    return static


def search_space(*, sampler: str = "halton", **dimensions) -> SearchSpace:
  """A `SearchSpace` of ``name=distribution`` (or ``name=fixed value``) in order.

  Example:
    >>> space = search_space(learning_rate=log_uniform(1e-3, 1e-1), momentum=0.9)
    >>> [sorted(c) for c in space.sample(2, seed=0)]
    [['learning_rate', 'momentum'], ['learning_rate', 'momentum']]
  """
  return SearchSpace(tuple(dimensions.items()), sampler)


def as_space(value) -> SearchSpace | None:
  """``value`` if it is a `SearchSpace`, else None."""
  return value if isinstance(value, SearchSpace) else None


def check_in_space(space: SearchSpace, config: Mapping[str, Any], where: str) -> None:
  """Raises ``ValueError`` naming ``where`` if a searched value of ``config`` is outside
  its distribution."""
  for name, dist in space.distributions.items():
    if name in config and not dist.contains(config[name]):
      raise UsageError(f"{where}: {name}={config[name]!r} is outside the search space "
                       f"({dist}).")
