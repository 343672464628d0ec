"""`lrjax.sweep`: user models and optimizer factories, vmapped, equal to solo runs.

Every model here is defined in the test (not in lrjax).  "Solo" is the same call with
one hyperparameter setting (K = 1, the unbatched program), so a vmapped variant that
saw its neighbours, another variant's hyperparameters or another group's state would
differ.
"""

from __future__ import annotations

import pathlib
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import adaptive, schedules, strategies
from lrjax.data import synthetic
from lrjax.train import api
from lrjax.train.engine import readouts

TOL = 1e-5
COMPARED = ("train_loss", "valid_loss", "test_loss", "valid_acc", "lr", "index", "nonfinite")


class NormNet(nn.Module):
  """A user model with BatchNorm (a mutable collection) and dropout."""

  width: int = 8

  @nn.compact
  def __call__(self, x, *, train):
    # No bias before BatchNorm: its gradient is exactly 0, so in float32 it is rounding
    # noise, which Adam scales to steps of size lr (and the running mean follows them).
    x = nn.Dense(self.width, use_bias=False)(x.reshape((x.shape[0], -1)))
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.Dropout(0.2, deterministic=not train)(nn.relu(x))
    return nn.Dense(10)(x)


class NoisyNet(nn.Module):
  """Asks for an RNG stream of its own (``noise``) in training."""

  @nn.compact
  def __call__(self, x, *, train):
    x = nn.Dense(8)(x.reshape((x.shape[0], -1)))
    if train:
      x = x + 0.1 * jax.random.normal(self.make_rng("noise"), x.shape)
    return nn.Dense(10)(nn.relu(x))


@pytest.fixture(scope="module")
def data():
  return synthetic("tiny", num_train=160, num_test=40, seed=1)


def run(model, data, optimizer_fn, hparams, **kw):
  kw = {"epochs": 2, "batch_size": 32, "progress": False, **kw}
  return lrjax.sweep(model, data, optimizer_fn, hparams, **kw)


# Solo runs already made in this module, by what defines them: the parametrized cases of
# a test compare against the same solo runs (results are only read, never changed).
_SOLO = {}


def solo_run(model, data, optimizer_fn, hparams, seed, **kw):
  key = (repr(model), id(data), optimizer_fn, repr(sorted(hparams.items())), seed,
         repr(sorted(kw.items())))
  if key not in _SOLO:  # (the data kept too: its id is not reused while cached)
    _SOLO[key] = data, run(model, data, optimizer_fn, [hparams], seeds=(seed,), **kw)
  return _SOLO[key][1]


def assert_equals_solo(result, model, data, optimizer_fn, **kw):
  for v in result.variants:
    solo = solo_run(model, data, optimizer_fn, v["hparams"], v["seed"], **kw)
    for field in COMPARED:
      np.testing.assert_allclose(
          np.asarray(result.history[field][:, v["index"]], np.float64),
          np.asarray(solo.history[field][:, 0], np.float64), rtol=TOL, atol=TOL,
          err_msg=f"{field} of {v['name']}")


def sgd_chain(h):
  return optax.chain(
      optax.add_decayed_weights(h["wd"]),
      optax.inject_hyperparams(optax.sgd)(learning_rate=h["learning_rate"],
                                          momentum=h["momentum"]))


def test_grid_is_the_cartesian_product():
  g = lrjax.train.grid(learning_rate=[0.1, 0.01], momentum=[0.0, 0.9], name=["a"])
  assert g == [{"learning_rate": 0.1, "momentum": 0.0, "name": "a"},
               {"learning_rate": 0.1, "momentum": 0.9, "name": "a"},
               {"learning_rate": 0.01, "momentum": 0.0, "name": "a"},
               {"learning_rate": 0.01, "momentum": 0.9, "name": "a"}]


@pytest.mark.parametrize("variants_per_call", [4, 3])
def test_user_model_and_chain_vmapped_equal_solo(data, variants_per_call):
  hparams = [dict(h, wd=1e-3) for h in
             lrjax.train.grid(learning_rate=[0.2, 0.05], momentum=[0.0, 0.9])]
  result = run(NormNet(), data, sgd_chain, hparams, variants_per_call=variants_per_call)
  assert len(result.groups) == 1
  (group,) = result.groups
  assert group.numeric == ("learning_rate", "momentum", "wd")
  assert group.plan.chunk == variants_per_call
  # The rate read from inject_hyperparams' state by field name.
  np.testing.assert_allclose(result.history["lr"],
                             np.tile([0.2, 0.2, 0.05, 0.05], (2, 1)), rtol=1e-6)
  assert (result.history["index"] == -1).all()
  assert not result.history["nonfinite"].any()
  # The variants really differ (hyperparameters reached the traced optimizer).
  assert len(set(np.round(result.history["train_loss"][-1], 5))) == 4
  assert_equals_solo(result, NormNet(), data, sgd_chain)


def mixed_fn(h):
  if h["opt"] == "sgd":
    return optax.sgd(h["learning_rate"], momentum=0.9)
  if h["opt"] == "adam":
    return optax.adam(h["learning_rate"], b1=h["b1"])
  return adaptive.newton_lr(h["learning_rate"], eps=1e-2)


def test_mixed_state_structures_grouped_and_equal_solo(data):
  hparams = [{"opt": "sgd", "learning_rate": 0.1}, {"opt": "adam", "learning_rate": 0.01,
                                                   "b1": 0.9},
             {"opt": "newton", "learning_rate": 0.1}, {"opt": "sgd", "learning_rate": 0.03},
             {"opt": "adam", "learning_rate": 0.003, "b1": 0.5}]
  result = run(NormNet(), data, mixed_fn, hparams)
  assert [g.static for g in result.groups] == [{"opt": "sgd"}, {"opt": "adam"},
                                                {"opt": "newton"}]
  assert [g.members for g in result.groups] == [[0, 3], [1, 4], [2]]
  assert [v["group"] for v in result.variants] == [0, 1, 2, 0, 1]
  assert "ScaleByAdamState" in result.groups[1].state_structure
  # Newton's learned rate is read from its state (`lr`) and has moved; SGD/Adam with a
  # constant float rate hold no rate in their state.
  newton_lr = result.history["lr"][:, 2]
  assert np.isfinite(newton_lr).all() and newton_lr[-1] != pytest.approx(0.1)
  assert np.isnan(result.history["lr"][:, [0, 1, 3, 4]]).all()
  assert_equals_solo(result, NormNet(), data, mixed_fn)


def strategy_fn(h):
  return strategies.sgd(schedules.seq3(h["r0"]), h["rule"], momentum=0.9)


def test_strategy_swept_over_rule_codes_and_r0(data):
  rules = [int(strategies.Rule.FIXED), int(strategies.Rule.EPOCH),
           int(strategies.Rule.CUTOFF)]
  hparams = lrjax.train.grid(r0=[0.1, 0.03], rule=rules)
  result = run(NormNet(), data, strategy_fn, hparams, epochs=3)
  assert len(result.groups) == 1 and result.groups[0].numeric == ("r0", "rule")
  index = result.history["index"]
  fixed = [v["index"] for v in result.variants if v["hparams"]["rule"] == rules[0]]
  by_epoch = [v["index"] for v in result.variants if v["hparams"]["rule"] == rules[1]]
  assert (index[:, fixed] == 0).all()
  # The epoch rule advances at every boundary (epochs 2 and 3); its rate follows seq3.
  np.testing.assert_array_equal(index[:, by_epoch], [[0, 0], [1, 1], [2, 2]])
  for k in by_epoch:
    r0 = result.variants[k]["hparams"]["r0"]
    np.testing.assert_allclose(result.history["lr"][:, k],
                               [float(schedules.seq3(r0)(n)) for n in (0, 1, 2)],
                               rtol=1e-6)
  assert_equals_solo(result, NormNet(), data, strategy_fn, epochs=3)


def test_seeds_multiply_variants_and_change_the_run(data):
  result = run(NormNet(), data, sgd_chain,
               {"learning_rate": [0.1], "momentum": [0.9], "wd": [0.0]}, seeds=(0, 1))
  assert [v["seed"] for v in result.variants] == [0, 1]
  assert result.history["train_loss"][0, 0] != result.history["train_loss"][0, 1]
  rows = result.summary
  assert [r["seed"] for r in rows] == [0, 1] and rows[0]["group"] == 0
  assert rows[0]["final_valid_loss"] == pytest.approx(result.history["valid_loss"][-1, 0])


def test_every_rng_stream_the_model_asks_for(data):
  x = jnp.asarray(data.train_x[:1])
  shapes = jax.eval_shape(lambda x: NoisyNet().init(jax.random.PRNGKey(0), x, train=False), x)
  assert api.rng_streams(NoisyNet(), dict(shapes), x) == ("dropout", "noise")
  result = run(NoisyNet(), data, lambda h: optax.sgd(h["learning_rate"]),
               {"learning_rate": [0.1, 0.01]})
  assert np.isfinite(result.history["train_loss"]).all()


def test_regression_task_reports_rmse():
  data = synthetic((5,), num_train=96, num_test=32, num_classes=None, seed=0)
  assert jnp.issubdtype(data.train_y.dtype, jnp.floating)

  class Linear(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
      return nn.Dense(1)(x)[:, 0]

  result = run(Linear(), data, lambda h: optax.sgd(h["learning_rate"]),
               {"learning_rate": [0.05, 0.01]}, task=lrjax.train.REGRESSION)
  assert np.isnan(result.history["valid_acc"]).all()
  assert result.summary[0]["final_valid_rmse"] == pytest.approx(
      float(np.sqrt(result.history["valid_loss"][-1, 0])))


@pytest.mark.parametrize("hparams, match", [
    ({}, "`hparams` is empty"),
    ([], "`hparams` is an empty list"),
    ({"learning_rate": [0.1, 0.01], "momentum": [0.9]}, "`hparams` lists differ in length"),
    ({"learning_rate": 0.1}, r"`hparams\['learning_rate'\]` must be a list"),
    ([{"learning_rate": 0.1}, 0.2], r"`hparams\[1\]` must be a dict"),
])
def test_bad_hparams_rejected(data, hparams, match):
  with pytest.raises(ValueError, match=match):
    run(NormNet(), data, lambda h: optax.sgd(0.1), hparams)


def test_bad_arguments_rejected(data):
  ok = {"learning_rate": [0.1]}
  with pytest.raises(TypeError, match="`optimizer_fn` must be a callable"):
    run(NormNet(), data, "sgd", ok)
  with pytest.raises(TypeError, match="`optimizer_fn` must return an optax"):
    run(NormNet(), data, lambda h: h["learning_rate"], ok)
  with pytest.raises(TypeError, match="`model` must be a flax.linen.Module"):
    run(lambda x: x, data, lambda h: optax.sgd(0.1), ok)

  class NoTrain(nn.Module):  # the engine calls model(x, train=...): refused, saying so
    @nn.compact
    def __call__(self, x):
      return nn.Dense(10)(x.reshape((x.shape[0], -1)))

  with pytest.raises(TypeError, match=r"^`model`: lrjax calls model\(x, train=\.\.\.\): add "
                                      r"a `train` argument to NoTrain.__call__"):
    run(NoTrain(), data, lambda h: optax.sgd(0.1), ok)

  class AnyKeywords(nn.Module):  # **kwargs takes `train`: accepted
    @nn.compact
    def __call__(self, x, **kwargs):
      return nn.Dense(10)(x.reshape((x.shape[0], -1)))

  assert api.inputs.check_model(AnyKeywords()) is not None
  with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
    run(NormNet(), data, lambda h: optax.sgd(0.1), ok, epochs=0)
  with pytest.raises(ValueError, match="`batch_size` .* exceeds the training set"):
    run(NormNet(), data, lambda h: optax.sgd(0.1), ok, batch_size=10**6)
  with pytest.raises(ValueError, match="`seeds` must be a non-empty list"):
    run(NormNet(), data, lambda h: optax.sgd(0.1), ok, seeds=())
  with pytest.raises(ValueError, match="`task` must be"):
    run(NormNet(), data, lambda h: optax.sgd(0.1), ok, task="ranking")
  with pytest.raises(ValueError, match="`optimizer_fn` rejected hparams .*momentum"):
    run(NormNet(), data, lambda h: strategies.sgd(schedules.seq3(0.1), "epoch",
                                                  momentum=h["momentum"]),
        {"momentum": [0.9, 1.5]})

  def python_if(h):
    return optax.sgd(0.1, momentum=0.9 if h["momentum"] > 0 else None)

  with pytest.raises(TypeError, match="used a numeric hyperparameter as a Python value"):
    run(NormNet(), data, python_if, {"momentum": [0.9]})
  with pytest.raises(ValueError, match="`grid` axis 'momentum'"):
    lrjax.train.grid(learning_rate=[0.1], momentum=[])


def readme_example() -> str:
  readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
  match = re.search(r"<!-- sweep-example -->\s*```python\n(.*?)```", readme, re.S)
  assert match, "README.md lost its `<!-- sweep-example -->` block"
  return match.group(1)


def test_readme_example_runs_in_at_most_15_lines(capsys):
  code = readme_example()
  assert len(code.strip().splitlines()) <= 15
  namespace: dict = {}
  exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
  result = namespace["result"]
  assert len(result.variants) == 12
  assert len(result.groups) == 2  # one per schedule (a static, non-numeric hparam)
  assert np.isfinite(result.history["lr"]).all()
  assert len(capsys.readouterr().out.strip().splitlines()) == 12


def test_lazy_entry_point():
  assert lrjax.sweep is api.sweep
  assert lrjax.train.grid is api.grid
  assert lrjax.train.REGRESSION is lrjax.train.engine.task.REGRESSION


def test_readouts_by_field_match_lrjax_readers_under_jit_and_vmap():
  params = {"w": jnp.ones(3)}
  grads = {"w": jnp.asarray([0.5, -1.0, 2.0])}

  def states(tx, extra):
    state = tx.init(params)
    for boundary in (False, True, False):
      _, state = tx.update(grads, state, params, epoch_boundary=boundary, **extra)
    return state

  def strategy_state(r0):
    tx = optax.with_extra_args_support(strategies.sgd(schedules.seq3(r0), "epoch"))
    return states(tx, {"valid_loss": jnp.asarray(1.0)})

  r0s = jnp.asarray([0.1, 0.02])
  stacked = jax.vmap(strategy_state)(r0s)
  lr = jax.jit(jax.vmap(readouts.read_lr))(stacked)
  index = jax.jit(jax.vmap(readouts.read_index))(stacked)
  for k in range(2):
    one = jax.tree.map(lambda a, k=k: a[k], stacked)
    assert float(lr[k]) == pytest.approx(float(strategies.current_lr(one)))
    assert int(index[k]) == int(strategies.current_index(one)) == 1
  assert float(lr[1]) == pytest.approx(float(schedules.seq3(0.02)(1)))

  newton = adaptive.newton_lr(0.1, eps=1e-2)
  value_fn = lambda p: jnp.sum(jnp.square(p["w"]))
  state = states(optax.with_extra_args_support(newton), {"value_fn": value_fn})
  assert float(jax.jit(readouts.read_lr)(state)) == pytest.approx(
      float(adaptive.learned_lr(state)))
  assert int(readouts.read_index(state)) == -1

  plain = optax.sgd(0.1).init(params)
  assert np.isnan(float(readouts.read_lr(plain))) and not bool(readouts.read_nonfinite(plain))
  guarded = optax.apply_if_finite(optax.sgd(0.1), 5)
  _, bad = guarded.update({"w": jnp.full(3, jnp.nan)}, guarded.init(params), params)
  assert bool(jax.jit(readouts.read_nonfinite)(bad))


# -- faults the other tests would miss --------------------------------------------------

def test_seeds_change_the_initial_parameters(data):
  """Each seed draws its own initialisation: the untrained model differs (its epoch-0
  validation loss, which no data order touches), and so do the parameters themselves."""
  from lrjax.train.engine import epoch as epoch_lib
  result = run(NormNet(), data, sgd_chain,
               {"learning_rate": [0.1], "momentum": [0.9], "wd": [0.0]}, seeds=(0, 1, 2),
               epochs=1)
  untrained = result.initial["valid_loss"]
  assert len(set(untrained.tolist())) == 3, untrained
  hyper = api.VariantHyper(h={}, seed=np.asarray([0, 1, 1], np.int32))
  trainer = epoch_lib.GroupTrainer(NormNet(), lambda hyper: optax.sgd(0.1), hyper,
                                   task="classification", batch_size=32, eval_batch_size=32)
  params = jax.device_get(trainer.init(jnp.asarray(data.train_x[:1])).train.params)
  kernels = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]
  assert any(not np.array_equal(k[0], k[1]) for k in kernels)  # seeds 0 and 1 differ
  for k in kernels:
    np.testing.assert_array_equal(k[1], k[2])  # the same seed draws the same parameters


def test_a_non_finite_validation_loss_sets_the_flag_with_a_plain_optax_chain(data):
  """The flag also reports a NaN/inf validation loss where the training gradients stay
  finite (an inf in one validation input): no optimizer state says so, the engine must."""
  bad = np.array(data.valid_x)
  bad[0] = np.inf
  broken = data._replace(valid_x=bad)
  result = run(NoisyNet(), broken, lambda h: optax.sgd(h["learning_rate"]),
               {"learning_rate": [0.1, 0.01]})
  assert np.isfinite(result.history["train_loss"]).all()  # training itself is fine
  assert not np.isfinite(result.history["valid_loss"]).any()
  np.testing.assert_array_equal(result.history["nonfinite"], 1.0)
  assert [row["nonfinite"] for row in result.summary] == [True, True]
  clean = run(NoisyNet(), data, lambda h: optax.sgd(h["learning_rate"]),
              {"learning_rate": [0.1, 0.01]})
  np.testing.assert_array_equal(clean.history["nonfinite"], 0.0)  # not set by default
