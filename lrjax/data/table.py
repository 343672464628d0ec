"""The Boston housing table: a CSV of 13 features and the target ``medv`` (506 rows).

Columns are found by name (case-insensitive, quotes stripped, extra columns such as an
index are ignored), so both the common R/Kaggle exports read the same.  Cells that are
not finite numbers raise `CorruptDatasetError` naming the file and line.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from lrjax.data.errors import CorruptDatasetError

FEATURES = ("crim", "zn", "indus", "chas", "nox", "rm", "age", "dis", "rad", "tax",
            "ptratio", "b", "lstat")
TARGET = "medv"
FILE_NAMES = ("boston_housing.csv", "BostonHousing.csv", "boston.csv", "housing.csv")


def read_boston(path: Path) -> tuple[np.ndarray, np.ndarray]:
  """Features ``(N, 13)`` in `FEATURES` order and target ``(N,)``, float32.

  float32 is what a ``tf.train.Example`` (the prepared tfds files) stores.
  """
  path = Path(path)
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      rows = list(csv.reader(f))
  except (UnicodeDecodeError, csv.Error) as err:
    raise CorruptDatasetError(path, f"not a readable CSV file ({err}).") from err
  if not rows:
    raise CorruptDatasetError(path, "empty file.")
  header = [name.strip().strip('"').lower() for name in rows[0]]
  missing = [name for name in FEATURES + (TARGET,) if name not in header]
  if missing:
    raise CorruptDatasetError(
        path, f"missing column(s) {missing}; the header is {rows[0]}, expected the 13 "
        f"features {list(FEATURES)} and the target {TARGET!r}.")
  columns = [header.index(name) for name in FEATURES + (TARGET,)]
  values = []
  for line, row in enumerate(rows[1:], start=2):
    if not row or all(not cell.strip() for cell in row):
      continue
    if len(row) != len(header):
      raise CorruptDatasetError(
          path, f"line {line} has {len(row)} cells, the header {len(header)}.")
    try:
      numbers = [float(row[c].strip().strip('"')) for c in columns]
    except ValueError as err:
      raise CorruptDatasetError(path, f"line {line}: {err}.") from err
    if not all(math.isfinite(v) for v in numbers):
      raise CorruptDatasetError(path, f"line {line}: non-finite value.")
    values.append(numbers)
  if not values:
    raise CorruptDatasetError(path, "no data rows.")
  table = np.asarray(values, np.float32)
  return np.ascontiguousarray(table[:, :-1]), table[:, -1].copy()
