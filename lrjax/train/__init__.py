"""The compiled training engine and the sweep built on it.

* `sweep` (`lrjax.sweep`): any Flax model, any optax optimizer, a grid (`grid`) or a
  search (`search_space` + a controller: `successive_halving`, `hyperband`,
  `median_stopping`, `pbt`, `random_search`, or your own), one compiled program per
  group of variants; `run_sweep(config)`: the report's settings (`SweepConfig`,
  `Variant`, `report_variants`).  `SweepResult` is what comes back.
* `engine/`: the compiled part (`train_step`, `evaluate`, the epoch as a `lax.scan`,
  the plan, the task: `Task`, `CLASSIFICATION`, `REGRESSION`); `runner/`: the host loop,
  checkpoints, the controller's turn between epochs; `search/`: spaces and controllers;
  `reports/`: summaries (`summarize`, `aggregate_seeds`, `convergence_epoch`), results
  files, plots; `frontends/`: the report preset, the sweep file, argument checks.
  `reports.writers`: live metrics (CLU-shaped metric writers, TensorBoard);
  `aggregate_seeds(result)`, the best variant, `reports.plotting.plot_run`.
* `range_finder`: the LR range test (`range_test`) and K constant rates side by side
  (`range_test_vectorized`), with fastai's suggested rates (`suggest`).
"""

from lrjax import _extras

_extras.require_train("lrjax.train")

from lrjax.train import search
from lrjax.train.api import SweepResult, grid, run_sweep, sweep
from lrjax.train.engine.nnx_adapter import as_linen
from lrjax.train.engine.step import TrainState, evaluate, evaluate_metrics, task_loss, train_step
from lrjax.train.engine.task import CLASSIFICATION, REGRESSION, Task
from lrjax.train.frontends.config import SweepConfig, Variant, report_variants

# (module `range_finder`, so that `lrjax.train.range_test` stays the function)
from lrjax.train.range_finder import RangeTestResult, Suggestions, range_test, range_test_vectorized
from lrjax.train.reports.metrics import aggregate_seeds, convergence_epoch, summarize
from lrjax.train.runner.loop import DivergenceWarning, SweepInterrupted
from lrjax.train.runner.model_store import ModelStoreError, load_variant
from lrjax.train.search import (
    choice,
    hyperband,
    int_uniform,
    log_uniform,
    median_stopping,
    pbt,
    random_search,
    search_space,
    successive_halving,
    uniform,
)

__all__ = [
    "sweep", "grid", "SweepResult", "run_sweep", "SweepConfig", "Variant", "report_variants",
    "search", "search_space", "choice", "uniform", "log_uniform", "int_uniform",
    "successive_halving", "hyperband", "median_stopping", "pbt", "random_search",
    "load_variant", "ModelStoreError", "DivergenceWarning", "SweepInterrupted",
    "aggregate_seeds", "convergence_epoch", "summarize",
    "TrainState", "train_step", "evaluate", "evaluate_metrics", "task_loss",
    "Task", "CLASSIFICATION", "REGRESSION", "as_linen",
    "range_test", "range_test_vectorized", "RangeTestResult", "Suggestions",
]
