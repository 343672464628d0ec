"""Optuna's trials trained K at a time in one compiled sweep (`lrjax.train.search.optuna_search`).

Against Optuna itself: with a seeded sampler the executor asks what Optuna's own
sequential ``study.optimize`` asks; Optuna's pruner decides and a pruned trial stops
training; the SQLite storage holds every trial's intermediate values; an interrupted
and resumed search loses no trial and trains none twice.
"""

from __future__ import annotations

import math

import numpy as np
import optax
import pytest

optuna = pytest.importorskip("optuna")

import lrjax  # noqa: E402
from lrjax import models  # noqa: E402
from lrjax.data import synthetic  # noqa: E402
from lrjax.train import search  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = search.search_space(learning_rate=search.log_uniform(1e-3, 1.0),
                            momentum=search.uniform(0.0, 0.9))
EPOCHS = 3


@pytest.fixture(scope="module")
def data():
  return synthetic("tiny", num_train=192, num_test=64, seed=3)


def sgd(h):
  return optax.sgd(h["learning_rate"], momentum=h["momentum"])


def run(data, study, *, n_trials, at_once, **kw):
  return lrjax.sweep(models.get_model("logistic"), data, sgd, SPACE, epochs=EPOCHS,
                     batch_size=32, progress=False,
                     controller=search.optuna_search(study, n_trials=n_trials,
                                                     at_once=at_once), **kw)


def _params(trials):
  return [(t.params["learning_rate"], t.params["momentum"]) for t in trials]


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler,
                                     lambda seed: optuna.samplers.QMCSampler(seed=seed,
                                                                             scramble=True)],
                         ids=["random", "qmc"])
def test_a_seeded_sampler_asks_what_optunas_own_loop_asks(data, sampler):
  ours = optuna.create_study(direction="maximize", sampler=sampler(7),
                             pruner=optuna.pruners.NopPruner())
  result = run(data, ours, n_trials=6, at_once=3)
  theirs = optuna.create_study(direction="maximize", sampler=sampler(7))

  def objective(trial):  # the same distributions, suggested in the same order
    trial.suggest_float("learning_rate", 1e-3, 1.0, log=True)
    trial.suggest_float("momentum", 0.0, 0.9)
    return 0.0

  theirs.optimize(objective, n_trials=6)
  assert _params(ours.trials) == _params(theirs.trials)
  assert [t.state for t in ours.trials] == [optuna.trial.TrialState.COMPLETE] * 6
  # Each trial trained EPOCHS epochs in a slot; 6 trials in 3 slots: 2 rounds.
  assert result.history["alive"].shape[0] == 2 * EPOCHS
  for trial in ours.trials:
    assert sorted(trial.intermediate_values) == [1, 2, 3]
    assert trial.value == trial.intermediate_values[3]


def test_a_trial_optuna_prunes_stops_training_and_its_slot_takes_the_next(data):
  study = optuna.create_study(direction="maximize",
                              sampler=optuna.samplers.RandomSampler(seed=0),
                              pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # all
  result = run(data, study, n_trials=5, at_once=2)
  states = [t.state for t in study.trials]
  assert states == [optuna.trial.TrialState.PRUNED] * 5
  assert all(sorted(t.intermediate_values) == [1] for t in study.trials)
  alive = result.history["alive"] > 0
  # Every trial trained one epoch: 5 trials in 2 slots end after 3 epochs (the run ends
  # when no trial is left), the restarts recorded as fresh starts.
  assert alive.shape[0] == 3 and alive.sum() == 5
  assert int(result.history["started"][1:].sum()) == 3
  assert not alive[2, 1]  # the slot with no trial left stopped


def test_the_sqlite_storage_holds_every_trials_intermediate_values(data, tmp_path):
  storage = f"sqlite:///{tmp_path / 'study.db'}"
  study = optuna.create_study(direction="maximize", storage=storage, study_name="s",
                              sampler=optuna.samplers.TPESampler(seed=1),
                              pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
  result = run(data, study, n_trials=6, at_once=3)
  again = optuna.load_study(study_name="s", storage=storage)  # read back from the file
  assert len(again.trials) == 6
  acc = result.history["valid_acc"]
  for trial in again.trials:
    assert trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    steps = sorted(trial.intermediate_values)
    assert steps == list(range(1, len(steps) + 1))
    assert any(np.isclose(acc[:, s], trial.intermediate_values[1]).any()
               for s in range(3))


class Stop(Exception):
  pass


def test_interrupted_and_resumed_it_loses_no_trial_and_trains_none_twice(data, tmp_path):
  storage = f"sqlite:///{tmp_path / 'study.db'}"

  def fresh_study():  # what a new process makes of the same study
    return optuna.create_study(direction="maximize", storage=storage, study_name="r",
                               sampler=optuna.samplers.RandomSampler(seed=0),
                               pruner=optuna.pruners.NopPruner(), load_if_exists=True)

  def stop_after(epoch):
    def hook(e, history):
      if e == epoch:
        raise Stop
    return hook

  with pytest.raises(Stop):  # after epoch 4 of 6: trials 3-4 half trained, 5 not asked
    run(data, fresh_study(), n_trials=5, at_once=2, checkpoint_dir=tmp_path / "ck",
        on_epoch_end=stop_after(3))
  mid = optuna.load_study(study_name="r", storage=storage)
  assert len(mid.trials) == 4  # trials 0-1 done, 2-3 asked and running
  run(data, fresh_study(), n_trials=5, at_once=2, checkpoint_dir=tmp_path / "ck")
  done = optuna.load_study(study_name="r", storage=storage)
  assert len(done.trials) == 5  # no trial asked twice
  for trial in done.trials:
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2, 3]  # trained once, every epoch
    assert math.isfinite(trial.value)


def test_the_sweep_file_names_optuna_with_its_sampler_and_pruner(tmp_path, capsys):
  from lrjax import cli
  path = tmp_path / "optuna.toml"
  path.write_text(f"""\
epochs = 2
[data]
dataset = "synthetic"
train_size = 128
[model]
name = "logistic"
[search]
method = "optuna"
sampler = "random"
pruner = "median"
n_trials = 4
at_once = 2
storage = "sqlite:///{tmp_path / 'file.db'}"
study_name = "from-file"
[search.space]
learning_rate = {{log_uniform = [0.001, 0.3]}}
""")
  assert cli.main(["sweep", "--config", str(path), "--no-progress", "--no-checkpoint",
                   "--out", str(tmp_path / "out")]) == 0
  study = optuna.load_study(study_name="from-file", storage=f"sqlite:///{tmp_path / 'file.db'}")
  assert len(study.trials) == 4 and all(t.intermediate_values for t in study.trials)
  path.write_text(path.read_text().replace('pruner = "median"', 'pruner = "patient"'))
  assert cli.main(["sweep", "--config", str(path), "--out", str(tmp_path / "o2")]) == 2
  assert "search.pruner: `pruner` must be one of median" in capsys.readouterr().err


def test_a_study_of_the_wrong_direction_is_refused_in_one_line(data):
  study = optuna.create_study(direction="minimize")
  with pytest.raises(ValueError, match="is to minimize, but the sweep reports valid_acc"):
    run(data, study, n_trials=2, at_once=2)
