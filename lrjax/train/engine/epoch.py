"""A whole epoch as one `lax.scan`, for many variants at once (`jax.vmap`).

`GroupTrainer` compiles one program per group of variants (variants whose optimizer
states share a structure): the epoch of every variant of the group runs in that single
XLA program, the data order is drawn on the device, and the batches are gathered from
device-resident arrays, so the host is not involved between the first step of an epoch
and its last evaluation.  When several devices are present the variant axis is sharded
over them (`jax.sharding`).

The trainer knows nothing of optimizer names: it is given the model, a builder of one
variant's transformation (``transform(hyper) -> optax.GradientTransformation``, called
inside the traced program with that variant's slice of the hyper tree), the
variant-stacked hyper tree (any pytree with a ``seed`` field), the model's RNG streams
and the task; the rate, position and non-finite flag are read from the optimizer state
by field (`lrjax.train.engine.readouts`).  `lrjax.sweep` (`lrjax.train.api`) drives it.

What a variant carries from one epoch to the next is its `VariantState`: the training
state, its hyperparameters in force and whether it is alive.  The epoch program is a
pure function of (state, data order, data): the optimizer is built inside it from the
state's hyperparameters, so hyperparameters changed between epochs (by a search
controller, `lrjax.train.search`) take effect from the next step with no recompile, and
a stopped variant's state passes through unchanged (on the CPU plan its calls are not
made at all).  `GroupTrainer.apply` carries out a controller's decisions on the device:
a gather along the variant axis (a variant continuing from another's state), the
optimizer state's hyperparameter copies written (`lrjax.train.engine.hyperparams`),
fresh initialisations for restarted variants; one compiled program, whatever is decided.
"""

from __future__ import annotations

import concurrent.futures
import functools
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrjax import distributed
from lrjax.errors import ArgumentError
from lrjax.train.engine import hyperparams as hyperparams_lib
from lrjax.train.engine import plan as plan_lib
from lrjax.train.engine.readouts import (
  eval_params,
  read_index,
  read_injected,
  read_lr,
  read_nonfinite,
)
from lrjax.train.engine.step import TrainState, evaluate, train_step
from lrjax.train.engine.task import as_task

# Salts of the per-variant random streams (same seed -> same stream for every group).
_INIT_SALT, _ORDER_SALT, _DROPOUT_SALT = 0, 1, 2


class DeviceData(NamedTuple):
  train_x: jax.Array
  train_y: jax.Array
  valid_x: jax.Array
  valid_y: jax.Array
  test_x: jax.Array
  test_y: jax.Array


class VariantState(NamedTuple):
  """What a variant carries between epochs (stacked: a leading variant axis)."""

  train: TrainState  # parameters, model state, optimizer state, last validation loss
  hyper: Any  # the hyperparameters in force (a pytree with a ``seed`` field)
  alive: jax.Array  # bool: the variant trains in the next epoch


class EpochMetrics(NamedTuple):
  """Per-variant results of one epoch (each field has a leading variant axis)."""

  train_loss: jax.Array  # mean of the minibatch losses seen during the epoch
  train_acc: jax.Array
  valid_loss: jax.Array
  valid_acc: jax.Array
  test_loss: jax.Array
  test_acc: jax.Array
  lr: jax.Array  # the rate in use at the end of the epoch
  index: jax.Array  # type: ignore[assignment]  # the strategy's sequence position (-1: none)
  nonfinite: jax.Array  # a NaN/inf gradient or validation loss was met so far
  step_loss: jax.Array  # [steps] the minibatch loss of every step (LR range test)
  step_lr: jax.Array  # [steps] the rate in use after every step
  injected: dict = {}  # name -> the value of each injected hyperparameter at the end


# Fields holding one number per epoch, and one per step (``injected``: one per name).
EPOCH_FIELDS = EpochMetrics._fields[:-3]
STEP_FIELDS = ("step_loss", "step_lr")
INJECTED_PREFIX = "opt."  # history fields of the injected hyperparameters


def variant_key(seed, salt: int, epoch=0):
  """The random key of one stream of one variant for one epoch."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), salt)
  return jax.random.fold_in(key, epoch)


def stream_keys(streams: Sequence[str], seed, epoch, step) -> dict:
  """Per RNG stream of the model, the key of one step of one variant.

  ``dropout`` is the engine's dropout stream (`variant_key` with the dropout salt,
  folded with the step); every other stream is that key folded with the stream's name.
  """
  base = jax.random.fold_in(variant_key(seed, _DROPOUT_SALT, epoch), step)
  return {s: base if s == "dropout" else
          jax.random.fold_in(base, zlib.crc32(s.encode()) & 0x7FFFFFFF) for s in streams}


def variant_mesh() -> Mesh | None:
  """A 1-D mesh over all devices named ``variant``, or None on a single device."""
  devices = jax.devices()
  if len(devices) < 2:
    return None
  return Mesh(np.asarray(devices), ("variant",))


class GroupTrainer:
  """Initialises and trains the variants of one group, one epoch per call.

  Args:
    model: the Flax module, called ``model(x, train=...)``.
    transform: ``transform(hyper) -> optax transformation`` of one variant, called inside
      the traced program with that variant's slice of the hyperparameters (ExtraArgs or
      not).
    hyper: the variants' initial hyperparameters, stacked (leading axis = variant),
      with a ``seed`` field (int32 [K]): the seed fixes the variant's initialisation,
      data order and RNG streams.  From `init` on they are part of the `VariantState`.
    task: ``classification`` or ``regression`` (passed to `train_step` / `evaluate`).
    batch_size, eval_batch_size: training and evaluation batches.
    mesh: the device mesh of the variant axis (`variant_mesh`), or None.
    observe_untrained_loss: evaluate the untrained model in `init` and pass its
      validation loss to the optimizer as the initial observation (the report's loss_0).
    variants_per_call: variants per compiled call (None: the plan's rule).
    concurrent_calls: calls of an epoch run at once (None: the plan's rule; 1: one
      after another).
    sample_x: one input example (for the plan's working-set estimate).
    streams: the model's RNG streams in training (`stream_keys`).
  """

  def __init__(self, model: nn.Module, transform: Callable[[Any], Any], hyper, *, task: str,
               batch_size: int, eval_batch_size: int, mesh: Mesh | None = None,
               observe_untrained_loss: bool = False,
               variants_per_call: int | None = None, sample_x=None,
               streams: Sequence[str] = ("dropout",), concurrent_calls: int | None = None):
    self.model = model
    self.transform = transform
    # The report's loss_0: evaluate the untrained model in `init` and pass its
    # validation loss to the strategy as the initial observation (lrjax.strategies).
    self.observe_untrained_loss = bool(observe_untrained_loss)
    self.streams = tuple(streams)
    self.num_variants = int(np.shape(hyper.seed)[0])
    self.mesh = mesh
    self.task = task
    self.batch_size = batch_size
    self.eval_batch_size = eval_batch_size
    # How many variants one compiled call trains (lrjax.train.engine.plan); the variant
    # axis is padded to a whole number of calls (a multiple of the device count when
    # sharded) with copies of the last variant, which never train (not alive) and are
    # dropped from the results.
    self.plan = plan_lib.make_plan(
        self.num_variants, variants_per_call,
        multiple=mesh.devices.size if mesh is not None else 1,
        variant_bytes=self._variant_bytes(hyper, sample_x), concurrent_calls=concurrent_calls)
    padded = self.plan.padded
    # The start of every variant (`init`); afterwards the hyperparameters in force are
    # the state's, never this.
    self.initial_hyper = jax.tree.map(
        lambda a: np.concatenate([a, np.repeat(a[-1:], padded - len(a), axis=0)]), hyper)
    self.shared_order = bool(np.all(self.initial_hyper.seed == self.initial_hyper.seed[0]))
    split, whole = self._variant_sharding(), self._replicated_sharding()
    if mesh is None:
      self._epoch_fn = jax.jit(self._build_epoch_fn(), donate_argnums=(0,))
      self._apply_fn = jax.jit(self._build_apply_fn(), donate_argnums=(0,))
    else:
      # Pin every variant-stacked array to the variant axis, in and out, so the state's
      # layout is the same at every epoch (and after a restore).
      key_sharding = whole if self.shared_order else split
      self._epoch_fn = jax.jit(self._build_epoch_fn(), donate_argnums=(0,),
                               in_shardings=(split, key_sharding, whole),
                               out_shardings=(split, split))
      self._apply_fn = jax.jit(self._build_apply_fn(), donate_argnums=(0,),
                               in_shardings=(split, split, whole, whole, split, whole,
                                             whole),
                               out_shardings=split)
    self._fresh_fn = self._build_fresh_fn()
    self._untrained_fns: dict = {}
    self._restart_loss_fn = self._build_restart_loss_fn()
    self._compiled: Any = None  # jax.stages.Compiled once `compile` ran
    self._compiled_apply: Any = None
    self._compiled_restart_loss: Any = None

  def injected_names(self, state: VariantState) -> tuple[str, ...]:
    """The injected hyperparameters the group's optimizer states hold
    (`readouts.read_injected`): the history's ``opt.<name>`` fields."""
    one = lambda opt_state: read_injected(jax.tree.map(lambda a: a[0], opt_state))  # noqa: E731
    return tuple(jax.eval_shape(one, state.train.opt_state))

  def _chunk(self, tree, call: int):
    """The variants of compiled call ``call`` (an index) of a variant-stacked tree."""
    size = self.plan.chunk
    if self.plan.num_calls == 1:
      return tree
    return jax.tree.map(lambda a: a[call * size:(call + 1) * size], tree)

  def _init_one(self, sample_x, hyper, key) -> TrainState:
    variables = dict(self.model.init(key, sample_x, train=False))
    params = variables.pop("params")
    return TrainState(params=params, model_state=variables,
                      opt_state=self.transform(hyper).init(params),
                      valid_loss=jnp.asarray(jnp.inf, jnp.float32),
                      epoch=jnp.asarray(0, jnp.int32))

  def _variant_bytes(self, hyper, sample_x) -> int | None:
    """One variant's training-step working set (for the CPU plan), traced, not run."""
    if sample_x is None:
      return None
    batch = jax.ShapeDtypeStruct((self.batch_size,) + tuple(sample_x.shape[1:]),
                                 sample_x.dtype)
    one = jax.tree.map(lambda a: a[0], hyper)

    def step(x):
      state = self._init_one(x[:1], one, jax.random.PRNGKey(0))
      y = jnp.zeros((x.shape[0],), as_task(self.task).target_dtype)
      return train_step(self.model, self.transform(one), self.task, state, x, y,
                        stream_keys(self.streams, one.seed, 0, 0), jnp.asarray(False))

    return plan_lib.step_bytes(step, batch)

  # -- placement -------------------------------------------------------------
  def _variant_sharding(self):
    return NamedSharding(self.mesh, PartitionSpec("variant")) if self.mesh else None

  def _replicated_sharding(self):
    return NamedSharding(self.mesh, PartitionSpec()) if self.mesh else None

  def shard(self, tree):
    """Puts a variant-stacked tree on the devices, split along the variant axis."""
    sharding = self._variant_sharding()
    return jax.device_put(tree, sharding) if sharding else jax.device_put(tree)

  def replicate(self, tree):
    if self.mesh is None:
      return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))

  # -- initialisation ---------------------------------------------------------
  def _alive0(self) -> np.ndarray:
    """The real variants alive, the padded copies not."""
    return np.arange(self.plan.padded) < self.num_variants

  def init(self, sample_x, data: DeviceData | None = None) -> VariantState:
    """Variant-stacked initial states (parameters drawn from each variant's seed).

    With ``observe_untrained_loss`` the untrained model's validation loss (``data``
    is then required) becomes ``valid_loss``: `observe_untrained`.
    """
    if self.observe_untrained_loss and data is None:
      raise ArgumentError("data", "is required by `init` when `observe_untrained_loss` is set.")
    state = self._init_states(sample_x)
    if not self.observe_untrained_loss:
      return state
    assert data is not None  # refused above
    return self.observe_untrained(state, data)

  def _build_fresh_fn(self):
    """``(hyper, sample_x) -> TrainState``: every variant initialised from its seed (one
    program: the start of the run, and of a restarted variant)."""
    def one(hyper, sample_x):
      return self._init_one(sample_x, hyper, variant_key(hyper.seed, _INIT_SALT))
    return jax.jit(jax.vmap(one, in_axes=(0, None)), out_shardings=self._variant_sharding())

  def _init_states(self, sample_x) -> VariantState:
    hyper = self.shard(self.initial_hyper)
    return VariantState(train=self._fresh_fn(hyper, sample_x), hyper=hyper,
                        alive=self.shard(self._alive0()))

  def init_and_evaluate(self, sample_x, data: DeviceData) -> tuple[VariantState, dict]:
    """`init`, and the untrained model's ``valid_loss/acc`` and ``test_loss/acc``
    (``[num_variants]`` numpy arrays: epoch 0 of the curves)."""
    state = self._init_states(sample_x)
    state, initial = self._evaluate_untrained(state, data, test=True)
    initial = {k: np.asarray(v)[: self.num_variants] for k, v in
               distributed.fetch(initial).items()}  # every process's variants
    return state, initial

  def observe_untrained(self, state: VariantState, data: DeviceData) -> VariantState:
    """``state`` with ``valid_loss`` = each variant's validation loss before training.

    The first step of epoch 0 passes it to the strategy as ``initial_observation``
    (the report's ``loss_0``, see `lrjax.strategies.strategy`).  Evaluated in the
    plan's chunks (``lax.map`` with ``batch_size``), the form the plan found fastest.
    """
    return self._evaluate_untrained(state, data, test=False)[0]

  def _untrained_metrics(self, data: DeviceData, test: bool):
    model, task, eval_batch_size = self.model, self.task, self.eval_batch_size

    def metrics_of(st: TrainState) -> dict:  # (`data` traced: an argument of the program)
      weights = eval_params(st.opt_state, st.params)
      loss, acc = evaluate(model, task, weights, st.model_state, data.valid_x,
                           data.valid_y, eval_batch_size)
      metrics = {"valid_loss": jnp.asarray(loss, jnp.float32), "valid_acc": acc}
      if test:
        metrics["test_loss"], metrics["test_acc"] = evaluate(
            model, task, weights, st.model_state, data.test_x, data.test_y,
            eval_batch_size)
      return metrics

    return metrics_of

  def _build_untrained_fn(self, test: bool):
    """``(train, data) -> (train with its loss_0, metrics)`` of untrained variants."""
    observe = self.observe_untrained_loss

    def each(train, data):
      metrics_of = self._untrained_metrics(data, test)

      def one(st: TrainState):
        metrics = metrics_of(st)
        return (st._replace(valid_loss=metrics["valid_loss"]) if observe else st), metrics

      if self.mesh is None:
        return jax.lax.map(one, train, batch_size=self.plan.chunk)
      return jax.vmap(one)(train)  # one slice of the variants per device

    return jax.jit(each, out_shardings=(self._variant_sharding(), None))

  def _build_restart_loss_fn(self):
    """``(fresh, restart, data) -> fresh`` with the restarted variants' loss_0 (their
    untrained validation loss); on one device only those are evaluated."""
    def losses(fresh: TrainState, restart, data: DeviceData):
      loss_of = self._untrained_metrics(data, test=False)

      def one(args):
        st, again = args
        return jax.lax.cond(again, lambda s: loss_of(s)["valid_loss"],
                            lambda s: s.valid_loss, st)

      if self.mesh is None:
        values = jax.lax.map(one, (fresh, restart))
      else:  # vmapped on a mesh: every variant evaluated, the others' losses kept
        values = jax.vmap(one)((fresh, restart))
      return fresh._replace(valid_loss=values)

    split, whole = self._variant_sharding(), self._replicated_sharding()
    if self.mesh is None:
      return jax.jit(losses)
    return jax.jit(losses, in_shardings=(split, whole, whole), out_shardings=split)

  def _evaluate_untrained(self, state: VariantState, data: DeviceData, *, test: bool):
    fn = self._untrained_fns.setdefault(test, self._build_untrained_fn(test))
    train, metrics = fn(state.train, data)
    return state._replace(train=train), metrics

  # -- one epoch ---------------------------------------------------------------
  def _build_epoch_fn(self):
    model, transform, task, streams = self.model, self.transform, self.task, self.streams
    batch_size, eval_batch_size = self.batch_size, self.eval_batch_size
    observe_untrained = self.observe_untrained_loss

    def one_variant(variant: VariantState, order_key, data: DeviceData):
      hyper = variant.hyper
      tx = transform(hyper)
      n = data.train_x.shape[0]
      steps = n // batch_size
      order = jax.random.permutation(order_key, n)[: steps * batch_size]
      order = order.reshape(steps, batch_size)

      def body(st, inputs):
        idx, i = inputs
        boundary = (i == 0) & (st.epoch > 0)
        initial = ((i == 0) & (st.epoch == 0)) if observe_untrained else False
        st, m = train_step(model, tx, task, st, data.train_x[idx], data.train_y[idx],
                           stream_keys(streams, hyper.seed, st.epoch, i), boundary,
                           initial_observation=initial)
        return st, (m, read_lr(st.opt_state))

      state, (step_metrics, step_lr) = jax.lax.scan(body, variant.train,
                                                    (order, jnp.arange(steps)))
      train_loss = jnp.mean(step_metrics.loss)
      train_acc = jnp.sum(step_metrics.correct) / jnp.sum(step_metrics.count)
      weights = eval_params(state.opt_state, state.params)  # schedule-free: not params
      valid_loss, valid_acc = evaluate(model, task, weights, state.model_state,
                                       data.valid_x, data.valid_y, eval_batch_size)
      test_loss, test_acc = evaluate(model, task, weights, state.model_state,
                                     data.test_x, data.test_y, eval_batch_size)
      if "acc" not in as_task(task).metrics:
        train_acc = jnp.asarray(jnp.nan, jnp.float32)
      metrics = EpochMetrics(
          train_loss=train_loss, train_acc=train_acc, valid_loss=valid_loss,
          valid_acc=valid_acc, test_loss=test_loss, test_acc=test_acc,
          lr=read_lr(state.opt_state), index=read_index(state.opt_state),
          nonfinite=read_nonfinite(state.opt_state) | ~jnp.isfinite(valid_loss),
          step_loss=step_metrics.loss, step_lr=step_lr,
          injected=read_injected(state.opt_state))
      state = state._replace(valid_loss=valid_loss, epoch=state.epoch + 1)
      # A stopped variant (in a call that trains others) keeps its state as it was.
      state = jax.tree.map(lambda new, old: jnp.where(variant.alive, new, old), state,
                           variant.train)
      return variant._replace(train=state), metrics

    key_axis = None if self.shared_order else 0
    if self.plan.chunk > 1:
      return jax.vmap(one_variant, in_axes=(0, key_axis, None))

    def single(state, order_key, data):
      # One variant per call: the unbatched program (no size-1 variant axis inside, so
      # every layer keeps its plain, fastest form), with the axis added back outside.
      first = lambda tree: jax.tree.map(lambda a: a[0], tree)
      key = order_key if key_axis is None else order_key[0]
      state, metrics = one_variant(first(state), key, data)
      return jax.tree.map(lambda a: a[None], (state, metrics))

    return single

  def order_keys(self, epoch: int, call: int = 0):
    """The data-order key(s) of an epoch (of one call): one key when all seeds agree."""
    if self.shared_order:
      return variant_key(int(self.initial_hyper.seed[0]), _ORDER_SALT, epoch)
    seeds = jnp.asarray(self._chunk(self.initial_hyper, call).seed)
    return self.shard(jax.vmap(lambda s: variant_key(s, _ORDER_SALT, epoch))(seeds))

  def compile(self, state: VariantState, data: DeviceData, *,
              apply: bool = False) -> float:
    """Compiles the epoch program (one per group, whatever the plan) and, with
    ``apply``, the program of `apply` (a search: compiled before the first epoch, so
    no decision compiles anything); returns seconds."""
    t0 = time.perf_counter()
    # The chunk is placed as `epoch_calls` places it (a slice of a sharded array is not
    # split over the devices any more, and a sharded program refuses it).
    self._compiled = self._epoch_fn.lower(self.shard(self._chunk(state, 0)),
                                          self.order_keys(0), data).compile()
    if apply:
      k = self.plan.padded
      fresh = self._fresh_fn(state.hyper, data.train_x[:1])
      self._compiled_apply = self._apply_fn.lower(
          state, fresh, np.arange(k, dtype=np.int32), np.zeros(k, bool), state.hyper,
          self._alive0(), data).compile()
      if self.observe_untrained_loss:
        self._compiled_restart_loss = self._restart_loss_fn.lower(
            fresh, np.zeros(k, bool), data).compile()
    return time.perf_counter() - t0

  def cost_analysis(self) -> dict:
    """XLA's cost estimate of one compiled call (after `compile`); an epoch of the
    group is ``plan.num_calls`` of them."""
    cost = self._compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
      cost = cost[0] if cost else {}
    return dict(cost or {})

  def _live_calls(self, state: VariantState) -> list[bool]:
    """Per call, whether any of its variants is alive (on one device: a call of stopped
    variants only is not made; sharded, the one program always runs)."""
    if self.mesh is not None:
      return [True] * self.plan.num_calls
    alive = np.asarray(jax.device_get(state.alive), bool)
    size = self.plan.chunk
    return [bool(alive[c * size:(c + 1) * size].any()) for c in range(self.plan.num_calls)]

  def epoch_calls(self, state: VariantState, data: DeviceData, epoch: int):
    """The epoch as its compiled calls, not run yet, and how to join their outputs:
    ``(calls, join)``; ``join([call() for call in calls])`` is `run_epoch`'s result.

    The calls are independent (any order, any number at once), which lets the sweep
    loop run them beside other groups' calls.  ``state`` is donated to them.  A call
    whose variants are all stopped is not among them: its variants' state passes
    through, their metrics are zeros (the loop records nothing for a stopped variant).
    """
    fn = self._compiled or self._epoch_fn
    live = self._live_calls(state)
    if self.plan.num_calls == 1:
      chunks = [state]
    else:
      # The same compiled program for every chunk; the state stays one stacked tree (as
      # checkpoints store it), cut into chunks here and joined after.
      chunks = [self.shard(self._chunk(state, c)) for c in range(self.plan.num_calls)]
    del state
    calls = [functools.partial(fn, chunk, self.order_keys(epoch, c), data)
             for c, chunk in enumerate(chunks) if live[c]]

    def join(outs):
      outs = iter(outs)
      parts = [next(outs) if live[c] else (chunk, None) for c, chunk in enumerate(chunks)]
      if all(live) and len(parts) == 1:
        state, metrics = parts[0]
      else:
        template = next((m for _, m in parts if m is not None), None)
        if template is None:  # every variant of the group stopped
          template = self._metrics_template(chunks[0], data)
        filler = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), template)
        metrics = [filler if m is None else jax.device_get(m) for _, m in parts]
        metrics = jax.tree.map(lambda *a: np.concatenate(a), *metrics)
        state = parts[0][0] if len(parts) == 1 else self.shard(
            jax.tree.map(lambda *a: jnp.concatenate(a), *[s for s, _ in parts]))
      return state, jax.tree.map(lambda a: a[: self.num_variants], metrics)

    return calls, join

  def _metrics_template(self, chunk, data):
    out = jax.eval_shape(self._epoch_fn, chunk, self.order_keys(0), data)[1]
    return jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), out)

  def run_epoch(self, state: VariantState, data: DeviceData, epoch: int):
    """Trains every alive variant of the group for one epoch; returns (state,
    EpochMetrics).

    ``state`` is donated: use the returned one.  Metrics are cut to the real variants.
    """
    calls, join = self.epoch_calls(state, data, epoch)
    del state
    # Side by side only through the compiled program: jit's first trace must not run
    # twice at once.
    at_once = self.plan.concurrent_calls if self._compiled is not None else 1
    return join(run_calls(calls, at_once))

  # -- decisions between epochs -------------------------------------------------
  def _build_apply_fn(self):
    transform = self.transform

    def apply(state: VariantState, fresh: TrainState, source, restart, hyper, alive,
              data: DeviceData):
      del data  # (the program's inputs are those of every call; data is not needed)
      train = jax.tree.map(lambda a: a[source], state.train)
      before = jax.tree.map(lambda a: a[source], state.hyper)  # what the copied state had

      def synced(st: TrainState, old, new):
        opt_state = hyperparams_lib.sync(st.opt_state, transform(old).init(st.params),
                                         transform(new).init(st.params))
        return st._replace(opt_state=opt_state)

      train = jax.vmap(synced)(train, before, hyper)
      train = jax.tree.map(
          lambda new, kept: jnp.where(restart.reshape((-1,) + (1,) * (kept.ndim - 1)),
                                      new, kept), fresh, train)
      return VariantState(train=train, hyper=hyper, alive=alive)

    return apply

  def apply(self, state: VariantState, *, source, restart, hyper, alive,
            data: DeviceData) -> VariantState:
    """``state`` after a controller's decisions (``[num_variants]`` host arrays, the
    padded copies kept as they are): each variant continues from ``state`` of
    ``source`` (itself: nothing copied) with hyperparameters ``hyper`` (a host tree of
    the state's hyper structure; the optimizer state's copies of them written), starts
    afresh where ``restart``, and trains in the next epoch where ``alive``.  ``state``
    is donated.  One compiled program (`compile` with ``apply=True``)."""
    k, padded = self.num_variants, self.plan.padded

    def pad(values, tail):  # the padded copies keep what they have: they never train
      tail = np.asarray(tail)
      return np.concatenate([np.asarray(values, tail.dtype)[:k], tail[k:]])

    hyper = self.shard(jax.tree.map(pad, hyper, self.initial_hyper))
    restart = pad(restart, np.zeros(padded, bool))
    # A restarted variant starts as at the run's start (the same programs: the same
    # bytes), with its loss_0 evaluated when the run observes it.
    fresh = self._fresh_fn(hyper, data.train_x[:1])
    if restart.any() and self.observe_untrained_loss:
      losses = self._compiled_restart_loss or self._restart_loss_fn
      fresh = losses(fresh, restart, data)
    fn = self._compiled_apply or self._apply_fn
    return fn(state, fresh, pad(source, np.arange(padded, dtype=np.int32)), restart, hyper,
              pad(alive, self._alive0()), data)

  def set_alive(self, state: VariantState, alive) -> VariantState:
    """``state`` with the variants ``alive`` (``[num_variants]``) training next; the
    padded copies never do.  Nothing is compiled."""
    alive = np.concatenate([np.asarray(alive, bool)[: self.num_variants],
                            self._alive0()[self.num_variants:]])
    return state._replace(alive=self.shard(alive))


def run_calls(calls: Sequence[Callable[[], Any]], at_once: int) -> list:
  """The outputs of ``calls``, in order, run up to ``at_once`` side by side.

  Side by side (lrjax.train.engine.plan): one thread per call in flight, each waiting for its
  own call's result, so the next call starts as soon as a core is free.  One at a time:
  called in order, JAX's asynchronous dispatch left as it is.
  """
  if at_once <= 1 or len(calls) <= 1:
    return [call() for call in calls]
  with concurrent.futures.ThreadPoolExecutor(min(at_once, len(calls))) as pool:
    return list(pool.map(lambda call: jax.block_until_ready(call()), calls))


def put_data(dataset, mesh: Mesh | None = None) -> DeviceData:
  """Moves a `lrjax.data.Dataset`'s arrays to the device(s) once (replicated)."""
  arrays = DeviceData(dataset.train_x, dataset.train_y, dataset.valid_x, dataset.valid_y,
                      dataset.test_x, dataset.test_y)
  if mesh is None:
    return jax.device_put(arrays)
  return jax.device_put(arrays, NamedSharding(mesh, PartitionSpec()))
