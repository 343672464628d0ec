"""Which implementation a model's stride-1 convolutions use: XLA's or im2col.

``conv_impl="xla"`` is `flax.linen.Conv` (a native XLA convolution);
``conv_impl="im2col"`` is `lrjax.models.im2col.Im2ColConv` (shifted slices + one matrix
product), which vmaps over variants as a batched matrix product instead of a grouped
convolution.  Both create a ``kernel`` (kh, kw, cin, features) and ``bias`` under the
same module name with the same initialisers, so a parameter tree serves either.
"""

from __future__ import annotations

import flax.linen as nn

from lrjax.models.im2col import Im2ColConv

CONV_IMPLS = ("xla", "im2col")


def check_conv_impl(conv_impl: str) -> None:
  """Raises ``ValueError`` naming ``conv_impl`` unless it is one of `CONV_IMPLS`."""
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f"`conv_impl` must be one of {CONV_IMPLS}, got {conv_impl!r}.")


def conv(conv_impl: str, features: int, kernel_size: tuple[int, int], padding: str,
         *, name: str) -> nn.Module:
  """A stride-1 convolution layer with bias, ``padding`` "SAME" or "VALID"."""
  check_conv_impl(conv_impl)
  if conv_impl == "im2col":
    return Im2ColConv(features, kernel_size=kernel_size, padding=padding, name=name)
  return nn.Conv(features, kernel_size=kernel_size, strides=1, padding=padding, name=name)
