"""The two CNNs of Yang & Huang, "Learning rate investigation" (2019), appendix 6.2.

Both return logits: the report's final Softmax is folded into the cross-entropy loss
(report eq. 1), which the engine applies.  Inputs are NHWC.  Layers use Flax's default
initialisers (the report does not state any).
"""

from __future__ import annotations

import flax.linen as nn

from lrjax import _validation
from lrjax.models.conv import ConvPoolLayers


class MnistCNN(ConvPoolLayers):
  """The report's MNIST model: ``d20, f3380-128, ReLU, f128-10, Softmax``.

  "d_k denotes a 3x3 Convolution-Maxpooling-ReLU layer with k filters, stride 1, and
  the kernel size of maxpooling being 2."  No padding is stated and f3380 = 13*13*20
  requires none: 28x28 -> conv (VALID) 26x26x20 -> maxpool 2 -> 13x13x20 -> ReLU ->
  flatten 3380 -> Dense 128 -> ReLU -> Dense 10.  434,258 parameters.

  Attributes:
    num_classes: size of the output layer (10 in the report).
    conv, conv_impl, pool (keyword-only): the layers, see `ConvPoolLayers`.
  """

  num_classes: int = 10

  def __post_init__(self):
    _validation.check_positive_int("num_classes", self.num_classes)
    super().__post_init__()

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train  # no dropout, no batch statistics
    conv, pool = self.layers()
    x = conv(features=20, kernel_size=(3, 3), padding="VALID", name="conv1")(x)
    x = pool(x)
    x = nn.relu(x)
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(128, name="fc1")(x))
    return nn.Dense(self.num_classes, name="fc2")(x)


class CifarCNN(ConvPoolLayers):
  """The report's CIFAR-10 model: ``d16, d32, d64, Dropout, f1024-500, Elu, Dropout,
  f500-10``.

  "d_k denotes a 3x3 Convolution-Elu-Maxpooling layer with k filters, stride 1,
  padding 1, and the kernel size of maxpooling being 2":  32 -> 16 -> 8 -> 4, and
  flatten 4*4*64 = 1024.  541,094 parameters.

  The report does not state the dropout rate.  This architecture is the well-known
  PyTorch CIFAR-10 tutorial network, whose two dropouts use p = 0.25: the default here.

  Attributes:
    num_classes: size of the output layer (10 in the report).
    dropout_rate: rate of both dropouts (active only with ``train=True``, using the
      'dropout' rng).
    conv, conv_impl, pool (keyword-only): the layers, see `ConvPoolLayers`.
  """

  num_classes: int = 10
  dropout_rate: float = 0.25

  def __post_init__(self):
    _validation.check_positive_int("num_classes", self.num_classes)
    _validation.check_in_range("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
    super().__post_init__()

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    conv, pool = self.layers()
    for i, k in enumerate((16, 32, 64), start=1):
      x = conv(features=k, kernel_size=(3, 3), padding="SAME", name=f"conv{i}")(x)
      x = pool(nn.elu(x))
    x = x.reshape((x.shape[0], -1))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.elu(nn.Dense(500, name="fc1")(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name="fc2")(x)

