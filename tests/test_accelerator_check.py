"""tools/accelerator_check.py: its tolerances decide, and it runs end to end on the CPU
(no accelerator here: ``--allow-cpu`` compares the CPU with itself)."""

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "accelerator_check.py"


@pytest.fixture(scope="module")
def check():
  spec = importlib.util.spec_from_file_location("accelerator_check", TOOL)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _run(epochs=2):
  history = {"lr": [[0.1, 0.05]] * epochs, "train_loss": [[2.0, 1.5]] * epochs,
             "valid_loss": [[1.8, 1.4]] * epochs, "test_loss": [[1.9, 1.45]] * epochs,
             "valid_acc": [[0.5, 0.6]] * epochs, "test_acc": [[0.45, 0.55]] * epochs}
  return {"history": history, "valid_size": 100, "test_size": 200}


def _changed(run, field, value):
  other = copy.deepcopy(run)
  other["history"][field][-1][0] = value
  return other


def test_numbers_within_the_tolerances_pass_and_beyond_them_fail(check):
  cpu = _run()
  assert check.compare(cpu, copy.deepcopy(cpu)) == (True, {f: 0.0 for f in check.FIELDS})
  assert check.compare(cpu, _changed(cpu, "train_loss", 2.0 * (1 + 1e-3)))[0]
  ok, worst = check.compare(cpu, _changed(cpu, "valid_loss", 1.8 * (1 + 1e-2)))
  assert not ok and worst["valid_loss"] == pytest.approx(0.018)
  assert check.compare(cpu, _changed(cpu, "valid_acc", 0.52))[0]  # 2 of 100 examples
  assert not check.compare(cpu, _changed(cpu, "valid_acc", 0.53))[0]  # 3 of 100
  assert check.compare(cpu, _changed(cpu, "test_acc", 0.46))[0]  # 2 of 200
  assert not check.compare(cpu, _changed(cpu, "lr", 0.1 * (1 + 1e-5)))[0]
  assert not check.compare(cpu, _changed(cpu, "lr", float("nan")))[0]  # one side NaN
  assert check.compare(_changed(cpu, "lr", float("nan")), _changed(cpu, "lr", float("nan")))[0]
  shorter = _run(epochs=1)
  assert not check.compare(cpu, shorter)[0]


def test_it_runs_on_the_cpu_and_says_when_there_is_nothing_to_compare(tmp_path):
  small = ["--epochs", "1", "--train-size", "300", "--model", "logistic"]
  refused = subprocess.run([sys.executable, str(TOOL), *small], capture_output=True,
                           text=True, timeout=600)
  assert refused.returncode == 2 and "default backend here is the CPU" in refused.stderr
  out = tmp_path / "check.json"
  proc = subprocess.run([sys.executable, str(TOOL), *small, "--allow-cpu", "--json", str(out)],
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip().splitlines()[-1] == "PASS"
  record = json.loads(out.read_text())
  assert record["pass"] and record["cpu"] == record["other"] == "cpu"
  assert set(record["largest_difference"]) == set(
      ["lr", "train_loss", "valid_loss", "test_loss", "valid_acc", "test_acc"])
