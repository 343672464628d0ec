"""The sweep engine: vmapped variants match sequential runs, resume, sharding, guards."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lrjax.train import SweepConfig, Variant, convergence_epoch, report_variants, run_sweep
from lrjax.train.frontends import optimizers
from lrjax.train.reports import results

MODEL = "logistic"


def _config(variants, epochs=3, **kw):
  kw.setdefault("batch_size", 32)
  return SweepConfig(model=MODEL, variants=tuple(variants), epochs=epochs, **kw)


FOUR = (
    Variant("seq1 epoch", "seq1", "epoch", 0.5),
    Variant("seq3 oscillate", "seq3", "oscillate", 0.5),
    Variant("seq4 cutoff", "seq4", "cutoff", 0.5),
    Variant("adam fixed", "constant", "fixed", 0.01, "adam"),
)


@pytest.fixture(scope="module")
def four_variant_sweep(blobs):
  return run_sweep(_config(FOUR), blobs, progress=False)


def test_sweep_matches_sequential_runs(blobs, four_variant_sweep):
  for k, variant in enumerate(FOUR):
    alone = run_sweep(_config([variant]), blobs, progress=False)
    for field in ("train_loss", "valid_loss", "valid_acc", "lr", "index"):
      np.testing.assert_allclose(alone.history[field][:, 0],
                                 four_variant_sweep.history[field][:, k],
                                 rtol=2e-5, atol=1e-6, err_msg=f"{variant.name} {field}")


def test_history_records_rates_and_sequence_positions(four_variant_sweep):
  lr = four_variant_sweep.history["lr"]
  index = four_variant_sweep.history["index"]
  # by-epoch advances at every boundary: epoch e trains with position e - 1.
  np.testing.assert_array_equal(index[:, 0], [0, 1, 2])
  np.testing.assert_allclose(lr[:, 0], [0.5, 0.5, 0.25], rtol=1e-6)
  np.testing.assert_allclose(lr[:, 3], 0.01, rtol=1e-6)


def test_groups_split_by_state_structure():
  groups = optimizers.group_variants(report_variants())
  sizes = sorted(len(members) for _, _, members in groups)
  assert sizes == [1, 13]  # Adam alone; SGD benchmark + 12 settings together
  spec, hyper, members = [g for g in groups if len(g[2]) == 13][0]
  assert len(spec.sequences) == 5  # constant, seq1..seq4 in one switch bank
  assert hyper.learning_rate.shape == (13,)


def test_interrupted_sweep_resumes_to_identical_results(blobs, tmp_path):
  config = _config(FOUR[:2] + FOUR[3:], epochs=4, checkpoint_every=1)
  uninterrupted = run_sweep(config, blobs, progress=False)

  def interrupt(epoch, history):
    if epoch == 1:
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    run_sweep(config, blobs, checkpoint_dir=tmp_path / "ckpt", progress=False,
              on_epoch_end=interrupt)
  resumed = run_sweep(config, blobs, checkpoint_dir=tmp_path / "ckpt", progress=False)
  for field in ("train_loss", "valid_loss", "valid_acc", "lr", "index"):
    np.testing.assert_allclose(resumed.history[field], uninterrupted.history[field],
                               rtol=1e-6, err_msg=field)
  assert np.isnan(resumed.epoch_seconds[:2]).all()  # restored, not retrained


def test_resume_refuses_a_different_sweep(blobs, tmp_path):
  run_sweep(_config(FOUR[:1], epochs=1), blobs, checkpoint_dir=tmp_path, progress=False)
  with pytest.raises(ValueError, match="different sweep"):
    run_sweep(_config(FOUR[1:2], epochs=1), blobs, checkpoint_dir=tmp_path, progress=False)


def test_diverging_variant_is_flagged_and_does_not_touch_the_others():
  from lrjax import data
  table = data.synthetic("boston_housing", num_train=400, num_test=50, seed=0)
  variants = (Variant("sane", "constant", "fixed", 0.01),
              Variant("explodes", "constant", "fixed", 1e3))
  config = SweepConfig(model="linear", variants=variants, epochs=3, batch_size=16,
                       task="regression")
  result = run_sweep(config, table, progress=False)
  assert result.history["nonfinite"][-1, 1] == 1.0
  assert result.history["nonfinite"][-1, 0] == 0.0
  assert result.summary[1]["nonfinite"] and not result.summary[0]["nonfinite"]
  assert np.isfinite(result.history["valid_loss"][:, 0]).all()
  alone = run_sweep(dataclasses.replace(config, variants=variants[:1]), table, progress=False)
  np.testing.assert_allclose(result.history["valid_loss"][:, 0],
                             alone.history["valid_loss"][:, 0], rtol=2e-5)


def test_results_files_roundtrip(four_variant_sweep, tmp_path):
  paths = results.save(four_variant_sweep, tmp_path)
  loaded = results.load(tmp_path)
  assert loaded["names"] == [v.name for v in FOUR]
  np.testing.assert_allclose(loaded["history"]["valid_acc"],
                             four_variant_sweep.history["valid_acc"])
  rows = paths["csv"].read_text().strip().splitlines()
  assert len(rows) == 1 + 4 * 4  # header, the untrained model (epoch 0), epochs 1-3
  table = paths["markdown"].read_text()
  assert "| seq1 epoch |" in table or "| **seq1 epoch (best)** |" in table
  json.loads(paths["json"].read_text())  # strict JSON (no NaN literals)
  assert "NaN" not in paths["json"].read_text()


def test_convergence_epoch_rule():
  assert convergence_epoch([0.5, 0.9, 0.97, 0.975, 0.978], tolerance=0.01) == 3
  assert convergence_epoch([0.9, 0.9, 0.9], tolerance=0.0) == 1
  assert convergence_epoch([0.9, 0.5, 0.9], tolerance=0.01) == 3
  assert convergence_epoch([0.9, np.nan, 0.9], tolerance=0.01) == 3
  assert convergence_epoch([0.9, 0.9, np.nan]) is None
  assert convergence_epoch([0.5, 0.9, 0.9, 0.9], tolerance=0.01, final_window=2) == 2
  assert convergence_epoch([0.5, 0.9, 0.8, 0.9], tolerance=0.01, final_window=2) == 4
  with pytest.raises(ValueError, match="tolerance"):
    convergence_epoch([0.1], tolerance=-1)


def test_config_validation():
  with pytest.raises(ValueError, match="learning_rate"):
    Variant("x", learning_rate=0.0)
  with pytest.raises(ValueError, match="optimizer"):
    Variant("x", optimizer="lbfgs")
  with pytest.raises(ValueError, match="rule"):
    Variant("x", rule="sometimes")
  with pytest.raises(ValueError, match="variants"):
    SweepConfig(model=MODEL, variants=())
  with pytest.raises(ValueError, match="unique"):
    SweepConfig(model=MODEL, variants=(Variant("a"), Variant("a")))
  with pytest.raises(ValueError, match="epochs"):
    SweepConfig(model=MODEL, variants=(Variant("a"),), epochs=0)
  with pytest.raises(ValueError, match="sequence"):
    optimizers.group_variants((Variant("a", sequence="nope"),))


def test_task_must_match_the_dataset(blobs):
  with pytest.raises(ValueError, match="task"):
    run_sweep(_config(FOUR[:1], task="regression"), blobs, progress=False)


def test_batch_larger_than_training_set_is_refused(blobs):
  with pytest.raises(ValueError, match="batch_size"):
    run_sweep(_config(FOUR[:1], batch_size=10**6), blobs, progress=False)


# The subprocess gets these variants by their repr (Variant is a plain dataclass).
SHARDED_VARIANTS = tuple(
    Variant(f"v{i}", "seq" + str(1 + i % 4), ("epoch", "cutoff", "oscillate")[i % 3],
            0.1 * (1 + i)) for i in range(6))
_SHARDED_SCRIPT = r"""
import json, sys
import jax, numpy as np
from lrjax import data
from lrjax.train import SweepConfig, Variant, run_sweep
assert jax.device_count() == int(sys.argv[1]), jax.devices()
blobs = data.synthetic("tiny", num_train=640, num_test=200, seed=0)
r = run_sweep(SweepConfig(model="logistic", variants=SHARDED_VARIANTS, epochs=2,
                          batch_size=32), blobs, progress=False)
print(json.dumps({"device": r.device, "valid_loss": r.history["valid_loss"].tolist()}))
"""


@pytest.mark.slow
def test_sharded_sweep_on_eight_host_devices_matches_one_device(blobs):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join([  # + conftest's flags
      os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]))
  script = (f"from lrjax.train import Variant\nSHARDED_VARIANTS = {SHARDED_VARIANTS!r}\n"
            + _SHARDED_SCRIPT)
  proc = subprocess.run([sys.executable, "-c", script, "8"], env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  sharded = json.loads(proc.stdout.strip().splitlines()[-1])
  assert sharded["device"] == "cpu x8"
  # The one-device run in this process (the same data: `blobs`), not a second subprocess.
  one = run_sweep(SweepConfig(model="logistic", variants=SHARDED_VARIANTS, epochs=2,
                              batch_size=32), blobs, progress=False)
  assert one.device == "cpu x1"
  np.testing.assert_allclose(sharded["valid_loss"], one.history["valid_loss"], rtol=1e-5)


def test_a_diverged_variant_has_no_convergence_epoch():
  """Diverged, a model predicts one class: its accuracy is finite and flat from epoch 1,
  which read alone "converges" at 1.  Epochs with a NaN/inf validation loss count as
  outside the band."""
  from lrjax.train.reports.metrics import summarize
  nan = np.nan
  history = {"valid_loss": np.array([[0.9, nan, 0.9], [0.5, nan, nan], [0.4, nan, 0.4]]),
             "valid_acc": np.array([[0.70, 0.10, 0.70], [0.80, 0.10, 0.10],
                                    [0.803, 0.10, 0.81]]),
             "train_loss": np.ones((3, 3)), "lr": np.ones((3, 3)),
             "index": np.zeros((3, 3)), "nonfinite": np.array([[0, 1, 0], [0, 1, 1],
                                                               [0, 1, 1]])}
  rows = summarize(history, ["ok", "diverged", "diverged then recovered"], tolerance=0.005)
  assert [r["convergence_epoch"] for r in rows] == [2, None, 3]
  assert rows[1]["nonfinite"] and rows[1]["final_valid_acc"] == pytest.approx(0.1)


def test_a_sweep_with_a_diverging_variant_reports_it_unconverged():
  from lrjax import data
  small = data.synthetic("tiny", num_train=128, num_test=64, seed=0)
  config = SweepConfig(model="logistic", epochs=2, batch_size=32, variants=(
      Variant("ok", "seq1", "epoch", 0.5), Variant("boom", "seq1", "epoch", 3e38)))
  result = run_sweep(config, small, progress=False)
  assert not np.isfinite(result.history["valid_loss"][:, 1]).any()
  assert np.isfinite(result.history["valid_acc"][:, 1]).all()  # flat: chance accuracy
  assert [r["convergence_epoch"] for r in result.summary][1] is None
