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
  every process and a stop request to any process stops all of them after one epoch;
* before every epoch after the first a controller, if any, acts on the run so far
  (`lrjax.train.runner.control`); its state is checkpointed with the training state, so
  a resumed search decides as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from lrjax import distributed
from lrjax.train.engine.epoch import EPOCH_FIELDS, INJECTED_PREFIX, STEP_FIELDS, run_calls
from lrjax.train.runner.checkpoint import CheckpointSaveError, FolderLock, SweepCheckpointer
from lrjax.train.runner.control import Control, pack, unpack

HISTORY_FIELDS = EPOCH_FIELDS


class DivergenceWarning(UserWarning):
  """A variant met a NaN or inf (a gradient step skipped, a validation loss, a rate):
  warned the epoch it happens, naming the variant; its history's ``nonfinite`` says so
  too."""


def warn_diverged(history, epoch: int, names) -> None:
  """A `DivergenceWarning` for each variant whose ``nonfinite`` flag is set first in
  ``epoch`` (a restarted variant may warn again)."""
  now = np.nan_to_num(history["nonfinite"][epoch]) > 0
  before = (np.nan_to_num(history["nonfinite"][epoch - 1]) > 0 if epoch > 0
            else np.zeros_like(now))
  started = history.get("started")
  if started is not None:
    before = before & ~(started[epoch] > 0)
  for k in np.flatnonzero(now & ~before):
    loss, lr = history["valid_loss"][epoch, k], history["lr"][epoch, k]
    warnings.warn(DivergenceWarning(
        f"variant {names[k]!r} diverged in epoch {epoch + 1}: a NaN or inf was met "
        f"(validation loss {loss:.4g}, rate {lr:.3g}); its later numbers are not "
        f"meaningful (its history's nonfinite flag is set)"), stacklevel=2)


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


def empty_history(epochs: int, num_variants: int,
                  extra: Sequence[str] = ()) -> dict[str, np.ndarray]:
  """Per-epoch fields (float64, NaN until trained) plus ``group_seconds`` and ``extra``
  (the tracking fields of `lrjax.train.runner.control`)."""
  fields = HISTORY_FIELDS + ("group_seconds",) + tuple(extra)
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


@dataclasses.dataclass
class Outcome:
  """What a run produced: the history (``[epochs, variants]`` per field), the per-step
  history, the final states (one `VariantState` per group), the compile and epoch
  times and the controller's final state."""

  history: dict[str, np.ndarray]
  step_history: dict[str, np.ndarray]
  states: list
  compile_seconds: float
  epoch_seconds: np.ndarray
  controller_state: Any = None

  def first(self, done: int) -> Outcome:
    """The first ``done`` epochs of this outcome."""
    return dataclasses.replace(
        self, history={k: v[:done] for k, v in self.history.items()},
        step_history={k: v[:done] for k, v in self.step_history.items()},
        epoch_seconds=self.epoch_seconds[:done])


def run(trainers, groups, states, data, control: Control, *, epochs: int, steps: int,
        checkpointer: SweepCheckpointer | None, checkpoint_every: int, out_dir,
        progress: bool, desc: str,
        on_epoch_end: Callable[[int, dict], None] | None = None) -> Outcome:
  """Trains ``trainers`` (one per group of ``groups``) from ``states`` for ``epochs``
  epochs, ``control`` recording every variant and running the controller between
  epochs; returns the `Outcome`.  ``checkpointer`` (opened by the caller, which has
  checked the run's identity; closed here) restores the latest step and saves every
  ``checkpoint_every`` epochs.  ``out_dir`` is locked for the run (after the checkpoint
  folder is checked, so a refused run creates nothing).

  A failed save raises `CheckpointSaveError` with the completed epochs as its
  ``outcome`` attribute (the caller writes them).  See the module docstring for
  checkpoints, resume, signals and locks.
  """
  with contextlib.ExitStack() as locks:
    def lock_out():
      if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        locks.callback(FolderLock(out_dir, "output folder").release)

    return _run(trainers, groups, list(states), data, control, epochs, steps, checkpointer,
                checkpoint_every, progress, desc, on_epoch_end, lock_out)


def _run(trainers, groups, states, data, control, epochs, steps, checkpointer,
         checkpoint_every, progress, desc, on_epoch_end, lock_out) -> Outcome:
  num_variants = sum(len(g.members) for g in groups)
  injected = list(dict.fromkeys(n for t, s in zip(trainers, states, strict=True)
                                for n in t.injected_names(s)))
  extra = control.history_fields() + tuple(INJECTED_PREFIX + n for n in injected)
  history = empty_history(epochs, num_variants, extra)
  step_history = empty_step_history(epochs, num_variants, steps)
  epoch_seconds = np.full(epochs, np.nan)
  start = 0
  initial_controller = control.state

  def tree(controller_state):
    return {"states": states, "controller": pack(controller_state), "history": history,
            "step_history": step_history}

  if checkpointer is not None:
    def target(saved_epochs: int):  # the tree as saved by a run configured for `epochs`
      return {"states": states, "controller": pack(initial_controller),
              "history": empty_history(saved_epochs, num_variants, extra),
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
      control.state = unpack(restored["controller"], initial_controller)
      history = grown(restored["history"], epochs)
      step_history = grown(restored["step_history"], epochs)
      start = latest
      print(f"lrjax: resumed from epoch {latest} of {epochs} "
            f"(checkpoint {checkpointer.directory})", file=sys.stderr, flush=True)
  else:
    lock_out()

  # Compile each group's epoch program ahead of time, so compile time is reported apart
  # (and, under a controller, the program of its decisions: no decision compiles).
  steering = control.controller is not None
  compile_seconds = sum(t.compile(s, data, apply=steering)
                        for t, s in zip(trainers, states, strict=True))
  # Calls at once across the groups (lrjax.train.engine.plan; 1 wherever a group is
  # sharded).
  at_once = min(t.plan.concurrent_calls for t in trainers)
  members = [g.members for g in groups]

  bar = tqdm(range(start, epochs), initial=start, total=epochs, desc=desc,
             disable=not progress, unit="epoch")
  stop = contextlib.ExitStack()
  requests = stop.enter_context(stop_requests(checkpointer is not None))
  done = start
  ended = None  # the epoch a controller ended the run at (none left alive)
  try:
    for epoch in bar:
      # `agree_stop`: a signal to any process stops all of them at the same epoch.
      if distributed.agree_stop(requests):  # before any epoch of this run: nothing new
        raise SweepInterrupted(requests[0], done, epochs, checkpointer.directory)
      if steering and epoch > 0:  # the controller acts on the epochs done
        states, parent, started = control.decide(epoch, history, states, data)
        if not control.any_alive(states):  # nothing left to train: the run ends here
          ended = epoch
          break
        control.record(history, epoch, states, parent, started)
      else:
        control.record(history, epoch, states)
      t0 = time.perf_counter()
      if at_once > 1:
        epoch_metrics, seconds = _groups_side_by_side(trainers, states, data, epoch, at_once)
      else:
        epoch_metrics, seconds = [], []
        for g, trainer in enumerate(trainers):
          t_group = time.perf_counter()
          states[g], metrics = trainer.run_epoch(states[g], data, epoch)
          # Waits for the group's epoch (`fetch` gathers other processes' variants).
          epoch_metrics.append(distributed.fetch(metrics))
          seconds.append(time.perf_counter() - t_group)
      trained = history["alive"][epoch] > 0
      for metrics, group_seconds, group_members in zip(epoch_metrics, seconds, members,
                                                       strict=True):
        history["group_seconds"][epoch, group_members] = group_seconds
        live = trained[group_members]
        for field in HISTORY_FIELDS:
          values = np.asarray(getattr(metrics, field), np.float64)
          history[field][epoch, group_members] = np.where(live, values, np.nan)
        for field in STEP_FIELDS:
          values = np.asarray(getattr(metrics, field), np.float32)
          step_history[field][epoch, group_members] = np.where(live[:, None], values, np.nan)
        for name, values in metrics.injected.items():
          history[INJECTED_PREFIX + name][epoch, group_members] = np.where(
              live, np.asarray(values, np.float64), np.nan)
      epoch_seconds[epoch] = time.perf_counter() - t0
      warn_diverged(history, epoch, [v["name"] for v in control.variants])
      bar.set_postfix(best_valid_acc=f"{np.nanmax(history['valid_acc'][epoch]):.4f}"
                      if np.isfinite(history["valid_acc"][epoch]).any()
                      else f"{np.nanmin(history['valid_loss'][epoch]):.4g}")
      done = epoch + 1
      stopping = distributed.agree_stop(requests) and done < epochs
      if checkpointer is not None and (stopping or checkpoint_every and (
          done % checkpoint_every == 0 or done == epochs)):
        checkpointer.save(done, tree(control.state))
      if on_epoch_end is not None:
        on_epoch_end(epoch, history)
      if stopping:
        raise SweepInterrupted(requests[0], done, epochs, checkpointer.directory)
    if steering:
      control.finish(done, history, states)
  except CheckpointSaveError as err:
    # The epochs trained so far are not lost with the checkpoint: the caller writes them.
    err.outcome = Outcome(history, step_history, states, compile_seconds, epoch_seconds,
                          control.state).first(done)
    raise
  finally:
    stop.close()
    bar.close()
    if checkpointer is not None:
      checkpointer.close()
  outcome = Outcome(history, step_history, states, compile_seconds, epoch_seconds,
                    control.state)
  return outcome.first(ended) if ended is not None else outcome


def _groups_side_by_side(trainers, states, data, epoch: int, at_once: int):
  """One epoch of every group, all groups' calls sharing ``at_once`` threads
  (`lrjax.train.engine.epoch.run_calls`); ``states`` is updated in place.  Returns each
  group's metrics and seconds: from the epoch's start until the group's last call
  finished (0 for a group whose variants are all stopped)."""
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
    states[g], metrics = join([out for h, out in zip(owner, outs, strict=True) if h == g])
    epoch_metrics.append(jax.device_get(metrics))
    seconds.append(max([t for h, t in zip(owner, done_at, strict=True) if h == g], default=0.0))
  return epoch_metrics, seconds
