"""Summary metrics of a training curve and their aggregation over seeds, defined once here.

Convergence epoch (the report's "number of epochs at convergence", Tables 1-2): the
first epoch ``e`` (1-based) after which the validation accuracy stays within
``tolerance`` (absolute) of its final value, i.e. ``|acc_t - acc_final| <= tolerance``
for every ``t >= e``.  ``acc_final`` is the mean of the last ``final_window`` epochs
(1: the last epoch).  A curve that never settles converges at its last epoch; a curve
with NaNs at the end has no convergence epoch (returned as None).  In `summarize`, an
epoch whose validation loss is NaN/inf counts as NaN whatever the accuracy (a diverged
model's accuracy is finite and flat): a variant diverged at its end has none.

`summarize` gives one row per variant, with the columns of its task
(`lrjax.train.engine.task`); `aggregate_seeds` one row per setting (a variant's
hyperparameters without its seed, or its ``setting`` tag): mean, std, min and max over
the seeds, so that no script has to parse labels to group seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lrjax.errors import ArgumentError
from lrjax.train.engine.task import CLASSIFICATION, REGRESSION, Task, as_task


def convergence_epoch(curve, tolerance: float = 0.005, final_window: int = 1) -> int | None:
  """The convergence epoch of ``curve`` (see the module docstring).

  Example:
    >>> convergence_epoch([0.5, 0.9, 0.97, 0.975, 0.978], tolerance=0.01)
    3
  """
  curve = np.asarray(curve, np.float64)
  if curve.ndim != 1 or curve.size == 0:
    raise ArgumentError("curve", f"must be a non-empty 1-D sequence, got shape {curve.shape}.")
  if tolerance < 0:
    raise ArgumentError("tolerance", f"must be >= 0, got {tolerance}.")
  if final_window < 1:
    raise ArgumentError("final_window", f"must be >= 1, got {final_window}.")
  final = np.mean(curve[-final_window:])
  if not np.isfinite(final):
    return None
  outside = ~(np.abs(curve - final) <= tolerance)  # NaN counts as outside
  if not outside.any():
    return 1
  # A curve still outside the band at its end (possible with final_window > 1) never
  # settled: it converges at its last epoch.
  return min(int(np.nonzero(outside)[0][-1]) + 2, curve.size)


def infer_task(history: Mapping[str, np.ndarray]) -> Task:
  """The built-in task a history comes from when the caller does not say: a finite
  validation accuracy anywhere means `CLASSIFICATION`, none means `REGRESSION`."""
  valid_acc = history.get("valid_acc")
  if valid_acc is not None and np.isfinite(valid_acc).any():
    return CLASSIFICATION
  return REGRESSION


def _best(curve: np.ndarray, higher_is_better: bool) -> float:
  if not np.isfinite(curve).any():
    return float("nan")
  return float(np.nanmax(curve) if higher_is_better else np.nanmin(curve))


def summarize(history: dict[str, np.ndarray], names, *, task: Task | str | None = None,
              tolerance: float = 0.005, final_window: int = 1) -> list[dict]:
  """One row per variant: final/best metrics and losses, convergence epoch, final rate.

  ``task`` (a `lrjax.train.Task` or a built-in name; default `infer_task`) says which
  columns there are: ``final_valid_<m>`` / ``final_test_<m>`` for each of its metrics
  ``m`` present in the history (``acc`` for classification), ``best_valid_<m>`` for
  the monitored one, the losses, and ``final_valid_<d>`` / ``best_valid_<d>`` /
  ``final_test_<d>`` for each derived metric ``d`` (RMSE for regression, the square
  root of the MSE, in the data's units).  The convergence epoch is that of the
  monitored validation curve (accuracy; the negated loss where the loss is monitored).
  """
  task = infer_task(history) if task is None else as_task(task)
  metric_names = [m for m in task.metrics if f"valid_{m}" in history]
  alive = history.get("alive")
  rows = []
  for k, name in enumerate(names):
    # A variant a controller stopped is summarised at the last epoch it trained.
    last = (int(np.flatnonzero(alive[:, k] > 0)[-1]) + 1
            if alive is not None and (alive[:, k] > 0).any() else None)
    h = {f: v[:last, k] for f, v in history.items()}
    valid_loss = h["valid_loss"]
    test_loss = h["test_loss"] if "test_loss" in h else np.full_like(valid_loss, np.nan)
    row = {"name": name}
    for m in metric_names:
      row[f"final_valid_{m}"] = float(h[f"valid_{m}"][-1])
      if m == task.monitor:
        row[f"best_valid_{m}"] = _best(h[f"valid_{m}"], task.higher_is_better)
      if f"test_{m}" in h:
        row[f"final_test_{m}"] = float(h[f"test_{m}"][-1])
    best_valid_loss = _best(valid_loss, False)
    row.update(final_valid_loss=float(valid_loss[-1]), best_valid_loss=best_valid_loss,
               final_test_loss=float(test_loss[-1]),
               final_train_loss=float(h["train_loss"][-1]))
    monitored = h.get(task.monitor_field, h["valid_loss"])
    curve = monitored if task.higher_is_better else -monitored
    # A diverged variant's accuracy is finite and flat (every prediction one class), which
    # would "converge" at epoch 1: an epoch whose validation loss is NaN/inf counts as
    # outside the band, so a variant non-finite at its end has no convergence epoch.
    curve = np.where(np.isfinite(valid_loss), curve, np.nan)
    row.update(convergence_epoch=convergence_epoch(curve, tolerance, final_window),
               final_lr=float(h["lr"][-1]),
               sequence_advances=int(np.nan_to_num(h["index"][-1], nan=-1)),
               nonfinite=bool(np.nan_to_num(h["nonfinite"][-1], nan=0)))
    if alive is not None:
      row["epochs_trained"] = int(last or 0)
    for d, fn in task.derived_metrics.items():
      row[f"final_valid_{d}"] = _host(fn, row["final_valid_loss"])
      row[f"best_valid_{d}"] = _host(fn, best_valid_loss)
      row[f"final_test_{d}"] = _host(fn, row["final_test_loss"])
    rows.append(row)
  return rows


def _host(fn, loss: float) -> float:
  """A derived metric of a mean loss as a Python float (NaN stays NaN)."""
  return float(fn(np.float64(loss))) if np.isfinite(loss) else float("nan")


# -- seeds -------------------------------------------------------------------------------

# Row fields that identify a variant rather than measure it.
_IDENTITY_FIELDS = ("name", "seed", "group", "index", "hparams", "setting", "tags")


def _hashable(value):
  """A dict key for a setting identity (unhashable parts compared by their repr)."""
  if isinstance(value, Mapping):
    return tuple((k, _hashable(v)) for k, v in sorted(value.items(), key=lambda kv: kv[0]))
  if isinstance(value, (list, tuple)):
    return tuple(_hashable(v) for v in value)
  try:
    hash(value)
    return value
  except TypeError:
    return repr(value)


def setting_label(identity) -> str:
  """A setting's label: a string tag as it is; hyperparameters as ``name=value, ...``
  (functions by their ``__name__``)."""
  if isinstance(identity, str):
    return identity
  if isinstance(identity, Mapping):
    return ", ".join(f"{k}={getattr(v, '__name__', v)}" for k, v in identity.items())
  return str(identity)


def _identity_of(row: Mapping, k: int):
  if "setting" in row:
    return row["setting"]
  tags = row.get("tags")
  if isinstance(tags, Mapping) and "setting" in tags:
    return tags["setting"]
  if "hparams" in row:
    return row["hparams"]
  raise ValueError(f"summary row {k} ({row.get('name', '?')!r}) has no 'setting' tag or "
                   f"'hparams': pass the sweep's result itself (aggregate_seeds(result)), "
                   f"or `settings`, one identity per row (a tag or the hyperparameters "
                   f"without the seed).")


# The seed suffixes lrjax itself puts in variant names: `lrjax.sweep`'s default
# ``name=value,...,seed=S`` and the report preset's ``"By Epoch seq1/sS"``.
_SEED_SUFFIXES = (",seed={}", "/s{}")


def _setting_name(name: str, seed) -> str | None:
  """A variant's name without the seed suffix lrjax gave it (None: it has none)."""
  for suffix in _SEED_SUFFIXES:
    end = suffix.format(seed)
    if seed is not None and name.endswith(end) and len(name) > len(end):
      return name[:-len(end)]
  return None


def _part(source, name: str):
  """``source.name`` or ``source[name]`` (a `SweepResult` or a loaded results dict)."""
  if isinstance(source, Mapping):
    return source.get(name)
  return getattr(source, name, None)


def is_result(source) -> bool:
  """Whether ``source`` is a sweep's result (a `SweepResult`, or `results.load`'s dict)
  rather than a list of summary rows."""
  return _part(source, "summary") is not None and not isinstance(source, (list, tuple))


def seed_rows(result) -> tuple[list[dict], list, list[str]]:
  """A sweep result's summary rows, each with its ``hparams`` and ``seed``, the identity
  of each row's setting and the setting's label.

  The identity is the engine's own (the variant's ``tags["setting"]``: its
  hyperparameters without the seed); for a result with only a `SweepConfig`, each
  variant's configuration without its name and seed.  The label is the variant's name
  without the seed suffix lrjax gave it (``"By Epoch seq1/s2"`` -> ``"By Epoch seq1"``),
  else its hyperparameters (``learning_rate=0.1, momentum=0.9``).
  """
  summary = [dict(row) for row in _part(result, "summary")]
  variants = list(_part(result, "variants") or [])
  config = _part(result, "config")
  if not variants and getattr(config, "variants", None):
    variants = [{"name": v.name, "seed": v.seed,
                 "hparams": {k: x for k, x in v.to_dict().items() if k not in ("name",
                                                                               "seed")}}
                for v in config.variants]
  if len(variants) != len(summary):
    raise ValueError(f"the result has {len(summary)} summary rows but {len(variants)} "
                     f"variants: it says nothing of their settings; pass `settings`.")
  identities, labels = [], []
  for row, variant in zip(summary, variants, strict=True):
    hparams = dict(variant.get("hparams") or {})
    seed = variant.get("seed", row.get("seed"))
    row.setdefault("seed", seed)
    row["hparams"] = hparams
    tags = variant.get("tags") or {}
    identity = tags.get("setting") if isinstance(tags, Mapping) else None
    identities.append(_hashable(hparams) if identity is None else ("setting", identity))
    name = variant.get("name", row.get("name", ""))
    labels.append(_setting_name(name, seed) or (setting_label(hparams) if hparams
                                                else name))
  return summary, identities, labels


def _is_measure(value) -> bool:
  return value is None or (isinstance(value, (int, float, np.integer, np.floating))
                           and not isinstance(value, (bool, np.bool_)))


def _stats(values, ddof: int) -> dict[str, float]:
  """Mean, std (``ddof``; 0 for one value), min, max of the finite ``values``."""
  x = np.asarray([np.nan if v is None else v for v in values], np.float64)
  x = x[np.isfinite(x)]
  if x.size == 0:
    return dict.fromkeys(("mean", "std", "min", "max"), float("nan"))
  std = float(np.std(x, ddof=ddof)) if x.size > ddof else 0.0
  return {"mean": float(x.mean()), "std": std, "min": float(x.min()), "max": float(x.max())}


def aggregate_seeds(summary: Sequence[Mapping], settings: Sequence | None = None, *,
                    ddof: int = 1) -> list[dict]:
  """One row per setting: the mean, std, min and max over its seeds of every measure.

  Args:
    summary: a sweep's result as it comes (`lrjax.sweep`'s or `run_sweep`'s
      `SweepResult`, or `lrjax.train.reports.results.load`'s dict: its variants say
      each row's setting, `seed_rows`), or per-variant rows (`summarize`,
      ``result.summary``).
    settings: per row, the identity of its setting: a tag (``"By Epoch seq1"``) or its
      hyperparameters without the seed (a dict).  Default: for a result, its variants'
      settings; for rows, each row's ``setting`` (or ``tags["setting"]``), else its
      ``hparams``.
    ddof: delta degrees of freedom of the std (1: the sample std, as the report's
      tables; a single seed has std 0).

  Returns:
    rows in order of first appearance, each with ``setting`` (its label, see
    `setting_label`), ``seeds`` (how many), ``seed_values``, ``names``, and for every
    numeric field ``f`` of the rows (``final_valid_acc``, ``convergence_epoch``,
    ``final_valid_rmse`` ...): ``f_mean``, ``f_std``, ``f_min``, ``f_max`` over the
    seeds with a finite value (a diverged seed's NaN, a missing convergence epoch are
    left out), ``per_seed`` (``{f: [value per seed]}``) and ``nonfinite_seeds`` (seeds
    whose run met a non-finite value).

  Example:
    >>> rows = aggregate_seeds([{"name": "a/s0", "seed": 0, "acc": 0.5},
    ...                         {"name": "a/s1", "seed": 1, "acc": 0.7}], ["a", "a"])
    >>> rows[0]["acc_mean"], round(rows[0]["acc_std"], 4), rows[0]["seeds"]
    (0.6, 0.1414, 2)
  """
  labels = None
  if is_result(summary):
    summary, identities, labels = seed_rows(summary)
    if settings is None:
      settings = identities
    else:
      labels = None
  summary = list(summary)
  if settings is not None:
    settings = list(settings)
    if len(settings) != len(summary):
      raise ArgumentError("settings", f"has {len(settings)} entries for {len(summary)} "
                          f"summary rows; give one setting identity per row.")
  if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof < 0:
    raise ArgumentError("ddof", f"must be a non-negative integer, got {ddof!r}.")
  groups: dict = {}
  for k, row in enumerate(summary):
    identity = settings[k] if settings is not None else _identity_of(row, k)
    key = _hashable(identity)
    group = groups.setdefault(key, {"identity": identity, "rows": [],
                                    "label": labels[k] if labels is not None
                                    else setting_label(identity)})
    seed = row.get("seed")
    if seed is not None and any(r.get("seed") == seed for r in group["rows"]):
      raise ValueError(f"summary rows {row.get('name', k)!r} and another of setting "
                       f"{setting_label(identity)!r} have the same seed {seed}: the "
                       f"setting identities (`settings`) do not tell them apart.")
    group["rows"].append(row)
  out = []
  for group in groups.values():
    rows = group["rows"]
    fields = [f for f in rows[0] if f not in _IDENTITY_FIELDS and f != "nonfinite"
              and all(f in r and _is_measure(r[f]) for r in rows)]
    agg = {"setting": group["label"], "seeds": len(rows),
           "seed_values": [r.get("seed") for r in rows],
           "names": [r.get("name") for r in rows]}
    if isinstance(group["identity"], Mapping):
      agg["hparams"] = dict(group["identity"])
    elif isinstance(rows[0].get("hparams"), Mapping):
      agg["hparams"] = dict(rows[0]["hparams"])
    for f in fields:
      for stat, value in _stats([r[f] for r in rows], ddof).items():
        agg[f"{f}_{stat}"] = value
    agg["nonfinite_seeds"] = sum(bool(r.get("nonfinite", False)) for r in rows)
    agg["per_seed"] = {f: [r[f] for r in rows] for f in fields}
    out.append(agg)
  return out


# -- the best variant and setting -----------------------------------------------------

def monitored_field(task: Task | str, *, over_seeds: bool = False) -> str:
  """The summary field that says which variant is best: the final validation value of
  the task's monitored quantity (``final_valid_acc`` for classification,
  ``final_valid_loss`` for regression); ``over_seeds``: its mean in `aggregate_seeds`
  rows (``final_valid_acc_mean``)."""
  field = f"final_valid_{as_task(task).monitor}"
  return f"{field}_mean" if over_seeds else field


def best_index(rows: Sequence[Mapping], task: Task | str, *,
               over_seeds: bool = False) -> int | None:
  """The position of the best of ``rows`` (`summarize` rows, or `aggregate_seeds` rows
  with ``over_seeds``) by the task's monitored final validation value
  (`monitored_field`; larger is better where ``task.higher_is_better``), the first of
  equals; None when no row has a finite value (every variant diverged)."""
  task = as_task(task)
  field = monitored_field(task, over_seeds=over_seeds)
  values = np.asarray([np.nan if row.get(field) is None else row[field] for row in rows],
                      np.float64)
  if not np.isfinite(values).any():
    return None
  values = np.where(np.isfinite(values), values, -np.inf if task.higher_is_better else np.inf)
  return int(np.argmax(values) if task.higher_is_better else np.argmin(values))
