"""Formulations of `lrjax.models.layers.Conv`'s kernel gradient: compile time and speed.

The kernel gradient of a convolution, dk[i, j, c, o] = sum_{n,h,w} xpad[n, sh*h+i,
sw*w+j, c] g[n, h, w, o], can be written several ways with the same values.  They differ
in how long XLA:CPU takes to compile a model's gradient (the test suite and every user
compile many) and in how fast the result runs inside `lax.scan` (the engine's epoch).
For each formulation (``--forms``) this script measures, in one process:

  compile: seconds of ``jax.jit(grad).lower(...).compile()`` of the training-step
    gradient of MnistCNN, CifarCNN and ResNet18 (batch ``--batch``), a fresh closure and
    `jax.clear_caches()` before each, the median of ``--compiles`` compiles, the
    formulations interleaved (compile k of every form, then compile k + 1), and the
    median of the per-round ratios to the first form's;
  runtime: one compiled ``lax.scan`` of ``--steps`` SGD steps (MnistCNN, CifarCNN),
    timed in ``--rounds`` interleaved rounds (round r runs every form once); medians, and
    each form's time over the first form's: the median of the per-round ratios (the
    number to quote), the ratio of medians and the ratio of minima (on a shared machine
    the spread between these three is the noise).

The formulation is swapped by replacing `layers._kernel_grad` while tracing; ``current``
is lrjax's own, ``stack`` the code before it.

  python benchmarks/conv_grad_benchmark.py                       # stack vs current
  python benchmarks/conv_grad_benchmark.py --forms stack current --compiles 7 --rounds 15 --steps 10
  python benchmarks/conv_grad_benchmark.py --forms stack dots patches tapmap gather window \
      chunks batchconv --models cifar_cnn --no-runtime
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from lrjax import models
from lrjax.models import layers

SHAPES = {"mnist_cnn": (28, 28, 1), "cifar_cnn": (32, 32, 3), "resnet18": (32, 32, 3)}


def _pad_x(x, padding):
  (pt, pb), (pl, pr) = padding
  return jnp.pad(x, ((0, 0), (pt, max(pb, 0)), (pl, max(pr, 0)), (0, 0)))


def _tap(xpad, i, j, strides, ho, wo):
  sh, sw = strides
  return xpad[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]


# -- the formulations: (x, g, kernel_shape, strides, padding) -> dk (kh, kw, Cin, Cout) --

def stack(x, g, kernel_shape, strides, padding):
  """The kh*kw strided taps stacked, one batched matrix product (the previous code)."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo = g.shape[:3]
  xpad = _pad_x(x, padding)
  taps = jnp.stack([_tap(xpad, i, j, strides, ho, wo)
                    for i in range(kh) for j in range(kw)])
  dk = jnp.einsum("tkc,ko->tco", taps.reshape(kh * kw, n * ho * wo, cin),
                  g.reshape(n * ho * wo, cout))
  return dk.reshape(kh, kw, cin, cout)


def dots(x, g, kernel_shape, strides, padding):
  """One `jnp.dot` per tap, the small (Cin, Cout) results stacked."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo = g.shape[:3]
  xpad = _pad_x(x, padding)
  g2 = g.reshape(n * ho * wo, cout)
  parts = [jnp.dot(_tap(xpad, i, j, strides, ho, wo).reshape(n * ho * wo, cin).T, g2)
           for i in range(kh) for j in range(kw)]
  return jnp.stack(parts).reshape(kh, kw, cin, cout)


def dots4d(x, g, kernel_shape, strides, padding):
  """One `lax.dot_general` per tap contracting (N, Ho, Wo) of the 4-D views (no reshape)."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo = g.shape[:3]
  xpad = _pad_x(x, padding)
  dims = (((0, 1, 2), (0, 1, 2)), ((), ()))
  parts = [lax.dot_general(_tap(xpad, i, j, strides, ho, wo), g, dims)
           for i in range(kh) for j in range(kw)]
  return jnp.stack(parts).reshape(kh, kw, cin, cout)


def patches(x, g, kernel_shape, strides, padding):
  """`lax.conv_general_dilated_patches` (im2col) and one matrix product."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo = g.shape[:3]
  p = lax.conv_general_dilated_patches(x, (kh, kw), strides, padding,
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
  # Patch features are ordered (Cin, kh, kw).
  dk = jnp.dot(p.reshape(n * ho * wo, cin * kh * kw).T, g.reshape(n * ho * wo, cout))
  return jnp.transpose(dk.reshape(cin, kh, kw, cout), (1, 2, 0, 3))


def tapmap(x, g, kernel_shape, strides, padding):
  """`lax.map` over the taps: one dynamic slice + dot body, compiled once."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo = g.shape[:3]
  sh, sw = strides
  xpad = _pad_x(x, padding)
  g2 = g.reshape(n * ho * wo, cout)
  size = (n, sh * (ho - 1) + 1, sw * (wo - 1) + 1, cin)

  def one(t):
    window = lax.dynamic_slice(xpad, (0, t // kw, t % kw, 0), size)[:, ::sh, ::sw]
    return jnp.dot(window.reshape(n * ho * wo, cin).T, g2)

  return lax.map(one, jnp.arange(kh * kw)).reshape(kh, kw, cin, cout)


def gather(x, g, kernel_shape, strides, padding):
  """All taps by one gather of the (Cin, N, Hp, Wp)-transposed input, written directly as
  the (kh*kw*Cin, N*Ho*Wo) matrix of one product with g: a single loop fusion."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo = g.shape[:3]
  sh, sw = strides
  xt = jnp.transpose(_pad_x(x, padding), (3, 0, 1, 2))  # (Cin, N, Hp, Wp)
  rows = np.arange(kh)[:, None] + sh * np.arange(ho)  # (kh, Ho): row of tap i, output h
  cols = np.arange(kw)[:, None] + sw * np.arange(wo)  # (kw, Wo)
  taps = xt.at[:, :, rows[:, None, :, None], cols[None, :, None, :]].get(
      mode="promise_in_bounds")  # (Cin, N, kh, kw, Ho, Wo)
  taps = jnp.transpose(taps, (2, 3, 0, 1, 4, 5)).reshape(kh * kw * cin, n * ho * wo)
  return jnp.dot(taps, g.reshape(n * ho * wo, cout)).reshape(kh, kw, cin, cout)


def window(x, g, kernel_shape, strides, padding):
  """One gather of the kh*kw windows (start (i, j), size of the dilated output) of the
  (Cin, N, Hp, Wp)-transposed input, strided, as the (kh*kw*Cin, N*Ho*Wo) matrix of one
  product with g: a single loop fusion, nine times fewer gather indices than `gather`."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo = g.shape[:3]
  sh, sw = strides
  xt = jnp.transpose(_pad_x(x, padding), (3, 0, 1, 2))  # (Cin, N, Hp, Wp)
  starts = np.stack(np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij"), -1)
  dims = lax.GatherDimensionNumbers(offset_dims=(1, 2, 3, 4), collapsed_slice_dims=(),
                                    start_index_map=(2, 3))
  windows = lax.gather(xt, starts.reshape(kh * kw, 2).astype(np.int32), dims,
                       slice_sizes=(cin, n, sh * (ho - 1) + 1, sw * (wo - 1) + 1),
                       mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS)
  taps = windows[..., ::sh, ::sw].reshape(kh * kw * cin, n * ho * wo)
  return jnp.dot(taps, g.reshape(n * ho * wo, cout)).reshape(kh, kw, cin, cout)


def chunks(x, g, kernel_shape, strides, padding, max_taps=8):
  """The taps in balanced groups of at most ``max_taps``: per group, the strided slices of
  the (Cin, N, Hp, Wp)-transposed input concatenated (XLA:CPU fuses a concatenate of up
  to 8 operands, with its slices and the transpose, into one loop fusion; 9 are not) and
  one matrix product with g; the groups' (taps*Cin, Cout) results concatenated."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo = g.shape[:3]
  sh, sw = strides
  xt = jnp.transpose(_pad_x(x, padding), (3, 0, 1, 2))  # (Cin, N, Hp, Wp)
  taps = [(i, j) for i in range(kh) for j in range(kw)]
  groups = np.array_split(np.arange(len(taps)), -(-len(taps) // max_taps))
  g2 = g.reshape(n * ho * wo, cout)
  parts = []
  for group in groups:
    cols = lax.concatenate([xt[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
                            for i, j in (taps[t] for t in group)], 0)  # (len*Cin, N, Ho, Wo)
    parts.append(jnp.dot(cols.reshape(len(group) * cin, n * ho * wo), g2))
  return lax.concatenate(parts, 0).reshape(kh, kw, cin, cout)


def hybrid(x, g, kernel_shape, strides, padding):
  """`stack` for one input channel (its taps need no transpose), else `window`."""
  form = stack if kernel_shape[2] == 1 else window
  return form(x, g, kernel_shape, strides, padding)


def batchconv(x, g, kernel_shape, strides, padding):
  """A canonical convolution with the batch as the feature axis (the code before stack)."""
  kh, kw = kernel_shape[:2]
  (pt, pb), (pl, pr) = padding
  gd = layers._dilate(g, strides)
  xpad = _pad_x(x, padding)
  if pb < 0 or pr < 0:
    xpad = xpad[:, :xpad.shape[1] + min(pb, 0), :xpad.shape[2] + min(pr, 0)]
  dk = layers._conv(jnp.transpose(xpad, (3, 1, 2, 0)), jnp.transpose(gd, (1, 2, 0, 3)),
                    (1, 1), ((0, 0), (0, 0)))
  return jnp.transpose(dk[:, :kh, :kw], (1, 2, 0, 3))


FORMS = {f.__name__: f for f in (stack, dots, dots4d, patches, tapmap, gather, window, chunks,
                                  hybrid, batchconv)}
FORMS["current"] = layers._kernel_grad  # whatever lrjax uses now


@contextlib.contextmanager
def kernel_grad(form):
  saved = layers._kernel_grad
  layers._kernel_grad = form
  try:
    yield
  finally:
    layers._kernel_grad = saved


# -- the model's training step --------------------------------------------------------

def make_model(name):
  return models.get_model(name, conv_impl="canonical")


def init(name, model, batch):
  x = jnp.zeros((batch,) + SHAPES[name], jnp.float32)
  return model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, x)


def loss_fn(model, variables):
  extra = {k: v for k, v in variables.items() if k != "params"}

  def loss(params, x, y, key):
    logits, _ = model.apply({"params": params, **extra}, x, train=True,
                            rngs={"dropout": key}, mutable=list(extra))
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  return loss


def batch_data(name, batch, steps=None, seed=0):
  rng = np.random.default_rng(seed)
  lead = (batch,) if steps is None else (steps, batch)
  x = jnp.asarray(rng.normal(size=lead + SHAPES[name]), jnp.float32)
  y = jnp.asarray(rng.integers(0, 10, size=lead), jnp.int32)
  return x, y


def compile_seconds(name, form, batch):
  """(lower, compile) seconds of the training-step gradient, fresh closure and caches."""
  jax.clear_caches()
  model = make_model(name)
  variables = init(name, model, batch)
  loss = loss_fn(model, variables)
  x, y = batch_data(name, batch)
  grad = jax.jit(lambda p, x, y, k: jax.grad(loss)(p, x, y, k))
  with kernel_grad(form):
    t0 = time.perf_counter()
    lowered = grad.lower(variables["params"], x, y, jax.random.PRNGKey(2))
    t1 = time.perf_counter()
  lowered.compile()
  t2 = time.perf_counter()
  return t1 - t0, t2 - t1


def scanned_epoch(name, form, batch, steps):
  """A compiled scan of ``steps`` SGD steps and its arguments."""
  model = make_model(name)
  variables = init(name, model, batch)
  loss = loss_fn(model, variables)
  xs, ys = batch_data(name, batch, steps)

  def epoch(params, xs, ys, key):
    def body(p, xyk):
      x, y, k = xyk
      grads = jax.grad(loss)(p, x, y, k)
      return jax.tree.map(lambda a, b: a - 0.01 * b, p, grads), None
    return lax.scan(body, params, (xs, ys, jax.random.split(key, steps)))[0]

  with kernel_grad(form):
    fn = jax.jit(epoch).lower(variables["params"], xs, ys, jax.random.PRNGKey(3)).compile()
  args = (variables["params"], xs, ys, jax.random.PRNGKey(3))
  jax.block_until_ready(fn(*args))  # warm up
  return fn, args


def check_equal(forms, batch=4):
  """Every formulation gives the kernel gradient of the first (CIFAR shapes + strides)."""
  rng = np.random.default_rng(0)
  for (h, cin), k, s, pad in [((9, 3), 3, 1, ((1, 1), (1, 1))), ((9, 3), 3, 2, ((1, 1), (1, 1))),
                               ((8, 4), 1, 2, ((0, 0), (0, 0))), ((7, 2), 3, 1, ((2, 1), (0, 2))),
                               ((9, 16), 3, 2, ((1, 1), (1, 1))), ((7, 8), 3, 1, ((2, 1), (0, 2))),
                               ((9, 1), 3, 2, ((0, 1), (1, 0)))]:
    x = jnp.asarray(rng.normal(size=(batch, h, h, cin)), jnp.float32)
    kernel = jnp.zeros((k, k, cin, 5), jnp.float32)
    out = layers._conv(x, kernel, (s, s), pad)
    g = jnp.asarray(rng.normal(size=out.shape), jnp.float32)
    ref = jax.jit(FORMS[forms[0]], static_argnums=(2, 3, 4))(x, g, kernel.shape, (s, s), pad)
    for f in forms[1:]:
      got = jax.jit(FORMS[f], static_argnums=(2, 3, 4))(x, g, kernel.shape, (s, s), pad)
      np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4, err_msg=f)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--forms", nargs="+", default=["stack", "current"], choices=sorted(FORMS),
                      help="the first is the baseline of the runtime ratios")
  parser.add_argument("--models", nargs="+", default=["mnist_cnn", "cifar_cnn", "resnet18"],
                      choices=sorted(SHAPES))
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--compiles", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--no-runtime", action="store_true")
  parser.add_argument("--no-compile", action="store_true")
  parser.add_argument("--json", help="write the results here")
  args = parser.parse_args()
  check_equal(args.forms)
  results = {"compile": {}, "runtime": {}}
  if not args.no_compile:
    for name in args.models:
      times = {f: [] for f in args.forms}
      for _ in range(args.compiles):
        for f in args.forms:
          times[f].append(compile_seconds(name, FORMS[f], args.batch))
      base = args.forms[0]
      for f in args.forms:
        lower = statistics.median(t[0] for t in times[f])
        comp = statistics.median(t[1] for t in times[f])
        ratio = statistics.median(t[1] / b[1] for t, b in zip(times[f], times[base], strict=True))
        results["compile"].setdefault(name, {})[f] = {"lower_s": lower, "compile_s": comp,
                                                      f"compile_over_{base}": ratio}
        print(f"compile {name:10s} {f:10s} lower {lower:6.3f} s  compile {comp:6.3f} s  "
              f"/ {base}: {ratio:.3f} (median of per-round ratios)  "
              f"(all: {', '.join(f'{t[1]:.2f}' for t in times[f])})", flush=True)
  if not args.no_runtime:
    for name in args.models:
      if name == "resnet18":
        continue  # too slow for a scanned A/B on 2 cores
      fns = {f: scanned_epoch(name, FORMS[f], args.batch, args.steps) for f in args.forms}
      times = {f: [] for f in args.forms}
      for _ in range(args.rounds):
        for f in args.forms:
          fn, a = fns[f]
          t0 = time.perf_counter()
          jax.block_until_ready(fn(*a))
          times[f].append(time.perf_counter() - t0)
      base = args.forms[0]
      for f in args.forms:
        med = statistics.median(times[f])
        ratio = statistics.median(t / b for t, b in zip(times[f], times[base], strict=True))
        results["runtime"].setdefault(name, {})[f] = {"step_ms": 1e3 * med / args.steps,
                                                      f"time_over_{base}": ratio}
        print(f"runtime {name:10s} {f:10s} {1e3 * med / args.steps:7.2f} ms/step  "
              f"time / {base}: {ratio:.3f} (median of per-round ratios), "
              f"{med / statistics.median(times[base]):.3f} (ratio of medians), "
              f"{min(times[f]) / min(times[base]):.3f} (ratio of minima)", flush=True)
  if args.json:
    with open(args.json, "w") as fh:
      json.dump(results, fh, indent=1)


if __name__ == "__main__":
  main()
