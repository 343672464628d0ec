"""``lrjax launch --local-processes N -- sweep ...``: one multi-process run on this machine.

Starts N copies of ``python -m lrjax <command>`` with ``--coordinator 127.0.0.1:PORT``
(a free port), ``--num-processes N`` and ``--process-id I``, the way a cluster launcher
(``srun``, ``mpirun``) would start them on N hosts, so that a multi-process sweep can be
tried and tested on one machine.  Each line a process prints is prefixed with ``[I]``.
If one process dies (a non-zero exit status or a signal), the others cannot go on (they
would wait for it in their next collective): they are killed at once and a message
names the process, how it ended and that rerunning the same command resumes from the
last checkpoint.  The exit status is the first failed process's (0 when all succeed).
On CPU every process sees one device (the machine's cores are shared by the processes).

A process that stops answering without dying (stopped by SIGSTOP or a debugger, hung)
makes another fail instead: JAX's heartbeat check ends the process waiting for it with
SIGABRT after ``--heartbeat-timeout`` seconds.  The message then names the one that
stopped answering, found stopped by its state in ``/proc`` or named by JAX's "stopped
sending heartbeats" report in the failed process's output, not the one that aborted.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port(host: str = "127.0.0.1") -> int:
  """A TCP port nothing listens on right now (the kernel's choice)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind((host, 0))
    return s.getsockname()[1]


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="lrjax launch", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter,
      usage="lrjax launch --local-processes N [--port PORT] -- COMMAND [ARGS ...]")
  parser.add_argument("--local-processes", type=int, required=True,
                      help="processes to start on this machine (at least 1)")
  parser.add_argument("--port", type=int, default=0,
                      help="the coordinator's port on 127.0.0.1 (0: a free one)")
  parser.add_argument("command", nargs=argparse.REMAINDER,
                      help="the lrjax command every process runs, after `--` (e.g. sweep ...)")
  return parser


def _describe(code: int) -> str:
  if code < 0:
    try:
      return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
      return f"was killed by signal {-code}"
  return f"exited with status {code}"


def _pump(index: int, stream, out, lock: threading.Lock, tail: collections.deque) -> None:
  """Copies a process's output to ``out``, each line prefixed by the process index; the
  last lines are also kept in ``tail``."""
  for raw in iter(stream.readline, b""):
    line = raw.decode(errors="replace").rstrip("\n")
    tail.append(line)
    with lock:
      out.write(f"[{index}] {line}\n")
      out.flush()
  stream.close()


def is_stopped(pid: int) -> bool:
  """Whether process ``pid`` is stopped (state T: SIGSTOP, Ctrl-Z; t: a debugger), from
  ``/proc`` (False where there is none)."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      state = f.read().rsplit(")", 1)[1].split()[0]
  except (OSError, IndexError):
    return False
  return state in ("T", "t")


# JAX's coordination service: "The following tasks are unhealthy (stopped sending
# heartbeats): /job:jax_worker/replica:0/task:1 ..." (or "... task:1 heartbeat timeout").
_HEARTBEAT = re.compile(r"stopped sending heartbeats|heartbeat timeout", re.IGNORECASE)
_TASK = re.compile(r"/task:(\d+)")


def unresponsive(failed: int, running: list[int], pids: list[int],
                 output) -> tuple[int, str] | None:
  """The process that stopped answering when ``failed`` died, and how it was found, or
  None: one of ``running`` that is stopped, else a process named by JAX's heartbeat
  report in ``output`` (the failed process's last lines)."""
  stopped = [i for i in running if is_stopped(pids[i])]
  if stopped:
    return stopped[0], "it was stopped: SIGSTOP, Ctrl-Z or a debugger"
  for line in reversed(list(output)):
    if _HEARTBEAT.search(line):
      named = [int(t) for t in _TASK.findall(line) if int(t) != failed and
               int(t) < len(pids)]
      if named:
        return named[0], "it stopped sending heartbeats"
  return None


def launch(command: list[str], num_processes: int, *, port: int = 0,
           out=None, poll_seconds: float = 0.1) -> int:
  """Runs ``python -m lrjax *command`` as ``num_processes`` processes of one run; returns
  the exit status (see the module docstring)."""
  out = out or sys.stdout
  port = port or free_port()
  coordinator = f"127.0.0.1:{port}"
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  lock = threading.Lock()
  procs, pumps = [], []
  tails: list[collections.deque[str]] = [collections.deque(maxlen=200)
                                         for _ in range(num_processes)]
  for index in range(num_processes):
    argv = [sys.executable, "-m", "lrjax", *command, "--coordinator", coordinator,
            "--num-processes", str(num_processes), "--process-id", str(index)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    procs.append(proc)
    pump = threading.Thread(target=_pump, args=(index, proc.stdout, out, lock, tails[index]),
                            daemon=True)
    pump.start()
    pumps.append(pump)

  def say(text: str) -> None:
    with lock:
      out.write(f"lrjax launch: {text}\n")
      out.flush()

  say(f"{num_processes} process(es), coordinator {coordinator}, pids "
      + " ".join(f"{i}:{p.pid}" for i, p in enumerate(procs)))

  interrupted = []

  def forward(signum, frame):  # pylint: disable=unused-argument
    # Ctrl-C / SIGTERM go to every process: they stop together after a checkpoint (and
    # end with 128 + signal, which is then no process dying).
    interrupted.append(signum)
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  previous = {}
  if threading.current_thread() is threading.main_thread():
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
  status = 0
  try:
    while True:
      codes = [p.poll() for p in procs]
      failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
      if interrupted:
        if all(c is not None for c in codes):
          status = next((c if c > 0 else 128 - c for c in codes if c), 0)
          break
      elif failed:
        first = failed[0]
        code = codes[first]
        assert code is not None  # `failed` holds processes that ended
        status = code if code > 0 else 128 - code
        running = [i for i, c in enumerate(codes) if c is None]
        # Before anything is killed: was the failure another process's, that stopped
        # answering (the failed one's last lines need its pump to have read them)?
        pumps[first].join(timeout=2)
        found = unresponsive(first, running, [p.pid for p in procs], tails[first])
        hung, why = (None, "") if found is None else found
        if running:
          # A survivor would wait for the dead one in its next collective: end it now.
          for i in running:
            procs[i].kill()
          for i in running:
            procs[i].wait()
        others = [i for i in running if i != hung]
        stopped = (f"stopped process(es) {', '.join(map(str, others))} (they cannot go on "
                   "without it); " if others else "")
        if hung is None:
          say(f"process {first} (pid {procs[first].pid}) {_describe(code)}; "
              + stopped + "run the same command again to resume from the last checkpoint")
        else:
          ended = "; ended now" if hung in running else ""
          say(f"process {hung} (pid {procs[hung].pid}) stopped answering ({why}{ended}); "
              f"process {first} (pid {procs[first].pid}) {_describe(code)} "
              f"waiting for it (JAX's heartbeat check); " + stopped
              + "run the same command again to resume from the last checkpoint")
        break
      if all(c == 0 for c in codes):
        break
      time.sleep(poll_seconds)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
    for pump in pumps:
      pump.join(timeout=5)
    for s, handler in previous.items():
      signal.signal(s, handler)
  return status


def main(argv=None) -> int:
  parser = _parser()
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  command = list(args.command)
  if command[:1] == ["--"]:
    command = command[1:]
  if args.local_processes < 1:
    parser.error(f"--local-processes must be at least 1, got {args.local_processes}")
  if not command:
    parser.error("give the command every process runs after `--` (e.g. -- sweep --epochs 2)")
  if not 0 <= args.port < 65536:
    parser.error(f"--port must be in 0 .. 65535, got {args.port}")
  taken = {"--coordinator", "--num-processes", "--process-id"} & {a.split("=")[0]
                                                                    for a in command}
  if taken:
    parser.error(f"{', '.join(sorted(taken))}: set by the launcher, not in the command")
  return launch(command, args.local_processes, port=args.port)


if __name__ == "__main__":
  sys.exit(main())
