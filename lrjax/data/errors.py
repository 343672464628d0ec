"""The ways getting a dataset fails: the files are missing, or they (or the prepared copy
made from them) are damaged."""

from __future__ import annotations

from lrjax.errors import UsageError


class DatasetNotFoundError(FileNotFoundError):
  """No local source files, no prepared copy, and no official download for a dataset.

  The message lists every place that was looked in and the files expected there.

  Attributes:
    dataset: the dataset asked for.
    source_dir: the explicit folder looked in, or None.
    missing: what that folder lacks (``"no cifar-10-batches-bin/ batches or ..."``).
    found_instead: the other datasets whose files that folder holds (MNIST's files
      given for CIFAR-10: ``("mnist", "fashion_mnist")``, which share the IDX layout).
    summary: the whole story in one line, for a command line's error.
  """

  def __init__(self, message: str, *, dataset: str = "", source_dir=None,
               missing: str = "", found_instead: tuple[str, ...] = (), summary: str = ""):
    super().__init__(message)
    self.dataset, self.source_dir, self.missing = dataset, source_dir, missing
    self.found_instead = tuple(found_instead)
    self.summary = summary or message.splitlines()[0]


class CorruptDatasetError(UsageError):
  """A source file is damaged (bad magic number, truncated, CRC error, ...).

  The message names the file; nothing of it has been trained on or cached.  A
  `lrjax.errors.UsageError` (so a ``ValueError``): the file is the user's to replace.
  """

  def __init__(self, path, problem: str):
    self.path = str(path)
    self.problem = problem
    super().__init__(f"Corrupt dataset file {self.path}: {problem}")


class CorruptPreparedCopyError(CorruptDatasetError):
  """The prepared copy of a dataset under the data folder is damaged (a file cut short or
  changed since it was prepared, unreadable metadata) and there are no source files to
  prepare it again from.

  The message is one line: the copy's folder, what is wrong and how to rebuild it.
  ``path`` is the copy's folder, ``problem`` what is wrong.
  """

  def __init__(self, path, problem: str, dataset: str = ""):
    ValueError.__init__(
        self, f"the prepared copy of {dataset or 'the dataset'} in {path} is damaged "
              f"({problem}); give its source files (--source-dir, `source_dir` or "
              f"$LRJAX_SOURCE_DIR) to prepare it again, or delete {path}")
    self.path, self.problem, self.dataset = str(path), problem, dataset
