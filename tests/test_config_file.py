"""The sweep file (`lrjax.train.frontends.sweep_file`) and ``lrjax sweep --config`` end to end.

Trained runs use the issue's file as written (the built-in model and data) or a tiny
Flax module written into tmp_path; everything else only reads and checks files.
"""

from __future__ import annotations

import csv
import json
import pathlib
import re
import textwrap

import numpy as np
import optax
import pytest

import lrjax
from lrjax import cli, schedules, strategies
from lrjax.data import by_name
from lrjax.train import grid
from lrjax.train.frontends import sweep_file

ISSUE_FILE = """\
epochs = 2
[data]
dataset = "synthetic"
[grid]
learning_rate = [0.1, 0.01]
momentum = [0.0, 0.9]
"""

TINY_NET = """\
import flax.linen as nn


class Net(nn.Module):
  width: int = 4

  @nn.compact
  def __call__(self, x, *, train):
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(10)(nn.relu(nn.Dense(self.width)(x)))


def make():
  return Net(width=3)
"""


def _write(folder, text, name="sweep.toml"):
  path = folder / name
  path.write_text(textwrap.dedent(text))
  return path


@pytest.fixture
def tiny_net(tmp_path, monkeypatch):
  """A user's model module (not in lrjax) on sys.path, under a name of its own."""
  module = f"user_net_{abs(hash(str(tmp_path))) % 10**8}"
  (tmp_path / f"{module}.py").write_text(TINY_NET)
  monkeypatch.syspath_prepend(str(tmp_path))
  return module


def _one_line_error(capsys, *words) -> str:
  captured = capsys.readouterr()
  err = captured.err.strip().splitlines()
  assert len(err) == 1, captured.err
  assert err[0].startswith("lrjax sweep: error: "), err[0]
  assert "Traceback" not in captured.err
  for word in words:
    assert word in err[0], err[0]
  return err[0]


def test_the_issues_file_runs_as_written(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  _write(tmp_path, ISSUE_FILE)
  assert cli.main(["sweep", "--config", "sweep.toml", "--no-progress"]) == 0
  out = tmp_path / "results" / "sweep"  # the file's default output folder
  payload = json.loads((out / "results.json").read_text())
  assert payload["config"]["hparams"] == grid(learning_rate=[0.1, 0.01], momentum=[0.0, 0.9])
  assert len(payload["summary"]) == 4
  assert (out / "checkpoints").is_dir()  # checkpointed under OUT as the preset
  assert payload["completed_epochs"] == 2 and payload["config"]["model"] == "mnist_cnn"
  # The grid's rate reached the optimizer: it is the rate the state holds.
  np.testing.assert_allclose(np.asarray(payload["history"]["lr"]),
                             [[0.1, 0.1, 0.01, 0.01]] * 2, rtol=1e-6)
  rows = list(csv.DictReader((out / "history.csv").open()))
  assert len(rows) == 3 * 4 and {r["epoch"] for r in rows} == {"0", "1", "2"}  # 0: untrained
  # Momentum changes training: the four variants end apart.
  assert len({r["valid_loss"] for r in rows if r["epoch"] == "2"}) == 4
  table = [line for line in (out / "summary.md").read_text().splitlines()
           if line.startswith("| ") and "learning_rate=" in line]
  assert len(table) == 4
  assert (out / "all_settings.png").stat().st_size > 0
  assert "learning_rate=0.01,momentum=0.9,seed=0" in capsys.readouterr().out


SEARCH_FILES = {  # the issue's two files, as written
    "successive_halving": """\
epochs = 6
[data]
dataset = "synthetic"
[optimizer]
name = "sgd"
[search]
method = "successive_halving"
samples = 9
reduction = 3
min_epochs = 2
[search.space]
learning_rate = {log_uniform = [0.001, 0.3]}
momentum = {uniform = [0.0, 0.95]}
""",
    "pbt": """\
epochs = 6
[data]
dataset = "synthetic"
[optimizer]
name = "sgd"
[search]
method = "pbt"
population = 8
interval = 2
[search.space]
learning_rate = {log_uniform = [0.001, 0.3]}
""",
}


@pytest.mark.parametrize("method", sorted(SEARCH_FILES))
def test_the_issues_search_files_run(tmp_path, capsys, method):
  """The files as written (a smaller training set by flag, to keep the suite short: the
  full files were run by hand, BUILD.md), their searches recorded in every results file."""
  path = tmp_path / "search.toml"
  path.write_text(SEARCH_FILES[method])
  out = tmp_path / "out"
  assert cli.main(["sweep", "--config", str(path), "--no-progress", "--train-size", "256",
                   "--out", str(out)]) == 0
  payload = json.loads((out / "results.json").read_text())
  history = {k: np.asarray(v, float) for k, v in payload["history"].items()}
  alive = history["alive"] > 0
  if method == "successive_halving":
    np.testing.assert_array_equal(alive.sum(axis=1), [9, 9, 3, 3, 3, 3])
    assert len(payload["variants"]) == 9
  else:
    moved = history["parent"] != np.arange(8)
    np.testing.assert_array_equal(moved.any(axis=1), [False, False, True, False, True, False])
    assert alive.all()
  assert payload["spec"]["controller"]["class"].endswith(
      {"pbt": "PBT", "successive_halving": "SuccessiveHalving"}[method])
  rates = history["hparams.learning_rate"]
  assert ((rates >= 0.001 * (1 - 1e-6)) & (rates <= 0.3 * (1 + 1e-6)))[alive].all()
  rows = list(csv.DictReader((out / "history.csv").open()))
  assert {"alive", "parent", "started", "hparams.learning_rate"} <= set(rows[0])
  # The same command again resumes the finished search: nothing to train, same results.
  assert cli.main(["sweep", "--config", str(path), "--no-progress", "--train-size", "256",
                   "--out", str(out)]) == 0
  again = json.loads((out / "results.json").read_text())
  assert again["history"] == payload["history"]
  assert "resumed from epoch 6 of 6" in capsys.readouterr().err


def _tensorboard_scalars(run_dir) -> dict:
  """tag -> {step: value} of a TensorBoard run, read by TensorBoard's own reader."""
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  events = EventAccumulator(str(run_dir))
  events.Reload()
  return {tag: {e.step: e.value for e in events.Scalars(tag)}
          for tag in events.Tags()["scalars"]}


def test_a_users_module_with_flag_overrides_equals_the_library_call(tmp_path, tiny_net,
                                                                     capsys):
  """``[model] path = module:attr`` with its arguments, optax's sgd with a fixed argument,
  a lr x momentum grid, two seeds; --epochs and --out override the file, its batch size
  stays, the run resumes from its checkpoint: it is `lrjax.sweep` of those objects."""
  path = _write(tmp_path, f"""\
      epochs = 1
      batch_size = 32
      seeds = [0, 3]
      out = "{tmp_path / 'from_file'}"
      tensorboard_dir = "{tmp_path / 'tb_file'}"
      [data]
      train_size = 128
      [model]
      path = "{tiny_net}:Net"
      width = 6
      [optimizer]
      name = "sgd"
      nesterov = true
      [grid]
      learning_rate = [0.1, 0.02]
      momentum = [0.5, 0.9]
      """)
  out = tmp_path / "from_flag"
  command = ["sweep", "--config", str(path), "--out", str(out), "--no-progress"]
  # the file's 1 epoch, checkpointed; its live metrics where --tensorboard says
  assert cli.main(command + ["--tensorboard", str(tmp_path / "tb_flag")]) == 0
  first = json.loads((out / "results.json").read_text())
  assert first["completed_epochs"] == 1
  assert not (tmp_path / "tb_file").exists()
  names = [row["name"] for row in first["summary"]]
  for k, name in enumerate(names):
    scalars = _tensorboard_scalars(tmp_path / "tb_flag" / name)
    assert scalars["valid/loss"] == {0: np.float32(first["initial"]["valid_loss"][k]),
                                     1: np.float32(first["history"]["valid_loss"][0][k])}
  # Extended by the flag: resumes from the checkpoint and trains the second epoch.
  capsys.readouterr()
  assert cli.main(command + ["--epochs", "2"]) == 0
  assert "resumed from epoch 1" in capsys.readouterr().err
  assert not (tmp_path / "from_file").exists()
  payload = json.loads((out / "results.json").read_text())
  # the file's tensorboard_dir now: the resumed run wrote its one new epoch there
  for k, name in enumerate(names):
    scalars = _tensorboard_scalars(tmp_path / "tb_file" / name)
    assert scalars["train/loss"] == {2: np.float32(payload["history"]["train_loss"][1][k])}
  assert payload["completed_epochs"] == 2 and payload["config"]["batch_size"] == 32
  assert payload["config"]["model"] == f"{tiny_net}:Net"
  data = by_name.load("synthetic", train_size=128)
  module = __import__(tiny_net)
  want = lrjax.sweep(module.Net(width=6), data,
                     lambda h: optax.sgd(h["learning_rate"], h["momentum"], nesterov=True),
                     grid(learning_rate=[0.1, 0.02], momentum=[0.5, 0.9]), epochs=2,
                     batch_size=32, seeds=(0, 3), progress=False)
  assert [row["name"] for row in payload["summary"]] == want.names
  assert len(want.names) == 8
  for field in ("train_loss", "valid_loss", "test_acc"):
    np.testing.assert_allclose(np.asarray(payload["history"][field], float),
                               want.history[field], rtol=1e-5, atol=1e-6, err_msg=field)
  # The same folder with a changed file is refused, saying what differs.
  path.write_text(path.read_text().replace("nesterov = true", "nesterov = false"))
  capsys.readouterr()
  assert cli.main(command) == 1
  err = capsys.readouterr().err
  assert "optimizer_fn.fixed.nesterov: false here, true there" in err, err
  assert "Traceback" not in err
  # `lrjax plot` redraws a --config run's figure.
  (out / "all_settings.png").unlink()
  assert cli.main(["plot", str(out)]) == 0
  assert (out / "all_settings.png").stat().st_size > 0


def test_a_zero_argument_factory_beside_the_file_is_found(tmp_path):
  """``module:factory`` where the module sits beside the sweep file (not on sys.path)."""
  module = f"beside_{abs(hash(str(tmp_path))) % 10**8}"
  (tmp_path / f"{module}.py").write_text(TINY_NET)
  spec = sweep_file.load(_write(tmp_path, f'[model]\npath = "{module}:make"\n'
                                          "[grid]\nlearning_rate = [0.1]\n"))
  assert spec.model.width == 3 and type(spec.model).__name__ == "Net"
  with pytest.raises(sweep_file.SweepFileError, match=r"model\.widht: not a field of "
                                                     r".*allowed: width"):
    sweep_file.load(_write(tmp_path, f'[model]\npath = "{module}:Net"\nwidht = 3\n'))


def test_grid_is_a_cartesian_product_then_the_explicit_variants(tmp_path):
  spec = sweep_file.load(_write(tmp_path, """\
      seeds = 2
      [optimizer]
      name = "adamw"
      weight_decay = 0.01
      [grid]
      learning_rate = [0.1, 0.01]
      b1 = [0.8, 0.9, 0.95]
      [[variants]]
      learning_rate = 0.5
      [[variants]]
      learning_rate = 0.05
      b2 = 0.99
      """))
  product = [{"learning_rate": lr, "b1": b1} for lr in (0.1, 0.01) for b1 in (0.8, 0.9, 0.95)]
  assert spec.hparams == product + [{"learning_rate": 0.5},
                                    {"learning_rate": 0.05, "b2": 0.99}]
  assert spec.seeds == (0, 1) and spec.optimizer_fn.fixed == {"weight_decay": 0.01}
  # The fixed argument and the variant's reach optax.adamw.
  opt, _ = spec.optimizer_fn.arguments(spec.hparams[-1])
  assert opt == {"weight_decay": 0.01, "learning_rate": 0.05, "b2": 0.99}


def test_a_schedule_and_a_strategy_with_their_grid_names(tmp_path):
  spec = sweep_file.load(_write(tmp_path, """\
      [optimizer]
      momentum = 0.9
      [schedule]
      name = "seq3"
      cutoff_fraction = 0.05
      [grid]
      schedule.r0 = [0.1, 0.01]
      schedule.rule = ["cutoff"]
      [[variants]]
      schedule.r0 = 0.2
      schedule.rule = "epoch"
      """))
  assert spec.hparams == [{"schedule.r0": 0.1, "schedule.rule": "cutoff"},
                          {"schedule.r0": 0.01, "schedule.rule": "cutoff"},
                          {"schedule.r0": 0.2, "schedule.rule": "epoch"}]
  import jax.numpy as jnp
  params = jnp.zeros(3)
  tx = spec.optimizer_fn(spec.hparams[1])
  want = strategies.sgd(schedules.seq3(0.01), "cutoff", momentum=0.9, cutoff_fraction=0.05)
  state, want_state = tx.init(params), want.init(params)
  assert float(strategies.current_lr(state)) == pytest.approx(0.01)
  assert float(strategies.strategy_state(state).cutoff) == float(
      strategies.strategy_state(want_state).cutoff)
  assert spec.optimizer_fn.strategy is strategies.sgd
  # The variant's own rule: by epoch, one boundary advances the sequence.
  tx = optax.with_extra_args_support(spec.optimizer_fn(spec.hparams[2]))
  _, state = tx.update(jnp.ones(3), tx.init(params), params, valid_loss=1.0,
                       epoch_boundary=True)
  assert int(strategies.current_index(state)) == 1
  assert float(strategies.current_lr(state)) == pytest.approx(float(schedules.seq3(0.2)(1)))


@pytest.mark.parametrize("text, key, says", [
    ("epoch = 2\n", "sweep.toml: epoch:", "allowed: epochs, batch_size, seeds"),
    ('epochs = "2"\n', "sweep.toml: epochs:", "must be an integer, got '2'"),
    ("epochs = 0\n", "sweep.toml: epochs:", "at least 1"),
    ("seeds = [1, 1]\n", "sweep.toml: seeds:", "repeat"),
    ("[data]\nvalidation_fraction = 1.5\n", "data.validation_fraction:", "between 0 and 1"),
    ('[data]\ndataset = "imagenet"\n', "data.dataset:", "one of synthetic, mnist"),
    ("[data]\nbatch_size = 3\n", "data.batch_size:", "allowed: dataset, source_dir"),
    ('[model]\nname = "gpt"\n', "model.name:", "mnist_cnn"),
    ("[model]\nwidht = 3\n", "model.widht:", "allowed: "),
    ('[model]\npath = "no_such_module_xyz:Net"\n', "model.path:", "cannot import"),
    ('[model]\npath = "nocolon"\n', "model.path:", "module:attribute"),
    ('[optimizer]\nname = "sgdd"\n', "optimizer.name:", "adam, adamax"),
    ("[grid]\nmomentun = [0.9]\nlearning_rate = [0.1]\n", "grid.momentun:",
     "allowed: learning_rate, momentum, nesterov"),
    ("[grid]\nlearning_rate = 0.1\n", "grid.learning_rate:", "non-empty list"),
    ("[grid]\nlearning_rate = [-0.1]\n", "grid.learning_rate:", "positive"),
    ("[grid]\nmomentum = [0.9]\n", "optimizer.learning_rate:", "required"),
    ('[schedule]\nname = "seq3"\n[grid]\nschedule.r0 = [0.1, -1.0]\n',
     "grid.schedule.r0:", "`r0` must be finite and > 0, got -1.0"),
    ('[schedule]\nname = "seq3"\nr0 = 0.1\n[grid]\nlearning_rate = [0.1]\n',
     "grid.learning_rate:", "from [schedule]"),
    ('[schedule]\nname = "seq3"\nr0 = 0.1\nrule = "sometimes"\n', "schedule.rule:",
     "fixed"),
    ("epochs = 2\n[grid\n", "sweep.toml:", "not valid TOML"),
    ('[search]\nmethod = "grid"\n', "search.method:", "successive_halving, hyperband"),
    ("[search]\nsamples = 9\n", "search.method:", "required"),
    ('[search]\nmethod = "pbt"\npopulaton = 8\n', "search.populaton:",
     "not an option of pbt; allowed: method, population, interval"),
    ('[search]\nmethod = "successive_halving"\nsamples = 0\n[search.space]\n'
     'learning_rate = {log_uniform = [0.001, 0.3]}\n', "search.samples:", "integer >= 1"),
    ('[search]\nmethod = "pbt"\npopulation = "8"\n', "search.population:", "a number"),
    ('[search]\nmethod = "pbt"\npopulation = 8\n[search.space]\n'
     'learning_rate = {log_uniform = [0.0, 0.3]}\n', "search.space.learning_rate.log_uniform:",
     "0 < low < high"),
    ('[search]\nmethod = "pbt"\npopulation = 8\n[search.space]\n'
     'learning_rate = {normal = [0.0, 0.3]}\n', "search.space.learning_rate:",
     "log_uniform = [...]"),
    ('[search]\nmethod = "pbt"\npopulation = 8\n[search.space]\n'
     'learning_rate = {uniform = [0.1]}\n', "search.space.learning_rate.uniform:",
     "[low, high]"),
    ('[search]\nmethod = "pbt"\npopulation = 8\n[search.space]\nmomentun = '
     '{uniform = [0.0, 0.9]}\nlearning_rate = 0.1\n', "search.space.momentun:",
     "allowed: learning_rate, momentum"),
    ('[search]\nmethod = "pbt"\npopulation = 8\nsampler = "grid"\n[search.space]\n'
     'learning_rate = {uniform = [0.01, 0.1]}\n', "search.sampler:", "halton, sobol"),
    ('[grid]\nmomentum = [0.0]\n[search]\nmethod = "pbt"\npopulation = 8\n'
     '[search.space]\nlearning_rate = {uniform = [0.01, 0.1]}\n', "search.space:",
     "not both"),
    # strings where the optimizer's / schedule's / strategy's argument is a number
    ('[grid]\nlearning_rate = [0.1]\nmomentum = ["0.0", "0.9"]\n', "grid.momentum:",
     "must be a number (the 'momentum' argument of optax.sgd), got '0.0'; write it "
     "without quotes"),
    ('[optimizer]\nname = "adam"\nb1 = "0.9"\n[grid]\nlearning_rate = [0.1]\n',
     "optimizer.b1:", "must be a number (the 'b1' argument of optax.adam)"),
    ('[schedule]\nname = "seq3"\nr0 = "0.1"\n', "schedule.r0:",
     "must be a number (the 'r0' argument of lrjax.schedules.seq3)"),
    ('[schedule]\nname = "seq3"\nr0 = 0.1\n[grid]\nschedule.rule = ["epoch"]\n'
     'schedule.patience = ["3"]\n', "grid.schedule.patience:",
     "'patience' argument of lrjax.strategies.scale_by_strategy"),
    ('[optimizer]\nnesterov = "yes"\n[grid]\nlearning_rate = [0.1]\n',
     "optimizer.nesterov:", "must be true or false (the 'nesterov' argument of "
     "optax.sgd), got 'yes'"),
    ("tensorboard_dir = 3\n", "sweep.toml: tensorboard_dir:", "must be a string"),
    # A key fixed in its section and swept too: two values for one argument.
    ("[optimizer]\nlearning_rate = 0.1\nmomentum = 0.9\n[[variants]]\nmomentum = 0.0\n",
     "variants[0].momentum:", "also set as optimizer.momentum = 0.9; give it in one place"),
    ("[optimizer]\nmomentum = 0.9\n[grid]\nlearning_rate = [0.1]\nmomentum = [0.0, 0.5]\n",
     "grid.momentum:", "also set as optimizer.momentum = 0.9"),
    ('[schedule]\nname = "seq3"\nr0 = 0.1\n[grid]\nschedule.r0 = [0.2]\n',
     "grid.schedule.r0:", "also set as schedule.r0 = 0.1"),
    ('[schedule]\nname = "seq3"\nr0 = 0.1\nrule = "cutoff"\n[[variants]]\n'
     'schedule.rule = "epoch"\n', "variants[0].schedule.rule:",
     "also set as schedule.rule = 'cutoff'"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_key_and_exits_2(tmp_path, capsys,
                                                                    monkeypatch, text, key,
                                                                    says):
  monkeypatch.setattr(sweep_file.SweepFile, "spec", _no_training)
  path = _write(tmp_path, text)
  assert cli.main(["sweep", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
  _one_line_error(capsys, key, says, str(tmp_path))
  assert not (tmp_path / "o").exists()


def _no_training(*args, **kwargs):
  raise AssertionError("a bad file must be refused before training")


def test_strings_for_the_strategy_rule_are_allowed_and_the_key_is_parsed(tmp_path):
  spec = sweep_file.load(_write(tmp_path, """\
      tensorboard_dir = "tb"
      [schedule]
      name = "seq3"
      r0 = 0.1
      [grid]
      schedule.rule = ["epoch", "cutoff"]
      """))
  assert spec.tensorboard_dir == pathlib.Path("tb")
  names = [v["name"] for v in lrjax.train.frontends.spec.variants_of(
      spec.hparams, spec.seeds, None, None)]
  assert names == ["schedule.rule=epoch,seed=0", "schedule.rule=cutoff,seed=0"]


def test_a_model_without_a_train_argument_is_one_line(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(sweep_file.SweepFile, "spec", _no_training)
  module = f"no_train_{abs(hash(str(tmp_path))) % 10**8}"
  (tmp_path / f"{module}.py").write_text(TINY_NET.replace(", *, train)", ")"))
  path = _write(tmp_path, f'[model]\npath = "{module}:Net"\n')
  assert cli.main(["sweep", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
  _one_line_error(capsys, "model.path:", f"{module}:Net: lrjax calls model(x, train=...): "
                  "add a `train` argument to Net.__call__")


def test_a_missing_file_and_a_flag_of_the_preset_exit_2(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(sweep_file.SweepFile, "spec", _no_training)
  assert cli.main(["sweep", "--config", str(tmp_path / "nope.toml")]) == 2
  assert re.search(r"nope\.toml: no such file$", _one_line_error(capsys))
  path = _write(tmp_path, ISSUE_FILE)
  assert cli.main(["sweep", "--config", str(path), "--r0", "0.1"]) == 2
  _one_line_error(capsys, "--r0", "--config")
  assert cli.main(["sweep", "--config", str(path), "--preset", "report"]) == 2
  _one_line_error(capsys, "--preset")
  assert cli.main(["sweep", "--config", str(path), "--batch-size", "5000"]) == 2
  _one_line_error(capsys, "--batch-size 5000", "training examples")
  # A flag's value the file's checks refuse is reported as the flag's.
  logistic = _write(tmp_path, '[model]\nname = "logistic"\n', "logistic.toml")
  assert cli.main(["sweep", "--config", str(logistic), "--conv-impl", "xla"]) == 2
  _one_line_error(capsys, "--conv-impl 'xla': not an option of 'logistic'")


def test_the_preset_flag_and_its_old_name(capsys):
  parse = cli._parser().parse_args
  assert parse(["sweep"]).preset == parse(["sweep", "--variants", "report"]).preset == "report"
  assert parse(["sweep", "--preset", "report"]).config is None
  assert cli.typed_flags(["sweep", "--epochs", "3", "--no-progress"]) == {"epochs",
                                                                         "no_progress"}
  with pytest.raises(SystemExit):
    cli.main(["sweep", "--help"])
  help_text = " ".join(capsys.readouterr().out.split())
  assert "--config FILE" in help_text and "override the file's values" in help_text


def test_the_readmes_sweep_files_load(tmp_path):
  readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
  blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
  assert ISSUE_FILE in blocks
  second = next(b for b in blocks if "mynets" in b)
  (searched,) = [b for b in blocks if "[search]" in b]
  found = sweep_file.load(_write(tmp_path, searched))
  assert isinstance(found.controller, lrjax.train.search.SuccessiveHalving)
  assert found.hparams.names == ["learning_rate", "momentum"]
  (tmp_path / "mynets.py").write_text(TINY_NET.replace("class Net", "class MLP"))
  spec = sweep_file.load(_write(tmp_path, second))
  assert spec.model.width == 64 and len(spec.hparams) == 2 * 2 * 2 + 1
  assert spec.hparams[-1] == {"momentum": 0.9, "schedule.r0": 0.05, "schedule.rule": "fixed"}
  assert spec.optimizer_fn.strategy is strategies.sgd


def test_the_optimizer_fn_describes_itself_completely(tmp_path):
  """Its repr is what a checkpoint records of the optimizer: a changed fixed argument
  changes it, and it holds no memory address."""
  text = "[optimizer]\nname = 'adamw'\nweight_decay = {}\n[grid]\nlearning_rate = [0.1]\n"
  a = repr(sweep_file.load(_write(tmp_path, text.format(0.01))).optimizer_fn)
  b = repr(sweep_file.load(_write(tmp_path, text.format(0.1))).optimizer_fn)
  assert a != b and "optax" in a and "adamw" in a and " at 0x" not in a
