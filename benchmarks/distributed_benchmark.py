"""The same sweep as 1 process and as N processes of one jax.distributed run, side by side.

Each row runs ``lrjax sweep`` (the report's 14 settings, the default model, synthetic
data) from a fresh process: once plainly, once through ``lrjax launch
--local-processes N`` (gloo CPU collectives, one device per process, the variants
split between them).  The work is the same in both rows (14 models x --epochs
epochs); the rows are interleaved (round r runs each once) and repeated ``--repeats``
times, and the table shows medians of

* model-epochs/s: 14 x epochs / the epochs' wall time (as results.json records it,
  compile excluded; the gather of the metrics after each epoch included);
* compile seconds (results.json) and the whole command's wall time (start-up, data,
  compile, checkpoints, files).

On one machine the N processes share its cores (each process's XLA uses all of them),
so this measures the cost of the multi-process machinery, not a speed-up: a speed-up
needs N hosts (or N accelerators).

  python benchmarks/distributed_benchmark.py                       # 2 processes vs 1
  python benchmarks/distributed_benchmark.py --epochs 2 --train-size 256 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--processes", type=int, default=2, help="processes of the launched row")
  p.add_argument("--epochs", type=int, default=3)
  p.add_argument("--train-size", type=int, default=1024)
  p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians)")
  p.add_argument("--json", default=None, help="also write the rows as JSON here")
  return p


def _run(processes: int, args, out: Path) -> dict:
  sweep = ["sweep", "--epochs", str(args.epochs), "--train-size", str(args.train_size),
           "--no-progress", "--no-checkpoint", "--out", str(out)]
  launch = ["launch", "--local-processes", str(processes), "--"] if processes > 1 else []
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO),
                                                     os.environ.get("PYTHONPATH", "")]))
  env.pop("XLA_FLAGS", None)
  t0 = time.perf_counter()
  proc = subprocess.run([sys.executable, "-m", "lrjax"] + launch + sweep, env=env,
                        capture_output=True, text=True, cwd=REPO)
  wall = time.perf_counter() - t0
  if proc.returncode:
    raise SystemExit(f"{processes} process(es) failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
  result = json.loads((out / "results.json").read_text())
  variants = len(result["config"]["variants"])
  epoch_seconds = sum(result["epoch_seconds"])
  return {"processes": processes, "device": result["device"],
          "model_epochs_per_s": variants * args.epochs / epoch_seconds,
          "compile_s": result["compile_seconds"], "wall_s": wall}


def main(argv=None):
  args = parser().parse_args(argv)
  if args.processes < 2:
    raise SystemExit("--processes must be at least 2 (the other row is 1 process)")
  rows = {1: [], args.processes: []}
  with tempfile.TemporaryDirectory() as tmp:
    for r in range(args.repeats):
      for n in rows:
        rows[n].append(_run(n, args, Path(tmp) / f"{n}-{r}"))
  table = []
  for n, runs in rows.items():
    med = {k: statistics.median(run[k] for run in runs)
           for k in ("model_epochs_per_s", "compile_s", "wall_s")}
    table.append(dict(processes=n, device=runs[0]["device"], **med))
  base = table[0]["model_epochs_per_s"]
  print(f"14 settings x {args.epochs} epochs, {args.train_size} training examples, "
        f"medians of {args.repeats} interleaved round(s), load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
  print("| processes | devices | model-epochs/s | vs 1 process | compile s | wall s |")
  print("|---|---|---|---|---|---|")
  for row in table:
    print(f"| {row['processes']} | {row['device']} | {row['model_epochs_per_s']:.2f} | "
          f"{row['model_epochs_per_s'] / base:.2f}x | {row['compile_s']:.1f} | "
          f"{row['wall_s']:.1f} |")
  if args.json:
    Path(args.json).write_text(json.dumps(table, indent=1))
  return table


if __name__ == "__main__":
  main()
