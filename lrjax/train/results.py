"""Results files of a sweep: JSON (everything), CSV (per epoch and variant), markdown.

Each file is written atomically (a temporary file, then a rename): a run killed while
writing leaves the previous file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from lrjax import _atomic
from lrjax.train.config import SweepConfig


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


def to_dict(result) -> dict:
  history = {k: _json_array(v) for k, v in result.history.items()}
  config = getattr(result, "config", None)
  records = getattr(result, "variant_records", None)
  return {
      # lrjax.sweep results have no config; their variants say what ran.
      "config": config.to_dict() if config is not None else None,
      "variants": records() if records is not None else [],
      "initial": {k: _json_array(v) for k, v in getattr(result, "initial", {}).items()},
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


def _is_regression(summary: list[dict]) -> bool:
  return bool(summary) and all("final_valid_rmse" in row for row in summary)


def markdown_table(summary: list[dict], *, digits: int = 4) -> str:
  """The report's table layout (method, final accuracy, convergence epoch) with the
  validation/test losses; a regression sweep shows RMSE where accuracy would be."""
  metric = ("rmse", "RMSE") if _is_regression(summary) else ("acc", "acc")
  columns = [(f"Final valid {metric[1]}", f"final_valid_{metric[0]}"),
             (f"Best valid {metric[1]}", f"best_valid_{metric[0]}"),
             (f"Final test {metric[1]}", f"final_test_{metric[0]}"),
             ("Final valid loss", "final_valid_loss"), ("Best valid loss", "best_valid_loss"),
             ("Final test loss", "final_test_loss")]
  header = ["Method"] + [c[0] for c in columns] + ["Convergence epoch", "Final lr", "Non-finite"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in summary:
    cells = [row["name"]] + [_cell(row.get(key), digits) for _, key in columns]
    cells += [str(row["convergence_epoch"]), f"{row['final_lr']:.3g}", str(row["nonfinite"])]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


# History fields holding whole numbers (the strategy's position, a 0/1 flag).
INTEGER_FIELDS = ("index", "nonfinite")
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


def history_csv(result) -> str:
  """``history.csv``: one row per (epoch, variant), epoch from 1.

  A regression sweep (its config's task) has RMSE columns (the square root of the
  MSE losses) in place of its accuracy columns, which would be empty."""
  task = getattr(result, "task", None) or getattr(getattr(result, "config", None), "task", None)
  regression = getattr(task, "name", task) == "regression"
  fields = [f for f in result.history if not (regression and f.endswith("_acc"))]
  rmse = [f for f in fields if regression and f.endswith("_loss")]
  text = io.StringIO(newline="")
  writer = csv.writer(text)
  writer.writerow(["epoch", "variant"] + fields + [f[:-len("loss")] + "rmse" for f in rmse])
  epochs = next(iter(result.history.values())).shape[0]
  for e in range(epochs):
    for k, name in enumerate(result.names):
      row = [csv_cell(f, result.history[f][e, k]) for f in fields]
      # sqrt in float32, as the losses were computed.
      row += [csv_cell(f, np.sqrt(np.float32(result.history[f][e, k]))) for f in rmse]
      writer.writerow([e + 1, name] + row)
  return text.getvalue()


def save(result, out_dir: str | Path) -> dict[str, Path]:
  """Writes ``results.json``, ``history.csv`` and ``summary.md`` into ``out_dir``."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  paths = {"json": out / "results.json", "csv": out / "history.csv",
           "markdown": out / "summary.md"}
  _atomic.write_text(paths["json"], json.dumps(to_dict(result), indent=1))
  _atomic.write_text(paths["csv"], history_csv(result))
  _atomic.write_text(paths["markdown"], markdown_table(result.summary) + plan_lines(result))
  return paths


def plan_lines(result) -> str:
  """One markdown line per group: its execution plan (lrjax.train.plan)."""
  lines = [f"\nExecution ({result.device}):\n"]
  for plan in getattr(result, "plans", []):
    lines.append(f"* {len(plan['variants'])} variant(s), {plan['variants_per_call']} per "
                 f"compiled call, {plan['calls_per_epoch']} call(s) per epoch, evaluation "
                 f"batch {plan['eval_batch_size']}: {plan['reason']}\n")
  return "".join(lines) if len(lines) > 1 else ""


def load(path: str | Path) -> dict:
  """Reads a ``results.json`` (or the folder holding one) back.

  Returns a dict with ``config`` (a `SweepConfig`, None for `lrjax.sweep` results, whose
  ``variants`` say what ran), ``history`` (arrays
  [epochs, variants], NaN where null), ``summary``, ``names``, ``completed_epochs``
  (fewer than the config's epochs for a run that stopped early) and timing fields.
  """
  path = Path(path)
  if path.is_dir():
    path = path / "results.json"
  if not path.exists():
    raise FileNotFoundError(f"no results file at {path}")
  raw = json.loads(path.read_text())
  config = SweepConfig.from_dict(raw["config"]) if raw.get("config") else None
  history = {k: np.array([[np.nan if x is None else x for x in row] for row in v], np.float64)
             for k, v in raw["history"].items()}
  step_history = {k: np.array(v, dtype=float) for k, v in raw.get("step_history", {}).items()}
  completed = next(iter(history.values())).shape[0] if history else 0
  return {"config": config, "history": history, "step_history": step_history,
          "completed_epochs": raw.get("completed_epochs", completed),
          "summary": raw["summary"],
          "names": ([v.name for v in config.variants] if config is not None
                    else [v["name"] for v in raw.get("variants", [])]),
          "variants": raw.get("variants", []), "device": raw["device"],
          "compile_seconds": raw["compile_seconds"], "epoch_seconds": raw["epoch_seconds"]}
