"""The command line end to end on tiny data (the benchmark: tests/test_benchmark.py)."""

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


def test_sweep_checkpoints_and_resumes_from_the_command_line(tmp_path):
  args = ["sweep", "--model", "logistic", "--train-size", "256", "--no-progress",
          "--checkpoint-dir", str(tmp_path / "ckpt")]
  cli.main(args + ["--epochs", "1", "--out", str(tmp_path / "a")])
  # Same sweep, more epochs: a different config, so the checkpoint is refused.
  with pytest.raises(ValueError, match="different sweep"):
    cli.main(args + ["--epochs", "2", "--out", str(tmp_path / "b")])


def test_missing_dataset_is_one_clear_error(tmp_path, monkeypatch):
  from lrjax.data import DatasetNotFoundError
  monkeypatch.setenv("LRJAX_SOURCE_DIR", str(tmp_path / "nothing"))
  monkeypatch.setenv("LRJAX_DATA_DIR", str(tmp_path / "cache"))
  with pytest.raises(DatasetNotFoundError, match="mnist"):
    cli.main(["sweep", "--dataset", "mnist", "--source-dir", str(tmp_path / "nothing"),
              "--data-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "o")])


def test_readme_python_example_runs():
  import re
  import jax.numpy as jnp
  code = re.search(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
  scope = {"params": {"w": jnp.ones(3)}, "grads": {"w": jnp.ones(3)},
           "valid_loss": jnp.float32(1.0)}
  exec(code, scope)  # noqa: S102 - the README's own example
  # By cutoff: the first observed loss only sets the baseline, so the rate is still r0.
  assert float(scope["lrjax"].strategies.current_lr(scope["state"])) == pytest.approx(0.01)
