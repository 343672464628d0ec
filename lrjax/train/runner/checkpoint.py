"""Orbax checkpoints of a sweep that survive damage: verified on restore, never trusted blindly.

A sweep measures divergence, so a checkpoint read back wrong is worse than none: a flipped
byte in a weight looks like a variant that blew up.  Hence:

* Integrity.  After orbax has finished writing a step, an integrity record
  (``lrjax_integrity.json``, inside the step folder) is written atomically: the sweep's
  config and, for every array, its SHA-256, shape, dtype and whether it was all finite.
  A step without a record is a save that did not finish.  A restore recomputes every
  digest and checks finiteness where the saved array was finite.
* Fallback.  If the newest step fails that check or cannot be read at all, one line on
  stderr names it and the reason, the step is discarded and the next older kept step is
  restored (the sweep recomputes the lost epochs, deterministically); only when no step
  is usable does the restore refuse, saying what to delete.
* Fail fast.  The folder is checked writable before anything trains; saves are
  synchronous (no orbax background thread whose failure leaves the main thread waiting on
  a barrier for minutes), and a failed save raises `CheckpointSaveError` at once.
* Identity.  ``sweep_config.json`` is written atomically beside the steps, and each step's
  record carries the config and the data's identity (name, SHA-256 fingerprint of the
  arrays, subset and validation split): a different sweep, or the same sweep on other
  data, is refused in one line saying what differs, even when that file is deleted; a
  damaged one is refused by name.  The number of epochs is not part of the identity: a
  finished run asked for more epochs continues.
* One run at a time.  A lock (``flock`` on ``.lrjax.lock``) is held for the run's
  lifetime; a second run on the same folder is refused instead of interleaving steps.
  Before every save the run checks that the lock file it holds is still the folder's: a
  folder (or lock) deleted under a live run would otherwise admit a second run, and the
  two would delete each other's steps.  A vanished folder is recreated with its lock and
  config (one line says so; the next save is complete, nothing is lost); if another run
  took the folder meanwhile, this one stops in one line and touches nothing there.
* Quiet failures.  orbax and tensorstore report a failed write (a full disk) on stderr in
  100+ lines of threads' tracebacks; around a save their output is captured: replayed
  when the save succeeds, kept in a log file named by the one-line error when it fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from lrjax import _atomic, distributed

CONFIG_FILE = "sweep_config.json"
RECORD_FILE = "lrjax_integrity.json"
LOCK_FILE = ".lrjax.lock"
RECORD_FORMAT = 1
DATA_SPLITS = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")
# Config keys a continued run may change, as they change no trained value: more epochs
# extend a finished run; how often to checkpoint and the summary's tolerance are host-side;
# calls at once give bit-identical numbers (tests/test_plan.py).
EXTENSIBLE_KEYS = ("epochs", "checkpoint_every", "convergence_tolerance", "concurrent_calls")


class CheckpointError(Exception):
  """A checkpoint folder cannot be used as it is; the message is one line saying why."""


class DifferentSweepError(CheckpointError, ValueError):
  """The folder holds the checkpoints of another sweep (another config)."""


class UnusableCheckpointError(CheckpointError):
  """No kept step (or the folder's config file) can be trusted; the message says what to
  delete."""


class CheckpointSaveError(CheckpointError):
  """The folder is not writable, or writing a step failed (disk full, permissions, ...)."""

  # The epochs trained before the failure (a `lrjax.train.runner.loop.Outcome`), set by
  # the host loop so that the caller can still write them.
  outcome: Any = None
  # The file holding orbax's report of the failure, when one was kept.
  log: str | None = None


class FolderInUseError(CheckpointError):
  """Another run holds the folder's lock (``holder``: its pid as the lock file says)."""

  holder = "?"


class FolderLostError(CheckpointSaveError):
  """The checkpoint folder was deleted under the run and another run holds it now."""


def data_identity(dataset, **provenance) -> dict[str, Any]:
  """What a run's data is: name, SHA-256 of the split arrays (bytes, shapes, dtypes) and
  ``provenance`` (subset size and seed, validation fraction, ...; None values dropped).

  Hashing costs about a second per GB of arrays, once per run.
  """
  digest = hashlib.sha256()
  for split in DATA_SPLITS:
    a = np.ascontiguousarray(getattr(dataset, split))
    digest.update(f"{split}:{a.dtype.str}:{a.shape};".encode())
    digest.update(a.reshape(-1).view(np.uint8).data)  # no copy; empty splits work too
  identity = {"dataset": str(getattr(dataset, "name", "")), "fingerprint": digest.hexdigest()}
  identity.update({k: v for k, v in provenance.items() if v is not None})
  return _canonical(identity)


def _describe_data(data: Mapping[str, Any], keys) -> str:
  extra = "".join(f", {k} {data[k]}" if k in data else f", no {k}" for k in keys)
  return f"dataset {data.get('dataset')} (fingerprint {str(data.get('fingerprint'))[:12]}{extra})"


def _data_difference(saved: Mapping[str, Any] | None, now: Mapping[str, Any]) -> str | None:
  """How the data of a saved step differs from this run's, or None."""
  if saved is None:
    return "was written without a record of its data (an older lrjax), so it cannot be checked"
  if saved == now:
    return None
  keys = [k for k in sorted(set(saved) | set(now))
          if k not in ("dataset", "fingerprint") and saved.get(k) != now.get(k)]
  return (f"was written for {_describe_data(saved, keys)}, this run has "
          f"{_describe_data(now, keys)}")


def _leaves(value, path: str = "") -> dict[str, Any]:
  """``{path: value}`` of the nested dicts / lists of a config (``a.b[2].c``)."""
  if isinstance(value, dict) and value:
    return {k: v for key, item in value.items()
            for k, v in _leaves(item, f"{path}.{key}" if path else str(key)).items()}
  if isinstance(value, list) and value:
    return {k: v for i, item in enumerate(value) for k, v in _leaves(item, f"{path}[{i}]").items()}
  return {path: value}


_MISSING = object()


def _config_difference(saved: Mapping[str, Any], now: Mapping[str, Any],
                       limit: int = 3) -> str | None:
  """Where the configs (epochs aside) differ, as ``key: A here, B there`` (nested keys as
  ``variants[1].hparams.learning_rate``; at most ``limit`` named, then how many more)."""
  keys = [k for k in sorted(set(saved) | set(now))
          if k not in EXTENSIBLE_KEYS and saved.get(k) != now.get(k)]
  if not keys:
    return None
  then = _leaves({k: saved.get(k, _MISSING) for k in keys})
  here = _leaves({k: now.get(k, _MISSING) for k in keys})
  paths = [p for p in dict.fromkeys([*here, *then])
           if here.get(p, _MISSING) != then.get(p, _MISSING)] or keys

  def short(v):
    if v is _MISSING:
      return "nothing"
    text = json.dumps(v)
    return text if len(text) <= 40 else "another value"

  named = ", ".join(f"{p}: {short(here.get(p, _MISSING))} here, "
                    f"{short(then.get(p, _MISSING))} there" for p in paths[:limit])
  more = len(paths) - limit
  return named + (f" and {more} more" if more > 0 else "")


class FolderLock:
  """An exclusive ``flock`` on ``<folder>/.lrjax.lock`` for as long as it is held; the
  kernel releases it when the process ends, however it ends.

  A flock belongs to the file, not to its path: deleting the folder (or the lock file)
  leaves this lock on a file nobody can find, and the next run creates a new one and is
  admitted.  `held` says whether the path still leads to the locked file; `reacquire`
  makes it so again.
  """

  def __init__(self, folder: str | Path, what: str = "folder", *, create: bool = False):
    self.path = Path(folder).absolute() / LOCK_FILE
    self.what = what
    self._fd = None
    if not distributed.is_writer():  # one lock per run, process 0's: the folder is shared
      return
    if create:  # the folder made here: one that cannot be is one line, not a traceback
      try:
        self.path.parent.mkdir(parents=True, exist_ok=True)
      except OSError as err:
        raise CheckpointSaveError(
            f"{what} {self.path.parent} cannot be created ({err.strerror or one_line(err)}); "
            "fix the permissions of its parent or use another folder.") from err
    self._fd = self._acquire()

  def _acquire(self) -> int:
    folder = self.path.parent
    if self.path.is_dir():  # os.open's EISDIR would read as "not writable"
      raise CheckpointSaveError(
          f"{self.what} {folder} has a folder where its lock file should be "
          f"({self.path}); remove that folder (a lock is a file) or use another folder.")
    try:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
      raise CheckpointSaveError(
          f"{self.what} {folder} is not writable ({err.strerror or one_line(err)}); fix "
          "its permissions or use another folder.") from err
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
      os.close(fd)
      error = FolderInUseError(
          f"{self.what} {folder} is in use by another run (pid {holder}); wait for it "
          "to finish or use another folder.")
      error.holder = holder
      raise error from None
    # The pid only informs a refused run; on a full disk the lock holds without it.
    with contextlib.suppress(OSError):
      os.ftruncate(fd, 0)
      os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd

  def held(self) -> bool:
    """Whether the lock file at the path is the one this lock holds (True for a process
    that holds no lock: another process of the run does)."""
    if self._fd is None:
      return True
    try:
      here, mine = os.stat(self.path), os.fstat(self._fd)
    except OSError:
      return False
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)

  def reacquire(self) -> None:
    """Locks the file at the path again (the folder created as needed) after `held` said
    it is another file or none; raises `FolderInUseError` when another run holds it."""
    if self._fd is None or self.held():
      return
    self.path.parent.mkdir(parents=True, exist_ok=True)
    fd = self._acquire()
    os.close(self._fd)  # the lost file's lock: nobody can find it any more
    self._fd = fd

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # closing the descriptor releases the flock
      self._fd = None


def _stderr(line: str) -> None:
  print(line, file=sys.stderr, flush=True)


def one_line(err: BaseException, limit: int = 240) -> str:
  """``Type: first line of the message``, cut to ``limit`` characters."""
  lines = [line.strip() for line in str(err).splitlines() if line.strip()]
  text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _canonical(config_dict: dict[str, Any]) -> Any:
  """The config as it reads back from JSON (tuples become lists, ...)."""
  return json.loads(json.dumps(config_dict))


def _host_leaves(tree) -> dict[str, np.ndarray]:
  """``{path: numpy array}`` of ``tree``'s leaves, fetched from the devices in one go."""
  def raw(leaf):
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      return jax.random.key_data(leaf)
    return leaf

  # `fetch`: in a multi-process run, arrays sharded over the processes are gathered whole on
  # each, so every process hashes the same bytes.
  host = distributed.fetch(jax.tree_util.tree_map(raw, tree))
  flat, _ = jax.tree_util.tree_flatten_with_path(host)
  return {jax.tree_util.keystr(path): np.ascontiguousarray(leaf) for path, leaf in flat}


def _all_finite(a: np.ndarray) -> bool:
  return bool(np.isfinite(a).all()) if np.issubdtype(a.dtype, np.inexact) else True


def _sha256(a: np.ndarray) -> str:
  return hashlib.sha256(a.tobytes()).hexdigest()


def _describe(tree) -> dict[str, dict]:
  return {name: {"sha256": _sha256(a), "shape": list(a.shape), "dtype": str(a.dtype),
                 "finite": _all_finite(a)}
          for name, a in _host_leaves(tree).items()}


def _seal(body: dict) -> dict:
  """``body`` plus the digest of its own JSON, so a damaged record is caught too."""
  text = json.dumps(body, sort_keys=True)
  return dict(body, record_sha256=hashlib.sha256(text.encode()).hexdigest())


def _mismatch(leaves: dict[str, dict], restored) -> str | None:
  """Why the restored tree is not the one recorded, or None when it is."""
  now = _host_leaves(restored)
  if set(now) != set(leaves):
    return "its arrays do not match the structure of this sweep's state"
  for name, saved in leaves.items():
    a = now[name]
    if list(a.shape) != saved["shape"] or str(a.dtype) != saved["dtype"]:
      return (f"{name} reads back as {a.dtype}{list(a.shape)}, "
              f"saved {saved['dtype']}{saved['shape']}")
    if saved["finite"] and not _all_finite(a):
      return f"{name} reads back with non-finite values where the saved array was finite"
    if _sha256(a) != saved["sha256"]:
      return f"checksum mismatch in {name}"
  return None


def _ensure_writable(directory: Path) -> None:
  """Creates ``directory`` and checks a file can be written there, before anything trains."""
  try:
    directory.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=directory, prefix=".lrjax-write-probe-")
    os.close(fd)
    os.unlink(probe)
  except OSError as err:
    reason = err.strerror or one_line(err)
    raise CheckpointSaveError(
        f"checkpoint folder {directory} is not writable ({reason}); fix its permissions or "
        "use another checkpoint folder (--checkpoint-dir).") from err


_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")


def failure_cause(err: BaseException) -> str:
  """What made a write fail, briefly: the operating system's reason where there is one
  (``No space left on device``, also when tensorstore says it as ``[os_error_code='28']``
  inside a long message), else `one_line` of the error."""
  seen: BaseException | None = err
  while seen is not None:
    if isinstance(seen, OSError) and seen.errno:
      return seen.strerror or os.strerror(seen.errno)
    found = _OS_ERROR_CODE.search(str(seen))
    if found:
      with contextlib.suppress(ValueError):
        return os.strerror(int(found.group(1)))
    seen = seen.__cause__ or seen.__context__
  return one_line(err)


class _CapturedOutput:
  """Within: everything written to stderr (file descriptor 2: Python, absl's log
  records, threads' tracebacks, C++) goes to memory instead.

  A failed orbax save prints 100+ lines (each of its threads' traceback, "Event loop is
  closed", ``RESOURCE_EXHAUSTED``) before the one line that says what happened.  After a
  save that succeeded, `show` writes what was captured to stderr as it came; after one
  that failed, `keep` puts it in a log file and only lrjax's own lines (a signal's
  notice) are shown.  Only the main thread captures; anywhere else it does nothing.
  """

  def __init__(self):
    self._chunks: list[bytes] = []
    self._saved_fd = None
    self._last = 0.0
    self.failed = False  # set by the body when it caught the failure itself

  def __enter__(self):
    if threading.current_thread() is not threading.main_thread():
      return self
    try:
      sys.stderr.flush()
      read_end, write_end = os.pipe()
      self._saved_fd = os.dup(2)
    except (OSError, ValueError, AttributeError):
      return self  # no capture: the output is then only noisy
    self._reader = threading.Thread(target=self._drain, args=(read_end,), daemon=True)
    self._reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    return self

  # After a failed save, tensorstore's writes still in flight report to an event loop
  # orbax has closed, from their own threads, for up to about a second: the capture lasts
  # until the output has been quiet this long (at most _QUIET_LIMIT_S).
  _QUIET_S = 1.0
  _QUIET_LIMIT_S = 10.0

  def _drain(self, fd: int) -> None:
    with os.fdopen(fd, "rb", buffering=0) as pipe:
      for chunk in iter(lambda: pipe.read(65536), b""):
        self._chunks.append(chunk)
        self._last = time.monotonic()

  def __exit__(self, kind, value, tb):
    if self._saved_fd is None:
      return False
    failed = kind is not None or self.failed
    if failed:
      # orbax leaves the failed save's coroutines behind; their "Event loop is closed"
      # reports come when they are collected, and tensorstore's threads add theirs: both
      # now, while captured.
      start = self._last = time.monotonic()
      while time.monotonic() - start < self._QUIET_LIMIT_S:
        gc.collect()
        time.sleep(0.1)
        if time.monotonic() - self._last >= self._QUIET_S:
          break
    with contextlib.suppress(Exception):
      sys.stderr.flush()
    os.dup2(self._saved_fd, 2)  # closes the pipe's last write end: the reader ends
    os.close(self._saved_fd)
    self._saved_fd = None
    self._reader.join(timeout=5)
    return False

  def show(self, everything: bool) -> None:
    """Writes what was captured to stderr: ``everything``, or only lrjax's own lines."""
    text = b"".join(self._chunks)
    if not everything:
      text = b"".join(line for line in text.splitlines(keepends=True)
                      if line.lstrip().startswith(b"lrjax:"))
    _write_fd2(text)

  def keep(self, header: str) -> str | None:
    """Writes ``header`` and what was captured to a log file in the temporary folder;
    returns its path, or None (no space there either)."""
    try:
      fd, path = tempfile.mkstemp(prefix="lrjax-checkpoint-save-", suffix=".log")
      with os.fdopen(fd, "wb") as f:
        f.write(header.encode() + b"".join(self._chunks))
    except OSError:
      return None
    return path


def _write_fd2(data: bytes) -> None:
  with contextlib.suppress(OSError):
    while data:
      data = data[os.write(2, data):]


class SweepCheckpointer:
  """Saves and restores ``{"states": [...], "history": {...}, ...}`` keyed by epoch.

  Args:
    directory: the checkpoint folder (created if absent; must be writable).
    config_dict: the sweep's config; a folder holding another sweep is refused (a
      different ``epochs`` is not another sweep: the run is extended or continued).
    data: the run's `data_identity`; steps written for other data are refused.
    max_to_keep: steps kept (older ones are the fallback of a damaged newest one).
    report: where the one-line notice of a fallback goes (default: stderr).

  Raises:
    CheckpointSaveError: the folder cannot be written.
    DifferentSweepError: the folder's config, or a step's record, is another sweep's (or
      another dataset's, or holds more epochs than this run asks for).
    UnusableCheckpointError: ``sweep_config.json`` is damaged.
    FolderInUseError: another run is using the folder.
  """

  def __init__(self, directory: str | Path, config_dict: dict[str, Any], max_to_keep: int = 2,
               report: Callable[[str], None] | None = None,
               data: Mapping[str, Any] | None = None):
    self.directory = Path(directory).absolute()
    self.config = _canonical(config_dict)
    self.data = None if data is None else _canonical(dict(data))
    self._report = report or _stderr
    self._max_to_keep = max_to_keep
    # Written with the first step of a new folder (`_write_config`), so that a run refused
    # after this (by the output folder's lock) leaves no config behind.
    self._config_pending = False
    _ensure_writable(self.directory)
    self._lock = FolderLock(self.directory, "checkpoint folder")
    try:
      self._open(max_to_keep)
    except BaseException:
      self._lock.release()
      raise

  def _open(self, max_to_keep: int) -> None:
    self._name_format = ocp.step.standard_name_format()
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            step_name_format=self._name_format,
            # Synchronous saves: a failed write raises here and now.  Asynchronous ones
            # leave the error in a background thread and the main thread on a 300 s barrier.
            enable_async_checkpointing=False,
            # Half-written steps of a killed run (`N.orbax-checkpoint-tmp*`) are removed.
            cleanup_tmp_directories=True,
            # A damaged step's metadata must not stop the manager from listing the others.
            lightweight_initialize=True))
    self._check_identity()

  # -- identity ---------------------------------------------------------------------------

  _ELSEWHERE = "use another checkpoint folder (--checkpoint-dir) or delete it"

  def _refusal(self, record: dict) -> DifferentSweepError | None:
    """Why this run may not continue from the step of ``record``, or None."""
    step = record.get("step")
    config = record.get("config")
    if not isinstance(config, dict):
      return DifferentSweepError(
          f"checkpoint directory {self.directory} holds a different sweep (step {step} has "
          f"no config); {self._ELSEWHERE}.")
    differs = _config_difference(config, self.config)
    if differs:
      return DifferentSweepError(
          f"checkpoint directory {self.directory} holds a different sweep (step {step}: "
          f"{differs}); {self._ELSEWHERE}.")
    if self.data is not None:
      differs = _data_difference(record.get("data"), self.data)
      if differs:
        return DifferentSweepError(
            f"checkpoint directory {self.directory} {differs}; {self._ELSEWHERE}.")
    epochs = self.config.get("epochs")
    if isinstance(step, int) and isinstance(epochs, int) and step > epochs:
      return DifferentSweepError(
          f"checkpoint directory {self.directory} holds {step} epochs of this sweep but this "
          f"run asks for {epochs}; ask for at least {step} (--epochs) or {self._ELSEWHERE}.")
    return None

  def _check_identity(self) -> None:
    config_path = self.directory / CONFIG_FILE
    steps = self.manager.all_steps()
    for step in steps:
      record = self._read_record(step)
      if isinstance(record, dict):
        refusal = self._refusal(record)
        if refusal is not None:
          raise refusal
    if config_path.exists():
      try:
        saved = json.loads(config_path.read_text())
      except (OSError, ValueError) as err:
        raise UnusableCheckpointError(
            f"{config_path} is damaged ({one_line(err)}); delete that file to resume (each "
            f"checkpoint step carries its sweep's config) or delete {self.directory} to start "
            "over.") from err
      differs = _config_difference(saved, self.config) if isinstance(saved, dict) else "?"
      if differs:
        raise DifferentSweepError(
            f"checkpoint directory {self.directory} holds a different sweep ({differs}); "
            f"{self._ELSEWHERE}.")
      if saved != self.config:  # the same sweep, extended
        self._config_pending = True
    else:
      self._config_pending = True
    # A folder with steps gets its (missing or extended) config now: a resumed run that
    # has nothing left to train saves no step.  A new folder gets it with its first step.
    if steps:
      self._write_config()

  def _write_config(self) -> None:
    if self._config_pending and distributed.is_writer():  # host-side files: process 0's
      _atomic.write_text(self.directory / CONFIG_FILE, json.dumps(self.config, indent=1))
    self._config_pending = False

  # -- the folder under a live run --------------------------------------------------------

  def _keep_folder(self, epoch: int) -> None:
    """Makes sure the folder and its lock are still this run's (before and after step
    ``epoch`` is written): a folder deleted meanwhile is recreated with its lock and config
    (one line says so); one taken by another run raises `FolderLostError`, nothing more
    written there."""
    if self._lock.held():
      return
    vanished = not self.directory.is_dir()
    try:
      self._lock.reacquire()
    except FolderInUseError as err:
      raise FolderLostError(
          f"checkpoint folder {self.directory} was deleted while this run held it and "
          f"another run (pid {err.holder}) holds it now; this run stops without writing "
          "there") from None
    self._reopen()
    self._write_config()
    what = "folder" if vanished else "lock file"
    self._report(f"lrjax: the {what} of checkpoint {self.directory} vanished while this run "
                 f"held it (deleted?) by step {epoch}; recreated it with its lock and config, "
                 "the next checkpoints are complete.")

  # -- integrity records ------------------------------------------------------------------

  def step_path(self, step: int) -> Path:
    return Path(ocp.step.build_step_path(self.directory, self._name_format, step))

  def _read_record(self, step: int) -> dict | str:
    """The step's integrity record, or why there is none to trust."""
    path = self.step_path(step) / RECORD_FILE
    if not path.exists():
      return "it has no integrity record (its save did not finish)"
    try:
      record = json.loads(path.read_text())
      body = {k: v for k, v in record.items() if k != "record_sha256"}
      if _seal(body) != record:
        return "its integrity record is damaged"
    except (OSError, ValueError, AttributeError) as err:
      return f"its integrity record cannot be read ({one_line(err)})"
    if record.get("format") != RECORD_FORMAT or record.get("step") != step:
      return "its integrity record is not this step's"
    return record

  # -- save / restore ---------------------------------------------------------------------

  def latest_epoch(self) -> int | None:
    return self.manager.latest_step()

  def save(self, epoch: int, tree) -> None:
    """Writes step ``epoch``, then its integrity record; any failure raises at once."""
    try:
      self._keep_folder(epoch)
      self._write_config()
    except FolderLostError:
      raise
    except Exception as err:  # pylint: disable=broad-except  (one line, the cause chained)
      raise CheckpointSaveError(
          f"saving checkpoint step {epoch} in {self.directory} failed "
          f"({failure_cause(err)}).") from err
    failure, capture = self._attempt(epoch, tree)
    if failure is not None and not self._lock.held():
      # The folder went during the save (orbax's writes then fail): recreated with its
      # lock and config, or `FolderLostError` if another run took it; then once more.
      capture.show(everything=False)
      self._keep_folder(epoch)
      self._remove_partial(epoch, unrecorded=True)  # this run's failed attempt at the step
      self._reopen()
      failure, capture = self._attempt(epoch, tree)
    if failure is None:
      # Deleted during the save: locked again now, not only at the next save, so that no
      # second run is admitted meanwhile (this step may be cut: its record tells).  orbax's
      # warnings about the steps that went with the folder are then noise: the notice says.
      kept = self._lock.held()
      capture.show(everything=kept)
      self._keep_folder(epoch)
      return
    capture.show(everything=False)
    self._remove_partial(epoch)
    what = f"saving checkpoint step {epoch} in {self.directory}"
    log = capture.keep(f"{what} failed:\n{failure[1]}\nWhat orbax printed:\n")
    where = f"; orbax's report is in {log}" if log else ""
    error = CheckpointSaveError(f"{what} failed ({failure[0]}{where}).")
    error.log = log
    raise error

  def _attempt(self, epoch: int, tree) -> tuple[tuple[str, str] | None, _CapturedOutput]:
    """`_write_step` with its output captured: ``(None, capture)``, or ``((cause,
    traceback text), capture)`` when it failed."""
    failure = None
    with _CapturedOutput() as capture:
      try:
        self._write_step(epoch, tree)
      except Exception as err:  # pylint: disable=broad-except  (one line; details logged)
        # The traceback holds orbax's failed tasks: it is kept as text and let go here,
        # so that what they report when collected is captured too.
        failure = (failure_cause(err), "".join(traceback.format_exception(err)))
        capture.failed = True
    return failure, capture

  def _write_step(self, epoch: int, tree) -> None:
    if not self.manager.save(epoch, args=ocp.args.StandardSave(tree)):
      raise RuntimeError(f"orbax skipped step {epoch} (a step >= {epoch} exists)")
    self.manager.wait_until_finished()
    body = {"format": RECORD_FORMAT, "step": epoch, "config": self.config,
            "leaves": _describe(tree)}
    if self.data is not None:
      body["data"] = self.data
    record = _seal(body)
    # In a multi-process run orbax wrote the arrays with every process; the record (the
    # same digests on every process, from the gathered arrays) is process 0's to write,
    # and no process goes on before it exists.
    if distributed.is_writer():
      _atomic.write_text(self.step_path(epoch) / RECORD_FILE, json.dumps(record))
    distributed.barrier(f"lrjax-checkpoint-record-{epoch}")

  def _remove_partial(self, epoch: int, unrecorded: bool = False) -> None:
    """The failed step's half-written folder, removed at once: on a full disk it holds the
    space the user needs to go on (the next run would remove it anyway).  ``unrecorded``:
    also the step's folder if orbax finished it but it has no integrity record (a save
    cut short by the folder's deletion; this run holds the lock, so the step is its own)."""
    if not distributed.is_writer() or not self._lock.held():
      return
    partials = list(self.directory.glob(f"{epoch}.orbax-checkpoint-tmp*"))
    if unrecorded and not (self.step_path(epoch) / RECORD_FILE).exists():
      partials.append(self.step_path(epoch))
    for partial in partials:
      shutil.rmtree(partial, ignore_errors=True)

  def _reopen(self) -> None:
    """A new orbax manager: the old one remembers steps the folder no longer has."""
    with contextlib.suppress(Exception):
      self.manager.close()
    self._open(self._max_to_keep)

  def _try_restore(self, step: int, target) -> tuple[Any, str | None]:
    record = self._read_record(step)
    if isinstance(record, str):
      return None, record
    refusal = self._refusal(record)
    if refusal is not None:
      raise refusal
    if callable(target):  # the tree's shape depends on the epochs the step was saved for
      target = target(int(record["config"].get("epochs", self.config.get("epochs"))))
    try:
      restored = self.manager.restore(step, args=ocp.args.StandardRestore(target))
    except Exception as err:  # pylint: disable=broad-except  (a damaged step: fall back)
      return None, f"it cannot be read: {one_line(err, 160)}"
    reason = _mismatch(record["leaves"], restored)
    return (restored, None) if reason is None else (None, reason)

  def restore_latest(self, target) -> tuple[int, Any] | None:
    """``(epoch, tree)`` of the newest step that verifies, or None when there is no step.

    ``target`` is the tree to restore into, or ``target(epochs)`` giving it for the
    number of epochs the step's run was configured with (a run being extended).

    Unusable newer steps are reported in one line and deleted (their epochs are
    recomputed).  Raises `UnusableCheckpointError` when steps exist but none verifies.
    """
    failures: list[tuple[int, str]] = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      restored, reason = self._try_restore(step, target)
      if reason is None:
        if failures:
          bad = "; ".join(f"step {s}: {r}" for s, r in failures)
          gone = ", ".join(str(s) for s, _ in failures)
          self._report(f"lrjax: checkpoint {self.directory} has unusable newer steps ({bad}); "
                       f"deleted step {gone} and resuming from step {step} (the later epochs "
                       "are recomputed).")
          for s, _ in failures:
            self._discard(s)
        return step, restored
      failures.append((step, reason))
    if not failures:
      return None
    bad = "; ".join(f"step {s}: {r}" for s, r in failures)
    paths = " ".join(str(self.step_path(s)) for s, _ in failures)
    raise UnusableCheckpointError(
        f"no usable checkpoint in {self.directory} ({bad}); delete {paths} (or the whole "
        "folder) to start the sweep over.")

  def _discard(self, step: int) -> None:
    try:
      self.manager.delete(step)
    except Exception as err:  # pylint: disable=broad-except
      raise UnusableCheckpointError(
          f"checkpoint step {step} is unusable and could not be deleted ({one_line(err)}); "
          f"delete {self.step_path(step)} and run again.") from err

  def close(self):
    try:
      self.manager.close()
    finally:
      self._lock.release()
