"""LeNet-5 for CIFAR-10, the small model of the adaptive (Newton) learning-rate report.

"a LeNet with 5 layers (2 convolutional followed by 3 fully-connected layers)".  The
report does not give the details; this is the classic CIFAR LeNet of the common PyTorch
versions (the PyTorch CIFAR-10 tutorial): conv 6@5x5 (VALID) -> ReLU -> maxpool 2 ->
conv 16@5x5 (VALID) -> ReLU -> maxpool 2 -> flatten (5*5*16 = 400 on 32x32 inputs) ->
Dense 120 -> ReLU -> Dense 84 -> ReLU -> Dense 10.  ReLU and max pooling replace the
tanh/sigmoid and subsampling of LeCun et al. (1998), as in those versions.  62,006
parameters on 32x32x3 inputs.
"""

from __future__ import annotations

import flax.linen as nn

from lrjax import _validation
from lrjax.models.conv import ConvPoolLayers


class LeNet5(ConvPoolLayers):
  """LeNet-5 (ReLU, max pooling), NHWC in, logits out.

  Attributes:
    num_classes: size of the output layer.
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
    for i, k in enumerate((6, 16), start=1):
      x = conv(features=k, kernel_size=(5, 5), padding="VALID", name=f"conv{i}")(x)
      x = pool(nn.relu(x))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(120, name="fc1")(x))
    x = nn.relu(nn.Dense(84, name="fc2")(x))
    return nn.Dense(self.num_classes, name="fc3")(x)
