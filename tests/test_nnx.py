"""Flax NNX models in `lrjax.sweep`: `lrjax.train.engine.nnx_adapter`.

References: NNX itself (the adapter's outputs and BatchNorm updates equal the NNX
model's own ``model.train()`` / ``model.eval()`` calls), solo sweeps (K = 1, the
unbatched program), and the same architecture written in Linen with the parameters
copied across.
"""

from __future__ import annotations

import functools
import inspect
import pathlib
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import lrjax
from lrjax.data import synthetic
from lrjax.train.engine import nnx_adapter
from lrjax.train.engine.epoch import _INIT_SALT, variant_key

TOL = 1e-5
COMPARED = ("train_loss", "valid_loss", "test_loss", "valid_acc", "test_acc", "lr")
LRS = [0.3, 0.1, 0.03, 0.01]


class ConvNet(nnx.Module):
  """Conv -> BatchNorm -> ReLU -> Dropout -> Linear, on 8x8x1 images."""

  def __init__(self, *, rngs: nnx.Rngs, dropout: float = 0.2, width: int = 4):
    # No bias before BatchNorm: its gradient is exactly 0 (rounding noise in float32).
    self.conv = nnx.Conv(1, width, (3, 3), use_bias=False, rngs=rngs)
    self.bn = nnx.BatchNorm(width, momentum=0.9, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)
    self.head = nnx.Linear(width * 8 * 8, 10, rngs=rngs)

  def __call__(self, x):
    x = self.drop(nnx.relu(self.bn(self.conv(x))))
    return self.head(x.reshape((x.shape[0], -1)))


class LinenConvNet(nn.Module):
  """`ConvNet` in Linen."""

  dropout: float = 0.0
  width: int = 4

  @nn.compact
  def __call__(self, x, *, train):
    x = nn.Conv(self.width, (3, 3), use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))
    return nn.Dense(10, name="head")(x.reshape((x.shape[0], -1)))


class TrainFlagNet(nnx.Module):
  """An NNX model that takes ``train`` in ``__call__`` rather than from .train()."""

  def __init__(self, *, rngs):
    self.bn = nnx.BatchNorm(4, momentum=0.9, rngs=rngs)
    self.lin = nnx.Linear(64, 4, rngs=rngs)

  def __call__(self, x, *, train):
    return self.bn(self.lin(x.reshape((x.shape[0], -1))), use_running_average=not train)


@pytest.fixture(scope="module")
def data():
  return synthetic("tiny", num_train=256, num_test=64, seed=3)


def run(model, data, hparams, **kw):
  kw = {"epochs": 2, "batch_size": 32, "progress": False, **kw}
  return lrjax.sweep(model, data, lambda h: optax.sgd(h["learning_rate"], momentum=0.9),
                     hparams, **kw)


def untrained_loss(result) -> np.ndarray:
  """The untrained model's validation loss per variant (``initial`` once u11e's
  SweepResult is merged, ``initial_valid_loss`` before)."""
  initial = getattr(result, "initial", None)
  return np.asarray(initial["valid_loss"] if initial else result.initial_valid_loss)


def x_batch(n=16, seed=0):
  return jax.random.normal(jax.random.key(seed), (n, 8, 8, 1))


def state_dict(model, kind):
  return nnx.to_pure_dict(nnx.state(model, kind))


# -- the adapter against NNX itself -------------------------------------------------

def apply(linen, variables, x, **kwargs):
  """``linen.apply`` as one compiled program (not op by op: faster on a CPU)."""
  return jax.jit(functools.partial(linen.apply, **kwargs))(variables, x)


def nnx_call(model, x, **kwargs):
  """The NNX model's own call (the reference), compiled; its state updates are kept."""
  return nnx.jit(lambda m, x: m(x, **kwargs))(model, x)


def test_instance_variables_and_outputs_are_the_models():
  model = ConvNet(rngs=nnx.Rngs(0), dropout=0.0)
  linen = nnx_adapter.as_linen(model)
  x = x_batch()
  variables = linen.init(jax.random.PRNGKey(7), x, train=False)
  assert set(variables) == {"params", "batch_stats"}
  equal = lambda a, b: jax.tree.map(np.testing.assert_array_equal, a, b)
  equal(variables["params"], state_dict(model, nnx.Param))
  equal(variables["batch_stats"], state_dict(model, nnx.BatchStat))

  # Evaluation: running averages (BatchNorm), no dropout, as model.eval().
  reference = nnx.clone(model)
  reference.eval()
  np.testing.assert_allclose(apply(linen, variables, x, train=False), nnx_call(reference, x),
                             rtol=1e-6, atol=1e-6)
  # Training: batch statistics, running averages updated, as model.train().
  outputs, updated = apply(linen, variables, x, train=True,
                           rngs={"default": jax.random.PRNGKey(1)}, mutable=["batch_stats"])
  reference.train()
  np.testing.assert_allclose(outputs, nnx_call(reference, x), rtol=1e-6, atol=1e-6)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-7),
               updated["batch_stats"], state_dict(reference, nnx.BatchStat))
  assert not np.allclose(updated["batch_stats"]["bn"]["mean"], 0.0)
  # The user's instance is untouched (still at its initial statistics, train mode).
  np.testing.assert_array_equal(model.bn.mean.get_value(), np.zeros(4))
  assert model.drop.deterministic is False


@pytest.mark.parametrize("rngs, stream", [(nnx.Rngs(0), "default"),
                                          (nnx.Rngs(params=0, dropout=1), "dropout")])
def test_dropout_keys_come_from_the_engine_stream(rngs, stream):
  model = ConvNet(rngs=rngs, dropout=0.5)
  linen = nnx_adapter.as_linen(model)
  x = x_batch()
  variables = linen.init(jax.random.PRNGKey(0), x, train=False)
  assert stream in lrjax.train.api.rng_streams(linen, variables, x)
  train = jax.jit(lambda key: linen.apply(variables, x, train=True, rngs={stream: key},
                                          mutable=["batch_stats"])[0])
  a, b = train(jax.random.PRNGKey(1)), train(jax.random.PRNGKey(2))
  np.testing.assert_array_equal(a, train(jax.random.PRNGKey(1)))  # reproducible
  assert np.abs(a - b).max() > 0.1  # another key (step, seed), another mask
  # Evaluation never drops: equal to the model with dropout off.
  off = nnx.clone(model)
  off.eval()
  np.testing.assert_allclose(apply(linen, variables, x, train=False), nnx_call(off, x),
                             rtol=1e-6, atol=1e-6)


def test_factory_initialises_per_key_and_under_vmap():
  linen = nnx_adapter.as_linen(lambda rngs: ConvNet(rngs=rngs))
  x = x_batch(2)
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  init = jax.jit(lambda k: linen.init(k, x, train=False))
  stacked = jax.jit(jax.vmap(init))(keys)
  kernels = stacked["params"]["conv"]["kernel"]
  assert kernels.shape == (3, 3, 3, 1, 4)
  assert not np.allclose(kernels[0], kernels[1])  # each key its own initialisation
  # The same key, the same parameters, vmapped or not.
  np.testing.assert_array_equal(init(keys[1])["params"]["conv"]["kernel"], kernels[1])


def test_train_flag_in_call_is_passed():
  model = TrainFlagNet(rngs=nnx.Rngs(0))
  linen = nnx_adapter.as_linen(model)
  x = x_batch()
  variables = linen.init(jax.random.PRNGKey(0), x, train=False)
  out_train, _ = apply(linen, variables, x, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(out_train, nnx_call(nnx.clone(model), x, train=True),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(apply(linen, variables, x, train=False),
                             nnx_call(nnx.clone(model), x, train=False), rtol=1e-6, atol=1e-6)


def test_bad_models_rejected(data):
  with pytest.raises(TypeError, match="`model` must be .* an nnx.Module or a factory"):
    run("ConvNet", data, {"learning_rate": [0.1]})
  with pytest.raises(TypeError, match="got the Linen class LinenConvNet"):
    run(LinenConvNet, data, {"learning_rate": [0.1]})
  with pytest.raises(TypeError, match="model.rngs=nnx.Rngs.0.. raised"):
    run(lambda: ConvNet(rngs=nnx.Rngs(0)), data, {"learning_rate": [0.1]})
  with pytest.raises(TypeError, match="returned"):
    run(lambda rngs: 3, data, {"learning_rate": [0.1]})
  # Variables that are not this model's: named, not a KeyError deep in NNX.
  linen = nnx_adapter.as_linen(ConvNet(rngs=nnx.Rngs(0)))
  params = linen.init(jax.random.PRNGKey(0), x_batch(2), train=False)["params"]
  with pytest.raises(ValueError, match="lack 'batch_stats' bn/mean"):
    linen.apply({"params": params}, x_batch(2), train=False)


# -- sweeps ----------------------------------------------------------------------------

def test_nnx_sweep_of_four_rates_equals_each_alone(data):
  # An instance (the factory's per-seed init is covered by the README example and
  # test_factory_initialises_per_key_and_under_vmap); its dropout stream is `default`.
  model = ConvNet(rngs=nnx.Rngs(0), dropout=0.2)
  result = run(model, data, {"learning_rate": LRS}, seeds=(5,))
  assert len(set(np.round(result.history["train_loss"][-1], 5))) == 4
  assert np.all(np.isfinite(result.history["valid_loss"]))
  for v in result.variants:
    solo = run(model, data, [v["hparams"]], seeds=(v["seed"],))
    np.testing.assert_allclose(untrained_loss(result)[v["index"]],
                               untrained_loss(solo)[0], rtol=TOL, atol=TOL)
    for field in COMPARED:
      np.testing.assert_allclose(result.history[field][:, v["index"]],
                                 solo.history[field][:, 0], rtol=TOL, atol=TOL,
                                 err_msg=f"{field} of {v['name']}")


def test_linen_and_nnx_give_the_same_curves(data):
  """Same architecture, same initial parameters (Linen's seed-0 init copied into the NNX
  instance): the same curves.  Dropout rate 0 in both: the two APIs draw their masks
  from the engine's key differently (Linen folds in the module path)."""
  linen = LinenConvNet(dropout=0.0)
  x = jnp.asarray(data.train_x[:1])
  variables = linen.init(variant_key(0, _INIT_SALT), x, train=False)
  model = ConvNet(rngs=nnx.Rngs(123), dropout=0.0)
  nnx.replace_by_pure_dict(params := nnx.state(model, nnx.Param), variables["params"])
  nnx.update(model, params)
  np.testing.assert_array_equal(model.conv.kernel.get_value(),
                                variables["params"]["conv"]["kernel"])
  hparams = {"learning_rate": [0.3, 0.03]}
  from_linen = run(linen, data, hparams)
  from_nnx = run(model, data, hparams)
  np.testing.assert_allclose(untrained_loss(from_nnx), untrained_loss(from_linen),
                             rtol=TOL, atol=TOL)
  for field in COMPARED:
    np.testing.assert_allclose(from_nnx.history[field], from_linen.history[field],
                               rtol=TOL, atol=TOL, err_msg=field)
  assert from_nnx.history["train_loss"][-1, 0] < from_nnx.history["train_loss"][0, 0]
  # An instance is every variant's start: its own validation loss, evaluated by NNX.
  model.eval()
  expected = optax.softmax_cross_entropy_with_integer_labels(
      model(jnp.asarray(data.valid_x)), jnp.asarray(data.valid_y)).mean()
  np.testing.assert_allclose(untrained_loss(from_nnx), [expected, expected], rtol=1e-5)


def test_repr_names_the_architecture_and_the_start_not_the_mode():
  """A checkpoint's run identity records ``repr(model)``: equal for the same start in
  another mode, different for other initial parameters or another architecture."""
  model = ConvNet(rngs=nnx.Rngs(0))
  in_eval = ConvNet(rngs=nnx.Rngs(0))
  in_eval.eval()
  described = repr(nnx_adapter.as_linen(model))
  assert described == repr(nnx_adapter.as_linen(in_eval))
  assert " at 0x" not in described and "rate=0.2" in described
  assert described != repr(nnx_adapter.as_linen(ConvNet(rngs=nnx.Rngs(1))))
  assert described != repr(nnx_adapter.as_linen(ConvNet(rngs=nnx.Rngs(0), dropout=0.3)))


class Interrupt(Exception):
  pass


def test_nnx_sweep_resumes_from_its_checkpoint_exactly(data, tmp_path):
  if "checkpoint_dir" not in inspect.signature(lrjax.sweep).parameters:
    pytest.skip("lrjax.sweep has no checkpoint_dir= on this branch (it comes with u11e)")
  # A factory (per-seed init) with dropout: parameters, batch statistics and the
  # optimizer state must come back, and the dropout keys go on from the right step.
  factory = lambda rngs: ConvNet(rngs=rngs, dropout=0.2)
  hparams = {"learning_rate": [0.1, 0.03]}
  whole = run(factory, data, hparams, epochs=2)

  def stop_after_first_epoch(epoch, history):
    if epoch == 0:
      raise Interrupt

  folder = tmp_path / "ckpt"
  with pytest.raises(Interrupt):
    run(factory, data, hparams, epochs=2, checkpoint_dir=folder,
        on_epoch_end=stop_after_first_epoch)
  resumed = run(factory, data, hparams, epochs=2, checkpoint_dir=folder)
  for field in COMPARED:
    np.testing.assert_allclose(resumed.history[field], whole.history[field],
                               rtol=1e-6, atol=1e-6, err_msg=field)


# -- lrjax's Linen models in NNX: the bridge -------------------------------------------

def test_builtin_models_convert_with_the_bridge():
  """`nnx.bridge.ToNNX` is the documented route for lrjax.models (Linen is the source
  of truth): the NNX module computes what the Linen model computes with its variables."""
  linen = lrjax.models.CifarCNN()
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))  # small images: 1x1x64 at the top
  model = nnx.bridge.ToNNX(linen, rngs=nnx.Rngs(params=0, dropout=1)).lazy_init(x, train=False)
  variables = {"params": state_dict(model, nnx.Param)}
  expected = apply(linen, variables, x, train=False)
  np.testing.assert_allclose(nnx_call(model, x, train=False), expected, rtol=1e-5, atol=1e-5)
  # Training (dropout on): ToNNX draws the key fold_in(k, 0) of an nnx.Rngs(dropout=k).
  key = jax.random.key(5)
  dropped = nnx.jit(lambda m, rngs, x: m(x, train=True, rngs=rngs))(
      model, nnx.Rngs(dropout=key), x)
  np.testing.assert_allclose(
      dropped, apply(linen, variables, x, train=True,
                     rngs={"dropout": jax.random.fold_in(key, 0)}), rtol=1e-5, atol=1e-5)
  assert not np.allclose(dropped, expected, atol=1e-3)
  # ... and the bridged model in lrjax.sweep's engine: `train` reaches the Linen module
  # through ToNNX, its variables are the Linen ones.
  engine_view = nnx_adapter.as_linen(model)
  engine_variables = engine_view.init(jax.random.PRNGKey(0), x, train=False)
  jax.tree.map(np.testing.assert_array_equal, engine_variables["params"], variables["params"])
  np.testing.assert_allclose(apply(engine_view, engine_variables, x, train=False), expected,
                             rtol=1e-5, atol=1e-5)


def test_readme_nnx_example_runs(capsys):
  readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
  match = re.search(r"<!-- sweep-example-nnx -->\s*```python\n(.*?)```", readme, re.S)
  assert match, "README.md lost its `<!-- sweep-example-nnx -->` block"
  code = match.group(1)
  assert len(code.strip().splitlines()) <= 15
  namespace: dict = {}
  exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
  result = namespace["result"]
  assert [v["seed"] for v in result.variants] == [0, 1] * 3
  assert untrained_loss(result)[0] != untrained_loss(result)[1]  # seeds initialise
  assert np.max(result.history["valid_acc"][-1]) > 0.5  # it learns (chance: 0.1)
  assert len(capsys.readouterr().out.strip().splitlines()) == 6
