"""The sweep file: ``lrjax sweep --config sweep.toml`` as a validated call of `lrjax.sweep`.

A TOML file (read with the standard library's `tomllib`) says what to train and over
which grid; `load` checks every key and value and returns a `SweepFile` holding the
objects `lrjax.sweep` takes (model, optimizer_fn, hparams, ...).  Every mistake is a
`SweepFileError` of one line naming the file, the key and what is allowed, e.g.::

  sweep.toml: epoch: unknown key; allowed: epochs, batch_size, seeds, ...

The format (every key optional; defaults in brackets)::

  epochs = 10                  # [10] epochs of training, >= 1
  batch_size = 64              # [64] minibatch size, >= 1
  seeds = 1                    # [1] a number of seeds (0, 1, ...) or a list: [0, 7]
  out = "results/sweep"        # [results/sweep] folder of results.json, history.csv, ...
  task = "classification"      # [per dataset] or "regression" (boston_housing's default)
  observe_untrained_loss = true  # [true] loss_0 of the strategies: the untrained model's
  tensorboard_dir = "tb"       # live metrics: one TensorBoard run folder per variant
                               #   (needs pip install "lrjax[tensorboard]")

  [data]
  dataset = "synthetic"        # [synthetic] synthetic, mnist, fashion_mnist, cifar10,
                               #   boston_housing (the `lrjax sweep --dataset` choices)
  source_dir = "..."           # folder with the dataset's standard files (offline)
  data_dir = "..."             # where prepared datasets are cached
  train_size = 512             # a random (seeded) subset of the training examples
  validation_fraction = 0.1    # [0.1] held out of the training examples, in (0, 1)

  [model]                      # [the dataset's default model, as `lrjax sweep`]
  name = "mnist_cnn"           # a built-in model (lrjax.models.MODELS), or:
  path = "mypkg.nets:MLP"      # a flax.linen.Module instance, class or zero-arg factory
  width = 64                   # any other key: an argument of the model (its field)

  [optimizer]                  # [name = "sgd"]
  name = "adamw"               # an optax optimizer (optax.<name>, first argument
                               #   learning_rate), or:
  path = "mypkg.opt:make"      # the user's factory h -> optax.GradientTransformation
  weight_decay = 1e-4          # any other key: a fixed argument of the optimizer

  [schedule]                   # optional: the rate passed as the optimizer's learning_rate
  name = "seq3"                # an lrjax.schedules factory (or path = "mod:attr")
  r0 = 0.01                    # its arguments
  rule = "cutoff"              # optional: a strategy (lrjax.strategies: fixed, epoch,
                               #   cutoff, oscillate, plateau) stepping the schedule;
                               #   the optimizer is then lrjax.strategies.<name>
  cutoff_fraction = 0.01       #   and the strategy's arguments (cutoff_decay, patience, ...)
  total_steps = "auto"         # a schedule's length: "auto" is the run's optimizer steps
                               #   (epochs x steps per epoch)

  [grid]                       # axes of the cartesian product (last fastest)
  learning_rate = [0.1, 0.01]  # a plain name: an argument of the optimizer
  momentum = [0.0, 0.9]
  schedule.r0 = [0.1, 0.01]    # schedule.<name>: an argument of the schedule/strategy

  [[variants]]                 # explicit settings, after the grid's (same naming)
  learning_rate = 0.05
  schedule.rule = "epoch"

  [search]                     # optional: a search instead of (or over) a grid
  method = "pbt"               # successive_halving, hyperband, median_stopping, pbt,
                               #   random, optuna (lrjax.train.search); the other keys are the
  population = 8               #   method's arguments: samples, reduction, min_epochs,
  interval = 2                 #   population, interval, fraction, perturb, burn_in,
                               #   resample_probability, warmup_epochs, seed; optuna:
                               #   n_trials, at_once, sampler (tpe, random, qmc), pruner
                               #   (median, successive_halving, hyperband, none),
                               #   storage ("sqlite:///study.db"), study_name, direction
  sampler = "halton"           # [halton] how [search.space] is drawn: sobol, random
  [search.space]               # what to draw from (instead of [grid] / [[variants]])
  learning_rate = {log_uniform = [0.001, 0.3]}   # also uniform, int_uniform, choice
  momentum = {uniform = [0.0, 0.95]}
  nesterov = {choice = [false, true]}            # a string or boolean: one program each
  schedule.r0 = {log_uniform = [0.01, 0.1]}      # schedule.<name> as in [grid]
  weight_decay = 1e-4                            # a plain value: fixed

Naming: a hyperparameter without a prefix is the optimizer's argument, ``schedule.x``
the schedule's (or, with a rule, the strategy's); fixed values sit in their section,
swept ones in ``[grid]`` / ``[[variants]]``, and a key may be in one of the two only (a
fixed ``[optimizer] momentum = 0.9`` with ``[[variants]] momentum = 0.0`` is refused,
naming both keys).  Numbers become per-variant arrays (one
compiled program for all values), strings and booleans are static (one program per
value, see `lrjax.sweep`): ``schedule.rule = ["epoch", "cutoff"]`` compiles one program
per rule, their `lrjax.strategies.Rule` codes (fixed 0, epoch 1, cutoff 2, oscillate 3,
plateau 4) one for all.  An optimizer built by name must get every argument it
requires (``learning_rate`` for optax's, from ``[optimizer]``, the grid, or
``[schedule]``); each setting's optimizer is built once with its concrete values
before training, so a value the factory refuses (``r0 = -1``) is reported with its key.
A schedule counts optimizer steps (optax's convention); with a rule it is the
strategy's sequence, indexed by its position.

A ``[search]`` names a controller of `lrjax.train.search` by its ``method`` (looked up in
`SEARCH_METHODS`, its keys checked against the controller's signature) and draws the
configurations from ``[search.space]`` (`DISTRIBUTIONS`); ``median_stopping`` and
``successive_halving`` may also steer a ``[grid]`` (without ``samples``).  The
optimizer is built at the space's corners (every value low, then high) when the file is
read, so a name or value the optimizer refuses is reported with its key.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import itertools
import math
import numbers
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import flax.linen as nn
import optax

from lrjax import schedules as schedules_lib
from lrjax import strategies as strategies_lib
from lrjax.data import by_name
from lrjax.errors import ArgumentError, UsageError
from lrjax.models.registry import MODELS, get_model
from lrjax.train import search as search_lib
from lrjax.train.engine.hyperparams import RUN_KEYS
from lrjax.train.frontends import inputs
from lrjax.train.frontends.spec import SweepSpec

TASKS = ("classification", "regression")
# ``total_steps = "auto"`` in [schedule]: the run's optimizer steps (epochs x steps per
# epoch), known once the data are; when the file is checked, this stand-in.
AUTO = "auto"
_CHECK_TOTAL_STEPS = 1000
SCHEDULE_PREFIX = "schedule."
# Arguments of the strategies' complete optimizers that the file sets otherwise.
_STRATEGY_POSITIONAL = ("sequence", "rule")


class SweepFileError(UsageError):
  """A mistake in a sweep file: ``<file>: <key>: <what is wrong; what is allowed>``."""

  def __init__(self, path, key: str, message: str):
    self.path, self.key, self.message = str(path), key, message
    super().__init__(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")


# -- what can be named -----------------------------------------------------------------

def _first_parameter(fn) -> str | None:
  try:
    names = list(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    return None
  return names[0] if names else None


def optax_optimizers() -> list[str]:
  """The optax functions a file may name: those whose first argument is
  ``learning_rate`` (``sgd``, ``adam``, ``adamw``, ``lion`` ...)."""
  return sorted(n for n in dir(optax) if not n.startswith("_")
                and inspect.isfunction(getattr(optax, n))
                and _first_parameter(getattr(optax, n)) == "learning_rate")


def strategy_optimizers() -> list[str]:
  """The complete optimizers of `lrjax.strategies` (``sgd(sequence, rule, ...)``)."""
  return sorted(n for n in strategies_lib.__all__ if inspect.isfunction(
      getattr(strategies_lib, n)) and list(inspect.signature(
          getattr(strategies_lib, n)).parameters)[:2] == list(_STRATEGY_POSITIONAL))


def schedule_factories() -> list[str]:
  """The `lrjax.schedules` factories a file may name."""
  return sorted(n for n in schedules_lib.__all__ if inspect.isfunction(
      getattr(schedules_lib, n)))


def _parameters(fn) -> tuple[list[str], list[str], bool]:
  """(all named parameters, the required ones, takes **kwargs) of ``fn``."""
  params = inspect.signature(fn).parameters.values()
  named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
  required = [p.name for p in params if p.default is p.empty
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
  return named, required, any(p.kind == p.VAR_KEYWORD for p in params)


_STRATEGY_ARGS = [n for n in _parameters(strategies_lib.scale_by_strategy)[0]
                  if n not in _STRATEGY_POSITIONAL]


# -- reading tables ----------------------------------------------------------------------

def _option(default, kind: str, check: Callable[[Any], str | None] | None = None):
  """A dataclass field read from the file: ``kind`` is the TOML type, ``check`` returns
  what is wrong with a value (None: nothing)."""
  return dataclasses.field(default=default, metadata={"kind": kind, "check": check})


_KINDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
          "seeds": "a number of seeds or a list of integers"}


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _of_kind(value, kind: str) -> bool:
  if kind == "int":
    return _is_int(value)
  if kind == "float":
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if kind == "str":
    return isinstance(value, str)
  if kind == "bool":
    return isinstance(value, bool)
  if kind == "seeds":
    return _is_int(value) or (isinstance(value, list) and all(_is_int(s) for s in value))
  raise AssertionError(kind)


def _at_least(low):
  return lambda v: None if v >= low else f"must be at least {low}, got {v!r}"


def _one_of(choices):
  return lambda v: None if v in choices else (f"must be one of {', '.join(choices)}; "
                                              f"got {v!r}")


def _fraction(v):
  return None if 0.0 < v < 1.0 else f"must be between 0 and 1 (exclusive), got {v!r}"


def _seeds_check(v):
  if _is_int(v):
    return _at_least(1)(v)
  if not v:
    return "must name at least one seed, got []"
  if len(set(v)) != len(v):
    return f"must not repeat a seed, got {v!r}"
  return None


def _key(prefix: str, name: str) -> str:
  return f"{prefix}.{name}" if prefix else name


def _table(raw, where: str, path) -> dict:
  if not isinstance(raw, dict):
    raise SweepFileError(path, where, f"must be a table ([{where}]), got {raw!r}")
  return raw


def _read(cls, raw: Mapping, prefix: str, path, *, extra: tuple[str, ...] = ()):
  """``cls`` (a dataclass of `_option` fields) from the table ``raw``, every key and
  value checked; keys in ``extra`` are allowed and left to the caller."""
  fields = {f.name: f for f in dataclasses.fields(cls)}
  allowed = list(fields) + list(extra)
  for name in raw:
    if name not in allowed:
      raise SweepFileError(path, _key(prefix, name),
                           f"unknown key; allowed: {', '.join(allowed)}")
  values = {}
  for name, field in fields.items():
    if name not in raw:
      continue
    value, kind = raw[name], field.metadata["kind"]
    if not _of_kind(value, kind):
      raise SweepFileError(path, _key(prefix, name),
                           f"must be {_KINDS[kind]}, got {value!r}")
    if kind == "float":
      value = float(value)
      if not math.isfinite(value):
        raise SweepFileError(path, _key(prefix, name), f"must be finite, got {value!r}")
    problem = field.metadata["check"] and field.metadata["check"](value)
    if problem:
      raise SweepFileError(path, _key(prefix, name), problem)
    values[name] = value
  return cls(**values)


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """``[data]``: which dataset and how much of it (`lrjax.data.by_name.load`'s arguments)."""

  dataset: str = _option(by_name.SYNTHETIC, "str", _one_of(by_name.NAMES))
  source_dir: str | None = _option(None, "str")
  data_dir: str | None = _option(None, "str")
  train_size: int | None = _option(None, "int", _at_least(1))
  validation_fraction: float = _option(0.1, "float", _fraction)


@dataclasses.dataclass(frozen=True)
class _TopLevel:
  epochs: int = _option(10, "int", _at_least(1))
  batch_size: int = _option(64, "int", _at_least(1))
  seeds: Any = _option(1, "seeds", _seeds_check)
  out: str = _option("results/sweep", "str")
  task: str | None = _option(None, "str", _one_of(TASKS))
  observe_untrained_loss: bool = _option(True, "bool")
  tensorboard_dir: str | None = _option(None, "str")


_SECTIONS = ("data", "model", "optimizer", "schedule", "grid", "variants", "search")


@dataclasses.dataclass(frozen=True)
class _Named:
  """``[model]`` / ``[optimizer]`` / ``[schedule]``: a built-in by name or the user's
  object by ``module:attr`` path; the other keys are its arguments."""

  name: str | None = _option(None, "str")
  path: str | None = _option(None, "str")


def import_path(text: str, key: str, path) -> Any:
  """The object ``module:attr`` (``attr`` may be dotted) names: the module found on
  ``sys.path``, else beside the sweep file or in the working folder (where a user's
  ``mymodel.py`` sits; the ``lrjax`` script does not put them on ``sys.path``)."""
  module_name, sep, attr = text.partition(":")
  if not sep or not module_name or not attr:
    raise SweepFileError(path, key, f"must be 'module:attribute' (e.g. 'mypkg.nets:MLP'), "
                                    f"got {text!r}")
  try:
    try:
      obj = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
      if err.name != module_name.split(".")[0]:
        raise
      folders = [str(Path(path).resolve().parent), str(Path.cwd())]
      sys.path[:0] = [f for f in folders if f not in sys.path]
      obj = importlib.import_module(module_name)
  except ImportError as err:
    raise SweepFileError(path, key, f"cannot import module {module_name!r} ({err}); is it "
                                    f"on PYTHONPATH?") from None
  for part in attr.split("."):
    if not hasattr(obj, part):
      raise SweepFileError(path, key, f"module {module_name!r} has no attribute {attr!r}")
    obj = getattr(obj, part)
  return obj


def _named(raw, section: str, path) -> tuple[_Named, dict]:
  table = _table(raw, section, path)
  spec = _read(_Named, {k: v for k, v in table.items() if k in ("name", "path")}, section,
               path)
  if spec.name is not None and spec.path is not None:
    raise SweepFileError(path, f"{section}.path", "give name or path, not both")
  kwargs = {k: v for k, v in table.items() if k not in ("name", "path")}
  for name, value in kwargs.items():
    if isinstance(value, dict):
      raise SweepFileError(path, f"{section}.{name}", "must be a value, not a table")
  return spec, kwargs


# -- the model --------------------------------------------------------------------------

def _model_options(cls) -> list[str]:
  return [f.name for f in dataclasses.fields(cls) if f.name not in ("parent", "name")]


def _build_model(spec: _Named, kwargs: dict, default: str, path) -> tuple[nn.Module, str]:
  if spec.path is None:
    name = (spec.name or default).lower().replace("-", "_")
    if name not in MODELS:
      raise SweepFileError(path, "model.name",
                           f"must be a built-in model ({', '.join(sorted(MODELS))}) or "
                           f"give model.path = 'module:attr'; got {spec.name!r}")
    options = _model_options(MODELS[name])
    for option in kwargs:
      if option not in options:
        raise SweepFileError(path, f"model.{option}",
                             f"not an option of {name!r}; allowed: {', '.join(options)}")
    try:
      return get_model(name, **kwargs), name
    except (TypeError, ValueError) as err:
      raise SweepFileError(path, "model", str(err).rstrip(".")) from None
  obj = import_path(spec.path, "model.path", path)
  module_class = type(obj) if isinstance(obj, nn.Module) else obj
  if isinstance(module_class, type) and issubclass(module_class, nn.Module):
    options = _model_options(module_class)  # a module's arguments are its fields
    for option in kwargs:
      if option not in options:
        raise SweepFileError(path, f"model.{option}", f"not a field of {spec.path}; "
                                                      f"allowed: {', '.join(options)}")
  try:
    if isinstance(obj, nn.Module):
      model = obj.clone(**kwargs) if kwargs else obj
    elif callable(obj):
      model = obj(**kwargs)
    else:
      raise SweepFileError(path, "model.path", f"{spec.path!r} is a "
                           f"{type(obj).__name__}, not a flax.linen.Module or a factory")
  except (TypeError, ValueError) as err:
    if isinstance(err, SweepFileError):
      raise
    raise SweepFileError(path, "model", f"{spec.path} refused its arguments "
                                        f"{sorted(kwargs)}: {err}") from None
  if not isinstance(model, nn.Module):
    raise SweepFileError(path, "model.path", f"{spec.path!r} gave a "
                                             f"{type(model).__name__}, not a "
                                             f"flax.linen.Module")
  try:
    inputs.check_train_argument(model)
  except TypeError as err:
    raise SweepFileError(path, "model.path", f"{spec.path}: "
                                             f"{str(err).removeprefix('`model`: ')}") from None
  return model, spec.path


# -- the optimizer ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class OptimizerFn:
  """``h -> optax.GradientTransformation`` of a sweep file (`lrjax.sweep`'s
  ``optimizer_fn``): the file's fixed arguments updated by the variant's ``h``.

  A dataclass, so the run's identity names a changed field (``optimizer_fn.fixed.momentum``).

  Attributes:
    optimizer: ``optax.<name>`` (called with keyword arguments, through
      `optax.inject_hyperparams` so that the state holds the rate) or the user's factory
      (called with the dict of its arguments).
    by_name: whether ``optimizer`` takes keyword arguments (a named one).
    fixed: the ``[optimizer]`` arguments.
    schedule: the schedule factory or None; ``schedule_fixed`` its ``[schedule]``
      arguments (``rule`` and the strategy's among them).
    strategy: the `lrjax.strategies` optimizer used when a rule is given.
  """

  optimizer: Any
  by_name: bool
  fixed: dict
  schedule: Any = None
  schedule_fixed: dict = dataclasses.field(default_factory=dict)
  strategy: Any = None

  def __post_init__(self):
    object.__setattr__(self, "fixed", dict(self.fixed))
    object.__setattr__(self, "schedule_fixed", dict(self.schedule_fixed or {}))

  @property
  def _schedule_args(self):
    if self.schedule is None or _parameters(self.schedule)[2]:
      return None
    return set(_parameters(self.schedule)[0])

  def __repr__(self) -> str:
    # Stable across processes and complete: a checkpoint records it as the optimizer's
    # identity, so a changed fixed argument must change it.
    def name(fn):
      return (f"{fn.__module__}.{fn.__qualname__}" if hasattr(fn, "__qualname__")
              else repr(fn))
    parts = [f"optimizer={name(self.optimizer)}", f"fixed={self.fixed!r}"]
    if self.schedule is not None:
      parts += [f"schedule={name(self.schedule)}", f"schedule_fixed={self.schedule_fixed!r}"]
    return f"OptimizerFn({', '.join(parts)})"

  def describe(self) -> dict:
    """The parts of `__repr__` as a dict (a checkpoint names a differing one by key)."""
    def name(fn):
      return (f"{fn.__module__}.{fn.__qualname__}" if hasattr(fn, "__qualname__")
              else repr(fn))
    return {"optimizer": name(self.optimizer), "fixed": dict(self.fixed),
            "schedule": None if self.schedule is None else name(self.schedule),
            "schedule_fixed": dict(self.schedule_fixed)}

  def arguments(self, h: Mapping) -> tuple[dict, dict]:
    """The optimizer's and the schedule's arguments for the variant ``h`` (the run's
    `RUN_KEYS` in ``h`` go to a user's factory only; a schedule's ``total_steps =
    "auto"`` becomes the run's ``total_steps``)."""
    run = {k: h[k] for k in RUN_KEYS if k in h}
    h = {k: v for k, v in h.items() if k not in RUN_KEYS}
    opt = {**self.fixed, **{k: v for k, v in h.items() if not k.startswith(SCHEDULE_PREFIX)}}
    if not self.by_name:
      opt.update(run)
    sch = {**self.schedule_fixed, **{k[len(SCHEDULE_PREFIX):]: v for k, v in h.items()
                                     if k.startswith(SCHEDULE_PREFIX)}}
    if sch.get("total_steps") == AUTO:
      sch["total_steps"] = run.get("total_steps", _CHECK_TOTAL_STEPS)
    return opt, sch

  def _call_optimizer(self, fn, args: dict):
    if not self.by_name:
      return fn(args)
    # The rate (and every numeric argument) kept in the state, where the sweep reads it
    # for its history: optax.inject_hyperparams.  Booleans, strings, None and fixed
    # Python ints (sizes such as lbfgs' memory_size; a swept number arrives traced) stay
    # static.
    static = tuple(k for k, v in args.items() if v is None or isinstance(v, (bool, str))
                   or (isinstance(v, int) and k != "learning_rate"))
    return optax.inject_hyperparams(fn, static_args=static)(**args)

  def __call__(self, h: Mapping) -> optax.GradientTransformation:
    opt, sch = self.arguments(h)
    if self.schedule is None:
      return self._call_optimizer(self.optimizer, opt)
    rule = sch.pop("rule", None)
    strategy_args = {k: v for k, v in sch.items() if k in _STRATEGY_ARGS and (
        self._schedule_args is None or k not in self._schedule_args)}
    rate = self.schedule(**{k: v for k, v in sch.items() if k not in strategy_args})
    if rule is None:
      return self._call_optimizer(self.optimizer, {**opt, "learning_rate": rate})
    return self.strategy(rate, rule, **opt, **strategy_args)


# -- the settings ---------------------------------------------------------------------

def _flatten(raw: Mapping, where: str, path, *, axis: bool) -> dict:
  """A grid / variant table -> {name: values}: plain names, and ``schedule.x`` from the
  ``schedule`` sub-table; ``axis``: values are non-empty lists of scalars."""
  out = {}
  for name, value in raw.items():
    if isinstance(value, dict):
      if name != "schedule":
        raise SweepFileError(path, f"{where}.{name}",
                             "only schedule.<name> may be a sub-table (plain names are the "
                             "optimizer's arguments, schedule.<name> the schedule's)")
      for sub, v in value.items():
        out[SCHEDULE_PREFIX + sub] = v
    else:
      out[name] = value
  for name, value in out.items():
    key = f"{where}.{name}"
    values = value if axis else [value]
    if axis and (not isinstance(value, list) or not value):
      raise SweepFileError(path, key, f"a grid axis must be a non-empty list of values, "
                                      f"got {value!r}")
    for v in values:
      if isinstance(v, (dict, list)) or not isinstance(v, (str, bool, numbers.Real)):
        raise SweepFileError(path, key, f"values must be numbers, strings or booleans, "
                                        f"got {v!r}")
      if isinstance(v, float) and not math.isfinite(v):
        raise SweepFileError(path, key, f"values must be finite, got {v!r}")
  return out


@dataclasses.dataclass
class _Source:
  """Where a setting came from, to name the key of a refused value."""

  where: str  # "grid" or "variants[2]"
  names: tuple[str, ...]


def _settings(raw: dict, path) -> tuple[list[dict], list[_Source]]:
  settings, sources = [], []
  if "grid" in raw:
    axes = _flatten(_table(raw["grid"], "grid", path), "grid", path, axis=True)
    if not axes:
      raise SweepFileError(path, "grid", "is empty; give at least one axis, e.g. "
                                         "learning_rate = [0.1, 0.01]")
    names = list(axes)
    for combo in itertools.product(*axes.values()):
      settings.append(dict(zip(names, combo, strict=True)))
      sources.append(_Source("grid", tuple(names)))
  if "variants" in raw:
    variants = raw["variants"]
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
      raise SweepFileError(path, "variants", "must be a list of tables ([[variants]]), "
                                             f"got {variants!r}")
    for i, table in enumerate(variants):
      setting = _flatten(table, f"variants[{i}]", path, axis=False)
      settings.append(setting)
      sources.append(_Source(f"variants[{i}]", tuple(setting)))
  if not settings:
    settings, sources = [{}], [_Source("", ())]
  return settings, sources


# -- the search ---------------------------------------------------------------------------

# [search] method = name -> the controller's factory (its keyword arguments are the
# section's other keys, checked against its signature).
SEARCH_METHODS: dict[str, Callable[..., Any]] = {
    "successive_halving": search_lib.successive_halving, "hyperband": search_lib.hyperband,
    "median_stopping": search_lib.median_stopping, "pbt": search_lib.pbt,
    "random": search_lib.random_search, "optuna": search_lib.optuna_study,
}
# [search.space] name = {<distribution> = [...]}
DISTRIBUTIONS: dict[str, Callable[..., search_lib.Distribution]] = {
                 "uniform": search_lib.uniform, "log_uniform": search_lib.log_uniform,
                 "int_uniform": search_lib.int_uniform, "choice": search_lib.choice}
_SPACE_KEYS = ("sampler",)  # [search] keys of the space, not of the method


def _distribution(value, key: str, path):
  """A ``[search.space]`` entry: ``{log_uniform = [a, b]}`` ..., or a fixed value."""
  if not isinstance(value, dict):
    if isinstance(value, (dict, list)) or not isinstance(value, (str, bool, numbers.Real)):
      raise SweepFileError(path, key, f"must be a distribution such as {{log_uniform = "
                                      f"[0.001, 0.1]}} or a fixed value, got {value!r}")
    return value
  if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
    forms = ", ".join(f"{d} = [...]" for d in DISTRIBUTIONS)
    raise SweepFileError(path, key, f"must be one of {{{forms}}}, got {value!r}")
  (kind, args), = value.items()
  if not isinstance(args, list) or not args:
    form = "[option, ...]" if kind == "choice" else "[low, high]"
    raise SweepFileError(path, f"{key}.{kind}", f"must be a list ({form}), got {args!r}")
  try:
    if kind == "choice":
      return DISTRIBUTIONS[kind](args)
    if len(args) != 2:
      raise ValueError(f"give [low, high], got {args!r}")
    return DISTRIBUTIONS[kind](*args)
  except ValueError as err:
    raise SweepFileError(path, f"{key}.{kind}", str(err).rstrip(".")) from None


def _search(table: dict, path):
  """``[search]``: (the controller or None, the search space or None)."""
  if "search" not in table:
    return None, None
  raw = dict(_table(table["search"], "search", path))
  space_table = raw.pop("space", None)
  method = raw.pop("method", None)
  if method is None:
    raise SweepFileError(path, "search.method", f"required: one of "
                                                f"{', '.join(SEARCH_METHODS)}")
  if method not in SEARCH_METHODS:
    raise SweepFileError(path, "search.method", f"must be one of {', '.join(SEARCH_METHODS)}; "
                                                f"got {method!r}")
  factory = SEARCH_METHODS[method]
  allowed, _, _ = _parameters(factory)
  # A key of the space unless the method takes it (Optuna's `sampler` is its own).
  space_options = {k: raw.pop(k) for k in _SPACE_KEYS if k in raw and k not in allowed}
  for name, value in raw.items():
    if name not in allowed:
      options = ", ".join(["method", *allowed, *_SPACE_KEYS])
      raise SweepFileError(path, f"search.{name}",
                           f"not an option of {method}; allowed: {options}")
    values = value if isinstance(value, list) else [value]
    is_text = isinstance(value, str) and _expected_kind(factory, name) != "a number"
    if not is_text and (not values or any(isinstance(v, (bool, str, dict, list)) or not
                                       isinstance(v, numbers.Real) for v in values)):
      raise SweepFileError(path, f"search.{name}", f"must be a number, got {value!r}")
  try:
    controller = factory(**raw)
  except (TypeError, ValueError) as err:  # the method's own checks (or a missing argument)
    argument = err.argument if isinstance(err, ArgumentError) else None
    key = f"search.{argument}" if argument in raw else "search"
    raise SweepFileError(path, key, str(err).rstrip(".")) from None
  space = None
  if space_table is not None:
    space_table = _table(space_table, "search.space", path)
    dimensions = {}
    for name, value in space_table.items():
      if name == "schedule" and isinstance(value, dict) and not (
          len(value) == 1 and next(iter(value)) in DISTRIBUTIONS):
        for sub, v in value.items():
          dimensions[SCHEDULE_PREFIX + sub] = _distribution(
              v, f"search.space.schedule.{sub}", path)
      else:
        dimensions[name] = _distribution(value, f"search.space.{name}", path)
    if not dimensions:
      raise SweepFileError(path, "search.space", "is empty; give at least one "
                                                 "hyperparameter, e.g. learning_rate = "
                                                 "{log_uniform = [0.001, 0.3]}")
    sampler = space_options.get("sampler", "halton")
    if sampler not in search_lib.space.SAMPLERS:
      raise SweepFileError(path, "search.sampler", f"must be one of "
                                                   f"{', '.join(search_lib.space.SAMPLERS)}; "
                                                   f"got {sampler!r}")
    space = search_lib.SearchSpace(tuple(dimensions.items()), sampler)
  elif space_options:
    raise SweepFileError(path, "search.sampler", "draws from [search.space], which is "
                                                 "missing")
  return controller, space


def _corner(space, end: int) -> dict:
  """A configuration with every searched value at its low (0) or high (1) end."""
  out = {}
  for name, dim in space.dimensions:
    if isinstance(dim, search_lib.Choice):
      out[name] = dim.options[-end]
    elif isinstance(dim, search_lib.Distribution):
      out[name] = getattr(dim, "high" if end else "low")  # a range
    else:
      out[name] = dim
  return out


# -- the file ----------------------------------------------------------------------------

@dataclasses.dataclass
class SweepFile:
  """A checked sweep file: the arguments of `lrjax.sweep` (and where to write).

  Attributes:
    path: the file.
    data: the ``[data]`` section (a `DataSpec`).
    model: the Flax module; ``model_name`` the built-in name or the ``module:attr``.
    optimizer_fn: an `OptimizerFn`.
    hparams: one dict per setting (grid product, then ``[[variants]]``), or the
      ``[search.space]`` (a `SearchSpace`).
    epochs, batch_size, seeds, task, observe_untrained_loss: as `lrjax.sweep`.
    controller: the ``[search]`` method's controller, or None.
    out: the output folder.
    tensorboard_dir: the folder of the live metrics' TensorBoard runs, or None.
    table: the file's content after the command line's overrides (for results.json).
  """

  path: Path
  data: DataSpec
  model: nn.Module
  model_name: str
  optimizer_fn: OptimizerFn
  hparams: Any
  epochs: int
  batch_size: int
  seeds: tuple[int, ...]
  task: str
  observe_untrained_loss: bool
  out: Path
  table: dict
  controller: Any = None
  tensorboard_dir: Path | None = None

  def spec(self, **options) -> SweepSpec:
    """The file's `SweepSpec` (``options``: the other fields, e.g. ``eval_batch_size``,
    ``variants_per_call``, ``checkpoint_every`` from the command line)."""
    return SweepSpec(model=self.model, optimizer_fn=self.optimizer_fn, hparams=self.hparams,
                     epochs=self.epochs, batch_size=self.batch_size, seeds=self.seeds,
                     task=self.task, observe_untrained_loss=self.observe_untrained_loss,
                     controller=self.controller, **options)


def _override(table: dict, overrides: Mapping[str, Any]) -> dict:
  """``table`` with dotted keys set (``model.name`` replaces a ``model.path``)."""
  table = {k: (dict(v) if isinstance(v, dict) else v) for k, v in table.items()}
  for dotted, value in overrides.items():
    section, _, name = dotted.rpartition(".")
    target = table
    if section:
      target = table.setdefault(section, {})
      if not isinstance(target, dict):  # reported by the section's own check
        continue
    if dotted == "model.name":
      target.pop("path", None)
    target[name] = value
  return table


def read_toml(path) -> dict:
  """The TOML file's table (`SweepFileError` if missing or not TOML)."""
  path = Path(path)
  try:
    text = path.read_bytes()
  except FileNotFoundError:
    raise SweepFileError(path, "", "no such file") from None
  except IsADirectoryError:
    raise SweepFileError(path, "", "is a folder, not a TOML file") from None
  except OSError as err:
    raise SweepFileError(path, "", f"cannot be read ({err.strerror})") from None
  try:
    return tomllib.loads(text.decode("utf-8"))
  except UnicodeDecodeError:
    raise SweepFileError(path, "", "is not UTF-8 text (a TOML file)") from None
  except tomllib.TOMLDecodeError as err:
    raise SweepFileError(path, "", f"not valid TOML: {err}") from None


def load(path, overrides: Mapping[str, Any] | None = None) -> SweepFile:
  """Reads and checks the sweep file ``path``.

  Args:
    path: the TOML file.
    overrides: dotted keys (``epochs``, ``data.dataset``, ``model.name`` ...) set over the
      file's values (the command line's flags).  Without ``[model]`` the dataset's default
      model is trained (`lrjax.data.by_name.default_model`, as by ``lrjax sweep``).

  Raises:
    SweepFileError: naming the file and the key, for every mistake.
  """
  path = Path(path)
  table = _override(read_toml(path), overrides or {})
  top = _read(_TopLevel, {k: v for k, v in table.items() if k not in _SECTIONS}, "", path,
              extra=_SECTIONS)
  data = _read(DataSpec, _table(table.get("data", {}), "data", path), "data", path)
  if data.source_dir is not None and not Path(data.source_dir).is_dir():
    raise SweepFileError(path, "data.source_dir", f"{data.source_dir!r} is not a folder")
  default = by_name.default_model(data.dataset)
  model_spec, model_kwargs = _named(table.get("model", {}), "model", path)
  model, model_name = _build_model(model_spec, model_kwargs, default, path)
  controller, space = _search(table, path)
  if space is not None:
    if "grid" in table or "variants" in table:
      raise SweepFileError(path, "search.space", "give the configurations either as "
                           "[grid] / [[variants]] or as [search.space], not both")
    # The optimizer is checked at the corners of the space (every searched value low,
    # then every one high): what a draw can give.
    settings = [_corner(space, end) for end in (0, 1)]
    sources = [_Source("search.space", tuple(space.names))] * 2
  else:
    settings, sources = _settings(table, path)
  optimizer_fn = _build_optimizer(table, settings, sources, path)
  seeds = tuple(range(top.seeds)) if _is_int(top.seeds) else tuple(top.seeds)
  task = top.task or by_name.task(data.dataset)
  return SweepFile(path=path, data=data, model=model, model_name=model_name,
                   optimizer_fn=optimizer_fn,
                   hparams=space if space is not None else settings, epochs=top.epochs,
                   batch_size=top.batch_size, seeds=seeds, task=task,
                   observe_untrained_loss=top.observe_untrained_loss, out=Path(top.out),
                   table=table, controller=controller,
                   tensorboard_dir=None if top.tensorboard_dir is None else Path(
                       top.tensorboard_dir))


def _build_optimizer(table, settings, sources, path) -> OptimizerFn:
  opt_spec, opt_fixed = _named(table.get("optimizer", {}), "optimizer", path)
  has_schedule = "schedule" in table
  sch_spec, sch_fixed = (_named(table["schedule"], "schedule", path) if has_schedule
                         else (None, {}))
  rules_given = ["rule" in sch_fixed or SCHEDULE_PREFIX + "rule" in s for s in settings]
  with_rule = any(rules_given)
  if with_rule and not all(rules_given):
    missing = sources[rules_given.index(False)].where or "schedule"
    raise SweepFileError(path, f"{missing}.schedule.rule" if missing != "schedule"
                         else "schedule.rule",
                         "a rule is given for some settings but not this one; give "
                         "schedule.rule everywhere (rule = 'fixed' keeps the rate)")
  if not has_schedule and any(
      k.startswith(SCHEDULE_PREFIX) for s in settings for k in s):
    raise SweepFileError(path, "schedule", "the grid sets schedule.<name> but there is no "
                                           "[schedule] section naming the schedule")

  # The optimizer and the arguments it allows.
  strategy = None
  if opt_spec.path is not None:
    if with_rule:
      raise SweepFileError(path, "schedule.rule", f"a rule needs [optimizer] name = one of "
                                                  f"{', '.join(strategy_optimizers())} "
                                                  f"(lrjax.strategies), not a path")
    optimizer, by_name = import_path(opt_spec.path, "optimizer.path", path), False
    if not callable(optimizer):
      raise SweepFileError(path, "optimizer.path",
                           f"{opt_spec.path!r} is not callable (h -> "
                           f"optax.GradientTransformation)")
    opt_allowed, opt_required = None, list[str]()
  else:
    name = opt_spec.name or "sgd"
    if with_rule:
      allowed_names = strategy_optimizers()
      if name not in allowed_names:
        raise SweepFileError(path, "optimizer.name",
                             f"with a schedule.rule the optimizer is lrjax.strategies' "
                             f"one of {', '.join(allowed_names)}; got {name!r}")
      strategy = getattr(strategies_lib, name)
      optimizer = strategy
      opt_allowed = [n for n in _parameters(strategy)[0] if n not in _STRATEGY_POSITIONAL]
      opt_required = list[str]()
    else:
      allowed_names = optax_optimizers()
      if name not in allowed_names:
        raise SweepFileError(path, "optimizer.name",
                             f"must be an optax optimizer ({', '.join(allowed_names)}) or "
                             f"give optimizer.path = 'module:factory'; got {name!r}")
      optimizer = getattr(optax, name)
      opt_allowed, opt_required, _ = _parameters(optimizer)
      if has_schedule:
        opt_allowed = [n for n in opt_allowed if n != "learning_rate"]
        opt_required = [n for n in opt_required if n != "learning_rate"]
    by_name = True

  # The schedule and the arguments it allows.
  schedule, sch_allowed, sch_required = None, None, list[str]()
  if has_schedule:
    assert sch_spec is not None  # read above with the section
    if sch_spec.path is not None:
      schedule = import_path(sch_spec.path, "schedule.path", path)
      if not callable(schedule):
        raise SweepFileError(path, "schedule.path", f"{sch_spec.path!r} is not callable")
    else:
      factories = schedule_factories()
      if sch_spec.name not in factories:
        raise SweepFileError(path, "schedule.name",
                             f"must be an lrjax.schedules factory ({', '.join(factories)}) "
                             f"or give schedule.path = 'module:factory'; got "
                             f"{sch_spec.name!r}")
      schedule = getattr(schedules_lib, sch_spec.name)
      sch_allowed, sch_required, takes_kwargs = _parameters(schedule)
      if takes_kwargs:
        sch_allowed = None
    if sch_allowed is not None:
      sch_allowed = sch_allowed + ["rule"] + (_STRATEGY_ARGS if with_rule else [])

  # Every key, fixed or swept, is an argument of what it goes to.
  def check_name(name: str, key: str):
    if name.startswith(SCHEDULE_PREFIX):
      arg, allowed, what = name[len(SCHEDULE_PREFIX):], sch_allowed, "the schedule"
    else:
      arg, allowed, what = name, opt_allowed, "the optimizer"
      if has_schedule and name == "learning_rate" and by_name:
        raise SweepFileError(path, key, "the rate comes from [schedule]; sweep the "
                                        "schedule's arguments as schedule.<name>")
    if allowed is not None and arg not in allowed:
      raise SweepFileError(path, key, f"not an argument of {what}; allowed: "
                                      f"{', '.join(allowed)}")

  for name in opt_fixed:
    check_name(name, f"optimizer.{name}")
  for name in sch_fixed:
    check_name(SCHEDULE_PREFIX + name, f"schedule.{name}")
  for setting, source in zip(settings, sources, strict=True):
    for name in setting:
      check_name(name, f"{source.where}.{name}")
      # A key both fixed and swept is two values for one argument: which one the user
      # meant cannot be told, so the file is refused rather than one silently winning.
      fixed_key = (f"schedule.{name[len(SCHEDULE_PREFIX):]}"
                   if name.startswith(SCHEDULE_PREFIX) and
                   name[len(SCHEDULE_PREFIX):] in sch_fixed else
                   f"optimizer.{name}" if not name.startswith(SCHEDULE_PREFIX) and
                   name in opt_fixed else None)
      if fixed_key is not None:
        fixed = (sch_fixed if fixed_key.startswith("schedule.") else opt_fixed)[
            fixed_key.split(".", 1)[1]]
        raise SweepFileError(path, f"{source.where}.{name}",
                             f"also set as {fixed_key} = {fixed!r}; give it in one place "
                             f"(in [{fixed_key.split('.')[0]}] for every setting, or in "
                             f"{'[grid]' if source.where == 'grid' else '[[variants]]'} "
                             f"to sweep it)")

  # Every value is of the kind its argument takes: a string where a number is expected
  # (momentum = ["0.0", "0.9"]) would otherwise fail deep inside optax, mid-sweep.
  def target(name: str):
    """(the function ``name`` goes to, its argument) for the annotation."""
    if name.startswith(SCHEDULE_PREFIX):
      arg = name[len(SCHEDULE_PREFIX):]
      if schedule is not None and arg in _parameters(schedule)[0]:
        return schedule, arg
      return strategies_lib.scale_by_strategy, arg
    if opt_allowed is not None and name not in _parameters(optimizer)[0] and strategy:
      return strategies_lib.scale_by_strategy, name
    return (optimizer if opt_spec.path is None else None), name

  def check_kind(name: str, key: str, value):
    fn, arg = target(name)
    if name == SCHEDULE_PREFIX + "total_steps" and value == AUTO:
      return  # the run's length, filled in when the sweep starts
    expected = _expected_kind(fn, arg)
    if expected is None or _is_kind(value, expected):
      return
    hint = "; write it without quotes" if _unquoted_is_kind(value, expected) else ""
    raise SweepFileError(path, key, f"must be {expected} (the {arg!r} argument of "
                                    f"{_qualified(fn)}), got {value!r}{hint}")

  for name, value in opt_fixed.items():
    check_kind(name, f"optimizer.{name}", value)
  for name, value in sch_fixed.items():
    check_kind(SCHEDULE_PREFIX + name, f"schedule.{name}", value)
  for setting, source in zip(settings, sources, strict=True):
    for name, value in setting.items():
      check_kind(name, f"{source.where}.{name}", value)

  fn = OptimizerFn(optimizer, by_name, opt_fixed, schedule, sch_fixed, strategy)
  for setting, source in zip(settings, sources, strict=True):
    opt_args, sch_args = fn.arguments(setting)
    where = source.where or "optimizer"
    for required, args, section in ((opt_required, opt_args, "optimizer"),
                                    (sch_required, sch_args, "schedule")):
      for arg in required:
        if arg not in args:
          raise SweepFileError(path, f"{section}.{arg}",
                               f"required by {section} but not set (set it in "
                               f"[{section}] or as a [grid] axis)")
    for name, value in opt_args.items():
      if name == "learning_rate" and isinstance(value, (int, float)) and not (
          isinstance(value, bool) or value > 0):
        key = f"{where}.{name}" if name in setting else f"optimizer.{name}"
        raise SweepFileError(path, key, f"must be positive, got {value!r}")
    _construct(fn, setting, source, path)
  return fn


# Words in a type annotation that make an argument numeric (optax's chex.Numeric and
# ScalarOrSchedule unions, lrjax's ``float``), and those that let it take anything.
_NUMERIC_WORDS = {"float", "int", "Numeric", "number", "complex", "Array", "ArrayLike",
                  "ScalarOrSchedule"}
_ANY_WORDS = {"str", "Any", "object"}


def _expected_kind(fn, arg: str) -> str | None:
  """What the argument ``arg`` of ``fn`` takes, read from its annotation: ``"a number"``,
  ``"true or false"``, or None when anything goes (a string among its types, ``Any``,
  no annotation, or no such function / argument)."""
  if fn is None:
    return None
  try:
    parameter = inspect.signature(fn).parameters.get(arg)
  except (TypeError, ValueError):
    return None
  if parameter is None or parameter.annotation is inspect.Parameter.empty:
    return None
  annotation = parameter.annotation
  text = annotation if isinstance(annotation, str) else getattr(
      annotation, "__name__", None) if isinstance(annotation, type) else str(annotation)
  words = set(re.findall(r"[A-Za-z_]+", text or ""))
  if words & _ANY_WORDS:
    return None
  if words & _NUMERIC_WORDS:
    return "a number"
  if "bool" in words:
    return "true or false"
  return None


def _is_kind(value, expected: str) -> bool:
  if expected == "a number":
    return isinstance(value, numbers.Real)  # a boolean too: optax's Numeric takes one
  if expected == "true or false":
    return isinstance(value, bool)
  return True


def _unquoted_is_kind(value, expected: str) -> bool:
  """Whether ``value`` is a string that, without its quotes, is the kind expected."""
  if not isinstance(value, str):
    return False
  try:
    return _is_kind(tomllib.loads(f"v = {value}")["v"], expected)
  except tomllib.TOMLDecodeError:
    return False


def _qualified(fn) -> str:
  module = getattr(fn, "__module__", "") or ""
  public = ("optax" if module.startswith("optax") else
            "lrjax.strategies" if module.startswith("lrjax.strategies") else
            "lrjax.schedules" if module.startswith("lrjax.schedules") else module)
  return f"{public}.{getattr(fn, '__name__', fn)}"


def _construct(fn: OptimizerFn, setting: dict, source: _Source, path) -> None:
  """Builds one setting's optimizer with its concrete values, so that the factories'
  checks name the refused argument now (inside the sweep the numbers are traced)."""
  try:
    tx = fn(setting)
  except (TypeError, ValueError) as err:
    text = str(err).rstrip(".")
    key = source.where or "optimizer"
    for name in list(setting) + [SCHEDULE_PREFIX + n for n in fn.schedule_fixed] + list(
        fn.fixed):
      arg = name[len(SCHEDULE_PREFIX):] if name.startswith(SCHEDULE_PREFIX) else name
      mentioned = (err.argument == arg if isinstance(err, ArgumentError)  # lrjax's checks
                   else f"`{arg}`" in text or f"'{arg}'" in text)  # another library's
      if mentioned:
        key = (f"{source.where}.{name}" if name in setting else
               f"schedule.{arg}" if name.startswith(SCHEDULE_PREFIX) else f"optimizer.{arg}")
        break
    raise SweepFileError(path, key, text) from None
  if not isinstance(tx, optax.GradientTransformation):
    raise SweepFileError(path, "optimizer.path", f"must return an "
                                                 f"optax.GradientTransformation, got "
                                                 f"{type(tx).__name__}")
