"""`lrjax.sweep` loses nothing: a user's model and optax chain, interrupted by SIGINT, resume
to the numbers of an uninterrupted run; other data or other hyperparameters are refused
saying what differs; a finished run asked for more epochs continues.

The model is defined here (not in lrjax); a tiny MLP with dropout on 160 examples, two
variants in one compiled group, so each call takes seconds.
"""

from __future__ import annotations

import json
import os
import signal

import flax.linen as nn
import numpy as np
import optax
import pytest

import lrjax
from lrjax.data import synthetic
from lrjax.train.engine import epoch as epoch_lib
from lrjax.train.reports import results
from lrjax.train.runner import checkpoint as ckpt
from lrjax.train.runner.loop import SweepInterrupted

FIELDS = ("train_loss", "valid_loss", "valid_acc", "test_loss", "lr", "index", "nonfinite")
HPARAMS = {"learning_rate": [0.3, 0.05], "momentum": [0.9, 0.0]}


class TinyMLP(nn.Module):
  width: int = 16

  @nn.compact
  def __call__(self, x, *, train):
    x = nn.relu(nn.Dense(self.width)(x.reshape((x.shape[0], -1))))
    return nn.Dense(10)(nn.Dropout(0.3, deterministic=not train)(x))


def chain(h):
  return optax.chain(optax.clip_by_global_norm(5.0),
                     optax.inject_hyperparams(optax.sgd)(learning_rate=h["learning_rate"],
                                                         momentum=h["momentum"]))


def run(data, epochs, hparams=HPARAMS, model=None, **kw):
  return lrjax.sweep(model or TinyMLP(), data, chain, hparams, epochs=epochs, batch_size=32,
                     progress=False, **kw)


@pytest.fixture(scope="module")
def data():
  return synthetic("tiny", num_train=160, num_test=40, seed=3)


@pytest.fixture(scope="module")
def straight(data):
  return run(data, 3)


def assert_same(a, b, epochs=None):
  for field in FIELDS:
    np.testing.assert_allclose(a.history[field][:epochs], b.history[field][:epochs],
                               rtol=1e-6, atol=1e-6, err_msg=field)
  np.testing.assert_allclose(a.step_history["step_loss"][:epochs],
                             b.step_history["step_loss"][:epochs], rtol=1e-6, atol=1e-6)


def test_sigint_mid_run_then_resume_equals_uninterrupted(data, straight, tmp_path,
                                                         monkeypatch, capfd):
  folder, out = tmp_path / "ckpt", tmp_path / "out"
  real = epoch_lib.GroupTrainer.epoch_calls  # what every epoch of every group goes through

  def epoch_calls(self, state, device_data, epoch):
    if epoch == 1:  # a real SIGINT, delivered while epoch 2 of 3 trains
      os.kill(os.getpid(), signal.SIGINT)
    return real(self, state, device_data, epoch)

  monkeypatch.setattr(epoch_lib.GroupTrainer, "epoch_calls", epoch_calls)
  with pytest.raises(SweepInterrupted) as info:
    run(data, 3, checkpoint_dir=folder, out_dir=out)
  monkeypatch.undo()
  assert (info.value.signum, info.value.epoch, info.value.epochs) == (signal.SIGINT, 2, 3)
  assert "SIGINT received: stopping after the epoch in progress" in capfd.readouterr().err
  assert ckpt.SweepCheckpointer  # the epoch in progress was finished and checkpointed:
  assert sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())[-1] == 2
  assert not (out / "results.json").exists()

  resumed = run(data, 3, checkpoint_dir=folder, out_dir=out)
  assert capfd.readouterr().err.strip() == f"lrjax: resumed from epoch 2 of 3 (checkpoint {folder})"
  assert_same(resumed, straight)
  assert np.isnan(resumed.epoch_seconds[:2]).all() and resumed.epoch_seconds[2] > 0
  # The results files of a user sweep: its variants (no config), epoch 0, the history.
  saved = results.load(out)
  assert saved["config"] is None and saved["names"] == straight.names
  assert [v["hparams"] for v in saved["variants"]] == [
      {"learning_rate": 0.3, "momentum": 0.9}, {"learning_rate": 0.05, "momentum": 0.0}]
  np.testing.assert_allclose(saved["history"]["valid_loss"], straight.history["valid_loss"],
                             rtol=1e-6)
  raw = json.loads((out / "results.json").read_text())
  np.testing.assert_allclose(raw["initial"]["test_loss"], straight.initial["test_loss"])


def test_untrained_metrics_are_epoch_zero(straight):
  assert set(straight.initial) == {"valid_loss", "valid_acc", "test_loss", "test_acc"}
  for values in straight.initial.values():
    assert values.shape == (2,) and np.isfinite(values).all()
  # Same seed, same initialisation: both variants start from the same model, ~ln(10).
  np.testing.assert_allclose(straight.initial["valid_loss"][0],
                             straight.initial["valid_loss"][1], rtol=1e-6)
  assert 1.5 < straight.initial["valid_loss"][0] < 3.5
  assert (straight.history["valid_loss"][0] != straight.initial["valid_loss"]).all()
  assert [v["tags"] for v in straight.variants] == [{"setting": 0, "seed": 0},
                                                    {"setting": 1, "seed": 0}]


def test_finished_run_extended_equals_straight(data, straight, tmp_path, capfd):
  folder = tmp_path / "ckpt"
  assert_same(run(data, 2, checkpoint_dir=folder), straight, epochs=2)
  capfd.readouterr()
  three = run(data, 3, checkpoint_dir=folder)
  assert capfd.readouterr().err.strip() == f"lrjax: resumed from epoch 2 of 3 (checkpoint {folder})"
  assert_same(three, straight)


def test_resume_refuses_other_data_and_other_runs_saying_what_differs(data, tmp_path):
  folder = tmp_path / "ckpt"
  run(data, 1, checkpoint_dir=folder)
  other = synthetic("tiny", num_train=160, num_test=40, seed=4)._replace(name="other")
  with pytest.raises(ckpt.DifferentSweepError) as info:
    run(other, 1, checkpoint_dir=folder)
  fp_then = ckpt.data_identity(data)["fingerprint"][:12]
  fp_now = ckpt.data_identity(other)["fingerprint"][:12]
  assert "\n" not in str(info.value)
  assert (f"checkpoint directory {folder} was written for dataset {data.name} (fingerprint "
          f"{fp_then}), this run has dataset other (fingerprint {fp_now})") in str(info.value)
  with pytest.raises(ckpt.DifferentSweepError,
                     match=r"variants\[1\]\.hparams\.learning_rate: 0\.01 here, 0\.05 there"):
    run(data, 1, {"learning_rate": [0.3, 0.01], "momentum": [0.9, 0.0]},
        checkpoint_dir=folder)
  with pytest.raises(ckpt.DifferentSweepError, match=r"model\.fields: .* here"):
    run(data, 1, model=TinyMLP(width=8), checkpoint_dir=folder)
  with pytest.raises(ckpt.DifferentSweepError, match=r"variants\[0\]\.seed: 1 here, 0 there"):
    run(data, 1, seeds=(1,), checkpoint_dir=folder)
  run(data, 1, checkpoint_dir=folder)  # nothing was overwritten by the refusals
