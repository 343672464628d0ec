"""Datasets as numpy arrays, through tensorflow-datasets (no TensorFlow needed).

``load(name)`` gives MNIST, Fashion-MNIST, CIFAR-10 or Boston housing from local files
(prepared once by the project's tfds builders) or from the official tfds builders;
``synthetic(...)`` gives a small learnable dataset in the same `Dataset` format.
`DATASETS` is the catalogue of the datasets ``load`` knows (name -> `DatasetSpec`: classes,
source layouts, default model, task); `by_name` holds the names ``lrjax sweep --dataset``
and a sweep file accept (the synthetic demo and the catalogue's), each one's default model
and task, and ``by_name.load`` (a seeded subset with ``train_size``).
"""

from lrjax import _extras

_extras.require_train("lrjax.data")

from lrjax.data import by_name
from lrjax.data.catalog import SPECS as DATASETS
from lrjax.data.catalog import DatasetSpec
from lrjax.data.dataset import Dataset
from lrjax.data.discovery import Source
from lrjax.data.errors import CorruptDatasetError, CorruptPreparedCopyError, DatasetNotFoundError
from lrjax.data.load import load, prepare, resolve_data_dir
from lrjax.data.synthetic import synthetic

__all__ = ["DATASETS", "CorruptDatasetError", "CorruptPreparedCopyError", "Dataset",
           "DatasetNotFoundError", "DatasetSpec", "Source", "by_name", "load", "prepare",
           "resolve_data_dir", "synthetic"]
