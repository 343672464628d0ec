"""`sweep`: train any Flax model with any optax optimizer over a grid, in one program.

The library entry point (issue 11), `lrjax.sweep`, and the one engine of lrjax
(`run_sweep` is its preset for a `SweepConfig`, see `lrjax.train.frontends.presets`):

* ``model``: a `flax.linen.Module` called as ``model(x, *, train)`` (mutable
  collections such as ``batch_stats`` are updated in training; every RNG stream the
  module asks for in training gets its own key per variant, step and epoch);
* ``optimizer_fn(h) -> optax.GradientTransformation``: called *inside* the traced,
  vmapped program with one variant's hyperparameters ``h`` (numbers as traced
  scalars), so any optax chain, lrjax schedule, strategy or adaptive rate works;
  it receives the engine's extra args (``valid_loss``, ``epoch_boundary``,
  ``initial_observation``, ``value_fn``) through `optax.with_extra_args_support`;
* ``hparams``: ``{name: [K values]}`` or a list of K dicts (`grid` builds the cartesian
  product).  Numbers become per-variant arrays; anything else (a schedule name, a
  callable, None) is static.

Variants are grouped by their static hyperparameters and by the structure of their
optimizer state, ``jax.tree.structure(jax.eval_shape(tx.init, params))``: one compiled
program per group (`lrjax.train.engine.epoch.GroupTrainer`), called once per chunk of the
group's variants (`lrjax.train.engine.plan`), the variant axis sharded over the local devices.
The rate, the strategy position and the non-finite flag of a variant are read from its
optimizer state by field name (`lrjax.train.engine.readouts`), whatever the optimizer.

Runs lose nothing (`lrjax.train.runner.loop`): with ``checkpoint_dir`` a checkpoint is written
every ``checkpoint_every`` epochs recording the run's identity (model, every variant's
hyperparameters and seed, task, batch sizes: `run_identity`) and the data's
(`lrjax.train.runner.checkpoint.data_identity`); the same call resumes from it (one line on
stderr), anything different is refused saying what differs, a finished run asked for
more epochs continues, and SIGINT / SIGTERM stop after the epoch in progress is
checkpointed (`SweepInterrupted`).  ``out_dir`` receives the results files
(`lrjax.train.reports.results.save`).  Under ``jax.distributed`` (`lrjax.distributed`) the
variant axis spans every process's devices; the processes must agree on the run and the
data (checked before anything compiles) and process 0 alone writes files.
``task`` is any `lrjax.train.Task`
(`lrjax.train.engine.task`): `CLASSIFICATION`, `REGRESSION` or the user's own.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import numbers
import re
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import distributed
from lrjax.train.runner import checkpoint as checkpoint_lib
from lrjax.train.engine import epoch as epoch_lib
from lrjax.train.frontends import inputs
from lrjax.train.runner import loop
from lrjax.train.engine import plan as plan_lib
from lrjax.train.frontends import presets
from lrjax.train.frontends.config import SweepConfig
from lrjax.train.engine.epoch import stream_keys as _stream_keys  # noqa: F401 (was defined here)
from lrjax.train.runner.loop import HISTORY_FIELDS, SweepInterrupted  # noqa: F401 (re-exported)
from lrjax.train.reports.metrics import summarize
from lrjax.train.engine.readouts import (INDEX_FIELD, LR_FIELDS, NONFINITE_FIELD,  # noqa: F401
                                  read_index, read_lr, read_nonfinite)
from lrjax.train.engine.task import CLASSIFICATION, REGRESSION, Task, as_task as _as_task  # noqa: F401


# -- hyperparameters -----------------------------------------------------------------

def _is_sequence(value) -> bool:
  return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


def grid(**axes) -> list[dict[str, Any]]:
  """The cartesian product of ``axes`` as a list of dicts (last axis fastest).

  Example:
    >>> grid(learning_rate=[0.1, 0.01], momentum=[0.0, 0.9])[1]
    {'learning_rate': 0.1, 'momentum': 0.9}
  """
  if not axes:
    raise ValueError("`grid` needs at least one axis, e.g. grid(learning_rate=[0.1, 0.01]).")
  for name, values in axes.items():
    if not _is_sequence(values) or len(values) == 0:
      raise ValueError(f"`grid` axis {name!r} must be a non-empty list of values, "
                       f"got {values!r}.")
  names = list(axes)
  return [dict(zip(names, combo)) for combo in itertools.product(*axes.values())]


def _is_number(value) -> bool:
  if isinstance(value, (bool, np.bool_)):
    return False
  if isinstance(value, numbers.Number):
    return isinstance(value, numbers.Real)
  if isinstance(value, (np.ndarray, jax.Array)):
    return value.ndim == 0 and (jnp.issubdtype(value.dtype, jnp.integer)
                                or jnp.issubdtype(value.dtype, jnp.floating))
  return False


def normalize_hparams(hparams) -> list[dict[str, Any]]:
  """``{name: [K values]}`` or ``[K dicts]`` -> K dicts (validated)."""
  if isinstance(hparams, Mapping):
    if not hparams:
      raise ValueError("`hparams` is empty: give {name: [values]} or a list of dicts.")
    lengths = {}
    for name, values in hparams.items():
      if not _is_sequence(values):
        raise ValueError(f"`hparams[{name!r}]` must be a list of one value per variant, "
                         f"got {values!r}.")
      lengths[name] = len(values)
    if len(set(lengths.values())) != 1:
      raise ValueError(f"`hparams` lists differ in length: {lengths}; every name needs one "
                       f"value per variant (use lrjax.train.grid for a product).")
    k = next(iter(lengths.values()))
    if k == 0:
      raise ValueError("`hparams` has no variants (empty lists).")
    variants = [{name: values[i] for name, values in hparams.items()} for i in range(k)]
  elif _is_sequence(hparams):
    variants = list(hparams)
    if not variants:
      raise ValueError("`hparams` is an empty list: give at least one dict.")
    for i, h in enumerate(variants):
      if not isinstance(h, Mapping):
        raise ValueError(f"`hparams[{i}]` must be a dict of hyperparameters, got {h!r}.")
  else:
    raise ValueError(f"`hparams` must be a mapping name -> list of values or a list of "
                     f"dicts, got {type(hparams).__name__}.")
  for i, h in enumerate(variants):
    for name in h:
      if not isinstance(name, str):
        raise ValueError(f"`hparams` names must be strings, got {name!r} (variant {i}).")
  return [dict(h) for h in variants]


def _number_dtypes(variants) -> dict[str, Any]:
  """Per numeric name, float32 if any variant gives a float there, else int32."""
  floating: dict[str, bool] = {}
  for h in variants:
    for name, value in h.items():
      if _is_number(value):
        is_float = not jnp.issubdtype(np.asarray(value).dtype, jnp.integer)
        floating[name] = floating.get(name, False) or is_float
  return {name: jnp.float32 if f else jnp.int32 for name, f in floating.items()}


def _same_static(a: dict, b: dict) -> bool:
  """Equal static hyperparameters (values compared by identity, else by ``==``)."""
  if a.keys() != b.keys():
    return False
  for name, x in a.items():
    y = b[name]
    if x is y:
      continue
    try:
      if type(x) is not type(y) or not bool(x == y):
        return False
    except Exception:  # e.g. arrays: ambiguous truth value; treat as different
      return False
  return True


def _split(h: dict, dtypes: dict) -> tuple[dict, dict]:
  numeric = {k: v for k, v in h.items() if k in dtypes and _is_number(v)}
  static = {k: v for k, v in h.items() if k not in numeric}
  return numeric, static


# -- groups and results --------------------------------------------------------------

@dataclasses.dataclass
class Group:
  """Variants sharing one compiled program.

  Attributes:
    index: position of the group in `SweepResult.groups`.
    static: the non-numeric hyperparameters of its variants.
    numeric: names of the hyperparameters passed as per-variant arrays.
    members: positions of its variants in the result.
    state_structure: ``str`` of the optimizer state's tree structure.
    plan: the execution plan (variants per compiled call).
  """

  index: int
  static: dict
  numeric: tuple[str, ...]
  members: list[int]
  state_structure: str
  plan: plan_lib.ExecutionPlan | None = None

  def to_dict(self) -> dict:
    return {"index": self.index, "static": {k: describe(v) for k, v in self.static.items()},
            "numeric": list(self.numeric), "members": list(self.members),
            "state_structure": self.state_structure,
            "plan": self.plan.to_dict() if self.plan else None}


@dataclasses.dataclass
class SweepResult:
  """What a sweep produced (`sweep`, and `run_sweep`, its preset).

  Attributes:
    history: field -> array ``[epochs, variants]`` (float64): the per-epoch fields of
      `lrjax.train.engine.epoch.EpochMetrics` (``train/valid/test_loss``, ``*_acc`` (NaN for
      regression), ``lr``, ``index``, ``nonfinite``) and ``group_seconds`` (the wall
      time of the epoch of the variant's group; with the groups' calls side by side,
      from the epoch's start until the group's last call finished).
    step_history: ``step_loss`` / ``step_lr`` -> array ``[epochs, variants, steps]``.
    summary: one dict per variant (`lrjax.train.reports.metrics.summarize`, with its ``seed``
      and ``group``).
    compile_seconds: time spent compiling the epoch programs.
    epoch_seconds: wall time of each epoch of this run (all groups), NaN for epochs
      restored from a checkpoint.
    device: the platform and device count used.
    plans: per group, its execution plan (`lrjax.train.engine.plan.ExecutionPlan.to_dict`,
      plus the group's variant names and the evaluation batch).
    config: the `SweepConfig` of a `run_sweep` run (None for `sweep`).
    variants: per variant, its identity: ``index``, ``name``, ``hparams``, ``seed``,
      ``group`` and ``tags`` (``setting``: the position of its hyperparameters among the
      distinct settings; ``seed``; a preset's own).
    groups: the `Group` s (static hyperparameters, state structure, plan).
    task: the `Task`.
    initial: the untrained model's ``valid_loss``, ``valid_acc``, ``test_loss``,
      ``test_acc`` (``[variants]`` each): epoch 0 of the curves.
  """

  history: dict[str, np.ndarray]
  step_history: dict[str, np.ndarray]
  summary: list[dict]
  compile_seconds: float
  epoch_seconds: np.ndarray
  device: str
  plans: list[dict] = dataclasses.field(default_factory=list)
  config: Any = None
  variants: list[dict] = dataclasses.field(default_factory=list)
  groups: list[Group] = dataclasses.field(default_factory=list)
  task: "Task | None" = None
  initial: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  @property
  def names(self) -> list[str]:
    if self.variants:
      return [v["name"] for v in self.variants]
    return [v.name for v in self.config.variants]

  def variant_records(self) -> list[dict]:
    """`variants` as JSON values (hyperparameters by `describe`)."""
    return [{k: (describe(v) if k in ("hparams", "tags") else v) for k, v in var.items()}
            for var in self.variants]


def _label(h: dict, seed: int) -> str:
  parts = [f"{k}={getattr(v, '__name__', v)}" for k, v in h.items()]
  return ",".join(parts + [f"seed={seed}"])


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def describe(value) -> Any:
  """``value`` as a JSON value that is the same in every process: numbers, strings,
  lists and dicts as they are; a function or class by its module and name; anything
  else by its ``repr`` without memory addresses."""
  if value is None or isinstance(value, (bool, str)):
    return value
  if isinstance(value, (np.bool_,)):
    return bool(value)
  if _is_number(value):
    value = np.asarray(value).item()
    return value if not isinstance(value, float) or np.isfinite(value) else repr(value)
  if isinstance(value, Mapping):
    return {str(k): describe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [describe(v) for v in value]
  if (callable(value) and hasattr(value, "__qualname__")
      and not isinstance(value, nn.Module)):
    return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
  return _ADDRESS.sub("", repr(value))


def run_identity(model: nn.Module, optimizer_fn, variants: Sequence[dict], *, task: "Task",
                 batch_size: int, eval_batch_size: int, observe_untrained_loss: bool,
                 epochs: int, checkpoint_every: int) -> dict[str, Any]:
  """What a checkpoint of `sweep` records as the run: the model (class and fields), the
  optimizer factory, every variant's hyperparameters and seed, the task and the batch
  sizes (``epochs`` and ``checkpoint_every`` too, which a continued run may change)."""
  cls = type(model)
  return {
      "model": {"class": f"{cls.__module__}.{cls.__qualname__}",
                "fields": _ADDRESS.sub("", repr(model))},
      "optimizer_fn": describe(optimizer_fn),
      "variants": [{"name": v["name"], "hparams": describe(v["hparams"]), "seed": v["seed"]}
                   for v in variants],
      "task": task.name, "batch_size": batch_size, "eval_batch_size": eval_batch_size,
      "observe_untrained_loss": observe_untrained_loss, "epochs": epochs,
      "checkpoint_every": checkpoint_every,
  }


# -- RNG streams ---------------------------------------------------------------------

_MISSING_RNG = re.compile(r"""PRNG (?:for|key for)\s+["']([^"']+)["']""")


def rng_streams(model: nn.Module, variables_shape, sample_x) -> tuple[str, ...]:
  """The RNG streams ``model`` asks for in training (always including ``dropout``).

  Found by tracing ``model.apply(..., train=True)`` (`jax.eval_shape`, nothing runs)
  with the streams known so far until no stream is missing.
  """
  streams = ["dropout"]
  params = variables_shape["params"]
  rest = {k: v for k, v in variables_shape.items() if k != "params"}
  for _ in range(16):
    rngs = {s: jax.random.PRNGKey(0) for s in streams}

    def apply(p, r, x, rngs=rngs):
      return model.apply({"params": p, **r}, x, train=True, rngs=rngs,
                         mutable=list(r) or False)

    try:
      jax.eval_shape(apply, params, rest, sample_x)
      return tuple(streams)
    except flax.errors.InvalidRngError as err:
      match = _MISSING_RNG.search(str(err))
      if not match or match.group(1) in streams:
        raise
      streams.append(match.group(1))
  return tuple(streams)



# -- the sweep -----------------------------------------------------------------------

def _validate(model, dataset, optimizer_fn, epochs, batch_size, seeds, eval_batch_size):
  inputs.check_dataset(dataset, ("train_x", "train_y", "valid_x", "valid_y", "test_x",
                                 "test_y"), batch_size)
  inputs.check_optimizer_fn(optimizer_fn, "h")
  inputs.check_int("epochs", epochs)
  if eval_batch_size is not None:
    inputs.check_int("eval_batch_size", eval_batch_size)
  if not _is_sequence(seeds) or len(seeds) == 0:
    raise ValueError(f"`seeds` must be a non-empty list of integers, got {seeds!r}.")
  for s in seeds:
    if isinstance(s, bool) or not isinstance(s, numbers.Integral):
      raise ValueError(f"`seeds` must hold integers, got {s!r}.")


_TRACED_AS_PYTHON = (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
                     jax.errors.TracerIntegerConversionError)


def _make_tx(optimizer_fn, h) -> optax.GradientTransformationExtraArgs:
  try:
    tx = optimizer_fn(h)
  except _TRACED_AS_PYTHON as err:
    raise TypeError(
        f"`optimizer_fn` used a numeric hyperparameter as a Python value (in an `if`, "
        f"`int()`, a shape ...), but numbers in `hparams` reach it as traced arrays so "
        f"that one program serves many values; pass that one as a non-numeric value "
        f"(e.g. a string) to make it static, or use jnp.where. Hyperparameters: "
        f"{sorted(h)}.") from err
  if not isinstance(tx, optax.GradientTransformation):
    raise TypeError(f"`optimizer_fn` must return an optax.GradientTransformation, got "
                    f"{type(tx).__name__} for hparams {h!r}.")
  return optax.with_extra_args_support(tx)



class VariantHyper(NamedTuple):
  """The hyper tree of a group's variants: numeric hyperparameters and seeds."""

  h: dict  # name -> [K] float32 / int32
  seed: Any  # int32 [K]


class _Transform:
  """``hyper -> tx`` of one variant of a group: ``optimizer_fn`` with the group's static
  hyperparameters and the variant's numeric ones."""

  def __init__(self, optimizer_fn, static: dict):
    self.optimizer_fn, self.static = optimizer_fn, static

  def __call__(self, hyper: VariantHyper):
    return _make_tx(self.optimizer_fn, {**self.static, **hyper.h})


def _variants_of(settings, seeds, names, tags):
  """(hparams, seed, name, tags) per variant: settings x seeds (setting-major), or one
  variant per setting where each holds its own ``seed``."""
  own = ["seed" in h for h in settings]
  if any(own):
    if not all(own):
      raise ValueError("`hparams`: give a `seed` in every variant or in none (then "
                       "`seeds` multiplies the variants).")
    if seeds is not None:
      raise ValueError("`seeds` must not be given when every `hparams` variant holds its "
                       "own `seed`.")
    pairs = []
    for h in settings:
      h = dict(h)
      seed = h.pop("seed")
      if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"`hparams` seeds must be integers, got {seed!r}.")
      pairs.append((h, int(seed)))
  else:
    seeds = (0,) if seeds is None else seeds
    if not _is_sequence(seeds) or len(seeds) == 0:
      raise ValueError(f"`seeds` must be a non-empty list of integers, got {seeds!r}.")
    for s in seeds:
      if isinstance(s, bool) or not isinstance(s, numbers.Integral):
        raise ValueError(f"`seeds` must hold integers, got {s!r}.")
    pairs = [(dict(h), int(s)) for h in settings for s in seeds]
  for what, given in (("names", names), ("tags", tags)):
    if given is not None and (not _is_sequence(given) or len(given) != len(pairs)):
      raise ValueError(f"`{what}` must hold one entry per variant ({len(pairs)}), got "
                       f"{given!r}.")
  if names is not None and len(set(names)) != len(names):
    raise ValueError(f"`names` must be unique, got {list(names)}.")
  settings_seen: list[str] = []
  out = []
  for k, (h, seed) in enumerate(pairs):
    key = json.dumps(describe(h), sort_keys=True)
    if key not in settings_seen:
      settings_seen.append(key)
    variant_tags = {"setting": settings_seen.index(key), "seed": seed,
                    **(dict(tags[k]) if tags is not None else {})}
    out.append((h, seed, _label(h, seed) if names is None else str(names[k]), variant_tags))
  return out


def sweep(model: nn.Module, dataset, optimizer_fn: Callable[[dict], optax.GradientTransformation],
          hparams, *, epochs: int, batch_size: int, seeds: Sequence[int] | None = None,
          task: Task | str = CLASSIFICATION, eval_batch_size: int | None = None,
          variants_per_call: int | None = None, concurrent_calls: int | None = None,
          observe_untrained_loss: bool = True, progress: bool = True,
          checkpoint_dir: str | Path | None = None, checkpoint_every: int = 1,
          out_dir: str | Path | None = None,
          on_epoch_end: Callable[[int, dict], None] | None = None,
          data_provenance: Mapping[str, object] | None = None,
          convergence_tolerance: float = 0.005, names: Sequence[str] | None = None,
          tags: Sequence[Mapping] | None = None, identity: Mapping | None = None,
          config: Any = None) -> SweepResult:
  """Trains ``model`` with ``optimizer_fn(h)`` for every ``h`` in ``hparams`` x ``seeds``.

  Args:
    model: a `flax.linen.Module`, called ``model(x, train=...)``; or an NNX model: an
      ``nnx.Module`` instance or a factory ``rngs -> nnx.Module`` (`lrjax.train.engine.nnx_adapter`).
    dataset: a `lrjax.data.Dataset` (or any object with ``train_x`` ... ``test_y``).
    optimizer_fn: ``h -> optax.GradientTransformation`` (ExtraArgs or not), called with
      one variant's hyperparameters inside the traced program.
    hparams: ``{name: [K values]}`` or a list of K dicts (see `grid`).  A ``seed`` in
      every dict makes it that variant's seed (then ``seeds`` is not given).
    epochs, batch_size: training length and minibatch size.
    seeds: every hyperparameter setting is trained once per seed (variants ordered
      setting-major; default ``(0,)``).  The seed fixes initialisation, data order and
      RNG streams.
    task: a `lrjax.train.Task`: `CLASSIFICATION`, `REGRESSION` (or their name) or the
      user's own (per-example loss and metrics, `lrjax.train.engine.task`).
    eval_batch_size: evaluation batch (default: per backend, `lrjax.train.engine.plan`).
    variants_per_call: variants per compiled call (default: the plan's rule).
    concurrent_calls: calls of an epoch run at once (default: the plan's rule, one per
      core on a CPU; 1: one after another).  Every value gives the same numbers.
    observe_untrained_loss: pass the untrained model's validation loss to the
      optimizer as ``initial_observation`` on the first step (the report's loss_0).
    progress: show a tqdm bar over epochs.
    checkpoint_dir: if given, an orbax checkpoint is written every ``checkpoint_every``
      epochs (0: only when stopped) and at the end, and the sweep resumes from the
      latest one found there with the results of an uninterrupted run (one line on
      stderr says so).  The checkpoint records the run's identity (`run_identity`) and
      the data's (`lrjax.train.runner.checkpoint.data_identity`): anything different is
      refused, saying what differs; a finished run asked for more epochs continues.
      SIGINT / SIGTERM stop the run after the epoch in progress is checkpointed
      (`SweepInterrupted`).  The folder is locked for the run.
    out_dir: if given, the results are written there (`lrjax.train.reports.results.save`); the
      folder is locked for the run.
    on_epoch_end: called as ``on_epoch_end(epoch, history)`` after each epoch (and its
      checkpoint); an exception raised there interrupts the sweep.
    data_provenance: how the data were made (subset size and seed, validation
      fraction ...), recorded with the data's identity.
    convergence_tolerance: of the summary's convergence epoch (`lrjax.train.reports.metrics`).
    names: one label per variant (default ``name=value,...,seed=s``).
    tags: one dict per variant, added to its ``tags``.
    identity: for presets: the run identity the checkpoint records (default
      `run_identity`); it must hold ``epochs``.
    config: for presets: the config object recorded in the result (``to_dict()``).

  Returns:
    a `SweepResult`.

  Raises:
    lrjax.train.runner.checkpoint.CheckpointError: the checkpoint folder is not writable, holds
      another run or other data, or has no step that verifies; or a save failed
      (`CheckpointSaveError`; the completed epochs are written to ``out_dir`` first).
      `FolderInUseError` when another run holds the checkpoint or output folder.
    SweepInterrupted: SIGINT / SIGTERM arrived (with a checkpoint folder only).

  Example (see the README for a full one):
    >>> result = sweep(model, data, lambda h: optax.sgd(h["learning_rate"]),  # doctest: +SKIP
    ...                {"learning_rate": [0.1, 0.01]}, epochs=3, batch_size=32)
  """
  model = inputs.check_model(model)  # NNX instance / factory -> Linen; Linen unchanged
  if not distributed.is_writer():  # d13: in a multi-process run only process 0 writes files
    out_dir, progress = None, False
  _validate(model, dataset, optimizer_fn, epochs, batch_size, (0,) if seeds is None else seeds,
            eval_batch_size)
  if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, numbers.Integral) \
      or checkpoint_every < 0:
    raise ValueError(f"`checkpoint_every` must be a non-negative integer, got "
                     f"{checkpoint_every!r}.")
  task = _as_task(task)
  # A built-in task must match the dataset's kind; a user's own task is the user's call.
  data_task = getattr(dataset, "task", task.name)
  if task.name in ("classification", "regression") and data_task != task.name:
    raise ValueError(f"`task` is {task.name!r} but the dataset "
                     f"{getattr(dataset, 'name', '')!r} is a {data_task} dataset.")
  settings = normalize_hparams(hparams)
  each = _variants_of(settings, seeds, names, tags)
  dtypes = _number_dtypes([h for h, *_ in each])
  eval_batch_size = plan_lib.eval_batch_size(eval_batch_size)
  mesh = epoch_lib.variant_mesh()
  plan_lib.check_concurrent_calls(concurrent_calls,
                                  devices=mesh.devices.size if mesh is not None else 1)
  data = epoch_lib.put_data(dataset, mesh)
  sample_x = data.train_x[:1]
  variables_shape = jax.eval_shape(
      lambda x: model.init(jax.random.PRNGKey(0), x, train=False), sample_x)
  streams = rng_streams(model, dict(variables_shape), sample_x)
  params_shape = variables_shape["params"]

  # Variants, and their groups by static hparams and optimizer-state structure.
  variants, groups, keys, numeric_of = [], [], [], []
  for h, seed, name, variant_tags in each:
    numeric, static = _split(h, dtypes)
    try:
      state_shape = jax.eval_shape(_make_tx(optimizer_fn, h).init, params_shape)
    except ValueError as err:  # e.g. an lrjax factory's check of a Python number
      raise ValueError(f"`optimizer_fn` rejected hparams {h!r}: {err}") from err
    structure = jax.tree.structure(state_shape)
    leaves = tuple((x.shape, x.dtype) for x in jax.tree.leaves(state_shape))
    key = (tuple(sorted(numeric)), structure, leaves)
    found = [g for g, k in zip(groups, keys) if k == key and _same_static(g.static, static)]
    if found:
      group = found[0]
    else:
      group = Group(len(groups), static, tuple(sorted(numeric)), [], str(structure))
      groups.append(group)
      keys.append(key)
    k = len(variants)
    group.members.append(k)
    variants.append({"index": k, "name": name, "hparams": h, "seed": seed,
                     "group": group.index, "tags": variant_tags})
    numeric_of.append(numeric)

  if identity is None:
    identity = run_identity(model, optimizer_fn, variants, task=task, batch_size=batch_size,
                            eval_batch_size=eval_batch_size,
                            observe_untrained_loss=observe_untrained_loss, epochs=epochs,
                            checkpoint_every=checkpoint_every)
  data_id = {}  # the data's identity, computed once when needed
  def data_identity():
    if not data_id:
      data_id.update(checkpoint_lib.data_identity(dataset, **dict(data_provenance or {})))
    return data_id

  # d13: the processes of a multi-process run must train the same sweep on the same data
  # (nothing to do in one process).
  distributed.check_agreement(config=dict(identity), data=data_identity)
  checkpointer = None
  if checkpoint_dir is not None:
    # Refuses at once, before anything is compiled: an unwritable folder, one in use,
    # another run's, or other data's.
    checkpointer = checkpoint_lib.SweepCheckpointer(checkpoint_dir, dict(identity),
                                                    data=dict(data_identity()))
  try:
    trainers, states, initial = [], [], {}
    for group in groups:
      hyper = VariantHyper(
          h={n: np.asarray([numeric_of[k][n] for k in group.members], dtypes[n])
             for n in group.numeric},
          seed=np.asarray([variants[k]["seed"] for k in group.members], np.int32))
      trainer = epoch_lib.GroupTrainer(
          model, _Transform(optimizer_fn, group.static), hyper, task=task,
          batch_size=batch_size, eval_batch_size=eval_batch_size, mesh=mesh,
          observe_untrained_loss=observe_untrained_loss,
          variants_per_call=variants_per_call or None, sample_x=sample_x, streams=streams,
          concurrent_calls=concurrent_calls or None)
      group.plan = trainer.plan
      state, untrained = trainer.init_and_evaluate(sample_x, data)
      for field, values in untrained.items():
        initial.setdefault(field, np.full(len(variants), np.nan))[group.members] = values
      trainers.append(trainer)
      states.append(state)
    plans = [dict(g.plan.to_dict(), eval_batch_size=eval_batch_size,
                  variants=[variants[k]["name"] for k in g.members]) for g in groups]
  except BaseException:
    if checkpointer is not None:
      checkpointer.close()
    raise
  names_ = [v["name"] for v in variants]
  device = f"{jax.default_backend()} x{jax.device_count()}"

  def finish(history, step_history, compile_seconds, epoch_seconds) -> SweepResult:
    summary = summarize(history, names_, tolerance=convergence_tolerance, task=task)
    for row, v in zip(summary, variants):
      row.update(seed=v["seed"], group=v["group"])
    return SweepResult(history=history, step_history=step_history, summary=summary,
                       compile_seconds=compile_seconds, epoch_seconds=epoch_seconds,
                       device=device, plans=plans, config=config, variants=variants,
                       groups=groups, task=task, initial=initial)

  def save_results(result, out):
    from lrjax.train.reports import results  # local: results pulls in matplotlib lazily too
    results.save(result, out)

  steps = dataset.train_x.shape[0] // batch_size
  return loop.run(trainers, [g.members for g in groups], states, data, epochs=epochs,
                  steps=steps, checkpointer=checkpointer, checkpoint_every=checkpoint_every,
                  out_dir=out_dir, progress=progress,
                  desc=f"{type(model).__name__} x{len(variants)}",
                  on_epoch_end=on_epoch_end, finish=finish, save_results=save_results)


def run_sweep(config: SweepConfig, dataset, *, checkpoint_dir: str | Path | None = None,
              out_dir: str | Path | None = None, progress: bool = True,
              on_epoch_end: Callable[[int, dict], None] | None = None,
              data_provenance: Mapping[str, object] | None = None) -> SweepResult:
  """Trains all variants of ``config`` on ``dataset`` (a `lrjax.data.Dataset`).

  Args:
    config: what to train; its ``checkpoint_every`` is the checkpoint interval.
    dataset: arrays with ``train_x/y``, ``valid_x/y``, ``test_x/y``.
    checkpoint_dir, out_dir, progress, on_epoch_end, data_provenance: as `lrjax.sweep`
      (the checkpoint's identity is the config, ``epochs``, ``checkpoint_every``,
      ``convergence_tolerance`` and ``concurrent_calls`` aside).

  Returns:
    A `SweepResult` (with ``config``).

  Raises:
    as `lrjax.sweep`.
  """
  return sweep(dataset=dataset, progress=progress, checkpoint_dir=checkpoint_dir,
                   out_dir=out_dir, on_epoch_end=on_epoch_end,
                   data_provenance=data_provenance, **presets.report_preset(config))
