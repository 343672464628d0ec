"""benchmarks/sweep_benchmark.py: its commands run, its rows are complete (no timing
is asserted: speed claims live in the benchmark's output, not in tests)."""

import builtins
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
  spec = importlib.util.spec_from_file_location("sweep_benchmark",
                                                REPO / "benchmarks" / "sweep_benchmark.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_every_documented_command_parses(bench):
  commands = bench.example_commands()
  assert len(commands) == 3
  for argv in commands:
    bench.parser().parse_args(argv)  # SystemExit (a test failure) on a bad flag
  with pytest.raises(SystemExit):
    bench.main(["--train-size", "8", "--batch-size", "64"])


def test_cpu_smoke_command_prints_every_row(bench, tmp_path, capsys):
  argv = bench.example_commands()[-1] + ["--json", str(tmp_path / "bench.json")]
  rows = bench.main(argv)
  out = capsys.readouterr().out
  table = [r for r in rows if "seconds_per_model_epoch" in r]
  assert [r["row"][:3] for r in table] == ["(2)", "(3)", "(4)", "(5)", "(5)", "(5)"]
  assert "(1) PyTorch eager: skipped (--no-torch)" in out
  for r in table:
    assert r["seconds_per_model_epoch"] > 0 and np.isfinite(r["vs_best_single"])
    assert r["vs_torch"] is None
  assert max(r["vs_best_single"] for r in table[:2]) == pytest.approx(1.0)
  forced = {r["row"]: r["plans"] for r in table if r["row"].startswith("(5)")}
  assert [p[0]["variants_per_call"] for p in forced.values()] == [1, 1, 13]  # SGD group
  assert [p[0]["concurrent_calls"] for p in forced.values()][0] == 1  # 1:1, one at a time
  assert "check: auto plan vs 1 per call, 1 at once" in out
  assert "lrjax rows are steady-state epochs (epoch 2 of 2)" in out
  assert "estimate of the full Table 1 run" in out
  assert f"({bench.cpu_model()})" in out and "cores)" in out  # the CPU model is recorded
  assert all(bench.cpu_model() in r["device"] for r in rows if "device" in r)
  assert any(r["row"] == "gemm peak" and r["gflops"] > 0 for r in rows)
  assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(json.dumps(rows))


def test_pytorch_row_is_skipped_without_torch(bench, monkeypatch):
  real_import = builtins.__import__

  def no_torch(name, *args, **kwargs):
    if name == "torch" or name.startswith("torch."):
      raise ImportError("no torch here")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_torch)
  ds = bench.make_dataset("mnist_cnn", 64)
  assert bench.torch_epoch_fn("mnist_cnn", ds, 32, 200, 1) is None


def test_dataset_keeps_table1_proportions(bench):
  ds = bench.make_dataset("cifar_cnn", 5400)
  assert (len(ds.train_x), len(ds.valid_x), len(ds.test_x)) == (5400, 600, 1000)
  assert ds.train_x.shape[1:] == (32, 32, 3) and ds.task == "classification"


def test_search_benchmark_smoke_prints_every_row_and_its_targets(tmp_path, capsys):
  import importlib
  import sys
  sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
  search_bench = importlib.import_module("search_benchmark")
  table = search_bench.main(["--models", "tiny", "--train-size", "256", "--valid-size", "64",
                             "--rounds", "1", "--epochs", "3", "--grid", "3", "2",
                             "--population", "4", "--at-once", "3", "--no-torch",
                             "--json", str(tmp_path / "search.json")])
  out = capsys.readouterr().out
  rows = [r["row"] for r in table]
  assert rows == ["lrjax grid", "lrjax random", "lrjax halving", "lrjax hyperband",
                  "lrjax pbt", "lrjax optuna median", "lrjax optuna halving",
                  "optuna+jit median", "optuna+jit halving"]
  grid = table[0]
  assert grid["model_epochs"] == 6 * 3  # 6 configurations, 3 epochs each
  halving = table[2]
  assert halving["model_epochs"] < grid["model_epochs"]  # it stopped some
  for r in table:
    assert 0 <= r["best_valid_acc"] <= 1 and r["seconds"] > 0
  assert "target: lrjax halving within 0.3 points" in out
  assert json.loads((tmp_path / "search.json").read_text()) == json.loads(json.dumps(table))
