"""One sweep over several processes (and hosts) with JAX's multi-controller runtime.

A sweep's variants are independent, so spreading them over processes needs no scheduler
of our own: every process runs the same command, `initialize` joins them with
``jax.distributed.initialize``, ``jax.devices()`` then lists every process's devices,
and the 1-D ``variant`` mesh of `lrjax.train.engine.epoch.variant_mesh` spans them all.  Each
process loads the dataset itself; host values placed with a global sharding
(``jax.device_put``) give every process its own slice of the variants (a process's
devices hold only their shards), and the epoch program runs with no communication
inside an epoch.  Between epochs `fetch` gathers the per-epoch metrics
(``multihost_utils.process_allgather``) so that every process holds the whole history,
and only process 0 (`is_writer`) writes results, tables and plots.

What fails gives a clear error instead of a hang: a coordinator not reached within
``timeout`` seconds (`CoordinatorUnreachableError`), processes started with different
configs or data (`check_agreement`, `ProcessesDisagreeError`).  A process that dies is
reported by the launcher (`lrjax.launch`) or, under a cluster launcher, by JAX's
heartbeat (the survivors end after ``heartbeat_timeout`` seconds).

On CPU, cross-process collectives need ``jax_cpu_collectives_implementation = "gloo"``
(set by `initialize` before the backend starts).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from lrjax.errors import UsageError

# Defaults of the CLI flags (JAX's own are 300 s / 100 s).
INIT_TIMEOUT_SECONDS = 120
HEARTBEAT_TIMEOUT_SECONDS = 60


class DistributedError(Exception):
  """A multi-process run cannot go on; the message is one line saying why and what to do."""


class CoordinatorUnreachableError(DistributedError):
  """A process could not reach process 0's coordinator within the timeout."""


class ProcessesDisagreeError(DistributedError, ValueError):
  """The processes of one run were started with different configs or data."""


def add_flags(parser) -> None:
  """The flags of `initialize` on an argparse (sub)parser."""
  group = parser.add_argument_group(
      "multi-process (jax.distributed; with none of the first three flags, JAX's "
      "auto-detection of cluster launchers such as SLURM applies, else one process)")
  group.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                     help="address of process 0's coordination service")
  group.add_argument("--num-processes", type=int, default=None, metavar="N",
                     help="processes in the run")
  group.add_argument("--process-id", type=int, default=None, metavar="I",
                     help="this process's index, 0 .. --num-processes - 1")
  group.add_argument("--distributed-timeout", type=int, default=INIT_TIMEOUT_SECONDS,
                     metavar="SECONDS",
                     help="seconds to wait for every process to reach the coordinator")
  group.add_argument("--heartbeat-timeout", type=int, default=HEARTBEAT_TIMEOUT_SECONDS,
                     metavar="SECONDS",
                     help="seconds after which a silent process counts as dead")


def check_flags(coordinator, num_processes, process_id, timeout=INIT_TIMEOUT_SECONDS,
                heartbeat_timeout=HEARTBEAT_TIMEOUT_SECONDS) -> None:
  """A `UsageError` naming the flag for values `initialize` would reject later."""
  given = [coordinator is not None, num_processes is not None, process_id is not None]
  if any(given) and not all(given):
    raise UsageError("--coordinator, --num-processes and --process-id go together "
                     "(give all three, or none for JAX's cluster auto-detection)")
  if coordinator is not None:
    host, _, port = str(coordinator).rpartition(":")
    if not host or not port.isdigit():
      raise UsageError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
  if num_processes is not None and num_processes < 1:
    raise UsageError(f"--num-processes must be at least 1, got {num_processes!r}")
  if process_id is not None and not 0 <= process_id < num_processes:
    raise UsageError(f"--process-id must be in 0 .. {num_processes - 1} "
                     f"(--num-processes {num_processes}), got {process_id!r}")
  for flag, value in (("--distributed-timeout", timeout),
                      ("--heartbeat-timeout", heartbeat_timeout)):
    if value < 1:
      raise UsageError(f"{flag} must be at least 1 second, got {value!r}")


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout: int = INIT_TIMEOUT_SECONDS,
               heartbeat_timeout: int = HEARTBEAT_TIMEOUT_SECONDS) -> bool:
  """Joins this process to a multi-process run; returns whether it is one.

  With all three of ``coordinator``, ``num_processes`` and ``process_id`` they go to
  ``jax.distributed.initialize``.  With none, JAX's auto-detection applies
  (``JAX_COORDINATOR_ADDRESS``, SLURM, Open MPI, Cloud TPU, ...) and, when it finds no
  cluster, the run is one process as without this module.  Must be called before
  anything starts JAX's backend.

  Raises:
    UsageError: an inconsistent set of arguments (named as the CLI flags).
    CoordinatorUnreachableError: a process other than 0 found no coordinator listening
      within ``timeout`` seconds.  (When the coordinator listens but not every process
      joins within ``timeout``, JAX itself ends the process with a fatal
      ``DEADLINE_EXCEEDED ... RegisterTask`` line: also an error, not a hang.)
  """
  check_flags(coordinator, num_processes, process_id, timeout, heartbeat_timeout)
  if num_processes == 1:
    return False
  if coordinator is None and jax.distributed.is_initialized():
    return jax.process_count() > 1  # the caller joined the run itself
  if coordinator is not None and process_id != 0:
    assert process_id is not None  # check_flags: a coordinator comes with all three
    _wait_for_coordinator(coordinator, process_id, timeout)
  try:
    jax.distributed.initialize(coordinator, num_processes, process_id,
                               initialization_timeout=int(timeout),
                               heartbeat_timeout_seconds=int(heartbeat_timeout))
  except ValueError as err:
    if coordinator is None and "coordinator_address should be defined" in str(err):
      return False  # auto-detection found no cluster: a single process, as before
    raise
  except RuntimeError as err:
    if coordinator is None and "must be called before" in str(err):
      return False  # embedded in a process already running JAX (a notebook, the tests)
    raise
  # The CPU backend starts after this (initialize refuses to run once it has): its
  # cross-process collectives (process_allgather, orbax's barriers) need gloo.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  return jax.process_count() > 1


def _wait_for_coordinator(coordinator: str, process_id: int, timeout: float) -> None:
  """Returns once process 0's coordination service accepts a TCP connection; raises
  `CoordinatorUnreachableError` after ``timeout`` seconds.  JAX's own timeout aborts the
  process (a C++ fatal error, no Python exception), so the common case, process 0 not
  (yet) there, is checked here first."""
  host, _, port = coordinator.rpartition(":")
  deadline = time.monotonic() + timeout
  while True:
    try:
      with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
        return
    except OSError as err:
      if time.monotonic() >= deadline:
        raise CoordinatorUnreachableError(
            f"process {process_id} could not reach the coordinator at {coordinator} within "
            f"{timeout:g} s ({err.strerror or err}); start process 0 with the same "
            "--coordinator, check the address is reachable from here, or raise "
            "--distributed-timeout") from None
      time.sleep(0.2)


def is_writer() -> bool:
  """Whether this process writes the run's files (results, tables, plots, records): process
  0 of a multi-process run, or the only one."""
  return jax.process_index() == 0


def multi_process() -> bool:
  return jax.process_count() > 1


def barrier(name: str) -> None:
  """Waits until every process gets here (nothing to do in a single process)."""
  if multi_process():
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def fetch(tree):
  """Like ``jax.device_get``, for arrays sharded over several processes too: each is
  gathered whole (``process_allgather``) onto every process.  Collective: every process
  must call it with the same tree."""
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  spread = [i for i, a in enumerate(leaves)
            if isinstance(a, jax.Array) and not a.is_fully_addressable]
  if spread:
    from jax.experimental import multihost_utils
    gathered = multihost_utils.process_allgather([leaves[i] for i in spread], tiled=True)
    for i, a in zip(spread, gathered, strict=True):
      leaves[i] = np.asarray(a)
  return jax.device_get(jax.tree_util.tree_unflatten(treedef, leaves))


def _gather_text(text: str) -> list[str]:
  """Every process's ``text``, in process order (collective)."""
  from jax.experimental import multihost_utils
  data = np.frombuffer(text.encode(), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(np.asarray([data.size], np.int32)))
  padded = np.zeros(int(sizes.max()), np.uint8)
  padded[:data.size] = data
  rows = np.asarray(multihost_utils.process_allgather(padded))
  return [bytes(row[:int(n)]).decode() for row, n in zip(rows, sizes.reshape(-1), strict=True)]


def _differences(mine: Mapping[str, Any], theirs: Mapping[str, Any],
                 prefix: str = "") -> list[str]:
  """The dotted keys whose values differ (nested dicts compared key by key)."""
  keys = sorted(set(mine) | set(theirs))
  out = []
  for k in keys:
    a, b = mine.get(k), theirs.get(k)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _differences(a, b, f"{prefix}{k}.")
    elif a != b:
      out.append(f"{prefix}{k}")
  return out


def check_agreement(**what: Mapping[str, Any] | Callable[[], Mapping[str, Any]]) -> None:
  """Refuses a run whose processes were given different ``what`` (e.g. ``config=``,
  ``data=`` the `data_identity`, or callables giving them): every process sends its
  JSON to every other, so all of them raise the same `ProcessesDisagreeError`, naming
  the processes and the keys that differ from process 0's.  Nothing to do in a single process."""
  if not multi_process():
    return
  what = {k: v() if callable(v) else v for k, v in what.items()}  # computed only here
  text = json.dumps(what, sort_keys=True, default=str)
  texts = _gather_text(text)
  reference = json.loads(texts[0])
  problems = []
  for index, other in enumerate(texts[1:], start=1):
    if other == texts[0]:
      continue
    keys = _differences(json.loads(other), reference)
    problems.append(f"process {index} differs from process 0 in " + ", ".join(keys[:8])
                    + (" ..." if len(keys) > 8 else ""))
  if problems:
    raise ProcessesDisagreeError(
        f"the {len(texts)} processes of this run were not started alike ("
        + "; ".join(problems) + "); start every process with the same command, flags and "
        "data (only --process-id differs)")


def agree_stop(requests: list[int]) -> bool:
  """Whether any process was asked to stop (``requests``: the signals this one received).

  A signal reaches the processes of a run at slightly different times; if one stopped
  after epoch e and another went on, the second would wait forever for the first.  So
  they decide together (one small allgather per call), and a process that received
  nothing adopts another's signal into ``requests``.  Collective in a multi-process run.
  """
  if not multi_process():
    return bool(requests)
  from jax.experimental import multihost_utils
  signals = np.asarray(multihost_utils.process_allgather(
      np.asarray([requests[0] if requests else 0], np.int32))).reshape(-1)
  if not requests and signals.any():
    requests.append(int(signals[signals > 0][0]))
  return bool(requests)


def broadcast(value: Any) -> Any:
  """Process 0's ``value`` (any picklable object) on every process, exactly (sent as
  bytes, so float64 stays float64).  Collective in a multi-process run; ``value`` as it
  is in a single process."""
  if not multi_process():
    return value
  import pickle

  from jax.experimental import multihost_utils
  data = np.frombuffer(pickle.dumps(value), np.uint8) if is_writer() else np.zeros(0, np.uint8)
  size = int(np.asarray(multihost_utils.broadcast_one_to_all(
      np.asarray([data.size], np.int32))).reshape(-1)[0])
  padded = np.zeros(size, np.uint8)
  padded[:min(size, data.size)] = data[:size]
  sent = np.asarray(multihost_utils.broadcast_one_to_all(padded), np.uint8)
  return pickle.loads(sent.tobytes())
