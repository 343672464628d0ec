"""`SweepResult`: what a sweep returns, and what can be asked of it afterwards.

Besides the curves and the summary, a search's result tells each variant's story: its
lineage (the variants whose state it continued from, epoch by epoch), the
hyperparameters it trained with along that lineage, and its learning-rate trajectory as
a pure schedule (``step -> lr``) to retrain it with plain optax.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lrjax import schedules
from lrjax._describe import describe


@dataclasses.dataclass
class SweepResult:
  """What a sweep produced (`lrjax.sweep`, and `run_sweep`, its preset).

  Attributes:
    history: field -> array ``[epochs, variants]`` (float64): the per-epoch fields of
      `lrjax.train.engine.epoch.EpochMetrics` (``train/valid/test_loss``, ``*_acc`` (NaN
      for regression), ``lr``, ``index``, ``nonfinite``), ``group_seconds`` (the wall
      time of the epoch of the variant's group; with the groups' calls side by side,
      from the epoch's start until the group's last call finished) and the tracking
      fields of `lrjax.train.runner.control` (``alive``, ``parent``, ``started``,
      ``hparams.<name>``).  A variant's metrics are NaN in the epochs it did not train.
    step_history: ``step_loss`` / ``step_lr`` -> array ``[epochs, variants, steps]``.
    summary: one dict per variant (`lrjax.train.reports.metrics.summarize`, with its
      ``seed`` and ``group``).
    compile_seconds: time spent compiling the epoch programs.
    epoch_seconds: wall time of each epoch of this run (all groups), NaN for epochs
      restored from a checkpoint.
    device: the platform and device count used.
    plans: per group, its execution plan (`lrjax.train.engine.plan.ExecutionPlan.to_dict`,
      plus the group's variant names and the evaluation batch).
    config: the front end's own record of the run (a `SweepConfig` for `run_sweep`,
      a sweep file's content; None for `lrjax.sweep`).
    variants: per variant, its identity: ``index``, ``name``, ``hparams`` (its first
      configuration), ``seed``, ``group`` and ``tags`` (``setting``: the position of its
      hyperparameters among the distinct settings; ``seed``; a preset's own).
    groups: the `Group` s (static hyperparameters, state structure, plan).
    task: the `Task`.
    initial: the untrained model's ``valid_loss``, ``valid_acc``, ``test_loss``,
      ``test_acc`` (``[variants]`` each): epoch 0 of the curves.
    spec: the `SweepSpec` as JSON (``SweepSpec.to_dict``).
    controller_state: the controller's state at the end (None without one).
    plots: the PNGs written beside the results files (``out_dir``), else empty.
    models: per kept variant's index (``keep``), its trained state as host arrays:
      ``params`` (the evaluation weights), ``train_params``, ``model_state``,
      ``opt_state``; read them with `params`, `model_state`, `variables`.
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
  groups: list = dataclasses.field(default_factory=list)
  task: Any = None
  initial: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  spec: dict | None = None
  controller_state: Any = None
  plots: list = dataclasses.field(default_factory=list)
  models: dict = dataclasses.field(default_factory=dict)

  @property
  def names(self) -> list[str]:
    if self.variants:
      return [v["name"] for v in self.variants]
    return [v.name for v in self.config.variants]

  def variant_records(self) -> list[dict]:
    """`variants` as JSON values (hyperparameters by `describe`)."""
    return [{k: (describe(v) if k in ("hparams", "tags") else v) for k, v in var.items()}
            for var in self.variants]

  # -- a variant's story ------------------------------------------------------------------
  def index_of(self, variant: int | str) -> int:
    """The position of ``variant`` (its name or its index)."""
    names = self.names
    if isinstance(variant, str):
      if variant not in names:
        raise KeyError(f"no variant named {variant!r}; the variants are {names}.")
      return names.index(variant)
    if isinstance(variant, bool) or not isinstance(variant, (int, np.integer)) or not (
        0 <= variant < len(names)):
      raise KeyError(f"`variant` must be a name or an index in [0, {len(names)}), got "
                     f"{variant!r}.")
    return int(variant)

  def trained_epochs(self, variant: int | str) -> int:
    """How many epochs the variant trained before it stopped (or the run ended)."""
    k = self.index_of(variant)
    alive = self.history.get("alive")
    if alive is None:
      return int(next(iter(self.history.values())).shape[0])
    trained = np.flatnonzero(np.asarray(alive)[:, k] > 0)
    return int(trained[-1]) + 1 if trained.size else 0

  def lineage(self, variant: int | str) -> np.ndarray:
    """``[epochs trained]`` ints: for every epoch up to the variant's last, the variant
    whose training at that epoch led to this one's state (itself where nothing was
    copied); -1 before a fresh start (a restart) of the line."""
    k = self.index_of(variant)
    last = self.trained_epochs(k)
    line = np.full(last, -1, int)
    parent = self.history.get("parent")
    started = self.history.get("started")
    slot = k
    for epoch in range(last - 1, -1, -1):
      line[epoch] = slot
      if started is not None and started[epoch, slot] > 0 and epoch > 0:
        break  # a fresh initialisation: nothing before it led here
      if parent is not None:
        slot = int(parent[epoch, slot])
    return line

  def hparams_trajectory(self, variant: int | str) -> dict[str, np.ndarray]:
    """Per numeric hyperparameter, its value in every epoch along the `lineage` (NaN
    before a fresh start)."""
    line = self.lineage(variant)
    out = {}
    for field, values in self.history.items():
      if field.startswith("hparams."):
        out[field[len("hparams."):]] = np.asarray(
            [values[e, s] if s >= 0 else np.nan for e, s in enumerate(line)], np.float64)
    return out

  def lr_values(self, variant: int | str) -> np.ndarray:
    """The rate of every step the variant's line trained, in order (`lineage`)."""
    line = self.lineage(variant)
    rates = np.asarray(self.step_history["step_lr"], np.float64)
    return np.concatenate([rates[e, s] for e, s in enumerate(line) if s >= 0]
                          or [np.zeros(0)])

  def lr_schedule(self, variant: int | str) -> schedules.Schedule:
    """The rate the variant's line trained with, as a pure lrjax schedule ``step ->
    lr`` (`lrjax.schedules.from_values`): retrain it with plain optax, e.g.
    ``optax.sgd(result.lr_schedule(name), momentum=0.9)``."""
    values = self.lr_values(variant)
    if values.size == 0 or not np.isfinite(values).all():
      raise ValueError(f"variant {self.names[self.index_of(variant)]!r} has no finite "
                       f"recorded rate to follow (it never trained, diverged, or its "
                       f"optimizer keeps no rate in its state).")
    return schedules.from_values(values)

  # -- the best model back ---------------------------------------------------------------
  def best_index(self, metric: str | None = None, higher_is_better: bool | None = None
                 ) -> int | None:
    """The position of the best variant (None if none has a finite value): by the task's
    monitored final validation value (`lrjax.train.reports.metrics.best_index`, what
    summary.md marks), or by the summary field ``metric`` (``"final_test_acc"``,
    ``"best_valid_loss"`` ...; a loss or error is better lower unless
    ``higher_is_better`` says otherwise)."""
    from lrjax.train.reports import metrics
    if metric is None:
      return metrics.best_index(self.summary, self.task)
    if not self.summary or metric not in self.summary[0]:
      fields = sorted(k for k, v in (self.summary[0] if self.summary else {}).items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool))
      raise KeyError(f"`metric` {metric!r} is not a summary field; the fields are "
                     f"{', '.join(fields)}.")
    if higher_is_better is None:
      higher_is_better = not any(w in metric for w in ("loss", "rmse", "mse", "mae",
                                                       "error", "epoch"))
    values = np.asarray([np.nan if r.get(metric) is None else r[metric]
                         for r in self.summary], np.float64)
    if not np.isfinite(values).any():
      return None
    values = np.where(np.isfinite(values), values, -np.inf if higher_is_better else np.inf)
    return int(np.argmax(values) if higher_is_better else np.argmin(values))

  def best(self, metric: str | None = None, higher_is_better: bool | None = None) -> dict:
    """The best variant (`best_index`): its ``index``, ``name``, ``hparams``, ``seed``
    and ``summary`` row; its weights are `params` of its name.

    Raises:
      ValueError: no variant has a finite value (every one diverged).
    """
    k = self.best_index(metric, higher_is_better)
    if k is None:
      raise ValueError("no variant has a finite value to rank by: every one diverged.")
    v = self.variants[k] if self.variants else {"name": self.names[k]}
    return {"index": k, "name": v["name"], "hparams": v.get("hparams"), "seed": v.get("seed"),
            "summary": self.summary[k]}

  def trained_state(self, variant: int | str) -> dict:
    """The kept trained state of ``variant`` (`models`)."""
    k = self.index_of(variant)
    if k not in self.models:
      kept = ", ".join(repr(self.names[i]) for i in self.models) or "none"
      raise KeyError(f"variant {self.names[k]!r} was not kept (kept: {kept}); run the "
                     f"sweep with keep='all' to keep every variant.")
    return self.models[k]

  def params(self, variant: int | str):
    """The evaluation weights of ``variant`` (its name or index; what was evaluated)."""
    return self.trained_state(variant)["params"]

  def model_state(self, variant: int | str) -> dict:
    """The non-parameter collections of ``variant`` (BatchNorm's ``batch_stats``)."""
    return self.trained_state(variant)["model_state"]

  def variables(self, variant: int | str) -> dict:
    """``{"params": ..., **model_state}``: ``model.apply(result.variables(name), x,
    train=False)`` predicts with the trained variant."""
    state = self.trained_state(variant)
    return {"params": state["params"], **state["model_state"]}
