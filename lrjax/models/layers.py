"""Layers whose gradients stay fast inside `lax.scan` on CPU: a convolution and a pool.

Both are drop-in replacements for Flax's layers (same parameters, same initialisers,
same values and gradients), written so that the *backward* pass is made of operations
XLA:CPU runs fast wherever they are placed, including the body of the while loop a
scanned epoch compiles to:

* `Conv`: a convolution with a custom VJP that writes the input gradient as a
  convolution in the canonical layout (input batch-spatial-feature, kernel
  spatial-in-out), the only layout XLA:CPU sends to its fast convolution library, and
  the kernel gradient as one matrix product of the input's taps with the output
  gradient (`_kernel_grad`).  JAX's own
  transpose rules give the kernel gradient a transposed layout; XLA:CPU's
  convolution-canonicalization pass, which would fix that, visits only the entry
  computation, not a while-loop body, so inside `lax.scan` that convolution falls to the
  slow generic emitter (measured on a 2-core CPU, MNIST CNN: 6 ms per step there against
  0.6 ms for the same convolution in a per-step jit).  Strides are handled by dilating
  the output gradient explicitly (an interior `lax.pad`), so the input gradient is a
  stride-1 canonical convolution.
* `max_pool_2x2`: the 2x2, stride-2 max pool.  `nn.max_pool`'s gradient is a
  `select_and_scatter` that XLA:CPU expands into a multi-output reduce-window plus a
  large scatter (about 60% of the MNIST CNN's training step); here the pool is four
  strided views and an elementwise max, and the gradient goes to the *first* maximum of
  each window in row-major order (what `select_and_scatter` with the ``>=`` selector
  does, ties included), so the gradient is bit-identical to `nn.max_pool`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lrjax.errors import ArgumentError

_CANONICAL = ("NHWC", "HWIO", "NHWC")


def _pairs(value, name: str) -> tuple[int, int]:
  if isinstance(value, int):
    return (value, value)
  value = tuple(int(v) for v in value)
  if len(value) != 2:
    raise ArgumentError(name, f"must be an int or a pair, got {value!r}.")
  return value


def _dilate(x, strides):
  """Inserts ``stride - 1`` zeros between the rows / columns of an NHWC array."""
  if strides == (1, 1):
    return x
  zero = jnp.zeros((), x.dtype)
  return lax.pad(x, zero, ((0, 0, 0), (0, 0, strides[0] - 1), (0, 0, strides[1] - 1),
                           (0, 0, 0)))


def _conv(x, kernel, strides, padding):
  return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_CANONICAL)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d(x, kernel, strides: tuple[int, int], padding: tuple[tuple[int, int], ...]):
  """``lax.conv_general_dilated`` in NHWC / HWIO with gradients fast inside scans.

  Args:
    x: (N, H, W, Cin).
    kernel: (kh, kw, Cin, Cout).
    strides: (sh, sw).
    padding: ((top, bottom), (left, right)), explicit.
  """
  return _conv(x, kernel, strides, padding)


def _conv2d_fwd(x, kernel, strides, padding):
  return _conv(x, kernel, strides, padding), (x, kernel)


def _conv2d_bwd(strides, padding, residuals, g):
  x, kernel = residuals
  kh, kw = kernel.shape[:2]
  (pt, _), (pl, _) = padding
  h, w = x.shape[1:3]
  gd = _dilate(g, strides)  # (N, (Ho-1)*sh+1, (Wo-1)*sw+1, Cout): now a stride-1 problem
  hd, wd = gd.shape[1:3]
  # Input gradient: the full correlation of g with the flipped, in/out-swapped kernel.
  # Padding so that the result has the input's size (negative = crop).
  lo_h, lo_w = kh - 1 - pt, kw - 1 - pl
  pad_in = ((lo_h, h + kh - 1 - hd - lo_h), (lo_w, w + kw - 1 - wd - lo_w))
  flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)  # (kh, kw, Cout, Cin)
  dx = _conv(gd, flipped, (1, 1), pad_in)
  dk = _kernel_grad(x, g, kernel.shape, strides, padding)
  return dx.astype(x.dtype), dk.astype(kernel.dtype)


# XLA:CPU fuses a concatenate of at most this many operands (cpu_instruction_fusion.cc).
_MAX_FUSED_CONCAT = 8
# From this many input channels on, the taps matrix is built by one gather.
_GATHER_MIN_CIN = 8


def _kernel_grad(x, g, kernel_shape, strides, padding):
  """dk[i, j, c, o] = sum_{n,h,w} xpad[n, sh*h+i, sw*w+j, c] g[n, h, w, o].

  Matrix products of the taps matrix (kh*kw*Cin, N*Ho*Wo), row (i, j, c) the strided
  window of tap (i, j) of channel c, with g as (N*Ho*Wo, Cout).  Not a convolution
  (with the batch as the feature axis, its 16x16 "kernel" for CIFAR conv2 ran at about
  10 GFLOP/s inside a scan).  How the taps matrix is built decides the compile time
  (XLA:CPU compiles each fused kernel apart) and the speed:

  * Cin >= 8: one gather of the kh*kw windows of the (Cin, N, Hp, Wp)-transposed input,
    which XLA:CPU fuses with the padding and the transpose into a single loop writing
    the matrix.  Stacking the kh*kw strided slices (the previous code) costs kh*kw + 2
    kernels: XLA:CPU does not fuse a concatenate of more than 8 operands, so each slice,
    the concatenate and the transposing copy are compiled apart.
  * 1 < Cin < 8: the gather's per-element indexing is slow for a few channels and many
    pixels (CIFAR conv1: 1.8x the stacked slices' time), so the slices of the transposed
    input are concatenated in groups of at most 8 (each group one fused loop and one
    product: CIFAR conv1's kernel gradient 0.7x the stacked slices' time).
  * Cin == 1: no transpose is needed and the stacked slices are plain strided copies
    (one product; faster here than both of the above).

  Measured on the shared, loaded 2-core CPU (benchmarks/conv_grad_benchmark.py --forms
  stack current hybrid --compiles 5 --rounds 21 --steps 10: interleaved, medians),
  stacked slices everywhere -> this: the training-step gradient compiles in 0.8x the
  time for the CIFAR-10 CNN (3.4 -> 2.9 s) and 0.48x for ResNet-18 (9.2 -> 4.5 s); the
  MNIST CNN's program is unchanged.  The CIFAR-10 CNN's kernel gradients alone, in a
  scan, take 0.68x the time; its whole scanned training step 0.92x (median of per-round
  ratios; identical programs differ by up to 5% here).  The gather for every Cin > 1
  (``hybrid``) compiles CIFAR-10 in 0.7x, but its conv1 kernel gradient takes 1.8x and
  the whole step measured 1.02-1.03x in three runs of four.  Also tried: one dot per
  tap (compiles slower), `lax.conv_general_dilated_patches` (a grouped convolution,
  step 1.5x slower), `lax.map` over the taps (no compile gain).
  """
  kh, kw, cin, cout = kernel_shape
  (pt, pb), (pl, pr) = padding
  n, ho, wo = g.shape[:3]
  sh, sw = strides
  xpad = jnp.pad(x, ((0, 0), (pt, max(pb, 0)), (pl, max(pr, 0)), (0, 0)))
  xt = jnp.transpose(xpad, (3, 0, 1, 2))  # (Cin, N, Hp, Wp)
  hd, wd = sh * (ho - 1) + 1, sw * (wo - 1) + 1  # the extent of one tap's window
  g2 = g.reshape(n * ho * wo, cout)
  if cin >= _GATHER_MIN_CIN:
    starts = np.stack(np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij"), -1)
    dims = lax.GatherDimensionNumbers(offset_dims=(1, 2, 3, 4), collapsed_slice_dims=(),
                                      start_index_map=(2, 3))
    windows = lax.gather(xt, starts.reshape(kh * kw, 2).astype(np.int32), dims,
                         slice_sizes=(cin, n, hd, wd),
                         mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS)
    taps = windows[..., ::sh, ::sw]  # (kh*kw, Cin, N, Ho, Wo)
    dk = jnp.dot(taps.reshape(kh * kw * cin, n * ho * wo), g2)
  else:
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    groups = ([range(len(offsets))] if cin == 1 else
              np.array_split(np.arange(len(offsets)), -(-len(offsets) // _MAX_FUSED_CONCAT)))
    parts = []
    for group in groups:
      rows = lax.concatenate([xt[:, :, i:i + hd:sh, j:j + wd:sw]
                              for i, j in (offsets[t] for t in group)], 0)  # (len*Cin, N, Ho, Wo)
      parts.append(jnp.dot(rows.reshape(len(group) * cin, n * ho * wo), g2))
    dk = parts[0] if len(parts) == 1 else lax.concatenate(parts, 0)
  return dk.reshape(kh, kw, cin, cout)


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


class ConvBase(nn.Module):
  """What every lrjax convolution shares with `flax.linen.Conv` (NHWC, no dilation, no
  groups): the fields, the parameter shapes and initialisers, padding and bias.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: an int or (sh, sw).
    padding: "SAME", "VALID", an int, or ((top, bottom), (left, right)).
    use_bias: add a bias.
    dtype: computation dtype (None: that of the inputs).
  """

  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: int | Sequence[int] = 1
  padding: Any = "SAME"
  use_bias: bool = True
  dtype: Any = None
  kernel_init: Any = nn.linear.default_kernel_init
  bias_init: Any = nn.initializers.zeros_init()

  def geometry(self, x):
    """``(kernel, (kh, kw), (sh, sw), ((top, bottom), (left, right)), dtype)`` for ``x``."""
    kh, kw = _pairs(tuple(self.kernel_size), "kernel_size")
    strides = _pairs(self.strides, "strides")
    kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
    padding: Sequence[tuple[int, int]]
    if isinstance(self.padding, str):
      if self.padding not in ("SAME", "VALID"):
        raise ArgumentError("padding", "must be 'SAME', 'VALID', an int or pairs, "
                            f"got {self.padding!r}.")
      padding = lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, self.padding)
    elif isinstance(self.padding, int):
      padding = ((self.padding, self.padding),) * 2
    else:
      padding = [_pairs(p, "padding") for p in self.padding]
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    return kernel, (kh, kw), strides, padding, self.dtype or x.dtype

  def add_bias(self, y, dtype):
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(dtype)
    return y


class Conv(ConvBase):
  """2-D convolution (NHWC), a drop-in for `flax.linen.Conv` with fast gradients in scans.

  Parameters ``kernel`` (kh, kw, Cin, features) and ``bias`` (features,) have
  `flax.linen.Conv`'s shapes and default initialisers, so a parameter tree serves both;
  values and gradients agree with `nn.Conv`'s (tested).  Fields: `ConvBase`.
  """

  @nn.compact
  def __call__(self, x):
    kernel, _, strides, padding, dtype = self.geometry(x)
    y = conv2d(x.astype(dtype), kernel.astype(dtype), strides, padding)
    return self.add_bias(y, dtype)


# -- 2x2 / stride-2 max pool -------------------------------------------------------------

def _windows(x):
  """The four elements of each 2x2 window (row-major order), each (N, H/2, W/2, C)."""
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
  return [x[:, i:h:2, j:w:2] for i in (0, 1) for j in (0, 1)]


@jax.custom_vjp
def max_pool_2x2(x):
  """`nn.max_pool(x, (2, 2), strides=(2, 2))` (VALID) for NHWC ``x``, fast gradient.

  The gradient of each window goes to its first maximum in row-major order, as the
  ``select_and_scatter`` of `nn.max_pool`'s gradient does: bit-identical, ties included.
  Odd trailing rows / columns are dropped (VALID) and get a zero gradient.
  """
  a, b, c, d = _windows(x)
  return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


def _pool_fwd(x):
  y = max_pool_2x2(x)
  return y, (x, y)


def _pool_bwd(residuals, g):
  x, y = residuals
  zero = jnp.zeros_like(g)
  taken = jnp.zeros(g.shape, bool)
  parts = []
  for v in _windows(x):
    first = (v == y) & ~taken
    taken = taken | first
    parts.append(jnp.where(first, g, zero))
  n, ho, wo, ch = g.shape
  # (N, Ho, 2, Wo, 2, C) -> (N, 2*Ho, 2*Wo, C): window element (i, j) at (2h+i, 2w+j).
  dx = jnp.stack(parts, axis=0).reshape(2, 2, n, ho, wo, ch)
  dx = jnp.transpose(dx, (2, 3, 0, 4, 1, 5)).reshape(n, 2 * ho, 2 * wo, ch)
  extra_h, extra_w = x.shape[1] - 2 * ho, x.shape[2] - 2 * wo
  if extra_h or extra_w:
    dx = jnp.pad(dx, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)))
  return (dx,)


max_pool_2x2.defvjp(_pool_fwd, _pool_bwd)


def flax_max_pool_2x2(x):
  """`nn.max_pool(x, (2, 2), strides=(2, 2))`: the reference the models can still use."""
  return nn.max_pool(x, (2, 2), strides=(2, 2))
