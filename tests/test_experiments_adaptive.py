"""Smoke tests of experiments/range_test_one_cycle.py and experiments/adaptive_newton.py.

Both run end to end on synthetic data (CI has no datasets), tiny and short; the
assertions are on the files written and on what they must hold.
"""

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name):
  spec = importlib.util.spec_from_file_location(f"exp_{name}", REPO / "experiments" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses look their module up there
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def range_module():
  return _load("range_test_one_cycle")


@pytest.fixture(scope="module")
def adaptive_module():
  return _load("adaptive_newton")


def test_range_test_one_cycle_quick_synthetic(range_module, tmp_path):
  # (the range-test analysis itself is lrjax.train.range_finder: tests/test_range_test.py)
  out = tmp_path / "rt"
  summary = range_module.main([
      "--quick", "--synthetic", "--datasets", "cifar10", "--model", "logistic",
      "--range-steps", "12", "--grid", "3", "--grid-steps", "6", "--epochs", "1",
      "--train-size", "256", "--cycle-train-size", "128", "--batch-size", "32",
      "--no-progress", "--out", str(out)])
  for name in ("range_test_cifar10.png", "one_cycle.png", "summary.md", "summary.json"):
    assert (out / name).exists(), name
  saved = json.loads((out / "summary.json").read_text())
  rt = saved["range_tests"]["cifar10"]
  assert len(rt["range"]["lr"]) == 12 and rt["range"]["lr"][0] == pytest.approx(1e-4, rel=1e-6)
  assert rt["range"]["lr"][-1] == pytest.approx(10.0, rel=1e-5)
  assert len(rt["vectorized"]["lr"]) == 3
  for who in ("range", "vectorized"):
    for value in rt[who]["suggestions"].values():
      assert 1e-5 <= value <= 10.0 * (1 + 1e-6), (who, value)
  cycle = summary["one_cycle"]
  assert cycle["max_lr"] == pytest.approx(rt["range"]["suggestions"]["minimum"])
  names = [row["name"] for row in cycle["rows"]]
  assert len(names) == 5 and "momentum 0.95-0.85-0.95" in names[0]
  assert 2 * cycle["cycle"]["step_size"] <= cycle["cycle"]["total_steps"]
  # the one cycle's rate is read from the optimizer state: annihilated below max / 10
  assert cycle["rows"][0]["final_lr"] < cycle["max_lr"] / 10
  assert cycle["rows"][3]["final_lr"] == pytest.approx(cycle["max_lr"], rel=1e-6)
  for row in cycle["rows"]:
    assert math.isfinite(row["final_train_loss"]), row
  md = (out / "summary.md").read_text()
  assert "ResNet-56" in md and "vectorized" in md and "One cycle" in md


def test_adaptive_newton_quick_synthetic(adaptive_module, tmp_path):
  out = tmp_path / "an"
  summary = adaptive_module.main([
      "--quick", "--synthetic", "--epochs", "2", "--tasks", "boston", "--newton-eps", "1e-5,1e-2",
      "--no-progress",
      "--out", str(out)])
  for name in ("summary.md", "summary.json", "per_epoch.csv", "boston_lr0.01.png",
               "boston_lr0.1.png", "eta_boston.png", "sec5_1_restart.png",
               "sec5_4_adam.png", "boston/lr0.01/results.json", "boston/restart/results.json"):
    assert (out / name).exists(), name
  rows = summary["runs"][0]["rows"]
  methods = {(r["sweep"], r["method"]) for r in rows}
  for rate in ("lr0.01", "lr0.1"):
    for m in ("SGD", "Newton eps=1e-05 (paper)", "Newton eps=0.01", "HD-SGD"):
      assert (rate, m) in methods, (rate, m)
  for m in ("Adam 1e-3", "DoG", "Prodigy", "Mechanic"):
    assert ("lr0.01", m) in methods, m
  assert any(s == "restart" and m.startswith("Newton eps=0.01 restart") for s, m in methods)
  for r in rows:
    if r["method"] in ("SGD", "Adam 1e-3") or r["method"].startswith("Newton"):
      assert r["final_train_loss"] is not None and math.isfinite(r["final_train_loss"]), r
    if r["method"].startswith(("Newton", "HD-SGD")):  # the learned eta is recorded
      assert r["final_eta"] is not None and r["final_eta"] > 0, r
    assert r["seconds_per_epoch"] is not None and r["seconds_per_epoch"] > 0, r
  # The restart starts at the eta the first run's Newton converged to (median of the
  # last epoch's per-step eta).
  first = json.loads((out / "boston" / "lr0.01" / "results.json").read_text())
  k = [v["name"] for v in first["config"]["variants"]].index("Newton eps=0.01")
  converged = float(np.median(np.asarray(first["step_history"]["step_lr"])[-1, k]))
  restart = next(r for r in rows if r["method"].startswith("Newton eps=0.01 restart"))
  assert restart["initial_lr"] == pytest.approx(converged, rel=1e-4)
  with (out / "per_epoch.csv").open() as f:
    table = list(csv.DictReader(f))
  assert {"eta", "group_seconds", "test_loss"} <= set(table[0])
  newton = [t for t in table if t["method"] == "Newton eps=0.01" and t["sweep"] == "lr0.01"]
  assert len(newton) == 2 and all(float(t["eta"]) > 0 for t in newton)
  md = (out / "summary.md").read_text()
  assert "Section 5.1" in md and "Section 5.4" in md
