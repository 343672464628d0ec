"""Small files written whole or not at all: a temporary file in the same folder, then rename.

A run killed mid-write (or a full disk) must never leave a config, an integrity record
or a results file cut in half: readers would crash on it, or worse, trust it.  The data
goes to a temporary file beside the target, is flushed to disk, and `os.replace` puts it
in place in one step (atomic on POSIX within a filesystem); on any error the temporary
file is removed and the old target, if any, is left as it was.

A write that fails (a full disk, a read-only folder) is the operator's to fix, not a bug:
`reported` turns the `OSError` into an `OutputWriteError` whose message is one line
naming the folder and the cause, for the command line to print as it is.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".lrjax-tmp-"


class OutputWriteError(OSError):
  """Files of a run's output could not be written; the message is one line naming the
  folder and the cause (``errno`` is the cause's)."""


@contextlib.contextmanager
def reported(folder: str | Path, what: str):
  """Within: an `OSError` becomes an `OutputWriteError` "writing <what> to <folder> failed
  (<cause>)", the original chained."""
  try:
    yield
  except OutputWriteError:
    raise
  except OSError as err:
    cause = err.strerror or str(err) or type(err).__name__
    error = OutputWriteError(f"writing {what} to {Path(folder).absolute()} failed ({cause})")
    error.errno = err.errno
    raise error from err


def write_bytes(path: str | Path, data: bytes) -> Path:
  """Writes ``data`` to ``path`` atomically; returns the path."""
  path = Path(path)
  fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; match a plain open()
    os.replace(temp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(temp)
    raise
  _sync_folder(path.parent)
  return path


def write_text(path: str | Path, text: str) -> Path:
  """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
  return write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
  # Read, not set-and-restore: `os.umask` is process-wide and other threads (orbax's) may be
  # creating files meanwhile.
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("Umask:"):
          return int(line.split()[1], 8)
  except (OSError, ValueError):
    pass
  return 0o022


def _sync_folder(folder: Path) -> None:
  """Makes the rename itself durable; best effort (not every filesystem allows it)."""
  with contextlib.suppress(OSError):
    fd = os.open(folder, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)
