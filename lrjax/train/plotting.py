"""Plots of sweep results in the report's layout (accuracy / loss / rate per epoch).

A sweep has 14 or more series, too many for one colour each: a series' colour says one
factor (its sequence, e.g. seq1..seq4, or the benchmark optimizer) and its line style the
other (its strategy), so "By Cutoff seq3" is the seq3 colour in the by-cutoff style.  The
factors come from the variants (`lrjax.train.config.Variant`) where the caller has them
and from the names otherwise.  The legend sits outside the axes, the epoch axis has
integer ticks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

# Distinct dash patterns, one per strategy (cycled beyond five).
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


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
  palette = _pyplot().get_cmap("tab10" if len(colours) <= 10 else "tab20")
  return [{"color": palette(colours.index(f.colour) % palette.N),
           "linestyle": LINE_STYLES[styles.index(f.style) % len(LINE_STYLES)]}
          for f in factors]


def plot_curves(history: dict[str, np.ndarray], names: Sequence[str], out_path: str | Path,
                *, select: Sequence[str] | None = None, title: str = "",
                fields: Sequence[str] = ("valid_acc", "valid_loss", "train_loss", "lr"),
                variants=None) -> Path:
  """One panel per field, one line per variant (``select`` keeps a subset by name).

  ``variants`` (the sweep's `Variant`s, in the order of ``names``) give the colour and
  line-style factors; without them they are read from the names."""
  from matplotlib.ticker import MaxNLocator
  plt = _pyplot()
  styles = series_styles(names, variants)
  keep = [k for k, n in enumerate(names) if select is None or n in select]
  fields = [f for f in fields if np.isfinite(history[f][:, keep]).any()]
  fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.6), squeeze=False)
  epochs = np.arange(1, history[fields[0]].shape[0] + 1)
  for ax, field in zip(axes[0], fields):
    for k in keep:
      ax.plot(epochs, history[field][:, k], label=names[k], lw=1.3, **styles[k])
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
  fig.tight_layout()
  out_path = Path(out_path)
  out_path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out_path, dpi=110, bbox_inches="tight")
  plt.close(fig)
  return out_path


def plot_report_figures(history, names, out_dir: str | Path, prefix: str = "",
                        variants=None) -> list[Path]:
  """The report's figure set: one figure per strategy, plus the benchmarks' comparison.

  Variants are matched by the names of `lrjax.train.config.report_variants`.
  """
  out_dir = Path(out_dir)
  paths = []
  for label in ("By Epoch", "By Cutoff", "By Oscillate"):
    select = [n for n in names if n.startswith(label)]
    if select:
      paths.append(plot_curves(history, names, out_dir / f"{prefix}{label.replace(' ', '_').lower()}.png",
                               select=select, title=f"{prefix}{label}", variants=variants))
  paths.append(plot_curves(history, names, out_dir / f"{prefix}all_settings.png",
                           title=f"{prefix}all settings", variants=variants))
  return paths
