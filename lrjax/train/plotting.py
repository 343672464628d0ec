"""Plots of sweep results in the report's layout (accuracy / loss / rate per epoch)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_curves(history: dict[str, np.ndarray], names: Sequence[str], out_path: str | Path,
                *, select: Sequence[str] | None = None, title: str = "",
                fields: Sequence[str] = ("valid_acc", "valid_loss", "train_loss", "lr")) -> Path:
  """One panel per field, one line per variant (``select`` keeps a subset by name)."""
  plt = _pyplot()
  keep = [k for k, n in enumerate(names) if select is None or n in select]
  fields = [f for f in fields if np.isfinite(history[f][:, keep]).any()]
  fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.6), squeeze=False)
  epochs = np.arange(1, history[fields[0]].shape[0] + 1)
  for ax, field in zip(axes[0], fields):
    for k in keep:
      ax.plot(epochs, history[field][:, k], label=names[k], lw=1.3)
    ax.set_xlabel("epoch")
    ax.set_title(field.replace("_", " "))
    if field == "lr":
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  out_path = Path(out_path)
  out_path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out_path, dpi=110)
  plt.close(fig)
  return out_path


def plot_report_figures(history, names, out_dir: str | Path, prefix: str = "") -> list[Path]:
  """The report's figure set: one figure per strategy, plus the benchmarks' comparison.

  Variants are matched by the names of `lrjax.train.config.report_variants`.
  """
  out_dir = Path(out_dir)
  paths = []
  for label in ("By Epoch", "By Cutoff", "By Oscillate"):
    select = [n for n in names if n.startswith(label)]
    if select:
      paths.append(plot_curves(history, names, out_dir / f"{prefix}{label.replace(' ', '_').lower()}.png",
                               select=select, title=f"{prefix}{label}"))
  paths.append(plot_curves(history, names, out_dir / f"{prefix}all_settings.png",
                           title=f"{prefix}all settings"))
  return paths
