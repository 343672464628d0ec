"""What comes after a real `lrjax.sweep`: seeds aggregated from the result as it comes,
the best variant and setting named in summary.md, and `lrjax plot` on folders written by
the library (one, or several overlaid).  The references are computed here from the
history and the variants' hyperparameters with numpy, not with lrjax's summaries."""

from __future__ import annotations

import json
import shutil

import flax.linen as nn
import numpy as np
import optax
import pytest
from figures import capture_figures, lines

import lrjax
from lrjax import cli
from lrjax.data import synthetic
from lrjax.train.reports import metrics, plotting, results

EPOCHS, SEEDS = 2, (0, 1)
GRID = lrjax.train.grid(learning_rate=[0.3, 0.03], momentum=[0.0, 0.9])


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x, *, train):
    x = nn.relu(nn.Dense(16)(x.reshape((x.shape[0], -1))))
    return nn.Dense(10)(x)


def optimizer_fn(h):
  return optax.inject_hyperparams(optax.sgd)(h["learning_rate"], h["momentum"])


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
  """A 2 x 2 grid x 2 seeds swept with ``out_dir`` (the library's own results folder)."""
  out = tmp_path_factory.mktemp("api") / "run_a"
  result = lrjax.sweep(MLP(), synthetic("tiny", num_train=400, num_test=50, seed=1),
                       optimizer_fn, GRID, epochs=EPOCHS, batch_size=32, seeds=SEEDS,
                       progress=False, out_dir=out)
  return result, out


def _by_setting(result):
  """Setting (its hparams as a sorted tuple) -> the history columns of its seeds."""
  columns = {}
  for k, v in enumerate(result.variants):
    columns.setdefault(tuple(sorted(v["hparams"].items())), []).append(k)
  return columns


def test_aggregate_seeds_takes_the_sweep_result_as_it_comes(swept):
  result, out = swept
  rows = lrjax.train.aggregate_seeds(result)
  columns = _by_setting(result)
  assert len(rows) == len(GRID) == len(columns) and [r["seeds"] for r in rows] == [2] * 4
  final_acc = result.history["valid_acc"][-1]
  for row in rows:
    members = columns[tuple(sorted(row["hparams"].items()))]
    assert row["names"] == [result.names[k] for k in members]
    assert row["seed_values"] == list(SEEDS)
    assert row["final_valid_acc_mean"] == pytest.approx(final_acc[members].mean(), rel=1e-12)
    assert row["final_valid_acc_std"] == pytest.approx(np.std(final_acc[members], ddof=1),
                                                       rel=1e-12, abs=1e-15)
  # labels: the names lrjax gave the variants, without their seed
  assert rows[0]["setting"] == "learning_rate=0.3,momentum=0.0"
  # the same from the folder the sweep wrote, and from the rows with their hparams
  loaded = lrjax.train.aggregate_seeds(results.load(out))
  assert [r["setting"] for r in loaded] == [r["setting"] for r in rows]
  np.testing.assert_allclose([r["final_valid_acc_mean"] for r in loaded],
                             [r["final_valid_acc_mean"] for r in rows], rtol=1e-12)
  with_hparams = [dict(row, hparams=v["hparams"]) for row, v in zip(result.summary,
                                                                   result.variants, strict=True)]
  assert [r["final_valid_acc_mean"] for r in lrjax.train.aggregate_seeds(with_hparams)] == \
      pytest.approx([r["final_valid_acc_mean"] for r in rows], rel=1e-12)


def test_summary_md_names_the_best_variant_and_setting(swept):
  result, out = swept
  final_acc = result.history["valid_acc"][-1]
  best = int(np.argmax(final_acc))
  columns = _by_setting(result)
  means = {key: final_acc[members].mean() for key, members in columns.items()}
  best_setting = max(means, key=means.get)
  text = (out / "summary.md").read_text()
  marked = [line for line in text.splitlines() if "(best)**" in line]
  assert len(marked) == 2  # one variant row, one setting row
  assert marked[0].startswith(f"| **{result.names[best]} (best)** |")
  label = ",".join(f"{k}={v}" for k, v in dict(best_setting).items())
  assert marked[1].startswith(f"| **{label} (best)** | 2 |")
  assert (f"Best variant: {result.names[best]}, final validation accuracy "
          f"{final_acc[best]:.4f} (larger is better).") in text
  assert f"Best setting over seeds: {label}, final validation accuracy " \
         f"{means[best_setting]:.4f} ± " in text
  assert "calls_per_epoch" not in text and "per compiled call" in text  # the plan stays here
  assert json.loads((out / "results.json").read_text())["task"] == {
      "name": "classification", "monitor": "acc", "higher_is_better": True}


def test_best_index_follows_the_tasks_direction_and_skips_diverged_rows():
  rows = [{"final_valid_loss": 0.5}, {"final_valid_loss": float("nan")},
          {"final_valid_loss": 0.2}, {"final_valid_loss": None}]
  assert metrics.best_index(rows, "regression") == 2  # smaller loss is better
  accs = [{"final_valid_acc": 0.7}, {"final_valid_acc": 0.9}, {"final_valid_acc": 0.9}]
  assert metrics.best_index(accs, "classification") == 1  # larger; the first of equals
  assert metrics.best_index([{"final_valid_acc": float("nan")}], "classification") is None


def test_lrjax_plot_draws_a_folder_the_library_wrote(swept, capsys):
  result, out = swept
  for png in out.glob("*.png"):
    png.unlink()
  with capture_figures() as figures:
    assert cli.main(["plot", str(out)]) == 0
  assert sorted(figures) == ["all_settings.png"] and (out / "all_settings.png").is_file()
  assert capsys.readouterr().out.split() == [str(out / "all_settings.png")]
  drawn = lines(figures["all_settings.png"], "valid acc")
  assert sorted(drawn) == sorted(result.names)
  for k, name in enumerate(result.names):
    np.testing.assert_allclose(drawn[name].y, [result.initial["valid_acc"][k],
                                               *result.history["valid_acc"][:, k]])
  # colour: the learning rate; line style: the momentum (the grid's last axis)
  colour = {v["hparams"]["learning_rate"]: set() for v in result.variants}
  style = {v["hparams"]["momentum"]: set() for v in result.variants}
  for v in result.variants:
    colour[v["hparams"]["learning_rate"]].add(drawn[v["name"]].color)
    style[v["hparams"]["momentum"]].add(drawn[v["name"]].linestyle)
  assert all(len(c) == 1 for c in colour.values()) and len(set().union(*colour.values())) == 2
  assert all(len(s) == 1 for s in style.values()) and len(set().union(*style.values())) == 2
  # the Python API's own call draws the same
  with capture_figures() as again:
    plotting.plot_run(result, out / "again")
  for a, b in zip(figures["all_settings.png"], again["all_settings.png"], strict=True):
    assert a.label == b.label and a.color == b.color
    np.testing.assert_allclose(a.y, b.y)


def test_lrjax_plot_overlays_two_runs_named_by_their_folders(swept, tmp_path, capsys):
  result, out = swept
  # The second run: the same results in another folder, its accuracies changed, so
  # the overlay must draw each run's own numbers.
  other = tmp_path / "run_b"
  shutil.copytree(out, other)
  payload = json.loads((other / "results.json").read_text())
  payload["history"]["valid_acc"] = [[a / 2 for a in row]
                                     for row in payload["history"]["valid_acc"]]
  payload["history"]["valid_acc"].pop()  # a shorter run: one epoch
  (other / "results.json").write_text(json.dumps(payload))
  with capture_figures() as figures:
    assert cli.main(["plot", str(out), str(other), "--out", str(tmp_path / "cmp")]) == 0
  assert (tmp_path / "cmp" / "all_settings.png").is_file()
  drawn = lines(figures["all_settings.png"], "valid acc")
  assert sorted(drawn) == sorted([f"run_a: {n}" for n in result.names]
                                 + [f"run_b: {n}" for n in result.names])
  for k, name in enumerate(result.names):
    a, b = drawn[f"run_a: {name}"], drawn[f"run_b: {name}"]
    np.testing.assert_allclose(a.y[1:], result.history["valid_acc"][:, k])
    np.testing.assert_allclose(b.y[1:2], result.history["valid_acc"][:1, k] / 2)
    assert np.isnan(b.y[2])  # run_b ended after one epoch
    assert a.color == b.color and a.linestyle != b.linestyle  # same setting, other run
  # the default output folder is "comparison" beside the first run
  with capture_figures():
    assert cli.main(["plot", str(out), str(other)]) == 0
  assert (out.parent / "comparison" / "all_settings.png").is_file()
  capsys.readouterr()
  # same folder names in different places: the labels take a parent along
  assert plotting.run_labels(["x/a/sweep", "x/b/sweep"]) == ["a/sweep", "b/sweep"]


def test_lrjax_plot_refuses_what_is_not_a_results_folder_in_one_line(tmp_path, capsys):
  (tmp_path / "empty").mkdir()
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "results.json").write_text("{not json")
  for folder, says in (("empty", "no results file at"), ("bad", "not a results file")):
    assert cli.main(["plot", str(tmp_path / folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lrjax plot: error: ") and says in err[0]


def test_readmes_after_sweep_example_runs(tmp_path, monkeypatch, capsys):
  import pathlib
  import re
  readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
  match = re.search(r"<!-- writers-example -->\s*```python\n(.*?)```", readme, re.S)
  assert match, "README.md lost its `<!-- writers-example -->` block"
  monkeypatch.chdir(tmp_path)
  scope = {}
  exec(compile(match.group(1), "README.md", "exec"), scope)  # noqa: S102 (our own README)
  result = scope["result"]
  printed = capsys.readouterr().out.splitlines()
  # the user's writer: epochs 1-3, every variant's validation accuracy, prefixed by name
  for epoch in (1, 2, 3):
    line = " ".join(l for l in printed if l.startswith(f"{epoch} {{"))
    for k, name in enumerate(result.names):
      assert f"'{name}/valid/acc': {round(result.history['valid_acc'][epoch - 1, k], 3)}" \
          in line
  assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == sorted(result.names)
  assert (tmp_path / "results" / "mine" / "all_settings.png").is_file()
  assert printed[-1] == "learning_rate=0.3, momentum=0.0"
