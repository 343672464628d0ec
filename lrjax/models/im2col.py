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

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import lax


def _pair(value) -> tuple[int, int]:
  return (value, value) if isinstance(value, int) else tuple(int(v) for v in value)


class Im2ColConv(nn.Module):
  """2-D convolution, NHWC, as im2col + one matrix product.

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

  @nn.compact
  def __call__(self, x):
    kh, kw = _pair(tuple(self.kernel_size))
    sh, sw = _pair(self.strides)
    if isinstance(self.padding, str):
      if self.padding not in ("SAME", "VALID"):
        raise ValueError(f"`padding` must be 'SAME', 'VALID', an int or pairs, "
                         f"got {self.padding!r}.")
      padding = lax.padtype_to_pads(x.shape[1:3], (kh, kw), (sh, sw), self.padding)
    elif isinstance(self.padding, int):
      padding = ((self.padding, self.padding),) * 2
    else:
      padding = [_pair(p) for p in self.padding]
    cin = x.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (kh, kw, cin, self.features))
    (pt, pb), (pl, pr) = padding
    if any((pt, pb, pl, pr)):
      x = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    h_out = (x.shape[1] - kh) // sh + 1
    w_out = (x.shape[2] - kw) // sw + 1
    # (N, Ho, Wo, kh*kw*cin), ordered (i, j, c) like kernel.reshape(kh*kw*cin, features).
    patches = [x[:, i:i + sh * (h_out - 1) + 1:sh, j:j + sw * (w_out - 1) + 1:sw, :]
               for i in range(kh) for j in range(kw)]
    patches = patches[0] if len(patches) == 1 else jnp.concatenate(patches, axis=-1)
    dtype = self.dtype or x.dtype
    y = jnp.dot(patches.astype(dtype), kernel.reshape(kh * kw * cin, self.features).astype(dtype))
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,))
      y = y + bias.astype(dtype)
    return y
