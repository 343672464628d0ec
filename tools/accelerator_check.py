"""Does a sweep on a GPU or TPU give the CPU's numbers?  One command, on the accelerator's
machine (lrjax installed with the accelerator's jax, README "GPUs and TPUs"):

  python tools/accelerator_check.py

It trains the same small sweep twice, each in a fresh process: on the CPU
(``JAX_PLATFORMS=cpu``) and on JAX's default backend (the accelerator), each with the
plan and the convolutions its backend chooses (the CPU: calls side by side and
canonical-layout convolutions; an accelerator: one vmapped program per group, sharded
over the devices when there are several, and im2col convolutions), and compares the two
histories epoch by epoch:

* ``lr``, the rate in use: rtol 1e-6 (a schedule of the step: no backend in it);
* ``train_loss``, ``valid_loss``, ``test_loss``: rtol 2e-3 with atol 1e-4 (float32
  sums in another order, compounded over the run's steps);
* ``valid_acc``, ``test_acc``: within 2 examples of the validation / test set.

Matrix products and convolutions run at "highest" float32 precision in both processes
(``jax_default_matmul_precision``): by default recent NVIDIA GPUs multiply float32 in
TF32 (10 bits of mantissa), which is a different computation, not a bug.  The sweep: the
report's MNIST CNN on 28x28 synthetic images, SGD with a cosine schedule over the run, a
grid of 3 rates x 2 momenta, 3 epochs.  It prints both devices, the largest difference of
every field and PASS or FAIL; exit status 0 on PASS, 1 on FAIL, 2 when the default
backend is the CPU itself (nothing to compare; ``--allow-cpu`` compares the CPU with
itself, which checks this script).  ``--json FILE`` writes the comparison and both
devices.  The tolerances were set on the CPU; this check has not yet been run on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FIELDS = ("lr", "train_loss", "valid_loss", "test_loss", "valid_acc", "test_acc")
LR_RTOL = 1e-6
LOSS_RTOL, LOSS_ATOL = 2e-3, 1e-4
ACC_EXAMPLES = 2  # accuracies may differ by this many examples of their split


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--epochs", type=int, default=3)
  p.add_argument("--train-size", type=int, default=1200,
                 help="synthetic training examples (10%% of them held out for validation)")
  p.add_argument("--model", default="mnist_cnn", help="a built-in model (lrjax.models)")
  p.add_argument("--allow-cpu", action="store_true",
                 help="compare even when the default backend is the CPU (checks the script)")
  p.add_argument("--json", default=None, metavar="FILE", help="write the comparison here")
  p.add_argument("--child", choices=("cpu", "default"), help=argparse.SUPPRESS)
  p.add_argument("--out", default=None, help=argparse.SUPPRESS)
  return p


def run_sweep(args) -> dict:
  """The sweep on this process's default backend: its device and history (lists)."""
  import jax
  jax.config.update("jax_default_matmul_precision", "highest")
  import optax

  import lrjax
  from lrjax.data import synthetic
  from lrjax.models import get_model

  data = synthetic("mnist", num_train=args.train_size, num_test=200, noise=0.6, seed=0)

  def optimizer_fn(h):
    rate = optax.cosine_decay_schedule(h["learning_rate"], h["total_steps"])
    return optax.inject_hyperparams(optax.sgd)(learning_rate=rate, momentum=h["momentum"])

  grid = lrjax.train.grid(learning_rate=[0.1, 0.03, 0.01], momentum=[0.0, 0.9])
  result = lrjax.sweep(get_model(args.model), data, optimizer_fn, grid, epochs=args.epochs,
                       batch_size=64, progress=False)
  device = jax.devices()[0]
  kind = getattr(device, "device_kind", "")
  return {"backend": jax.default_backend(), "devices": len(jax.devices()),
          "device": f"{device.platform} ({kind})" if kind and kind != device.platform
                    else device.platform,
          "plans": [plan.get("reason") for plan in result.plans],
          "names": list(result.names),
          "valid_size": int(len(data.valid_x)), "test_size": int(len(data.test_x)),
          "history": {f: result.history[f].tolist() for f in FIELDS}}


def _child(which: str, args, folder: Path) -> dict:
  out = folder / f"{which}.json"
  env = dict(os.environ)
  if which == "cpu":
    env["JAX_PLATFORMS"] = "cpu"
  command = [sys.executable, __file__, "--child", which, "--out", str(out),
             "--epochs", str(args.epochs), "--train-size", str(args.train_size),
             "--model", args.model]
  subprocess.run(command, env=env, check=True)
  return json.loads(out.read_text())


def compare(cpu: dict, other: dict) -> tuple[bool, dict[str, float]]:
  """(every field within its tolerance, the largest difference of each field)."""
  import numpy as np
  ok, worst = True, {}
  for field in FIELDS:
    a = np.asarray(cpu["history"][field], np.float64)
    b = np.asarray(other["history"][field], np.float64)
    if a.shape != b.shape:
      return False, {field: float("inf")}
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    worst[field] = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff)))
    if field == "lr":
      good = both_nan | np.isclose(a, b, rtol=LR_RTOL, atol=0.0)
    elif field.endswith("_loss"):
      good = both_nan | np.isclose(a, b, rtol=LOSS_RTOL, atol=LOSS_ATOL)
    else:
      size = cpu["valid_size"] if field.startswith("valid") else cpu["test_size"]
      good = both_nan | (diff <= ACC_EXAMPLES / size + 1e-9)
    ok &= bool(good.all())
  return ok, worst


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.child:
    Path(args.out).write_text(json.dumps(run_sweep(args)))
    return 0
  with tempfile.TemporaryDirectory() as tmp:
    other = _child("default", args, Path(tmp))
    if other["backend"] == "cpu" and not args.allow_cpu:
      print("accelerator_check: JAX's default backend here is the CPU: no accelerator to "
            "compare (install jax for it, README 'GPUs and TPUs'; --allow-cpu checks the "
            "script on the CPU alone)", file=sys.stderr)
      return 2
    cpu = _child("cpu", args, Path(tmp))
  ok, worst = compare(cpu, other)
  print(f"CPU:   {cpu['device']} ({cpu['devices']} device(s)); plan: {cpu['plans'][0]}")
  print(f"other: {other['device']} ({other['devices']} device(s)); plan: {other['plans'][0]}")
  for field, value in worst.items():
    print(f"  {field:10s} largest difference {value:.3g}")
  print(f"tolerances: lr rtol {LR_RTOL:g}; losses rtol {LOSS_RTOL:g} atol {LOSS_ATOL:g}; "
        f"accuracies {ACC_EXAMPLES} examples")
  print("PASS" if ok else "FAIL")
  if args.json:
    Path(args.json).write_text(json.dumps(
        {"pass": ok, "largest_difference": worst, "cpu": cpu["device"],
         "other": other["device"], "other_devices": other["devices"]}, indent=1))
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
