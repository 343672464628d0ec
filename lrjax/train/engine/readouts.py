"""What a sweep reports of a variant's optimizer state, read by field name.

The rate, the strategy's sequence position and the non-finite flag are read from any
optax / lrjax state by the name of the field holding them (as
`optax.tree_utils.tree_get` does), never by the optimizer's name, so a user's own
chain reports them as the built-in ones do:

* rate: the last scalar ``lr`` / ``learning_rate`` field (`lrjax.strategies`,
  `lrjax.adaptive`, ``optax.inject_hyperparams``), else NaN;
* position: the first scalar ``index`` field (`lrjax.strategies.StrategyState`), or
  ``num_reductions`` (PyTorch's plateau rule), else -1;
* non-finite: any ``nonfinite`` flag, or a step skipped by `optax.apply_if_finite`
  (``total_notfinite > 0``).

Pure functions of the state: they run inside the traced, vmapped epoch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from lrjax.errors import UsageError

LR_FIELDS = ("lr", "learning_rate")
INDEX_FIELD = "index"
REDUCTIONS_FIELD = "num_reductions"  # lrjax.strategies.reduce_lr_on_plateau
NONFINITE_FIELD = "nonfinite"
SKIPPED_FIELD = "total_notfinite"  # optax.ApplyIfFiniteState


def _scalars(opt_state, field: str) -> list:
  found = optax.tree_utils.tree_get_all_with_path(opt_state, field)
  return [v for _, v in found if hasattr(v, "shape") and jnp.ndim(v) == 0]


def read_lr(opt_state) -> jax.Array:
  """The rate held in the state (the last ``lr`` / ``learning_rate`` field), else NaN."""
  for field in LR_FIELDS:
    values = _scalars(opt_state, field)
    if values:
      return jnp.asarray(values[-1], jnp.float32)
  return jnp.asarray(jnp.nan, jnp.float32)


def read_index(opt_state) -> jax.Array:
  """The strategy's sequence position (an ``index`` field; for PyTorch's plateau rule the
  reductions applied, ``num_reductions``), else -1."""
  for field in (INDEX_FIELD, REDUCTIONS_FIELD):
    values = _scalars(opt_state, field)
    if values:
      return jnp.asarray(values[0], jnp.int32)
  return jnp.asarray(-1, jnp.int32)


def read_nonfinite(opt_state) -> jax.Array:
  """Any ``nonfinite`` flag set, or a step skipped by `optax.apply_if_finite`."""
  flag = jnp.asarray(False)
  for value in _scalars(opt_state, NONFINITE_FIELD):
    flag = flag | jnp.asarray(value, bool)
  for value in _scalars(opt_state, SKIPPED_FIELD):
    flag = flag | (value > 0)
  return flag


# Optimizers whose evaluation weights differ from the weights they train (optax cannot
# declare it): the state type -> ``fn(state, params) -> evaluation params``.
EVAL_PARAMS = {optax.contrib.ScheduleFreeState: optax.contrib.schedule_free_eval_params}


def _eval_rule(node):
  rule = EVAL_PARAMS.get(type(node))
  if rule is None and isinstance(node, tuple) and hasattr(node, "_fields"):
    method = getattr(type(node), "eval_params", None)
    rule = method if callable(method) else None
  return rule


def eval_params(opt_state, params):
  """The weights to evaluate: ``params``, or what the optimizer says it evaluates at.

  optax's schedule-free optimizers train one sequence and are evaluated at another
  (``optax.contrib.schedule_free_eval_params``); a user's state declares the same with an
  ``eval_params(self, params)`` method on its NamedTuple.  Pure: it runs inside the
  epoch, for the validation and test passes and the kept model.
  """
  nodes = [x for x in jax.tree.leaves(opt_state, is_leaf=lambda x: _eval_rule(x) is not None)
           if _eval_rule(x) is not None]
  if not nodes:
    return params
  if len(nodes) > 1:
    raise UsageError(f"the optimizer state holds {len(nodes)} states that say where to "
                     f"evaluate ({', '.join(type(n).__name__ for n in nodes)}); keep one.")
  return _eval_rule(nodes[0])(nodes[0], params)


_INJECT_STATES = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)


def read_injected(opt_state) -> dict:
  """The numeric hyperparameters ``optax.inject_hyperparams`` holds in the state (its
  ``hyperparams``: momentum, weight decay, ``b1`` ...), by name, as Lightning's
  LearningRateMonitor records them; the rate is `read_lr`'s.  A name found in two
  inject states is numbered (``momentum``, ``momentum_1``)."""
  nodes = [x for x in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, _INJECT_STATES))
           if isinstance(x, _INJECT_STATES)]
  out = {}
  for node in nodes:
    for name, value in node.hyperparams.items():
      if name in LR_FIELDS or not hasattr(value, "shape") or jnp.ndim(value) != 0:
        continue
      key, n = name, 0
      while key in out:
        n += 1
        key = f"{name}_{n}"
      out[key] = jnp.asarray(value, jnp.float32)
  return out
