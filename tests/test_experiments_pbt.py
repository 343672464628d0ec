"""Smoke test of experiments/pbt_schedules.py (PBT vs the report's schedules) on
synthetic data: one search of 4 members, its best member's schedule retrained by plain
optax, the comparison written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))


def test_quick_run_writes_the_comparison(tmp_path, capsys):
  import pbt_schedules
  out = tmp_path / "pbt"
  results = pbt_schedules.main(["--quick", "--synthetic", "--dataset", "mnist", "--epochs",
                                "3", "--train-size", "256", "--test-size", "64", "--out",
                                str(out), "--no-progress", "--population", "4"])
  folder = out / "mnist"
  (row,) = results["mnist"]["rows"]
  assert (folder / "schedules.png").stat().st_size > 0
  payload = json.loads((folder / "comparison.json").read_text())
  assert payload["rows"][0]["member"] == row["member"]
  # The retrained schedule is the member's line, replayed from the same start: where
  # the line copied no state it is the member's run itself.
  if row["lineage_copies"] == 0:
    np.testing.assert_allclose(row["retrain_valid_acc"], row["search_valid_acc"], atol=1e-6)
  saved = json.loads((folder / "seed_0" / "results.json").read_text())
  assert np.asarray(saved["history"]["parent"]).shape == (3, 4)
  text = (folder / "comparison.md").read_text()
  assert "retrained by plain optax" in text and "report's best designed schedule" in text
  assert "PBT best member" in capsys.readouterr().out


def test_both_datasets_find_the_report_runs_they_compare_with():
  # The committed runs live in report_<dataset>_full; a folder named otherwise
  # (report_cifar_full once) silently dropped the designed schedules from the table.
  import pbt_schedules
  for name in ("mnist", "cifar10"):
    rows = pbt_schedules.report_rows(name)
    assert rows, name
