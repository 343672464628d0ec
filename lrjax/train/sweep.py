"""`run_sweep`: train every variant of a `SweepConfig` on a dataset, epoch by epoch.

The host loop is over epochs only (progress bar, checkpoints, results); each epoch of
each group of variants is one compiled XLA program (`lrjax.train.epoch`).  With a
checkpoint folder, SIGINT / SIGTERM do not kill the run mid-step: the epoch in progress
finishes, is checkpointed, and `SweepInterrupted` says where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

import jax
import numpy as np
from tqdm.auto import tqdm

from lrjax import models
from lrjax import distributed
from lrjax.train import epoch as epoch_lib
from lrjax.train import metrics as metrics_lib
from lrjax.train import optimizers
from lrjax.train import plan as plan_lib
from lrjax.train.checkpoint import (CheckpointSaveError, FolderLock, SweepCheckpointer,
                                    data_identity)
from lrjax.train.config import SweepConfig

HISTORY_FIELDS = epoch_lib.EPOCH_FIELDS
STEP_FIELDS = epoch_lib.STEP_FIELDS


@dataclasses.dataclass
class SweepResult:
  """What a sweep produced.

  Attributes:
    config: the sweep's config.
    history: field -> array [epochs, variants] (per-epoch fields of `EpochMetrics`),
      plus ``group_seconds``: the wall time of the epoch of the variant's group.
    step_history: ``step_loss`` / ``step_lr`` -> array [epochs, variants, steps].
    summary: one dict per variant (see `lrjax.train.metrics.summarize`).
    compile_seconds: time spent compiling the epoch programs.
    epoch_seconds: wall time of each epoch of this run (all groups), NaN for epochs
      restored from a checkpoint.
    device: the platform and device count used.
    plans: per group, its execution plan (`lrjax.train.plan.ExecutionPlan.to_dict`,
      plus the group's variant names and the evaluation batch).
  """

  config: SweepConfig
  history: dict[str, np.ndarray]
  step_history: dict[str, np.ndarray]
  summary: list[dict]
  compile_seconds: float
  epoch_seconds: np.ndarray
  device: str
  plans: list[dict] = dataclasses.field(default_factory=list)

  @property
  def names(self) -> list[str]:
    return [v.name for v in self.config.variants]


class SweepInterrupted(Exception):
  """The sweep stopped on SIGINT / SIGTERM after checkpointing its completed epochs.

  Attributes:
    signum: the signal received.
    epoch: epochs completed (and checkpointed).
    epochs: epochs the sweep was asked for.
    checkpoint_dir: where the checkpoint is; running the same sweep again resumes.
  """

  def __init__(self, signum: int, epoch: int, epochs: int, checkpoint_dir: Path):
    self.signum, self.epoch, self.epochs = signum, epoch, epochs
    self.checkpoint_dir = checkpoint_dir
    super().__init__(f"interrupted by {signal.Signals(signum).name} after epoch {epoch} of "
                     f"{epochs}; checkpoint in {checkpoint_dir}")


@contextlib.contextmanager
def _stop_requests(enabled: bool):
  """Within: the first SIGINT / SIGTERM only asks the loop to stop (the list yielded gets
  the signal number); a second one interrupts at once (KeyboardInterrupt)."""
  requests: list[int] = []
  if not enabled or threading.current_thread() is not threading.main_thread():
    yield requests
    return

  def request(signum, frame):  # pylint: disable=unused-argument
    if requests:
      raise KeyboardInterrupt
    requests.append(signum)
    # os.write, not print: the handler may run while the main thread is writing to stderr.
    os.write(2, f"\nlrjax: {signal.Signals(signum).name} received: stopping after the epoch "
                "in progress is checkpointed (again to stop at once)\n".encode())

  previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield requests
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


def _empty_history(epochs: int, num_variants: int) -> dict[str, np.ndarray]:
  fields = HISTORY_FIELDS + ("group_seconds",)
  return {f: np.full((epochs, num_variants), np.nan, np.float64) for f in fields}


def _grown(arrays: dict[str, np.ndarray], epochs: int) -> dict[str, np.ndarray]:
  """``arrays`` (epochs first) padded with NaN to ``epochs`` rows: a run being extended."""
  out = {}
  for k, v in arrays.items():
    v = np.asarray(v)
    grown = np.full((epochs,) + v.shape[1:], np.nan, v.dtype)
    grown[:v.shape[0]] = v[:epochs]
    out[k] = grown
  return out


def run_sweep(config: SweepConfig, dataset, *, checkpoint_dir: str | Path | None = None,
              out_dir: str | Path | None = None, progress: bool = True,
              on_epoch_end: Callable[[int, dict], None] | None = None,
              data_provenance: Mapping[str, object] | None = None) -> SweepResult:
  """Trains all variants of ``config`` on ``dataset`` (a `lrjax.data.Dataset`).

  Args:
    config: what to train.
    dataset: arrays with ``train_x/y``, ``valid_x/y``, ``test_x/y``.
    checkpoint_dir: if given, an orbax checkpoint is written every
      ``config.checkpoint_every`` epochs and the sweep resumes from the latest one
      found there, giving the same results as an uninterrupted run (one line on stderr
      says so).  The checkpoint records the config and the data (`data_identity`);
      another sweep or other data is refused.  A finished run asked for more epochs
      continues.  SIGINT / SIGTERM stop the run after the epoch in progress is
      checkpointed (`SweepInterrupted`).  The folder is locked for the run.
    out_dir: if given, results are written there (`lrjax.train.results.save`); the
      folder is locked for the run.
    progress: show a progress bar over epochs.
    on_epoch_end: called as ``on_epoch_end(epoch, history)`` after each epoch (and its
      checkpoint); an exception raised there interrupts the sweep.

  Returns:
    A `SweepResult`.

  Raises:
    lrjax.train.checkpoint.CheckpointError: the checkpoint folder is not writable, holds
      another sweep, or has no step that verifies (a damaged newest step alone falls back
      to an older one); or a save failed (`CheckpointSaveError`; the completed epochs are
      written to ``out_dir`` first).  The message is one line saying what to do.
      `FolderInUseError` when another run holds the checkpoint or output folder.
    SweepInterrupted: SIGINT / SIGTERM arrived (with a checkpoint folder only).
  """
  if not distributed.is_writer():  # d13: in a multi-process run only process 0 writes files
    out_dir, progress = None, False
  with contextlib.ExitStack() as locks:
    def lock_out():  # after the checkpoint folder is checked: a refused run creates nothing
      if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        locks.callback(FolderLock(out_dir, "output folder").release)

    return _run_sweep(config, dataset, checkpoint_dir, out_dir, progress, on_epoch_end,
                      data_provenance, lock_out)


def _run_sweep(config, dataset, checkpoint_dir, out_dir, progress, on_epoch_end,
               data_provenance, lock_out) -> SweepResult:
  if dataset.train_x.shape[0] < config.batch_size:
    raise ValueError(f"`batch_size` ({config.batch_size}) exceeds the training set size "
                     f"({dataset.train_x.shape[0]}).")
  data_task = getattr(dataset, "task", config.task)
  if data_task != config.task:
    raise ValueError(f"`task` is {config.task!r} but the dataset {getattr(dataset, 'name', '')!r} "
                     f"is a {data_task} dataset.")
  # d13: the processes of a multi-process run must train the same sweep on the same data.
  distributed.check_agreement(config=config.to_dict, data=lambda: data_identity(
      dataset, **dict(data_provenance or {})))
  model = models.get_model(config.model, **dict(config.model_kwargs))
  mesh = epoch_lib.variant_mesh()
  data = epoch_lib.put_data(dataset, mesh)
  groups = optimizers.group_variants(config.variants)
  eval_batch_size = plan_lib.eval_batch_size(config.eval_batch_size)
  trainers = [
      epoch_lib.GroupTrainer(model, spec, hyper, task=config.task,
                             batch_size=config.batch_size,
                             eval_batch_size=eval_batch_size, mesh=mesh,
                             observe_untrained_loss=config.observe_untrained_loss,
                             variants_per_call=config.variants_per_call or None,
                             sample_x=data.train_x[:1])
      for spec, hyper, _ in groups]
  plans = [dict(t.plan.to_dict(), eval_batch_size=eval_batch_size,
                variants=[config.variants[i].name for i in members])
           for t, (_, _, members) in zip(trainers, groups)]
  states = [t.init(data.train_x[:1], data) for t in trainers]
  num_variants = len(config.variants)
  history = _empty_history(config.epochs, num_variants)
  steps = dataset.train_x.shape[0] // config.batch_size
  step_history = {f: np.full((config.epochs, num_variants, steps), np.nan, np.float32)
                  for f in STEP_FIELDS}
  epoch_seconds = np.full(config.epochs, np.nan)
  start = 0

  checkpointer = None
  if checkpoint_dir is not None:
    # Refuses at once an unwritable folder, another sweep's, or one with no usable step.
    checkpointer = SweepCheckpointer(
        checkpoint_dir, config.to_dict(),
        data=data_identity(dataset, **dict(data_provenance or {})))

    def target(epochs: int):  # the tree as saved by a run configured for `epochs`
      return {"states": states, "history": _empty_history(epochs, num_variants),
              "step_history": {f: np.full((epochs, num_variants, steps), np.nan, np.float32)
                               for f in STEP_FIELDS}}

    try:
      found = checkpointer.restore_latest(target)
      lock_out()
    except BaseException:
      checkpointer.close()
      raise
    if found is not None:
      latest, restored = found
      states = list(restored["states"])
      history = _grown(restored["history"], config.epochs)
      step_history = _grown(restored["step_history"], config.epochs)
      start = latest
      print(f"lrjax: resumed from epoch {latest} of {config.epochs} "
            f"(checkpoint {checkpointer.directory})", file=sys.stderr, flush=True)
  else:
    lock_out()

  # Compile each group's epoch program ahead of time, so compile time is reported apart.
  compile_seconds = sum(t.compile(s, data) for t, s in zip(trainers, states))

  bar = tqdm(range(start, config.epochs), initial=start, total=config.epochs,
             desc=f"{config.model} x{num_variants}", disable=not progress, unit="epoch")
  stop = contextlib.ExitStack()
  stop_requests = stop.enter_context(_stop_requests(checkpointer is not None))
  done = start
  try:
    for epoch in bar:
      # d13: `agree_stop`: a signal to any process stops all of them at the same epoch.
      if distributed.agree_stop(stop_requests):  # before any epoch of this run: nothing new
        raise SweepInterrupted(stop_requests[0], done, config.epochs, checkpointer.directory)
      t0 = time.perf_counter()
      for g, (trainer, (_, _, members)) in enumerate(zip(trainers, groups)):
        t_group = time.perf_counter()
        states[g], group_metrics = trainer.run_epoch(states[g], data, epoch)
        # Waits for the group's epoch (d13: `fetch` gathers other processes' variants too).
        group_metrics = distributed.fetch(group_metrics)
        history["group_seconds"][epoch, members] = time.perf_counter() - t_group
        for field in HISTORY_FIELDS:
          history[field][epoch, members] = np.asarray(getattr(group_metrics, field),
                                                      np.float64)
        for field in STEP_FIELDS:
          step_history[field][epoch, members] = np.asarray(getattr(group_metrics, field))
      epoch_seconds[epoch] = time.perf_counter() - t0
      bar.set_postfix(best_valid_acc=f"{np.nanmax(history['valid_acc'][epoch]):.4f}"
                      if np.isfinite(history["valid_acc"][epoch]).any()
                      else f"{np.nanmin(history['valid_loss'][epoch]):.4g}")
      done = epoch + 1
      stopping = distributed.agree_stop(stop_requests) and done < config.epochs  # d13
      if checkpointer is not None and (stopping or config.checkpoint_every and (
          done % config.checkpoint_every == 0 or done == config.epochs)):
        checkpointer.save(done, {"states": states, "history": history,
                                 "step_history": step_history})
      if on_epoch_end is not None:
        on_epoch_end(epoch, history)
      if stopping:
        raise SweepInterrupted(stop_requests[0], done, config.epochs, checkpointer.directory)
  except CheckpointSaveError as err:
    if out_dir is not None:  # the epochs trained so far are not lost with the checkpoint
      err.add_note(_save_completed(config, history, step_history, compile_seconds,
                                   epoch_seconds, done, out_dir))
    raise
  finally:
    stop.close()
    bar.close()
    if checkpointer is not None:
      checkpointer.close()

  result = SweepResult(
      config=config, history=history, step_history=step_history,
      summary=metrics_lib.summarize(history, [v.name for v in config.variants],
                                    tolerance=config.convergence_tolerance),
      compile_seconds=compile_seconds, epoch_seconds=epoch_seconds,
      device=f"{jax.default_backend()} x{jax.device_count()}", plans=plans)
  if out_dir is not None:
    from lrjax.train import results  # local: results pulls in matplotlib lazily too
    results.save(result, out_dir)
  return result


def _save_completed(config, history, step_history, compile_seconds, epoch_seconds, done: int,
                    out_dir) -> str:
  """Writes the results of the first ``done`` epochs (a checkpoint save failed after them);
  returns a note saying where, or why not."""
  from lrjax.train import results
  history = {k: v[:done] for k, v in history.items()}
  result = SweepResult(
      config=config, history=history,
      step_history={k: v[:done] for k, v in step_history.items()},
      summary=metrics_lib.summarize(history, [v.name for v in config.variants],
                                    tolerance=config.convergence_tolerance),
      compile_seconds=compile_seconds, epoch_seconds=epoch_seconds[:done],
      device=f"{jax.default_backend()} x{jax.device_count()}")
  try:
    results.save(result, out_dir)
  except OSError as err:
    return f"the results of the {done} completed epochs could not be written either ({err})"
  return f"the results of the {done} completed epochs are in {Path(out_dir).absolute()}"
