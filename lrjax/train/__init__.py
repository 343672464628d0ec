"""The compiled training engine.

* `config`: `Variant`, `SweepConfig`, `report_variants` (the report's 14 settings).
* `optimizers`: a variant -> an optax transformation; grouping by state structure.
* `task`: `Task` (per-example loss and metrics), `CLASSIFICATION`, `REGRESSION`.
* `step`: the pure `train_step` and `evaluate` of one variant.
* `epoch`: `GroupTrainer`, one epoch as a `lax.scan`, vmapped over a group's variants,
  sharded over devices; `readouts`: rate / index / non-finite flag read by field.
* `api`: `sweep(model, dataset, optimizer_fn, hparams, ...)` (`lrjax.sweep`), the one
  engine: any Flax model, any optax optimizer, any grid (`grid`); `loop`: its host loop
  over epochs (checkpoints, resume, signals, locks, results).
* `presets`: `report_preset(config)`; `sweep`: `run_sweep(config)`, `lrjax.sweep` with it.
* `nnx_adapter`: `as_linen`, Flax NNX models (an instance or a factory) for the engine.
* `metrics`, `results`, `plotting`, `checkpoint`: what comes out of a sweep
  (`aggregate_seeds(result)`, the best variant, `plotting.plot_run`); `writers`: live
  metrics (CLU-shaped metric writers, TensorBoard).
* `range_finder`: the LR range test (`range_test`) and K constant rates side by side
  (`range_test_vectorized`), with fastai's suggested rates (`suggest`).
"""

from lrjax import _extras

_extras.require_train("lrjax.train")

from lrjax.train.frontends.config import SweepConfig, Variant, report_variants
from lrjax.train.reports.metrics import aggregate_seeds, convergence_epoch, summarize
from lrjax.train.engine.step import TrainState, evaluate, evaluate_metrics, task_loss, train_step
from lrjax.train.engine.task import CLASSIFICATION, REGRESSION, Task
from lrjax.train.api import SweepResult, run_sweep
from lrjax.train.api import grid, sweep
from lrjax.train.runner.loop import SweepInterrupted
# (module `range_finder`, so that `lrjax.train.range_test` stays the function)
from lrjax.train.range_finder import (RangeTestResult, Suggestions, range_test,
                                      range_test_vectorized)
from lrjax.train.engine.nnx_adapter import as_linen
