"""Results files of a sweep: JSON (everything), CSV (per epoch and variant), markdown.

Each file is written atomically (a temporary file, then a rename): a run killed while
writing leaves the previous file or the new one, never half of one; a folder that cannot
take them (full, read-only) is one `lrjax._atomic.OutputWriteError` line.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lrjax import _atomic
from lrjax.train.engine.task import ACCURACY, BUILT_IN, Task, as_task
from lrjax.train.frontends.config import SweepConfig
from lrjax.train.reports import metrics


def _clean(value):
  """JSON has no NaN/inf: they become null."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _json_array(a, digits: int | None = None):
  """A nested list of floats with NaN/inf as null (and optional rounding)."""
  a = np.asarray(a, np.float64)
  if digits is not None:
    a = np.round(a, digits)
  if a.ndim == 0:
    return _clean(float(a))
  return [_json_array(x) for x in a]


def _task_record(result) -> dict:
  task = result_task(result)
  return {"name": task.name, "monitor": task.monitor,
          "higher_is_better": task.higher_is_better}


def to_dict(result) -> dict:
  history = {k: _json_array(v) for k, v in result.history.items()}
  config = getattr(result, "config", None)
  records = getattr(result, "variant_records", None)
  return {
      # lrjax.sweep results have no config; their variants say what ran.
      "config": config.to_dict() if config is not None else None,
      "variants": records() if records is not None else [],
      # The one description of the run (lrjax.train.frontends.spec.SweepSpec).
      "spec": getattr(result, "spec", None),
      # which quantity ranks the variants (`metrics.best_index`), for readers of the file
      "task": _task_record(result),
      "initial": {k: _json_array(v) for k, v in (getattr(result, "initial", None) or {}).items()},
      # Fewer than config.epochs when the run stopped early (a checkpoint save failed).
      "completed_epochs": int(next(iter(result.history.values())).shape[0]),
      "device": result.device,
      "compile_seconds": result.compile_seconds,
      "plans": list(getattr(result, "plans", [])),
      "epoch_seconds": [_clean(float(x)) for x in result.epoch_seconds],
      "summary": [{k: _clean(v) for k, v in row.items()} for row in result.summary],
      "history": history,
      "step_history": {k: _json_array(v, 7) for k, v in result.step_history.items()},
  }


def _cell(value, digits: int) -> str:
  """A table cell: empty for a missing or non-finite number."""
  if value is None or not math.isfinite(value):
    return ""
  return f"{value:.{digits}f}"


# How a metric's name reads in a table header (the name itself where not listed).
HEADER_NAMES = {"rmse": "RMSE", "mse": "MSE", "mae": "MAE"}


def _metric_names(rows: list[dict], suffix: str = "") -> list[str]:
  """The metrics (not the loss) that the rows report as ``final_valid_<m>``, in order:
  the table shows whatever the task measured (``acc``; RMSE for regression, never an
  empty accuracy column)."""
  names = []
  for row in rows[:1]:
    for key in row:
      if key.startswith("final_valid_") and key.endswith(suffix):
        m = key[len("final_valid_"):len(key) - len(suffix)]
        if m != "loss":
          names.append(m)
  return names


def _metric_columns(rows: list[dict], suffix: str = "") -> list[tuple[str, str]]:
  columns = []
  for m in _metric_names(rows, suffix):
    label = HEADER_NAMES.get(m, m)
    columns += [(f"{kind} {split} {label}", f"{kind.lower()}_{split}_{m}{suffix}")
                for kind, split in (("Final", "valid"), ("Best", "valid"), ("Final", "test"))
                if f"{kind.lower()}_{split}_{m}{suffix}" in rows[0]]
  return columns


def _marked(label: str, is_best: bool) -> str:
  return f"**{label} (best)**" if is_best else label


def markdown_table(summary: list[dict], *, digits: int = 4, best: int | None = None) -> str:
  """The report's table layout (method, final accuracy, convergence epoch) with the
  validation/test losses; the metric columns are the task's (`summarize`): accuracy for
  classification, RMSE for regression.  Row ``best`` (`metrics.best_index`) is marked
  ``**name (best)**``."""
  columns = _metric_columns(summary) + [
      ("Final valid loss", "final_valid_loss"), ("Best valid loss", "best_valid_loss"),
      ("Final test loss", "final_test_loss")]
  # A searched run's variants may stop early: how long each trained ("Final" is there).
  trained = bool(summary) and "epochs_trained" in summary[0] and len(
      {row["epochs_trained"] for row in summary}) > 1
  header = (["Method"] + [c[0] for c in columns] + ["Convergence epoch"]
            + (["Epochs trained"] if trained else []) + ["Final lr", "Non-finite"])
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for k, row in enumerate(summary):
    cells = [_marked(row["name"], k == best)] + [_cell(row.get(key), digits)
                                                  for _, key in columns]
    cells += [str(row["convergence_epoch"])] + ([str(row["epochs_trained"])] if trained else [])
    cells += [f"{row['final_lr']:.3g}", str(row["nonfinite"])]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _mean_std_cell(row: dict, field: str, digits: int) -> str:
  """``mean ± std`` of a `metrics.aggregate_seeds` row (the mean alone for one seed)."""
  mean = row.get(f"{field}_mean")
  if mean is None or not math.isfinite(mean):
    return ""
  if row["seeds"] < 2:
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {row[f'{field}_std']:.{digits}f}"


def seed_table(rows: list[dict], *, digits: int = 4, best: int | None = None) -> str:
  """A markdown table of `lrjax.train.reports.metrics.aggregate_seeds` rows: per setting the
  number of seeds, ``mean ± std`` of the task's final/best metrics, the losses and the
  convergence epoch, the range (min - max) of the first final validation metric, and
  the seeds that met a non-finite value.  Row ``best`` (`metrics.best_index` with
  ``over_seeds``) is marked ``**setting (best)**``."""
  metric_columns = _metric_columns(rows, "_mean")
  columns = metric_columns + [("Final valid loss", "final_valid_loss_mean"),
                              ("Final test loss", "final_test_loss_mean"),
                              ("Convergence epoch", "convergence_epoch_mean")]
  columns = [(label, key[:-len("_mean")]) for label, key in columns if key in rows[0]] \
      if rows else []
  ranged = metric_columns[0] if metric_columns else ("Final valid loss",
                                                      "final_valid_loss_mean")
  range_field = ranged[1][:-len("_mean")]
  header = (["Setting", "Seeds"] + [c[0] for c in columns]
            + [f"{ranged[0]} min - max", "Non-finite seeds"])
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for k, row in enumerate(rows):
    cells = [_marked(row["setting"], k == best), str(row["seeds"])]
    cells += [_mean_std_cell(row, field, 1 if field == "convergence_epoch" else digits)
              for _, field in columns]
    low, high = row.get(f"{range_field}_min"), row.get(f"{range_field}_max")
    cells.append(f"{_cell(low, digits)} - {_cell(high, digits)}"
                 if low is not None and math.isfinite(low) else "")
    cells.append(str(row["nonfinite_seeds"]))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


# How a monitored quantity reads in a sentence (its name itself where not listed).
METRIC_WORDS = {"acc": "accuracy", "loss": "loss"} | {k.lower(): v for k, v in
                                                      HEADER_NAMES.items()}


def metric_words(task: Task) -> str:
  """``"final validation accuracy"``: the monitored quantity `best_index` ranks by."""
  return f"final validation {METRIC_WORDS.get(task.monitor, task.monitor)}"


def _value(value, digits: int) -> str:
  return _cell(value, digits) or "not finite"


class Best:
  """Which variant, and which setting over its seeds, did best (`metrics.best_index`).

  Attributes:
    task: the task whose monitored quantity ranks them.
    variant: the best summary row's position (None: none finite).
    settings: `metrics.aggregate_seeds` rows, or None when no setting has two seeds
      (or the result does not say which variants share a setting).
    setting: the best of ``settings`` (None as ``variant``).
  """

  def __init__(self, result, task: Task | None = None):
    self.task = result_task(result) if task is None else as_task(task)
    self.summary = list(result["summary"] if isinstance(result, dict) else result.summary)
    self.variant = metrics.best_index(self.summary, self.task)
    self.settings, self.setting = None, None
    try:
      rows = metrics.aggregate_seeds(result)
    except ValueError:  # rows that do not say their settings (no variants recorded)
      rows = None
    if rows is not None and any(r["seeds"] > 1 for r in rows):
      self.settings = rows
      self.setting = metrics.best_index(rows, self.task, over_seeds=True)

  def lines(self, *, digits: int = 4) -> list[str]:
    """The sentences saying so, e.g. ``Best: By Cutoff seq3, final validation accuracy
    0.9520.`` and, over seeds, ``... 0.9520 ± 0.0031 over 3 seeds``."""
    words, field = metric_words(self.task), metrics.monitored_field(self.task)
    order = "larger" if self.task.higher_is_better else "smaller"
    if self.variant is None:
      return [f"Best: none (no variant has a finite {words}; every one diverged)."]
    row = self.summary[self.variant]
    out = [f"Best variant: {row['name']}, {words} {_value(row.get(field), digits)} "
           f"({order} is better)."]
    if self.settings is not None and self.setting is not None:
      agg = self.settings[self.setting]
      out.append(f"Best setting over seeds: {agg['setting']}, {words} "
                 f"{_mean_std_cell(agg, field, digits)} (mean ± std over "
                 f"{agg['seeds']} seeds).")
    return out


def summary_markdown(result) -> str:
  """``summary.md``: the per-variant table with the best variant marked, the sentence
  naming it, the table over seeds (where a setting has several) with the best setting
  marked, and the execution plan of each group."""
  best = Best(result)
  text = markdown_table(result.summary, best=best.variant) + "\n" + "\n".join(
      best.lines()) + "\n"
  if best.settings is not None:
    text += "\nOver seeds:\n\n" + seed_table(best.settings, best=best.setting)
  return text + plan_lines(result)


# History fields holding whole numbers (the strategy's position, a 0/1 flag).
INTEGER_FIELDS = ("index", "nonfinite", "alive", "parent", "started")
# History fields measured in float64 (wall-clock seconds); the rest are float32 metrics.
FLOAT64_FIELDS = ("group_seconds",)


def csv_cell(field: str, value) -> str:
  """One history value as text: integers as integers, float32 metrics by the shortest
  decimal that reads back as the same float32 (no ``0.008999999612569809`` noise)."""
  value = float(value)
  if not math.isfinite(value):
    return str(value)  # nan / inf / -inf: a diverged run shows as such
  if field in INTEGER_FIELDS:
    return str(int(value))
  if field in FLOAT64_FIELDS:
    return repr(value)
  return str(np.float32(value))


def result_task(result) -> Task:
  """The task of a sweep result: its ``task`` (`lrjax.sweep`), its config's (a built-in
  name, `run_sweep`), else inferred from its history (`metrics.infer_task`).  For a
  loaded results dict (`load`): the built-in task its file names, else inferred (a
  user's own task cannot be rebuilt from the file)."""
  if isinstance(result, Mapping):
    record = result.get("task") or {}
    name = record.get("name") if isinstance(record, Mapping) else record
    if name in BUILT_IN:
      return BUILT_IN[name]
    return metrics.infer_task(result["history"])
  task = getattr(result, "task", None) or getattr(getattr(result, "config", None), "task",
                                                  None)
  return as_task(task) if task is not None else metrics.infer_task(result.history)


def history_csv(result) -> str:
  """``history.csv``: one row per (epoch, variant), epoch from 1; before them, where the
  result has ``initial`` (the untrained model), epoch-0 rows holding its validation and
  test columns (the other columns empty: nothing was trained), the point the curves
  start from.

  The columns are the history's fields, less the accuracy fields where the task has no
  accuracy (they would be empty), plus the task's derived metrics where the history
  lacks them: a regression sweep has RMSE columns (the square root of the MSE losses,
  in float32 as the losses were computed) in place of accuracy columns."""
  task = result_task(result)
  no_accuracy = ACCURACY not in task.metrics
  fields = [f for f in result.history if not (no_accuracy and f.endswith(f"_{ACCURACY}"))]
  losses = {f: np.asarray(result.history[f], np.float32) for f in fields
            if f.endswith("_loss")}
  derived = {f: v for f, v in task.derived(losses).items() if f not in result.history}
  columns = {f: result.history[f] for f in fields} | derived
  text = io.StringIO(newline="")
  writer = csv.writer(text)
  writer.writerow(["epoch", "variant"] + list(columns))
  initial = {f: np.asarray(v) for f, v in (getattr(result, "initial", None) or {}).items()}
  if initial:
    initial |= {f: v for f, v in task.derived({f: np.asarray(v, np.float32) for f, v in
                                               initial.items() if f.endswith("_loss")}).items()
                if f not in initial}
    for k, name in enumerate(result.names):
      writer.writerow([0, name] + [csv_cell(f, initial[f][k]) if f in initial else ""
                                   for f in columns])
  epochs = next(iter(result.history.values())).shape[0]
  for e in range(epochs):
    for k, name in enumerate(result.names):
      writer.writerow([e + 1, name] + [csv_cell(f, v[e, k]) for f, v in columns.items()])
  return text.getvalue()


def save(result, out_dir: str | Path) -> dict[str, Path]:
  """Writes ``results.json``, ``history.csv`` and ``summary.md`` into ``out_dir``.

  Raises:
    lrjax._atomic.OutputWriteError: a file could not be written (full disk, read-only or
      unwritable folder): one line naming the folder and the cause; each file is there
      whole or as it was before.
  """
  out = Path(out_dir)
  paths = {"json": out / "results.json", "csv": out / "history.csv",
           "markdown": out / "summary.md"}
  texts = {"json": json.dumps(to_dict(result), indent=1), "csv": history_csv(result),
           "markdown": summary_markdown(result)}
  with _atomic.reported(out, "the results"):
    out.mkdir(parents=True, exist_ok=True)
    for kind, path in paths.items():
      _atomic.write_text(path, texts[kind])
  return paths


RESULT_FILES = ("results.json", "history.csv", "summary.md")


class ResultsExistError(FileExistsError):
  """An output folder already holds a sweep's results that a run without a checkpoint
  would overwrite (`refuse_overwrite`)."""


def refuse_overwrite(out_dir: str | Path) -> None:
  """Raises `ResultsExistError` when ``out_dir`` already holds a sweep's results files:
  a run that cannot resume (no checkpoint folder) must not silently replace another
  run's results.  (A checkpointed run is safe: its checkpoint refuses another run.)"""
  out = Path(out_dir)
  found = [name for name in RESULT_FILES if (out / name).exists()]
  if found:
    raise ResultsExistError(f"{out} already holds a sweep's results ({', '.join(found)}), "
                            f"which this run, without a checkpoint, would overwrite")


def plan_lines(result) -> str:
  """One markdown line per group: its execution plan (lrjax.train.engine.plan)."""
  lines = [f"\nExecution ({result.device}):\n"]
  for plan in getattr(result, "plans", []):
    at_once = plan.get("concurrent_calls", 1)  # results.json files before it lack it
    side = f" (up to {at_once} calls at once, every group's together)" if at_once > 1 else ""
    lines.append(f"* {len(plan['variants'])} variant(s), {plan['variants_per_call']} per "
                 f"compiled call, {plan['calls_per_epoch']} call(s) per epoch{side}, "
                 f"evaluation batch {plan['eval_batch_size']}: {plan['reason']}\n")
  return "".join(lines) if len(lines) > 1 else ""


def _sweep_config(raw) -> SweepConfig | None:
  """The `SweepConfig` of a `run_sweep` results file; None for the others (`lrjax.sweep`
  records none, a sweep file run records the file's content instead)."""
  if not isinstance(raw, Mapping) or "variants" not in raw or "sweep_file" in raw:
    return None
  try:
    return SweepConfig.from_dict(raw)
  except (TypeError, ValueError, KeyError):
    return None


def _nan_array(values) -> np.ndarray:
  """A nested list with nulls (JSON's NaN) as a float64 array."""
  def clean(x):
    return [clean(v) for v in x] if isinstance(x, list) else (np.nan if x is None else x)
  return np.asarray(clean(values), np.float64)


def load(path: str | Path) -> dict:
  """Reads a ``results.json`` (or the folder holding one) back, whichever path wrote it
  (the CLI's preset, a sweep file, `lrjax.sweep`).

  Returns a dict with ``config`` (a `SweepConfig` for the preset's runs, else None),
  ``run_config`` (the file's ``config`` as written: a sweep file's content, None for
  `lrjax.sweep`), ``task`` (``{"name", "monitor", "higher_is_better"}``, None in files
  before it), ``history`` (arrays [epochs, variants], NaN where null), ``initial``
  (the untrained model's values, arrays [variants]; empty for a run that did not
  record them), ``summary``, ``names``, ``variants`` (each one's name, hyperparameters,
  seed and tags), ``completed_epochs`` (fewer than asked for by a run that stopped
  early), ``path`` (the file) and timing fields.

  Raises:
    FileNotFoundError: no results file there.
    ValueError: the file is not a results file (not JSON, or no history).
  """
  path = Path(path)
  if path.is_dir():
    path = path / "results.json"
  if not path.is_file():
    raise FileNotFoundError(f"no results file at {path} (a sweep's --out folder holds "
                            f"results.json)")
  try:
    raw = json.loads(path.read_text())
  except (UnicodeDecodeError, json.JSONDecodeError) as err:
    raise ValueError(f"{path} is not a results file (not JSON: {err})") from None
  if not isinstance(raw, dict) or not isinstance(raw.get("history"), dict) or \
      not raw["history"]:
    raise ValueError(f"{path} is not a sweep's results file (it has no history)")
  config = _sweep_config(raw.get("config"))
  history = {k: _nan_array(v) for k, v in raw["history"].items()}
  step_history = {k: _nan_array(v) for k, v in raw.get("step_history", {}).items()}
  initial = {k: _nan_array(v) for k, v in (raw.get("initial") or {}).items()}
  completed = next(iter(history.values())).shape[0]
  variants = raw.get("variants") or []
  names = ([v.name for v in config.variants] if config is not None
           else [v["name"] for v in variants] if variants
           else [row["name"] for row in raw["summary"]])
  return {"config": config, "run_config": raw.get("config"), "task": raw.get("task"),
          "history": history, "step_history": step_history, "initial": initial,
          "completed_epochs": raw.get("completed_epochs", completed),
          "summary": raw["summary"], "names": names, "variants": variants,
          "device": raw.get("device"), "compile_seconds": raw.get("compile_seconds"),
          "epoch_seconds": raw.get("epoch_seconds"), "plans": raw.get("plans", []),
          "path": path}
