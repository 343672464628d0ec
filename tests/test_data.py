"""lrjax.data: tfds builders of local files, splits, normalisation, caching, damage.

Every source file is generated in ``tmp_path`` (tiny IDX .gz files, CIFAR-10 binary
batches, an image-folder zip, a CSV); only the last test reads the shared datasets next
to the checkout, and skips when they are absent.
"""

import gzip
import io
import os
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lrjax import data
from lrjax.data import cifar, discovery, idx, table

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
  """No environment or system folder leaks into a test; nothing is written to ~."""
  monkeypatch.delenv("LRJAX_SOURCE_DIR", raising=False)
  monkeypatch.setenv("LRJAX_DATA_DIR", str(tmp_path / "default_data_dir"))
  monkeypatch.setattr(discovery, "SYSTEM_DIRS", (tmp_path / "system",))


# ---------------------------------------------------------------------------------------
# Writers of tiny source files.


def _idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
  array = np.asarray(array, np.uint8)
  magic = (0x08 << 8 | array.ndim) if magic is None else magic
  header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
  return header + array.tobytes()


def _write_gz(path: Path, payload: bytes) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  with gzip.open(path, "wb") as f:
    f.write(payload)
  return path


def _mnist_arrays(seed=0, n_train=40, n_test=12):
  rng = np.random.default_rng(seed)
  out = {}
  for split, n in (("train", n_train), ("test", n_test)):
    out[split] = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                  np.arange(n, dtype=np.uint8) % 10)
  return out


def write_mnist(directory: Path, arrays=None) -> dict:
  """The four IDX .gz files of a tiny MNIST; returns the arrays written."""
  arrays = arrays or _mnist_arrays()
  for split, (images_stem, labels_stem) in idx.FILES.items():
    x, y = arrays[split]
    _write_gz(directory / f"{images_stem}.gz", _idx_bytes(x))
    _write_gz(directory / f"{labels_stem}.gz", _idx_bytes(y))
  return arrays


def _cifar_records(rng, n):
  labels = np.arange(n, dtype=np.uint8) % 10
  images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  planes = images.transpose(0, 3, 1, 2).reshape(n, -1)  # R, G, B planes, row-major
  return images, labels, np.concatenate([labels[:, None], planes], axis=1).tobytes()


def write_cifar_binary(directory: Path, seed=0, per_batch=3, n_test=5) -> dict:
  """``cifar-10-batches-bin/`` with 5 tiny training batches and a test batch."""
  rng = np.random.default_rng(seed)
  folder = directory / cifar.BINARY_DIR
  folder.mkdir(parents=True)
  xs, ys = [], []
  for name in cifar.TRAIN_BATCHES:
    x, y, payload = _cifar_records(rng, per_batch)
    (folder / name).write_bytes(payload)
    xs.append(x)
    ys.append(y)
  tx, ty, payload = _cifar_records(rng, n_test)
  (folder / cifar.TEST_BATCH).write_bytes(payload)
  return {"train": (np.concatenate(xs), np.concatenate(ys)), "test": (tx, ty)}


def _png(image: np.ndarray, fmt="PNG") -> bytes:
  from PIL import Image
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format=fmt)
  return buffer.getvalue()


def write_cifar_zip(path: Path, seed=0, per_class=2, classes=(0, 3, 9)) -> dict:
  """A zip of ``cifar10/{train,test}/<class>/NNNN.png`` (lossless, so exact)."""
  rng = np.random.default_rng(seed)
  expected = {}
  with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
    for split in ("test", "train"):
      xs, ys = [], []
      for label in classes:
        for i in range(per_class):
          image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
          zf.writestr(f"cifar10/{split}/{cifar.CLASS_NAMES[label]}/{i:04d}.png", _png(image))
          xs.append(image)
          ys.append(label)
      expected[split] = (np.stack(xs), np.asarray(ys))
  return expected


def write_boston(path: Path, n=30, seed=0) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  x = np.round(rng.uniform(0, 100, (n, 13)), 3)
  x[:, 3] = rng.integers(0, 2, n)  # chas, quoted as in the R export
  y = np.round(rng.uniform(5, 50, n), 1)
  header = ",".join(f'"{c}"' for c in table.FEATURES + (table.TARGET,))
  lines = [header]
  for row, target in zip(x, y, strict=True):
    cells = [repr(float(v)) for v in row]
    cells[3] = f'"{int(row[3])}"'
    lines.append(",".join(cells + [repr(float(target))]))
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join(lines) + "\n")
  return x, y


def _raw(dataset):
  """Back to 0..255 pixel values of an un-normalised image dataset (train, valid, test)."""
  return [np.rint(a * 255).astype(np.uint8) for a in (dataset.train_x, dataset.valid_x,
                                                       dataset.test_x)]


# ---------------------------------------------------------------------------------------
# Round trips.


def test_tfds_array_record_round_trip_needs_no_tensorflow(tmp_path):
  import sys
  write_mnist(tmp_path / "src")
  path = data.prepare("mnist", source_dir=tmp_path / "src", data_dir=tmp_path / "tfds")
  assert any(p.name.endswith("array_record-00000-of-00001") for p in path.iterdir())
  assert "tensorflow" not in sys.modules


def test_mnist_round_trip(tmp_path):
  arrays = write_mnist(tmp_path / "src")
  ds = data.load("mnist", source_dir=tmp_path / "src", data_dir=tmp_path / "tfds",
                 validation_fraction=0.0, normalize=False)
  assert ds.train_x.shape == (40, 28, 28, 1) and ds.test_x.shape == (12, 28, 28, 1)
  assert ds.valid_x.shape == (0, 28, 28, 1) and ds.valid_y.shape == (0,)
  assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int32
  assert ds.num_classes == 10 and ds.name == "mnist" and ds.task == "classification"
  assert ds.train_x.min() >= 0.0 and ds.train_x.max() <= 1.0
  train, _, test = _raw(ds)
  np.testing.assert_array_equal(train[..., 0], arrays["train"][0])  # source order kept
  np.testing.assert_array_equal(ds.train_y, arrays["train"][1])
  np.testing.assert_array_equal(test[..., 0], arrays["test"][0])
  np.testing.assert_array_equal(ds.test_y, arrays["test"][1])


def test_uncompressed_idx_and_fashion_mnist_folder_name(tmp_path):
  arrays = _mnist_arrays(seed=3)
  for split, (images_stem, labels_stem) in idx.FILES.items():
    folder = tmp_path / "src" / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / images_stem).write_bytes(_idx_bytes(arrays[split][0]))
    (folder / labels_stem).write_bytes(_idx_bytes(arrays[split][1]))
  ds = data.load("Fashion-MNIST", source_dir=tmp_path / "src", data_dir=tmp_path / "tfds",
                 normalize=False, validation_fraction=0.0)
  assert ds.name == "fashion_mnist" and ds.class_names[-1] == "ankle boot"
  np.testing.assert_array_equal(_raw(ds)[0][..., 0], arrays["train"][0])


def test_validation_split_is_a_seeded_fraction_of_the_training_set(tmp_path):
  arrays = write_mnist(tmp_path / "src")
  kwargs = dict(source_dir=tmp_path / "src", data_dir=tmp_path / "tfds", normalize=False)
  a = data.load("mnist", validation_fraction=0.25, seed=0, **kwargs)
  b = data.load("mnist", validation_fraction=0.25, seed=0, **kwargs)
  c = data.load("mnist", validation_fraction=0.25, seed=1, **kwargs)
  assert (len(a.train_x), len(a.valid_x), len(a.test_x)) == (30, 10, 12)
  for field in ("train_x", "train_y", "valid_x", "valid_y"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert not np.array_equal(a.valid_x, c.valid_x)
  # Train and validation partition the source training set; the test set is untouched.
  train, valid, test = _raw(a)
  together = np.concatenate([train, valid])[..., 0].reshape(40, -1)
  source = arrays["train"][0].reshape(40, -1)
  assert sorted(map(bytes, together)) == sorted(map(bytes, source))
  np.testing.assert_array_equal(test[..., 0], arrays["test"][0])
  with pytest.raises(ValueError, match="validation_fraction"):
    data.load("mnist", validation_fraction=1.0, **kwargs)


def test_normalisation_uses_training_statistics_per_channel(tmp_path):
  expected = write_cifar_binary(tmp_path / "src")
  kwargs = dict(source_dir=tmp_path / "src", data_dir=tmp_path / "tfds", seed=0,
                validation_fraction=0.2)
  plain = data.load("cifar10", normalize=False, **kwargs)
  ds = data.load("cifar10", **kwargs)
  assert ds.mean.shape == ds.std.shape == (3,) and plain.mean is None
  np.testing.assert_allclose(ds.train_x.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(ds.train_x.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
  np.testing.assert_allclose(ds.mean, plain.train_x.mean(axis=(0, 1, 2)), rtol=1e-5)
  for x, raw in ((ds.valid_x, plain.valid_x), (ds.test_x, plain.test_x)):
    np.testing.assert_allclose(x, (raw - ds.mean) / ds.std, rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(_raw(plain)[2], expected["test"][0])
  ds16 = data.load("cifar10", dtype=np.float16, **kwargs)
  assert ds16.train_x.dtype == np.float16 and ds16.train_y.dtype == np.int32


def test_cifar_binary_folder_and_tar_gz_read_the_same(tmp_path):
  expected = write_cifar_binary(tmp_path / "src")
  archive = tmp_path / "archive" / cifar.BINARY_ARCHIVE
  archive.parent.mkdir()
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(tmp_path / "src" / cifar.BINARY_DIR, arcname=cifar.BINARY_DIR)
  a = data.load("cifar10", source_dir=tmp_path / "src", data_dir=tmp_path / "t1",
                normalize=False, validation_fraction=0.0)
  b = data.load("cifar10", source_dir=archive.parent, data_dir=tmp_path / "t2",
                normalize=False, validation_fraction=0.0)
  assert a.train_x.shape == (15, 32, 32, 3) and a.test_x.shape == (5, 32, 32, 3)
  np.testing.assert_array_equal(_raw(a)[0], expected["train"][0])
  np.testing.assert_array_equal(a.train_y, expected["train"][1])
  np.testing.assert_array_equal(a.train_x, b.train_x)
  np.testing.assert_array_equal(a.test_y, b.test_y)
  assert a.class_names == cifar.CLASS_NAMES


def test_cifar_image_folder_zip_and_directory(tmp_path):
  zpath = tmp_path / "src" / "cifar10-images.zip"
  zpath.parent.mkdir()
  expected = write_cifar_zip(zpath)
  ds = data.load("cifar10", source_dir=tmp_path / "src", data_dir=tmp_path / "t1",
                 normalize=False, validation_fraction=0.0)
  assert ds.train_x.shape == (6, 32, 32, 3) and ds.test_x.shape == (6, 32, 32, 3)
  np.testing.assert_array_equal(_raw(ds)[0], expected["train"][0])
  np.testing.assert_array_equal(ds.train_y, [0, 0, 3, 3, 9, 9])  # folder name -> index
  np.testing.assert_array_equal(_raw(ds)[2], expected["test"][0])
  # The same folder unpacked, with one JPEG (lossy: compared loosely).
  with zipfile.ZipFile(zpath) as zf:
    zf.extractall(tmp_path / "unpacked")
  cat = tmp_path / "unpacked" / "cifar10" / "train" / "cat"
  image = np.full((32, 32, 3), 120, np.uint8)
  (cat / "0099.jpg").write_bytes(_png(image, "JPEG"))
  unpacked = data.load("cifar10", source_dir=tmp_path / "unpacked", data_dir=tmp_path / "t2",
                       normalize=False, validation_fraction=0.0)
  assert unpacked.train_x.shape == (7, 32, 32, 3)
  np.testing.assert_array_equal(unpacked.train_y, [0, 0, 3, 3, 3, 9, 9])
  assert np.abs(_raw(unpacked)[0][4].astype(int) - 120).max() <= 3


def test_boston_housing_csv(tmp_path):
  x, y = write_boston(tmp_path / "src" / "boston_housing.csv", n=30)
  ds = data.load("boston_housing", source_dir=tmp_path / "src", data_dir=tmp_path / "tfds",
                 test_fraction=0.2, validation_fraction=0.25, seed=0)
  assert (len(ds.train_x), len(ds.valid_x), len(ds.test_x)) == (18, 6, 6)
  assert ds.train_x.shape[1:] == (13,) and ds.train_y.dtype == np.float32
  assert ds.num_classes is None and ds.task == "regression"
  np.testing.assert_allclose(ds.train_x.mean(axis=0), 0.0, atol=1e-5)
  np.testing.assert_allclose(ds.train_x.std(axis=0), 1.0, atol=1e-4)
  # Targets are unscaled and all rows are there exactly once.
  all_y = np.concatenate([ds.train_y, ds.valid_y, ds.test_y])
  np.testing.assert_allclose(np.sort(all_y), np.sort(y.astype(np.float32)))
  raw = data.load("boston", source_dir=tmp_path / "src" / "boston_housing.csv",
                  data_dir=tmp_path / "tfds", normalize=False, seed=0,
                  validation_fraction=0.25)
  rows = np.concatenate([raw.train_x, raw.valid_x, raw.test_x])
  np.testing.assert_allclose(rows[np.argsort(rows[:, 0])], x[np.argsort(x[:, 0])],
                             rtol=1e-6)


def test_synthetic_is_deterministic_and_learnable():
  a = data.synthetic("tiny", num_train=640, num_test=200, seed=0)
  b = data.synthetic("tiny", num_train=640, num_test=200, seed=0)
  assert a.train_x.shape == (576, 8, 8, 1) and a.test_x.shape == (200, 8, 8, 1)
  assert a.train_x.dtype == np.float32 and a.train_y.dtype == np.int32
  np.testing.assert_array_equal(a.train_x, b.train_x)
  # Nearest class mean of the training set classifies the test set well.
  means = np.stack([a.train_x[a.train_y == k].mean(0) for k in range(10)])
  dist = ((a.test_x[:, None] - means[None]) ** 2).reshape(200, 10, -1).sum(-1)
  assert (dist.argmin(1) == a.test_y).mean() > 0.9
  assert data.synthetic("mnist", 50, 10).train_x.shape[1:] == (28, 28, 1)
  assert data.synthetic((32, 32, 3), 50, 10, num_classes=4).train_y.max() < 4
  reg = data.synthetic("boston_housing", 100, 20)
  assert reg.num_classes is None and reg.train_x.shape[1:] == (13,)


# ---------------------------------------------------------------------------------------
# Prepared once.


def test_second_load_reads_the_prepared_copy_not_the_sources(tmp_path, monkeypatch):
  write_mnist(tmp_path / "src")
  kwargs = dict(data_dir=tmp_path / "tfds", normalize=False)
  first = data.load("mnist", source_dir=tmp_path / "src", **kwargs)
  record = tmp_path / "tfds" / "lrjax_mnist" / "idx" / "1.0.0" / "lrjax_source.json"
  assert record.is_file()

  def fail(*args, **kwargs):
    raise AssertionError("the sources were parsed again")

  monkeypatch.setattr(idx, "read_splits", fail)
  second = data.load("mnist", source_dir=tmp_path / "src", **kwargs)
  np.testing.assert_array_equal(first.train_x, second.train_x)
  # Without any source at all the prepared copy is still found.
  third = data.load("mnist", download=False, **kwargs)
  np.testing.assert_array_equal(first.test_x, third.test_x)
  # The data dir defaults to $LRJAX_DATA_DIR.
  monkeypatch.setenv("LRJAX_DATA_DIR", str(tmp_path / "tfds"))
  np.testing.assert_array_equal(data.load("mnist", normalize=False, download=False).test_y,
                                first.test_y)


def test_changed_source_files_are_prepared_again(tmp_path):
  write_mnist(tmp_path / "src", _mnist_arrays(seed=0))
  kwargs = dict(source_dir=tmp_path / "src", data_dir=tmp_path / "tfds", normalize=False,
                validation_fraction=0.0)
  before = data.load("mnist", **kwargs)
  time.sleep(0.01)
  new = write_mnist(tmp_path / "src", _mnist_arrays(seed=7))
  after = data.load("mnist", **kwargs)
  np.testing.assert_array_equal(_raw(after)[0][..., 0], new["train"][0])
  assert not np.array_equal(before.train_x, after.train_x)


def test_env_source_dir_is_searched(tmp_path, monkeypatch):
  write_mnist(tmp_path / "sources" / "mnist")
  monkeypatch.setenv("LRJAX_SOURCE_DIR", str(tmp_path / "sources"))
  ds = data.load("mnist", data_dir=tmp_path / "tfds", download=False)
  assert len(ds.train_x) + len(ds.valid_x) == 40


# ---------------------------------------------------------------------------------------
# Missing data: one clear error.


def test_missing_explicit_source_dir(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(data.DatasetNotFoundError) as info:
    data.load("mnist", source_dir=tmp_path / "empty", data_dir=tmp_path / "tfds")
  message = str(info.value)
  assert isinstance(info.value, FileNotFoundError)
  assert str(tmp_path / "empty") in message and "source_dir" in message
  for stem in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
    assert f"{stem}.gz" in message
  assert "load('mnist', source_dir=DIR)" in message


def test_missing_everywhere_lists_every_place_and_the_online_failure(tmp_path, monkeypatch):
  monkeypatch.setenv("LRJAX_SOURCE_DIR", str(tmp_path / "env"))
  from lrjax.data import official

  def offline(name, data_dir):
    raise ConnectionError(f"no network for {name}")

  monkeypatch.setattr(official, "read", offline)
  with pytest.raises(data.DatasetNotFoundError) as info:
    data.load("cifar10", data_dir=tmp_path / "tfds")
  message = str(info.value)
  for place in (tmp_path / "env" / "cifar10", tmp_path / "system" / "cifar10",
                tmp_path / "tfds" / "downloads" / "manual" / "cifar10"):
    assert str(place) in message
  assert "no network for cifar10" in message and "cifar-10-binary.tar.gz" in message
  assert isinstance(info.value.__cause__, ConnectionError)
  with pytest.raises(data.DatasetNotFoundError, match=r"download=False"):
    data.load("mnist", data_dir=tmp_path / "tfds", download=False)
  with pytest.raises(data.DatasetNotFoundError, match="no official builder"):
    data.load("boston_housing", data_dir=tmp_path / "tfds")
  with pytest.raises(ValueError, match="Unknown dataset"):
    data.load("imagenet", data_dir=tmp_path / "tfds")


# ---------------------------------------------------------------------------------------
# Damaged files are detected, named, and never prepared.


def _assert_corrupt(tmp_path, name, filename, match):
  with pytest.raises(data.CorruptDatasetError, match=match) as info:
    data.load(name, source_dir=tmp_path / "src", data_dir=tmp_path / "tfds")
  assert filename in str(info.value)
  assert not list((tmp_path / "tfds").glob("lrjax_*/*/*/dataset_info.json"))


def _images_gz(tmp_path):
  return tmp_path / "src" / "train-images-idx3-ubyte.gz"


def test_truncated_idx(tmp_path):
  arrays = write_mnist(tmp_path / "src")
  _write_gz(_images_gz(tmp_path), _idx_bytes(arrays["train"][0])[:-100])
  _assert_corrupt(tmp_path, "mnist", "train-images-idx3-ubyte.gz", "truncated")


def test_bad_idx_magic(tmp_path):
  arrays = write_mnist(tmp_path / "src")
  _write_gz(_images_gz(tmp_path), _idx_bytes(arrays["train"][0], magic=0x00000D03))
  _assert_corrupt(tmp_path, "mnist", "train-images-idx3-ubyte.gz", "magic number")


def test_wrong_image_size_in_idx(tmp_path):
  write_mnist(tmp_path / "src")
  _write_gz(_images_gz(tmp_path), _idx_bytes(np.zeros((40, 20, 20), np.uint8)))
  _assert_corrupt(tmp_path, "mnist", "train-images-idx3-ubyte.gz", r"expected \(28, 28\)")


def test_corrupt_gzip_crc_and_truncated_gzip(tmp_path):
  write_mnist(tmp_path / "src")
  raw = bytearray(_images_gz(tmp_path).read_bytes())
  raw[-6] ^= 0xFF  # inside the CRC-32 trailer
  _images_gz(tmp_path).write_bytes(bytes(raw))
  _assert_corrupt(tmp_path, "mnist", "train-images-idx3-ubyte.gz", "gzip")
  _images_gz(tmp_path).write_bytes(bytes(raw[: len(raw) // 2]))
  _assert_corrupt(tmp_path, "mnist", "train-images-idx3-ubyte.gz", "gzip")


def test_label_count_mismatch_and_label_range(tmp_path):
  arrays = write_mnist(tmp_path / "src")
  labels = tmp_path / "src" / "train-labels-idx1-ubyte.gz"
  _write_gz(labels, _idx_bytes(arrays["train"][1][:-1]))
  _assert_corrupt(tmp_path, "mnist", "train-labels-idx1-ubyte.gz", "39 labels for 40 images")
  bad = arrays["train"][1].copy()
  bad[5] = 10
  _write_gz(labels, _idx_bytes(bad))
  _assert_corrupt(tmp_path, "mnist", "train-labels-idx1-ubyte.gz", "out of range")


def test_bad_cifar_record_length_and_label(tmp_path):
  write_cifar_binary(tmp_path / "src")
  batch = tmp_path / "src" / cifar.BINARY_DIR / "data_batch_3.bin"
  payload = batch.read_bytes()
  batch.write_bytes(payload[:-7])
  _assert_corrupt(tmp_path, "cifar10", "data_batch_3.bin", "3073-byte records")
  bad = bytearray(payload)
  bad[cifar.RECORD_BYTES] = 12  # label of the second record
  batch.write_bytes(bytes(bad))
  _assert_corrupt(tmp_path, "cifar10", "data_batch_3.bin", "label 12 out of range")


def test_cifar_zip_crc_error_names_the_member(tmp_path):
  zpath = tmp_path / "src" / "cifar10-images.zip"
  zpath.parent.mkdir()
  write_cifar_zip(zpath)
  member = "cifar10/train/cat/0001.png"
  with zipfile.ZipFile(zpath) as zf:
    info = zf.getinfo(member)
  raw = bytearray(zpath.read_bytes())
  name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
  extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
  raw[info.header_offset + 30 + name_len + extra_len + 100] ^= 0xFF
  zpath.write_bytes(bytes(raw))
  _assert_corrupt(tmp_path, "cifar10", member, "CRC")
  zpath.write_bytes(bytes(raw[: len(raw) // 2]))  # truncated: no central directory
  _assert_corrupt(tmp_path, "cifar10", "cifar10-images.zip", "unreadable zip")


def test_cifar_unknown_class_folder_and_bad_csv(tmp_path):
  (tmp_path / "src").mkdir()
  with zipfile.ZipFile(tmp_path / "src" / "cifar10.zip", "w") as zf:
    zf.writestr("train/zebra/0.png", _png(np.zeros((32, 32, 3), np.uint8)))
    zf.writestr("test/cat/0.png", _png(np.zeros((32, 32, 3), np.uint8)))
  _assert_corrupt(tmp_path, "cifar10", "cifar10.zip", "zebra")
  csv_path = tmp_path / "src" / "boston_housing.csv"
  write_boston(csv_path, n=5)
  csv_path.write_text(csv_path.read_text().replace("\n", "\nnot,a,number" + ",0" * 12 + "\n", 1))
  _assert_corrupt(tmp_path, "boston_housing", "boston_housing.csv", "line 2")


# ---------------------------------------------------------------------------------------
# The real files, when this checkout sits next to them.


@pytest.mark.slow
def test_shared_mnist_and_boston(tmp_path):
  if not (SHARED_DATA / "mnist").is_dir():
    pytest.skip(f"{SHARED_DATA} not present")
  start = time.perf_counter()
  ds = data.load("mnist", source_dir=SHARED_DATA / "mnist", data_dir=tmp_path)
  assert (len(ds.train_x), len(ds.valid_x), len(ds.test_x)) == (54000, 6000, 10000)
  assert ds.train_x.shape[1:] == (28, 28, 1)
  np.testing.assert_array_equal(np.bincount(ds.test_y),
                                [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
  np.testing.assert_array_equal(np.bincount(np.concatenate([ds.train_y, ds.valid_y])),
                                [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
  np.testing.assert_allclose(ds.mean, [0.1307], atol=2e-4)
  boston = data.load("boston_housing", source_dir=SHARED_DATA, data_dir=tmp_path)
  assert len(boston.train_x) + len(boston.valid_x) + len(boston.test_x) == 506
  assert boston.train_x.shape[1:] == (13,)
  assert time.perf_counter() - start < 60, os.environ.get("PYTEST_CURRENT_TEST")


# -- the datasets a name selects (lrjax.data.by_name: the CLI's and the sweep file's) --

def test_the_names_are_the_demo_and_the_catalogue_each_with_a_built_in_model():
  from lrjax.data import DATASETS, by_name
  from lrjax.models import MODELS
  assert (by_name.SYNTHETIC, *DATASETS) == by_name.NAMES
  for name in by_name.NAMES:
    assert by_name.default_model(name) in MODELS, name


def test_regression_is_read_from_the_catalogue_not_from_a_name():
  from lrjax.data import DATASETS, by_name
  for name, spec in DATASETS.items():
    want = "regression" if spec.num_classes is None else "classification"
    assert spec.task == by_name.task(name) == want, name
  assert by_name.task("boston_housing") == "regression"  # the one without classes
  assert by_name.task(by_name.SYNTHETIC) == "classification"


def test_an_unknown_name_is_refused_naming_the_argument_and_the_choices():
  from lrjax.data import by_name
  from lrjax.errors import ArgumentError
  for call in (by_name.default_model, by_name.task, by_name.load):
    with pytest.raises(ArgumentError) as err:
      call("imagenet")
    assert err.value.argument == "dataset" and "boston_housing" in err.value.problem


def test_a_train_size_keeps_a_seeded_random_subset_of_the_training_examples():
  from lrjax.data import by_name
  full = by_name.load(by_name.SYNTHETIC)
  cut = by_name.load(by_name.SYNTHETIC, train_size=100)
  assert len(cut.train_x) == 100 and len(full.train_x) == by_name.SYNTHETIC_TRAIN - len(
      full.valid_x)
  rows = {row.tobytes(): label for row, label in zip(full.train_x, full.train_y,
                                                     strict=True)}
  assert all(rows[row.tobytes()] == label for row, label in zip(cut.train_x, cut.train_y,
                                                                strict=True))
  labels = np.unique(cut.train_y)
  assert len(labels) > 5  # drawn at random, not the first examples of one class
  np.testing.assert_array_equal(cut.valid_x, full.valid_x)  # only the training set is cut
  np.testing.assert_array_equal(
      by_name.load(by_name.SYNTHETIC, train_size=100).train_x, cut.train_x)  # seeded
  assert by_name.load(by_name.SYNTHETIC, train_size=10**6).train_x.shape == full.train_x.shape
  from lrjax.errors import ArgumentError
  with pytest.raises(ArgumentError, match="`train_size` must be an integer of at least 1"):
    by_name.load(by_name.SYNTHETIC, train_size=0)
