"""Smoke tests of the two reference-document experiments on synthetic data (no files).

Each runs its script's ``main`` in ``--quick --synthetic`` mode for 2 epochs on 256
training examples and checks what it writes.  The report experiment runs its MNIST part
only (the CIFAR-10 part is the same code with another model), which keeps this file
to about a minute on a 2-core CPU (the suite runs XLA at optimization level 0: conftest.py).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from figures import capture_figures, lines

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))
REPORT = Path("/work/shared/seeds/lr-decaying-report-mnist-cifar.md")

# Yang & Huang (2019), Table 1 (MNIST): final accuracy, convergence epoch.  Written here
# from the report, apart from the experiment's own copy, which is checked against it.
TABLE_1 = {
    "SGD": (0.98264, 34), "Adam": (0.98574, 30),
    "By Epoch seq1": (0.97608, 48), "By Epoch seq2": (0.98230, 38),
    "By Epoch seq3": (0.98263, 19), "By Epoch seq4": (0.98527, 40),
    "By Cutoff seq1": (0.98290, 32), "By Cutoff seq2": (0.98405, 28),
    "By Cutoff seq3": (0.98614, 29), "By Cutoff seq4": (0.98656, 22),
    "By Oscillate seq1": (0.98372, 25), "By Oscillate seq2": (0.98544, 27),
    "By Oscillate seq3": (0.98514, 24), "By Oscillate seq4": (0.98586, 30),
}

# 256 training examples and 64 test ones (validation: a tenth of the 256): the tests
# check structure, not accuracy, and the runs are mostly compile time.
QUICK = ["--quick", "--synthetic", "--epochs", "2", "--train-size", "256", "--test-size", "64",
         "--no-progress"]


def _module(name):
  return importlib.import_module(name)


def _png_ok(path: Path) -> None:
  assert path.exists(), path
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("report")
  module = _module("report_lr_decaying")
  with capture_figures() as figures:
    result = module.main(QUICK + ["--dataset", "mnist", "--out", str(out)])
  return module, out, result, figures


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("keras")
  module = _module("keras_schedules_vs_adaptive")
  with capture_figures() as figures:
    result = module.main(QUICK + ["--out", str(out)])
  return module, out, result, figures


def _engine_history(folder: Path):
  engine = json.loads((folder / "results.json").read_text())
  names = [v["name"] for v in engine["config"]["variants"]]
  history = {k: np.asarray(v, float) for k, v in engine["history"].items()}
  return engine, names, history


def test_report_writes_tables_with_all_14_settings(report_run):
  module, out, result, _ = report_run
  folder = out / "mnist"
  for name in ("results.json", "history.csv", "summary.md", "comparison.md",
               "comparison.csv", "comparison.json"):
    assert (folder / name).exists(), name
  assert (out / "summary.md").exists() and (out / "summary.json").exists()

  with (folder / "comparison.csv").open() as f:
    rows = list(csv.DictReader(f))
  assert [r["setting"] for r in rows] == list(module.SETTINGS)
  assert len(rows) == 14
  for r in rows:
    acc = float(r["final_valid_acc_mean"])
    assert math.isfinite(acc) and 0.0 <= acc <= 1.0, r
    assert math.isfinite(float(r["convergence_epoch_mean"]))

  payload = json.loads((folder / "comparison.json").read_text())
  assert [r["setting"] for r in payload["rows"]] == list(module.SETTINGS)
  assert payload["info"]["tolerance"] == 0.005
  engine = json.loads((folder / "results.json").read_text())
  assert len(engine["summary"]) == 14
  # The table's measured columns are the engine's summary (one seed: mean = the value).
  summary = {row["name"]: row for row in engine["summary"]}
  for r in payload["rows"]:
    assert r["final_valid_acc_mean"] == pytest.approx(summary[r["setting"]]["final_valid_acc"])
    assert r["convergence_epoch_mean"] == summary[r["setting"]]["convergence_epoch"]


def test_report_writes_the_observations_of_its_dataset(report_run):
  """The run ends with `report_observations` on its own result (one seed: the
  orderings say they need seeds; tests/test_report_observations.py checks verdicts)."""
  _, out, result, _ = report_run
  folder = out / "mnist"
  saved = json.loads((folder / "observations.json").read_text())
  assert saved["dataset"] == "mnist" and saved["seeds"] == 1
  assert sorted(saved["verdicts"]) == [str(n) for n in range(1, 8)]
  assert saved["verdicts"]["1"] == "needs seeds"
  text = (folder / "observations.md").read_text()
  assert text == result["mnist"]["observations"]["markdown"]
  assert "| (1a) |" in text and "| (7c) |" in text


def test_report_table_shows_the_reports_numbers(report_run):
  _, out, _, _ = report_run
  table = (out / "mnist" / "comparison.md").read_text()
  for group in ("Benchmark", "By Epoch", "By Cutoff", "By Oscillate"):
    assert f"| {group} |" in table
  assert "tol 0.005" in table
  # The report's columns of each row equal Tables 1's numbers.
  group = None
  seen = {}
  for line in table.splitlines():
    cells = [c.strip().strip("*").split(" (")[0] for c in line.strip().strip("|").split("|")]
    if len(cells) != 6 or cells[1] not in ("SGD", "Adam", "seq1", "seq2", "seq3", "seq4"):
      continue
    group = cells[0] or group
    setting = cells[1] if group == "Benchmark" else f"{group} {cells[1]}"
    seen[setting] = (float(cells[4]), int(cells[5]))
  assert seen == TABLE_1
  # Table 1's highlights, bold as in the report.
  assert "**0.98656**" in table and "**19**" in table
  with (out / "mnist" / "comparison.csv").open() as f:
    rows = {r["setting"]: r for r in csv.DictReader(f)}
  assert float(rows["By Cutoff seq4"]["report_acc"]) == 0.98656
  assert int(rows["By Epoch seq3"]["report_convergence"]) == 19


@pytest.mark.skipif(not REPORT.exists(), reason="the reference documents are not here")
def test_table_1_above_is_the_reports():
  text = REPORT.read_text()
  table = text[text.index("Table 1: MNIST Comparison"):text.index("Table 2: CIFAR")]
  group, parsed = None, {}
  for line in table.splitlines():
    cells = [c.strip().replace("<b>", "").replace("</b>", "") for c in line.split("\t")]
    if len(cells) == 4 and cells[1] in ("SGD", "Adam", "seq1", "seq2", "seq3", "seq4"):
      group = cells[0] or group
      setting = cells[1] if group == "Benchmark" else f"{group} {cells[1]}"
      parsed[setting] = (float(cells[2]), int(cells[3]))
  assert parsed == TABLE_1


def test_report_experiment_keeps_the_reports_table(report_run):
  module = report_run[0]
  assert module.REPORT_TABLES["mnist"] == TABLE_1


def test_report_figures_plot_the_engine_history(report_run):
  _, out, result, figures = report_run
  folder = out / "mnist"
  for name in ("fig1_sequences", "fig2_by_epoch", "fig3_by_cutoff", "fig4_by_oscillate",
               "fig5_optimal", "lr_curves"):
    _png_ok(folder / f"{name}.png")
  assert len(result["mnist"]["figures"]) == 6
  _, names, history = _engine_history(folder)
  # Figure 1: r_n of the four sequences, n = 1..50 (seq1 = r0 / n, seq3 = 0.9^n r0).
  fig1 = lines(figures["fig1_sequences.png"])
  n = np.arange(1, 51)
  np.testing.assert_array_equal(fig1["seq1"].x, n)
  np.testing.assert_allclose(fig1["seq1"].y, 0.01 / n, rtol=1e-5)
  np.testing.assert_allclose(fig1["seq3"].y, 0.01 * 0.9 ** n, rtol=1e-5)
  # Figures 2-4: validation accuracy per epoch of each sequence, both panels.
  for strategy, fig in (("By Epoch", "fig2_by_epoch"), ("By Cutoff", "fig3_by_cutoff"),
                        ("By Oscillate", "fig4_by_oscillate")):
    for panel in ("(a)", "(b)"):
      drawn = lines(figures[f"{fig}.png"], panel)
      assert sorted(drawn) == ["seq1", "seq2", "seq3", "seq4"], (fig, panel)
      for seq, line in drawn.items():
        np.testing.assert_array_equal(line.x, [1, 2])
        np.testing.assert_allclose(line.y, history["valid_acc"][:, names.index(
            f"{strategy} {seq}")], err_msg=f"{fig} {seq}")
  fig5 = lines(figures["fig5_optimal.png"], "(a)")
  np.testing.assert_allclose(fig5["SGD 0.001 (benchmark)"].y,
                             history["valid_acc"][:, names.index("SGD")])
  # The rate in use per epoch, per strategy panel.
  for strategy in ("By Epoch", "By Cutoff", "By Oscillate"):
    drawn = lines(figures["lr_curves.png"], strategy)
    for i in range(1, 5):
      np.testing.assert_allclose(drawn[f"seq{i}"].y,
                                 history["lr"][:, names.index(f"{strategy} seq{i}")])


def test_report_optimal_settings_from_the_reports_table(report_run):
  """The report's own picks, recomputed from Table 1 (its text says the same, except
  for By Oscillate's accuracy, where Table 1 has seq4 ahead of seq3)."""
  module, _, result, _ = report_run
  picks = result["mnist"]["info"]["optimal_report"]
  assert picks["By Epoch"] == {"fastest": "By Epoch seq3", "most_accurate": "By Epoch seq4"}
  assert picks["By Cutoff"] == {"fastest": "By Cutoff seq4",
                                "most_accurate": "By Cutoff seq4"}
  assert picks["By Oscillate"]["fastest"] == "By Oscillate seq3"
  assert result["mnist"]["info"]["overall_report"] == {"fastest": "By Epoch seq3",
                                                       "most_accurate": "By Cutoff seq4"}


def test_keras_writes_tables_with_all_8_methods(keras_run):
  module, out, result, figures = keras_run
  for name in ("results.json", "history.csv", "summary.md", "comparison.md",
               "comparison.csv", "comparison.json"):
    assert (out / name).exists(), name
  with (out / "comparison.csv").open() as f:
    rows = list(csv.DictReader(f))
  assert [r["method"] for r in rows] == list(module.METHODS)
  assert len(rows) == 8
  for r in rows:
    acc = float(r["final_valid_acc_mean"])
    assert math.isfinite(acc) and 0.0 <= acc <= 1.0, r
  table = (out / "comparison.md").read_text()
  for method in module.METHODS:
    assert f"| {method}" in table
  payload = json.loads((out / "comparison.json").read_text())
  assert len(payload["rows"]) == 8
  for name in ("fig1-4_schedules", "fig5_schedules", "fig6_adaptive", "fig7_all",
               "lr_curves"):
    _png_ok(out / f"{name}.png")
  engine, names, history = _engine_history(out)
  fig7 = lines(figures["fig7_all.png"])
  assert sorted(fig7) == sorted(module.METHODS)
  for method, line in fig7.items():  # validation accuracy per epoch, from the engine
    np.testing.assert_allclose(line.y, history["valid_acc"][:, names.index(method)],
                               err_msg=method)
  step_lr = np.asarray(engine["step_history"]["step_lr"], float)
  drawn = lines(figures["lr_curves.png"], "schedules")
  for method in module.SCHEDULES:  # the rate of every iteration
    np.testing.assert_allclose(drawn[method].y, step_lr[:, names.index(method)].reshape(-1),
                               atol=1e-7, err_msg=method)  # results.json keeps 7 digits


def test_keras_settings_and_rates_follow_the_article(keras_run):
  """The article's hyperparameters, and the per-epoch rates the engine recorded."""
  module, out, _, _ = keras_run
  engine = json.loads((out / "results.json").read_text())
  variants = {v["name"]: v for v in engine["config"]["variants"]}
  assert variants["Constant lr"]["learning_rate"] == 0.1
  assert variants["Constant lr"]["optimizer"] == "sgd"
  tb = variants["Time-based"]
  assert (tb["sequence"], tb["rule"], tb["learning_rate"]) == ("keras_time_based_decay",
                                                                "step", 0.1)
  assert tb["sequence_kwargs"] == {"decay": pytest.approx(0.1 / 2)}  # lr / epochs
  assert tb["optimizer"] == "momentum" and tb["optimizer_kwargs"] == {"momentum": 0.8}
  step = variants["Step decay"]
  assert (step["sequence"], step["rule"]) == ("keras_step_decay", "epoch")
  assert step["sequence_kwargs"] == {"drop": 0.5, "epochs_drop": 10}
  expo = variants["Exponential decay"]
  assert (expo["sequence"], expo["rule"], expo["sequence_kwargs"]) == (
      "exponential_decay", "epoch", {"k": 0.1})
  assert {n: (variants[n]["optimizer"], variants[n]["learning_rate"]) for n in module.ADAPTIVE} == {
      "Adagrad": ("adagrad", 0.01), "Adadelta": ("adadelta", 1.0),
      "RMSprop": ("rmsprop", 0.001), "Adam": ("adam", 0.001)}

  names = [v["name"] for v in engine["config"]["variants"]]
  lr = engine["history"]["lr"]  # [epochs][variants]: the rate in use at the end of the epoch
  valid_loss = np.asarray(engine["history"]["valid_loss"], float)
  index = engine["history"]["index"]
  formulas = {"Constant lr": lambda n: 0.1,
              "Step decay": lambda n: 0.1 * 0.5 ** math.floor((1 + n) / 10),
              "Exponential decay": lambda n: 0.1 * math.exp(-0.1 * n)}
  for name, formula in formulas.items():
    k = names.index(name)
    for epoch in range(2):
      # By epoch: one advance per boundary whose validation loss was finite (a NaN loss
      # holds the rate, engine contract); "Constant lr" never advances.
      advances = 0 if name == "Constant lr" else int(np.isfinite(valid_loss[:epoch, k]).sum())
      assert index[epoch][k] == advances, (name, epoch)
      assert lr[epoch][k] == pytest.approx(formula(advances), rel=1e-5), (name, epoch)
  # Time-based decay, per iteration: lr / (1 + (lr / epochs) * iterations).
  steps = len(engine["step_history"]["step_lr"][0][0])
  last = engine["step_history"]["step_lr"][1][names.index("Time-based")][-1]
  assert last == pytest.approx(0.1 / (1 + 0.1 / 2 * (2 * steps - 1)), rel=1e-4)
