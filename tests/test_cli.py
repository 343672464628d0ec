"""The command line and the benchmark script, end to end on tiny data."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from lrjax import cli

REPO = Path(__file__).resolve().parents[1]


def test_sweep_then_plot_writes_results_and_figures(tmp_path, capsys):
  out = tmp_path / "sweep"
  assert cli.main(["sweep", "--model", "logistic", "--epochs", "2", "--train-size", "256",
                   "--out", str(out), "--no-progress"]) == 0
  printed = capsys.readouterr().out
  assert "| By Cutoff seq4 |" in printed and "compile" in printed
  payload = json.loads((out / "results.json").read_text())
  assert len(payload["summary"]) == 14
  accs = [row["final_valid_acc"] for row in payload["summary"]]
  assert all(a is not None and 0.0 <= a <= 1.0 for a in accs)
  for name in ("by_epoch.png", "by_cutoff.png", "by_oscillate.png", "all_settings.png"):
    assert (out / name).stat().st_size > 5000, name
  assert (out / "history.csv").read_text().count("\n") == 1 + 2 * 14
  for png in out.glob("*.png"):
    png.unlink()
  assert cli.main(["plot", str(out)]) == 0
  assert (out / "all_settings.png").exists()


def test_sweep_checkpoints_and_resumes_from_the_command_line(tmp_path, capsys):
  args = ["sweep", "--model", "logistic", "--train-size", "256", "--no-progress",
          "--checkpoint-dir", str(tmp_path / "ckpt")]
  assert cli.main(args + ["--epochs", "1", "--out", str(tmp_path / "a")]) == 0
  capsys.readouterr()
  # Same sweep, more epochs: a different config, so the checkpoint is refused, in one line.
  assert cli.main(args + ["--epochs", "2", "--out", str(tmp_path / "b")]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "different sweep" in err[0] and str(tmp_path / "ckpt") in err[0]


def test_missing_dataset_is_one_clear_error(tmp_path, monkeypatch):
  from lrjax.data import DatasetNotFoundError
  monkeypatch.setenv("LRJAX_SOURCE_DIR", str(tmp_path / "nothing"))
  monkeypatch.setenv("LRJAX_DATA_DIR", str(tmp_path / "cache"))
  with pytest.raises(DatasetNotFoundError, match="mnist"):
    cli.main(["sweep", "--dataset", "mnist", "--source-dir", str(tmp_path / "nothing"),
              "--data-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "o")])


def _load_benchmark():
  spec = importlib.util.spec_from_file_location("sweep_benchmark",
                                                REPO / "benchmarks" / "sweep_benchmark.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_benchmark_runs_on_cpu_with_small_sizes(tmp_path):
  bench = _load_benchmark()
  rows = bench.main(["--models", "mnist_cnn", "--train-size", "128", "--ks", "2",
                     "--repeats", "1", "--conv-impls", "xla", "im2col",
                     "--json", str(tmp_path / "bench.json")])
  paths = [r["path"] for r in rows]
  assert any(p.startswith("(2)") for p in paths)
  assert any(p.startswith("(3)") for p in paths)
  assert sum(p.startswith("(4)") for p in paths) == 2
  assert all(r["seconds"] > 0 and np.isfinite(r["seconds"]) for r in rows)
  assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(json.dumps(rows))


def test_readme_python_example_runs():
  import re
  import jax.numpy as jnp
  code = re.search(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
  scope = {"params": {"w": jnp.ones(3)}, "grads": {"w": jnp.ones(3)},
           "valid_loss": jnp.float32(1.0)}
  exec(code, scope)  # noqa: S102 - the README's own example
  # By cutoff: the first observed loss only sets the baseline, so the rate is still r0.
  assert float(scope["lrjax"].strategies.current_lr(scope["state"])) == pytest.approx(0.01)
