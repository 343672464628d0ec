"""Speed of the sweep engine against what users would otherwise run, side by side.

For the report's MNIST CNN and CIFAR-10 CNN (SGD, batch 64, one epoch), measures
model-epochs per second of

  1. a PyTorch eager loop with the data already on the device (when torch imports),
  2. a per-step `jax.jit` loop driven from Python (the Flax-examples pattern),
  3. lrjax's single-model scanned epoch,
  4. lrjax's vmapped sweep of K variants (K = 14 and 56 by default), with the models'
     convolutions as XLA convolutions ("xla") and as im2col matrix products ("im2col"),
  5. the same sweep sharded over all devices, when there are several,

and prints every rate as a ratio against (1) and against K sequential runs of (3),
the achieved FLOP/s (from XLA's cost analysis) against the device peak when known,
and compile times apart.  Everything is measured in this one run, on this device.

  python benchmarks/sweep_benchmark.py                   # full size (use a GPU)
  python benchmarks/sweep_benchmark.py --train-size 1024 --ks 2 4 --epochs 1   # CPU smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import models
from lrjax.train import Variant, optimizers, report_variants
from lrjax.train import epoch as epoch_lib
from lrjax.train.step import task_loss

# Dense bf16/fp32 peaks (FLOP/s) used for the utilisation column; None = unknown.
PEAK_FLOPS = {"H100": {"float32": 67e12, "tf32": 495e12},
              "H200": {"float32": 67e12, "tf32": 495e12}}

SHAPES = {"mnist_cnn": ((28, 28, 1), 60000), "cifar_cnn": ((32, 32, 3), 50000)}


def _device_name() -> str:
  d = jax.devices()[0]
  return f"{d.platform}:{getattr(d, 'device_kind', '')} x{jax.device_count()}"


def _peak() -> float | None:
  kind = getattr(jax.devices()[0], "device_kind", "")
  for name, peaks in PEAK_FLOPS.items():
    if name in kind:
      return peaks["tf32"] * jax.device_count()
  return None


def _data(shape, n, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n,) + shape).astype(np.float32)
  y = rng.integers(0, 10, size=n).astype(np.int32)
  return x, y


def _timeit(fn, repeats):
  fn()  # warm-up (and compile for jit paths)
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t0)
  return best


def bench_torch(model_name, x, y, batch_size, repeats):
  try:
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F
  except Exception:  # noqa: BLE001 - any import failure means "not available"
    return None
  device = "cuda" if torch.cuda.is_available() else "cpu"

  if model_name == "mnist_cnn":
    class Net(tnn.Module):
      def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(1, 20, 3)
        self.fc1 = tnn.Linear(3380, 128)
        self.fc2 = tnn.Linear(128, 10)

      def forward(self, t):
        t = F.relu(F.max_pool2d(self.conv(t), 2))
        return self.fc2(F.relu(self.fc1(t.flatten(1))))
  else:
    class Net(tnn.Module):
      def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = tnn.Conv2d(3, 16, 3, padding=1), tnn.Conv2d(16, 32, 3, padding=1), tnn.Conv2d(32, 64, 3, padding=1)
        self.fc1, self.fc2 = tnn.Linear(1024, 500), tnn.Linear(500, 10)
        self.drop = tnn.Dropout(0.25)

      def forward(self, t):
        for c in (self.c1, self.c2, self.c3):
          t = F.max_pool2d(F.elu(c(t)), 2)
        t = self.drop(t.flatten(1))
        return self.fc2(self.drop(F.elu(self.fc1(t))))

  net = Net().to(device)
  opt = torch.optim.SGD(net.parameters(), lr=0.01)
  tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)
  ty = torch.from_numpy(y.astype(np.int64)).to(device)
  steps = len(x) // batch_size

  def epoch():
    perm = torch.randperm(len(x), device=device)
    for i in range(steps):
      idx = perm[i * batch_size:(i + 1) * batch_size]
      opt.zero_grad(set_to_none=True)
      loss = F.cross_entropy(net(tx[idx]), ty[idx])
      loss.backward()
      opt.step()
    if device == "cuda":
      torch.cuda.synchronize()

  return _timeit(epoch, repeats)


def bench_jit_loop(model, x, y, batch_size, repeats):
  params = model.init(jax.random.PRNGKey(0), x[:1])["params"]
  tx = optax.sgd(0.01)
  opt_state = tx.init(params)
  dx, dy = jax.device_put(x), jax.device_put(y)
  steps = len(x) // batch_size

  @jax.jit
  def step(params, opt_state, bx, by, key):
    def loss_fn(p):
      return task_loss(model.apply({"params": p}, bx, train=True, rngs={"dropout": key}), by,
                       "classification")
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  state = {"p": params, "o": opt_state}

  def epoch():
    perm = jax.random.permutation(jax.random.PRNGKey(1), len(x))
    p, o = state["p"], state["o"]
    for i in range(steps):
      idx = perm[i * batch_size:(i + 1) * batch_size]
      p, o = step(p, o, dx[idx], dy[idx], jax.random.PRNGKey(i))
    jax.block_until_ready(p)
    state["p"], state["o"] = p, o

  return _timeit(epoch, repeats)


def bench_engine(model, variants, data, batch_size, repeats, mesh=None):
  """(seconds per epoch, compile seconds, FLOPs per epoch) of one group of variants."""
  ((spec, hyper, _),) = optimizers.group_variants(variants)
  trainer = epoch_lib.GroupTrainer(model, spec, hyper, task="classification",
                                   batch_size=batch_size, eval_batch_size=1000, mesh=mesh)
  state = trainer.init(data.train_x[:1])
  compile_s = trainer.compile(state, data)
  flops = float(trainer.cost_analysis().get("flops", float("nan")))
  holder = {"s": state, "e": 0}

  def epoch():
    holder["s"], metrics = trainer.run_epoch(holder["s"], data, holder["e"])
    jax.block_until_ready(metrics)
    holder["e"] += 1

  return _timeit(epoch, repeats), compile_s, flops


def sgd_variants(k):
  """k SGD variants with different sequences/strategies (one optimizer group)."""
  base = [v for v in report_variants() if v.optimizer == "sgd"]  # 13 settings
  return tuple(Variant(f"{b.name} #{i}", b.sequence, b.rule, b.learning_rate * (1 + i // 13))
               for i, b in ((i, base[i % len(base)]) for i in range(k)))


def run(model_name, args, out_rows):
  shape, full_n = SHAPES[model_name]
  n = args.train_size or full_n
  x, y = _data(shape, n)
  vx, vy = _data(shape, 1000, seed=1)
  dataset = epoch_lib.DeviceData(*jax.device_put((x, y, vx, vy, vx, vy)))
  print(f"\n== {model_name}: {n} training images, batch {args.batch_size}, device {_device_name()}")
  rows = {}
  t = bench_torch(model_name, x, y, args.batch_size, args.repeats)
  if t is None:
    print("  (1) PyTorch eager: torch not importable, skipped")
  else:
    rows["(1) PyTorch eager loop"] = {"k": 1, "s": t}
  model = models.get_model(model_name)
  rows["(2) jax.jit per-step loop"] = {"k": 1, "s": bench_jit_loop(model, x, y, args.batch_size,
                                                                      args.repeats)}
  single = sgd_variants(1)
  s, c, f = bench_engine(model, single, dataset, args.batch_size, args.repeats)
  rows["(3) lrjax scanned epoch, 1 model"] = {"k": 1, "s": s, "compile": c, "flops": f}
  for impl in args.conv_impls:
    impl_model = models.get_model(model_name, conv_impl=impl)
    for k in args.ks:
      s, c, f = bench_engine(impl_model, sgd_variants(k), dataset, args.batch_size, args.repeats)
      rows[f"(4) lrjax vmapped sweep K={k} conv={impl}"] = {"k": k, "s": s, "compile": c, "flops": f}
      mesh = epoch_lib.variant_mesh()
      if mesh is not None:
        s, c, f = bench_engine(impl_model, sgd_variants(k), dataset, args.batch_size,
                               args.repeats, mesh=mesh)
        rows[f"(5) sharded sweep K={k} conv={impl} over {jax.device_count()} devices"] = {
            "k": k, "s": s, "compile": c, "flops": f}
  torch_rate = rows.get("(1) PyTorch eager loop", {}).get("s")
  single_s = rows["(3) lrjax scanned epoch, 1 model"]["s"]
  peak = _peak()
  header = (f"  {'path':58s} {'model-epochs/s':>14s} {'vs (1)':>8s} {'vs K x (3)':>10s}"
            f" {'TFLOP/s':>8s} {'of peak':>8s} {'compile s':>9s}")
  print(header)
  for name, r in rows.items():
    rate = r["k"] / r["s"] * (n / full_n)  # model-epochs of the full dataset per second
    vs_torch = f"{(r['k'] / r['s']) / (1 / torch_rate):8.1f}x" if torch_rate else "     n/a"
    vs_seq = f"{(r['k'] * single_s) / r['s']:9.2f}x"
    tflops = r.get("flops", float("nan")) / r["s"] / 1e12
    of_peak = f"{tflops * 1e12 / peak:8.1%}" if peak and np.isfinite(tflops) else "     n/a"
    compile_s = f"{r['compile']:9.1f}" if "compile" in r else "        -"
    print(f"  {name:58s} {rate:14.3f} {vs_torch} {vs_seq} {tflops:8.3f} {of_peak} {compile_s}")
    out_rows.append({"model": model_name, "path": name, "k": r["k"], "seconds": r["s"],
                     "model_epochs_per_s_full": rate, "compile_s": r.get("compile"),
                     "tflops": tflops, "device": _device_name(), "train_size": n})


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--models", nargs="+", default=["mnist_cnn", "cifar_cnn"],
                      choices=sorted(SHAPES))
  parser.add_argument("--train-size", type=int, default=None,
                      help="images per epoch (default: the full training set)")
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--ks", type=int, nargs="+", default=[14, 56])
  parser.add_argument("--conv-impls", nargs="+", default=["xla", "im2col"])
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--json", default=None, help="also write the rows as JSON here")
  args = parser.parse_args(argv)
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
