"""Live metrics (`lrjax.train.reports.writers`): event files read back with TensorBoard's
own reader (`EventAccumulator`, the HParams plugin's protobuf), a user's writer of CLU's
shape, a writer shared by the variants, process 0 only, the missing extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lrjax.train.reports import writers as W

EPOCHS = 3
VARIANTS = [
    {"name": "learning_rate=0.1,momentum=0.9,seed=0", "seed": 0,
     "hparams": {"learning_rate": 0.1, "momentum": 0.9, "schedule": "cosine"},
     "tags": {"setting": 0, "seed": 0}},
    {"name": "By Epoch seq1/s1", "seed": 1, "hparams": {"learning_rate": 0.01},
     "tags": {"setting": 1, "seed": 1, "rule": "epoch", "sequence": "seq1"}},
]


def _history(task="classification"):
  rng = np.random.default_rng(0)
  f32 = lambda: rng.uniform(0.1, 2.0, (EPOCHS, 2)).astype(np.float32).astype(np.float64)
  history = {f: f32() for f in ("train_loss", "valid_loss", "valid_acc", "test_loss",
                                "test_acc", "lr", "hparams.momentum", "hparams.b1")}
  history["index"] = np.array([[0, 0], [1, 0], [2, 1]], np.float64)
  history["nonfinite"] = np.zeros((EPOCHS, 2))
  history["valid_loss"][2, 1] = np.nan  # variant 1 diverged in epoch 3: still written
  history["train_acc"] = np.full((EPOCHS, 2), np.nan)  # measured by no variant: left out
  if task == "regression":
    for f in ("valid_acc", "test_acc"):
      history[f][:] = np.nan
  return history


def _read(run_dir):
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  from tensorboard.plugins.hparams import plugin_data_pb2
  events = EventAccumulator(str(run_dir))
  events.Reload()
  scalars = {tag: {e.step: e.value for e in events.Scalars(tag)}
             for tag in events.Tags()["scalars"]}
  content = events.PluginTagToContent("hparams")
  start = plugin_data_pb2.HParamsPluginData.FromString(
      content["_hparams_/session_start_info"]).session_start_info
  hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
  experiment = plugin_data_pb2.HParamsPluginData.FromString(
      content["_hparams_/experiment"]).experiment
  ended = "_hparams_/session_end_info" in content
  return scalars, hparams, [m.name.tag for m in experiment.metric_infos], ended


def test_tensorboard_event_files_hold_each_variants_scalars_and_hparams(tmp_path):
  history = _history()
  with W.open_writers(VARIANTS, tensorboard_dir=tmp_path) as sweep:
    sweep.write_initial({"valid_loss": np.array([2.3, 2.4]), "valid_acc": np.array([.1, .2])})
    for epoch in range(EPOCHS):
      sweep.on_epoch_end(epoch, history)  # lrjax.sweep's hook: epoch counted from 0
  folders = sorted(p.name for p in tmp_path.iterdir())
  assert folders == ["By_Epoch_seq1_s1", "learning_rate=0.1,momentum=0.9,seed=0"]
  for k, folder in enumerate(["learning_rate=0.1,momentum=0.9,seed=0", "By_Epoch_seq1_s1"]):
    scalars, hparams, metrics, ended = _read(tmp_path / folder)
    assert set(scalars) == {"train/loss", "valid/loss", "valid/acc", "test/loss",
                            "test/acc", "lr", "index", "nonfinite", "hparams/momentum",
                            "hparams/b1"}
    for field, tag in (("valid_acc", "valid/acc"), ("lr", "lr"),
                       ("hparams.momentum", "hparams/momentum"), ("index", "index")):
      steps = {1, 2, 3} | ({0} if field == "valid_acc" else set())
      assert set(scalars[tag]) == steps, tag
      for epoch in range(EPOCHS):
        assert scalars[tag][epoch + 1] == np.float32(history[field][epoch, k]), tag
    assert scalars["valid/acc"][0] == np.float32([.1, .2][k])  # the untrained model
    assert metrics == ["valid/acc", "valid/loss"] and ended
    want = {"learning_rate": VARIANTS[k]["hparams"]["learning_rate"], "seed": float(k)}
    assert {n: hparams[n] for n in want} == pytest.approx(want)
  _, hparams0, _, _ = _read(tmp_path / folders[1])
  assert hparams0["schedule"] == "cosine" and hparams0["momentum"] == pytest.approx(0.9)
  scalars1, hparams1, _, _ = _read(tmp_path / folders[0])
  assert hparams1["rule"] == "epoch" and "setting" not in hparams1
  assert np.isnan(scalars1["valid/loss"][3])  # a diverged value is written as it is


class Recorder:
  """A user's writer of CLU's shape (W&B / MLflow would sit behind these methods)."""

  def __init__(self, log, name=""):
    self.log, self.name = log, name

  def write_scalars(self, step, scalars):
    self.log.append(("scalars", self.name, step, dict(scalars)))

  def write_hparams(self, hparams):
    self.log.append(("hparams", self.name, dict(hparams)))

  def flush(self):
    self.log.append(("flush", self.name))

  def close(self):
    self.log.append(("close", self.name))


def test_a_users_writers_one_per_variant_or_shared_with_prefixes():
  history = _history("regression")
  log = []
  made = W.open_writers(VARIANTS, metric_writers=lambda name, h: Recorder(log, name),
                        task="regression")
  made.write_epoch(2, history)
  made.close()
  hparams = [e for e in log if e[0] == "hparams"]
  assert [e[1] for e in hparams] == [v["name"] for v in VARIANTS]
  assert hparams[0][2] == {"learning_rate": 0.1, "momentum": 0.9, "schedule": "cosine",
                           "seed": 0}
  scalars = {e[1]: e[3] for e in log if e[0] == "scalars"}
  for k, v in enumerate(VARIANTS):
    got = scalars[v["name"]]
    assert "valid/acc" not in got  # a regression measures no accuracy
    if k == 0:
      assert got["valid/rmse"] == pytest.approx(np.sqrt(history["valid_loss"][1, k]))
    assert got["hparams/b1"] == history["hparams.b1"][1, k]
  assert sum(e[0] == "close" for e in log) == 2
  # one writer for all: tags and hparams prefixed by the variant, closed once
  log.clear()
  shared = W.open_writers(VARIANTS, metric_writers=Recorder(log, "run"))
  shared.write_epoch(1, _history())
  shared.close()
  tags = [t for e in log if e[0] == "scalars" for t in e[3]]
  assert f"{VARIANTS[1]['name']}/valid/acc" in tags and f"{VARIANTS[0]['name']}/lr" in tags
  assert [e for e in log if e[0] == "hparams"][1][2][f"{VARIANTS[1]['name']}/rule"] == "epoch"
  assert sum(e[0] == "close" for e in log) == 1


def test_only_process_0_writes(tmp_path, monkeypatch):
  from lrjax import distributed
  monkeypatch.setattr(distributed, "is_writer", lambda: False)
  log = []
  with W.open_writers(VARIANTS, tensorboard_dir=tmp_path / "tb",
                      metric_writers=lambda n, h: Recorder(log, n)) as sweep:
    sweep.write_epoch(1, _history())
  assert not (tmp_path / "tb").exists() and log == []


@pytest.mark.parametrize("bad, match", [
    ("tb", "`metric_writers` must be a metric writer"),
    ([object()], "must hold metric writers"),
    ([Recorder([])], "1 writers for 2 variants"),
])
def test_bad_metric_writers_are_refused_naming_the_argument(bad, match):
  with pytest.raises((TypeError, ValueError), match=match):
    W.open_writers(VARIANTS, metric_writers=bad)


def test_without_tensorboardx_the_error_names_the_extra(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorboardX", None)
  with pytest.raises(ImportError, match=r'pip install "lrjax\[tensorboard\]"'):
    W.open_writers(VARIANTS, tensorboard_dir=tmp_path)
  with pytest.raises(ImportError, match="tensorboard"):
    W.TensorBoardWriter(tmp_path)


def test_tags_and_folder_names():
  assert [W.scalar_tag(f) for f in ("valid_acc", "train_loss", "hparams.weight_decay",
                                    "lr", "group_seconds")] == [
      "valid/acc", "train/loss", "hparams/weight_decay", "lr", "group_seconds"]
  assert W.run_folders(["a b", "a/b", "../x", ""]) == ["a_b", "a_b-2", "x", "variant"]
  assert W.metric_tags("regression") == ("valid/loss", "valid/rmse")
