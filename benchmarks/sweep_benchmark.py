"""Speed of the sweep engine against what users would otherwise run, side by side.

For the report's MNIST CNN and CIFAR-10 CNN (SGD, batch 64), every row does the SAME
work per model-epoch: one pass over the training images (one SGD step per batch) plus
one evaluation of the validation and the test images.  Rows:

  (1) PyTorch eager: the usual loop, data already in memory, one row per thread count
      of ``--threads`` (set explicitly; on a loaded machine 2 threads can be ~10x
      slower than 1), the fastest is the baseline; skipped with a message when torch
      does not import;
  (2) a per-step `jax.jit` loop driven from Python (the Flax-examples pattern);
  (3) lrjax single model: `run_sweep` with one variant;
  (4) lrjax sweep of the report's 14 settings through `run_sweep`, automatic plan;
  (5) the same sweep with each plan forced (``--plans``: variants per compiled call,
      ``N:C`` also forces C calls at once; ``1:1`` = one variant after another).

All rows run in one process, interleaved (round r runs every row once) and repeated
``--repeats`` times; the table shows medians.  Rows (3)-(5) time the second epoch of a
two-epoch run (steady state, as the warmed-up rows (1)-(2)); the first epoch's one-off
extra is printed apart.  Ratios are against PyTorch eager and
against the best single-model row ((2) or (3), whichever is faster).  The percent of
peak divides the work's FLOPs (XLA's count of one training step and one evaluation
batch, times their numbers) by the float32 GEMM peak measured here (``--gemm-size``).
Separately: the training step alone inside a scan (percent of peak), the evaluation
batch per backend (200 vs 1000), and an estimate of the full Table 1 run (14 settings,
50 epochs, 54,000 training images, validation and test every epoch).

  python benchmarks/sweep_benchmark.py                                  # MNIST + CIFAR
  python benchmarks/sweep_benchmark.py --models mnist_cnn --repeats 5   # MNIST only
  python benchmarks/sweep_benchmark.py --models mnist_cnn --train-size 128 --repeats 1 --plans 1:1 1 14 --no-torch
"""  # noqa: E501 (each command on one line: copied as it is, run by the tests)

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import models
from lrjax.data.dataset import Dataset
from lrjax.train import SweepConfig, report_variants, run_sweep
from lrjax.train.engine import plan as plan_lib
from lrjax.train.engine.step import TrainState, evaluate, task_loss, train_step
from lrjax.train.frontends import optimizers

SHAPES = {"mnist_cnn": (28, 28, 1), "cifar_cnn": (32, 32, 3)}
# Table 1 of the report: MNIST, 54,000 training / 6,000 validation / 10,000 test images.
TABLE1 = {"settings": 14, "epochs": 50, "train": 54_000, "valid": 6_000, "test": 10_000}
TARGETS = {"mnist_cnn": {"sweep": 1.8, "single": 2.0}, "cifar_cnn": {"sweep": 1.5}}


@functools.cache  # read once per run: every row's record names the device
def cpu_model() -> str:
  """The processor's name (Linux's /proc/cpuinfo, else `platform.processor`) and the
  cores this process may use (those the plan counts): the ratios against PyTorch differ
  between CPU models (BUILD.md, "Speed")."""
  fields = {}
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      key, _, value = line.partition(":")
      fields.setdefault(key.strip(), value.strip())
  except OSError:
    pass
  name = fields.get("model name", "")
  if name and fields.get("model"):  # virtual machines often name only the vendor
    name = f"{name} model {fields['model']}"
  return f"{name or platform.processor() or 'unknown CPU'}, {plan_lib.cpu_cores()} cores"


def _device_name() -> str:
  d = jax.devices()[0]
  name = f"{d.platform}:{getattr(d, 'device_kind', '')} x{jax.device_count()}"
  return f"{name} ({cpu_model()})" if d.platform == "cpu" else name


def _data(shape, n, seed):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n,) + shape).astype(np.float32),
          rng.integers(0, 10, size=n).astype(np.int32))


def make_dataset(name: str, train: int) -> Dataset:
  """Random images with the Table 1 proportions of validation and test images."""
  shape = SHAPES[name]
  valid, test = (max(1, round(train * TABLE1[k] / TABLE1["train"])) for k in ("valid", "test"))
  tx, ty = _data(shape, train, 0)
  vx, vy = _data(shape, valid, 1)
  sx, sy = _data(shape, test, 2)
  return Dataset(name=f"random_{name}", train_x=tx, train_y=ty, valid_x=vx, valid_y=vy,
                 test_x=sx, test_y=sy, num_classes=10)


def gemm_fn(size: int):
  """One float32 GEMM of ``size``^2 (XLA's dot) as a callable, and its FLOPs.

  It runs inside every round of the interleaved measurement, so the peak is measured
  under the same load as the rows (on a shared machine a separate measurement would
  not be comparable)."""
  a = jnp.asarray(np.random.default_rng(0).normal(size=(size, size)), jnp.float32)
  dot = jax.jit(lambda a: a @ a)
  dot(a).block_until_ready()

  def burst() -> float:  # the fastest of five: the peak available under this round's load
    times = []
    for _ in range(5):
      t0 = time.perf_counter()
      dot(a).block_until_ready()
      times.append(time.perf_counter() - t0)
    return min(times)

  return burst, 2.0 * size**3


# -- (1) PyTorch eager ---------------------------------------------------------------------

def torch_net(name: str, shape=None):
  """The PyTorch twin of lrjax's ``name`` model (``mnist_cnn``, ``cifar_cnn``; ``tiny``:
  logistic regression of ``shape`` inputs) as a constructor, or None without torch."""
  try:
    import torch.nn as tnn
    import torch.nn.functional as F
  except Exception:  # noqa: BLE001 - any import failure means "not available"
    return None
  if name == "mnist_cnn":
    class Net(tnn.Module):
      def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(1, 20, 3)
        self.fc1, self.fc2 = tnn.Linear(3380, 128), tnn.Linear(128, 10)

      def forward(self, t):
        t = F.relu(F.max_pool2d(self.conv(t), 2))
        return self.fc2(F.relu(self.fc1(t.flatten(1))))
  elif name == "cifar_cnn":
    class Net(tnn.Module):
      def __init__(self):
        super().__init__()
        self.convs = tnn.ModuleList([tnn.Conv2d(3, 16, 3, padding=1),
                                     tnn.Conv2d(16, 32, 3, padding=1),
                                     tnn.Conv2d(32, 64, 3, padding=1)])
        self.fc1, self.fc2 = tnn.Linear(1024, 500), tnn.Linear(500, 10)
        self.drop = tnn.Dropout(0.25)

      def forward(self, t):
        for c in self.convs:
          t = F.max_pool2d(F.elu(c(t)), 2)
        t = self.drop(t.flatten(1))
        return self.fc2(self.drop(F.elu(self.fc1(t))))
  else:
    features = int(np.prod(shape))

    class Net(tnn.Module):
      def __init__(self):
        super().__init__()
        self.linear = tnn.Linear(features, 10)

      def forward(self, t):
        return self.linear(t.flatten(1))
  return Net


def torch_epoch_fn(name, ds, batch_size, eval_batch, threads):
  """One PyTorch epoch (train + evaluation) as a callable, or None without torch."""
  Net = torch_net(name, ds.train_x.shape[1:])
  if Net is None:
    return None
  import torch
  import torch.nn.functional as F
  device = "cuda" if torch.cuda.is_available() else "cpu"
  net = Net().to(device)
  opt = torch.optim.SGD(net.parameters(), lr=0.01)
  to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(device)
  tx, ty = to_t(ds.train_x), torch.from_numpy(ds.train_y.astype(np.int64)).to(device)
  evals = [(to_t(x), torch.from_numpy(y.astype(np.int64)).to(device))
           for x, y in ((ds.valid_x, ds.valid_y), (ds.test_x, ds.test_y))]
  steps = len(tx) // batch_size

  def epoch():
    torch.set_num_threads(threads)  # per call: rows with other counts run in between
    net.train()
    perm = torch.randperm(len(tx), device=device)
    for i in range(steps):
      idx = perm[i * batch_size:(i + 1) * batch_size]
      opt.zero_grad(set_to_none=True)
      F.cross_entropy(net(tx[idx]), ty[idx]).backward()
      opt.step()
    net.eval()
    with torch.no_grad():
      for x, y in evals:
        for i in range(0, len(x), eval_batch):
          out = net(x[i:i + eval_batch])
          F.cross_entropy(out, y[i:i + eval_batch], reduction="sum").item()
          (out.argmax(1) == y[i:i + eval_batch]).sum().item()
    if device == "cuda":
      torch.cuda.synchronize()

  return epoch


# -- (2) per-step jit loop ------------------------------------------------------------------

def jit_loop_epoch_fn(model, ds, batch_size, eval_batch):
  """A per-step `jax.jit` loop (train + evaluation) as a callable."""
  params = model.init(jax.random.PRNGKey(0), ds.train_x[:1])["params"]
  tx = optax.sgd(0.01)
  holder = {"p": params, "o": tx.init(params), "e": 0}
  data = jax.device_put((ds.train_x, ds.train_y))
  evals = jax.device_put([(ds.valid_x, ds.valid_y), (ds.test_x, ds.test_y)])
  steps = len(ds.train_x) // batch_size

  @jax.jit
  def step(params, opt_state, idx, key):
    def loss_fn(p):
      out = model.apply({"params": p}, data[0][idx], train=True, rngs={"dropout": key})
      return task_loss(out, data[1][idx], "classification")
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  @jax.jit
  def eval_batch_fn(params, x, y):
    out = model.apply({"params": params}, x)
    return (optax.softmax_cross_entropy_with_integer_labels(out, y).sum(),
            jnp.sum(jnp.argmax(out, -1) == y))

  def epoch():
    perm = jax.random.permutation(jax.random.PRNGKey(holder["e"]), len(ds.train_x))
    p, o = holder["p"], holder["o"]
    for i in range(steps):
      p, o = step(p, o, perm[i * batch_size:(i + 1) * batch_size], jax.random.PRNGKey(i))
    sums = [eval_batch_fn(p, x[i:i + eval_batch], y[i:i + eval_batch])
            for x, y in evals for i in range(0, len(x), eval_batch)]
    jax.block_until_ready((p, sums))
    holder.update(p=p, o=o, e=holder["e"] + 1)

  return epoch


# -- (3)-(5) run_sweep -------------------------------------------------------------------------

# Epochs of every run_sweep row: the first epoch of a freshly compiled program pays
# one-off costs (first touch of its buffers, thread-pool and library warm-up: about
# 40 ms for the MNIST CNN here, a third of a 2,048-image epoch) that the warmed-up
# PyTorch and jit-loop rows do not; a user's run pays them once in 50 epochs.  The row
# is the last epoch (steady state); the first epoch's extra is printed apart.
SWEEP_EPOCHS = 2


def sweep_epoch_fn(name, ds, variants, batch_size, per_call, eval_batch, conv_impl,
                   at_once=0):
  """`run_sweep` of `SWEEP_EPOCHS` epochs: returns the last epoch's seconds (compile
  excluded); ``info`` gets the plans and the first epoch's extra seconds."""
  config = SweepConfig(model=name, variants=tuple(variants), epochs=SWEEP_EPOCHS,
                       batch_size=batch_size, eval_batch_size=eval_batch,
                       variants_per_call=per_call, concurrent_calls=at_once,
                       model_kwargs={"conv_impl": conv_impl}, checkpoint_every=0)
  info = {"first_epoch_extra": []}

  def epoch():
    result = run_sweep(config, ds, progress=False)
    info["plans"] = result.plans
    seconds = np.asarray(result.epoch_seconds, float)
    info["first_epoch_extra"].append(float(seconds[0] - seconds[-1]))
    return float(seconds[-1])

  return epoch, info


def work_flops(model, ds, batch_size, eval_batch) -> float:
  """XLA's FLOP count of one model-epoch's work: training steps + evaluation batches."""
  params = model.init(jax.random.PRNGKey(0), ds.train_x[:1])["params"]
  x = jnp.zeros((batch_size,) + ds.train_x.shape[1:])
  y = jnp.zeros((batch_size,), jnp.int32)

  def step(p):
    return jax.grad(lambda p: task_loss(model.apply({"params": p}, x, train=True,
                                                    rngs={"dropout": jax.random.PRNGKey(0)}),
                                        y, "classification"))(p)

  def flops(fn, *args):
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float((cost or {}).get("flops", float("nan")))

  xe = jnp.zeros((eval_batch,) + ds.train_x.shape[1:])
  per_step = flops(step, params)
  per_eval_image = flops(lambda p: model.apply({"params": p}, xe), params) / eval_batch
  steps = len(ds.train_x) // batch_size
  return steps * per_step + (len(ds.valid_x) + len(ds.test_x)) * per_eval_image, per_step


def scanned_steps_fn(model, ds, batch_size):
  """The engine's `train_step` alone, scanned over one epoch (no evaluation)."""
  ((spec, hyper, _),) = optimizers.group_variants(report_variants()[:1])
  one = jax.tree.map(lambda a: a[0], hyper)
  tx = optimizers.make_transform(spec, one)
  variables = dict(model.init(jax.random.PRNGKey(0), ds.train_x[:1]))
  params = variables.pop("params")
  state = TrainState(params, variables, tx.init(params), jnp.float32(jnp.inf), jnp.int32(0))
  x, y = jax.device_put((ds.train_x, ds.train_y))
  steps = len(ds.train_x) // batch_size

  @jax.jit
  def epoch(state):
    def body(st, i):
      bx = jax.lax.dynamic_slice_in_dim(x, i * batch_size, batch_size)
      by = jax.lax.dynamic_slice_in_dim(y, i * batch_size, batch_size)
      return train_step(model, tx, "classification", st, bx, by, jax.random.PRNGKey(0),
                        jnp.asarray(False))[0], None
    return jax.lax.scan(body, state, jnp.arange(steps))[0]

  epoch(state)
  return lambda: jax.block_until_ready(epoch(state)), steps


def eval_fn(model, ds, batch, n=2000):
  """The engine's `evaluate` of ``n`` images (a whole number of batches for 200 and
  1000, so no row pads more than another) as a callable."""
  variables = dict(model.init(jax.random.PRNGKey(0), ds.train_x[:1]))
  params = variables.pop("params")
  x, y = jax.device_put(_data(ds.train_x.shape[1:], n, 3))
  fn = jax.jit(lambda p: evaluate(model, "classification", p, variables, x, y, batch))
  fn(params)
  return lambda: jax.block_until_ready(fn(params))


def _interleave(fns: dict, repeats: int) -> dict:
  """Median seconds of each callable, called round-robin ``repeats`` times (after one
  warm-up round).  A callable may return its own seconds (run_sweep's epoch time)."""
  samples = {k: [] for k in fns}
  for r in range(repeats + 1):
    for k, fn in fns.items():
      t0 = time.perf_counter()
      own = fn()
      t = own if isinstance(own, float) else time.perf_counter() - t0
      if r > 0:
        samples[k].append(t)
  return {k: statistics.median(v) for k, v in samples.items()}, samples


def run(name, args, out_rows):
  ds = make_dataset(name, args.train_size)
  eval_batch = plan_lib.eval_batch_size(args.eval_batch_size)
  model = models.get_model(name, conv_impl=args.conv_impl)
  variants = report_variants()  # the 14 settings: SGD group (13) + Adam (1)
  k = len(variants)
  print(f"\n== {name}: {len(ds.train_x)} training, {len(ds.valid_x)} validation, "
        f"{len(ds.test_x)} test images; batch {args.batch_size}; evaluation batch "
        f"{eval_batch}; conv {args.conv_impl} ({models.default_conv_impl()} when auto); "
        f"device {_device_name()}; {args.repeats} interleaved rounds, medians")
  fns, per_models = {}, {}
  torch_rows = []
  for threads in ([] if args.no_torch else sorted(set(args.threads))):
    torch_fn = torch_epoch_fn(name, ds, args.batch_size, eval_batch, threads)
    if torch_fn is None:
      break
    row = f"(1) PyTorch eager, {threads} thread(s)"
    fns[row], per_models[row] = torch_fn, 1
    torch_rows.append(row)
  if not torch_rows:
    print("  (1) PyTorch eager: skipped (" + ("--no-torch" if args.no_torch
                                              else "torch is not importable") + ")")
  fns["(2) jax.jit per-step loop"] = jit_loop_epoch_fn(model, ds, args.batch_size, eval_batch)
  per_models["(2) jax.jit per-step loop"] = 1
  single, single_info = sweep_epoch_fn(name, ds, variants[:1], args.batch_size, 0,
                                       eval_batch, args.conv_impl)
  fns["(3) lrjax single model"] = single
  per_models["(3) lrjax single model"] = 1
  infos = {}
  auto, infos["(4) lrjax 14-setting sweep, auto plan"] = sweep_epoch_fn(
      name, ds, variants, args.batch_size, 0, eval_batch, args.conv_impl)
  fns["(4) lrjax 14-setting sweep, auto plan"] = auto
  per_models["(4) lrjax 14-setting sweep, auto plan"] = k
  for per_call, at_once in args.plans:
    row = f"(5) lrjax 14-setting sweep, {per_call} per call" + (
        f", {at_once} at once" if at_once else "")
    fns[row], infos[row] = sweep_epoch_fn(name, ds, variants, args.batch_size, per_call,
                                          eval_batch, args.conv_impl, at_once)
    per_models[row] = k
  gemm, gemm_flops = gemm_fn(args.gemm_size)
  fns["GEMM"] = gemm
  medians, samples = _interleave(fns, args.repeats)
  peak = gemm_flops / medians.pop("GEMM")
  print(f"  measured float32 GEMM peak ({args.gemm_size}^2, interleaved with the rows): "
        f"{peak / 1e9:.1f} GFLOP/s; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores")
  out_rows.append({"model": name, "row": "gemm peak", "gflops": peak / 1e9,
                   "load_average": os.getloadavg()[0], "device": _device_name()})
  flops, step_flops = work_flops(model, ds, args.batch_size, eval_batch)
  per_model = {r: medians[r] / per_models[r] for r in medians}
  torch_s = min((per_model[r] for r in torch_rows), default=None)  # the best PyTorch
  best_single = min(per_model["(2) jax.jit per-step loop"], per_model["(3) lrjax single model"])
  width = max(len(r) for r in per_model)
  print(f"  {'row':{width}s} {'s/model-epoch':>13s} {'vs best(1)':>10s} {'vs best 1':>9s} "
        f"{'GFLOP/s':>8s} {'of peak':>7s}  plan")
  for r, s in per_model.items():
    vs_torch = f"{torch_s / s:9.2f}x" if torch_s else "       n/a"
    gflops = flops / s / 1e9
    plan = ""
    if r in infos and infos[r].get("plans"):
      plan = " + ".join(f"{p['num_variants']}:{p['variants_per_call']}/call"
                        + (f" x{p['concurrent_calls']}" if p["concurrent_calls"] > 1 else "")
                        for p in infos[r]["plans"])
    print(f"  {r:{width}s} {s:13.4f} {vs_torch} {best_single / s:8.2f}x {gflops:8.1f} "
          f"{gflops * 1e9 / peak:7.1%}  {plan}")
    out_rows.append({"model": name, "row": r, "seconds_per_model_epoch": s,
                     "samples": samples[r], "vs_torch": torch_s / s if torch_s else None,
                     "vs_best_single": best_single / s, "gflops": gflops,
                     "of_peak": gflops * 1e9 / peak, "plans": infos.get(r, {}).get("plans"),
                     "train_size": len(ds.train_x), "device": _device_name()})
  extra = statistics.median(single_info["first_epoch_extra"])
  # A negative extra is the machine's noise (the first epoch was the faster one).
  longer = "longer" if extra >= 0 else "less (noise: no one-off cost seen)"
  print(f"  lrjax rows are steady-state epochs (epoch {SWEEP_EPOCHS} of {SWEEP_EPOCHS}); the "
        f"first epoch of a run took {abs(extra) * 1e3:.0f} ms {longer} (single model, "
        f"median), once per run")
  auto_s = per_model["(4) lrjax 14-setting sweep, auto plan"]
  # Sequential: one variant per call, one call at a time (else one per call).
  seq_rows = ([r for r in per_model if r.endswith(", 1 per call, 1 at once")]
              or [r for r in per_model if r.endswith(", 1 per call")])
  if seq_rows:
    seq_s = per_model[seq_rows[0]]
    shape = lambda row: [(p["variants_per_call"], p["concurrent_calls"])
                         for p in infos[row].get("plans") or []]
    same = shape("(4) lrjax 14-setting sweep, auto plan") == shape(seq_rows[0])
    verdict = ("the same plan: the difference is noise" if same
               else "OK" if auto_s <= seq_s * 1.05 else "SLOWER")
    what = seq_rows[0].split("sweep, ")[1]
    print(f"  check: auto plan vs {what}: {seq_s / auto_s:.2f}x ({verdict}; the automatic "
          f"plan must not be slower than sequential, 5% noise allowed)")
  # Training step alone (no evaluation): percent of the GEMM peak.
  steps_fn, steps = scanned_steps_fn(model, ds, args.batch_size)
  step_med = _interleave({"steps": steps_fn, "GEMM": gemm}, args.repeats)[0]
  step_s, peak = step_med["steps"] / steps, gemm_flops / step_med["GEMM"]
  print(f"  training step alone inside lax.scan: {step_s * 1e3:.2f} ms, "
        f"{step_flops / step_s / 1e9:.1f} GFLOP/s = {step_flops / step_s / peak:.1%} of the "
        f"GEMM peak measured beside it ({peak / 1e9:.1f} GFLOP/s)")
  out_rows.append({"model": name, "row": "training step in scan", "seconds": step_s,
                   "of_peak": step_flops / step_s / peak, "device": _device_name()})
  # Evaluation batch: the backend's default against the others asked for.
  evals = {b: eval_fn(model, ds, b) for b in sorted(set(args.eval_batch_sizes) | {eval_batch})}
  eval_med = _interleave(evals, args.repeats)[0]
  print("  evaluation of 2,000 images by batch: " + ", ".join(
      f"{b}: {s * 1e3:.1f} ms" for b, s in eval_med.items()) + f" (default here {eval_batch})")
  out_rows.append({"model": name, "row": "evaluation batch", "ms": {str(b): s * 1e3 for b, s
                                                                  in eval_med.items()}})
  target = TARGETS.get(name, {})
  if torch_s:
    print(f"  targets: sweep {torch_s / auto_s:.2f}x PyTorch (target {target.get('sweep')}x)"
          + (f"; single model {torch_s / best_single:.2f}x (target {target['single']}x)"
             if "single" in target else ""))
  if name == "mnist_cnn":
    scale = TABLE1["train"] / len(ds.train_x)
    minutes = auto_s * scale * TABLE1["settings"] * TABLE1["epochs"] / 60
    print(f"  estimate of the full Table 1 run (14 settings, 50 epochs, 54,000 training "
          f"images, validation + test every epoch): {minutes:.0f} min on this device")
    out_rows.append({"model": name, "row": "table1 estimate", "minutes": minutes})


def _plan_arg(text: str) -> tuple[int, int]:
  """``--plans`` item: ``N`` or ``N:C`` -> (variants per call, calls at once; 0 = auto)."""
  per_call, _, at_once = str(text).partition(":")
  try:
    value = int(per_call), int(at_once or 0)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not N or N:C (whole numbers)") from None
  if value[0] < 1 or value[1] < 0 or (at_once and value[1] < 1):
    raise argparse.ArgumentTypeError(f"{text!r}: N and C must be at least 1")
  return value


def parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--models", nargs="+", default=["mnist_cnn", "cifar_cnn"],
                      choices=sorted(SHAPES))
  parser.add_argument("--train-size", type=int, default=4096,
                      help="training images per epoch (validation/test in Table 1's ratio)")
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--eval-batch-size", type=int, default=0,
                      help="evaluation batch of every row (0: the backend's default)")
  parser.add_argument("--eval-batch-sizes", type=int, nargs="+", default=[200, 1000],
                      help="evaluation batches timed against each other")
  parser.add_argument("--plans", type=_plan_arg, nargs="+",
                      default=[(1, 1), (1, 0), (4, 0), (14, 0)],
                      help="plans to force, one row each: N variants per compiled call, "
                           "or N:C for C calls at once too (1:1 = one after another)")
  parser.add_argument("--conv-impl", default="auto", choices=models.CONV_IMPLS)
  parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians)")
  parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count()}),
                      help="PyTorch intra-op thread counts, one row each (default: 1 and "
                           "every core)")
  parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch row")
  parser.add_argument("--gemm-size", type=int, default=1024,
                      help="matrix size of the GEMM peak measurement")
  parser.add_argument("--json", default=None, help="also write the rows as JSON here")
  return parser


def example_commands() -> list[list[str]]:
  """The command lines of this module's docstring (run by the tests)."""
  prefix = "python benchmarks/sweep_benchmark.py"
  return [line.split("#")[0].split()[2:] for line in __doc__.splitlines()
          if line.strip().startswith(prefix)]


def main(argv=None):
  parser_ = parser()
  args = parser_.parse_args(argv)
  for flag in ("train_size", "batch_size", "repeats", "gemm_size"):
    if getattr(args, flag) < 1:
      parser_.error(f"--{flag.replace('_', '-')} must be at least 1")
  if min(args.threads) < 1:
    parser_.error("--threads must be at least 1")
  if args.train_size < args.batch_size:
    parser_.error("--train-size must be at least --batch-size")
  # run_sweep recompiles for every round; the persistent cache turns that into a load.
  cache = tempfile.mkdtemp(prefix="lrjax_bench_cache_")
  jax.config.update("jax_compilation_cache_dir", cache)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  print(f"device {_device_name()}; PyTorch threads {sorted(set(args.threads))}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
  rows = []
  for name in args.models:
    run(name, args, rows)
  if args.json:
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))
  return rows


if __name__ == "__main__":
  main()
  sys.exit(0)
