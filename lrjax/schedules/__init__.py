"""Learning-rate schedules: pure ``step -> lr`` functions (optax ``Schedule``)."""

from lrjax.schedules.base import Schedule, constant, from_values, switch
from lrjax.schedules.compose import chained, join
from lrjax.schedules.cosine import cosine_annealing, cosine_warm_restarts
from lrjax.schedules.cyclical import cyclical, exp_range, hann, triangular, triangular2, welch
from lrjax.schedules.decay import (
    exponential_decay,
    inverse_time_decay,
    keras_step_decay,
    keras_time_based_decay,
    polynomial_decay,
    step_decay,
)
from lrjax.schedules.keras_compat import (
    keras_cosine_decay,
    keras_cosine_decay_restarts,
    keras_exponential_decay,
    keras_inverse_time_decay,
    keras_polynomial_decay,
    piecewise_constant_decay,
)
from lrjax.schedules.momentum import (
    cyclical_momentum,
    one_cycle_linear_momentum,
    one_cycle_momentum,
)
from lrjax.schedules.one_cycle import one_cycle, one_cycle_torch
from lrjax.schedules.porting import from_keras, from_torch, per_epoch
from lrjax.schedules.range_test import lr_range_test
from lrjax.schedules.report import REPORT_SEQUENCES, seq1, seq2, seq3, seq4
from lrjax.schedules.torch_compat import (
    constant_lr,
    exponential_lr,
    lambda_lr,
    linear_lr,
    multi_step_lr,
    multiplicative_lr,
)
from lrjax.schedules.warmups import inverse_sqrt, warmup, warmup_stable_decay

__all__ = [
    "Schedule", "constant", "switch", "from_values",
    "REPORT_SEQUENCES", "seq1", "seq2", "seq3", "seq4",
    "step_decay", "keras_step_decay", "exponential_decay", "inverse_time_decay",
    "keras_time_based_decay", "polynomial_decay",
    "cosine_annealing", "cosine_warm_restarts",
    "cyclical", "triangular", "triangular2", "exp_range", "welch", "hann",
    "one_cycle", "one_cycle_torch",
    "lr_range_test",
    "join", "chained",
    "multi_step_lr", "linear_lr", "constant_lr", "lambda_lr", "multiplicative_lr",
    "exponential_lr",
    "piecewise_constant_decay", "keras_cosine_decay", "keras_cosine_decay_restarts",
    "keras_exponential_decay", "keras_inverse_time_decay", "keras_polynomial_decay",
    "warmup", "warmup_stable_decay", "inverse_sqrt",
    "one_cycle_momentum", "one_cycle_linear_momentum", "cyclical_momentum",
    "from_torch", "from_keras", "per_epoch",
]
