"""`sweep`: train any Flax model with any optax optimizer over a grid, in one program.

The library entry point (issue 11).  Where `run_sweep` trains the variants its string
registries name, `sweep` takes the user's objects:

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
program per group, called once per chunk of the group's variants (`lrjax.train.plan`).
The pieces are the engine's: `train_step`, `evaluate`, the per-variant random streams
of `lrjax.train.epoch` (same seed -> same initialisation, data order and dropout as
`run_sweep`), the data order drawn on the device, one `lax.scan` per epoch.

The rate, the strategy position and the non-finite flag of a variant are read from its
optimizer state by field name (``lr`` / ``learning_rate``, ``index``, ``nonfinite`` and
``ApplyIfFiniteState.total_notfinite``, with `optax.tree_utils`), whatever the
optimizer: NaN / -1 / False where the state has no such field.

Not in this first version: checkpointing and resume (an interrupted `sweep` starts
again), sharding the variant axis over several devices, custom task objects beyond
`CLASSIFICATION` and `REGRESSION`.
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
import re
import time
import zlib
from typing import Any, Callable, Mapping, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax.train import plan as plan_lib
from lrjax.train.epoch import (EPOCH_FIELDS, EpochMetrics, _DROPOUT_SALT, _INIT_SALT,
                               _ORDER_SALT, put_data, variant_key)
from lrjax.train.metrics import summarize
from lrjax.train.nnx_adapter import as_linen
from lrjax.train.step import TrainState, evaluate, train_step

# The fields read from an optimizer state (any optax / lrjax state) by name.
LR_FIELDS = ("lr", "learning_rate")
INDEX_FIELD = "index"
NONFINITE_FIELD = "nonfinite"


@dataclasses.dataclass(frozen=True)
class Task:
  """What is minimised and reported.

  Attributes:
    name: ``classification`` (integer labels; per-example cross-entropy and accuracy)
      or ``regression`` (float targets; squared error, and RMSE in the history): the
      engine's `train_step` / `evaluate` implement both.
  """

  name: str

  def __post_init__(self):
    if self.name not in ("classification", "regression"):
      raise ValueError(f"`task` must be 'classification' or 'regression', got {self.name!r}.")

  def derived(self, history: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Metrics computed from the history (RMSE for regression)."""
    if self.name != "regression":
      return {}
    return {f"{split}_rmse": np.sqrt(history[f"{split}_loss"])
            for split in ("train", "valid", "test")}


CLASSIFICATION = Task("classification")
REGRESSION = Task("regression")


def _as_task(task) -> Task:
  if isinstance(task, Task):
    return task
  if isinstance(task, str):
    return Task(task)
  raise TypeError(f"`task` must be lrjax.train.CLASSIFICATION, REGRESSION or their name, "
                  f"got {task!r}.")


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


# -- groups --------------------------------------------------------------------------

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
    return {"index": self.index, "static": {k: repr(v) for k, v in self.static.items()},
            "numeric": list(self.numeric), "members": list(self.members),
            "state_structure": self.state_structure,
            "plan": self.plan.to_dict() if self.plan else None}


@dataclasses.dataclass
class SweepResult:
  """What `sweep` returns.

  Attributes:
    history: name -> ``[epochs, K]`` array (``train/valid/test_loss``, ``*_acc`` (NaN
      for regression), ``lr``, ``index``, ``nonfinite``; ``*_rmse`` for regression).
    initial_valid_loss: ``[K]`` the untrained model's validation loss.
    variants: per variant: ``name``, ``hparams``, ``seed``, ``group``.
    groups: the `Group` s (static hyperparameters, state structure, plan).
    task: the `Task`.
    compile_seconds, epoch_seconds: timings.
  """

  history: dict[str, np.ndarray]
  initial_valid_loss: np.ndarray
  variants: list[dict]
  groups: list[Group]
  task: Task
  compile_seconds: float = 0.0
  epoch_seconds: list[float] = dataclasses.field(default_factory=list)

  @property
  def names(self) -> list[str]:
    return [v["name"] for v in self.variants]

  def summary(self, **kwargs) -> list[dict]:
    """`lrjax.train.metrics.summarize` rows, with each variant's hparams, seed, group."""
    rows = summarize(self.history, self.names, **kwargs)
    for row, v in zip(rows, self.variants):
      row.update(seed=v["seed"], group=v["group"], hparams=v["hparams"])
      for name in self.task.derived({k: self.history[k] for k in
                                     ("train_loss", "valid_loss", "test_loss")}):
        row[f"final_{name}"] = float(self.history[name][-1, v["index"]])
    return rows


def _label(h: dict, seed: int) -> str:
  parts = [f"{k}={getattr(v, '__name__', v)}" for k, v in h.items()]
  return ",".join(parts + [f"seed={seed}"])


# -- readouts by field name ------------------------------------------------------------

def _scalars(opt_state, field: str) -> list:
  found = optax.tree_utils.tree_get_all_with_path(opt_state, field)
  return [v for _, v in found if hasattr(v, "shape") and jnp.ndim(v) == 0]


def read_lr(opt_state) -> jax.Array:
  """The rate held in the state (the last ``lr`` / ``learning_rate`` field), else NaN."""
  for field in LR_FIELDS:
    values = _scalars(opt_state, field)
    if values:
      return jnp.asarray(values[-1], jnp.float32)
  return jnp.asarray(jnp.nan, jnp.float32)


def read_index(opt_state) -> jax.Array:
  """The strategy's sequence position (an ``index`` field), else -1."""
  values = _scalars(opt_state, INDEX_FIELD)
  return jnp.asarray(values[0], jnp.int32) if values else jnp.asarray(-1, jnp.int32)


def read_nonfinite(opt_state) -> jax.Array:
  """Any ``nonfinite`` flag set, or a step skipped by `optax.apply_if_finite`."""
  flag = jnp.asarray(False)
  for value in _scalars(opt_state, NONFINITE_FIELD):
    flag = flag | jnp.asarray(value, bool)
  for value in _scalars(opt_state, "total_notfinite"):
    flag = flag | (value > 0)
  return flag


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


def _stream_keys(streams, seed, epoch, step) -> dict:
  """Per stream, this step's key; ``dropout`` is the engine's dropout stream."""
  base = jax.random.fold_in(variant_key(seed, _DROPOUT_SALT, epoch), step)
  return {s: base if s == "dropout" else
          jax.random.fold_in(base, zlib.crc32(s.encode()) & 0x7FFFFFFF) for s in streams}


# -- the sweep -----------------------------------------------------------------------

def _check_positive_int(name, value):
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
    raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _validate(model, dataset, optimizer_fn, epochs, batch_size, seeds, eval_batch_size):
  if not isinstance(model, nn.Module):
    raise TypeError(f"`model` must be a flax.linen.Module instance, got "
                    f"{type(model).__name__}.")
  for field in ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y"):
    if not hasattr(dataset, field):
      raise TypeError(f"`dataset` must have train/valid/test x and y arrays (a "
                      f"lrjax.data.Dataset); it has no {field!r}.")
  if not callable(optimizer_fn):
    raise TypeError(f"`optimizer_fn` must be a callable h -> optax.GradientTransformation, "
                    f"got {type(optimizer_fn).__name__}.")
  _check_positive_int("epochs", epochs)
  _check_positive_int("batch_size", batch_size)
  if eval_batch_size is not None:
    _check_positive_int("eval_batch_size", eval_batch_size)
  if batch_size > len(dataset.train_x):
    raise ValueError(f"`batch_size` ({batch_size}) exceeds the training set "
                     f"({len(dataset.train_x)} examples).")
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


class _GroupRunner:
  """Initialises and trains the variants of one group, one epoch per call."""

  def __init__(self, model, optimizer_fn, group: Group, numeric: dict[str, np.ndarray],
               seeds: np.ndarray, *, task: Task, batch_size: int, eval_batch_size: int,
               streams, variants_per_call, sample_x, observe_untrained_loss: bool):
    self.model, self.optimizer_fn, self.group = model, optimizer_fn, group
    self.task, self.batch_size, self.eval_batch_size = task.name, batch_size, eval_batch_size
    self.streams, self.observe = tuple(streams), observe_untrained_loss
    self.num_variants = len(seeds)
    hyper = {"h": numeric, "seed": seeds}
    group.plan = plan_lib.make_plan(self.num_variants, variants_per_call or None,
                                    variant_bytes=self._variant_bytes(hyper, sample_x))
    self.plan = group.plan
    padded = self.plan.padded
    self.hyper = jax.tree.map(
        lambda a: np.concatenate([a, np.repeat(a[-1:], padded - len(a), axis=0)]), hyper)
    self._epoch_fn = jax.jit(self._build_epoch_fn(), donate_argnums=(0,))

  def _tx(self, h):
    return _make_tx(self.optimizer_fn, {**self.group.static, **h})

  def _chunk(self, tree, call):
    if self.plan.num_calls == 1:
      return tree
    size = self.plan.chunk
    return jax.tree.map(lambda a: a[call * size:(call + 1) * size], tree)

  def _init_one(self, sample_x, hyper):
    variables = dict(self.model.init(variant_key(hyper["seed"], _INIT_SALT), sample_x,
                                     train=False))
    params = variables.pop("params")
    return TrainState(params, variables, self._tx(hyper["h"]).init(params),
                      jnp.asarray(jnp.inf, jnp.float32), jnp.asarray(0, jnp.int32))

  def _variant_bytes(self, hyper, sample_x) -> int:
    one = jax.tree.map(lambda a: a[0], hyper)
    batch = jax.ShapeDtypeStruct((self.batch_size,) + tuple(sample_x.shape[1:]),
                                 sample_x.dtype)

    def step(x):
      state = self._init_one(x[:1], one)
      y = jnp.zeros((x.shape[0],), jnp.int32 if self.task == "classification" else x.dtype)
      return train_step(self.model, self._tx(one["h"]), self.task, state, x, y,
                        _stream_keys(self.streams, one["seed"], 0, 0), jnp.asarray(False))

    return plan_lib.step_bytes(step, batch)

  def init(self, sample_x, data):
    model, task, eval_batch_size, observe = (self.model, self.task, self.eval_batch_size,
                                             self.observe)

    def one(hyper):
      state = self._init_one(sample_x, hyper)
      loss, _ = evaluate(model, task, state.params, state.model_state, data.valid_x,
                         data.valid_y, eval_batch_size)
      loss = jnp.asarray(loss, jnp.float32)
      if observe:
        state = state._replace(valid_loss=loss)
      return state, loss

    each = lambda h: jax.lax.map(one, h, batch_size=self.plan.chunk)
    return jax.jit(each)(jax.device_put(self.hyper))

  def _build_epoch_fn(self):
    model, task = self.model, self.task
    batch_size, eval_batch_size = self.batch_size, self.eval_batch_size
    streams, observe = self.streams, self.observe

    def one_variant(state: TrainState, hyper, data):
      tx = self._tx(hyper["h"])
      seed = hyper["seed"]
      n = data.train_x.shape[0]
      steps = n // batch_size
      order_key = variant_key(seed, _ORDER_SALT, state.epoch)
      order = jax.random.permutation(order_key, n)[: steps * batch_size]
      order = order.reshape(steps, batch_size)

      def body(st, inputs):
        idx, i = inputs
        boundary = (i == 0) & (st.epoch > 0)
        initial = ((i == 0) & (st.epoch == 0)) if observe else False
        st, m = train_step(model, tx, task, st, data.train_x[idx], data.train_y[idx],
                           _stream_keys(streams, seed, st.epoch, i), boundary,
                           initial_observation=initial)
        return st, (m, read_lr(st.opt_state))

      state, (step_metrics, step_lr) = jax.lax.scan(body, state, (order, jnp.arange(steps)))
      train_acc = jnp.sum(step_metrics.correct) / jnp.sum(step_metrics.count)
      if task != "classification":
        train_acc = jnp.asarray(jnp.nan, jnp.float32)
      valid_loss, valid_acc = evaluate(model, task, state.params, state.model_state,
                                       data.valid_x, data.valid_y, eval_batch_size)
      test_loss, test_acc = evaluate(model, task, state.params, state.model_state,
                                     data.test_x, data.test_y, eval_batch_size)
      metrics = EpochMetrics(
          train_loss=jnp.mean(step_metrics.loss), train_acc=train_acc,
          valid_loss=valid_loss, valid_acc=valid_acc, test_loss=test_loss,
          test_acc=test_acc, lr=read_lr(state.opt_state),
          index=read_index(state.opt_state),
          nonfinite=read_nonfinite(state.opt_state) | ~jnp.isfinite(valid_loss),
          step_loss=step_metrics.loss, step_lr=step_lr)
      state = state._replace(valid_loss=valid_loss, epoch=state.epoch + 1)
      return state, metrics

    if self.plan.chunk > 1:
      return jax.vmap(one_variant, in_axes=(0, 0, None))

    def single(state, hyper, data):
      # One variant per call: the unbatched program, the variant axis added back outside.
      first = lambda tree: jax.tree.map(lambda a: a[0], tree)
      out = one_variant(first(state), first(hyper), data)
      return jax.tree.map(lambda a: a[None], out)

    return single

  def compile(self, state, data) -> float:
    t0 = time.perf_counter()
    self._epoch_fn = self._epoch_fn.lower(self._chunk(state, 0), self._chunk(self.hyper, 0),
                                          data).compile()
    return time.perf_counter() - t0

  def run_epoch(self, state, data):
    outs = [self._epoch_fn(self._chunk(state, c), self._chunk(self.hyper, c), data)
            for c in range(self.plan.num_calls)]
    del state
    if len(outs) == 1:
      state, metrics = outs[0]
    else:
      state, metrics = jax.tree.map(lambda *a: jnp.concatenate(a), *outs)
    return state, jax.tree.map(lambda a: a[: self.num_variants], metrics)


def sweep(model: nn.Module, dataset, optimizer_fn: Callable[[dict], optax.GradientTransformation],
          hparams, *, epochs: int, batch_size: int, seeds: Sequence[int] = (0,),
          task: Task | str = CLASSIFICATION, eval_batch_size: int | None = None,
          variants_per_call: int | None = None, observe_untrained_loss: bool = True,
          progress: bool = True) -> SweepResult:
  """Trains ``model`` with ``optimizer_fn(h)`` for every ``h`` in ``hparams`` x ``seeds``.

  Args:
    model: a `flax.linen.Module`, called ``model(x, train=...)``; or an NNX model: an
      ``nnx.Module`` instance or a factory ``rngs -> nnx.Module`` (`lrjax.train.nnx_adapter`).
    dataset: a `lrjax.data.Dataset` (or any object with ``train_x`` ... ``test_y``).
    optimizer_fn: ``h -> optax.GradientTransformation`` (ExtraArgs or not), called with
      one variant's hyperparameters inside the traced program.
    hparams: ``{name: [K values]}`` or a list of K dicts (see `grid`).
    epochs, batch_size: training length and minibatch size.
    seeds: every hyperparameter setting is trained once per seed (variants ordered
      setting-major).  The seed fixes initialisation, data order and RNG streams.
    task: `CLASSIFICATION` or `REGRESSION` (or their name).
    eval_batch_size: evaluation batch (default: per backend, `lrjax.train.plan`).
    variants_per_call: variants per compiled call (default: the plan's rule).
    observe_untrained_loss: pass the untrained model's validation loss to the
      optimizer as ``initial_observation`` on the first step (the report's loss_0).
    progress: show a tqdm bar over epochs.

  Returns:
    a `SweepResult`.  Checkpointing / resume is not supported by this first version.

  Example (see the README for a full one):
    >>> result = sweep(model, data, lambda h: optax.sgd(h["learning_rate"]),  # doctest: +SKIP
    ...                {"learning_rate": [0.1, 0.01]}, epochs=3, batch_size=32)
  """
  model = as_linen(model)  # NNX instance / factory -> Linen module; Linen unchanged
  _validate(model, dataset, optimizer_fn, epochs, batch_size, seeds, eval_batch_size)
  task = _as_task(task)
  settings = normalize_hparams(hparams)
  dtypes = _number_dtypes(settings)
  eval_batch_size = plan_lib.eval_batch_size(eval_batch_size)
  data = put_data(dataset)
  sample_x = jnp.asarray(dataset.train_x[:1])
  variables_shape = jax.eval_shape(
      lambda x: model.init(jax.random.PRNGKey(0), x, train=False), sample_x)
  streams = rng_streams(model, dict(variables_shape), sample_x)
  params_shape = variables_shape["params"]

  # Variants, and their groups by static hparams and optimizer-state structure.
  variants, groups, numeric_of = [], [], []
  for h in settings:
    numeric, static = _split(h, dtypes)
    try:
      state_shape = jax.eval_shape(_make_tx(optimizer_fn, h).init, params_shape)
    except ValueError as err:  # e.g. an lrjax factory's check of a Python number
      raise ValueError(f"`optimizer_fn` rejected hparams {h!r}: {err}") from err
    structure = jax.tree.structure(state_shape)
    leaves = tuple((x.shape, x.dtype) for x in jax.tree.leaves(state_shape))
    key = (tuple(sorted(numeric)), structure, leaves)
    group = next((g for g in groups if g._key == key and _same_static(g.static, static)),
                 None)
    if group is None:
      group = Group(len(groups), static, tuple(sorted(numeric)), [], str(structure))
      group._key = key
      groups.append(group)
    for seed in seeds:
      k = len(variants)
      group.members.append(k)
      variants.append({"index": k, "name": _label(h, int(seed)), "hparams": h,
                       "seed": int(seed), "group": group.index})
      numeric_of.append(numeric)

  runners = []
  for group in groups:
    numeric = {name: np.asarray([numeric_of[k][name] for k in group.members], dtypes[name])
               for name in group.numeric}
    seeds_arr = np.asarray([variants[k]["seed"] for k in group.members], np.int32)
    runners.append(_GroupRunner(
        model, optimizer_fn, group, numeric, seeds_arr, task=task, batch_size=batch_size,
        eval_batch_size=eval_batch_size, streams=streams,
        variants_per_call=variants_per_call, sample_x=sample_x,
        observe_untrained_loss=observe_untrained_loss))

  num = len(variants)
  history = {f: np.full((epochs, num), np.nan, np.float32) for f in EPOCH_FIELDS}
  history["index"] = np.full((epochs, num), -1, np.int32)
  history["nonfinite"] = np.zeros((epochs, num), bool)
  initial_loss = np.full((num,), np.nan, np.float32)
  states, compile_seconds = [], 0.0
  for runner, group in zip(runners, groups):
    state, loss0 = runner.init(sample_x, data)
    initial_loss[group.members] = np.asarray(loss0)[: runner.num_variants]
    compile_seconds += runner.compile(state, data)
    states.append(state)

  epoch_iter = range(epochs)
  if progress:
    from tqdm.auto import tqdm
    epoch_iter = tqdm(epoch_iter, desc="sweep", unit="epoch")
  epoch_seconds = []
  for epoch in epoch_iter:
    t0 = time.perf_counter()
    for g, (runner, group) in enumerate(zip(runners, groups)):
      states[g], metrics = runner.run_epoch(states[g], data)
      metrics = jax.device_get(metrics)
      for field in EPOCH_FIELDS:
        history[field][epoch, group.members] = np.asarray(getattr(metrics, field))
    epoch_seconds.append(time.perf_counter() - t0)
  history.update(task.derived(history))
  for group in groups:
    del group._key
  return SweepResult(history=history, initial_valid_loss=initial_loss, variants=variants,
                     groups=groups, task=task, compile_seconds=compile_seconds,
                     epoch_seconds=epoch_seconds)
