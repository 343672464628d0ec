"""The pure training and evaluation steps of one variant (Flax-examples style).

Nothing here touches the host: `train_step` maps (state, batch) to (state, metrics) and
is vmapped over variants and scanned over batches by `lrjax.train.engine.epoch`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lrjax.train.engine.task import ACCURACY, Task, as_task


class TrainState(NamedTuple):
  """Everything that changes during training, for one variant (arrays only)."""

  params: Any
  model_state: Any  # non-parameter collections (BatchNorm's batch_stats); {} if none
  opt_state: Any
  valid_loss: jax.Array  # the last validation loss, fed to the strategy at the boundary
  epoch: jax.Array  # int32, epochs completed


class StepMetrics(NamedTuple):
  loss: jax.Array
  correct: jax.Array  # sum over the batch of the task's ``acc`` metric (0 without one)
  count: jax.Array  # type: ignore[assignment]  # number of examples


def task_loss(outputs: jax.Array, targets: jax.Array, task: Task | str) -> jax.Array:
  """The task's mean per-example loss over the batch: the mean cross-entropy (report
  eq. 1) for `CLASSIFICATION`, the mean squared error for `REGRESSION`.

  ``task``: a `lrjax.train.Task` or the name of a built-in one.
  """
  return as_task(task).mean_loss(outputs, targets)


def _correct(outputs, targets, task: Task) -> jax.Array:
  """The batch's sum of the task's ``acc`` metric, float32 (0 for a task without one)."""
  metric = task.metrics.get(ACCURACY)
  if metric is None:
    return jnp.zeros((), jnp.float32)
  return jnp.sum(metric(outputs, targets)).astype(jnp.float32)


def apply_model(model: nn.Module, params, model_state, x, *, train: bool, key=None):
  """Runs the model; returns (outputs, new model_state).

  ``key`` is the ``dropout`` stream's key, or a dict of keys by RNG stream name.
  """
  variables = {"params": params, **model_state}
  if isinstance(key, dict):
    rngs = key
  else:
    rngs = {"dropout": key} if key is not None else {}
  if train and model_state:
    outputs, updated = model.apply(variables, x, train=True, rngs=rngs,
                                   mutable=list(model_state.keys()))
    return outputs, dict(updated)
  return model.apply(variables, x, train=train, rngs=rngs), model_state


def train_step(model: nn.Module, tx: optax.GradientTransformationExtraArgs, task: Task | str,
               state: TrainState, x, y, key, epoch_boundary,
               initial_observation=False) -> tuple[TrainState, StepMetrics]:
  """One optimizer step on the batch ``(x, y)``.

  The strategy receives ``valid_loss`` (last epoch's validation loss) and
  ``epoch_boundary`` (True on the first step of every epoch after the first) as extra
  args, and ``initial_observation`` (True on the very first step when ``valid_loss``
  holds the untrained model's validation loss, the report's ``loss_0``); the Newton
  learning rate receives ``value_fn``, the loss of this batch as a function of the
  parameters (same dropout mask, BatchNorm statistics not updated).  ``task``: a
  `lrjax.train.Task` or the name of a built-in one.
  """
  task = as_task(task)

  def loss_fn(params):
    outputs, new_model_state = apply_model(model, params, state.model_state, x,
                                           train=True, key=key)
    return task_loss(outputs, y, task), (outputs, new_model_state)

  (loss, (outputs, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)

  def value_fn(params):
    return loss_fn(params)[0]

  updates, opt_state = tx.update(grads, state.opt_state, state.params,
                                 valid_loss=state.valid_loss,
                                 epoch_boundary=epoch_boundary,
                                 initial_observation=initial_observation, value_fn=value_fn)
  params = optax.apply_updates(state.params, updates)
  new_state = state._replace(params=params, model_state=new_model_state, opt_state=opt_state)
  return new_state, StepMetrics(loss, _correct(outputs, y, task),
                                jnp.asarray(y.shape[0], jnp.float32))


def evaluate_metrics(model: nn.Module, task: Task | str, params, model_state, x, y,
                     batch_size: int) -> dict[str, jax.Array]:
  """``{"loss": mean loss, metric: mean metric ...}`` of the task over ``(x, y)``.

  Evaluated in batches of ``batch_size``: the data are padded to a whole number of
  batches, padded rows get weight 0, and the sums are divided by the true count.
  """
  task = as_task(task)
  n = x.shape[0]
  batch_size = min(batch_size, n)
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  xs = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
  ys = jnp.concatenate([y, jnp.zeros((pad,) + y.shape[1:], y.dtype)]) if pad else y
  weights = (jnp.arange(num_batches * batch_size) < n).astype(jnp.float32)
  xs = xs.reshape((num_batches, batch_size) + x.shape[1:])
  ys = ys.reshape((num_batches, batch_size) + y.shape[1:])
  weights = weights.reshape(num_batches, batch_size)

  def one_batch(args):
    bx, by, bw = args
    outputs, _ = apply_model(model, params, model_state, bx, train=False)
    return task.metric_sums(outputs, by, bw)

  sums = jax.lax.map(one_batch, (xs, ys, weights))
  return {name: jnp.sum(total) / n for name, total in sums.items()}


def evaluate(model: nn.Module, task: Task | str, params, model_state, x, y,
             batch_size: int) -> tuple[jax.Array, jax.Array]:
  """Mean loss and mean ``acc`` metric over ``(x, y)`` (NaN for a task without
  accuracy, e.g. regression): the engine's two evaluation numbers, see
  `evaluate_metrics` for all of a task's metrics."""
  values = evaluate_metrics(model, task, params, model_state, x, y, batch_size)
  accuracy = values.get(ACCURACY, jnp.nan)
  return values["loss"], jnp.asarray(accuracy, jnp.float32)
