"""`lrjax.sweep`: train any Flax model with any optax optimizer over a grid or a search.

The library's entry point and the one path every front end takes (`run`): the report
preset (`run_sweep`, `lrjax.train.frontends.presets`), the sweep file
(`lrjax.train.frontends.sweep_file`) and `lrjax.sweep` all describe a sweep as a
`SweepSpec` and train it here, top to bottom:

1. the configurations: the given grid, or a controller's draw from a search space
   (`lrjax.train.search`), each trained once per seed (the variants);
2. the data on the device, the model's shapes and RNG streams;
3. the groups: variants whose optimizer states share a structure, one compiled program
   each (`lrjax.train.engine.groups`, `lrjax.train.engine.epoch.GroupTrainer`);
4. the run's identity and the checkpoint folder (`lrjax.train.runner.checkpoint`): a
   resume of another run or other data is refused;
5. the epochs (`lrjax.train.runner.loop`), a controller acting between them
   (`lrjax.train.runner.control`);
6. the `SweepResult`, written to ``out_dir``.

* ``model``: a `flax.linen.Module` called as ``model(x, *, train)`` (mutable
  collections such as ``batch_stats`` are updated in training; every RNG stream the
  module asks for in training gets its own key per variant, step and epoch), or an NNX
  model (`lrjax.train.engine.nnx_adapter`);
* ``optimizer_fn(h) -> optax.GradientTransformation``: called *inside* the traced,
  vmapped program with one variant's hyperparameters ``h`` (numbers as traced
  scalars; and the run's ``h["total_steps"]``, ``h["steps_per_epoch"]``,
  ``h["epochs"]`` as Python ints, for a schedule's length), so any optax chain, lrjax
  schedule, strategy or adaptive rate works, and a hyperparameter a controller changes
  takes effect from the next step; it receives the engine's extra args (``valid_loss``,
  ``epoch_boundary``, ``initial_observation``, ``value_fn``) through
  `optax.with_extra_args_support`;
* ``hparams``: ``{name: [K values]}``, a list of K dicts (`grid` builds the cartesian
  product) or a search space (`lrjax.train.search.search_space`, with a
  ``controller``).  Numbers become per-variant arrays; anything else (a schedule name,
  a callable, None) is static.

Runs lose nothing: with ``checkpoint_dir`` a checkpoint is written every
``checkpoint_every`` epochs recording the run's identity (`SweepSpec.identity`) and the
data's (`lrjax.train.runner.checkpoint.data_identity`); the same call resumes from it
(one line on stderr), anything different is refused saying what differs, a finished
run asked for more epochs continues, and SIGINT / SIGTERM stop after the epoch in
progress is checkpointed (`SweepInterrupted`).  A search resumes exactly: the
hyperparameters in force and the controller's state are checkpointed with the
training state.  Under ``jax.distributed`` (`lrjax.distributed`) the variant axis spans
every process's devices; the processes must agree on the run and the data (checked
before anything compiles) and process 0 alone writes files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

from lrjax import _atomic, _extras, distributed
from lrjax.errors import ArgumentError
from lrjax.train.engine import epoch as epoch_lib
from lrjax.train.engine import plan as plan_lib
from lrjax.train.engine.groups import Group, form_groups, rng_streams  # noqa: F401
from lrjax.train.engine.hyperparams import RUN_KEYS, Transform, VariantHyper, run_info
from lrjax.train.engine.readouts import eval_params
from lrjax.train.engine.task import CLASSIFICATION, Task
from lrjax.train.frontends import inputs, presets
from lrjax.train.frontends.config import SweepConfig
from lrjax.train.frontends.spec import SweepSpec, describe, grid, variants_of  # noqa: F401
from lrjax.train.reports import writers as writers_lib
from lrjax.train.reports.metrics import summarize
from lrjax.train.reports.result import SweepResult
from lrjax.train.runner import checkpoint as checkpoint_lib
from lrjax.train.runner import loop, model_store
from lrjax.train.runner.control import Control
from lrjax.train.runner.loop import HISTORY_FIELDS, SweepInterrupted  # noqa: F401
from lrjax.train.search.controller import Setup


def sweep(model, dataset, optimizer_fn: Callable[[dict], optax.GradientTransformation],
          hparams, *, epochs: int, batch_size: int, seeds: Sequence[int] | None = None,
          task: Task | str = CLASSIFICATION, controller=None,
          eval_batch_size: int | None = None, variants_per_call: int | None = None,
          concurrent_calls: int | None = None, observe_untrained_loss: bool = True,
          progress: bool = True, checkpoint_dir: str | Path | None = None,
          checkpoint_every: int = 1, out_dir: str | Path | None = None,
          on_epoch_end: Callable[[int, dict], None] | None = None,
          data_provenance: Mapping[str, object] | None = None,
          convergence_tolerance: float = 0.005, names: Sequence[str] | None = None,
          tags: Sequence[Mapping] | None = None, tensorboard_dir: str | Path | None = None,
          metric_writers=None, keep: str = "best", config: Any = None) -> SweepResult:
  """Trains ``model`` with ``optimizer_fn(h)`` for every ``h`` in ``hparams`` x ``seeds``.

  Args:
    model: a `flax.linen.Module`, called ``model(x, train=...)``; or an NNX model: an
      ``nnx.Module`` instance or a factory ``rngs -> nnx.Module``
      (`lrjax.train.engine.nnx_adapter`).
    dataset: a `lrjax.data.Dataset` (or any object with ``train_x`` ... ``test_y``).
    optimizer_fn: ``h -> optax.GradientTransformation`` (ExtraArgs or not), called with
      one variant's hyperparameters inside the traced program; ``h`` also holds the
      run's ``total_steps`` (epochs x steps per epoch), ``steps_per_epoch`` and
      ``epochs`` (Python ints), e.g. ``optax.cosine_decay_schedule(h["learning_rate"],
      h["total_steps"])``.
    hparams: ``{name: [K values]}`` or a list of K dicts (see `grid`); a ``seed`` in
      every dict makes it that variant's seed (then ``seeds`` is not given).  Or a
      search space (`lrjax.train.search.search_space`): the ``controller`` draws the
      configurations from it.
    epochs, batch_size: training length and minibatch size.
    seeds: every configuration is trained once per seed (variants ordered
      configuration-major; default ``(0,)``).  The seed fixes initialisation, data
      order and RNG streams.
    task: a `lrjax.train.Task`: `CLASSIFICATION`, `REGRESSION` (or their name) or the
      user's own (per-example loss and metrics, `lrjax.train.engine.task`).
    controller: acts between epochs (`lrjax.train.search`): stops variants, continues
      them from better ones with new hyperparameters, restarts them with new
      configurations (`successive_halving`, `hyperband`, `median_stopping`, `pbt`,
      `random_search`, or the user's own).  Its decisions are applied on the device,
      with no recompile, recorded in the history (``alive``, ``parent``, ``started``,
      ``hparams.<name>``) and checkpointed.
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
      stderr says so).  The checkpoint records the run's identity (`SweepSpec.identity`)
      and the data's (`lrjax.train.runner.checkpoint.data_identity`): anything
      different is refused, saying what differs; a finished run asked for more epochs
      continues.  SIGINT / SIGTERM stop the run after the epoch in progress is
      checkpointed (`SweepInterrupted`).  The folder is locked for the run.
    out_dir: if given, the results and their plots are written there
      (`lrjax.train.reports.results.save`, `lrjax.train.reports.plotting.plot_run`); the
      folder is locked for the run.
    on_epoch_end: called as ``on_epoch_end(epoch, history)`` after each epoch (and its
      checkpoint); an exception raised there interrupts the sweep.
    data_provenance: how the data were made (subset size and seed, validation
      fraction ...), recorded with the data's identity.
    convergence_tolerance: of the summary's convergence epoch
      (`lrjax.train.reports.metrics`).
    names: one label per variant (default ``name=value,...,seed=s``).
    tags: one dict per variant, added to its ``tags``.
    tensorboard_dir: live metrics: one TensorBoard run per variant in this folder (every
      history field per epoch, the hyperparameters in force among them, and the
      variant's hyperparameters in the HParams dashboard; `lrjax.train.reports.writers`,
      extra ``lrjax[tensorboard]``).  Written by process 0 only.
    metric_writers: the user's metric writers besides (CLU's ``MetricWriter`` shape:
      ``write_scalars``, ``write_hparams``, ``flush``, ``close``): one for every variant,
      a factory ``(name, hparams) -> writer``, or one per variant.
    keep: which trained variants to keep, in the result (`SweepResult.params`,
      ``model_state``, ``variables``) and, with ``out_dir``, on disk (``out_dir/models``,
      checksum-verified: `lrjax.train.load_variant`): ``"best"`` (by the task's
      monitored metric, `SweepResult.best`), ``"all"`` or ``"none"``.  Kept are the
      evaluation weights (a schedule-free optimizer's, `engine.readouts.eval_params`)
      and the model state, at the variant's last trained epoch.
    config: for front ends: their own record of the run, kept in the result
      (``to_dict()`` in results.json).

  Returns:
    a `SweepResult`.

  Raises:
    lrjax.train.runner.checkpoint.CheckpointError: the checkpoint folder is not
      writable, holds another run or other data, or has no step that verifies; or a
      save failed (`CheckpointSaveError`; the completed epochs are written to
      ``out_dir`` first).  `FolderInUseError` when another run holds the checkpoint or
      output folder.
    SweepInterrupted: SIGINT / SIGTERM arrived (with a checkpoint folder only).

  Example (see the README for a full one)::

    result = sweep(model, data, lambda h: optax.sgd(h["learning_rate"]),
                   {"learning_rate": [0.1, 0.01]}, epochs=3, batch_size=32)
  """
  spec = SweepSpec(
      model=model, optimizer_fn=optimizer_fn, hparams=hparams, epochs=epochs,
      batch_size=batch_size, seeds=seeds, task=task, controller=controller,
      eval_batch_size=eval_batch_size, variants_per_call=variants_per_call,
      concurrent_calls=concurrent_calls, observe_untrained_loss=observe_untrained_loss,
      checkpoint_every=checkpoint_every, convergence_tolerance=convergence_tolerance,
      names=names, tags=tags)
  return run(spec, dataset, checkpoint_dir=checkpoint_dir, out_dir=out_dir,
             progress=progress, on_epoch_end=on_epoch_end,
             data_provenance=data_provenance, tensorboard_dir=tensorboard_dir,
             metric_writers=metric_writers, keep=keep, config=config)


def run(spec: SweepSpec, dataset, *, checkpoint_dir: str | Path | None = None,
        out_dir: str | Path | None = None, progress: bool = True,
        on_epoch_end: Callable[[int, dict], None] | None = None,
        data_provenance: Mapping[str, object] | None = None,
        tensorboard_dir: str | Path | None = None, metric_writers=None, keep: str = "best",
        config: Any = None) -> SweepResult:
  """Trains ``spec`` on ``dataset`` (the arguments as `sweep`'s)."""
  if keep not in KEEP:
    raise ArgumentError("keep", f"must be one of {', '.join(map(repr, KEEP))}, got {keep!r}.")
  model = inputs.check_model(spec.model)  # NNX instance / factory -> Linen; Linen unchanged
  task = spec.task
  inputs.check_dataset(dataset, ("train_x", "train_y", "valid_x", "valid_y", "test_x",
                                 "test_y"), spec.batch_size)
  # A built-in task must match the dataset's kind; a user's own task is the user's call.
  data_task = getattr(dataset, "task", task.name)
  if task.name in ("classification", "regression") and data_task != task.name:
    raise ArgumentError("task", f"is {task.name!r} but the dataset "
                        f"{getattr(dataset, 'name', '')!r} is a {data_task} dataset.")
  if not distributed.is_writer():  # in a multi-process run only process 0 writes files
    out_dir, progress = None, False

  # 1. The configurations, each trained once per seed.
  settings, controller_state = _configurations(spec)
  for h in settings:
    taken = sorted(set(h) & set(RUN_KEYS))
    if taken:
      raise ArgumentError("hparams", f"may not name {', '.join(taken)}: lrjax gives "
                          f"optimizer_fn the run's {', '.join(RUN_KEYS)} under those names.")
  variants = variants_of(settings, spec.seeds, spec.names, spec.tags,
                         searched=spec.space is not None)
  writers_lib.check_metric_writers(metric_writers, len(variants))
  if tensorboard_dir is not None:
    _extras.require_tensorboard("`tensorboard_dir`")

  # 2. The data, the model's shapes and RNG streams.
  eval_batch_size = plan_lib.eval_batch_size(spec.eval_batch_size)
  mesh = epoch_lib.variant_mesh()
  plan_lib.check_concurrent_calls(spec.concurrent_calls,
                                  devices=mesh.devices.size if mesh is not None else 1)
  data = epoch_lib.put_data(dataset, mesh)
  sample_x = data.train_x[:1]
  variables_shape = jax.eval_shape(
      lambda x: model.init(jax.random.PRNGKey(0), x, train=False), sample_x)
  streams = rng_streams(model, dict(variables_shape), sample_x)

  # 3. The groups: one compiled program each.
  steps = dataset.train_x.shape[0] // spec.batch_size
  run_keys = run_info(epochs=spec.epochs, steps_per_epoch=steps)
  groups, group_of = form_groups([v["hparams"] for v in variants], spec.optimizer_fn,
                                 variables_shape["params"], run_keys)
  for v, g in zip(variants, group_of, strict=True):
    v["group"] = g

  # 4. The run's identity (`run_identity`), the checkpoint folder.
  run_epochs = _run_epochs(spec)
  identity = spec.identity(variants, eval_batch_size=eval_batch_size, epochs=run_epochs)
  data_id: dict = {}  # the data's identity, computed once when needed

  def data_identity():
    if not data_id:
      data_id.update(checkpoint_lib.data_identity(dataset, **dict(data_provenance or {})))
    return data_id

  # The processes of a multi-process run must train the same sweep on the same data.
  distributed.check_agreement(config=dict(identity), data=data_identity)
  checkpointer = None
  if checkpoint_dir is not None:
    # Refuses at once, before anything is compiled: an unwritable folder, one in use,
    # another run's, or other data's.
    checkpointer = checkpoint_lib.SweepCheckpointer(checkpoint_dir, dict(identity),
                                                    data=dict(data_identity()))
  try:
    trainers, states, initial = _trainers(spec, model, groups, variants, data, mesh,
                                          sample_x, streams, eval_batch_size, run_keys)
  except BaseException:
    if checkpointer is not None:
      checkpointer.close()
    raise
  control = Control(spec.controller, trainers, groups, variants, task=task,
                    epochs=run_epochs, space=spec.space)
  control.state = controller_state

  # 5. The epochs.
  def result_of(outcome: loop.Outcome) -> SweepResult:
    return _result(spec, outcome, variants, groups, eval_batch_size, initial, config)

  # Live metrics: every epoch's history rows, to TensorBoard and the user's writers.
  live = writers_lib.open_writers(variants, tensorboard_dir=tensorboard_dir,
                                  metric_writers=metric_writers, task=task)

  def epoch_done(epoch: int, history: dict) -> None:
    live.on_epoch_end(epoch, history)
    if on_epoch_end is not None:
      on_epoch_end(epoch, history)

  try:
    live.write_initial(initial)
    outcome = loop.run(trainers, groups, states, data, control, epochs=run_epochs,
                       steps=steps, checkpointer=checkpointer,
                       checkpoint_every=spec.checkpoint_every, out_dir=out_dir,
                       progress=progress, desc=f"{type(model).__name__} x{len(variants)}",
                       on_epoch_end=epoch_done)
  except checkpoint_lib.CheckpointSaveError as err:
    if out_dir is not None and getattr(err, "outcome", None) is not None:
      err.add_note(_save_completed(result_of(err.outcome), out_dir))
    raise
  finally:
    live.close()

  # 6. The result, the variants kept, its files and plots.
  result = result_of(outcome)
  result.models = _kept(keep, result, outcome.states, groups)
  if out_dir is not None:
    from lrjax.train.reports import plotting, results  # local: matplotlib loads lazily
    results.save(result, out_dir)
    try:
      result.plots = plotting.plot_run(result, out_dir)
    except _atomic.OutputWriteError as err:  # the results are written: say so apart
      raise plotting.PlotsNotWritten(err, out_dir) from err
    if result.models:  # the largest files last
      model_store.save_variants(out_dir, {result.names[k]: m for k, m in result.models.items()})
  return result


KEEP = ("best", "all", "none")


def _kept(keep: str, result: SweepResult, states, groups) -> dict[int, dict]:
  """Per kept variant: its evaluation weights (``params``), the weights it trained
  (``train_params``), ``model_state`` and ``opt_state``, as host arrays."""
  if keep == "none":
    return {}
  wanted = (set(range(len(result.variants))) if keep == "all" else
            {i for i in [result.best_index()] if i is not None})
  out = {}
  for g, state in zip(groups, states, strict=True):
    if not wanted & set(g.members):
      continue
    train = distributed.fetch(state.train)  # collective: every process gathers the group
    for j, k in enumerate(g.members):
      if k in wanted:
        one = jax.tree.map(lambda a, j=j: np.asarray(a)[j], train)
        out[k] = {"params": jax.tree.map(np.asarray, eval_params(one.opt_state, one.params)),
                  "train_params": one.params, "model_state": one.model_state,
                  "opt_state": one.opt_state}
  return dict(sorted(out.items()))


def run_identity(spec: SweepSpec) -> dict[str, Any]:
  """What a checkpoint of ``spec``'s run records as the run (`SweepSpec.identity` of
  the variants it resolves to); ``sweep_config.json`` holds it."""
  settings, _ = _configurations(spec)
  variants = variants_of(settings, spec.seeds, spec.names, spec.tags,
                         searched=spec.space is not None)
  return spec.identity(variants, eval_batch_size=plan_lib.eval_batch_size(
      spec.eval_batch_size), epochs=_run_epochs(spec))


def _run_epochs(spec: SweepSpec) -> int:
  """The sweep's length: ``epochs``, or longer for a controller that trains several
  configurations per slot one after another (an Optuna search: `sweep_epochs`)."""
  sweep_epochs = getattr(spec.controller, "sweep_epochs", None)
  return int(sweep_epochs(spec.epochs)) if callable(sweep_epochs) else spec.epochs


def _configurations(spec: SweepSpec) -> tuple[list[dict], Any]:
  """The configurations to train (the grid, or the controller's draw) and the
  controller's initial state."""
  if spec.controller is None:
    return spec.hparams, None
  space = spec.space
  setup = Setup(space=space, configurations=None if space is not None else spec.hparams,
                epochs=spec.epochs, num_seeds=len(spec.seeds or (0,)),
                monitor=spec.task.monitor_field,
                higher_is_better=bool(spec.task.higher_is_better))
  # Process 0 draws (an Optuna study is asked once); every process gets its draw.
  drawn, state = distributed.broadcast(spec.controller.init(setup)
                                       if distributed.is_writer() else None)
  who = type(spec.controller).__name__
  if drawn is None:
    if space is not None:
      raise ArgumentError("controller", f"{who} drew no configurations from the search space "
                          f"(init returned None); give `hparams` as a list of dicts instead.")
    return spec.hparams, state
  if not isinstance(drawn, (list, tuple)) or not drawn or not all(
      isinstance(h, Mapping) for h in drawn):
    raise ArgumentError("controller", f"{who}.init must return a non-empty list of "
                        f"hyperparameter dicts (or None), got {drawn!r}.")
  return [dict(h) for h in drawn], state


def _trainers(spec, model, groups, variants, data, mesh, sample_x, streams,
              eval_batch_size, run_keys):
  """One `GroupTrainer` per group, its initial state, and the untrained metrics."""
  trainers: list[epoch_lib.GroupTrainer] = []
  states: list[epoch_lib.VariantState] = []
  initial: dict[str, Any] = {}
  for group in groups:
    hyper = VariantHyper(
        h={n: np.asarray([variants[k]["hparams"][n] for k in group.members],
                         group.dtypes[n]) for n in group.numeric},
        seed=np.asarray([variants[k]["seed"] for k in group.members], np.int32))
    trainer = epoch_lib.GroupTrainer(
        model, Transform(spec.optimizer_fn, group.static, run_keys), hyper, task=spec.task,
        batch_size=spec.batch_size, eval_batch_size=eval_batch_size, mesh=mesh,
        observe_untrained_loss=spec.observe_untrained_loss,
        variants_per_call=spec.variants_per_call or None, sample_x=sample_x,
        streams=streams, concurrent_calls=spec.concurrent_calls or None)
    group.plan = trainer.plan
    state, untrained = trainer.init_and_evaluate(sample_x, data)
    for field, values in untrained.items():
      initial.setdefault(field, np.full(len(variants), np.nan))[group.members] = values
    trainers.append(trainer)
    states.append(state)
  return trainers, states, initial


def _result(spec, outcome: loop.Outcome, variants, groups, eval_batch_size, initial,
            config) -> SweepResult:
  names = [v["name"] for v in variants]
  summary = summarize(outcome.history, names, tolerance=spec.convergence_tolerance,
                      task=spec.task)
  for row, v in zip(summary, variants, strict=True):
    row.update(seed=v["seed"], group=v["group"])
  plans = [dict(g.plan.to_dict(), eval_batch_size=eval_batch_size,
                variants=[variants[k]["name"] for k in g.members]) for g in groups]
  return SweepResult(history=outcome.history, step_history=outcome.step_history,
                     summary=summary, compile_seconds=outcome.compile_seconds,
                     epoch_seconds=outcome.epoch_seconds,
                     device=f"{jax.default_backend()} x{jax.device_count()}", plans=plans,
                     config=config, variants=variants, groups=groups, task=spec.task,
                     initial=initial, spec=spec.to_dict(),
                     controller_state=outcome.controller_state)


def _save_completed(result: SweepResult, out_dir) -> str:
  """Writes the results of the completed epochs (a checkpoint save failed after them);
  returns a note saying where, or why not."""
  from lrjax.train.reports import results
  done = int(next(iter(result.history.values())).shape[0])
  try:
    results.save(result, out_dir)
  except OSError as err:
    return f"the results of the {done} completed epochs could not be written either ({err})"
  return f"the results of the {done} completed epochs are in {Path(out_dir).absolute()}"


def run_sweep(config: SweepConfig, dataset, *, checkpoint_dir: str | Path | None = None,
              out_dir: str | Path | None = None, progress: bool = True,
              on_epoch_end: Callable[[int, dict], None] | None = None,
              data_provenance: Mapping[str, object] | None = None,
              tensorboard_dir: str | Path | None = None, metric_writers=None,
              keep: str = "best") -> SweepResult:
  """Trains all variants of ``config`` (a `SweepConfig`: the report's settings) on
  ``dataset`` (a `lrjax.data.Dataset`): `run` of `presets.report_preset` (``config``
  is kept as the result's ``config``).

  Args:
    config: what to train; its ``checkpoint_every`` is the checkpoint interval.
    dataset: arrays with ``train_x/y``, ``valid_x/y``, ``test_x/y``.

  The other arguments (``checkpoint_dir``, ``out_dir``, ``progress``, ``on_epoch_end``,
  ``data_provenance``, ``tensorboard_dir``, ``metric_writers``, ``keep``) are those of
  `lrjax.sweep`, and so are the errors it raises.

  Returns:
    A `SweepResult` (with ``config``).
  """
  return run(presets.report_preset(config), dataset, checkpoint_dir=checkpoint_dir,
             out_dir=out_dir, progress=progress, on_epoch_end=on_epoch_end,
             data_provenance=data_provenance, tensorboard_dir=tensorboard_dir,
             metric_writers=metric_writers, keep=keep, config=config)
