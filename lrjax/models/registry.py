"""Models by name, for configurations and the command line: ``get_model(name, **kw)``."""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from lrjax.errors import ArgumentError
from lrjax.models.lenet import LeNet5
from lrjax.models.linear import LinearRegression, LogisticRegression
from lrjax.models.report import CifarCNN, MnistCNN
from lrjax.models.resnet import ResNet18

MODELS: dict[str, type[nn.Module]] = {
    "mnist_cnn": MnistCNN,
    "cifar_cnn": CifarCNN,
    "lenet5": LeNet5,
    "resnet18": ResNet18,
    "linear": LinearRegression,
    "logistic": LogisticRegression,
}

# Fields every Flax module has that are not model options.
_MODULE_FIELDS = ("parent", "name")


def get_model(name: str, **kwargs) -> nn.Module:
  """The model registered as ``name`` (case-insensitive, '-' read as '_').

  Example:
    >>> import lrjax
    >>> lrjax.models.get_model("cifar_cnn", dropout_rate=0.5).dropout_rate
    0.5

  Raises:
    ValueError: naming ``name`` when it is not in `MODELS`, or the keyword argument
      that is not an option of that model.
  """
  key = str(name).lower().replace("-", "_") if isinstance(name, str) else name
  if key not in MODELS:
    raise ArgumentError("name", f"must be one of {sorted(MODELS)}, got {name!r}.")
  cls = MODELS[key]
  options = [f.name for f in dataclasses.fields(cls) if f.name not in _MODULE_FIELDS]
  for option in kwargs:
    if option not in options:
      raise ArgumentError(option, f"is not an option of {key!r} ({cls.__name__}); "
                          f"its options are {options}.")
  return cls(**kwargs)
