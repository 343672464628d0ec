"""What a sweep minimises and reports: the task, defined once.

A `Task` holds the per-example loss and metrics of a problem (pure functions of the
model's outputs and the targets, each returning one value per example) and what the
summaries make of them: which quantity is monitored for the best value and the
convergence epoch (higher or lower is better), and the metrics derived from the mean
loss after training (RMSE = sqrt(MSE), in the data's units).  Training
(`lrjax.train.engine.step.train_step`), evaluation (`evaluate`), summaries
(`lrjax.train.reports.metrics.summarize`), tables (`lrjax.train.reports.results`) and plots
(`lrjax.train.reports.plotting`) all read the task instead of switching on its name, so a
user's task (a Huber loss, a top-k accuracy) works everywhere the built-in ones do.

History fields are named ``{split}_loss``, ``{split}_{metric}`` for each metric and
``{split}_{name}`` for each derived metric (``split`` in train / valid / test).  The
engine's per-epoch record keeps the accuracy fields ``train_acc`` / ``valid_acc`` /
``test_acc`` (checkpoints and results files stay as they were): they hold the task's
metric named ``acc``, NaN for a task without one.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax.errors import ArgumentError, ArgumentTypeError

PerExample = Callable[[jax.Array, jax.Array], jax.Array]

# The metric name the engine's ``*_acc`` history fields hold.
ACCURACY = "acc"
SPLITS = ("train", "valid", "test")


# -- per-example functions -------------------------------------------------------------

def cross_entropy(outputs: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example softmax cross-entropy of logits ``[..., C]`` and integer labels ``[...]``
  (report eq. 1), ``optax.softmax_cross_entropy_with_integer_labels``."""
  return optax.softmax_cross_entropy_with_integer_labels(outputs, labels)


def accuracy(outputs: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example 1.0 where the arg-max of the logits is the label, else 0.0."""
  return (jnp.argmax(outputs, -1) == labels).astype(jnp.float32)


def top_k_accuracy(k: int) -> PerExample:
  """A per-example metric: 1.0 where the label is among the ``k`` largest logits.

  Ties are broken towards the lower class index (as `jax.lax.top_k` does).
  """
  if isinstance(k, bool) or not isinstance(k, int) or k < 1:
    raise ArgumentError("k", f"must be a positive integer, got {k!r}.")

  def top_k(outputs, labels):
    _, best = jax.lax.top_k(outputs, k)
    return jnp.any(best == labels[..., None], axis=-1).astype(jnp.float32)

  top_k.__name__ = f"top_{k}_accuracy"
  return top_k


def _check_same_shape(outputs, targets, what: str):
  if outputs.shape != targets.shape:
    raise ValueError(
        f"the {what} needs model outputs of the targets' shape, got outputs "
        f"{outputs.shape} for targets {targets.shape} (e.g. a Dense(1) output of shape "
        f"(N, 1) for targets (N,): index it with [:, 0]).")


def squared_error(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-example squared error, averaged over any non-batch axes (mean of these is the
  MSE).  Outputs and targets must have the same shape (no silent broadcasting)."""
  _check_same_shape(outputs, targets, "squared error")
  error = jnp.square(outputs - targets)
  return error.reshape(error.shape[0], -1).mean(axis=1) if error.ndim > 1 else error


def huber(delta: float = 1.0) -> PerExample:
  """A per-example Huber loss (`optax.huber_loss`), averaged over non-batch axes."""
  if not np.isfinite(delta) or delta <= 0:
    raise ArgumentError("delta", f"must be a positive number, got {delta!r}.")

  def huber_loss(outputs, targets):
    _check_same_shape(outputs, targets, "Huber loss")
    loss = optax.huber_loss(outputs, targets, delta=delta)
    return loss.reshape(loss.shape[0], -1).mean(axis=1) if loss.ndim > 1 else loss

  return huber_loss


def rmse(mse):
  """Root of a mean squared error (host side; NaN stays NaN)."""
  return np.sqrt(mse)


# -- the task --------------------------------------------------------------------------

def _frozen(mapping, name: str) -> Mapping[str, Callable]:
  if mapping is None:
    return types.MappingProxyType({})
  if not isinstance(mapping, Mapping):
    raise ArgumentTypeError(name, "must be a mapping name -> function, got "
                            f"{type(mapping).__name__}.")
  for key, fn in mapping.items():
    if not isinstance(key, str) or not key.isidentifier():
      raise ArgumentError(name, "names must be identifiers (they name history fields "
                          f"such as valid_<name>), got {key!r}.")
    if not callable(fn):
      raise ArgumentTypeError(f"{name}[{key!r}]", f"must be a function, got {type(fn).__name__}.")
  return types.MappingProxyType(dict(mapping))


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
  """The loss and metrics of a problem (see the module docstring).

  Attributes:
    name: a label (results files record it).
    loss: ``(outputs, targets) -> [batch]`` per-example loss; training minimises its
      mean over the minibatch, evaluation reports its mean over the split.
    metrics: ``{name: (outputs, targets) -> [batch]}`` per-example metrics, averaged
      over the examples (``acc`` fills the engine's accuracy fields).
    monitor: ``"loss"`` or a metric name: the quantity whose best value and
      convergence epoch the summaries report.
    higher_is_better: whether a larger ``monitor`` is better (accuracy) or a smaller
      one (a loss).
    derived_metrics: ``{name: f}`` metrics computed on the host from a split's mean loss,
      e.g. ``{"rmse": np.sqrt}``; ``f`` must be increasing (the best loss gives the
      best derived value).
    target_dtype: the dtype of the targets (integer labels, float values).

  Example:
    >>> import optax
    >>> HUBER = Task("huber regression", huber(1.0), derived_metrics={"rmse": rmse},
    ...              target_dtype=jnp.float32)
    >>> HUBER.history_fields("valid")
    ('valid_loss', 'valid_rmse')
  """

  name: str
  loss: PerExample
  metrics: Mapping[str, PerExample] = dataclasses.field(default_factory=dict)
  monitor: str = "loss"
  higher_is_better: bool = False
  derived_metrics: Mapping[str, Callable[[Any], Any]] = dataclasses.field(
      default_factory=dict)
  target_dtype: Any = jnp.float32

  def __post_init__(self):
    if not isinstance(self.name, str) or not self.name:
      raise ArgumentError("name", f"must be a non-empty string, got {self.name!r}.")
    if not callable(self.loss):
      raise ArgumentTypeError("loss", "must be a function (outputs, targets) -> per-example "
                              f"losses, got {type(self.loss).__name__}.")
    object.__setattr__(self, "metrics", _frozen(self.metrics, "metrics"))
    object.__setattr__(self, "derived_metrics",
                       _frozen(self.derived_metrics, "derived_metrics"))
    names = [*self.metrics, *self.derived_metrics]
    clash = {n for n in names if n == "loss" or names.count(n) > 1}
    if clash:
      raise ArgumentError("metrics", "and `derived_metrics` names must differ from each "
                          f"other and from 'loss', got {sorted(clash)}.")
    if self.monitor != "loss" and self.monitor not in self.metrics:
      raise ArgumentError("monitor", "must be 'loss' or one of the metrics "
                          f"{sorted(self.metrics)}, got {self.monitor!r}.")
    if not isinstance(self.higher_is_better, bool):
      raise ArgumentTypeError("higher_is_better", f"must be a bool, got {self.higher_is_better!r}.")
    if self.monitor == "loss" and self.higher_is_better:
      raise ArgumentError("higher_is_better", "cannot be True when `monitor` is 'loss' (a "
                          "loss is minimised).")
    try:
      dtype = np.dtype(self.target_dtype)
    except TypeError as err:
      raise ArgumentTypeError("target_dtype",
                              f"must be a dtype, got {self.target_dtype!r}.") from err
    object.__setattr__(self, "target_dtype", dtype)

  def __repr__(self) -> str:
    return f"Task({self.name!r})"

  # Identity by value of the parts that define the numbers: two tasks built alike are
  # equal (functions compare by identity), so a task can key a dict or a cache.
  def _key(self):
    return (self.name, self.loss, tuple(self.metrics.items()), self.monitor,
            self.higher_is_better, tuple(self.derived_metrics.items()), self.target_dtype)

  def __eq__(self, other):
    return isinstance(other, Task) and self._key() == other._key()

  def __hash__(self):
    return hash(self._key())

  # -- on the device -------------------------------------------------------------
  def mean_loss(self, outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """The minibatch loss minimised by training: the mean per-example loss."""
    return self.loss(outputs, targets).mean()

  def metric_sums(self, outputs: jax.Array, targets: jax.Array,
                  weights: jax.Array | None = None) -> dict[str, jax.Array]:
    """``{"loss": ..., metric: ...}`` summed over the examples (weighted by
    ``weights``, e.g. 0 for padding rows)."""
    values = {"loss": self.loss(outputs, targets)}
    values.update({name: fn(outputs, targets) for name, fn in self.metrics.items()})
    if weights is None:
      return {name: jnp.sum(v) for name, v in values.items()}
    return {name: jnp.sum(v * weights) for name, v in values.items()}

  # -- on the host -----------------------------------------------------------------
  def history_fields(self, split: str) -> tuple[str, ...]:
    """The history fields of ``split``: its loss, metrics and derived metrics."""
    return tuple(f"{split}_{m}" for m in ("loss", *self.metrics, *self.derived_metrics))

  def derived(self, history: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{split_name: f(history[split_loss])}`` for every derived metric and every split
    whose loss is in ``history`` (the RMSE columns of a regression)."""
    out = {}
    for split in SPLITS:
      loss = history.get(f"{split}_loss")
      if loss is None:
        continue
      for name, fn in self.derived_metrics.items():
        out[f"{split}_{name}"] = np.asarray(fn(np.asarray(loss)))
    return out

  @property
  def monitor_field(self) -> str:
    """The validation history field the summaries monitor (``valid_acc``, ...)."""
    return f"valid_{self.monitor}"


CLASSIFICATION = Task("classification", cross_entropy, {ACCURACY: accuracy},
                      monitor=ACCURACY, higher_is_better=True, target_dtype=jnp.int32)
REGRESSION = Task("regression", squared_error, derived_metrics={"rmse": rmse},
                  target_dtype=jnp.float32)
BUILT_IN = {t.name: t for t in (CLASSIFICATION, REGRESSION)}


def as_task(task) -> Task:
  """``task`` as a `Task`: a `Task` itself, or the name of a built-in one
  (``"classification"``, ``"regression"``), the form configs and checkpoints use."""
  if isinstance(task, Task):
    return task
  if isinstance(task, str):
    if task not in BUILT_IN:
      raise ArgumentError("task", f"must be a lrjax.train.Task or one of {sorted(BUILT_IN)}, "
                          f"got {task!r}.")
    return BUILT_IN[task]
  raise ArgumentTypeError("task", "must be a lrjax.train.Task (CLASSIFICATION, REGRESSION or your "
                          f"own) or its name, got {type(task).__name__}.")
