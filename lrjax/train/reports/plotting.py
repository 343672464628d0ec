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
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from lrjax import _atomic
from lrjax.train.reports import metrics
from lrjax.train.engine.task import Task, as_task

# Distinct dash patterns, one per strategy (cycled beyond five).
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


def pyplot():
  """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


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


def series_styles(names: Sequence[str], variants=None) -> list[dict]:
  """Matplotlib keyword arguments (``color``, ``linestyle``) for each series, colours
  and styles handed out in order of first appearance of their factor."""
  factors = ([variant_factors(v) for v in variants] if variants is not None
             else [name_factors(n) for n in names])
  if len(factors) != len(names):
    raise ValueError(f"`variants` has {len(factors)} entries for {len(names)} names.")
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
    raise TypeError(f"`initial` must be a mapping field -> per-variant values (the sweep "
                    f"result's `initial`), got {type(initial).__name__}.")
  values = {f: np.asarray(v, np.float64) for f, v in initial.items()}
  for f, v in values.items():
    if v.shape != (num,):
      raise ValueError(f"`initial[{f!r}]` must hold one value per variant ({num}), got "
                       f"shape {v.shape}.")
  values |= {f: v for f, v in task.derived(values).items() if f not in values}
  return {f: values[f] for f in fields if f in values}


def plot_curves(history: dict[str, np.ndarray], names: Sequence[str], out_path: str | Path,
                *, select: Sequence[str] | None = None, title: str = "",
                fields: Sequence[str] | None = None, variants=None,
                initial: Mapping[str, np.ndarray] | None = None,
                task: Task | str | None = None) -> Path:
  """One panel per field, one line per variant (``select`` keeps a subset by name).

  ``variants`` (the sweep's `Variant`s, in the order of ``names``) give the colour and
  line-style factors; without them they are read from the names.  ``initial`` (the
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
  styles = series_styles(names, variants)
  keep = [k for k, n in enumerate(names) if select is None or n in select]
  wanted = default_fields(task) if fields is None else tuple(fields)
  fields = [f for f in wanted if f in history and np.isfinite(history[f][:, keep]).any()]
  if not fields:
    raise ValueError(f"`fields`: nothing to plot, no finite values in {list(wanted)} "
                     f"(the history has {sorted(history)}).")
  zero = _epoch_zero(initial, history, fields, task, len(names))
  fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.6), squeeze=False)
  epochs = np.arange(1, history[fields[0]].shape[0] + 1)
  for ax, field in zip(axes[0], fields):
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
                        variants=None, initial=None, task=None) -> list[Path]:
  """The report's figure set: one figure per strategy, plus the benchmarks' comparison.

  Variants are matched by the names of `lrjax.train.frontends.config.report_variants`;
  ``initial`` and ``task`` as in `plot_curves`.
  """
  out_dir = Path(out_dir)
  paths = []
  for label in ("By Epoch", "By Cutoff", "By Oscillate"):
    select = [n for n in names if n.startswith(label)]
    if select:
      path = out_dir / f"{prefix}{label.replace(' ', '_').lower()}.png"
      paths.append(plot_curves(history, names, path, select=select, title=f"{prefix}{label}",
                               variants=variants, initial=initial, task=task))
  paths.append(plot_curves(history, names, out_dir / f"{prefix}all_settings.png",
                           title=f"{prefix}all settings", variants=variants,
                           initial=initial, task=task))
  return paths
