"""A convolution written as im2col + one matrix product, for vmapped sweeps.

Under `jax.vmap` over variants, a convolution whose input *and* kernel carry the
variant axis lowers to a grouped convolution (``feature_group_count = K``), which the
convolution libraries run far below the speed of a dense matrix product.  Written as
shifted slices (pure data movement, no arithmetic) followed by ``patches @ kernel``,
the same layer becomes a batched matrix product over variants, which maps onto the
batched GEMM kernels instead.  Parameters have exactly the shapes and initialisers of
`flax.linen.Conv`, so the two are interchangeable (and tested equal).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


class Im2ColConv(nn.Module):
  """2-D convolution, stride 1, ``padding`` "SAME" or "VALID", NHWC.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    padding: "SAME" or "VALID".
    use_bias: add a bias.
    dtype: computation dtype (None: that of the inputs).
  """

  features: int
  kernel_size: tuple[int, int] = (3, 3)
  padding: str = "SAME"
  use_bias: bool = True
  dtype: Any = None
  kernel_init: Any = nn.linear.default_kernel_init
  bias_init: Any = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x):
    if self.padding not in ("SAME", "VALID"):
      raise ValueError(f"`padding` must be 'SAME' or 'VALID', got {self.padding!r}.")
    kh, kw = self.kernel_size
    cin = x.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (kh, kw, cin, self.features))
    if self.padding == "SAME":
      top, left = (kh - 1) // 2, (kw - 1) // 2
      x = jnp.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    h_out = x.shape[1] - kh + 1
    w_out = x.shape[2] - kw + 1
    # (N, H, W, kh*kw*cin), ordered (i, j, c) like kernel.reshape(kh*kw*cin, features).
    patches = jnp.concatenate(
        [x[:, i:i + h_out, j:j + w_out, :] for i in range(kh) for j in range(kw)], axis=-1)
    dtype = self.dtype or x.dtype
    y = jnp.dot(patches.astype(dtype), kernel.reshape(kh * kw * cin, self.features).astype(dtype))
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,))
      y = y + bias.astype(dtype)
    return y
