"""A plain training loop: what the compiled engine must compute, written as for-loops.

The engine (`lrjax.train.engine.epoch` / `lrjax.train.api`) trains many variants in one
vmapped, scanned XLA program; this module trains ONE variant with Python ``for`` loops
over epochs and steps, optax's own optimizers updated by hand, and a strategy written
out as plain Python (no `lrjax.strategies`, no `lrjax.train`).  `tests/
test_engine_reference.py` runs both and compares them step by step.

The contract it spells out (BUILD.md, "How data flows through a sweep"):

* keys: ``fold_in(fold_in(PRNGKey(seed), salt), epoch)`` with salt 0 = parameter init
  (epoch 0), 1 = data order, 2 = dropout (then ``fold_in(step)``);
* each epoch: a permutation of the training set, cut to ``n // batch_size`` whole
  batches (the last partial batch is dropped);
* every step: gradient of the mean minibatch loss (train mode: dropout on, BatchNorm
  batch statistics, running averages updated); the rate in use is the strategy's;
* before epoch 0 the untrained model is evaluated on the validation set; on the first
  step of epoch 0 the strategy records that loss as ``loss_0`` (an *initial
  observation*: baseline and cutoff, no decision), the report's reading; with
  ``observe_untrained_loss=False`` the first boundary's loss is ``loss_0`` instead;
* the strategy sees the validation loss of the previous epoch on the first step of
  every epoch after the first (`strategy_signal`, the one place to change when the
  engine's contract changes);
* after each epoch: validation and test loss/accuracy over the whole sets, eval mode.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

# The engine's random streams, written out (lrjax.train.engine.epoch documents the same).
INIT_SALT, ORDER_SALT, DROPOUT_SALT = 0, 1, 2

# Inner optimizers as optax ships them, with the rate as an injected hyperparameter,
# and the engine's documented defaults spelled out.
OPTAX_OPTIMIZERS: dict[str, Callable[[dict], optax.GradientTransformation]] = {
    "sgd": lambda kw: optax.inject_hyperparams(optax.sgd)(learning_rate=1.0),
    "momentum": lambda kw: optax.inject_hyperparams(optax.sgd)(
        learning_rate=1.0, momentum=kw.get("momentum", 0.9)),
    "nesterov": lambda kw: optax.inject_hyperparams(optax.sgd)(
        learning_rate=1.0, momentum=kw.get("momentum", 0.9), nesterov=True),
    "adam": lambda kw: optax.inject_hyperparams(optax.adam)(
        learning_rate=1.0, b1=kw.get("b1", 0.9), b2=kw.get("b2", 0.999),
        eps=kw.get("eps", 1e-8)),
    "rmsprop": lambda kw: optax.inject_hyperparams(optax.rmsprop)(
        learning_rate=1.0, decay=kw.get("decay", 0.9), eps=kw.get("eps", 1e-8)),
    "adagrad": lambda kw: optax.inject_hyperparams(optax.adagrad)(
        learning_rate=1.0, initial_accumulator_value=kw.get("initial_accumulator_value", 0.1),
        eps=kw.get("eps", 1e-7)),
    "adadelta": lambda kw: optax.inject_hyperparams(optax.adadelta)(
        learning_rate=1.0, rho=kw.get("rho", 0.95), eps=kw.get("eps", 1e-8)),
}


def key(seed: int, salt: int, epoch: int = 0) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), salt), epoch)


class Strategy:
  """The report's strategies (Algorithms 1-3) as plain Python on floats.

  ``observe(loss)`` is one epoch boundary: ``epoch`` advances always (Algorithm 1 never
  looks at the loss, NaN included), ``cutoff`` when ``|L_t - L_{t-1}| < c_t``
  (``c_0 = fraction |L_0|``, ``c *= decay`` after an advance), ``oscillate`` when
  ``L_t > L_{t-1}``, ``fixed`` never; a NaN/inf loss moves no loss-based rule.
  ``initial(loss)`` records ``L_0`` (the untrained model's loss) without deciding.
  """

  def __init__(self, sequence, rule: str, cutoff_fraction=0.01, cutoff_decay=0.2):
    self.sequence, self.rule = sequence, rule
    self.fraction, self.decay = cutoff_fraction, cutoff_decay
    self.index = 0
    self.lr = float(sequence(0))
    self.prev = None
    self.cutoff = None
    self.observed: list[float] = []

  def initial(self, loss: float) -> None:
    self.observed.append(loss)
    if math.isfinite(loss):
      self.cutoff = self.fraction * abs(loss)
      self.prev = loss

  def observe(self, loss: float) -> None:
    self.observed.append(loss)
    if not math.isfinite(loss):
      if self.rule == "epoch":
        self.index += 1
        self.lr = float(self.sequence(self.index))
      return
    if self.prev is None:
      self.cutoff = self.fraction * abs(loss)
      advance = self.rule == "epoch"
    else:
      advance = {"fixed": False, "epoch": True,
                 "cutoff": abs(loss - self.prev) < self.cutoff,
                 "oscillate": loss - self.prev > 0}[self.rule]
      if advance and self.rule == "cutoff":
        self.cutoff *= self.decay
    if advance:
      self.index += 1
      self.lr = float(self.sequence(self.index))
    self.prev = loss


def strategy_signal(epoch: int, step: int, last_valid_loss: float | None,
                    initial_valid_loss: float | None = None
                    ) -> tuple[str, float] | None:
  """>>> THE place where the epoch-level signal reaches the strategy. <<<

  Returns ``(kind, loss)``, what the strategy observes before step ``step`` of epoch
  ``epoch``, or None: ``("initial", untrained validation loss)`` on the first step of
  epoch 0 when the untrained model was evaluated, ``("boundary", previous epoch's
  validation loss)`` on the first step of every later epoch.
  """
  if step == 0 and epoch == 0 and initial_valid_loss is not None:
    return "initial", initial_valid_loss
  if step == 0 and epoch > 0:
    return "boundary", last_valid_loss
  return None


def _loss(outputs, targets, task):
  if task == "classification":
    logp = jax.nn.log_softmax(outputs, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[:, None], axis=-1))
  return jnp.mean(jnp.square(outputs - targets))


@dataclasses.dataclass
class Run:
  """What one variant went through (one row per epoch)."""

  orders: list = dataclasses.field(default_factory=list)  # full permutation per epoch
  step_loss: list = dataclasses.field(default_factory=list)  # [epochs][steps]
  step_lr: list = dataclasses.field(default_factory=list)  # rate used at each step
  fed: list = dataclasses.field(default_factory=list)  # (epoch, step, loss) to strategy
  train_loss: list = dataclasses.field(default_factory=list)
  train_acc: list = dataclasses.field(default_factory=list)  # over the examples seen
  valid_loss: list = dataclasses.field(default_factory=list)
  valid_acc: list = dataclasses.field(default_factory=list)
  test_loss: list = dataclasses.field(default_factory=list)
  test_acc: list = dataclasses.field(default_factory=list)
  index: list = dataclasses.field(default_factory=list)  # strategy position after epoch
  params: Any = None
  model_state: Any = None
  model_states: list = dataclasses.field(default_factory=list)  # after each epoch


def evaluate(model, variables, x, y, task):
  """Loss and accuracy over the whole set in one forward pass (eval mode)."""
  out = model.apply(variables, jnp.asarray(x), train=False)
  loss = float(_loss(out, jnp.asarray(y), task))
  acc = float(np.mean(np.argmax(out, -1) == y)) if task == "classification" else math.nan
  return loss, acc


def train(model, variant, data, *, epochs: int, batch_size: int, task: str,
          observe_untrained_loss: bool = True) -> Run:
  """Trains ``variant`` (a `lrjax.train.Variant`) on ``data`` with for-loops."""
  from lrjax import adaptive, schedules  # the rates and sequences themselves

  kw = dict(variant.optimizer_kwargs)
  sequence = getattr(schedules, variant.sequence)(variant.learning_rate,
                                                  **dict(variant.sequence_kwargs))
  self_tuning = variant.optimizer not in OPTAX_OPTIMIZERS
  if self_tuning:
    tx = {"hypergradient_sgd": lambda: adaptive.hypergradient_sgd(variant.learning_rate, **kw),
          "hypergradient_adam": lambda: adaptive.hypergradient_adam(variant.learning_rate, **kw),
          "newton": lambda: adaptive.newton_lr(variant.learning_rate, **kw),
          "dog": lambda: optax.contrib.dog(learning_rate=variant.learning_rate, **kw),
          "prodigy": lambda: optax.contrib.prodigy(learning_rate=variant.learning_rate, **kw),
          "mechanic": lambda: optax.contrib.mechanize(optax.sgd(variant.learning_rate), **kw),
          }[variant.optimizer]()
  else:
    tx = OPTAX_OPTIMIZERS[variant.optimizer](kw)
  # Self-tuning optimizers set their own rate: no strategy (the rule is ignored).
  strategy = None if variant.rule == "step" or self_tuning else Strategy(sequence, variant.rule)

  variables = dict(model.init(key(variant.seed, INIT_SALT), jnp.asarray(data.train_x[:1]),
                              train=False))
  params = variables.pop("params")
  model_state = variables
  opt_state = tx.init(params)

  @jax.jit
  def step(params, model_state, opt_state, x, y, dropout_key, lr):
    def loss_fn(p):
      v = {"params": p, **model_state}
      if model_state:
        out, new_state = model.apply(v, x, train=True, rngs={"dropout": dropout_key},
                                     mutable=list(model_state))
      else:
        out, new_state = model.apply(v, x, train=True, rngs={"dropout": dropout_key}), {}
      return _loss(out, y, task), (dict(new_state), out)

    (loss, (new_state, out)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    if self_tuning:
      updates, opt_state = tx.update(grads, opt_state, params,
                                     value_fn=lambda p: loss_fn(p)[0])
    else:
      opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
      updates, opt_state = tx.update(grads, opt_state, params)
    correct = jnp.sum(jnp.argmax(out, -1) == y) if task == "classification" else 0
    return loss, correct, optax.apply_updates(params, updates), new_state, opt_state

  run = Run()
  untrained_valid = None
  if observe_untrained_loss:
    untrained_valid, _ = evaluate(model, {"params": params, **model_state}, data.valid_x,
                                  data.valid_y, task)
  n = data.train_x.shape[0]
  steps = n // batch_size
  last_valid = None
  global_step = 0
  for epoch in range(epochs):
    order = np.asarray(jax.random.permutation(key(variant.seed, ORDER_SALT, epoch), n))
    run.orders.append(order)
    dropout_key = key(variant.seed, DROPOUT_SALT, epoch)
    losses, rates, correct = [], [], 0
    for s in range(steps):
      signal = strategy_signal(epoch, s, last_valid, untrained_valid)
      if signal is not None:
        kind, loss_seen = signal
        run.fed.append((epoch, s, kind, loss_seen))
        if strategy is not None:
          (strategy.initial if kind == "initial" else strategy.observe)(loss_seen)
      idx = order[s * batch_size:(s + 1) * batch_size]
      lr = strategy.lr if strategy is not None else (
          math.nan if self_tuning else float(sequence(global_step)))
      loss, hits, params, model_state, opt_state = step(
          params, model_state, opt_state, jnp.asarray(data.train_x[idx]),
          jnp.asarray(data.train_y[idx]), jax.random.fold_in(dropout_key, s), lr)
      if variant.optimizer in ("hypergradient_sgd", "hypergradient_adam", "newton"):
        lr = float(adaptive.learned_lr(opt_state))
      elif self_tuning:
        lr = math.nan
      losses.append(float(loss))
      correct += int(hits)
      rates.append(lr)
      global_step += 1
    run.step_loss.append(losses)
    run.step_lr.append(rates)
    run.train_loss.append(float(np.mean(losses)))
    run.train_acc.append(correct / (steps * batch_size) if task == "classification" else math.nan)
    variables = {"params": params, **model_state}
    for split in ("valid", "test"):
      loss, acc = evaluate(model, variables, getattr(data, f"{split}_x"),
                           getattr(data, f"{split}_y"), task)
      getattr(run, f"{split}_loss").append(loss)
      getattr(run, f"{split}_acc").append(acc)
    run.index.append(-1 if strategy is None else strategy.index)
    run.model_states.append(jax.device_get(model_state))
    last_valid = run.valid_loss[-1]
  run.params, run.model_state = jax.device_get(params), jax.device_get(model_state)
  return run
