"""Search between epochs: search spaces and the controllers that steer a sweep.

* `space`: `search_space` of `uniform`, `log_uniform`, `int_uniform`, `choice` (and fixed
  values), drawn with seeded scrambled Halton / Sobol points (`scipy.stats.qmc`) or
  plain random numbers.
* `controller`: the protocol (`Controller`: ``init(setup)``, ``decide(state, view)``),
  what it sees (`View`) and what it returns (`Decisions`: stop, exploit, restart).
* built-in controllers: `successive_halving`, `hyperband` (`halving`), `median_stopping`,
  `random_search` (`stopping`), population-based training `pbt` (`pbt`), and an Optuna
  study's trials K at a time (`optuna_search`, extra ``lrjax[optuna]``).

May import: numpy, scipy; nothing else of lrjax.train (a controller sees plain numpy
arrays and dicts).
"""

from lrjax.train.search.controller import Controller, Decisions, Setup, View
from lrjax.train.search.halving import Hyperband, SuccessiveHalving, hyperband, successive_halving
from lrjax.train.search.optuna_search import (
    OptunaSearch,
    from_distributions,
    optuna_search,
    optuna_study,
)
from lrjax.train.search.pbt import PBT, pbt
from lrjax.train.search.space import (
    Choice,
    Distribution,
    IntUniform,
    LogUniform,
    SearchSpace,
    Uniform,
    choice,
    int_uniform,
    log_uniform,
    search_space,
    uniform,
)
from lrjax.train.search.stopping import MedianStopping, RandomSearch, median_stopping, random_search

__all__ = [
    "Controller", "Decisions", "Setup", "View",
    "SearchSpace", "Distribution", "Uniform", "LogUniform", "IntUniform", "Choice",
    "search_space", "uniform", "log_uniform", "int_uniform", "choice",
    "SuccessiveHalving", "Hyperband", "MedianStopping", "RandomSearch", "PBT",
    "successive_halving", "hyperband", "median_stopping", "random_search", "pbt",
    "OptunaSearch", "optuna_search", "optuna_study", "from_distributions",
]
