"""Multi-process sweeps (`lrjax.distributed`, `lrjax.launch`) on one machine.

The default sweep (the report's 14 settings; logistic regression) runs as 2 processes of
one ``jax.distributed`` run on 127.0.0.1 (gloo CPU collectives, one device per process)
through ``lrjax launch``; one of them is killed mid-run (the launcher names it), the
rerun of both resumes, and the written results equal a single-process run of the same
sweep to 1e-5 per variant and epoch (one test: the equality and the resume share their
runs, to keep CI time down).  An unreachable coordinator and processes started with
different sweep files' settings (``--config``, the `lrjax.sweep` path) end with one
clear line instead of hanging, before anything is trained.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# The default sweep (the report's 14 settings on the built-in synthetic data), small: 2
# steps per epoch, and logistic regression instead of the default CNN (a third less CPU
# time per run; the two groups, their plans and the padding are the same).  Its epochs
# cost little next to the compile and a 2-process checkpoint save more (barriers): 6
# epochs, a checkpoint every 2, leave the kill after the first one 4 epochs to land in.
EPOCHS, EVERY = 6, 2
SWEEP = ["sweep", "--model", "logistic", "--epochs", str(EPOCHS), "--train-size", "128",
         "--checkpoint-every", str(EVERY), "--no-progress"]
FIELDS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
          "lr", "index", "nonfinite")
TIMEOUT_S = 300


def _env(cache: Path | None = None) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
  # One device per process: no device-count flag (conftest's other XLA flags kept).
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if "device_count" not in f)
  if cache is not None:  # the 2-process runs compile the same programs once
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return env


def _launch(args, cache, **kw) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, "-m", "lrjax", "launch", "--local-processes", "2", "--"] + args,
      env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      cwd=REPO, **kw)


def _history(out: Path) -> dict[str, np.ndarray]:
  result = json.loads((out / "results.json").read_text())
  return {f: np.asarray(result["history"][f], np.float64) for f in FIELDS}


def _assert_same(got, want, atol=1e-5):
  for field in FIELDS:
    assert got[field].shape == want[field].shape, field
    np.testing.assert_allclose(got[field], want[field], atol=atol, rtol=0, equal_nan=True,
                               err_msg=field)


def _reference(out: Path, monkeypatch) -> dict[str, np.ndarray]:
  """The sweep as one process (in this test process: one CPU device), without its plots
  (seconds of matplotlib; results.json is what is compared)."""
  from lrjax import cli
  from lrjax.train.reports import plotting
  monkeypatch.setattr(plotting, "plot_run", lambda *args, **kwargs: [])
  assert cli.main(SWEEP + ["--no-checkpoint", "--out", str(out)]) == 0
  return _history(out)


def test_two_processes_killed_and_resumed_write_what_one_process_writes(tmp_path,
                                                                        monkeypatch):
  cache = tmp_path / "jax-cache"  # the two 2-process runs compile the same programs once
  out = tmp_path / "out"
  args = SWEEP + ["--out", str(out)]
  proc = _launch(args, cache)
  lines: list[str] = []
  reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
  reader.start()
  first = out / "checkpoints" / str(EVERY) / "lrjax_integrity.json"
  deadline = time.monotonic() + TIMEOUT_S
  while not first.exists():  # process 0 writes it, then both meet at a barrier
    assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
    time.sleep(0.005)
  pids = re.search(r"pids 0:(\d+) 1:(\d+)", "".join(lines))
  os.kill(int(pids.group(2)), signal.SIGKILL)
  at_kill = sorted(p.name for p in (out / "checkpoints").iterdir())
  # The single-process reference trains while the killed run winds down (its own output
  # folder; the 2-process run is restarted after it).
  reference = _reference(tmp_path / "single", monkeypatch)
  proc.wait(timeout=TIMEOUT_S)
  reader.join(timeout=10)
  output = "".join(lines)
  assert proc.returncode != 0, output
  assert re.search(rf"lrjax launch: process 1 \(pid {pids.group(2)}\) was killed by "
                   r"SIGKILL; stopped process\(es\) 0", output), output
  if (out / "results.json").exists():  # killed in a save: process 0 wrote the epochs done
    done = json.loads((out / "results.json").read_text())["completed_epochs"]
    assert done < EPOCHS, f"the run finished before the kill {at_kill}"

  again = _launch(args, cache)
  output, _ = again.communicate(timeout=TIMEOUT_S)
  assert again.returncode == 0, output
  resumed = re.search(rf"resumed from epoch (\d+) of {EPOCHS}", output)
  assert resumed and EVERY <= int(resumed.group(1)) < EPOCHS, output
  _assert_same(_history(out), reference)
  result = json.loads((out / "results.json").read_text())
  assert result["device"] == "cpu x2"  # the variants really were spread over 2 processes
  # Process 0 wrote the files and printed the table; process 1 printed no table.
  assert re.search(r"^\[0\] \| SGD \|", output, re.M), output
  assert not re.search(r"^\[1\] \|", output, re.M), output
  assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
      ".lrjax.lock", str(EPOCHS - EVERY), str(EPOCHS), "sweep_config.json"]  # max_to_keep=2


def test_unreachable_coordinator_is_one_clear_error(tmp_path):
  from lrjax import launch
  port = launch.free_port()  # nothing listens there
  t0 = time.monotonic()
  proc = subprocess.run(
      [sys.executable, "-m", "lrjax"] + SWEEP + [
          "--out", str(tmp_path / "out"), "--coordinator", f"127.0.0.1:{port}",
          "--num-processes", "2", "--process-id", "1", "--distributed-timeout", "2"],
      env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)
  assert time.monotonic() - t0 < 60
  assert proc.returncode == 1, proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("lrjax: error: process 1 could not reach the coordinator at "
                         f"127.0.0.1:{port} within 2 s"), proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "out").exists()


def test_processes_with_different_settings_refuse_to_run(tmp_path):
  # Through a sweep file (`lrjax sweep --config`, the `lrjax.sweep` path); the preset goes
  # through the same check in `lrjax.sweep`.  Process 1 is given other epochs.
  (tmp_path / "sweep.toml").write_text(
      'epochs = 1\n[model]\nname = "logistic"\n[data]\ndataset = "synthetic"\n'
      'train_size = 128\n[grid]\nlearning_rate = [0.1, 0.01]\n')
  from lrjax import launch
  coordinator = f"127.0.0.1:{launch.free_port()}"
  procs = [subprocess.Popen(
      [sys.executable, "-m", "lrjax", "sweep", "--config", str(tmp_path / "sweep.toml"),
       "--no-progress", "--out", str(tmp_path / "out"), "--no-checkpoint",
       "--epochs", epochs, "--coordinator", coordinator, "--num-processes", "2",
       "--process-id", str(i)],
      env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
      for i, epochs in enumerate(["1", "2"])]
  for proc in procs:
    _, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("lrjax: error: the 2 processes of this run were not started "
                           "alike (process 1 differs from process 0 in config.epochs"), err
    assert "Traceback" not in err
  assert not (tmp_path / "out" / "results.json").exists()


def test_launcher_refuses_flags_it_sets(capsys):
  from lrjax import launch
  with pytest.raises(SystemExit) as exit_info:
    launch.main(["--local-processes", "2", "--", "sweep", "--process-id", "0"])
  assert exit_info.value.code == 2
  assert "--process-id: set by the launcher" in capsys.readouterr().err


def test_flags_that_do_not_go_together_are_refused():
  from lrjax import distributed
  with pytest.raises(ValueError, match="go together"):
    distributed.check_flags("127.0.0.1:1234", None, None)
  with pytest.raises(ValueError, match="--coordinator must be HOST:PORT"):
    distributed.check_flags("localhost", 2, 0)
  with pytest.raises(ValueError, match="--process-id must be in 0 .. 1"):
    distributed.check_flags("127.0.0.1:1234", 2, 2)
  # No flags: JAX's auto-detection finds no cluster here (and JAX already runs in this
  # process), so the sweep is a single process as before.
  assert distributed.initialize() is False
  assert distributed.is_writer()


SEARCH_FILE = """\
epochs = 4
[data]
dataset = "synthetic"
train_size = 128
[model]
name = "logistic"
[optimizer]
name = "sgd"
[search]
method = "pbt"
population = 6
interval = 2
[search.space]
learning_rate = {log_uniform = [0.001, 0.3]}
"""


def test_two_processes_with_a_controller_decide_what_one_process_decides(tmp_path):
  """PBT over 2 processes (its decisions taken from process 0, its copies gathered
  across them) writes the single-process search: the same lineages and hyperparameters,
  the same curves."""
  from lrjax import cli
  path = tmp_path / "pbt.toml"
  path.write_text(SEARCH_FILE)
  args = ["sweep", "--config", str(path), "--no-progress", "--no-checkpoint"]
  assert cli.main(args + ["--out", str(tmp_path / "one")]) == 0
  proc = _launch(args + ["--out", str(tmp_path / "two")], None)
  output, _ = proc.communicate(timeout=TIMEOUT_S)
  assert proc.returncode == 0, output
  one = json.loads((tmp_path / "one" / "results.json").read_text())["history"]
  two = json.loads((tmp_path / "two" / "results.json").read_text())
  assert two["device"] == "cpu x2"
  assert np.any(np.asarray(one["parent"]) != np.arange(6))  # PBT did copy
  for field in ("alive", "parent", "started"):
    np.testing.assert_array_equal(two["history"][field], one[field], err_msg=field)
  for field in ("valid_loss", "train_loss", "lr", "hparams.learning_rate"):
    np.testing.assert_allclose(np.asarray(two["history"][field], float),
                               np.asarray(one[field], float), rtol=1e-5, atol=1e-6,
                               err_msg=field)


# A stand-in for `python -m lrjax` (found first on PYTHONPATH): process 1 stops answering
# (stopped by SIGSTOP, or hung without being stopped); process 0 then reports JAX's
# missed-heartbeat error and aborts, as jax.distributed's heartbeat check makes it do.
_PEER = r"""
import os, signal, sys, time
index = int(sys.argv[sys.argv.index("--process-id") + 1])
if index == 1:
  print("training", flush=True)
  if sys.argv[1] == "stop":
    os.kill(os.getpid(), signal.SIGSTOP)
  time.sleep(600)
time.sleep(1.0)
print("F0101 coordination_service_agent.cc:332] Terminating process because the JAX "
      "distributed service detected fatal errors. UNAVAILABLE: The following tasks are "
      "unhealthy (stopped sending heartbeats): /job:jax_worker/replica:0/task:1", flush=True)
print("*** Check failure stack trace: ***", flush=True)
os.abort()
"""


@pytest.mark.parametrize("how, says", [
    ("stop", "it was stopped: SIGSTOP, Ctrl-Z or a debugger"),
    ("hang", "it stopped sending heartbeats")])
def test_a_peer_that_stops_answering_is_named_not_the_process_its_heartbeat_ended(
    tmp_path, monkeypatch, how, says):
  import io

  from lrjax import launch
  fake = tmp_path / "fake" / "lrjax"
  fake.mkdir(parents=True)
  (fake / "__init__.py").write_text("")
  (fake / "__main__.py").write_text(_PEER)
  monkeypatch.setenv("PYTHONPATH", str(fake.parent))
  monkeypatch.chdir(tmp_path)  # `python -m` looks in the working folder first
  out = io.StringIO()
  t0 = time.perf_counter()
  status = launch.launch([how], 2, out=out)
  assert time.perf_counter() - t0 < 30
  summary = [line for line in out.getvalue().splitlines()
             if line.startswith("lrjax launch:")][-1]
  assert status == 128 + signal.SIGABRT
  assert re.fullmatch(
      rf"lrjax launch: process 1 \(pid \d+\) stopped answering \({re.escape(says)}; ended "
      r"now\); process 0 \(pid \d+\) was killed by SIGABRT waiting for it \(JAX's heartbeat "
      r"check\); run the same command again to resume from the last checkpoint", summary), \
      summary
