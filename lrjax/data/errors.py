"""The two ways getting a dataset fails: the files are missing, or they are damaged."""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
  """No local source files, no prepared copy, and no official download for a dataset.

  The message lists every place that was looked in and the files expected there.
  """


class CorruptDatasetError(ValueError):
  """A source file is damaged (bad magic number, truncated, CRC error, ...).

  The message names the file; nothing of it has been trained on or cached.
  """

  def __init__(self, path, problem: str):
    self.path = str(path)
    self.problem = problem
    super().__init__(f"Corrupt dataset file {self.path}: {problem}")
