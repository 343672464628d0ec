"""Runs that never mislead and lose nothing: identity of the data on resume, extension of a
finished run, checkpoints on by default, SIGINT / SIGTERM, one run per folder.

Each test trains a tiny logistic sweep (two variants, one compiled group) so it takes
seconds; the signal tests run the command line in a subprocess and send real signals.
"""

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import flax.linen as nn
import numpy as np
import optax
import pytest

import lrjax
from lrjax import cli, data
from lrjax.train import SweepConfig, Variant, run_sweep
from lrjax.train.runner import checkpoint as ckpt


def _identity(config):
  """The run identity a `run_sweep` of ``config`` records (its sweep_config.json)."""
  from lrjax.train import api
  from lrjax.train.frontends import presets
  return api.run_identity(presets.report_preset(config))


REPO = Path(__file__).resolve().parents[1]
FIELDS = ("train_loss", "valid_loss", "valid_acc", "test_acc", "lr", "index", "nonfinite")
VARIANTS = (Variant("seq1 epoch", "seq1", "epoch", 0.5),
            Variant("seq3 oscillate", "seq3", "oscillate", 0.5))
CLI_ARGS = ["sweep", "--model", "logistic", "--train-size", "256", "--no-progress"]


def _config(epochs):
  return SweepConfig(model="logistic", variants=VARIANTS, epochs=epochs, batch_size=32)


@pytest.fixture(scope="module")
def small():
  return data.synthetic("tiny", num_train=320, num_test=100, seed=0)


@pytest.fixture(scope="module")
def straight6(small):
  return run_sweep(_config(6), small, progress=False)


def _assert_close(a, b, epochs=None):
  for field in FIELDS:
    np.testing.assert_allclose(a.history[field][:epochs], b.history[field][:epochs],
                               rtol=1e-6, atol=1e-6, err_msg=field)
  np.testing.assert_allclose(a.step_history["step_loss"][:epochs],
                             b.step_history["step_loss"][:epochs], rtol=1e-6, atol=1e-6)


# -- the data's identity --------------------------------------------------------------------

def test_data_identity_fingerprints_every_split_and_its_provenance(small):
  base = ckpt.data_identity(small, train_size=None, validation_fraction=0.1)
  assert base["dataset"] == small.name and len(base["fingerprint"]) == 64
  assert base == ckpt.data_identity(small, validation_fraction=0.1)  # None is dropped
  assert "train_size" not in base and base["validation_fraction"] == 0.1
  one_label = small._replace(test_y=small.test_y.copy())
  one_label.test_y[0] = (one_label.test_y[0] + 1) % 10
  assert ckpt.data_identity(one_label)["fingerprint"] != ckpt.data_identity(small)["fingerprint"]
  other_dtype = small._replace(train_x=small.train_x.astype(np.float64))
  assert (ckpt.data_identity(other_dtype)["fingerprint"]
          != ckpt.data_identity(small)["fingerprint"])


def test_checkpoint_of_one_dataset_is_refused_for_another_in_one_line(small, tmp_path):
  folder = tmp_path / "ckpt"
  run_sweep(_config(2), small, checkpoint_dir=folder, progress=False)
  other = data.synthetic("tiny", num_train=320, num_test=100, seed=1)._replace(name="other")
  with pytest.raises(ckpt.DifferentSweepError) as info:
    run_sweep(_config(2), other, checkpoint_dir=folder, progress=False)
  message = str(info.value)
  fp_then = ckpt.data_identity(small)["fingerprint"][:12]
  fp_now = ckpt.data_identity(other)["fingerprint"][:12]
  assert "\n" not in message
  assert (f"checkpoint directory {folder} was written for dataset {small.name} "
          f"(fingerprint {fp_then}), this run has dataset other (fingerprint {fp_now})"
          in message), message
  # The same name with other arrays (a different subset) is refused too, naming the subset.
  fewer = small._replace(train_x=small.train_x[:-32], train_y=small.train_y[:-32])
  with pytest.raises(ckpt.DifferentSweepError, match=r"fingerprint \w{12}, no train_size\), this "
                     r"run has .*train_size 224\)"):
    run_sweep(_config(2), fewer, checkpoint_dir=folder, progress=False,
              data_provenance={"train_size": 224})
  # Nothing was overwritten by the refusals: the original data still resumes.
  assert run_sweep(_config(2), small, checkpoint_dir=folder, progress=False).history[
      "valid_acc"].shape == (2, 2)


def test_cli_refuses_a_checkpoint_of_other_data_in_one_line(tmp_path, capsys):
  out = tmp_path / "out"
  assert cli.main(CLI_ARGS + ["--epochs", "1", "--out", str(out)]) == 0
  capsys.readouterr()
  code = cli.main(CLI_ARGS[:-3] + ["--train-size", "200", "--no-progress", "--epochs", "1",
                                   "--out", str(out)])
  err = capsys.readouterr().err
  assert code == 1
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith(f"lrjax: error: checkpoint directory {out / 'checkpoints'} was "
                             "written for dataset synthetic_mnist (fingerprint ")
  assert "train_size 256), this run has dataset synthetic_mnist" in lines[0]
  assert "train_size 200)" in lines[0] and "Traceback" not in err


def test_cli_refuses_another_sweep_saying_what_differs(tmp_path, capsys):
  out = tmp_path / "out"
  assert cli.main(CLI_ARGS + ["--epochs", "1", "--out", str(out)]) == 0
  capsys.readouterr()
  assert cli.main(CLI_ARGS + ["--epochs", "1", "--batch-size", "32", "--out", str(out)]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "different sweep" in err[0]
  assert "batch_size: 32 here, 64 there" in err[0]


# -- resuming and extending -----------------------------------------------------------------

def test_four_epochs_then_six_equals_six_straight(small, straight6, tmp_path, capfd):
  folder = tmp_path / "ckpt"
  four = run_sweep(_config(4), small, checkpoint_dir=folder, progress=False)
  assert "resumed" not in capfd.readouterr().err
  _assert_close(four, straight6, epochs=4)
  six = run_sweep(_config(6), small, checkpoint_dir=folder, progress=False)
  err = capfd.readouterr().err.strip().splitlines()
  assert err == [f"lrjax: resumed from epoch 4 of 6 (checkpoint {folder})"]
  assert six.history["valid_acc"].shape == (6, 2)
  _assert_close(six, straight6)
  assert np.isnan(six.epoch_seconds[:4]).all() and (six.epoch_seconds[4:] > 0).all()
  assert json.loads((folder / ckpt.CONFIG_FILE).read_text())["epochs"] == 6
  # How often to checkpoint is not the run's identity either: the finished run is reused.
  again = run_sweep(dataclasses.replace(_config(6), checkpoint_every=2), small,
                    checkpoint_dir=folder, progress=False)
  assert capfd.readouterr().err.strip() == f"lrjax: resumed from epoch 6 of 6 (checkpoint {folder})"
  _assert_close(again, straight6)
  # Fewer epochs than the checkpoint holds is refused, saying how many it has.
  with pytest.raises(ckpt.DifferentSweepError, match="holds 6 epochs of this sweep but this "
                     "run asks for 5; ask for at least 6"):
    run_sweep(_config(5), small, checkpoint_dir=folder, progress=False)


class DropoutNet(nn.Module):
  """A model whose training draws dropout masks (the logistic preset draws none): a
  resumed run must draw the masks the uninterrupted run drew, epoch for epoch."""

  @nn.compact
  def __call__(self, x, *, train):
    x = nn.relu(nn.Dense(16)(x.reshape((x.shape[0], -1))))
    return nn.Dense(10)(nn.Dropout(0.5, deterministic=not train)(x))


def test_a_dropout_model_resumed_equals_the_uninterrupted_run_exactly(small, tmp_path):
  def go(epochs=3, **kw):
    return lrjax.sweep(DropoutNet(), small, lambda h: optax.sgd(h["learning_rate"], 0.9),
                       {"learning_rate": [0.2, 0.05]}, seeds=(0, 1), epochs=epochs,
                       batch_size=32, progress=False, **kw)

  straight = go()
  folder = tmp_path / "ckpt"

  def stop_after_epoch_1(epoch, history):  # after epoch 1's checkpoint
    if epoch == 0:
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    go(checkpoint_dir=folder, on_epoch_end=stop_after_epoch_1)
  resumed = go(checkpoint_dir=folder)
  assert np.isnan(resumed.epoch_seconds[0]) and (resumed.epoch_seconds[1:] > 0).all()
  for field in ("train_loss", "valid_loss", "valid_acc", "test_loss", "lr"):
    np.testing.assert_array_equal(resumed.history[field], straight.history[field],
                                  err_msg=field)
  np.testing.assert_array_equal(resumed.step_history["step_loss"],
                                straight.step_history["step_loss"])


def test_cli_checkpoints_under_the_output_folder_by_default(tmp_path, capsys):
  out = tmp_path / "out"
  assert cli.main(CLI_ARGS + ["--epochs", "1", "--out", str(out)]) == 0
  assert (out / "checkpoints" / ckpt.CONFIG_FILE).exists()
  assert (out / "checkpoints" / "1" / ckpt.RECORD_FILE).exists()
  capsys.readouterr()
  assert cli.main(CLI_ARGS + ["--epochs", "2", "--out", str(out)]) == 0
  err = capsys.readouterr().err
  assert f"lrjax: resumed from epoch 1 of 2 (checkpoint {out / 'checkpoints'})" in err
  assert json.loads((out / "results.json").read_text())["history"]["valid_acc"].__len__() == 2
  bare = tmp_path / "bare"
  assert cli.main(CLI_ARGS + ["--epochs", "1", "--out", str(bare), "--no-checkpoint"]) == 0
  assert not (bare / "checkpoints").exists()
  with pytest.raises(SystemExit) as info:
    cli.main(CLI_ARGS + ["--no-checkpoint", "--checkpoint-dir", str(bare / "c")])
  assert info.value.code == 2
  assert "--no-checkpoint and --checkpoint-dir" in capsys.readouterr().err


def test_help_documents_the_default_checkpoint_folder(capsys):
  with pytest.raises(SystemExit):
    cli.main(["sweep", "--help"])
  text = " ".join(capsys.readouterr().out.split())
  assert "(None: OUT/checkpoints)" in text and "--no-checkpoint" in text


# -- one run per folder ---------------------------------------------------------------------

def test_a_second_run_on_the_same_folder_is_refused_until_the_first_ends(small, tmp_path):
  folder = tmp_path / "ckpt"
  first = ckpt.SweepCheckpointer(folder, _identity(_config(2)))
  with pytest.raises(ckpt.FolderInUseError,
                     match=f"checkpoint folder {folder} is in use by another run "
                           f"\\(pid {os.getpid()}\\)"):
    run_sweep(_config(2), small, checkpoint_dir=folder, progress=False)
  first.close()
  run_sweep(_config(2), small, checkpoint_dir=folder, progress=False)  # released
  out = tmp_path / "out"
  out.mkdir()
  held = ckpt.FolderLock(out)
  with pytest.raises(ckpt.FolderInUseError, match=f"output folder {out} is in use"):
    run_sweep(_config(1), small, out_dir=out, progress=False)
  held.release()
  run_sweep(_config(1), small, out_dir=out, progress=False)


def test_cli_refuses_a_folder_in_use_in_one_line(tmp_path, capsys):
  out = tmp_path / "out"
  (out / "checkpoints").mkdir(parents=True)
  held = ckpt.FolderLock(out / "checkpoints")
  try:
    assert cli.main(CLI_ARGS + ["--epochs", "1", "--out", str(out)]) == 1
  finally:
    held.release()
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith(
      f"lrjax: error: checkpoint folder {out / 'checkpoints'} is in use by another run")


# -- SIGINT / SIGTERM -----------------------------------------------------------------------

# The command line, with a real signal sent to the process while epoch `at` trains.
_SIGNAL_DURING_EPOCH = textwrap.dedent(r"""
  import os, signal, sys
  from lrjax import cli
  from lrjax.train.engine import epoch as epoch_lib
  signum, at = getattr(signal, sys.argv[1]), int(sys.argv[2])
  real = epoch_lib.GroupTrainer.epoch_calls  # what every epoch of every group goes through
  sent = []
  def epoch_calls(self, state, data, epoch):
    if epoch == at and not sent:  # once: the first group of the epoch
      sent.append(signum)
      os.kill(os.getpid(), signum)  # delivered while this epoch is dispatched and runs
    return real(self, state, data, epoch)
  epoch_lib.GroupTrainer.epoch_calls = epoch_calls
  sys.exit(cli.main(sys.argv[3:]))
""")


def _env():
  return dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")


def _history(out: Path):
  return json.loads((out / "results.json").read_text())["history"]


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_mid_run_checkpoints_the_epoch_and_the_printed_command_resumes(
    tmp_path, name, code):
  out = tmp_path / "out"
  args = CLI_ARGS + ["--epochs", "4", "--out", str(out)]
  proc = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_EPOCH, name, "2"] + args,
                        env=_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path)
  assert proc.returncode == code, proc.stderr[-3000:]
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert lines[0] == (f"lrjax: {name} received: stopping after the epoch in progress is "
                      "checkpointed (again to stop at once)")
  assert len(lines) == 2, proc.stderr
  prefix = (f"lrjax: interrupted by {name} after epoch 3 of 4; checkpoint in "
            f"{out / 'checkpoints'}; resume with: ")
  assert lines[1].startswith(prefix), lines[1]
  assert not (out / "results.json").exists()
  steps = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
  assert steps[-1] == 3  # the epoch in progress finished and was checkpointed
  if name == "SIGTERM":
    return
  command = shlex.split(lines[1][len(prefix):])
  assert command == [sys.executable, "-m", "lrjax"] + args
  resumed = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600,
                           cwd=tmp_path)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"lrjax: resumed from epoch 3 of 4 (checkpoint {out / 'checkpoints'})" in resumed.stderr
  reference = tmp_path / "reference"
  assert cli.main(CLI_ARGS + ["--epochs", "4", "--out", str(reference), "--no-checkpoint"]) == 0
  got, want = _history(out), _history(reference)
  for field in FIELDS:
    np.testing.assert_allclose(np.asarray(got[field], float), np.asarray(want[field], float),
                               rtol=1e-6, atol=1e-6, err_msg=field)


# A signal at a moment before the first epoch: while the data load or the epoch program
# compiles (where the loop's own handler is not in place yet), or inside a callback that
# cannot raise (a ``__del__``, as JAX's gc callback), which printed "Exception ignored"
# and let the run go on to its end.
_SIGNAL_BEFORE_TRAINING = textwrap.dedent(r"""
  import os, signal, sys
  from lrjax import cli
  from lrjax.train.engine import epoch as epoch_lib
  signum, stage = getattr(signal, sys.argv[1]), sys.argv[2]
  # As a foreground command: a background job of a non-interactive shell (CI run with
  # `&`) starts with SIGINT ignored, and Python keeps it so.
  signal.signal(signal.SIGINT, signal.default_int_handler)

  class Swallows:
    def __del__(self):
      os.kill(os.getpid(), signum)
      sum(range(100000))  # the handler runs, and raises, in here

  def signalled(real):
    def wrapper(*args, **kwargs):
      if stage == "swallowed":
        Swallows()  # collected at once
      else:
        os.kill(os.getpid(), signum)  # handled at the next bytecode, as in real life
      return real(*args, **kwargs)
    return wrapper
  if stage == "compile":
    epoch_lib.GroupTrainer.compile = signalled(epoch_lib.GroupTrainer.compile)
  else:
    from lrjax.data import by_name
    by_name.load = signalled(by_name.load)  # the dataset the CLI loads first
  sys.exit(cli.main(sys.argv[3:]))
""")


@pytest.mark.parametrize("name, stage", [("SIGTERM", "data"), ("SIGTERM", "compile"),
                                         ("SIGTERM", "swallowed"), ("SIGINT", "swallowed")])
def test_a_signal_before_the_first_epoch_ends_the_run_in_one_line(tmp_path, name, stage):
  out = tmp_path / "out"
  args = CLI_ARGS + ["--epochs", "2", "--out", str(out)]
  proc = subprocess.run([sys.executable, "-c", _SIGNAL_BEFORE_TRAINING, name, stage] + args,
                        env=_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path)
  signum = getattr(signal, name)
  assert proc.returncode == 128 + signum, (proc.returncode, proc.stderr[-3000:])
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, proc.stderr[-3000:]
  how = " by SIGTERM" if name == "SIGTERM" else ""
  prefix = f"lrjax: interrupted{how}; resume from the last checkpoint with: "
  assert lines[0].startswith(prefix), proc.stderr[-3000:]
  assert shlex.split(lines[0][len(prefix):]) == [sys.executable, "-m", "lrjax"] + args
  assert not (out / "results.json").exists()  # stopped, not trained to the end
