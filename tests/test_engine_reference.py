"""The compiled engine against a plain for-loop (tests/reference_loop.py), step by step.

Each test trains variants through the engine's entry points (`GroupTrainer`, the
program `run_sweep` uses for each group, and `run_sweep` itself) and through the
reference loop, then compares the data order, the number of steps, the loss and the
rate of every step, what reached the strategy and when, the evaluation numbers and the
final parameters (and BatchNorm statistics).  Tolerances are those of float32 ops that
XLA may reorder (~1e-5).  Tiny models and data keep each compiled program small.
"""

from __future__ import annotations

import functools
import itertools

import flax.linen as nn
import jax
import numpy as np
import pytest
import reference_loop as ref

from lrjax import data as data_lib
from lrjax import models, strategies
from lrjax.train import SweepConfig, Variant, run_sweep
from lrjax.train.engine import epoch as epoch_lib
from lrjax.train.frontends import optimizers

RTOL, ATOL = 2e-5, 2e-6
BATCH = 8
EVAL_BATCH = 16  # the evaluation sets below are not multiples of it


def _dataset(seed=0, n_train=50, n_valid=37, n_test=21, features=6, classes=3,
             regression=False, adversarial_valid=True):
  """Gaussian blobs; the validation labels are shifted by one class (``adversarial``),
  so the validation loss rises while the training and test losses fall: a strategy fed
  the wrong loss decides differently."""
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(classes, features)) * 2.0

  def split(n, shift):
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.normal(size=(n, features))).astype(np.float32)
    if regression:
      w = np.linspace(-1.0, 1.0, features)
      return x, (x @ w + 0.1 * rng.normal(size=n)).astype(np.float32)
    return x, ((y + shift) % classes).astype(np.int32)

  tx, ty = split(n_train, 0)
  vx, vy = split(n_valid, 1 if adversarial_valid else 0)
  sx, sy = split(n_test, 0)
  return data_lib.Dataset(tx, ty, vx, vy, sx, sy, None if regression else classes,
                          "reference")


def _find(tree, cls):
  return [x for x in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, cls))
          if isinstance(x, cls)]


def engine(model, variants, dataset, *, epochs, task="classification",
           observe_untrained_loss=True, variants_per_call=None):
  """Every variant through `GroupTrainer`: per-epoch metrics and strategy states, final
  train state (one entry per variant, in ``variants`` order).  ``variants_per_call``: as
  `GroupTrainer`'s (None: the plan's rule, one per call on a CPU for these models)."""
  data = epoch_lib.put_data(dataset)
  out = [None] * len(variants)
  for spec, hyper, members in optimizers.group_variants(variants):
    trainer = epoch_lib.GroupTrainer(model, spec, hyper, task=task, batch_size=BATCH,
                                     eval_batch_size=EVAL_BATCH,
                                     observe_untrained_loss=observe_untrained_loss,
                                     variants_per_call=variants_per_call)
    if variants_per_call is not None:  # the vmapped chunks really are what is tested
      assert trainer.plan.chunk == min(variants_per_call, len(members))
    # One device: no padded copies; one shared data order exactly when the seeds agree.
    assert trainer.initial_hyper.seed.shape == (len(members),)
    assert trainer.shared_order == (len({variants[i].seed for i in members}) == 1)
    state = trainer.init(data.train_x[:1], data)
    metrics, strategy_states = [], []
    for e in range(epochs):
      state, m = trainer.run_epoch(state, data, e)
      metrics.append(jax.device_get(m))
      strategy_states.append(jax.device_get(_find(state.train.opt_state, strategies.StrategyState)))
    final = jax.device_get(state.train)
    for j, i in enumerate(members):
      pick = functools.partial(jax.tree.map, lambda a, j=j: np.asarray(a)[j])
      out[i] = {"metrics": [pick(m) for m in metrics],
                "strategy": [pick(s) for s in strategy_states],
                "state": pick(final)}
  return out


def reference(model, variants, dataset, *, epochs, task="classification",
              observe_untrained_loss=True):
  return [ref.train(model, v, dataset, epochs=epochs, batch_size=BATCH, task=task,
                    observe_untrained_loss=observe_untrained_loss)
          for v in variants]


def assert_same_run(eng, run, *, name, params=True, rtol=RTOL, atol=ATOL):
  """Engine metrics of one variant == the reference loop's, epoch by epoch."""
  for e, m in enumerate(eng["metrics"]):
    where = f"{name}, epoch {e}"
    assert m.step_loss.shape == (len(run.step_loss[e]),), where  # number of steps
    np.testing.assert_allclose(m.step_loss, run.step_loss[e], rtol=rtol, atol=atol,
                               err_msg=f"{where}: step losses")
    np.testing.assert_allclose(m.step_lr, run.step_lr[e], rtol=rtol, atol=1e-9,
                               err_msg=f"{where}: step rates")
    for field in ("train_loss", "train_acc", "valid_loss", "test_loss", "valid_acc",
                  "test_acc"):
      np.testing.assert_allclose(getattr(m, field), getattr(run, field)[e], rtol=rtol,
                                 atol=atol, err_msg=f"{where}: {field}")
    assert int(m.index) == run.index[e], where
    np.testing.assert_allclose(m.lr, run.step_lr[e][-1], rtol=rtol, err_msg=where)
  if params:
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5,
                                                         err_msg=f"{name}: parameters"),
                 eng["state"].params, run.params)


def assert_orders_are_fresh_permutations(runs, n):
  for run in runs:
    for order in run.orders:
      np.testing.assert_array_equal(np.sort(order), np.arange(n))  # each example once
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(run.orders))


# ---------------------------------------------------------------------- the core

RULE_VARIANTS = (  # one SGD group, four rules, three seeds (per-variant data orders)
    Variant("epoch seq1", "seq1", "epoch", 0.5, seed=0),
    Variant("cutoff seq4", "seq4", "cutoff", 0.5, seed=0),
    Variant("oscillate seq3", "seq3", "oscillate", 0.5, seed=1),
    Variant("fixed", "constant", "fixed", 0.3, seed=2),
)
EPOCHS = 4


@pytest.fixture(scope="module")
def dataset():
  return _dataset()


@pytest.fixture(scope="module")
def logistic():
  return models.LogisticRegression(num_classes=3)


@pytest.fixture(scope="module")
def rule_runs(logistic, dataset):
  return (engine(logistic, RULE_VARIANTS, dataset, epochs=EPOCHS),
          reference(logistic, RULE_VARIANTS, dataset, epochs=EPOCHS))


def test_reference_loop_draws_a_new_permutation_every_epoch(rule_runs, dataset):
  _, runs = rule_runs
  n = dataset.train_x.shape[0]
  assert_orders_are_fresh_permutations(runs, n)
  assert not np.array_equal(runs[0].orders[0], runs[2].orders[0])  # seeds differ
  np.testing.assert_array_equal(runs[0].orders[1], runs[1].orders[1])  # same seed
  assert [len(s) for s in runs[0].step_loss] == [n // BATCH] * EPOCHS


def test_engine_matches_the_reference_loop_step_by_step(rule_runs):
  engines, runs = rule_runs
  for variant, eng, run in zip(RULE_VARIANTS, engines, runs, strict=True):
    assert_same_run(eng, run, name=variant.name)
  # The data make the rules decide: every strategy did something different.
  assert [r.index[-1] for r in runs] == [3, runs[1].index[-1], runs[2].index[-1], 0]
  assert runs[2].index[-1] >= 1  # oscillate advanced on the rising validation loss


@pytest.mark.parametrize("per_call", [2, 4])
def test_several_variants_per_compiled_call_match_the_reference_loop(rule_runs, logistic,
                                                                   dataset, per_call):
  """The plan runs one variant per call here by default; vmapped chunks of 2 (two calls
  per epoch, the second starting at variant 2) and 4 (the whole group in one call) must
  give every variant its own run: a mix-up inside a vmapped call (another variant's
  hyperparameters, seed, rule or state) would show as another variant's numbers."""
  engines = engine(logistic, RULE_VARIANTS, dataset, epochs=EPOCHS, variants_per_call=per_call)
  _, runs = rule_runs
  for variant, eng, run in zip(RULE_VARIANTS, engines, runs, strict=True):
    assert_same_run(eng, run, name=f"{variant.name}, {per_call} per call")


def test_run_sweep_with_several_variants_per_call_equals_the_reference_loop(
    rule_runs, dataset):
  config = SweepConfig(model="logistic", variants=RULE_VARIANTS, epochs=EPOCHS,
                       batch_size=BATCH, eval_batch_size=EVAL_BATCH,
                       model_kwargs={"num_classes": 3}, checkpoint_every=0,
                       variants_per_call=3)
  result = run_sweep(config, dataset, progress=False)
  assert [g["variants_per_call"] for g in result.plans] == [3]
  for k, run in enumerate(rule_runs[1]):
    np.testing.assert_allclose(result.step_history["step_loss"][:, k], run.step_loss,
                               rtol=RTOL, atol=ATOL, err_msg=RULE_VARIANTS[k].name)
    np.testing.assert_allclose(result.history["valid_loss"][:, k], run.valid_loss,
                               rtol=RTOL, atol=ATOL, err_msg=RULE_VARIANTS[k].name)
    np.testing.assert_array_equal(result.history["index"][:, k], run.index)


def test_the_strategy_sees_the_previous_validation_loss_on_the_first_step(rule_runs):
  engines, runs = rule_runs
  for variant, eng, run in zip(RULE_VARIANTS, engines, runs, strict=True):
    # The reference fed the untrained model's validation loss before step 0 of epoch 0
    # (an initial observation: loss_0), then epoch e-1's validation loss before step 0
    # of epoch e (a boundary).
    (first, *later) = run.fed
    assert first[:3] == (0, 0, "initial")
    assert later == [(e, 0, "boundary", run.valid_loss[e - 1]) for e in range(1, EPOCHS)]
    for e, (state,) in enumerate(eng["strategy"]):
      assert int(state.num_observations) == e + 1, (variant.name, e)
      assert int(state.num_boundaries) == e, (variant.name, e)
      # The engine's strategy holds exactly that loss (not the train/test loss).
      seen = first[3] if e == 0 else run.valid_loss[e - 1]
      np.testing.assert_allclose(state.prev_loss, seen, rtol=RTOL)
    # The rate changes at the first step of an epoch, never inside one.
    for e in range(EPOCHS):
      assert len(set(eng["metrics"][e].step_lr.tolist())) == 1, (variant.name, e)
  # The validation loss rises while the training loss falls (the data are built so).
  assert runs[0].valid_loss[-1] > runs[0].valid_loss[0]
  assert runs[0].train_loss[-1] < runs[0].train_loss[0]
  assert runs[0].test_loss[-1] < runs[0].test_loss[0]


@pytest.mark.parametrize("observe_untrained_loss", [True, False])
def test_run_sweep_histories_equal_the_reference_loop(rule_runs, logistic, dataset,
                                                     observe_untrained_loss):
  if observe_untrained_loss:
    _, runs = rule_runs
  else:  # the other reading of loss_0: the first boundary's loss
    runs = reference(logistic, RULE_VARIANTS, dataset, epochs=EPOCHS,
                     observe_untrained_loss=False)
    assert [r.fed[0][2] for r in runs] == ["boundary"] * len(runs)
    # The readings differ for the loss-based rules (cutoff decides one boundary later).
    assert [r.index for r in runs] != [r.index for r in rule_runs[1]]
  config = SweepConfig(model="logistic", variants=RULE_VARIANTS, epochs=EPOCHS,
                       batch_size=BATCH, eval_batch_size=EVAL_BATCH,
                       model_kwargs={"num_classes": 3}, checkpoint_every=0,
                       observe_untrained_loss=observe_untrained_loss)
  result = run_sweep(config, dataset, progress=False)
  steps = dataset.train_x.shape[0] // BATCH
  assert result.step_history["step_loss"].shape == (EPOCHS, len(RULE_VARIANTS), steps)
  for k, run in enumerate(runs):
    np.testing.assert_allclose(result.step_history["step_loss"][:, k], run.step_loss,
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(result.step_history["step_lr"][:, k], run.step_lr, rtol=RTOL)
    for field in ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss",
                  "test_acc"):
      np.testing.assert_allclose(result.history[field][:, k], getattr(run, field),
                                 rtol=RTOL, atol=ATOL, err_msg=field)
    np.testing.assert_array_equal(result.history["index"][:, k], run.index)
    assert result.summary[k]["sequence_advances"] == run.index[-1]


def test_variants_sharing_a_seed_share_the_order_in_a_shared_order_group(logistic, dataset):
  variants = (Variant("adam fixed", "constant", "fixed", 0.05, "adam", seed=3),
              Variant("adam epoch seq2", "seq2", "epoch", 0.05, "adam", seed=3))
  engines = engine(logistic, variants, dataset, epochs=2)
  runs = reference(logistic, variants, dataset, epochs=2)
  for variant, eng, run in zip(variants, engines, runs, strict=True):
    assert_same_run(eng, run, name=variant.name)


# ------------------------------------------------------ every optimizer, optax's own

INNER = {  # name -> (r0, optimizer_kwargs); rule "epoch" with seq3: the rate changes
    "sgd": (0.3, {}),
    "momentum": (0.1, {"momentum": 0.7}),
    "nesterov": (0.1, {}),
    "adam": (0.05, {"b1": 0.8}),
    "rmsprop": (0.02, {}),
    "adagrad": (0.3, {}),
    "adadelta": (1.0, {"rho": 0.9}),
}


@pytest.mark.parametrize("name", list(INNER))
def test_every_inner_optimizer_matches_optax_applied_by_hand(name, logistic, dataset):
  r0, kw = INNER[name]
  variants = (Variant(name, "seq3", "epoch", r0, name, seed=4, optimizer_kwargs=kw),)
  (eng,) = engine(logistic, variants, dataset, epochs=2)
  (run,) = reference(logistic, variants, dataset, epochs=2)
  assert_same_run(eng, run, name=name)
  assert run.step_lr[1][0] == pytest.approx(0.9 * r0)  # seq3 advanced at the boundary


SELF_TUNING = {
    "hypergradient_sgd": (0.1, {"hyper_lr": 1e-2}),
    "hypergradient_adam": (0.01, {}),
    "dog": (1.0, {}),
    "prodigy": (1.0, {}),
    "mechanic": (0.1, {}),
}


@pytest.mark.parametrize("name", list(SELF_TUNING))
def test_self_tuning_optimizers_match_their_transformation_applied_by_hand(
    name, logistic, dataset):
  r0, kw = SELF_TUNING[name]
  variants = (Variant(name, optimizer=name, learning_rate=r0, seed=5, optimizer_kwargs=kw),)
  (eng,) = engine(logistic, variants, dataset, epochs=2)
  (run,) = reference(logistic, variants, dataset, epochs=2)
  assert_same_run(eng, run, name=name, rtol=1e-4, atol=1e-5)
  if name.startswith("hypergradient"):  # the learned rate moved, as the loop says
    assert np.max(np.abs(np.asarray(run.step_lr[1]) / r0 - 1)) > 1e-4


def test_newton_rate_follows_the_reference_through_value_fn():
  """The engine's `value_fn` is the minibatch loss at the given parameters: with it
  ignored, eta would stay at r0 for ever."""
  table = _dataset(seed=1, regression=True)
  model = models.LinearRegression()
  variants = (Variant("newton", optimizer="newton", learning_rate=0.01, seed=6,
                      optimizer_kwargs={"eps": 1e-2}),)
  (eng,) = engine(model, variants, table, epochs=2, task="regression")
  (run,) = reference(model, variants, table, epochs=2, task="regression")
  assert_same_run(eng, run, name="newton", rtol=1e-4, atol=1e-5)
  rates = np.concatenate(run.step_lr)
  assert rates[0] > 0.05 and np.all(np.abs(rates - 0.01) > 1e-3), rates  # eta moves


# ------------------------------------------------------------- rule "step" schedules

def test_per_step_schedules_count_every_step_across_epochs(logistic, dataset):
  steps = dataset.train_x.shape[0] // BATCH
  variants = (
      Variant("cosine", "cosine_annealing", "step", 0.4, seed=0,
              sequence_kwargs={"total_steps": 3 * steps, "min_lr": 0.01}),
      Variant("keras time", "keras_time_based_decay", "step", 0.4, seed=1,
              sequence_kwargs={"decay": 0.05}),
  )
  engines = engine(logistic, variants, dataset, epochs=3)
  runs = reference(logistic, variants, dataset, epochs=3)
  for variant, eng, run in zip(variants, engines, runs, strict=True):
    assert_same_run(eng, run, name=variant.name)
  # keras time-based decay: lr / (1 + decay * t) at the t-th step, t counted globally.
  t = np.arange(3 * steps)
  np.testing.assert_allclose(np.concatenate(runs[1].step_lr), 0.4 / (1 + 0.05 * t), rtol=1e-6)
  assert all(int(m.index) == -1 for m in engines[0]["metrics"])


# ---------------------------------------------------------------- BatchNorm + dropout

class TinyBN(nn.Module):
  """Dense -> BatchNorm -> ReLU -> Dropout -> Dense: running statistics and dropout."""

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    x = nn.Dense(5)(x.reshape((x.shape[0], -1)))
    x = nn.BatchNorm(use_running_average=not train, momentum=0.8)(x)
    x = nn.Dropout(0.4, deterministic=not train)(nn.relu(x))
    return nn.Dense(3)(x)


BN_VARIANTS = (Variant("bn epoch seq1", "seq1", "epoch", 0.3, seed=0),
               Variant("bn oscillate seq2", "seq2", "oscillate", 0.3, seed=1))


@pytest.fixture(scope="module")
def bn_runs(dataset):
  return reference(TinyBN(), BN_VARIANTS, dataset, epochs=3)


def test_batch_norm_running_statistics_follow_the_reference(dataset, bn_runs):
  engines = engine(TinyBN(), BN_VARIANTS, dataset, epochs=3)
  runs = bn_runs
  for variant, eng, run in zip(BN_VARIANTS, engines, runs, strict=True):
    assert_same_run(eng, run, name=variant.name, rtol=1e-4, atol=1e-5)
    stats = eng["state"].model_state["batch_stats"]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 stats, run.model_state["batch_stats"])
    assert not np.allclose(stats["BatchNorm_0"]["var"], 1.0)  # they did move


def test_batch_norm_statistics_are_checkpointed_and_resumed(dataset, bn_runs, tmp_path,
                                                           monkeypatch):
  import orbax.checkpoint as ocp
  monkeypatch.setitem(models.MODELS, "tiny_bn", TinyBN)
  config = SweepConfig(model="tiny_bn", variants=BN_VARIANTS, epochs=3, batch_size=BATCH,
                       eval_batch_size=EVAL_BATCH, checkpoint_every=1)
  runs = bn_runs

  def interrupt(epoch, history):
    if epoch == 1:
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    run_sweep(config, dataset, checkpoint_dir=tmp_path, progress=False, on_epoch_end=interrupt)
  with ocp.CheckpointManager(tmp_path) as manager:
    assert manager.latest_step() == 2
    saved = manager.restore(2, args=ocp.args.StandardRestore())
  (group_state,) = saved["states"]  # a VariantState: the training state, hyper, alive
  train = group_state["train"] if isinstance(group_state, dict) else group_state[0]
  stats = train["model_state"]["batch_stats"] if isinstance(train, dict) \
      else train[1]["batch_stats"]
  for k, run in enumerate(runs):  # the statistics after epoch 2, per variant
    jax.tree.map(lambda a, b, k=k: np.testing.assert_allclose(np.asarray(a)[k], b, rtol=1e-4,
                                                         atol=1e-5),
                 stats, run.model_states[1]["batch_stats"])
  resumed = run_sweep(config, dataset, checkpoint_dir=tmp_path, progress=False)
  assert np.isnan(resumed.epoch_seconds[:2]).all() and np.isfinite(resumed.epoch_seconds[2])
  for k, run in enumerate(runs):  # epoch 3 ran from the restored state
    np.testing.assert_allclose(resumed.history["valid_loss"][:, k], run.valid_loss,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(resumed.step_history["step_loss"][:, k], run.step_loss,
                               rtol=1e-4, atol=1e-5)
