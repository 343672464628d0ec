"""Strategies: when to advance a learning-rate sequence (``GradientTransformationExtraArgs``).

* `lrjax.strategies.strategy`: `scale_by_strategy` and the extra-args contract
  (``valid_loss``, ``epoch_boundary``, ``initial_observation``); the report's
  Algorithms 1-3 and reduce-on-plateau (`by_epoch`, `by_cutoff`, `by_oscillate`,
  `on_plateau`, `fixed`).
* `lrjax.strategies.rules`: rules as pure functions of `Statistics` (add your own;
  `switch_rule` selects one by a traced index).
* `lrjax.strategies.optimizers`: complete optimizers (`sgd`, `adam`, `adamw`,
  `rmsprop`, `adagrad`), so no sign convention to get wrong.
* `lrjax.strategies.torch_plateau`: PyTorch's ``ReduceLROnPlateau`` exactly
  (`reduce_lr_on_plateau`, `from_torch`).
* `lrjax.strategies.compose`: `with_strategy` (refuses an inner that already
  descends), `multi_steps` (``optax.MultiSteps`` that keeps boundaries), the
  ``apply_if_finite`` layout.

Pitfall: a strategy multiplies by ``-lr``; ``optax.chain(optax.sgd(1.0), by_epoch(seq))``
applies the minus twice and ascends.  Use the complete optimizers or `with_strategy`.
"""

from lrjax.strategies import rules
from lrjax.strategies.compose import (
    MultiStepsStrategyState,
    PendingSignal,
    multi_steps,
    with_strategy,
)
from lrjax.strategies.optimizers import adagrad, adam, adamw, rmsprop, sgd
from lrjax.strategies.rules import Statistics, switch_rule
from lrjax.strategies.strategy import (
    BUILTIN_RULES,
    RULES,
    Rule,
    StrategyState,
    by_cutoff,
    by_epoch,
    by_oscillate,
    current_index,
    current_lr,
    fixed,
    on_plateau,
    scale_by_strategy,
    strategy_state,
)
from lrjax.strategies.torch_plateau import TorchPlateauState, from_torch, reduce_lr_on_plateau

__all__ = [
    "RULES", "Rule", "BUILTIN_RULES", "StrategyState", "scale_by_strategy",
    "by_epoch", "by_cutoff", "by_oscillate", "on_plateau", "fixed",
    "rules", "Statistics", "switch_rule",
    "sgd", "adam", "adamw", "rmsprop", "adagrad",
    "with_strategy", "multi_steps", "MultiStepsStrategyState", "PendingSignal",
    "strategy_state", "current_lr", "current_index",
    "TorchPlateauState", "reduce_lr_on_plateau", "from_torch",
]
