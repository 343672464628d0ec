"""Task objects (`lrjax.train.engine.task`): the per-example losses and metrics against numpy
formulas and optax, under jit / vmap / grad; the engine's steps with a task object or
its name; and user-defined tasks (a Huber regression, a top-2 accuracy) through
`lrjax.sweep`, checked against a hand computation."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax.data import synthetic
from lrjax.train import CLASSIFICATION, REGRESSION, Task
from lrjax.train.engine import step
from lrjax.train.engine import task as task_lib
from lrjax.train.reports import metrics

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(2, 12, 5)).astype(np.float32)  # [variant, batch, class]
LABELS = RNG.integers(0, 5, (2, 12)).astype(np.int32)
OUT = RNG.normal(size=(2, 12)).astype(np.float32)
TARGET = (2.0 * RNG.normal(size=(2, 12))).astype(np.float32)


def _log_softmax(z):
  z = np.asarray(z, np.float64)
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _np_huber(r, delta):
  r = np.abs(np.asarray(r, np.float64))
  return np.where(r <= delta, 0.5 * r ** 2, delta * (r - 0.5 * delta))


def _each(fn, *args):
  """``fn`` of each variant: plain, under jit, and all variants under vmap(jit)."""
  plain = np.stack([fn(*(a[v] for a in args)) for v in range(args[0].shape[0])])
  jitted = np.stack([jax.jit(fn)(*(a[v] for a in args)) for v in range(args[0].shape[0])])
  vmapped = np.asarray(jax.vmap(jax.jit(fn))(*args))
  return plain, jitted, vmapped


# -- the per-example functions -------------------------------------------------------------

def test_cross_entropy_and_accuracy_match_numpy_and_optax_under_jit_and_vmap():
  want_ce = -np.take_along_axis(_log_softmax(LOGITS), LABELS[..., None], -1)[..., 0]
  for got in _each(task_lib.cross_entropy, LOGITS, LABELS):
    np.testing.assert_allclose(got, want_ce, rtol=1e-5)
  np.testing.assert_array_equal(  # the engine's loss is optax's, bit for bit
      task_lib.cross_entropy(LOGITS[0], LABELS[0]),
      optax.softmax_cross_entropy_with_integer_labels(LOGITS[0], LABELS[0]))
  want_acc = (LOGITS.argmax(-1) == LABELS).astype(np.float32)
  assert 0 < want_acc.mean() < 1
  for got in _each(task_lib.accuracy, LOGITS, LABELS):
    np.testing.assert_array_equal(got, want_acc)


def test_grad_of_the_mean_cross_entropy_is_softmax_minus_one_hot():
  grad = jax.jit(jax.grad(CLASSIFICATION.mean_loss))(LOGITS[0], LABELS[0])
  p = np.exp(_log_softmax(LOGITS[0]))
  want = (p - np.eye(5)[LABELS[0]]) / LABELS.shape[1]
  np.testing.assert_allclose(grad, want, atol=1e-7)
  per_variant = jax.vmap(jax.grad(CLASSIFICATION.mean_loss))(LOGITS, LABELS)
  np.testing.assert_allclose(per_variant[0], want, atol=1e-7)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_top_k_accuracy_matches_numpy(k):
  order = np.argsort(-LOGITS, axis=-1, kind="stable")[..., :k]
  want = (order == LABELS[..., None]).any(-1).astype(np.float32)
  for got in _each(task_lib.top_k_accuracy(k), LOGITS, LABELS):
    np.testing.assert_array_equal(got, want)
  if k == 1:
    np.testing.assert_array_equal(want, (LOGITS.argmax(-1) == LABELS).astype(np.float32))


def test_squared_error_and_huber_match_numpy_with_their_gradients():
  for got in _each(task_lib.squared_error, OUT, TARGET):
    np.testing.assert_allclose(got, (OUT - TARGET).astype(np.float64) ** 2, rtol=1e-6)
  huber = task_lib.huber(1.0)
  assert np.abs(OUT - TARGET).max() > 1 > np.abs(OUT - TARGET).min()  # both branches
  for got in _each(huber, OUT, TARGET):
    np.testing.assert_allclose(got, _np_huber(OUT - TARGET, 1.0), rtol=1e-6)
  n = OUT.shape[1]
  np.testing.assert_allclose(jax.jit(jax.grad(REGRESSION.mean_loss))(OUT[0], TARGET[0]),
                             2 * (OUT[0] - TARGET[0]) / n, rtol=1e-6)
  huber_task = Task("huber", huber)
  np.testing.assert_allclose(
      jax.vmap(jax.grad(huber_task.mean_loss))(OUT, TARGET),
      np.clip(OUT - TARGET, -1.0, 1.0) / n, rtol=1e-6)
  # Several outputs per example: the per-example error is their mean.
  wide_out, wide_target = OUT.reshape(6, 4), TARGET.reshape(6, 4)
  np.testing.assert_allclose(task_lib.squared_error(wide_out, wide_target),
                             ((wide_out - wide_target) ** 2).mean(1), rtol=1e-6)


def test_a_broadcasting_shape_mismatch_is_an_error_not_a_wrong_loss():
  with pytest.raises(ValueError, match=r"outputs \(12, 1\) for targets \(12,\)"):
    task_lib.squared_error(OUT[0][:, None], TARGET[0])
  with pytest.raises(ValueError, match="Huber"):
    jax.jit(task_lib.huber(0.5))(OUT[0][:, None], TARGET[0])


def test_task_loss_takes_an_object_or_a_built_in_name_with_the_old_numbers():
  for name, task, outputs, targets in (("classification", CLASSIFICATION, LOGITS[0], LABELS[0]),
                                       ("regression", REGRESSION, OUT[0], TARGET[0])):
    assert task_lib.as_task(name) is task
    np.testing.assert_array_equal(step.task_loss(outputs, targets, name),
                                  step.task_loss(outputs, targets, task))
  # The formulas the engine used before task objects, bit for bit.
  np.testing.assert_array_equal(
      step.task_loss(LOGITS[0], LABELS[0], "classification"),
      optax.softmax_cross_entropy_with_integer_labels(LOGITS[0], LABELS[0]).mean())
  np.testing.assert_array_equal(step.task_loss(OUT[0], TARGET[0], "regression"),
                                jnp.mean(jnp.square(OUT[0] - TARGET[0])))


# -- construction ------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(name=""), ValueError, "`name`"),
    (dict(loss="mse"), TypeError, "`loss` must be a function"),
    (dict(metrics=[task_lib.accuracy]), TypeError, "`metrics` must be a mapping"),
    (dict(metrics={"top 2": task_lib.accuracy}), ValueError, "identifiers"),
    (dict(metrics={"acc": 1.0}), TypeError, r"`metrics\['acc'\]` must be a function"),
    (dict(metrics={"loss": task_lib.accuracy}), ValueError, "differ"),
    (dict(monitor="acc"), ValueError, "`monitor` must be 'loss' or one of"),
    (dict(higher_is_better=True), ValueError, "`higher_is_better` cannot be True"),
    (dict(target_dtype="int33"), TypeError, "`target_dtype`"),
])
def test_bad_task_arguments_are_named(kwargs, error, match):
  args = dict(name="mine", loss=task_lib.squared_error) | kwargs
  with pytest.raises(error, match=match):
    Task(**args)


def test_as_task_names_the_argument_and_the_choices():
  with pytest.raises(ValueError, match=r"`task` must be .*\['classification', 'regression'\]"):
    task_lib.as_task("segmentation")
  with pytest.raises(TypeError, match="`task`"):
    task_lib.as_task(3)


def test_tasks_built_alike_are_equal_and_hashable():
  a = Task("top2", task_lib.cross_entropy, {"acc": task_lib.accuracy}, monitor="acc",
           higher_is_better=True, target_dtype=jnp.int32)
  b = Task("top2", task_lib.cross_entropy, {"acc": task_lib.accuracy}, monitor="acc",
           higher_is_better=True, target_dtype="int32")
  assert a == b and hash(a) == hash(b) and a != CLASSIFICATION
  assert CLASSIFICATION.history_fields("valid") == ("valid_loss", "valid_acc")
  assert REGRESSION.history_fields("test") == ("test_loss", "test_rmse")
  history = {"valid_loss": np.array([4.0, 9.0]), "test_loss": np.array([1.0, 0.25])}
  derived = REGRESSION.derived(history)
  assert set(derived) == {"valid_rmse", "test_rmse"}
  np.testing.assert_array_equal(derived["valid_rmse"], [2.0, 3.0])
  assert CLASSIFICATION.derived(history) == {}


# -- the engine's steps -------------------------------------------------------------------

class Small(nn.Module):
  classes: int = 4

  @nn.compact
  def __call__(self, x, *, train):
    return nn.Dense(self.classes)(x.reshape((x.shape[0], -1)))


def test_evaluate_metrics_of_a_user_task_with_padding_match_numpy():
  model = Small()
  x = RNG.normal(size=(23, 6)).astype(np.float32)
  y = RNG.integers(0, 4, 23).astype(np.int32)
  params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
  top3 = Task("top3", task_lib.cross_entropy,
              {"acc": task_lib.accuracy, "top3": task_lib.top_k_accuracy(3)},
              monitor="top3", higher_is_better=True, target_dtype=jnp.int32)
  # 23 examples in batches of 7: 5 padded rows that must not count.
  got = jax.jit(lambda p: step.evaluate_metrics(model, top3, p, {}, x, y, 7))(params)
  logits = np.asarray(model.apply({"params": params}, x, train=False))
  order = np.argsort(-logits, -1, kind="stable")
  want = {"loss": -np.take_along_axis(_log_softmax(logits), y[:, None], -1).mean(),
          "acc": (order[:, 0] == y).mean(), "top3": (order[:, :3] == y[:, None]).any(1).mean()}
  assert set(got) == set(want)
  for name in want:
    np.testing.assert_allclose(got[name], want[name], rtol=1e-5, err_msg=name)
  assert want["acc"] < want["top3"] < 1
  plain = step.evaluate_metrics(model, top3, params, {}, x, y, 7)  # not jitted, as below
  loss, acc = step.evaluate(model, top3, params, {}, x, y, 7)
  assert (loss, acc) == (plain["loss"], plain["acc"])
  _, no_acc = step.evaluate(model, Task("ce", task_lib.cross_entropy), params, {}, x, y, 7)
  assert np.isnan(no_acc)


# -- user-defined tasks through lrjax.sweep ---------------------------------------------

class ZeroLinear(nn.Module):
  """``y = w . x + b`` starting from 0 (known initial parameters, whatever the seed)."""

  @nn.compact
  def __call__(self, x, *, train):
    return nn.Dense(1, kernel_init=nn.initializers.zeros)(x)[:, 0]


def _np_huber_run(data, lr, delta):
  """One full-batch gradient step on the mean Huber loss from w = 0, b = 0 (float64)."""
  x, y = (np.asarray(a, np.float64) for a in (data.train_x, data.train_y))
  g = np.clip(0.0 - y, -delta, delta) / len(y)  # d mean-loss / d output
  w, b = -lr * (x.T @ g), -lr * g.sum()
  loss = lambda split: _np_huber(getattr(data, f"{split}_x") @ w + b
                                 - getattr(data, f"{split}_y"), delta).mean()
  return {"train_loss": _np_huber(y, delta).mean(), "valid_loss": loss("valid"),
          "test_loss": loss("test"), "initial": _np_huber(data.valid_y, delta).mean()}


def test_a_user_huber_regression_trains_and_reports_through_sweep():
  data = synthetic((5,), num_train=100, num_test=30, num_classes=None, seed=0)
  huber = Task("huber", task_lib.huber(0.5), target_dtype=jnp.float32)
  lrs = [0.1, 0.02]
  result = lrjax.sweep(ZeroLinear(), data, lambda h: optax.sgd(h["learning_rate"]),
                       {"learning_rate": lrs}, epochs=1, batch_size=len(data.train_x),
                       task=huber, progress=False)
  for k, lr in enumerate(lrs):
    want = _np_huber_run(data, lr, 0.5)
    for field in ("train_loss", "valid_loss", "test_loss"):
      np.testing.assert_allclose(result.history[field][0, k], want[field], rtol=1e-5,
                                 err_msg=field)
    np.testing.assert_allclose(result.initial["valid_loss"][k], want["initial"], rtol=1e-5)
    # The squared error would give other numbers: the task's loss was the one used.
    assert abs(want["valid_loss"] - np.mean((data.valid_y - 0) ** 2)) > 1
  assert np.isnan(result.history["valid_acc"]).all()
  assert np.isnan(result.history["train_acc"]).all()
  row = result.summary[0]
  assert row["final_valid_loss"] == result.history["valid_loss"][-1, 0]
  assert not any(key.endswith(("_acc", "_rmse")) for key in row)


def test_a_user_top2_classification_reports_its_own_accuracy_through_sweep():
  data = synthetic("tiny", num_train=80, num_test=20, num_classes=2, seed=3)
  top2 = Task("top2", task_lib.cross_entropy, {"acc": task_lib.top_k_accuracy(2)},
              monitor="acc", higher_is_better=True, target_dtype=jnp.int32)
  run = lambda task: lrjax.sweep(
      Small(classes=2), data, lambda h: optax.sgd(h["learning_rate"]),
      {"learning_rate": [1e-4, 1e-3]}, epochs=2, batch_size=40, task=task, progress=False)
  mine, built_in = run(top2), run(CLASSIFICATION)
  # Same loss, same training: the losses agree; with 2 classes top-2 accuracy is 1 where
  # the arg-max accuracy of a barely trained model is not.
  for field in ("train_loss", "valid_loss", "test_loss"):
    np.testing.assert_allclose(mine.history[field], built_in.history[field], rtol=1e-6)
  for field in ("train_acc", "valid_acc", "test_acc"):
    np.testing.assert_array_equal(mine.history[field], 1.0)
  assert (built_in.history["valid_acc"] < 0.95).all()
  rows = mine.summary
  assert [r["final_valid_acc"] for r in rows] == [1.0, 1.0]
  assert [r["best_valid_acc"] for r in rows] == [1.0, 1.0]
  assert [r["convergence_epoch"] for r in rows] == [1, 1]


def test_summarize_reads_the_monitored_metric_and_direction_from_the_task():
  lower_better = Task("mae", task_lib.squared_error,
                      {"mae": lambda o, t: jnp.abs(o - t)}, monitor="mae")
  history = {"valid_loss": np.array([[3.0], [2.0], [2.5]]),
             "valid_mae": np.array([[1.0], [0.4], [0.6]]),
             "test_loss": np.ones((3, 1)), "test_mae": np.full((3, 1), 0.5),
             "train_loss": np.ones((3, 1)), "lr": np.full((3, 1), 0.1),
             "index": np.zeros((3, 1)), "nonfinite": np.zeros((3, 1))}
  row, = metrics.summarize(history, ["a"], task=lower_better, tolerance=0.25)
  assert row["best_valid_mae"] == 0.4 and row["final_valid_mae"] == 0.6
  assert row["final_test_mae"] == 0.5 and row["best_valid_loss"] == 2.0
  assert row["convergence_epoch"] == 2  # |0.4 - 0.6| <= 0.25, |1.0 - 0.6| > 0.25
  assert "final_valid_acc" not in row
