"""Presets: ready-made `SweepSpec` s (model, optimizer_fn, hparams) for `lrjax.train.api.run`.

`report_preset` turns a `SweepConfig` (the report's 14 settings, `report_variants`, or
any list of `Variant` s) into a `SweepSpec`: the model named by the
config, the variants' transformations (`lrjax.train.frontends.optimizers`) and one hyperparameter
dict per variant.  A variant's inner optimizer (with its options) and whether its
schedule runs per step are static (a `GroupSpec`, carrying the bank of sequences of its
group); its r0, which sequence of the bank and which strategy rule are numbers, so the
variants that differ only there share one compiled program, as they always have.
`run_sweep` trains this preset (`lrjax.train.api.run`).
"""

from __future__ import annotations

from lrjax import models
from lrjax.train.frontends import optimizers
from lrjax.train.frontends.config import SweepConfig
from lrjax.train.frontends.spec import SweepSpec


def report_optimizer(h: dict):
  """The transformation of one preset variant: ``h["spec"]`` (a `GroupSpec`) applied to
  the variant's numbers."""
  return h["spec"](optimizers.GroupHyper(learning_rate=h["learning_rate"],
                                         sequence_id=h["sequence_id"],
                                         rule_id=h["rule_id"], seed=0))


def report_preset(config: SweepConfig) -> SweepSpec:
  """The `SweepSpec` that trains ``config`` (the dataset aside): the model named by the
  config, `report_optimizer`, one hyperparameter dict per variant, the variants' names
  and tags (``sequence``, ``rule``, ``optimizer``, ``learning_rate``)."""
  hparams: list[dict | None] = [None] * len(config.variants)
  for spec, hyper, members in optimizers.group_variants(config.variants):
    for j, i in enumerate(members):
      hparams[i] = {"spec": spec, "learning_rate": float(hyper.learning_rate[j]),
                    "sequence_id": int(hyper.sequence_id[j]),
                    "rule_id": int(hyper.rule_id[j]), "seed": int(hyper.seed[j])}
  return SweepSpec(
      model=models.get_model(config.model, **dict(config.model_kwargs)),
      optimizer_fn=report_optimizer, hparams=hparams, epochs=config.epochs,
      batch_size=config.batch_size, task=config.task,
      eval_batch_size=config.eval_batch_size or None,
      variants_per_call=config.variants_per_call or None,
      concurrent_calls=config.concurrent_calls or None,
      observe_untrained_loss=config.observe_untrained_loss,
      convergence_tolerance=config.convergence_tolerance,
      checkpoint_every=config.checkpoint_every,
      names=[v.name for v in config.variants],
      tags=[{"sequence": v.sequence, "rule": v.rule, "optimizer": v.optimizer,
             "learning_rate": v.learning_rate} for v in config.variants])

