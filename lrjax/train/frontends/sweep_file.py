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

  [grid]                       # axes of the cartesian product (last fastest)
  learning_rate = [0.1, 0.01]  # a plain name: an argument of the optimizer
  momentum = [0.0, 0.9]
  schedule.r0 = [0.1, 0.01]    # schedule.<name>: an argument of the schedule/strategy

  [[variants]]                 # explicit settings, after the grid's (same naming)
  learning_rate = 0.05
  schedule.rule = "epoch"

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
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import itertools
import math
import numbers
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable, Mapping

import flax.linen as nn
import optax

from lrjax import schedules as schedules_lib
from lrjax import strategies as strategies_lib
from lrjax.models.registry import MODELS, get_model

from lrjax.cli import DATASETS, DEFAULT_MODEL

TASKS = ("classification", "regression")
SCHEDULE_PREFIX = "schedule."
# Arguments of the strategies' complete optimizers that the file sets otherwise.
_STRATEGY_POSITIONAL = ("sequence", "rule")


class SweepFileError(ValueError):
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
  """``[data]``: which dataset and how much of it (`lrjax.cli.load_dataset`'s arguments)."""

  dataset: str = _option("synthetic", "str", _one_of(DATASETS))
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


_SECTIONS = ("data", "model", "optimizer", "schedule", "grid", "variants")


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
  return model, spec.path


# -- the optimizer ---------------------------------------------------------------------

class OptimizerFn:
  """``h -> optax.GradientTransformation`` of a sweep file (`lrjax.sweep`'s
  ``optimizer_fn``): the file's fixed arguments updated by the variant's ``h``.

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

  def __init__(self, optimizer, by_name: bool, fixed: dict, schedule=None,
               schedule_fixed: dict | None = None, strategy=None):
    self.optimizer, self.by_name, self.fixed = optimizer, by_name, dict(fixed)
    self.schedule, self.schedule_fixed = schedule, dict(schedule_fixed or {})
    self.strategy = strategy
    self._schedule_args = (None if schedule is None or _parameters(schedule)[2]
                           else set(_parameters(schedule)[0]))

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
    """The optimizer's and the schedule's arguments for the variant ``h``."""
    opt = {**self.fixed, **{k: v for k, v in h.items() if not k.startswith(SCHEDULE_PREFIX)}}
    sch = {**self.schedule_fixed, **{k[len(SCHEDULE_PREFIX):]: v for k, v in h.items()
                                     if k.startswith(SCHEDULE_PREFIX)}}
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
      settings.append(dict(zip(names, combo)))
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


# -- the file ----------------------------------------------------------------------------

@dataclasses.dataclass
class SweepFile:
  """A checked sweep file: the arguments of `lrjax.sweep` (and where to write).

  Attributes:
    path: the file.
    data: the ``[data]`` section (a `DataSpec`).
    model: the Flax module; ``model_name`` the built-in name or the ``module:attr``.
    optimizer_fn: an `OptimizerFn`.
    hparams: one dict per setting (grid product, then ``[[variants]]``).
    epochs, batch_size, seeds, task, observe_untrained_loss: as `lrjax.sweep`.
    out: the output folder.
    table: the file's content after the command line's overrides (for results.json).
  """

  path: Path
  data: DataSpec
  model: nn.Module
  model_name: str
  optimizer_fn: OptimizerFn
  hparams: list[dict]
  epochs: int
  batch_size: int
  seeds: tuple[int, ...]
  task: str
  observe_untrained_loss: bool
  out: Path
  table: dict

  def identity(self, *, eval_batch_size: int, checkpoint_every: int) -> dict:
    """What a checkpoint of this file's run records as the run (`lrjax.sweep`'s
    ``identity``): the model, the optimizer's parts, every setting and seed, the task
    and batch sizes; ``epochs`` and ``checkpoint_every`` may change on a resume."""
    from lrjax.train.api import describe
    cls = type(self.model)
    return {"model": {"class": f"{cls.__module__}.{cls.__qualname__}",
                      "fields": describe(self.model)},
            "optimizer_fn": self.optimizer_fn.describe(),
            "variants": [{"hparams": h, "seed": s} for h in self.hparams for s in self.seeds],
            "task": self.task, "batch_size": self.batch_size,
            "eval_batch_size": eval_batch_size,
            "observe_untrained_loss": self.observe_untrained_loss, "epochs": self.epochs,
            "checkpoint_every": checkpoint_every}

  def sweep(self, dataset, **kwargs):
    """`lrjax.sweep` of this file on ``dataset`` (``kwargs``: its other arguments)."""
    from lrjax.train.api import sweep
    return sweep(self.model, dataset, self.optimizer_fn, self.hparams, epochs=self.epochs,
                 batch_size=self.batch_size, seeds=self.seeds, task=self.task,
                 observe_untrained_loss=self.observe_untrained_loss, **kwargs)


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


def load(path, overrides: Mapping[str, Any] | None = None, *,
         default_models: Mapping[str, str] | None = None) -> SweepFile:
  """Reads and checks the sweep file ``path``.

  Args:
    path: the TOML file.
    overrides: dotted keys (``epochs``, ``data.dataset``, ``model.name`` ...) set over the
      file's values (the command line's flags).
    default_models: dataset -> built-in model used without ``[model]`` (default: the
      command line's, `lrjax.cli.DEFAULT_MODEL`).

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
  default = (DEFAULT_MODEL if default_models is None else default_models)[data.dataset]
  model_spec, model_kwargs = _named(table.get("model", {}), "model", path)
  model, model_name = _build_model(model_spec, model_kwargs, default, path)
  settings, sources = _settings(table, path)
  optimizer_fn = _build_optimizer(table, settings, sources, path)
  seeds = tuple(range(top.seeds)) if _is_int(top.seeds) else tuple(top.seeds)
  task = top.task or ("regression" if data.dataset == "boston_housing" else "classification")
  return SweepFile(path=path, data=data, model=model, model_name=model_name,
                   optimizer_fn=optimizer_fn, hparams=settings, epochs=top.epochs,
                   batch_size=top.batch_size, seeds=seeds, task=task,
                   observe_untrained_loss=top.observe_untrained_loss, out=Path(top.out),
                   table=table)


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
    opt_allowed, opt_required = None, []
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
      opt_required = []
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
  schedule, sch_allowed, sch_required = None, None, []
  if has_schedule:
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
  for setting, source in zip(settings, sources):
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

  fn = OptimizerFn(optimizer, by_name, opt_fixed, schedule, sch_fixed, strategy)
  for setting, source in zip(settings, sources):
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
      if f"`{arg}`" in text or f"'{arg}'" in text:
        key = (f"{source.where}.{name}" if name in setting else
               f"schedule.{arg}" if name.startswith(SCHEDULE_PREFIX) else f"optimizer.{arg}")
        break
    raise SweepFileError(path, key, text) from None
  if not isinstance(tx, optax.GradientTransformation):
    raise SweepFileError(path, "optimizer.path", f"must return an "
                                                 f"optax.GradientTransformation, got "
                                                 f"{type(tx).__name__}")
