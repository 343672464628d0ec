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
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
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


class FolderInUseError(CheckpointError):
  """Another run holds the folder's lock."""


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
  kernel releases it when the process ends, however it ends."""

  def __init__(self, folder: str | Path, what: str = "folder"):
    self.path = Path(folder).absolute() / LOCK_FILE
    self._fd = None
    if not distributed.is_writer():  # one lock per run, process 0's: the folder is shared
      return
    try:
      self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
      raise CheckpointSaveError(
          f"{what} {self.path.parent} is not writable ({err.strerror or one_line(err)}); fix "
          "its permissions or use another folder.") from err
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "?"
      os.close(self._fd)
      raise FolderInUseError(
          f"{what} {self.path.parent} is in use by another run (pid {holder}); wait for it "
          "to finish or use another folder.") from None
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, str(os.getpid()).encode(), 0)

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
    for step in self.manager.all_steps():
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
      if saved != self.config and distributed.is_writer():  # the same sweep, extended
        _atomic.write_text(config_path, json.dumps(self.config, indent=1))
    elif distributed.is_writer():  # host-side files: process 0's (one writer per file)
      _atomic.write_text(config_path, json.dumps(self.config, indent=1))

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
    except Exception as err:  # pylint: disable=broad-except  (one line, the cause chained)
      raise CheckpointSaveError(
          f"saving checkpoint step {epoch} in {self.directory} failed "
          f"({one_line(err)}).") from err

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
