"""Records what every saved matplotlib figure plots, so tests check data, not PNG sizes.

    with capture_figures() as figures:
      ...code that calls fig.savefig(path)...
    figures["fig2_by_epoch.png"]  # [Line(axes_title, label, x, y, color, linestyle), ...]
    figures.saved["fig2_by_epoch.png"]  # the Figure itself (legend, axes, ticks)
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Line(NamedTuple):
  axes: str  # the title of the axes the line is in
  label: str
  x: np.ndarray
  y: np.ndarray
  color: tuple = ()  # RGBA
  linestyle: str = "-"  # "-", "--", ":", "-." (a custom dash pattern reads "--")


class Figures(dict):
  """Saved file name -> its lines; ``saved`` keeps the figures themselves."""

  def __init__(self):
    super().__init__()
    self.saved = {}


@contextlib.contextmanager
def capture_figures():
  import matplotlib
  matplotlib.use("Agg")
  import pytest
  from matplotlib.figure import Figure

  figures = Figures()
  original = Figure.savefig

  def savefig(fig, fname, *args, **kwargs):
    # lrjax renders into a buffer named after the file it becomes (written atomically).
    name = Path(getattr(fname, "name", fname)).name
    figures[name] = [
        Line(ax.get_title(), str(line.get_label()), np.asarray(line.get_xdata(), float),
             np.asarray(line.get_ydata(), float),
             tuple(matplotlib.colors.to_rgba(line.get_color())), line.get_linestyle())
        for ax in fig.axes for line in ax.get_lines()]
    figures.saved[name] = fig
    return original(fig, fname, *args, **kwargs)

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(Figure, "savefig", savefig)
    yield figures


def lines(figure: list[Line], axes: str | None = None) -> dict[str, Line]:
  """The labelled lines of a figure (of one axes when ``axes`` is a title prefix)."""
  return {l.label: l for l in figure if not l.label.startswith("_")
          and (axes is None or l.axes.startswith(axes))}
