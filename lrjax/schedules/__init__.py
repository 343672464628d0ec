"""Learning-rate schedules: pure ``step -> lr`` functions (optax ``Schedule``)."""

from lrjax.schedules.base import Schedule, constant, switch
from lrjax.schedules.report import REPORT_SEQUENCES, seq1, seq2, seq3, seq4
from lrjax.schedules.decay import (
    exponential_decay, inverse_time_decay, keras_step_decay, keras_time_based_decay,
    polynomial_decay, step_decay)
from lrjax.schedules.cosine import cosine_annealing, cosine_warm_restarts
from lrjax.schedules.cyclical import (
    cyclical, exp_range, hann, triangular, triangular2, welch)
from lrjax.schedules.one_cycle import one_cycle, one_cycle_torch
from lrjax.schedules.range_test import lr_range_test

__all__ = [
    "Schedule", "constant", "switch",
    "REPORT_SEQUENCES", "seq1", "seq2", "seq3", "seq4",
    "step_decay", "keras_step_decay", "exponential_decay", "inverse_time_decay",
    "keras_time_based_decay", "polynomial_decay",
    "cosine_annealing", "cosine_warm_restarts",
    "cyclical", "triangular", "triangular2", "exp_range", "welch", "hann",
    "one_cycle", "one_cycle_torch",
    "lr_range_test",
]
