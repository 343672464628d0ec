"""The command line end to end on tiny data (the benchmark: tests/test_benchmark.py)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from lrjax import cli
from lrjax.data import by_name

REPO = Path(__file__).resolve().parents[1]


ARGS = ["sweep", "--model", "logistic", "--epochs", "2", "--train-size", "256", "--no-progress"]


@pytest.fixture(scope="module")
def direct_run():
  """The CLI's default sweep, run through the library directly."""
  from lrjax.train import SweepConfig, report_variants, run_sweep
  dataset = by_name.load("synthetic", train_size=256)
  config = SweepConfig(model="logistic", variants=report_variants(0.01, 0.001, (0,)),
                       epochs=2, batch_size=64)
  return run_sweep(config, dataset, progress=False)


def _assert_same_history(payload, direct):
  assert [v["name"] for v in payload["config"]["variants"]] == direct.names
  for field in ("train_loss", "valid_loss", "valid_acc", "test_acc", "lr", "index"):
    np.testing.assert_allclose(np.asarray(payload["history"][field], float),
                               direct.history[field], rtol=1e-5, atol=1e-6, err_msg=field)
  np.testing.assert_allclose(np.asarray(payload["step_history"]["step_loss"], float),
                             direct.step_history["step_loss"], rtol=1e-5, atol=1e-6)


def test_sweep_then_plot_writes_the_library_results_and_plots_them(tmp_path, capsys,
                                                                    direct_run):
  from figures import capture_figures, lines
  out = tmp_path / "sweep"
  with capture_figures() as figures:
    assert cli.main(ARGS + ["--out", str(out), "--tensorboard", str(tmp_path / "tb")]) == 0
  printed = capsys.readouterr().out
  assert "| By Cutoff seq4 |" in printed or "| **By Cutoff seq4 (best)** |" in printed
  # In the user's words: what ran, how long, which won, where the results are; the
  # engine's plan (variants per compiled call, MiB per step) only in summary.md.
  best = int(np.argmax([row["final_valid_acc"] for row in direct_run.summary]))
  assert re.search(r"Trained 14 settings \(1 seed each\) of logistic on synthetic_mnist "
                   r"\(\d+ training, \d+ validation examples\) for 2 epochs: \d+ s", printed)
  assert f"Best variant: {direct_run.names[best]}, final validation accuracy" in printed
  assert f"Results in {out.absolute()}: summary.md, results.json" in printed
  assert "compiled call" not in printed and "MiB" not in printed
  assert "per compiled call" in (out / "summary.md").read_text()
  # --tensorboard: one run per variant, read back by TensorBoard's own reader
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  assert len(list((tmp_path / "tb").iterdir())) == 14
  for k, name in enumerate(direct_run.names):
    events = EventAccumulator(str(tmp_path / "tb" / name.replace(" ", "_")))
    events.Reload()
    acc = {e.step: e.value for e in events.Scalars("valid/acc")}
    # step 0: the untrained model, where the curves start; then one step per epoch
    assert acc == pytest.approx({0: direct_run.initial["valid_acc"][k]} | {
        e + 1: direct_run.history["valid_acc"][e, k] for e in range(2)}, rel=1e-6)
    assert {e.step for e in events.Scalars("lr")} == {1, 2}
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
  payload = json.loads((out / "results.json").read_text())
  _assert_same_history(payload, direct_run)
  assert [row["final_valid_acc"] for row in payload["summary"]] == pytest.approx(
      [row["final_valid_acc"] for row in direct_run.summary])
  # A header, the untrained model (epoch 0) and epochs 1-2, for each of the 14 settings.
  assert (out / "history.csv").read_text().count("\n") == 1 + 3 * 14
  assert sorted(figures) == ["all_settings.png", "by_cutoff.png", "by_epoch.png",
                             "by_oscillate.png"]
  names = direct_run.names
  for name, prefix in (("by_epoch.png", "By Epoch"), ("all_settings.png", "")):
    drawn = lines(figures[name], "valid acc")
    assert sorted(drawn) == sorted(n for n in names if n.startswith(prefix))
    for label, line in drawn.items():
      # Epoch 0 is the untrained model (result.initial), then epochs 1 and 2.
      k = names.index(label)
      np.testing.assert_array_equal(line.x, [0, 1, 2])
      np.testing.assert_allclose(line.y, [direct_run.initial["valid_acc"][k],
                                          *direct_run.history["valid_acc"][:, k]])
  rates = lines(figures["by_epoch.png"], "lr")
  np.testing.assert_allclose(rates["By Epoch seq3"].y, [0.01, 0.009], rtol=1e-6)
  # `lrjax plot` redraws the same data from results.json.
  for png in out.glob("*.png"):
    png.unlink()
  with capture_figures() as replotted:
    assert cli.main(["plot", str(out)]) == 0
  for name in figures:
    assert (out / name).exists()
    for a, b in zip(figures[name], replotted[name], strict=True):
      assert a.label == b.label and a.axes == b.axes
      np.testing.assert_allclose(a.y, b.y, rtol=1e-6)


def test_sweep_interrupted_from_the_command_line_resumes_to_the_same_results(
    tmp_path, monkeypatch, capsys, direct_run):
  from lrjax.train.runner import checkpoint
  args = ARGS + ["--checkpoint-dir", str(tmp_path / "ckpt"), "--out", str(tmp_path / "a")]
  save = checkpoint.SweepCheckpointer.save

  def save_then_stop(self, epoch, tree):
    save(self, epoch, tree)
    if epoch == 1:
      raise KeyboardInterrupt  # the process is stopped after epoch 1's checkpoint

  monkeypatch.setattr(checkpoint.SweepCheckpointer, "save", save_then_stop)
  capsys.readouterr()
  assert cli.main(args) == 130  # one line naming the command that resumes, no traceback
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("lrjax: interrupted; resume from the last "
                                             "checkpoint with: ")
  assert (err[0].endswith(" -m lrjax " + " ".join(args))
          or err[0].endswith("lrjax " + " ".join(args)))
  assert not (tmp_path / "a" / "results.json").exists()
  monkeypatch.setattr(checkpoint.SweepCheckpointer, "save", save)
  assert cli.main(args) == 0
  payload = json.loads((tmp_path / "a" / "results.json").read_text())
  assert payload["epoch_seconds"][0] is None and payload["epoch_seconds"][1] > 0  # resumed
  _assert_same_history(payload, direct_run)
  # Same sweep, more epochs: the finished run is extended from its checkpoint.
  capsys.readouterr()
  assert cli.main(ARGS[:4] + ["3"] + ARGS[5:] + ["--checkpoint-dir", str(tmp_path / "ckpt"),
                                                 "--out", str(tmp_path / "b")]) == 0
  assert (f"lrjax: resumed from epoch 2 of 3 (checkpoint {tmp_path / 'ckpt'})"
          in capsys.readouterr().err)
  extended = json.loads((tmp_path / "b" / "results.json").read_text())
  assert len(extended["history"]["valid_acc"]) == 3
  np.testing.assert_allclose(np.asarray(extended["history"]["valid_acc"][:2], float),
                             direct_run.history["valid_acc"], rtol=1e-5, atol=1e-6)
  # Another batch size is another sweep: refused in one line saying what differs.
  assert cli.main(ARGS + ["--batch-size", "32", "--checkpoint-dir", str(tmp_path / "ckpt"),
                          "--out", str(tmp_path / "c")]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "different sweep" in err[0] and str(tmp_path / "ckpt") in err[0]
  assert "batch_size: 32 here, 64 there" in err[0]


def test_missing_or_other_datasets_files_are_one_line_exit_2(tmp_path, monkeypatch, capsys):
  (tmp_path / "empty").mkdir()
  monkeypatch.setenv("LRJAX_SOURCE_DIR", str(tmp_path / "empty"))
  monkeypatch.setenv("LRJAX_DATA_DIR", str(tmp_path / "cache"))
  assert cli.main(["sweep", "--dataset", "mnist", "--source-dir", str(tmp_path / "empty"),
                   "--data-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "o")]) == 2
  line = _one_line_error(capsys, "--source-dir")
  assert "no mnist files there (missing train-images-idx3-ubyte.gz" in line
  # MNIST's files given for CIFAR-10: named as such, with the flag that fixes it
  mnist = tmp_path / "mnist_files"
  mnist.mkdir()
  for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
    (mnist / f"{stem}.gz").write_bytes(b"")
  assert cli.main(["sweep", "--dataset", "cifar10", "--source-dir", str(mnist),
                   "--data-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "o")]) == 2
  line = _one_line_error(capsys, "--source-dir")
  assert f"--source-dir {mnist}: no cifar10 files there" in line
  assert "it holds the files of mnist or fashion_mnist: use --dataset mnist" in line
  assert not (tmp_path / "o").exists()


def test_no_checkpoint_refuses_to_overwrite_another_runs_results(tmp_path, capsys,
                                                                  monkeypatch):
  import lrjax.train
  def no_training(*args, **kwargs):
    raise AssertionError("the run must be refused before training")
  monkeypatch.setattr(lrjax.train, "run_sweep", no_training)  # what the CLI calls
  out = tmp_path / "earlier"
  out.mkdir()
  (out / "results.json").write_text("{}")
  assert cli.main(ARGS + ["--no-checkpoint", "--out", str(out)]) == 2
  line = _one_line_error(capsys, "--out")
  assert f"--out {out}: {out} already holds a sweep's results (results.json)" in line
  assert "give another folder or delete them first" in line
  assert (out / "results.json").read_text() == "{}"


def _one_line_error(capsys, flag: str) -> str:
  captured = capsys.readouterr()
  err = captured.err.strip().splitlines()
  assert len(err) == 1, captured.err
  assert re.match(r"lrjax( sweep)?: error: ", err[0]) and flag in err[0], err[0]
  assert "Traceback" not in captured.err
  return err[0]


@pytest.mark.parametrize("flags, flag, says", [
    (["--epochs", "0"], "--epochs", "at least 1"),
    (["--batch-size", "0"], "--batch-size", "at least 1"),
    (["--batch-size", "300", "--train-size", "256"], "--batch-size", "256 training"),
    (["--batch-size", "5000"], "--batch-size", "training examples"),
    (["--train-size", "0"], "--train-size", "at least 1"),
    (["--validation-fraction", "1.5"], "--validation-fraction", "between 0 and 1"),
    (["--validation-fraction", "0"], "--validation-fraction", "between 0 and 1"),
    (["--validation-fraction", "0.0001"], "--validation-fraction", "no validation"),
    (["--seeds", "0"], "--seeds", "at least 1"),
    (["--r0", "-0.1"], "--r0", "positive"),
    (["--benchmark-lr", "nan"], "--benchmark-lr", "positive"),
    (["--tolerance", "-1"], "--tolerance", "at least 0"),
    (["--checkpoint-every", "-1"], "--checkpoint-every", "at least 0"),
    (["--concurrent-calls", "-1"], "--concurrent-calls", "at least 0"),
    (["--source-dir", "/no/such/folder"], "--source-dir", "not a folder"),
])
def test_bad_flag_values_are_one_line_naming_the_flag_and_exit_2(tmp_path, capsys, monkeypatch,
                                                                 flags, flag, says):
  from lrjax.train import api as sweep
  def no_training(*args, **kwargs):
    raise AssertionError("a bad flag must be refused before training")
  monkeypatch.setattr(sweep, "run_sweep", no_training)
  monkeypatch.setattr("lrjax.train.run_sweep", no_training)
  assert cli.main(["sweep", "--no-progress", "--out", str(tmp_path / "o")] + flags) == 2
  assert says in _one_line_error(capsys, flag)
  assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags, flag", [
    (["--epochs", "two"], "--epochs"), (["--model", "gpt"], "--model"),
    (["--dataset", "imagenet"], "--dataset"), (["--conv-impl", "fft"], "--conv-impl"),
    (["--no-such-flag"], "--no-such-flag"),
])
def test_unparsable_flags_are_one_line_naming_the_flag_and_exit_2(capsys, flags, flag):
  with pytest.raises(SystemExit) as exit_:
    cli.main(["sweep"] + flags)
  assert exit_.value.code == 2
  _one_line_error(capsys, flag)


def test_calls_at_once_on_several_devices_are_refused_naming_the_flag(tmp_path, capsys,
                                                                    monkeypatch):
  """Variants sharded over devices run one call at a time (lrjax.train.engine.plan)."""
  import jax

  from lrjax.train import api as sweep
  def no_training(*args, **kwargs):
    raise AssertionError("a bad flag must be refused before training")
  monkeypatch.setattr(sweep, "run_sweep", no_training)
  monkeypatch.setattr("lrjax.train.run_sweep", no_training)
  monkeypatch.setattr(jax, "devices", lambda *a: ["device 0", "device 1"])
  argv = ["sweep", "--no-progress", "--out", str(tmp_path / "o"), "--concurrent-calls", "2"]
  assert cli.main(argv) == 2
  assert "must be 0 or 1 when the variants are sharded over 2 devices" in _one_line_error(
      capsys, "--concurrent-calls")
  assert not (tmp_path / "o").exists()


def test_library_errors_are_reported_with_the_flag_names():
  from lrjax.errors import ArgumentError
  from lrjax.train import SweepConfig, report_variants
  with pytest.raises(ArgumentError) as err:
    SweepConfig(model="logistic", variants=report_variants(), eval_batch_size=-1)
  assert err.value.argument == "eval_batch_size"
  usage = cli._flag_error(err.value)
  assert str(usage) == f"--eval-batch-size {err.value.problem}"
  assert "`eval_batch_size`" not in str(usage)
  # An argument no flag sets keeps its own name.
  other = ArgumentError("sequence_kwargs", "must be a dict, got 3.")
  assert str(cli._flag_error(other)) == "`sequence_kwargs` must be a dict, got 3."


def test_a_bug_inside_a_file_run_is_not_a_user_error(tmp_path, monkeypatch):
  """Only lrjax's own checks (`lrjax.errors.UsageError`) become one-line errors: a plain
  ValueError from inside the run (a bug) keeps its traceback, whatever its message."""
  from lrjax.train import api
  path = tmp_path / "sweep.toml"
  path.write_text("epochs = 1\n[data]\ntrain_size = 128\n[model]\nname = 'logistic'\n"
                  "[optimizer]\nlearning_rate = 0.1\n")

  def broken(*args, **kwargs):
    raise ValueError("`learning_rate` looks like a check's message, but is a bug")
  monkeypatch.setattr(api, "run", broken)
  with pytest.raises(ValueError, match="is a bug"):
    cli.main(["sweep", "--config", str(path), "--no-progress", "--out", str(tmp_path / "o")])


def _sweep_parser():
  import argparse
  parser = cli._parser()
  sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
  return sub.choices["sweep"]


def test_help_shows_every_options_default_and_choices(capsys):
  with pytest.raises(SystemExit) as exit_:
    cli.main(["sweep", "--help"])
  assert exit_.value.code == 0
  out = capsys.readouterr().out
  text = " ".join(out.split())  # argparse wraps lines
  # An option's entry starts on a line indented by two spaces and a dash.
  entries = {}
  for entry in re.split(r"\n(?=  -)", out[out.index("options:"):])[1:]:
    entries[entry.split()[0].rstrip(",")] = " ".join(entry.split())
  options = [a for a in _sweep_parser()._actions if a.option_strings and a.dest != "help"]
  assert len(options) >= 20
  for action in options:
    block = entries[action.option_strings[0]]
    assert f"(default: {action.default})" in block, action.dest
    if action.choices:
      assert "{" + ",".join(map(str, action.choices)) + "}" in block, action.dest
  assert "--model {" in text and "logistic" in text


def test_version(capsys):
  import lrjax
  with pytest.raises(SystemExit) as exit_:
    cli.main(["--version"])
  assert exit_.value.code == 0
  assert capsys.readouterr().out.strip() == f"lrjax {lrjax.__version__}"


def test_readme_python_example_runs():
  import re

  import jax.numpy as jnp
  code = re.search(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
  scope = {"params": {"w": jnp.ones(3)}, "grads": {"w": jnp.ones(3)},
           "valid_loss": jnp.float32(1.0)}
  exec(code, scope)  # noqa: S102 - the README's own example
  # By cutoff: the first observed loss only sets the baseline, so the rate is still r0.
  assert float(scope["lrjax"].strategies.current_lr(scope["state"])) == pytest.approx(0.01)


def test_the_dataset_choices_and_default_models_come_from_lrjax_data():
  sweep = {a.dest: a for a in _sweep_parser()._actions}
  assert tuple(sweep["dataset"].choices) == by_name.NAMES
  for name in by_name.NAMES:
    assert f"{name}: {by_name.default_model(name)}" in sweep["model"].help
