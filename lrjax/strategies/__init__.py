"""Strategies: when to advance a learning-rate sequence (``GradientTransformationExtraArgs``).

See `lrjax.strategies.strategy` for the extra-args contract (``valid_loss``,
``epoch_boundary``) and the rules of the report's Algorithms 1-3 plus reduce-on-plateau.
"""

from lrjax.strategies.strategy import (
    RULES, Rule, StrategyState, by_cutoff, by_epoch, by_oscillate, current_index,
    current_lr, fixed, on_plateau, scale_by_strategy, strategy_state, with_strategy)
from lrjax.strategies.torch_plateau import (
    TorchPlateauState, from_torch, reduce_lr_on_plateau)

__all__ = [
    "RULES", "Rule", "StrategyState", "scale_by_strategy",
    "by_epoch", "by_cutoff", "by_oscillate", "on_plateau", "fixed",
    "with_strategy", "strategy_state", "current_lr", "current_index",
    "TorchPlateauState", "reduce_lr_on_plateau", "from_torch",
]
