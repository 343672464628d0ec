"""`run_sweep`: train every variant of a `SweepConfig` on a dataset.

The command line's entry point, kept for its callers: `lrjax.sweep` (the one engine,
`lrjax.train.api`) called with the config's preset (`lrjax.train.presets.report_preset`),
so it has the engine's guarantees: checkpoints that record the run (the config) and its
data and resume it, refusal of another sweep or other data saying what differs,
extension of a finished run, SIGINT / SIGTERM stopping after a checkpointed epoch
(`SweepInterrupted`), locked folders, results in ``out_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

from lrjax.train import api, presets
from lrjax.train.api import SweepResult  # noqa: F401 (one result type for both)
from lrjax.train.config import SweepConfig
from lrjax.train.epoch import STEP_FIELDS  # noqa: F401
from lrjax.train.loop import HISTORY_FIELDS, SweepInterrupted  # noqa: F401


def run_sweep(config: SweepConfig, dataset, *, checkpoint_dir: str | Path | None = None,
              out_dir: str | Path | None = None, progress: bool = True,
              on_epoch_end: Callable[[int, dict], None] | None = None,
              data_provenance: Mapping[str, object] | None = None) -> SweepResult:
  """Trains all variants of ``config`` on ``dataset`` (a `lrjax.data.Dataset`).

  Args:
    config: what to train; its ``checkpoint_every`` is the checkpoint interval.
    dataset: arrays with ``train_x/y``, ``valid_x/y``, ``test_x/y``.
    checkpoint_dir, out_dir, progress, on_epoch_end, data_provenance: as `lrjax.sweep`
      (the checkpoint's identity is the config, ``epochs``, ``checkpoint_every``,
      ``convergence_tolerance`` and ``concurrent_calls`` aside).

  Returns:
    A `SweepResult` (with ``config``).

  Raises:
    as `lrjax.sweep`.
  """
  return api.sweep(dataset=dataset, progress=progress, checkpoint_dir=checkpoint_dir,
                   out_dir=out_dir, on_epoch_end=on_epoch_end,
                   data_provenance=data_provenance, **presets.report_preset(config))
