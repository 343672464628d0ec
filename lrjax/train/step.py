"""The pure training and evaluation steps of one variant (Flax-examples style).

Nothing here touches the host: `train_step` maps (state, batch) to (state, metrics) and
is vmapped over variants and scanned over batches by `lrjax.train.epoch`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class TrainState(NamedTuple):
  """Everything that changes during training, for one variant (arrays only)."""

  params: Any
  model_state: Any  # non-parameter collections (BatchNorm's batch_stats); {} if none
  opt_state: Any
  valid_loss: jax.Array  # the last validation loss, fed to the strategy at the boundary
  epoch: jax.Array  # int32, epochs completed


class StepMetrics(NamedTuple):
  loss: jax.Array
  correct: jax.Array  # number of correct predictions (0 for regression)
  count: jax.Array  # number of examples


def task_loss(outputs: jax.Array, targets: jax.Array, task: str) -> jax.Array:
  """Mean cross-entropy (report eq. 1) for classification, mean squared error else."""
  if task == "classification":
    return optax.softmax_cross_entropy_with_integer_labels(outputs, targets).mean()
  return jnp.mean(jnp.square(outputs - targets))


def _correct(outputs, targets, task):
  if task == "classification":
    return jnp.sum(jnp.argmax(outputs, -1) == targets).astype(jnp.float32)
  return jnp.zeros((), jnp.float32)


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


def train_step(model: nn.Module, tx: optax.GradientTransformationExtraArgs, task: str,
               state: TrainState, x, y, key, epoch_boundary,
               initial_observation=False) -> tuple[TrainState, StepMetrics]:
  """One optimizer step on the batch ``(x, y)``.

  The strategy receives ``valid_loss`` (last epoch's validation loss) and
  ``epoch_boundary`` (True on the first step of every epoch after the first) as extra
  args, and ``initial_observation`` (True on the very first step when ``valid_loss``
  holds the untrained model's validation loss, the report's ``loss_0``); the Newton learning rate receives ``value_fn``, the loss of this batch as a
  function of the parameters (same dropout mask, BatchNorm statistics not updated).
  """

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


def evaluate(model: nn.Module, task: str, params, model_state, x, y,
             batch_size: int) -> tuple[jax.Array, jax.Array]:
  """Mean loss and accuracy over ``(x, y)`` in batches (NaN accuracy for regression).

  The data are padded to a whole number of batches; padded rows get weight 0.
  """
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
    if task == "classification":
      losses = optax.softmax_cross_entropy_with_integer_labels(outputs, by)
      correct = (jnp.argmax(outputs, -1) == by).astype(jnp.float32)
    else:
      losses = jnp.square(outputs - by)
      correct = jnp.zeros_like(losses)
    return jnp.sum(losses * bw), jnp.sum(correct * bw)

  loss_sums, correct_sums = jax.lax.map(one_batch, (xs, ys, weights))
  loss = jnp.sum(loss_sums) / n
  accuracy = jnp.sum(correct_sums) / n if task == "classification" else jnp.nan
  return loss, jnp.asarray(accuracy, jnp.float32)
