"""The official tfds builders (``tfds.data_source("mnist")``, ...): the online path.

Used when no local source and no prepared copy exist.  The official builders download
from the internet on first use and store ``array_record`` files under the same data
folder; images are decoded by tfds with Pillow/OpenCV, without TensorFlow.  Any failure
(no network, a missing optional dependency) is returned to `lrjax.data.load`, which
reports it together with the local places it looked in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from lrjax.data import preparing


def read(official_name: str, data_dir) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{"train": (x, y), "test": (x, y)}`` of an official tfds dataset (downloads once)."""
  # Locked, partial downloads of killed runs removed, tfds' prints on stderr.
  with preparing.preparation(Path(data_dir) / official_name):
    sources = tfds.data_source(official_name, data_dir=str(data_dir), download=True,
                               try_gcs=False)
  out = {}
  for split in ("train", "test"):
    source = sources[split]
    records = source.__getitems__(list(range(len(source))))
    x = np.stack([np.asarray(r["image"], np.uint8) for r in records])
    y = np.asarray([r["label"] for r in records], np.int64)
    out[split] = x, y
  return out
