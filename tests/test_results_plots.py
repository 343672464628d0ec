"""Results files and plots of a sweep, checked by parsing them (no training: a made-up
history of float32 values stands in for a sweep's)."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
from figures import capture_figures, lines

from lrjax.train import SweepConfig, report_variants
from lrjax.train import metrics, plotting, results
from lrjax.train.sweep import HISTORY_FIELDS, SweepResult

EPOCHS = 3


def _result(task: str = "classification") -> SweepResult:
  variants = report_variants(0.01, 0.001, (0,))
  k = len(variants)
  rng = np.random.default_rng(0)
  # Float32 values, stored as float64 as the sweep stores them: the noise to avoid.
  f32 = lambda *shape: rng.uniform(0.001, 2.0, shape).astype(np.float32).astype(np.float64)
  history = {f: f32(EPOCHS, k) for f in HISTORY_FIELDS}
  history["lr"][:] = np.float32(0.009)  # repr(float(np.float32(0.009))) = 0.008999999612...
  history["index"] = rng.integers(0, 5, (EPOCHS, k)).astype(np.float64)
  history["nonfinite"] = np.zeros((EPOCHS, k))
  history["nonfinite"][-1, 3] = 1.0
  history["valid_loss"][1, 2] = np.nan  # a diverged evaluation shows as nan
  if task == "regression":
    for f in ("train_acc", "valid_acc", "test_acc"):
      history[f][:] = np.nan
  history["group_seconds"] = rng.uniform(0.1, 1.0, (EPOCHS, k))
  config = SweepConfig(model="logistic", variants=variants, epochs=EPOCHS, batch_size=8,
                       task=task)
  return SweepResult(config=config, history=history,
                     step_history={"step_loss": np.zeros((EPOCHS, k, 2)),
                                   "step_lr": np.zeros((EPOCHS, k, 2))},
                     summary=metrics.summarize(history, [v.name for v in variants]),
                     compile_seconds=1.0, epoch_seconds=np.ones(EPOCHS), device="cpu x1")


def _read_csv(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def test_history_csv_has_integers_as_integers_and_shortest_float32_decimals(tmp_path):
  result = _result()
  rows = _read_csv(results.save(result, tmp_path)["csv"])
  assert len(rows) == EPOCHS * len(result.names)
  integer = re.compile(r"^-?\d+$")
  for i, row in enumerate(rows):
    e, k = divmod(i, len(result.names))
    assert row["epoch"] == str(e + 1) and row["variant"] == result.names[k]
    for field in ("index", "nonfinite"):
      assert integer.match(row[field]), (field, row[field])
      assert int(row[field]) == result.history[field][e, k]
    assert row["lr"] == "0.009"
    for field in ("train_loss", "valid_loss", "valid_acc", "test_loss", "test_acc"):
      value = result.history[field][e, k]
      if math.isnan(value):
        assert row[field] == "nan"
        continue
      # Reads back as the same float32, and no longer than the shortest such decimal.
      assert np.float32(row[field]) == np.float32(value)
      assert row[field] == np.format_float_positional(np.float32(value), unique=True,
                                                      trim="-")
    assert float(row["group_seconds"]) == result.history["group_seconds"][e, k]
  assert rows[len(result.names) + 2]["valid_loss"] == "nan"


def test_summary_has_loss_columns_equal_to_the_history(tmp_path):
  result = _result()
  paths = results.save(result, tmp_path)
  summary = json.loads(paths["json"].read_text())["summary"]
  loss = result.history["valid_loss"]
  for k, row in enumerate(summary):
    assert row["final_valid_loss"] == loss[-1, k]
    assert row["best_valid_loss"] == np.nanmin(loss[:, k])
    assert row["final_test_loss"] == result.history["test_loss"][-1, k]
    assert row["final_valid_acc"] == result.history["valid_acc"][-1, k]
    assert "final_valid_rmse" not in row
  table = paths["markdown"].read_text().splitlines()
  header = [c.strip() for c in table[0].strip("|").split("|")]
  assert header[:7] == ["Method", "Final valid acc", "Best valid acc", "Final test acc",
                        "Final valid loss", "Best valid loss", "Final test loss"]
  cells = [c.strip() for c in table[2 + 2].strip("|").split("|")]  # the third variant
  assert cells[0] == result.names[2]
  assert float(cells[5]) == pytest.approx(np.nanmin(loss[:, 2]), abs=5e-5)
  assert float(cells[6]) == pytest.approx(result.history["test_loss"][-1, 2], abs=5e-5)


def test_regression_gets_rmse_columns_instead_of_empty_accuracy(tmp_path):
  result = _result("regression")
  paths = results.save(result, tmp_path)
  summary = json.loads(paths["json"].read_text())["summary"]
  for k, row in enumerate(summary):
    assert row["final_valid_rmse"] == pytest.approx(
        math.sqrt(result.history["valid_loss"][-1, k]), rel=1e-12)
    assert row["best_valid_rmse"] == pytest.approx(
        math.sqrt(np.nanmin(result.history["valid_loss"][:, k])), rel=1e-12)
    assert row["final_test_rmse"] == pytest.approx(
        math.sqrt(result.history["test_loss"][-1, k]), rel=1e-12)
  table = paths["markdown"].read_text()
  assert "acc" not in table.splitlines()[0]
  assert "| Final valid RMSE | Best valid RMSE | Final test RMSE |" in table
  first = [c.strip() for c in table.splitlines()[2].strip("|").split("|")]
  assert float(first[1]) == pytest.approx(math.sqrt(result.history["valid_loss"][-1, 0]),
                                          abs=5e-5)
  rows = _read_csv(paths["csv"])
  assert not any(name.endswith("_acc") for name in rows[0])
  for i, row in enumerate(rows):
    e, k = divmod(i, len(result.names))
    for split in ("train", "valid", "test"):
      mse = result.history[f"{split}_loss"][e, k]
      if math.isnan(mse):
        assert row[f"{split}_rmse"] == "nan"
      else:
        assert np.float32(row[f"{split}_rmse"]) == np.sqrt(np.float32(mse))


def _same(values):
  return len(set(values)) == 1


def test_plots_colour_by_sequence_style_by_strategy_legend_outside_integer_ticks(tmp_path):
  result = _result()
  names = result.names
  with capture_figures() as figures:
    plotting.plot_report_figures(result.history, names, tmp_path,
                                 variants=result.config.variants)
  drawn = lines(figures["all_settings.png"], "valid acc")
  assert sorted(drawn) == sorted(names) and len(drawn) == 14
  for label, line in drawn.items():
    np.testing.assert_array_equal(line.x, np.arange(1, EPOCHS + 1))
    np.testing.assert_array_equal(line.y, result.history["valid_acc"][:, names.index(label)])
  by_sequence = {seq: [drawn[n] for n in names if n.endswith(seq)]
                 for seq in ("seq1", "seq2", "seq3", "seq4")}
  by_strategy = {s: [drawn[n] for n in names if n.startswith(s)]
                 for s in ("By Epoch", "By Cutoff", "By Oscillate")}
  for group in by_sequence.values():
    assert len(group) == 3 and _same(l.color for l in group)
  for group in by_strategy.values():
    assert len(group) == 4 and _same(l.linestyle for l in group)
  # ... and the factors tell the series apart: 4 + 2 benchmark colours, 3 + 1 styles.
  colours = {seq: group[0].color for seq, group in by_sequence.items()}
  colours.update(SGD=drawn["SGD"].color, Adam=drawn["Adam"].color)
  assert len(set(colours.values())) == 6
  styles = {s: group[0].linestyle for s, group in by_strategy.items()}
  assert len(set(styles.values())) == 3 and drawn["SGD"].linestyle not in styles.values()
  # Every (colour, style) pair is unique: 14 series, 14 distinct looks.
  assert len({(l.color, l.linestyle) for l in drawn.values()}) == 14

  for name, fig in figures.saved.items():
    fig.canvas.draw()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1, name
    box = legends[0].get_window_extent()
    for ax in fig.axes:  # the legend overlaps no panel
      panel = ax.get_window_extent()
      assert box.x0 >= panel.x1 or box.x1 <= panel.x0, name
      lo, hi = ax.get_xlim()
      ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
      assert ticks and all(float(t).is_integer() for t in ticks), (name, ticks)


def test_plain_names_fall_back_to_factors_read_from_the_names(tmp_path):
  result = _result()
  names = [f"{n}/s0" for n in result.names]  # no variants: factors from the labels
  with capture_figures() as figures:
    plotting.plot_curves(result.history, names, tmp_path / "plain.png")
  drawn = lines(figures["plain.png"], "valid acc")
  assert _same(drawn[n].color for n in names if "seq2" in n)
  assert _same(drawn[n].linestyle for n in names if n.startswith("By Cutoff"))
  assert drawn["By Cutoff seq2/s0"].linestyle != drawn["By Epoch seq2/s0"].linestyle
  assert drawn["By Cutoff seq2/s0"].color != drawn["By Cutoff seq3/s0"].color
  assert drawn["SGD/s0"].color != drawn["Adam/s0"].color
  # The variants' factors and the names' agree on the report's settings.
  by_variants = plotting.series_styles(result.names, result.config.variants)
  by_names = plotting.series_styles(result.names)
  assert [s["linestyle"] for s in by_variants] == [s["linestyle"] for s in by_names]
  assert [s["color"] for s in by_variants] == [s["color"] for s in by_names]


def test_variants_must_match_the_names():
  result = _result()
  with pytest.raises(ValueError, match="variants"):
    plotting.series_styles(result.names[:3], result.config.variants)
