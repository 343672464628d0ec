"""The datasets `lrjax.data.load` knows: names, classes, source layouts, official builders."""

from __future__ import annotations

import dataclasses

from lrjax.data import cifar, idx, table
from lrjax.errors import UsageError


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What is known of one dataset before reading it.

  Attributes:
    name: the canonical name (``mnist``, ``fashion_mnist``, ``cifar10``,
      ``boston_housing``).
    dirnames: folder names looked for under a search root (``<root>/<dirname>``).
    layouts: local source layouts, in order of preference; each is a config of the
      dataset's tfds builder (``idx``, ``binary``, ``images``, ``csv``).
    official: the official tfds builder used when no local source exists, or None.
    num_classes: number of classes, or None for regression.
    class_names: class names in label order, or None.
    has_test_split: whether the source has its own test split (else one is drawn).
    expected: how to provide the files, for error messages.
    default_model: the built-in model (`lrjax.models.MODELS`) ``lrjax sweep`` and a
      sweep file without ``[model]`` train on it.
  """

  name: str
  dirnames: tuple[str, ...]
  layouts: tuple[str, ...]
  official: str | None
  num_classes: int | None
  class_names: tuple[str, ...] | None
  has_test_split: bool
  expected: str
  default_model: str

  @property
  def task(self) -> str:
    """``"classification"`` for a dataset with classes, ``"regression"`` without."""
    return "regression" if self.num_classes is None else "classification"


_IDX_FILES = ", ".join(f"{stem}.gz" for pair in idx.FILES.values() for stem in pair)

SPECS = {
    "mnist": DatasetSpec(
        name="mnist", dirnames=("mnist", "MNIST"), layouts=("idx",), official="mnist",
        num_classes=10, class_names=tuple(str(i) for i in range(10)), has_test_split=True,
        expected=f"the four IDX files of the MNIST release: {_IDX_FILES} "
        "(uncompressed files without .gz are accepted too)", default_model="mnist_cnn"),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist", dirnames=("fashion_mnist", "fashion-mnist", "FashionMNIST"),
        layouts=("idx",), official="fashion_mnist", num_classes=10,
        class_names=("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal",
                     "shirt", "sneaker", "bag", "ankle boot"), has_test_split=True,
        expected=f"the four IDX files of the Fashion-MNIST release: {_IDX_FILES} (Debian/"
        "Ubuntu: apt-get install dataset-fashion-mnist puts them in "
        "/usr/share/datasets/fashion-mnist)", default_model="logistic"),
    "cifar10": DatasetSpec(
        name="cifar10", dirnames=("cifar10", "cifar-10", "CIFAR10"),
        layouts=("binary", "images"), official="cifar10", num_classes=10,
        class_names=cifar.CLASS_NAMES, has_test_split=True,
        expected=f"either the binary release {cifar.BINARY_ARCHIVE} (or its "
        f"{cifar.BINARY_DIR}/ folder with {', '.join(cifar.TRAIN_BATCHES)}, "
        f"{cifar.TEST_BATCH}), or an image folder train/<class>/*.jpg + "
        "test/<class>/*.jpg as a directory or a *cifar*.zip, <class> one of "
        f"{', '.join(cifar.CLASS_NAMES)}", default_model="cifar_cnn"),
    "boston_housing": DatasetSpec(
        name="boston_housing", dirnames=("boston_housing", "boston"), layouts=("csv",),
        official=None, num_classes=None, class_names=None, has_test_split=False,
        expected=f"a CSV file named one of {', '.join(table.FILE_NAMES)} with the header "
        f"{','.join(table.FEATURES + (table.TARGET,))}", default_model="linear"),
}

_ALIASES = {"fashionmnist": "fashion_mnist", "cifar_10": "cifar10", "boston": "boston_housing"}


def get(name: str) -> DatasetSpec:
  """The spec of ``name`` (case, ``-`` and ``_`` are not significant)."""
  key = str(name).strip().lower().replace("-", "_")
  key = _ALIASES.get(key, key)
  if key not in SPECS:
    raise UsageError(f"Unknown dataset {name!r}; known: {', '.join(SPECS)} "
                     "(and `lrjax.data.synthetic`).")
  return SPECS[key]
