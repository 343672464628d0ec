"""Running a tfds preparation safely: one at a time, no partial copies left, quiet stdout.

tfds prepares into a sibling folder ``incomplete.XXXXXX_<version>`` and renames it into
place when done; a preparation killed half-way (SIGKILL, power loss) leaves that folder
forever (tens of MB for MNIST).  And to prepare again over a stale copy (changed source
files), tfds first deletes the prepared copy, so a kill half-way costs the good copy too.

Here every preparation holds an exclusive lock on its dataset folder (the folder of the
version folders, e.g. ``<data_dir>/lrjax_mnist/idx``), so whatever is found there while
holding it belongs to no live preparation:

* ``incomplete.*`` folders are removed, before preparing and after;
* a prepared copy about to be replaced is set aside (``lrjax-previous_<version>``), not
  deleted, and only deleted once the new copy is in place; a failed or killed preparation
  gets it back (at once, or at the next `recover`).

Only those two kinds of folder are ever removed, never a version folder.  tfds also prints
"Downloading and preparing dataset ..." with ``print``, to stdout; that breaks scripts
parsing lrjax's output, so it goes to stderr while preparing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from tensorflow_datasets.core import constants

_log = logging.getLogger(__name__)
LOCK_FILE = ".lrjax-prepare.lock"
PREVIOUS_PREFIX = "lrjax-previous_"


def partial_copies(dataset_dir: str | Path) -> list[Path]:
  """The ``incomplete.*`` folders tfds left in ``dataset_dir``."""
  folder = Path(dataset_dir)
  if not folder.is_dir():
    return []
  return sorted(p for p in folder.glob(f"{constants.INCOMPLETE_PREFIX}*") if p.is_dir())


def remove_partial_copies(dataset_dir: str | Path) -> list[Path]:
  """Removes the partial copies in ``dataset_dir``; call it only under `exclusive`."""
  removed = partial_copies(dataset_dir)
  for path in removed:
    shutil.rmtree(path, ignore_errors=True)
  if removed:
    _log.info("Removed %d partial preparation(s) in %s", len(removed), dataset_dir)
  return removed


def _previous(version_dir: Path) -> Path:
  return version_dir.with_name(PREVIOUS_PREFIX + version_dir.name)


def needs_recovery(version_dir: str | Path) -> bool:
  """Whether a killed preparation left something in ``version_dir``'s dataset folder."""
  version_dir = Path(version_dir)
  return _previous(version_dir).is_dir() or bool(partial_copies(version_dir.parent))


@contextlib.contextmanager
def exclusive(dataset_dir: str | Path) -> Iterator[None]:
  """Holds ``dataset_dir``'s lock: one preparation of it at a time, across processes."""
  folder = Path(dataset_dir)
  folder.mkdir(parents=True, exist_ok=True)
  with open(folder / LOCK_FILE, "a+") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if the process dies
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def recover(version_dir: str | Path) -> None:
  """Undoes what a killed preparation of ``version_dir`` left; call it under `exclusive`.

  A set-aside copy comes back when no new copy replaced it, and is deleted when one did;
  partial copies are removed.
  """
  version_dir = Path(version_dir)
  previous = _previous(version_dir)
  if previous.is_dir():
    if version_dir.is_dir():
      shutil.rmtree(previous)
    else:
      previous.rename(version_dir)
      _log.info("Restored the prepared copy %s set aside by an unfinished preparation",
                version_dir)
  remove_partial_copies(version_dir.parent)


@contextlib.contextmanager
def replacing(version_dir: str | Path) -> Iterator[None]:
  """The body prepares ``version_dir`` anew; call it under `exclusive`, after `recover`.

  The current copy, if any, is set aside first (so tfds has nothing to delete), deleted
  once the body has put a new copy in place, and put back if it did not.
  """
  version_dir = Path(version_dir)
  previous = _previous(version_dir)
  if version_dir.is_dir():
    version_dir.rename(previous)
  done = False
  try:
    with contextlib.redirect_stdout(sys.stderr):
      yield
    done = version_dir.is_dir()
  finally:
    remove_partial_copies(version_dir.parent)
    if previous.is_dir():
      if done:
        shutil.rmtree(previous)
      elif not version_dir.exists():
        previous.rename(version_dir)


@contextlib.contextmanager
def preparation(dataset_dir: str | Path) -> Iterator[None]:
  """A tfds preparation that never replaces a copy (the official builders' download):
  locked, partial copies removed before and after, prints on stderr."""
  with exclusive(dataset_dir):
    remove_partial_copies(dataset_dir)
    try:
      with contextlib.redirect_stdout(sys.stderr):
        yield
    finally:
      remove_partial_copies(dataset_dir)
