"""Results files and plots of a sweep, checked by parsing them (no training: a made-up
history of float32 values stands in for a sweep's)."""

from __future__ import annotations

import csv
import json
import math
import os
import re

import numpy as np
import pytest
from figures import capture_figures, lines

from lrjax.train import SweepConfig, report_variants
from lrjax.train.api import SweepResult
from lrjax.train.reports import metrics, plotting, results
from lrjax.train.runner.loop import HISTORY_FIELDS

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


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_history_csv_starts_with_the_untrained_model_at_epoch_0(tmp_path, task):
  result = _result(task)
  k = len(result.names)
  rng = np.random.default_rng(5)
  result.initial = {f: rng.uniform(0.5, 2.5, k).astype(np.float32).astype(np.float64)
                    for f in ("valid_loss", "valid_acc", "test_loss", "test_acc")}
  rows = _read_csv(results.save(result, tmp_path)["csv"])
  assert len(rows) == (EPOCHS + 1) * k
  for j, row in enumerate(rows[:k]):
    assert row["epoch"] == "0" and row["variant"] == result.names[j]
    assert np.float32(row["valid_loss"]) == np.float32(result.initial["valid_loss"][j])
    assert np.float32(row["test_loss"]) == np.float32(result.initial["test_loss"][j])
    for field in ("train_loss", "lr", "index", "group_seconds"):
      assert row[field] == ""  # nothing was trained at epoch 0
    if task == "regression":
      assert "valid_acc" not in row
      assert float(row["valid_rmse"]) == pytest.approx(
          math.sqrt(result.initial["valid_loss"][j]), rel=1e-6)
    else:
      assert np.float32(row["valid_acc"]) == np.float32(result.initial["valid_acc"][j])
  assert [r["epoch"] for r in rows[k::k]] == [str(e + 1) for e in range(EPOCHS)]


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


# -- seed aggregation --------------------------------------------------------------------

def _seeded_result(seeds=(0, 1, 2)) -> tuple[SweepResult, list[dict]]:
  """A made-up classification history of the report's 14 settings x ``seeds``."""
  variants = report_variants(0.01, 0.001, seeds)
  k = len(variants)
  rng = np.random.default_rng(1)
  history = {f: rng.uniform(0.1, 1.0, (EPOCHS, k)) for f in HISTORY_FIELDS}
  history["index"] = rng.integers(0, 5, (EPOCHS, k)).astype(np.float64)
  history["nonfinite"] = np.zeros((EPOCHS, k))
  history["nonfinite"][-1, 5] = 1.0
  history["valid_acc"][-1, 5] = np.nan  # one diverged seed: left out of the statistics
  names = [v.name for v in variants]
  summary = metrics.summarize(history, names, tolerance=0.05)
  # The setting identity: the variant without its label and seed (no name parsing).
  settings = [{f: val for f, val in v.to_dict().items() if f not in ("name", "seed")}
              for v in variants]
  for row, v in zip(summary, variants, strict=True):
    row["seed"] = v.seed
  config = SweepConfig(model="logistic", variants=variants, epochs=EPOCHS, batch_size=8)
  result = SweepResult(config=config, history=history, step_history={}, summary=summary,
                       compile_seconds=1.0, epoch_seconds=np.ones(EPOCHS), device="cpu")
  return result, settings


def test_aggregate_seeds_gives_mean_std_min_max_per_setting():
  result, settings = _seeded_result()
  rows = metrics.aggregate_seeds(result.summary, settings)
  assert len(rows) == 14 and [r["seeds"] for r in rows] == [3] * 14
  by_name = {row["name"]: row for row in result.summary}
  for agg in rows:
    assert agg["seed_values"] == [0, 1, 2]
    members = [by_name[n] for n in agg["names"]]
    assert len({n.split("/")[0] for n in agg["names"]}) == 1  # one setting, 3 seeds
    for field in ("final_valid_acc", "final_test_acc", "best_valid_loss",
                  "convergence_epoch", "final_lr", "sequence_advances"):
      x = np.array([m[field] for m in members], float)
      x = x[np.isfinite(x)]
      assert agg[f"{field}_mean"] == pytest.approx(x.mean(), rel=1e-12)
      assert agg[f"{field}_std"] == pytest.approx(np.std(x, ddof=1) if x.size > 1 else 0.0,
                                                  rel=1e-12, abs=1e-15)
      assert agg[f"{field}_min"] == x.min() and agg[f"{field}_max"] == x.max()
      assert agg["per_seed"][field] == [m[field] for m in members]
  diverged = next(r for r in rows if result.names[5] in r["names"])
  assert diverged["nonfinite_seeds"] == 1
  assert sum(r["nonfinite_seeds"] for r in rows) == 1
  # The NaN seed is left out: the mean is that of the two finite seeds.
  finite = [by_name[n]["final_valid_acc"] for n in diverged["names"] if n != result.names[5]]
  assert diverged["final_valid_acc_mean"] == pytest.approx(np.mean(finite))


def test_the_report_experiment_aggregates_its_settings_by_identity():
  """The report script's comparison rows are `aggregate_seeds` rows of the settings it
  names (grouped by the variants' configuration, not by their labels)."""
  import sys
  from pathlib import Path
  sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
  import report_lr_decaying as report
  result, settings = _seeded_result()
  theirs = report.aggregate(result, "mnist")
  ours = metrics.aggregate_seeds(result.summary, settings)
  assert len(ours) == len(theirs) == 14
  assert [r["setting"] for r in theirs] == list(report.SETTINGS)
  by_name = {row["name"]: row for row in result.summary}
  for agg, them in zip(ours, theirs, strict=True):
    # Independent check of the grouping: the seeds' names are the setting's + "/s<seed>".
    assert agg["names"] == [f"{them['setting']}/s{s}" for s in (0, 1, 2)]
    for field in ("final_valid_acc", "convergence_epoch", "final_test_acc"):
      assert agg[f"{field}_mean"] == pytest.approx(them[f"{field}_mean"], rel=1e-12)
      assert agg[f"{field}_std"] == pytest.approx(them[f"{field}_std"], rel=1e-12, abs=1e-15)
    assert agg["nonfinite_seeds"] == them["nonfinite_seeds"]
    assert them["per_seed_valid_acc"] == [by_name[n]["final_valid_acc"] for n in agg["names"]]
  acc = [by_name[f"By Epoch seq2/s{s}"]["final_valid_acc"] for s in (0, 1, 2)]
  row = theirs[list(report.SETTINGS).index("By Epoch seq2")]
  assert row["final_valid_acc_mean"] == pytest.approx(np.mean(acc), rel=1e-12)
  assert row["final_valid_acc_std"] == pytest.approx(np.std(acc, ddof=1), rel=1e-12)


def test_aggregate_seeds_reads_setting_tags_or_hparams_and_refuses_ambiguity():
  rows = [{"name": "x", "seed": 0, "hparams": {"learning_rate": 0.1, "opt": optimizer},
           "final_valid_loss": 1.0, "nonfinite": False}
          for optimizer in (min, max)]
  rows += [dict(rows[0], seed=1, final_valid_loss=3.0)]
  agg = metrics.aggregate_seeds(rows)
  assert [a["setting"] for a in agg] == ["learning_rate=0.1, opt=min",
                                         "learning_rate=0.1, opt=max"]
  assert agg[0]["seeds"] == 2 and agg[0]["final_valid_loss_mean"] == 2.0
  assert agg[0]["hparams"] == {"learning_rate": 0.1, "opt": min}
  tagged = metrics.aggregate_seeds([dict(r, setting="one") for r in rows[1:]])
  assert len(tagged) == 1 and tagged[0]["setting"] == "one" and tagged[0]["seeds"] == 2
  with pytest.raises(ValueError, match="same seed 0"):
    metrics.aggregate_seeds(rows, ["same", "same", "same"])
  with pytest.raises(ValueError, match="`settings` has 2 entries for 3"):
    metrics.aggregate_seeds(rows, ["a", "b"])
  with pytest.raises(ValueError, match=r"aggregate_seeds\(result\)\), or `settings`"):
    metrics.aggregate_seeds([{"name": "x", "final_valid_loss": 1.0}])


def _table(text):
  lines_ = text.strip().splitlines()
  split = lambda line: [c.strip() for c in line.strip("|").split("|")]
  return split(lines_[0]), [split(line) for line in lines_[2:]]


def test_seed_table_shows_mean_std_per_setting():
  result, settings = _seeded_result()
  rows = metrics.aggregate_seeds(result.summary, settings)
  header, body = _table(results.seed_table(rows))
  assert header[:5] == ["Setting", "Seeds", "Final valid acc", "Best valid acc",
                        "Final test acc"]
  assert "Convergence epoch" in header and header[-1] == "Non-finite seeds"
  assert len(body) == 14
  cells = dict(zip(header, body[3], strict=True))
  mean, std = (float(x) for x in cells["Final valid acc"].split(" ± "))
  assert mean == pytest.approx(rows[3]["final_valid_acc_mean"], abs=5e-5)
  assert std == pytest.approx(rows[3]["final_valid_acc_std"], abs=5e-5)
  low, high = (float(x) for x in cells["Final valid acc min - max"].split(" - "))
  assert (low, high) == (pytest.approx(rows[3]["final_valid_acc_min"], abs=5e-5),
                         pytest.approx(rows[3]["final_valid_acc_max"], abs=5e-5))


def test_seed_table_of_a_regression_has_rmse_not_accuracy():
  result = _result("regression")
  summary = [dict(row, seed=0, setting=row["name"]) for row in result.summary]
  header, body = _table(results.seed_table(metrics.aggregate_seeds(summary)))
  assert not any("acc" in h for h in header)
  assert header[2:5] == ["Final valid RMSE", "Best valid RMSE", "Final test RMSE"]
  assert float(body[0][2]) == pytest.approx(math.sqrt(result.history["valid_loss"][-1, 0]),
                                            abs=5e-5)


# -- epoch 0 and the task's panels ---------------------------------------------------------

def test_plots_start_at_epoch_0_with_the_untrained_values(tmp_path):
  result = _result()
  names, k = result.names, len(result.names)
  rng = np.random.default_rng(2)
  initial = {"valid_loss": rng.uniform(2, 3, k), "valid_acc": rng.uniform(0, 0.2, k),
             "test_loss": rng.uniform(2, 3, k), "test_acc": rng.uniform(0, 0.2, k)}
  with capture_figures() as figures:
    plotting.plot_curves(result.history, names, tmp_path / "all.png", initial=initial,
                         variants=result.config.variants)
  figure = figures["all.png"]
  for field in ("valid acc", "valid loss"):
    drawn = lines(figure, field)
    assert len(drawn) == 14
    key = field.replace(" ", "_")
    for label, line in drawn.items():
      j = names.index(label)
      np.testing.assert_array_equal(line.x, np.arange(0, EPOCHS + 1))
      np.testing.assert_array_equal(line.y, np.concatenate([[initial[key][j]],
                                                            result.history[key][:, j]]))
  for field in ("train loss", "lr"):  # no untrained value: from epoch 1
    for line in lines(figure, field).values():
      np.testing.assert_array_equal(line.x, np.arange(1, EPOCHS + 1))
  ax = next(a for a in figures.saved["all.png"].axes if a.get_title() == "valid acc")
  figures.saved["all.png"].canvas.draw()
  ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
  assert 0 in ticks and all(float(t).is_integer() for t in ticks)
  with pytest.raises(ValueError, match=r"`initial\['valid_loss'\]` must hold one value per"):
    plotting.plot_curves(result.history, names, tmp_path / "bad.png",
                         initial={"valid_loss": np.zeros(3)})


def test_regression_plots_show_rmse_with_its_epoch_0_value(tmp_path):
  result = _result("regression")
  k = len(result.names)
  initial = {"valid_loss": np.full(k, 16.0), "test_loss": np.full(k, 9.0)}
  with capture_figures() as figures:
    plotting.plot_report_figures(result.history, result.names, tmp_path,
                                 variants=result.config.variants, initial=initial)
  axes = {line.axes for line in figures["all_settings.png"]}
  assert axes == {"valid loss", "valid rmse", "train loss", "lr"}
  rmse = lines(figures["all_settings.png"], "valid rmse")
  line = rmse[result.names[0]]
  np.testing.assert_array_equal(line.x, np.arange(0, EPOCHS + 1))
  want = np.concatenate([[4.0], np.sqrt(result.history["valid_loss"][:, 0])])
  np.testing.assert_allclose(line.y, want)


def test_results_json_keeps_the_untrained_values_for_the_plots(tmp_path):
  result = _result()
  k = len(result.names)
  result.initial = {"valid_loss": np.linspace(2.0, 3.0, k), "valid_acc": np.full(k, 0.1)}
  result.initial["valid_acc"][4] = np.nan
  loaded = results.load(results.save(result, tmp_path)["json"])
  assert set(loaded["initial"]) == {"valid_loss", "valid_acc"}
  np.testing.assert_array_equal(loaded["initial"]["valid_loss"], result.initial["valid_loss"])
  np.testing.assert_array_equal(loaded["initial"]["valid_acc"], result.initial["valid_acc"])
  without = _result()
  assert results.load(results.save(without, tmp_path / "b")["json"])["initial"] == {}


def test_plot_seed_band_draws_the_seed_mean_and_a_std_band():
  plt = plotting.pyplot()
  fig, ax = plt.subplots()
  values = np.array([[0.1, 0.3, np.nan], [0.2, 0.6, 0.4], [0.5, 0.5, 0.5]])
  line = plotting.plot_seed_band(ax, [1, 2, 3], values, label="s", color="red")
  # The mean over the finite seeds of each epoch (the NaN seed left out).
  np.testing.assert_allclose(line.get_ydata(), [0.2, 0.4, 0.5])
  assert line.get_label() == "s"
  (band,) = ax.collections
  vertices = band.get_paths()[0].vertices
  std = np.array([0.1, np.std([0.2, 0.6, 0.4]), 0.0])
  np.testing.assert_allclose(vertices[:, 1].min(), (np.array([0.2, 0.4, 0.5]) - std).min())
  np.testing.assert_allclose(vertices[:, 1].max(), (np.array([0.2, 0.4, 0.5]) + std).max())
  # One seed (or band=False): the curve alone, no band.
  single = plotting.plot_seed_band(ax, [1, 2, 3], values[:, 1], band=True)
  np.testing.assert_allclose(single.get_ydata(), values[:, 1])
  plotting.plot_seed_band(ax, [1, 2, 3], values, band=False)
  assert len(ax.collections) == 1
  plt.close(fig)


def test_a_plot_that_cannot_be_written_leaves_the_previous_one_whole(small_disk):
  """Plots are rendered in memory and written atomically, as the results files are: a
  full disk is one `OutputWriteError` naming the folder, and the old plot stays whole."""
  from lrjax import _atomic
  disk = small_disk("200k")
  path = disk / "curves.png"

  def figure(points):
    plt = plotting.pyplot()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.arange(points), np.random.default_rng(0).normal(size=points))
    return fig

  plotting.save_figure(figure(10), path)
  before = path.read_bytes()
  free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
  (disk / "filler").write_bytes(b"\0" * max(0, free - 4096))  # leaves a page
  with pytest.raises(_atomic.OutputWriteError) as info:
    plotting.save_figure(figure(2000), path)  # a larger image than the page left
  assert str(info.value) == f"writing the plots to {disk} failed (No space left on device)"
  assert path.read_bytes() == before
  assert sorted(p.name for p in disk.iterdir()) == ["curves.png", "filler"]
