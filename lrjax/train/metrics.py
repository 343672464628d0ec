"""Summary metrics of a training curve, defined once here.

Convergence epoch (the report's "number of epochs at convergence", Tables 1-2): the
first epoch ``e`` (1-based) after which the validation accuracy stays within
``tolerance`` (absolute) of its final value, i.e. ``|acc_t - acc_final| <= tolerance``
for every ``t >= e``.  ``acc_final`` is the mean of the last ``final_window`` epochs
(1: the last epoch).  A curve that never settles converges at its last epoch; a curve
with NaNs at the end has no convergence epoch (returned as None).
"""

from __future__ import annotations

import numpy as np


def convergence_epoch(curve, tolerance: float = 0.005, final_window: int = 1) -> int | None:
  """The convergence epoch of ``curve`` (see the module docstring).

  Example:
    >>> convergence_epoch([0.5, 0.9, 0.97, 0.975, 0.978], tolerance=0.01)
    3
  """
  curve = np.asarray(curve, np.float64)
  if curve.ndim != 1 or curve.size == 0:
    raise ValueError(f"`curve` must be a non-empty 1-D sequence, got shape {curve.shape}.")
  if tolerance < 0:
    raise ValueError(f"`tolerance` must be >= 0, got {tolerance}.")
  if final_window < 1:
    raise ValueError(f"`final_window` must be >= 1, got {final_window}.")
  final = np.mean(curve[-final_window:])
  if not np.isfinite(final):
    return None
  outside = ~(np.abs(curve - final) <= tolerance)  # NaN counts as outside
  if not outside.any():
    return 1
  # A curve still outside the band at its end (possible with final_window > 1) never
  # settled: it converges at its last epoch.
  return min(int(np.nonzero(outside)[0][-1]) + 2, curve.size)


def summarize(history: dict[str, np.ndarray], names, *, tolerance: float = 0.005,
              final_window: int = 1) -> list[dict]:
  """One row per variant: final/best accuracies and losses, convergence epoch, final rate.

  A regression run (no finite validation accuracy: the loss is the mean squared error)
  also gets RMSE columns, the square root of the MSE, in the data's units.
  """
  rows = []
  for k, name in enumerate(names):
    valid_acc = history["valid_acc"][:, k]
    valid_loss = history["valid_loss"][:, k]
    test_loss = history["test_loss"][:, k] if "test_loss" in history else np.full_like(
        valid_loss, np.nan)
    classification = np.isfinite(valid_acc).any()
    curve = valid_acc if classification else -valid_loss
    best_valid_loss = float(np.nanmin(valid_loss)) if np.isfinite(valid_loss).any() else float("nan")
    row = {
        "name": name,
        "final_valid_acc": float(valid_acc[-1]),
        "best_valid_acc": float(np.nanmax(valid_acc)) if classification else float("nan"),
        "final_test_acc": float(history["test_acc"][-1, k]),
        "final_valid_loss": float(valid_loss[-1]),
        "best_valid_loss": best_valid_loss,
        "final_test_loss": float(test_loss[-1]),
        "final_train_loss": float(history["train_loss"][-1, k]),
        "convergence_epoch": convergence_epoch(curve, tolerance, final_window),
        "final_lr": float(history["lr"][-1, k]),
        "sequence_advances": int(history["index"][-1, k]),
        "nonfinite": bool(history["nonfinite"][-1, k]),
    }
    if not classification:
      row.update(final_valid_rmse=_sqrt(row["final_valid_loss"]),
                 best_valid_rmse=_sqrt(best_valid_loss),
                 final_test_rmse=_sqrt(row["final_test_loss"]))
    rows.append(row)
  return rows


def _sqrt(mse: float) -> float:
  """RMSE from an MSE (NaN stays NaN; a negative MSE cannot occur)."""
  return float(np.sqrt(mse)) if np.isfinite(mse) else float("nan")
