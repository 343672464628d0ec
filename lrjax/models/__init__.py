"""Flax modules of the reference documents (NHWC in, logits out).

Every model is called as ``model.apply(variables, x, train=...)``; dropout is active
only with ``train=True`` (using the 'dropout' rng) and BatchNorm statistics live in the
'batch_stats' collection.  The cross-entropy (the report's final Softmax) is applied
by the engine.
"""

from lrjax import _extras

_extras.require_train("lrjax.models")

from lrjax.models.conv import CONV_IMPLS, CONVS, ConvLayers, ConvPoolLayers, default_conv_impl
from lrjax.models.cost import count_params, flops_per_example
from lrjax.models.im2col import Im2ColConv
from lrjax.models.layers import Conv, max_pool_2x2
from lrjax.models.lenet import LeNet5
from lrjax.models.linear import LinearRegression, LogisticRegression
from lrjax.models.registry import MODELS, get_model
from lrjax.models.report import CifarCNN, MnistCNN
from lrjax.models.resnet import BasicBlock, ResNet18

__all__ = [
    "MnistCNN", "CifarCNN", "LeNet5", "ResNet18", "BasicBlock",
    "LinearRegression", "LogisticRegression", "Im2ColConv", "Conv", "max_pool_2x2",
    "CONV_IMPLS", "CONVS", "ConvLayers", "ConvPoolLayers", "default_conv_impl",
    "MODELS", "get_model", "count_params", "flops_per_example",
]
