"""A convolution written as im2col + one matrix product, for vmapped sweeps.

Under `jax.vmap` over variants, a convolution whose input *and* kernel carry the
variant axis lowers to a grouped convolution (``feature_group_count = K``), which the
convolution libraries run far below the speed of a dense matrix product.  Written as
shifted (strided) slices (pure data movement, no arithmetic) followed by
``patches @ kernel``, the same layer becomes a batched matrix product over variants,
which maps onto the batched GEMM kernels instead; its gradient has no convolution at
all (matrix products and the adjoint of the slices), so it is also fast inside a
`lax.scan` on CPU.  Parameters have exactly the shapes and initialisers of
`flax.linen.Conv`, so the two are interchangeable (and tested equal).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from lrjax.models.layers import ConvBase


class Im2ColConv(ConvBase):
  """2-D convolution, NHWC, as im2col + one matrix product.  Fields: `ConvBase`."""

  @nn.compact
  def __call__(self, x):
    kernel, (kh, kw), (sh, sw), padding, dtype = self.geometry(x)
    cin = x.shape[-1]
    (pt, pb), (pl, pr) = padding
    if any((pt, pb, pl, pr)):
      x = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    h_out = (x.shape[1] - kh) // sh + 1
    w_out = (x.shape[2] - kw) // sw + 1
    # (N, Ho, Wo, kh*kw*cin), ordered (i, j, c) like kernel.reshape(kh*kw*cin, features).
    taps = [x[:, i:i + sh * (h_out - 1) + 1:sh, j:j + sw * (w_out - 1) + 1:sw, :]
            for i in range(kh) for j in range(kw)]
    patches = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
    y = jnp.dot(patches.astype(dtype), kernel.reshape(kh * kw * cin, self.features).astype(dtype))
    return self.add_bias(y, dtype)
