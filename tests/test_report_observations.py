"""The report's observations as checks (experiments/report_observations.py), and the two
readings of By Cutoff's loss_0 in experiments/report_lr_decaying.py.

The observation functions are checked on per-seed results built here in memory, each
observation in three constructions whose verdict is known (reproduced, not reproduced,
within noise); the command line on hand-written folders in the engine's results format
(the current one and that of the older runs, without ``initial``).  The ``--loss0`` flag
on two tiny synthetic runs (12 SGD settings, 7 epochs, about 10 s each): the By Cutoff
histories follow Algorithm 2 under each reading (an independent loop over the recorded
losses), By Epoch's are identical, and a checkpoint of one reading refuses the other.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))

import report_lr_decaying as report  # noqa: E402
import report_observations as obs  # noqa: E402

from lrjax.train.frontends.config import SweepConfig, report_variants  # noqa: E402
from lrjax.train.reports import metrics  # noqa: E402

R, N, W = obs.REPRODUCED, obs.NOT_REPRODUCED, obs.WITHIN_NOISE
OFFSETS = np.array([-1.0, 0.0, 1.0])  # three seeds: mean 0, sample std 1


# ------------------------------------------------------------------ per-seed results
class Build:
  """Per-seed results of the 14 settings, all alike unless set: final accuracy
  ``acc`` ± 0.001, convergence epoch 20 ± 1, 3 sequence advances, flat curves."""

  def __init__(self, dataset="mnist", acc=0.95, epochs=10):
    self.dataset, self.epochs, self.base = dataset, epochs, acc
    self.values = {s: {} for s in report.SETTINGS}
    self.curves = {}
    for s in report.SETTINGS:
      self.acc(s, acc)
      self.conv(s, 20)
      self.set(s, "sequence_advances", 3, 0)

  def set(self, setting, measure, mean, std):
    self.values[setting][measure] = mean + std * OFFSETS
    return self

  def acc(self, setting, mean, std=0.001, test=None):
    self.set(setting, "final_valid_acc", mean, std)
    self.set(setting, "best_valid_acc", mean, std)
    return self.set(setting, "final_test_acc", mean if test is None else test, std)

  def conv(self, setting, mean, std=1.0):
    return self.set(setting, "convergence_epoch", mean, std)

  def curve(self, setting, per_seed):
    """``per_seed``: function of the epoch index array -> one curve per seed."""
    t = np.arange(self.epochs, dtype=float)
    self.curves[setting] = {"valid_acc": np.stack([f(t) for f in per_seed], axis=1)}
    return self

  def runs(self, seeds=3):
    curves = {s: self.curves.get(s, {"valid_acc": np.tile(
        self.values[s]["final_valid_acc"], (self.epochs, 1))}) for s in report.SETTINGS}
    values = {s: {m: v[:seeds] for m, v in d.items()} for s, d in self.values.items()}
    curves = {s: {f: c[:, :seeds] for f, c in d.items()} for s, d in curves.items()}
    return obs.Runs(self.dataset, values, curves, self.epochs, 0.005, {"loss0": "untrained"})


def _verdict(runs, number):
  found = [o for o in obs.OBSERVATIONS[runs.dataset](runs) if o.number == number]
  assert len(found) == 1
  return found[0]


def _seqs(strategy):
  return [f"{strategy} seq{i}" for i in range(1, 5)]


# The constructions: observation -> (reproduced, not reproduced, within noise) builders.
def m1(b, kind):
  if kind == R:
    b.conv("By Epoch seq3", 10).acc("By Epoch seq4", 0.97)
  elif kind == N:
    b.conv("By Epoch seq1", 10).acc("By Epoch seq4", 0.97)  # (1a) fails
  return b


def m2(b, kind):
  if kind == R:
    b.conv("By Cutoff seq4", 10).acc("By Cutoff seq4", 0.97)
  elif kind == N:
    b.conv("By Cutoff seq4", 10).acc("By Cutoff seq2", 0.97)
  return b


def m3(b, kind):
  if kind == R:
    b.conv("By Oscillate seq3", 10).acc("By Oscillate seq3", 0.97)
  elif kind == N:
    b.conv("By Oscillate seq4", 10).acc("By Oscillate seq3", 0.97)
  return b


def m4(b, kind):
  if kind == R:
    b.conv("By Epoch seq3", 10)
  elif kind == N:
    b.conv("By Epoch seq3", 12).conv("Adam", 10)
  else:  # 1.5 epochs apart with std 1: band 1.63
    b.conv("By Epoch seq3", 10).conv("Adam", 11.5)
  return b


def m5(b, kind):
  for s in report.STRATEGIES:
    b.acc(f"{s} seq4", 0.96).acc(f"{s} seq1", 0.94)
  b.acc("By Cutoff seq4", 0.97)
  if kind == N:
    b.acc("SGD", 0.975)
  elif kind == W:
    b.acc("Adam", 0.9695)
  return b


def m6(b, kind):
  if kind == N:
    b.acc("By Epoch seq1", 0.90)
  elif kind == W:
    b.acc("By Epoch seq1", 0.93)  # a gap of 0.02, the margin, band 0.0016
  return b


def m7(b, kind):
  if kind == N:
    b.acc("By Oscillate seq4", b.base - 0.05)
  elif kind == W:
    b.acc("By Cutoff seq4", b.base - 0.02)  # the margin
  return b


def c1(b, kind):
  if kind == R:
    b.conv("By Epoch seq1", 8).acc("By Epoch seq3", 0.80)
  elif kind == N:
    b.conv("By Epoch seq2", 8).acc("By Epoch seq3", 0.80)
  return b


def _line(start, slope):
  return lambda t: start + slope * t


def c2(b, kind):
  rising = [_line(0.70, 0.005 + e) for e in (-0.001, 0, 0.001)]
  falling = [_line(0.70, -0.005 + e) for e in (-0.001, 0, 0.001)]
  undecided = [_line(0.70, e) for e in (-0.002, 0, 0.002)]  # seeds disagree on the sign
  b.acc("By Cutoff seq1", 0.77 if kind != W else 0.75).conv("By Cutoff seq1", 12)
  b.curve("By Cutoff seq1", {R: rising, N: falling, W: undecided}[kind])
  for s in _seqs("By Cutoff")[1:]:
    b.acc(s, 0.65).curve(s, falling)
  return b


def c3(b, kind):
  if kind == R:
    for seq, epoch in ((1, 5), (2, 10), (4, 15), (3, 20)):
      b.conv(f"By Oscillate seq{seq}", epoch)
  elif kind == N:
    for seq, epoch in ((1, 5), (2, 10), (4, 20), (3, 15)):  # seq3 before seq4
      b.conv(f"By Oscillate seq{seq}", epoch)
  else:
    for seq, epoch in ((1, 5), (2, 10), (4, 15), (3, 16)):  # seq4 vs seq3: 1 ± 1.63
      b.conv(f"By Oscillate seq{seq}", epoch)
  return b


def _dropping(t):
  return 0.5 + 0.03 * t - 0.05 * (t == 2)


def c4(b, kind):
  if kind == W:
    return b
  b.conv("By Epoch seq1", 5).conv("By Oscillate seq1", 6).conv("By Cutoff seq1", 10)
  for s in report.STRATEGIES:
    for i in (3, 4):
      b.curve(f"{s} seq{i}", [_dropping] * 3 if kind == R else [_line(0.5, 0.03)] * 3)
    b.curve(f"{s} seq1", [_line(0.5, 0.03)] * 3 if kind == R else [_dropping] * 3)
  return b


def c5(b, kind):
  for s in _seqs("By Epoch") + _seqs("By Oscillate"):
    b.acc(s, 0.77)
  for s in _seqs("By Cutoff"):
    b.acc(s, 0.65)
  b.acc("By Epoch seq3", 0.80).acc("SGD", 0.74).acc("Adam", 0.73)
  if kind == N:
    b.acc("Adam", 0.85)
  elif kind == W:
    b.acc("By Oscillate seq2", 0.7415)  # beats SGD by 0.0015, band 0.0016
  return b


def c6(b, kind):
  if kind == R:
    b.acc("By Cutoff seq4", 0.60)
  elif kind == W:
    b.acc("By Cutoff seq4", 0.73)  # 0.75 - 0.73 = the margin
  return b


CONSTRUCTIONS = {("mnist", k + 1): f for k, f in enumerate((m1, m2, m3, m4, m5, m6, m7))}
CONSTRUCTIONS.update({("cifar10", k + 1): f for k, f in enumerate((c1, c2, c3, c4, c5, c6,
                                                                    m7))})


@pytest.mark.parametrize("kind", (R, N, W))
@pytest.mark.parametrize("dataset,number", sorted(CONSTRUCTIONS))
def test_each_observation_gives_the_constructed_verdict(dataset, number, kind):
  base = 0.95 if dataset == "mnist" else 0.75
  runs = CONSTRUCTIONS[dataset, number](Build(dataset, acc=base), kind).runs()
  observation = _verdict(runs, number)
  assert observation.verdict == kind, [(c.id, c.verdict, c.numbers)
                                       for c in observation.checks]
  if kind == R:
    assert all(c.verdict == R for c in observation.checks)


@pytest.mark.parametrize("dataset,number", sorted(CONSTRUCTIONS))
def test_one_seed_says_it_needs_seeds(dataset, number):
  base = 0.95 if dataset == "mnist" else 0.75
  runs = CONSTRUCTIONS[dataset, number](Build(dataset, acc=base), R).runs(seeds=1)
  observation = _verdict(runs, number)
  for check in observation.checks:
    # Only counts of rate updates decide without seeds.
    assert check.verdict == (R if "fewer than" in check.claim else obs.NEEDS_SEEDS), check
  assert observation.verdict == obs.NEEDS_SEEDS


def test_counts_of_rate_updates_decide_without_noise():
  b = Build("mnist")
  b.set("By Oscillate seq4", "sequence_advances", 21, 1)  # seeds 20, 21, 22
  check = _verdict(b.runs(), 7).checks[2]
  assert check.id == "7c" and check.verdict == N and "By Oscillate seq4 22" in check.numbers
  b = Build("cifar10", acc=0.75)
  b.set("By Cutoff seq2", "sequence_advances", 4, 0)
  assert _verdict(b.runs(), 5).checks[4].verdict == R
  b.set("By Cutoff seq2", "sequence_advances", 5, 0)
  assert _verdict(b.runs(), 5).checks[4].verdict == N


def test_the_noise_band_is_two_standard_errors_of_the_difference():
  a, b = [1.0, 2.0, 3.0], [0.0, 0.5, 1.0]
  est = obs.difference(a, b)
  assert est.mean == pytest.approx(1.5)
  # sqrt(1 / 3 + 0.25 / 3) standard errors of the difference of means, times 2.
  assert est.band == pytest.approx(2 * math.sqrt(1 / 3 + 0.25 / 3))
  assert obs.NOISE_Z == 2.0
  assert obs.above(est) == R  # 1.5 - 1.29 > 0
  assert obs.above(obs.difference(b, a)) == N
  assert obs.above(obs.difference([1.0, 2.0, 3.0], [0.5, 1.0, 1.5])) == W  # 1 - 1.29 < 0
  assert obs.above(obs.difference([1.0], [0.0])) == obs.NEEDS_SEEDS
  assert obs.above(obs.difference([math.nan, math.nan], [0.0, 1.0])) == obs.UNDECIDED
  # A diverged seed (NaN) is left out, as in the comparison table.
  assert obs.difference([1.0, math.nan, 3.0], [0.0, 0.0]).mean == pytest.approx(2.0)
  assert obs.close(obs.Estimate(0.005, 0.01), 0.02) == R
  assert obs.close(obs.Estimate(0.035, 0.01), 0.02) == N
  assert obs.close(obs.Estimate(0.015, 0.01), 0.02) == W
  assert obs.combine([R, W, R]) == W and obs.combine([R, W, N]) == N
  assert obs.combine([R, obs.NEEDS_SEEDS, W]) == obs.NEEDS_SEEDS


def test_accuracy_claims_carry_the_test_set_verdict_too():
  b = Build("mnist").acc("By Epoch seq4", 0.97, test=0.94)  # best on valid, worst on test
  check = _verdict(b.runs(), 1).checks[1]
  assert (check.verdict, check.test_verdict) == (R, N)
  assert check.values["claimed"] == "By Epoch seq4"


def test_curve_readings():
  b = Build("cifar10", epochs=10)
  b.curve("By Cutoff seq1", [_line(0.6, s) for s in (0.01, 0.02, 0.03)])
  b.curve("By Cutoff seq2", [_dropping] * 3)
  runs = b.runs()
  # Slope over epochs 6..10 (the second half), per seed.
  np.testing.assert_allclose(obs.trend(runs, "By Cutoff seq1"), [0.01, 0.02, 0.03])
  # One drop of 0.05 - 0.03 at epoch 3, within the first 5 epochs.
  np.testing.assert_allclose(obs.early_drop(runs, "By Cutoff seq2"), [0.02] * 3)
  np.testing.assert_allclose(obs.early_drop(runs, "By Cutoff seq1"), [0.0] * 3)


# ------------------------------------------------------------------ the command line
def _history(epochs=6, seeds=(0, 1)):
  """A history of the 14 settings x ``seeds`` whose per-seed numbers are known: setting
  j, seed s climbs to 0.9 + 0.001 j + 0.0001 s, reached at epoch 2 + j % 4."""
  variants = report_variants(report.R0, report.BENCHMARK_LR, seeds=seeds)
  settings = [v.name.split("/")[0] for v in variants]
  k = len(variants)
  history = {f: np.zeros((epochs, k)) for f in ("train_loss", "valid_loss", "test_loss",
                                                "lr", "index", "nonfinite")}
  acc = np.zeros((epochs, k))
  for col, (v, setting) in enumerate(zip(variants, settings, strict=True)):
    j = list(report.SETTINGS).index(setting)
    final = 0.9 + 0.001 * j + 0.0001 * v.seed
    acc[:, col] = final
    acc[:1 + j % 4, col] = 0.5
  history.update(valid_acc=acc, test_acc=acc - 0.01, train_acc=acc)
  history["valid_loss"] += 1.0
  return variants, history


def _write_folder(folder: Path, *, old_format: bool, observe_untrained_loss=True,
                  drop=None, only=None, final_acc=None):
  """``drop`` / ``only``: leave out / keep the settings of a strategy; ``final_acc``:
  setting -> the last epoch's validation accuracy of its seeds."""
  variants, history = _history()
  keep = [k for k, v in enumerate(variants)
          if not (drop and v.name.startswith(drop)) and (not only or v.name.startswith(only))]
  variants = tuple(variants[k] for k in keep)
  history = {f: h[:, keep] for f, h in history.items()}
  for k, v in enumerate(variants):
    if final_acc and v.name.split("/")[0] in final_acc:
      history["valid_acc"][-1, k] = final_acc[v.name.split("/")[0]][v.seed]
  config = SweepConfig(model="mnist_cnn", variants=variants, epochs=6,
                       observe_untrained_loss=observe_untrained_loss)
  summary = metrics.summarize(history, [v.name for v in variants], task="classification")
  raw = {"config": config.to_dict(), "completed_epochs": 6, "device": "cpu x1",
         "compile_seconds": 1.0, "epoch_seconds": [1.0] * 6, "summary": summary,
         "history": {f: h.tolist() for f, h in history.items()}, "step_history": {}}
  if not old_format:  # what lrjax writes since the older full runs (f770b5f)
    raw.update(variants=[], initial={"valid_loss": [2.3] * len(variants)})
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "results.json").write_text(json.dumps(raw))
  (folder / "comparison.json").write_text(json.dumps(
      {"info": {"data_note": "hand-written", "sizes": "1/1/1"}, "rows": []}))
  return variants, history


@pytest.mark.parametrize("old_format", (True, False))
def test_cli_reads_a_run_folder_and_writes_the_observations(tmp_path, capsys, old_format):
  variants, history = _write_folder(tmp_path, old_format=old_format,
                                    observe_untrained_loss=old_format)
  payload = obs.main([str(tmp_path)])
  printed = capsys.readouterr().out
  text = (tmp_path / "observations.md").read_text()
  assert text.strip() in printed
  saved = json.loads((tmp_path / "observations.json").read_text())
  assert saved["dataset"] == "mnist" and saved["seeds"] == 2 and saved["epochs"] == 6
  assert saved["loss0"] == ("untrained" if old_format else "first-epoch")
  assert f"--loss0 {saved['loss0']}" in text and "hand-written" in text
  ids = [c["id"] for o in saved["observations"] for c in o["checks"]]
  assert ids == ["1a", "1b", "2a", "2b", "3a", "3b", "4", "5a", "5b", "5c", "5d", "6",
                 "7a", "7b", "7c"]
  for check_id in ids:
    assert f"| ({check_id}) |" in text
  # The per-seed numbers are those of the history: the last epoch, and the convergence
  # epoch of the rule (the last epoch outside the band, plus one).
  for j, setting in enumerate(report.SETTINGS):
    row = saved["settings"][setting]
    assert row["final_valid_acc"]["per_seed"] == pytest.approx(
        [0.9 + 0.001 * j, 0.9 + 0.001 * j + 0.0001])
    assert row["final_test_acc"]["per_seed"] == pytest.approx(
        [0.89 + 0.001 * j, 0.89 + 0.001 * j + 0.0001])
    assert row["convergence_epoch"]["per_seed"] == [2 + j % 4] * 2
  # The last setting (By Oscillate seq4) is the most accurate by 0.001 with a seed std
  # of 0.00007: MNIST (5a), "seq4 By Cutoff most accurate", is not reproduced.
  five = next(o for o in saved["observations"] if o["number"] == 5)
  assert five["checks"][0]["verdict"] == N
  assert five["checks"][0]["values"]["rival"] == "By Oscillate seq4"
  assert payload["verdicts"]["5"] == N


def test_cli_refuses_folders_that_are_not_the_reports_run(tmp_path, capsys):
  cases = {tmp_path / "missing": "is not a folder", tmp_path / "empty": "has no results.json"}
  (tmp_path / "empty").mkdir()
  _write_folder(tmp_path / "subset", old_format=False, drop="By Cutoff")
  cases[tmp_path / "subset"] = "hold 10 of the report's 14 settings (missing: By Cutoff seq1"
  for folder, message in cases.items():
    with pytest.raises(SystemExit) as err:
      obs.main([str(folder)])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (folder / "observations.md").exists()


def test_cli_compares_the_other_loss0_reading(tmp_path, capsys):
  full, other = tmp_path / "full" / "mnist", tmp_path / "cutoff" / "mnist"
  _write_folder(full, old_format=True)  # the older runs: no untrained loss recorded
  # By Cutoff seq1 (lowest of the four in the full run) jumps to the top, by more than
  # its noise; seq2..seq4 keep their numbers.
  _write_folder(other, old_format=False, observe_untrained_loss=False, only="By Cutoff",
                final_acc={"By Cutoff seq1": (0.95, 0.951)})
  payload = obs.main([str(full), "--other-loss0", str(other)])
  comparison = payload["loss0_comparison"]
  assert comparison["readings"] == ["untrained", "first-epoch"]
  rows = {r["setting"]: r for r in comparison["rows"]}
  assert sorted(rows) == [f"By Cutoff seq{i}" for i in range(1, 5)]
  assert rows["By Cutoff seq1"]["final_valid_acc"]["verdict"] == "changed"
  assert rows["By Cutoff seq1"]["final_valid_acc"]["difference"] == pytest.approx(
      0.9505 - 0.90605)
  assert rows["By Cutoff seq2"]["final_valid_acc"]["verdict"] == "within noise"
  order = comparison["rankings"]["By Cutoff"]["final_valid_acc"]
  assert order["untrained"] == [f"By Cutoff seq{i}" for i in (4, 3, 2, 1)]
  assert order["first-epoch"] == [f"By Cutoff seq{i}" for i in (1, 4, 3, 2)]
  assert comparison["overall"]["untrained"]["most_accurate"] == "By Oscillate seq4"
  assert comparison["overall"]["first-epoch"]["most_accurate"] == "By Cutoff seq1"
  text = (full / "loss0_comparison.md").read_text()
  assert "(CHANGED)" in text and "not checked" in text
  assert text in capsys.readouterr().out
  # --out: the files elsewhere, the run folder only read.
  obs.main([str(full), "--other-loss0", str(other), "--out", str(tmp_path / "elsewhere")])
  assert (tmp_path / "elsewhere" / "loss0_comparison.md").read_text() == text
  assert (tmp_path / "elsewhere" / "observations.md").exists()
  capsys.readouterr()
  # The same reading twice is refused.
  with pytest.raises(SystemExit) as err:
    obs.main([str(full), "--other-loss0", str(full)])
  assert err.value.code == 2 and "both runs use --loss0 untrained" in capsys.readouterr().err


# ------------------------------------------------------------------ --loss0, --strategies
TINY = ["--synthetic", "--dataset", "mnist", "--seeds", "1", "--train-size", "320",
        "--test-size", "16", "--epochs", "7", "--batch-size", "32", "--no-figures",
        "--no-progress", "--strategies", "epoch", "cutoff", "oscillate"]


@pytest.fixture(scope="module")
def two_readings(tmp_path_factory):
  untrained = tmp_path_factory.mktemp("untrained")
  first = tmp_path_factory.mktemp("first_epoch")
  a = report.main(TINY + ["--out", str(untrained)])  # checkpointed: not --quick
  b = report.main(TINY + ["--loss0", "first-epoch", "--no-checkpoint", "--out", str(first)])
  return untrained, first, a, b


def _columns(folder):
  raw = json.loads((folder / "mnist" / "results.json").read_text())
  names = [v["name"] for v in raw["config"]["variants"]]
  history = {f: np.asarray(v, float) for f, v in raw["history"].items()}
  return raw, names, history


def _cutoff_index(losses, untrained_loss=None, fraction=0.01, decay=0.2):
  """Algorithm 2 over the validation losses of epochs 1..E: the index in use in each
  epoch.  loss_0 is ``untrained_loss`` (decisions after epochs 1..E), or the loss after
  epoch 1 (decisions after epochs 2..E); the decision after epoch e sets epoch e + 1."""
  observed = ([untrained_loss] if untrained_loss is not None else []) + list(losses)
  first = 1 if untrained_loss is not None else 2
  prev, cutoff, index, after = observed[0], fraction * abs(observed[0]), 0, {}
  for epoch, loss in enumerate(observed[1:], start=first):
    if abs(loss - prev) < cutoff:
      index, cutoff = index + 1, cutoff * decay
    prev, after[epoch] = loss, index
  return [after.get(e - 1, 0) for e in range(1, len(losses) + 1)]


def test_loss0_readings_change_by_cutoff_only_as_algorithm_2_says(two_readings):
  untrained, first, a, b = two_readings
  raw_a, names_a, hist_a = _columns(untrained)
  raw_b, names_b, hist_b = _columns(first)
  assert raw_a["config"]["observe_untrained_loss"] is True
  assert raw_b["config"]["observe_untrained_loss"] is False
  assert names_a == names_b and len(names_a) == 12  # --strategies epoch cutoff oscillate
  assert a["mnist"]["info"]["loss0"] == "untrained"
  assert b["mnist"]["info"]["loss0"] == "first-epoch"
  info = json.loads((first / "mnist" / "comparison.json").read_text())["info"]
  assert info["loss0"] == "first-epoch" and info["observe_untrained_loss"] is False
  assert info["strategies"] == ["epoch", "cutoff", "oscillate"]
  assert "--loss0 first-epoch" in (first / "mnist" / "comparison.md").read_text()
  differs = []
  for k, name in enumerate(names_a):
    same = all(np.array_equal(hist_a[f][:, k], hist_b[f][:, k], equal_nan=True)
               for f in ("valid_loss", "train_loss", "lr", "index"))
    if name.startswith("By Epoch"):
      assert same, name  # the rule never reads the loss
    elif name.startswith("By Cutoff"):
      losses = hist_a["valid_loss"][:, k]
      untrained_loss = raw_a["initial"]["valid_loss"][k]
      np.testing.assert_array_equal(hist_a["index"][:, k],
                                    _cutoff_index(losses, untrained_loss), err_msg=name)
      np.testing.assert_array_equal(hist_b["index"][:, k],
                                    _cutoff_index(hist_b["valid_loss"][:, k]), err_msg=name)
      differs.append(not same)
    else:  # By Oscillate changes exactly where epoch 1 raised the untrained loss
      listed = name in a["mnist"]["info"]["loss0_changes_oscillate"]
      assert listed == (not same), name
  assert all(differs), "the two readings should give different By Cutoff histories here"


def test_a_checkpoint_of_one_reading_refuses_the_other(two_readings):
  untrained = two_readings[0]
  with pytest.raises(SystemExit) as err:
    report.main(TINY + ["--loss0", "first-epoch", "--out", str(untrained)])
  message = str(err.value.code)
  assert "--loss0 untrained" in message and "--loss0 first-epoch" in message
  assert "observe_untrained_loss" in message  # the engine's reason, kept
  # --strategies is part of the identity too (other variants: another sweep).
  with pytest.raises(SystemExit, match="--strategies"):
    report.main(TINY[:-4] + ["--strategies", "cutoff", "--out", str(untrained)])


def test_subset_runs_write_no_observations(two_readings):
  untrained = two_readings[0]
  assert not (untrained / "mnist" / "observations.md").exists()
  assert two_readings[2]["mnist"]["observations"] is None
