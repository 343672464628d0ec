"""The host loop of a sweep: epochs, checkpoints, resume, signals, results.

Each epoch of each group is one or more compiled calls (`lrjax.train.engine.epoch.GroupTrainer`);
this loop only sequences them, all groups' calls side by side where the plans say so
(on a CPU, one per core: `lrjax.train.engine.plan`), and makes the run safe to interrupt:

* with a checkpoint folder, an orbax checkpoint (`lrjax.train.runner.checkpoint`) is written
  every ``checkpoint_every`` epochs and at the end; a run finds the latest step that
  verifies and resumes from it (one line on stderr says so), with the same results as an
  uninterrupted run; a finished run asked for more epochs continues;
* the checkpoint records the run's identity and its data's (`checkpoint.data_identity`);
  another run or other data is refused, saying what differs;
* SIGINT / SIGTERM (with a checkpoint folder) let the epoch in progress finish, checkpoint
  it and raise `SweepInterrupted`; a second signal stops at once;
* the checkpoint and output folders are locked for the run; when a checkpoint save fails
  the completed epochs are written to the output folder first;
* in a multi-process run (`lrjax.distributed`) each group's metrics are gathered from
  every process and a stop request to any process stops all of them after one epoch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from lrjax import distributed
from lrjax.train.runner.checkpoint import CheckpointSaveError, FolderLock, SweepCheckpointer
from lrjax.train.engine.epoch import EPOCH_FIELDS, STEP_FIELDS, run_calls

HISTORY_FIELDS = EPOCH_FIELDS


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
def stop_requests(enabled: bool):
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


def empty_history(epochs: int, num_variants: int) -> dict[str, np.ndarray]:
  """Per-epoch fields (float64, NaN until trained) plus ``group_seconds``."""
  fields = HISTORY_FIELDS + ("group_seconds",)
  return {f: np.full((epochs, num_variants), np.nan, np.float64) for f in fields}


def empty_step_history(epochs: int, num_variants: int, steps: int) -> dict[str, np.ndarray]:
  return {f: np.full((epochs, num_variants, steps), np.nan, np.float32) for f in STEP_FIELDS}


def grown(arrays: dict[str, np.ndarray], epochs: int) -> dict[str, np.ndarray]:
  """``arrays`` (epochs first) padded with NaN to ``epochs`` rows: a run being extended."""
  out = {}
  for k, v in arrays.items():
    v = np.asarray(v)
    bigger = np.full((epochs,) + v.shape[1:], np.nan, v.dtype)
    bigger[:v.shape[0]] = v[:epochs]
    out[k] = bigger
  return out


def run(trainers, members, states, data, *, epochs: int, steps: int,
        checkpointer: SweepCheckpointer | None, checkpoint_every: int, out_dir,
        progress: bool, desc: str, on_epoch_end: Callable[[int, dict], None] | None,
        finish: Callable[..., object], save_results: Callable[[object, object], None]):
  """Trains ``trainers`` (one per group; ``members[g]``: its variants' positions) from
  ``states`` for ``epochs`` epochs; returns ``finish(history, step_history,
  compile_seconds, epoch_seconds)``, also written to ``out_dir`` (`save_results`).
  ``checkpointer`` (opened by the caller, which has checked the run's identity; closed
  here) restores the latest step and saves every ``checkpoint_every`` epochs.

  See the module docstring for checkpoints, resume, signals and locks.
  """
  with contextlib.ExitStack() as locks:
    def lock_out():  # after the checkpoint folder is checked: a refused run creates nothing
      if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        locks.callback(FolderLock(out_dir, "output folder").release)

    return _run(trainers, members, list(states), data, epochs, steps, checkpointer,
                checkpoint_every, out_dir, progress, desc, on_epoch_end, finish,
                save_results, lock_out)


def _run(trainers, members, states, data, epochs, steps, checkpointer, checkpoint_every,
         out_dir, progress, desc, on_epoch_end, finish, save_results, lock_out):
  num_variants = sum(len(m) for m in members)
  history = empty_history(epochs, num_variants)
  step_history = empty_step_history(epochs, num_variants, steps)
  epoch_seconds = np.full(epochs, np.nan)
  start = 0

  if checkpointer is not None:
    def target(saved_epochs: int):  # the tree as saved by a run configured for `epochs`
      return {"states": states, "history": empty_history(saved_epochs, num_variants),
              "step_history": empty_step_history(saved_epochs, num_variants, steps)}

    try:
      found = checkpointer.restore_latest(target)
      lock_out()
    except BaseException:
      checkpointer.close()
      raise
    if found is not None:
      latest, restored = found
      states = list(restored["states"])
      history = grown(restored["history"], epochs)
      step_history = grown(restored["step_history"], epochs)
      start = latest
      print(f"lrjax: resumed from epoch {latest} of {epochs} "
            f"(checkpoint {checkpointer.directory})", file=sys.stderr, flush=True)
  else:
    lock_out()

  # Compile each group's epoch program ahead of time, so compile time is reported apart.
  compile_seconds = sum(t.compile(s, data) for t, s in zip(trainers, states))
  # Calls at once across the groups (lrjax.train.engine.plan; 1 wherever a group is sharded).
  at_once = min(t.plan.concurrent_calls for t in trainers)

  bar = tqdm(range(start, epochs), initial=start, total=epochs, desc=desc,
             disable=not progress, unit="epoch")
  stop = contextlib.ExitStack()
  requests = stop.enter_context(stop_requests(checkpointer is not None))
  done = start
  try:
    for epoch in bar:
      # d13: `agree_stop`: a signal to any process stops all of them at the same epoch.
      if distributed.agree_stop(requests):  # before any epoch of this run: nothing new
        raise SweepInterrupted(requests[0], done, epochs, checkpointer.directory)
      t0 = time.perf_counter()
      if at_once > 1:
        epoch_metrics, seconds = _groups_side_by_side(trainers, states, data, epoch, at_once)
      else:
        epoch_metrics, seconds = [], []
        for g, trainer in enumerate(trainers):
          t_group = time.perf_counter()
          states[g], metrics = trainer.run_epoch(states[g], data, epoch)
          # Waits for the group's epoch (d13: `fetch` gathers other processes' variants).
          epoch_metrics.append(distributed.fetch(metrics))
          seconds.append(time.perf_counter() - t_group)
      for metrics, group_seconds, group_members in zip(epoch_metrics, seconds, members):
        history["group_seconds"][epoch, group_members] = group_seconds
        for field in HISTORY_FIELDS:
          history[field][epoch, group_members] = np.asarray(getattr(metrics, field),
                                                            np.float64)
        for field in STEP_FIELDS:
          step_history[field][epoch, group_members] = np.asarray(getattr(metrics, field))
      epoch_seconds[epoch] = time.perf_counter() - t0
      bar.set_postfix(best_valid_acc=f"{np.nanmax(history['valid_acc'][epoch]):.4f}"
                      if np.isfinite(history["valid_acc"][epoch]).any()
                      else f"{np.nanmin(history['valid_loss'][epoch]):.4g}")
      done = epoch + 1
      stopping = distributed.agree_stop(requests) and done < epochs  # d13
      if checkpointer is not None and (stopping or checkpoint_every and (
          done % checkpoint_every == 0 or done == epochs)):
        checkpointer.save(done, {"states": states, "history": history,
                                 "step_history": step_history})
      if on_epoch_end is not None:
        on_epoch_end(epoch, history)
      if stopping:
        raise SweepInterrupted(requests[0], done, epochs, checkpointer.directory)
  except CheckpointSaveError as err:
    if out_dir is not None:  # the epochs trained so far are not lost with the checkpoint
      partial = finish({k: v[:done] for k, v in history.items()},
                       {k: v[:done] for k, v in step_history.items()}, compile_seconds,
                       epoch_seconds[:done])
      err.add_note(_save_completed(partial, done, out_dir, save_results))
    raise
  finally:
    stop.close()
    bar.close()
    if checkpointer is not None:
      checkpointer.close()

  result = finish(history, step_history, compile_seconds, epoch_seconds)
  if out_dir is not None:
    save_results(result, out_dir)
  return result


def _groups_side_by_side(trainers, states, data, epoch: int, at_once: int):
  """One epoch of every group, all groups' calls sharing ``at_once`` threads
  (`lrjax.train.engine.epoch.run_calls`); ``states`` is updated in place.  Returns each group's
  metrics and seconds: from the epoch's start until the group's last call finished."""
  t0 = time.perf_counter()
  pending = [t.epoch_calls(states[g], data, epoch) for g, t in enumerate(trainers)]
  owner = [g for g, (calls, _) in enumerate(pending) for _ in calls]
  done_at = [0.0] * len(owner)  # one slot per call: no two threads write the same one

  def timed(i, call):
    def run():
      out = jax.block_until_ready(call())
      done_at[i] = time.perf_counter() - t0
      return out
    return run

  calls = [call for calls, _ in pending for call in calls]
  outs = run_calls([timed(i, call) for i, call in enumerate(calls)], at_once)
  epoch_metrics, seconds = [], []
  for g, (_, join) in enumerate(pending):
    states[g], metrics = join([out for h, out in zip(owner, outs) if h == g])
    epoch_metrics.append(jax.device_get(metrics))
    seconds.append(max(t for h, t in zip(owner, done_at) if h == g))
  return epoch_metrics, seconds


def _save_completed(result, done: int, out_dir, save_results) -> str:
  """Writes the results of the first ``done`` epochs (a checkpoint save failed after them);
  returns a note saying where, or why not."""
  try:
    save_results(result, out_dir)
  except OSError as err:
    return f"the results of the {done} completed epochs could not be written either ({err})"
  return f"the results of the {done} completed epochs are in {Path(out_dir).absolute()}"
