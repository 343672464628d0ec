"""Plots of sweep results in the report's layout (accuracy / loss / rate per epoch).

A sweep has 14 or more series, too many for one colour each: a series' colour says one
factor (its sequence, e.g. seq1..seq4, or the benchmark optimizer) and its line style the
other (its strategy), so "By Cutoff seq3" is the seq3 colour in the by-cutoff style.  The
factors come from the variants (`lrjax.train.frontends.config.Variant`) where the caller has them
and from the names otherwise.  The legend sits outside the axes, the epoch axis has
integer ticks.  The panels are the task's (accuracy or RMSE, `lrjax.train.engine.task`), and
the untrained model's values (a sweep result's ``initial``) are drawn at epoch 0.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lrjax import _atomic
from lrjax.errors import ArgumentError, ArgumentTypeError
from lrjax.train.engine.task import Task, as_task
from lrjax.train.reports import metrics

# Distinct dash patterns, one per strategy (cycled beyond five).
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


def pyplot():
  """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


class PlotsNotWritten(_atomic.OutputWriteError):
  """The results files are written but the plots could not be (a full or read-only
  folder): `lrjax plot` draws them again once there is room."""

  def __init__(self, error: OSError, out):
    self.out = out
    super().__init__(str(error))


def save_figure(fig, path: str | Path, *, dpi: int = 110, rect=None,
                **savefig_kwargs) -> Path:
  """Lays ``fig`` out (``tight_layout``, inside ``rect`` if given), writes it to ``path``
  (its folder made as needed) and closes it.  Returns the path.

  The image is rendered in memory and written atomically (`lrjax._atomic`), as the
  results files are: a full disk leaves the previous plot or none, never a cut one, and
  is one `lrjax._atomic.OutputWriteError` line naming the folder.
  """
  path = Path(path)
  try:
    fig.tight_layout(**({} if rect is None else {"rect": rect}))
    image = io.BytesIO()
    image.name = str(path)  # the file it becomes, for whoever inspects the savefig call
    savefig_kwargs.setdefault("format", path.suffix[1:].lower() or None)
    fig.savefig(image, dpi=dpi, **savefig_kwargs)
  finally:
    pyplot().close(fig)
  with _atomic.reported(path.parent, "the plots"):
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_bytes(path, image.getvalue())
  return path


def plot_seed_band(ax, x, values, *, label=None, band: bool = True, **style):
  """One setting's curve on ``ax``: the mean over its seeds (the columns of ``values``,
  ``[points, seeds]``; NaN seeds left out) and, with several seeds and ``band``, a
  shaded mean ± std.  ``style``: matplotlib line keywords.  Returns the line."""
  values = np.asarray(values, np.float64)
  if values.ndim == 1:
    values = values[:, None]
  finite = np.isfinite(values).any()
  with np.errstate(all="ignore"):
    mean = np.nanmean(values, axis=1) if finite else values[:, 0]
    std = np.nanstd(values, axis=1) if finite and values.shape[1] > 1 else None
  line, = ax.plot(x, mean, label=label, **style)
  if band and std is not None:
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
  return line


class Factors(NamedTuple):
  """What a series' colour and line style stand for."""

  colour: str  # e.g. the sequence: "seq3"; or the benchmark optimizer: "adam"
  style: str  # e.g. the strategy rule: "cutoff"


def variant_factors(variant) -> Factors:
  """A variant's colour factor (its sequence; the optimizer for a fixed-rate benchmark)
  and line-style factor (its rule)."""
  if variant.rule == "fixed" and variant.sequence == "constant":
    return Factors(variant.optimizer, "fixed")
  return Factors(variant.sequence, variant.rule)


_SEQUENCE_IN_NAME = re.compile(r"\b(seq\d+)\b")


def name_factors(name: str) -> Factors:
  """The fallback for plain names: a ``seqN`` word is the colour and the rest of the name
  the style ("By Epoch seq2/s1" -> seq2, "By Epoch"); any other name is its own colour,
  solid."""
  name = name.split("/")[0]  # a seed suffix ("/s1") is the same setting
  match = _SEQUENCE_IN_NAME.search(name)
  if match is None:
    return Factors(name, "")
  rest = " ".join((name[:match.start()] + name[match.end():]).split())
  return Factors(match.group(1), rest)


def hparam_factors(records: Sequence[Mapping]) -> list[Factors]:
  """Factors of `lrjax.sweep` variants from their hyperparameters (``records``: the
  result's ``variants``, each with ``hparams``): of the hyperparameters whose values
  differ between variants, the last one is the line style and the others together the
  colour, so a grid ``learning_rate x momentum`` reads as one colour per rate and one
  style per momentum.  Seeds of a setting share both."""
  hparams = [{k: _describe(v) for k, v in dict(r.get("hparams") or {}).items()}
             for r in records]
  keys = list(dict.fromkeys(k for h in hparams for k in h))
  varying = [k for k in keys if len({repr(h.get(k)) for h in hparams}) > 1]
  if not varying:
    return [Factors(str(r.get("name", k)), "") for k, r in enumerate(records)]
  colour_keys, style_key = varying[:-1], varying[-1]

  def words(h, ks):
    return ", ".join(f"{k}={h.get(k)}" for k in ks)

  if not colour_keys:  # one swept hyperparameter: a colour per value, solid
    return [Factors(words(h, [style_key]), "") for h in hparams]
  return [Factors(words(h, colour_keys), words(h, [style_key])) for h in hparams]


def _describe(value):
  """A hyperparameter as plain text (functions by name), as the legend shows it."""
  if isinstance(value, (bool, int, float, str)) or value is None:
    return value
  return getattr(value, "__name__", str(value))


def series_styles(names: Sequence[str], variants=None,
                  factors: Sequence[Factors] | None = None) -> list[dict]:
  """Matplotlib keyword arguments (``color``, ``linestyle``) for each series, colours
  and styles handed out in order of first appearance of their factor.  The factors:
  ``factors`` as given, else those of ``variants`` (`Variant` s), else of the names."""
  if factors is None:
    factors = ([variant_factors(v) for v in variants] if variants is not None
               else [name_factors(n) for n in names])
  factors = list(factors)
  if len(factors) != len(names):
    raise ArgumentError("variants", f"has {len(factors)} entries for {len(names)} names.")
  colours = list(dict.fromkeys(f.colour for f in factors))
  styles = list(dict.fromkeys(f.style for f in factors))
  palette = pyplot().get_cmap("tab10" if len(colours) <= 10 else "tab20")
  return [{"color": palette(colours.index(f.colour) % palette.N),
           "linestyle": LINE_STYLES[styles.index(f.style) % len(LINE_STYLES)]}
          for f in factors]


def default_fields(task: Task) -> tuple[str, ...]:
  """The panels of a task's plots: its validation metrics, loss and derived metrics
  (accuracy for classification, RMSE for regression), the training loss, the rate."""
  return (*(f"valid_{m}" for m in task.metrics), "valid_loss",
          *(f"valid_{d}" for d in task.derived_metrics), "train_loss", "lr")


def _epoch_zero(initial, history, fields, task: Task, num: int) -> dict[str, np.ndarray]:
  """The untrained model's value of each plotted field that has one (``initial`` and
  the task's metrics derived from its losses), one per variant."""
  if initial is None:
    return {}
  if not isinstance(initial, Mapping):
    raise ArgumentTypeError("initial", "must be a mapping field -> per-variant values (the sweep "
                            f"result's `initial`), got {type(initial).__name__}.")
  values = {f: np.asarray(v, np.float64) for f, v in initial.items()}
  for f, v in values.items():
    if v.shape != (num,):
      raise ArgumentError(f"initial[{f!r}]", f"must hold one value per variant ({num}), got "
                          f"shape {v.shape}.")
  values |= {f: v for f, v in task.derived(values).items() if f not in values}
  return {f: values[f] for f in fields if f in values}


def plot_curves(history: dict[str, np.ndarray], names: Sequence[str], out_path: str | Path,
                *, select: Sequence[str] | None = None, title: str = "",
                fields: Sequence[str] | None = None, variants=None,
                initial: Mapping[str, np.ndarray] | None = None,
                task: Task | str | None = None,
                factors: Sequence[Factors] | None = None) -> Path:
  """One panel per field, one line per variant (``select`` keeps a subset by name).

  ``factors`` (one `Factors` per name), else ``variants`` (the sweep's `Variant`s, in
  the order of ``names``) give the colour and line-style factors; without either they
  are read from the names.  ``initial`` (the
  sweep result's ``initial``: ``{"valid_loss": [K], "valid_acc": [K], ...}``, the
  untrained model's values) puts epoch 0 on the curves of the fields it has (x = 0 ..
  epochs); without it, or for fields it lacks (the training loss, the rate), the
  curves start at epoch 1.  ``fields`` default to the task's (`default_fields`;
  ``task`` default: `lrjax.train.reports.metrics.infer_task`); fields with no finite value
  among the selected variants are left out."""
  from matplotlib.ticker import MaxNLocator
  plt = pyplot()
  task = metrics.infer_task(history) if task is None else as_task(task)
  history = {**task.derived(history), **history}  # RMSE columns where the history lacks them
  styles = series_styles(names, variants, factors)
  keep = [k for k, n in enumerate(names) if select is None or n in select]
  wanted = default_fields(task) if fields is None else tuple(fields)
  fields = [f for f in wanted if f in history and np.isfinite(history[f][:, keep]).any()]
  if not fields:
    raise ArgumentError("fields", f": nothing to plot, no finite values in {list(wanted)} "
                        f"(the history has {sorted(history)}).")
  zero = _epoch_zero(initial, history, fields, task, len(names))
  fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.6), squeeze=False)
  epochs = np.arange(1, history[fields[0]].shape[0] + 1)
  for ax, field in zip(axes[0], fields, strict=True):
    for k in keep:
      x, y = epochs, history[field][:, k]
      if field in zero:
        x, y = np.concatenate([[0], epochs]), np.concatenate([[zero[field][k]], y])
      ax.plot(x, y, label=names[k], lw=1.3, **styles[k])
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(field.replace("_", " "))
    if field == "lr":
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
  # Outside the last panel, so no curve is hidden under it, in as many columns as needed.
  axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=7, ncols=1 + len(keep) // 16)
  if title:
    fig.suptitle(title)
  return save_figure(fig, out_path, bbox_inches="tight")


def plot_report_figures(history, names, out_dir: str | Path, prefix: str = "",
                        variants=None, initial=None, task=None, factors=None,
                        setting_names: Sequence[str] | None = None) -> list[Path]:
  """The report's figure set: one figure per strategy, plus the benchmarks' comparison.

  Variants are matched by the names of `lrjax.train.frontends.config.report_variants`
  (``setting_names``, one per name: what to match instead, e.g. the names before an
  overlay's run prefix); ``initial``, ``task`` and ``factors`` as in `plot_curves`.
  A sweep without the report's settings gets the all-settings figure alone.
  """
  out_dir = Path(out_dir)
  match = list(names) if setting_names is None else list(setting_names)
  paths = []
  for label in ("By Epoch", "By Cutoff", "By Oscillate"):
    select = [n for n, m in zip(names, match, strict=True) if m.startswith(label)]
    if select:
      path = out_dir / f"{prefix}{label.replace(' ', '_').lower()}.png"
      paths.append(plot_curves(history, names, path, select=select, title=f"{prefix}{label}",
                               variants=variants, initial=initial, task=task,
                               factors=factors))
  paths.append(plot_curves(history, names, out_dir / f"{prefix}all_settings.png",
                           title=f"{prefix}all settings", variants=variants,
                           initial=initial, task=task, factors=factors))
  return paths


# -- a run's plots, and several runs overlaid -----------------------------------------

class Run(NamedTuple):
  """What the plots of one sweep need, from a `SweepResult` or a loaded results dict.

  Attributes:
    history: field -> ``[epochs, variants]``.
    names: the variants' names.
    initial: the untrained model's values (``{}`` when not recorded).
    task: the `Task` (`lrjax.train.reports.results.result_task`).
    factors: each variant's colour and line-style factors: the report preset's
      `Variant` s, else `hparam_factors` of `lrjax.sweep`'s variants, else the names.
  """

  history: dict
  names: list
  initial: dict
  task: Task
  factors: list


def as_run(source) -> Run:
  """``source`` as a `Run`: a `SweepResult` (`lrjax.sweep`, `run_sweep`, a sweep file's
  run) or what `lrjax.train.reports.results.load` read from any of their folders."""
  from lrjax.train.reports import results
  loaded = isinstance(source, Mapping)
  part = (lambda key: source.get(key)) if loaded else (  # noqa: E731
      lambda key: getattr(source, key, None))
  history, names = part("history"), part("names")
  if history is None or names is None:
    raise TypeError(f"expected a sweep result (lrjax.sweep's SweepResult) or a loaded "
                    f"results dict (lrjax.train.reports.results.load), got "
                    f"{type(source).__name__}.")
  names = list(names)
  config, records = part("config"), list(part("variants") or [])
  config_variants = getattr(config, "variants", None)
  if config_variants and all(hasattr(v, "sequence") for v in config_variants):
    factors = [variant_factors(v) for v in config_variants]
  elif records and any(r.get("hparams") for r in records):
    factors = hparam_factors(records)
  else:
    factors = [name_factors(n) for n in names]
  return Run(dict(history), names, dict(part("initial") or {}), results.result_task(source),
             factors)


def plot_run(source, out_dir: str | Path) -> list[Path]:
  """The plots of one sweep, written into ``out_dir``: the all-settings figure (one
  panel per field of the task: validation metrics and loss, training loss, rate) and,
  for the report's settings, one figure per strategy.  The same files whichever path
  ran the sweep (``lrjax sweep``, a sweep file, `lrjax.sweep` with ``out_dir``) and
  whether ``source`` is the `SweepResult` or its folder loaded
  (`lrjax.train.reports.results.load`).  Returns the paths written."""
  run = as_run(source)
  return plot_report_figures(run.history, run.names, out_dir, initial=run.initial or None,
                             task=run.task, factors=run.factors)


def run_labels(paths: Sequence[str | Path]) -> list[str]:
  """Short distinct labels of results folders: their names, with as many parent folders
  as it takes to tell them apart (``a/sweep``, ``b/sweep``)."""
  parts = [Path(p).resolve().parts for p in paths]
  if len({tuple(p) for p in parts}) != len(parts):
    raise ValueError(f"the same results folder is given twice: {[str(p) for p in paths]}.")
  depth = 1
  while True:
    labels = ["/".join(p[-depth:]) for p in parts]
    if len(set(labels)) == len(labels):
      return labels
    depth += 1


def _padded(values: np.ndarray, epochs: int) -> np.ndarray:
  out = np.full((epochs,) + values.shape[1:], np.nan)
  out[:values.shape[0]] = values
  return out


def plot_runs(sources: Sequence, labels: Sequence[str], out_dir: str | Path) -> list[Path]:
  """Several sweeps overlaid in one figure set (`plot_report_figures`) in ``out_dir``:
  each series named ``"<label>: <name>"``, its colour its setting's (the same setting
  has the same colour in every run) and its line style its run's.  Runs of different
  lengths are drawn each over its own epochs.  Returns the paths written.

  Raises:
    ValueError: the runs are of different tasks (a classification and a regression),
      or ``labels`` do not match ``sources``.
  """
  runs = [as_run(s) for s in sources]
  labels = list(labels)
  if len(labels) != len(runs) or len(set(labels)) != len(labels):
    raise ArgumentError("labels", f"must be {len(runs)} distinct labels, one per run, got "
                        f"{labels!r}.")
  tasks = {(r.task.name, r.task.monitor) for r in runs}
  if len(tasks) > 1:
    raise ValueError("cannot overlay runs of different tasks: "
                     + ", ".join(f"{label}: {r.task.name}"
                                 for label, r in zip(labels, runs, strict=True)))
  epochs = max(next(iter(r.history.values())).shape[0] for r in runs)
  fields = list(dict.fromkeys(f for r in runs for f in r.history))
  history = {f: np.concatenate([_padded(r.history[f], epochs) if f in r.history else
                                np.full((epochs, len(r.names)), np.nan) for r in runs], axis=1)
             for f in fields}
  initial_fields = list(dict.fromkeys(f for r in runs for f in r.initial))
  initial = {f: np.concatenate([np.asarray(r.initial[f], np.float64) if f in r.initial
                                else np.full(len(r.names), np.nan) for r in runs])
             for f in initial_fields}
  names = [f"{label}: {n}" for label, r in zip(labels, runs, strict=True) for n in r.names]
  factors = [Factors(f.colour, label)
             for label, r in zip(labels, runs, strict=True) for f in r.factors]
  setting_names = [n for r in runs for n in r.names]
  return plot_report_figures(history, names, out_dir, initial=initial or None,
                             task=runs[0].task, factors=factors, setting_names=setting_names)


# -- the LR range test -----------------------------------------------------------------

# How each rule of `lrjax.train.range_finder.Suggestions` reads in the legend.
SUGGESTION_WORDS = {"valley": "valley", "minimum": "minimum (lowest loss / 10)",
                    "steep": "steep (fastest fall)", "slide": "slide",
                    "at_minimum": "lowest loss"}
SUGGESTION_MARKERS = {"valley": "o", "minimum": "v", "steep": "^", "slide": "s",
                      "at_minimum": "D"}


def plot_range_test(result, path: str | Path | None = None, *, ax=None, title: str = "",
                    rules: Sequence[str] = ("valley", "minimum", "steep", "slide")):
  """A range test's loss against the rate (`lrjax.train.RangeTestResult`), as fastai's
  ``lr_find`` plots it: log rate axis, the smoothed loss (and, faint, each step's),
  each rule of ``rules`` marked on the curve at its rate, the chosen suggestion
  (``result.suggested_by``) first and named as such.  Points after the divergence
  stop are not drawn.  Returns the path written, or ``ax`` when ``path`` is None."""
  plt = pyplot()
  fig = None
  if ax is None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
  kept = np.asarray(result.kept, bool)
  lrs, smoothed = np.asarray(result.lrs)[kept], np.asarray(result.smoothed)[kept]
  raw = np.asarray(result.losses)[kept]
  constant_rates = result.step_losses is not None  # range_test_vectorized: K points
  if not constant_rates and not np.allclose(raw, smoothed, equal_nan=True):
    ax.plot(lrs, raw, color="tab:blue", alpha=0.25, lw=0.8, label="loss per step")
  beta = getattr(result, "smoothing", None)
  label = ("mean training loss per rate" if constant_rates else
           f"smoothed loss (EMA {beta:g})" if beta else "loss")
  ax.plot(lrs, smoothed, "o-" if constant_rates else "-", color="tab:blue", lw=1.8,
          ms=3, label=label)
  chosen = getattr(result, "suggested_by", "valley")
  order = [chosen] + [r for r in rules if r != chosen]
  colours = plt.rcParams["axes.prop_cycle"].by_key()["color"][1:]
  for rule, colour in zip(order, colours, strict=False):  # more colours than rules
    rate = float(getattr(result.suggestions, rule))
    if not np.isfinite(rate) or lrs.size == 0:
      continue
    # on the curve: the smoothed loss interpolated at the rate (in log rate)
    at = float(np.interp(np.log(rate), np.log(lrs), smoothed))
    words = SUGGESTION_WORDS.get(rule, rule)
    ax.plot([rate], [at], SUGGESTION_MARKERS.get(rule, "o"), color=colour, ms=8,
            label=f"{words}: {rate:.3g}" + (" (the suggestion)" if rule == chosen else ""))
  ax.set_xscale("log")
  ax.set_xlabel("learning rate (log)")
  ax.set_ylabel("training loss")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="best")
  if title:
    ax.set_title(title)
  if path is None:
    return ax
  return save_figure(ax.figure if fig is None else fig, path)
