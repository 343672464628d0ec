"""ResNet-18 for CIFAR (He et al., 2016), as used by the adaptive (Newton) LR report.

The CIFAR variant of the common PyTorch versions: a 3x3 stem convolution with 64
filters, stride 1, and no initial max pooling (32x32 inputs are small); four stages of
two BasicBlocks with 64/128/256/512 channels and strides 1, 2, 2, 2 (a 1x1 projection
shortcut where the shape changes); global average pooling; Dense 10.  Convolutions
have no bias (each is followed by a normalisation).  11,173,962 parameters with a
10-class head.

The report: "As we are using SGD here, we added dropout ... at the end of the second
and fourth blocks of the network to prevent overfitting."  The "blocks" are read as
the four stages (the ``layer1..layer4`` of the PyTorch versions): ``dropout_rate``
(default 0.0, i.e. none) is applied to the outputs of the stages in
``dropout_stages`` = (2, 4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.models.conv import ConvLayers, ModuleDef

NORMS = ("batch", "group", "none")


def _norm(kind: str, train: bool, name: str):
  """The normalisation after a convolution (identity for "none")."""
  if kind == "batch":
    # PyTorch's BatchNorm2d defaults: momentum 0.1 (Flax: 0.9 kept), eps 1e-5.
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                        name=name)
  if kind == "group":
    return lambda x: nn.GroupNorm(num_groups=math.gcd(32, x.shape[-1]), epsilon=1e-5,
                                  name=name)(x)
  return lambda x: x


class BasicBlock(nn.Module):
  """Two 3x3 convolutions with a residual connection (ResNet-18/34 block).

  Attributes:
    features: output channels.
    strides: stride of the first convolution (and of the projection shortcut).
    norm: "batch", "group" or "none".
    conv: the convolution class (`nn.Conv`'s signature, e.g. `lrjax.models.CONVS`).
  """

  features: int
  strides: int = 1
  norm: str = "batch"
  conv: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    use_bias = self.norm == "none"
    y = self.conv(features=self.features, kernel_size=(3, 3), strides=self.strides,
                  padding=1, use_bias=use_bias, name="conv1")(x)
    y = nn.relu(_norm(self.norm, train, "norm1")(y))
    y = self.conv(features=self.features, kernel_size=(3, 3), strides=1, padding=1,
                  use_bias=use_bias, name="conv2")(y)
    y = _norm(self.norm, train, "norm2")(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = self.conv(features=self.features, kernel_size=(1, 1), strides=self.strides,
                    padding="VALID", use_bias=use_bias, name="shortcut_conv")(x)
      x = _norm(self.norm, train, "shortcut_norm")(x)
    return nn.relu(x + y)


class ResNet18(ConvLayers):
  """CIFAR ResNet-18, NHWC in, logits out.

  With ``norm="batch"`` the running statistics live in the 'batch_stats' collection:
  ``train=True`` uses the batch statistics and needs ``mutable=['batch_stats']``;
  ``train=False`` uses the running averages.

  Attributes:
    num_classes: size of the output layer.
    dropout_rate: dropout after the stages in ``dropout_stages`` (0.0: none); active
      only with ``train=True``, using the 'dropout' rng.
    dropout_stages: 1-based stage indices followed by dropout ((2, 4) in the report).
    num_filters: channels of the stem and first stage (doubled at each later stage).
    stage_sizes: BasicBlocks per stage ((2, 2, 2, 2) for ResNet-18).
    norm: "batch" (BatchNorm, as in ResNet), "group" (GroupNorm, gcd(32, C) groups,
      no running statistics) or "none" (convolutions then get a bias).
    conv, conv_impl (keyword-only): the convolution, see `ConvLayers`.
  """

  num_classes: int = 10
  dropout_rate: float = 0.0
  dropout_stages: Sequence[int] = (2, 4)
  num_filters: int = 64
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  norm: str = "batch"

  def __post_init__(self):
    _validation.check_positive_int("num_classes", self.num_classes)
    _validation.check_in_range("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
    _validation.check_positive_int("num_filters", self.num_filters)
    if not self.stage_sizes:
      raise ArgumentError("stage_sizes", "must not be empty.")
    for size in self.stage_sizes:
      _validation.check_positive_int("stage_sizes", size)
    if self.norm not in NORMS:
      raise ArgumentError("norm", f"must be one of {NORMS}, got {self.norm!r}.")
    super().__post_init__()

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    conv = self.conv_layer()
    x = conv(features=self.num_filters, kernel_size=(3, 3), strides=1, padding=1,
             use_bias=self.norm == "none", name="stem_conv")(x)
    x = nn.relu(_norm(self.norm, train, "stem_norm")(x))
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = BasicBlock(self.num_filters * 2**i, strides=strides, norm=self.norm, conv=conv,
                       name=f"stage{i + 1}_block{j + 1}")(x, train=train)
      if self.dropout_rate > 0 and (i + 1) in tuple(self.dropout_stages):
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="fc")(x)
