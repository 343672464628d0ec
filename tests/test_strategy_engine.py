"""The engine's side of the strategies: the report's loss_0 (the untrained model's
validation loss) observed before epoch 1, and the config field / CLI flag choosing it."""

import jax
import numpy as np
import pytest

pytest.importorskip("flax")  # the engine's extra

from lrjax import cli, models  # noqa: E402
from lrjax.train import SweepConfig, Variant, run_sweep  # noqa: E402
from lrjax.train.engine import epoch as epoch_lib  # noqa: E402
from lrjax.train.engine.step import evaluate  # noqa: E402
from lrjax.train.frontends import optimizers  # noqa: E402

# A rate so small that the validation loss moves by ~1e-6 per epoch: every by-cutoff
# test |L_t - L_{t-1}| < c_t (c_0 = 1% of a loss ~2.3, then x0.2) holds, so the index
# shows exactly when decisions are made.
TINY = (Variant("cutoff", "seq1", "cutoff", 1e-6),
        Variant("epoch", "seq1", "epoch", 1e-6))


def _config(**kw):
  return SweepConfig(model="logistic", variants=TINY, epochs=3, batch_size=32, **kw)


def test_first_cutoff_decision_is_at_the_first_boundary_before_training(blobs):
  before = run_sweep(_config(), blobs, progress=False)
  after = run_sweep(_config(observe_untrained_loss=False), blobs, progress=False)
  # history["index"][e] = position at the end of epoch e. Before-training reading:
  # loss_0 = untrained loss, first decision at the boundary after epoch 1.
  np.testing.assert_array_equal(before.history["index"][:, 0], [0, 1, 2])
  # After-first-epoch reading: loss_0 = loss after epoch 1, first decision one later.
  np.testing.assert_array_equal(after.history["index"][:, 0], [0, 0, 1])
  # By epoch does not depend on the reading.
  for result in (before, after):
    np.testing.assert_array_equal(result.history["index"][:, 1], [0, 1, 2])
    assert not result.history["nonfinite"].any()
  # The initial evaluation does not change training: same losses either way.
  np.testing.assert_allclose(before.history["valid_loss"][:, 1],
                             after.history["valid_loss"][:, 1], rtol=1e-6)


def test_init_stores_the_untrained_validation_loss(blobs):
  model = models.get_model("logistic")
  ((spec, hyper, _),) = optimizers.group_variants(TINY)
  data = epoch_lib.put_data(blobs)
  kw = dict(task="classification", batch_size=32, eval_batch_size=1000)
  trainer = epoch_lib.GroupTrainer(model, spec, hyper, observe_untrained_loss=True, **kw)
  state = trainer.init(data.train_x[:1], data)
  plain = epoch_lib.GroupTrainer(model, spec, hyper, **kw).init(data.train_x[:1])
  assert np.isinf(np.asarray(plain.train.valid_loss)).all()
  for k in range(len(TINY)):
    params = jax.tree.map(lambda a, k=k: a[k], plain.train.params)
    want, _ = evaluate(model, "classification", params, {}, data.valid_x, data.valid_y, 1000)
    np.testing.assert_allclose(float(state.train.valid_loss[k]), float(want), rtol=1e-6)
  assert np.all(np.asarray(state.train.valid_loss) > 1.0)  # ~ln(10) for an untrained model
  with pytest.raises(ValueError, match="`data`"):
    trainer.init(data.train_x[:1])


def test_config_field_serialises_and_is_checked():
  config = _config(observe_untrained_loss=False)
  d = config.to_dict()
  assert d["observe_untrained_loss"] is False
  assert SweepConfig.from_dict(d) == config
  assert _config().observe_untrained_loss is True  # the report's reading by default
  legacy = dict(d)
  del legacy["observe_untrained_loss"]  # results written before the field existed
  assert SweepConfig.from_dict(legacy).observe_untrained_loss is True
  with pytest.raises(ValueError, match="`observe_untrained_loss`"):
    _config(observe_untrained_loss="no")


@pytest.mark.parametrize("flag,expected", [
    ([], True), (["--observe-untrained-loss"], True),
    (["--no-observe-untrained-loss"], False)])
def test_cli_flag_reaches_the_config(monkeypatch, flag, expected):
  import lrjax.train as train
  seen = {}

  class Stop(Exception):
    pass

  def fake_run_sweep(config, dataset, **kwargs):
    seen["config"] = config
    raise Stop

  monkeypatch.setattr(train, "run_sweep", fake_run_sweep)
  with pytest.raises(Stop):
    cli.main(["sweep", "--model", "logistic", "--train-size", "64", "--no-progress"] + flag)
  assert seen["config"].observe_untrained_loss is expected
