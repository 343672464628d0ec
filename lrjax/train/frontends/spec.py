"""`SweepSpec`: the one description of a sweep, and the run identity made from it.

Every way of asking for a sweep ends here: `lrjax.sweep`'s arguments, the report preset
(`lrjax.train.frontends.presets.report_preset`) and the sweep file
(`lrjax.train.frontends.sweep_file`) each build a `SweepSpec`, and `lrjax.train.api.run`
trains it.  Its `identity` (with the variants it resolves to) is what a checkpoint
records as the run: a resume of anything else is refused, naming the keys that differ.

Values are described by `lrjax._describe.describe` (the same JSON in every process).
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lrjax._describe import ADDRESS as _ADDRESS
from lrjax._describe import describe  # noqa: F401 (part of this module's interface)
from lrjax.errors import ArgumentError, ArgumentTypeError
from lrjax.train.engine.task import CLASSIFICATION, as_task
from lrjax.train.search.controller import check_controller
from lrjax.train.search.space import SearchSpace


def _is_sequence(value) -> bool:
  return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


def grid(**axes) -> list[dict[str, Any]]:
  """The cartesian product of ``axes`` as a list of dicts (last axis fastest).

  Example:
    >>> grid(learning_rate=[0.1, 0.01], momentum=[0.0, 0.9])[1]
    {'learning_rate': 0.1, 'momentum': 0.9}
  """
  import itertools
  if not axes:
    raise ArgumentError("grid", "needs at least one axis, e.g. grid(learning_rate=[0.1, 0.01]).")
  for name, values in axes.items():
    if not _is_sequence(values) or len(values) == 0:
      raise ArgumentError("grid", f"axis {name!r} must be a non-empty list of values, "
                          f"got {values!r}.")
  names = list(axes)
  return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def normalize_hparams(hparams) -> list[dict[str, Any]]:
  """``{name: [K values]}`` or ``[K dicts]`` -> K dicts (validated)."""
  if isinstance(hparams, Mapping):
    if not hparams:
      raise ArgumentError("hparams", "is empty: give {name: [values]} or a list of dicts.")
    lengths = {}
    for name, values in hparams.items():
      if not _is_sequence(values):
        raise ArgumentError(f"hparams[{name!r}]", "must be a list of one value per variant, "
                            f"got {values!r}.")
      lengths[name] = len(values)
    if len(set(lengths.values())) != 1:
      raise ArgumentError("hparams", f"lists differ in length: {lengths}; every name needs one "
                          f"value per variant (use lrjax.train.grid for a product).")
    k = next(iter(lengths.values()))
    if k == 0:
      raise ArgumentError("hparams", "has no variants (empty lists).")
    variants = [{name: values[i] for name, values in hparams.items()} for i in range(k)]
  elif _is_sequence(hparams):
    variants = list(hparams)
    if not variants:
      raise ArgumentError("hparams", "is an empty list: give at least one dict.")
    for i, h in enumerate(variants):
      if not isinstance(h, Mapping):
        raise ArgumentError(f"hparams[{i}]", f"must be a dict of hyperparameters, got {h!r}.")
  else:
    raise ArgumentError("hparams", "must be a mapping name -> list of values, a list of "
                        f"dicts or a lrjax.train.search_space(...), got "
                        f"{type(hparams).__name__}.")
  for i, h in enumerate(variants):
    for name in h:
      if not isinstance(name, str):
        raise ArgumentError("hparams", f"names must be strings, got {name!r} (variant {i}).")
  return [dict(h) for h in variants]


def _check_seeds(seeds) -> None:
  if not _is_sequence(seeds) or len(seeds) == 0:
    raise ArgumentError("seeds", f"must be a non-empty list of integers, got {seeds!r}.")
  for s in seeds:
    if isinstance(s, bool) or not isinstance(s, numbers.Integral):
      raise ArgumentError("seeds", f"must hold integers, got {s!r}.")


def _check_int(name: str, value, low: int = 1) -> None:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
    what = "a positive integer" if low == 1 else f"an integer >= {low}"
    raise ArgumentError(name, f"must be {what}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class SweepSpec:
  """What to train (see `lrjax.sweep` for each argument); data and folders aside.

  ``hparams`` is a list of dicts (a grid) or a `SearchSpace` (a ``controller`` then
  draws the configurations).  Checked at construction: a mistake names the argument.
  """

  model: Any
  optimizer_fn: Callable
  hparams: Any
  epochs: int
  batch_size: int
  seeds: Sequence[int] | None = None
  task: Any = CLASSIFICATION
  controller: Any = None
  eval_batch_size: int | None = None
  variants_per_call: int | None = None
  concurrent_calls: int | None = None
  observe_untrained_loss: bool = True
  checkpoint_every: int = 1
  convergence_tolerance: float = 0.005
  names: Sequence[str] | None = None
  tags: Sequence[Mapping[str, Any]] | None = None

  def __post_init__(self):
    if not callable(self.optimizer_fn):
      raise ArgumentTypeError("optimizer_fn", "must be a callable h -> "
                              "optax.GradientTransformation, "
                              f"got {type(self.optimizer_fn).__name__}.")
    _check_int("epochs", self.epochs)
    _check_int("batch_size", self.batch_size)
    for name in ("eval_batch_size", "variants_per_call", "concurrent_calls"):
      value = getattr(self, name)
      if value is not None:
        _check_int(name, value, low=0)
    _check_int("checkpoint_every", self.checkpoint_every, low=0)
    if not isinstance(self.observe_untrained_loss, bool):
      raise ArgumentError("observe_untrained_loss", "must be True or False, got "
                          f"{self.observe_untrained_loss!r}.")
    tolerance = self.convergence_tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not (
        np.isfinite(tolerance) and tolerance >= 0):
      raise ArgumentError("convergence_tolerance", f"must be a number >= 0, got {tolerance!r}.")
    if self.seeds is not None:
      _check_seeds(self.seeds)
      object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
    object.__setattr__(self, "task", as_task(self.task))
    if self.controller is not None:
      check_controller(self.controller)
    if isinstance(self.hparams, SearchSpace):
      if self.controller is None:
        raise ArgumentError("hparams", "is a search space: give a `controller` to draw from it, "
                            "e.g. controller=lrjax.train.search.random_search(samples=8) or "
                            "successive_halving(samples=9).")
    else:
      object.__setattr__(self, "hparams", normalize_hparams(self.hparams))
    for what in ("names", "tags"):
      if getattr(self, what) is not None:
        object.__setattr__(self, what, tuple(getattr(self, what)))

  @property
  def space(self) -> SearchSpace | None:
    return self.hparams if isinstance(self.hparams, SearchSpace) else None

  def identity(self, variants: Sequence[Mapping], *, eval_batch_size: int,
               epochs: int | None = None) -> dict[str, Any]:
    """What a checkpoint records as this run: the model (class and fields), the
    optimizer factory, every variant's name, hyperparameters and seed, the search
    (space and controller), the task and batch sizes, and the settings a continued run
    may change (``epochs``, ``checkpoint_every``, ``convergence_tolerance``,
    ``concurrent_calls``: `lrjax.train.runner.checkpoint.EXTENSIBLE_KEYS`); ``epochs``:
    the sweep's length when a controller makes it longer than ``self.epochs``."""
    cls = type(self.model)
    return {
        "model": {"class": f"{cls.__module__}.{cls.__qualname__}",
                  "fields": _ADDRESS.sub("", repr(self.model))},
        "optimizer_fn": describe(self.optimizer_fn),
        "variants": [{"name": v["name"], "hparams": describe(v["hparams"]),
                      "seed": v["seed"]} for v in variants],
        "search": {"space": describe(self.space), "controller": describe(self.controller)},
        "task": self.task.name, "batch_size": self.batch_size,
        "eval_batch_size": eval_batch_size, "variants_per_call": self.variants_per_call,
        "observe_untrained_loss": self.observe_untrained_loss,
        "epochs": self.epochs if epochs is None else epochs,  # the sweep's length
        "checkpoint_every": self.checkpoint_every,
        "convergence_tolerance": self.convergence_tolerance,
        "concurrent_calls": self.concurrent_calls,
    }

  def to_dict(self) -> dict[str, Any]:
    """The spec as JSON (results.json's ``spec``)."""
    out = {f.name: describe(getattr(self, f.name)) for f in dataclasses.fields(self)}
    out["model"] = _ADDRESS.sub("", repr(self.model))
    out["task"] = self.task.name
    return out


def label(h: Mapping, seed: int, digits: int | None = None) -> str:
  """A variant's default name: ``name=value,...,seed=s`` (floats to ``digits``
  significant digits when given)."""
  def text(v):
    if digits is not None and isinstance(v, float):
      return f"{v:.{digits}g}"
    return getattr(v, "__name__", v)
  return ",".join([f"{k}={text(v)}" for k, v in h.items()] + [f"seed={seed}"])


def variants_of(settings: Sequence[dict], seeds, names, tags, *, searched: bool = False
                ) -> list[dict]:
  """Per variant: ``index``, ``name``, ``hparams``, ``seed``, ``tags``: settings x seeds
  (setting-major), or one variant per setting where each holds its own ``seed``."""
  own = ["seed" in h for h in settings]
  if any(own):
    if not all(own):
      raise ArgumentError("hparams", ": give a `seed` in every variant or in none (then "
                          "`seeds` multiplies the variants).")
    if seeds is not None:
      raise ArgumentError("seeds", "must not be given when every `hparams` variant holds its "
                          "own `seed`.")
    pairs = []
    for h in settings:
      h = dict(h)
      seed = h.pop("seed")
      if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ArgumentError("hparams", f"seeds must be integers, got {seed!r}.")
      pairs.append((h, int(seed)))
  else:
    seeds = (0,) if seeds is None else seeds
    _check_seeds(seeds)
    pairs = [(dict(h), int(s)) for h in settings for s in seeds]
  for what, given in (("names", names), ("tags", tags)):
    if given is not None and (not _is_sequence(given) or len(given) != len(pairs)):
      raise ArgumentError(what, f"must hold one entry per variant ({len(pairs)}), got "
                          f"{given!r}.")
  if names is not None and len(set(names)) != len(names):
    raise ArgumentError("names", f"must be unique, got {list(names)}.")
  settings_seen: list[str] = []
  out = []
  for k, (h, seed) in enumerate(pairs):
    key = json.dumps(describe(h), sort_keys=True)
    if key not in settings_seen:
      settings_seen.append(key)
    setting = settings_seen.index(key)
    variant_tags = {"setting": setting, "seed": seed,
                    **(dict(tags[k]) if tags is not None else {})}
    if names is not None:
      name = str(names[k])
    elif searched:  # drawn values: short, and numbered so that names stay unique
      name = f"#{setting} " + label(h, seed, digits=3)
    else:
      name = label(h, seed)
    out.append({"index": k, "name": name, "hparams": h, "seed": seed, "tags": variant_tags})
  return out
