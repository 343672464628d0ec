"""Live metrics of a sweep: one metric writer per variant, written after every epoch.

A metric writer is anything with CLU's four methods (`MetricWriter`, the protocol of
``clu.metric_writers``): ``write_scalars(step, scalars)``, ``write_hparams(hparams)``,
``flush()`` and ``close()``.  So a CLU writer, or a few lines around W&B's or MLflow's
run, can receive a sweep's metrics as well as the built-in `TensorBoardWriter`
(tensorboardX, the ``tensorboard`` extra: ``pip install "lrjax[tensorboard]"``).

`open_writers` gives a sweep's variants their writers (`SweepWriters`): under
``tensorboard_dir`` one run folder per variant, its hyperparameters and seed in
TensorBoard's HParams dashboard; the user's ``metric_writers`` beside them.  After each
epoch `SweepWriters.write_epoch` writes every history field of every variant at step
``epoch`` (epochs completed; step 0 is the untrained model, `write_initial`): the
losses and metrics as ``train/loss``, ``valid/acc`` ..., the rate ``lr``, the
strategy's ``index`` and ``nonfinite`` flag, and every injected hyperparameter the
history records (``hparams.momentum`` -> ``hparams/momentum``), as Lightning's
``LearningRateMonitor`` logs the rate and momentum beside the metrics.  Only process 0
of a multi-process run writes (`lrjax.distributed.is_writer`).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lrjax import _extras, distributed
from lrjax.errors import ArgumentError, ArgumentTypeError
from lrjax.train.engine.task import Task, as_task

SPLITS = ("train", "valid", "test")
HPARAMS_PREFIX = "hparams."  # history fields of injected hyperparameters


@runtime_checkable
class MetricWriter(Protocol):
  """What lrjax writes live metrics to: CLU's ``MetricWriter`` methods lrjax uses."""

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    """Records ``scalars`` (tag -> number) at ``step``."""

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    """Records the run's hyperparameters (numbers, strings, booleans)."""

  def flush(self) -> None:
    """Writes what is buffered."""

  def close(self) -> None:
    """Flushes and releases the writer."""


# -- the built-in writer: TensorBoard through tensorboardX ---------------------------

class TensorBoardWriter:
  """A `MetricWriter` writing one TensorBoard run folder (tensorboardX, no TensorFlow).

  ``write_hparams`` puts the run in TensorBoard's HParams dashboard: its
  hyperparameters, and ``metric_tags`` (e.g. ``("valid/acc", "valid/loss")``) as the
  metrics the dashboard shows beside them; `close` ends the session there.

  Raises:
    ImportError: tensorboardX is not installed (naming ``pip install
      "lrjax[tensorboard]"``).
  """

  def __init__(self, logdir: str | Path, *, metric_tags: Sequence[str] = (),
               flush_secs: int = 10):
    _extras.require_tensorboard("lrjax's TensorBoard writer")
    from tensorboardX import SummaryWriter
    self.logdir = Path(logdir)
    self.metric_tags = tuple(metric_tags)
    self._writer = SummaryWriter(logdir=str(self.logdir), flush_secs=flush_secs)
    self._session_end = None

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for tag, value in scalars.items():
      self._writer.add_scalar(tag, float(value), global_step=int(step))

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    from tensorboardX.summary import hparams as hparams_summaries
    experiment, session_start, session_end = hparams_summaries(
        dict(plain_hparams(hparams)), dict.fromkeys(self.metric_tags, 0.0))
    self._writer.file_writer.add_summary(experiment)
    self._writer.file_writer.add_summary(session_start)
    self._session_end = session_end

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    if self._session_end is not None:  # the HParams session ends with the run
      self._writer.file_writer.add_summary(self._session_end)
      self._session_end = None
    self._writer.close()


# -- adapters ------------------------------------------------------------------------

class PrefixedWriter:
  """One writer shared by all variants, seen as one variant's: its tags are prefixed
  ``"<prefix>/"`` and its hyperparameters ``"<prefix>/<name>"``.  Closing it only
  flushes (the writer is shared; `SweepWriters.close` closes it once)."""

  def __init__(self, writer: MetricWriter, prefix: str):
    self.writer, self.prefix = writer, prefix

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    self.writer.write_scalars(step, {f"{self.prefix}/{k}": v for k, v in scalars.items()})

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    self.writer.write_hparams({f"{self.prefix}/{k}": v for k, v in hparams.items()})

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.flush()


class MultiWriter:
  """Several writers of one variant as one (CLU's ``MultiWriter``)."""

  def __init__(self, writers: Sequence[MetricWriter]):
    self.writers = list(writers)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for w in self.writers:
      w.write_scalars(step, scalars)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    for w in self.writers:
      w.write_hparams(hparams)

  def flush(self) -> None:
    for w in self.writers:
      w.flush()

  def close(self) -> None:
    for w in self.writers:
      w.close()


# -- what is written -----------------------------------------------------------------

def scalar_tag(field: str) -> str:
  """The tag of a history field: ``valid_acc`` -> ``valid/acc`` (TensorBoard groups
  tags by their first part), ``hparams.momentum`` -> ``hparams/momentum``,
  ``opt.b1`` -> ``opt/b1``; others
  (``lr``, ``index``, ``nonfinite``, ``group_seconds``) as they are."""
  if field.startswith(HPARAMS_PREFIX):
    return "hparams/" + field[len(HPARAMS_PREFIX):]
  if field.startswith("opt."):  # an injected hyperparameter (lrjax.train.engine.epoch)
    return "opt/" + field[len("opt."):]
  split, _, rest = field.partition("_")
  return f"{split}/{rest}" if split in SPLITS and rest else field


def metric_tags(task: Task | str) -> tuple[str, ...]:
  """The validation tags of a task that the HParams dashboard shows per run: its
  metrics, the loss and its derived metrics (``valid/acc``, ``valid/loss``)."""
  task = as_task(task)
  return tuple(scalar_tag(f"valid_{m}") for m in (*task.metrics, "loss",
                                                   *task.derived_metrics))


def plain_hparams(hparams: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """``hparams`` as the flat numbers, strings and booleans a dashboard holds: nested
  dicts as ``outer.inner``, numpy and JAX scalars as Python numbers, functions by their
  name, anything else by its text; None left out."""
  out: dict[str, Any] = {}
  for key, value in hparams.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      out |= plain_hparams(value, f"{name}.")
    elif value is None:
      continue
    elif isinstance(value, (bool, np.bool_)):
      out[name] = bool(value)
    elif isinstance(value, numbers.Number) or (np.ndim(value) == 0 and hasattr(value,
                                                                              "dtype")):
      number = np.asarray(value).item()
      out[name] = number if isinstance(number, (bool, int, float)) else str(number)
    elif isinstance(value, str):
      out[name] = value
    else:
      from lrjax._describe import describe  # a function by module.name, no addresses
      described = describe(value)
      out[name] = described if isinstance(described, (bool, int, float, str)) else str(
          described)
  return out


def variant_hparams(variant: Mapping) -> dict[str, Any]:
  """What a variant's writer records as its hyperparameters: its ``hparams``, its
  preset tags (``sequence``, ``rule``, ...; not the engine's ``setting`` position) and
  its ``seed``."""
  tags = {k: v for k, v in dict(variant.get("tags") or {}).items()
          if k not in ("setting", "seed")}
  return plain_hparams({**tags, **dict(variant.get("hparams") or {}),
                        "seed": variant.get("seed")})


def epoch_scalars(history: Mapping[str, np.ndarray], row: int, k: int,
                  task: Task | str | None = None) -> dict[str, float]:
  """Variant ``k``'s scalars of history row ``row``: every field (and the task's derived
  metrics, e.g. RMSE), by `scalar_tag`.  A field no variant has a value of in that row
  (accuracy in a regression) is left out; one variant's NaN (it diverged) is kept."""
  fields = dict(history)
  if task is not None:
    fields = {**as_task(task).derived(fields), **fields}
  out = {}
  for field, values in fields.items():
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or row >= values.shape[0] or np.isnan(values[row]).all():
      continue
    out[scalar_tag(field)] = float(values[row, k])
  return out


# -- a sweep's writers ---------------------------------------------------------------

_UNSAFE = re.compile(r"[^\w.,=+-]+")


def run_folders(names: Sequence[str]) -> list[str]:
  """A safe, distinct folder name per variant name (``"By Epoch seq1/s0"`` ->
  ``"By_Epoch_seq1_s0"``; a repeat gets ``-2``, ``-3`` ...)."""
  folders, seen = [], set()
  for name in names:
    base = _UNSAFE.sub("_", str(name)).strip("._") or "variant"
    folder, n = base, 1
    while folder in seen:
      n += 1
      folder = f"{base}-{n}"
    seen.add(folder)
    folders.append(folder)
  return folders


class SweepWriters:
  """The metric writers of a sweep's variants (`open_writers`), one per variant.

  Attributes:
    names: the variants' names.
    writers: one `MetricWriter` per variant; empty on a process that does not write
      (`lrjax.distributed.is_writer`), where every method does nothing.
    task: the task, for its derived metrics (RMSE), or None.
  """

  def __init__(self, names: Sequence[str], writers: Sequence[MetricWriter],
               shared: Sequence[MetricWriter] = (), task: Task | str | None = None):
    self.names, self.writers = list(names), list(writers)
    self.task = None if task is None else as_task(task)
    self._shared = list(shared)

  def write_epoch(self, epoch: int, history: Mapping[str, np.ndarray]) -> None:
    """Every variant's fields of ``history`` row ``epoch - 1`` at step ``epoch`` (the
    epochs completed), then a flush so that TensorBoard shows them at once."""
    for k, writer in enumerate(self.writers):
      scalars = epoch_scalars(history, epoch - 1, k, self.task)
      if scalars:
        writer.write_scalars(epoch, scalars)
    self.flush()

  def write_initial(self, initial: Mapping[str, np.ndarray]) -> None:
    """The untrained model's values (a sweep result's ``initial``: ``[variants]`` per
    field) at step 0, where the curves start."""
    history = {f: np.asarray(v, np.float64)[None] for f, v in initial.items()}
    for k, writer in enumerate(self.writers):
      scalars = epoch_scalars(history, 0, k, self.task)
      if scalars:
        writer.write_scalars(0, scalars)
    self.flush()

  def on_epoch_end(self, epoch: int, history: Mapping[str, np.ndarray]) -> None:
    """`lrjax.sweep`'s ``on_epoch_end(epoch, history)`` (``epoch`` counted from 0):
    `write_epoch` of the epoch just completed."""
    self.write_epoch(epoch + 1, history)

  def flush(self) -> None:
    for w in self.writers + self._shared:
      w.flush()

  def close(self) -> None:
    """Closes every writer (each once; a shared one after its variants)."""
    for w in self.writers + self._shared:
      w.close()
    self.writers, self._shared = [], []

  def __enter__(self) -> SweepWriters:
    return self

  def __exit__(self, *exc) -> None:
    self.close()


MetricWriters = MetricWriter | Callable[[str, dict], MetricWriter] | Sequence[MetricWriter]


def check_metric_writers(metric_writers, num_variants: int | None = None) -> None:
  """Raises ``TypeError`` naming ``metric_writers`` unless it is a `MetricWriter`, a
  factory ``(name, hparams) -> MetricWriter`` or a list of one writer per variant."""
  if metric_writers is None or isinstance(metric_writers, MetricWriter):
    return
  if isinstance(metric_writers, (list, tuple)):
    bad = [w for w in metric_writers if not isinstance(w, MetricWriter)]
    if bad:
      raise ArgumentTypeError("metric_writers", "must hold metric writers (write_scalars, "
                              f"write_hparams, flush, close), got {type(bad[0]).__name__}.")
    if num_variants is not None and len(metric_writers) != num_variants:
      raise ArgumentError("metric_writers", f"has {len(metric_writers)} writers for "
                          f"{num_variants} variants; give one per variant, one writer "
                          f"for all, or a factory (name, hparams) -> writer.")
    return
  if not callable(metric_writers):
    raise ArgumentTypeError("metric_writers", "must be a metric writer (write_scalars, "
                            f"write_hparams, flush, close: CLU's MetricWriter), a factory "
                            f"(name, hparams) -> writer, or a list of one writer per variant; "
                            f"got {type(metric_writers).__name__}.")


def open_writers(variants: Sequence[Mapping], *, tensorboard_dir: str | Path | None = None,
                 metric_writers: MetricWriters | None = None,
                 task: Task | str | None = None) -> SweepWriters:
  """The writers of a sweep's ``variants``, each told its hyperparameters.

  Args:
    variants: per variant its ``name``, ``hparams`` and ``seed`` (and ``tags``): a
      sweep result's ``variants``, or the same built before training.
    tensorboard_dir: if given, a `TensorBoardWriter` per variant in
      ``tensorboard_dir/<name>`` (`run_folders`), its hyperparameters and seed in the
      HParams dashboard.
    metric_writers: the user's writers besides: one `MetricWriter` for every variant
      (CLU's, W&B's ...: tags prefixed ``<name>/``), a factory ``(name, hparams) ->
      MetricWriter`` called once per variant, or a list of one writer per variant.
    task: the sweep's task: its derived metrics are written too, and its validation
      tags are the HParams dashboard's metrics (default: classification's).

  Returns:
    `SweepWriters`; on a process other than 0 of a multi-process run, one that writes
    nothing (and opens no file).

  Raises:
    ImportError: ``tensorboard_dir`` without tensorboardX (``pip install
      "lrjax[tensorboard]"``).
    TypeError, ValueError: ``metric_writers`` is none of the above.
  """
  variants = list(variants)
  names = [str(v["name"]) for v in variants]
  check_metric_writers(metric_writers, len(variants))
  if tensorboard_dir is not None:
    _extras.require_tensorboard("`tensorboard_dir`")
  if not distributed.is_writer():
    return SweepWriters(names, [], task=task)
  per_variant: list[list[MetricWriter]] = [[] for _ in variants]
  shared: list[MetricWriter] = []
  if tensorboard_dir is not None:
    tags = metric_tags(task if task is not None else "classification")
    for writers, folder in zip(per_variant, run_folders(names), strict=True):
      writers.append(TensorBoardWriter(Path(tensorboard_dir) / folder, metric_tags=tags))
  if isinstance(metric_writers, MetricWriter):
    shared.append(metric_writers)
    for writers, name in zip(per_variant, names, strict=True):
      writers.append(PrefixedWriter(metric_writers, name))
  elif isinstance(metric_writers, (list, tuple)):
    for writers, writer in zip(per_variant, metric_writers, strict=True):
      writers.append(writer)
  elif callable(metric_writers):  # a factory (check_metric_writers refused the rest)
    for writers, variant in zip(per_variant, variants, strict=True):
      writer = metric_writers(str(variant["name"]), variant_hparams(variant))
      if not isinstance(writer, MetricWriter):
        raise ArgumentTypeError("metric_writers", "(a factory) returned a "
                                f"{type(writer).__name__} for {variant['name']!r}, not a metric "
                                f"writer (write_scalars, write_hparams, flush, close).")
      writers.append(writer)
  out = SweepWriters(names, [w[0] if len(w) == 1 else MultiWriter(w) for w in per_variant]
                     if any(per_variant) else [], shared, task=task)
  for writer, variant in zip(out.writers, variants, strict=False):  # no writers: none
    writer.write_hparams(variant_hparams(variant))
  return out


__all__ = ["MetricWriter", "TensorBoardWriter", "PrefixedWriter", "MultiWriter",
           "SweepWriters", "open_writers", "check_metric_writers", "scalar_tag",
           "metric_tags", "plain_hparams", "variant_hparams", "epoch_scalars",
           "run_folders"]
