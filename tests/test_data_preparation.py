"""Dataset preparations that die half-way, and what tfds prints while preparing.

A preparation killed with SIGKILL in the middle of writing examples (in a subprocess) or
failing with an exception must leave no ``incomplete.*`` folder behind once the next
preparation has run, must never cost a good prepared copy, and tfds' own progress prints
must not reach stdout (scripts parse lrjax's output there).
"""

import gzip
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lrjax import data
from lrjax.data import builders, discovery, preparing

REPO = Path(__file__).resolve().parents[1]
DATASET_DIR = ("lrjax_mnist", "idx")  # under the data dir: the folder of version folders


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
  monkeypatch.delenv("LRJAX_SOURCE_DIR", raising=False)
  monkeypatch.setenv("LRJAX_DATA_DIR", str(tmp_path / "default_data_dir"))
  monkeypatch.setattr(discovery, "SYSTEM_DIRS", (tmp_path / "system",))


def _idx(array) -> bytes:
  array = np.asarray(array, np.uint8)
  header = (0x08 << 8 | array.ndim).to_bytes(4, "big")
  return header + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def write_mnist(folder: Path, seed: int = 0) -> np.ndarray:
  """Tiny MNIST IDX files (40 train, 12 test); returns the training images."""
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  train = None
  for stem, n in (("train", 40), ("t10k", 12)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    train = images if stem == "train" else train
    (folder / f"{stem}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
    (folder / f"{stem}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.arange(n) % 10)))
  return train


def _train_images(dataset) -> np.ndarray:
  """The raw training images of a ``normalize=False, validation_fraction=0`` load."""
  return np.rint(dataset.train_x[..., 0] * 255).astype(np.uint8)


def _load(src, data_dir, **kw):
  return data.load("mnist", source_dir=src, data_dir=data_dir, normalize=False,
                   validation_fraction=0.0, **kw)


_KILLED_MIDWAY = textwrap.dedent(r"""
  import os, signal, sys
  from lrjax import data
  from lrjax.data import builders
  generate = builders._LocalBuilder._generate_examples

  def dies_midway(self, x, y):
    for i, example in enumerate(generate(self, x, y)):
      if i == len(x) // 2:
        os.kill(os.getpid(), signal.SIGKILL)
      yield example

  builders._LocalBuilder._generate_examples = dies_midway
  data.load("mnist", source_dir=sys.argv[1], data_dir=sys.argv[2])
""")


def _prepare_and_get_killed(src: Path, data_dir: Path):
  proc = subprocess.run([sys.executable, "-c", _KILLED_MIDWAY, str(src), str(data_dir)],
                        env=dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu"),
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
  partial = preparing.partial_copies(data_dir.joinpath(*DATASET_DIR))
  assert partial, "the killed preparation left nothing to clean: the test tests nothing"
  return partial


def test_preparation_killed_midway_leaves_no_partial_copy_after_the_next(tmp_path):
  src, data_dir = tmp_path / "src", tmp_path / "tfds"
  images = write_mnist(src)
  _prepare_and_get_killed(src, data_dir)
  dataset = _load(src, data_dir)
  np.testing.assert_array_equal(_train_images(dataset), images)
  assert preparing.partial_copies(data_dir.joinpath(*DATASET_DIR)) == []
  assert not list(data_dir.rglob("incomplete.*"))


def test_killed_re_preparation_never_costs_the_good_prepared_copy(tmp_path):
  src, data_dir = tmp_path / "src", tmp_path / "tfds"
  old = write_mnist(src, seed=0)
  _load(src, data_dir)  # a good prepared copy
  new = write_mnist(src, seed=1)  # changed files: the next load prepares again...
  _prepare_and_get_killed(src, data_dir)  # ...and is killed half-way
  # The prepared copy is intact and still read when no source is given.
  kept = _load(None, data_dir, download=False)
  np.testing.assert_array_equal(_train_images(kept), old)
  # The next preparation removes the partial copy and replaces the stale one.
  again = _load(src, data_dir)
  np.testing.assert_array_equal(_train_images(again), new)
  assert not list(data_dir.rglob("incomplete.*"))


def test_exception_midway_keeps_the_good_copy_and_leaves_no_partial(tmp_path, monkeypatch):
  src, data_dir = tmp_path / "src", tmp_path / "tfds"
  old = write_mnist(src, seed=0)
  _load(src, data_dir)
  write_mnist(src, seed=1)
  generate = builders._LocalBuilder._generate_examples  # pylint: disable=protected-access

  def fails_midway(self, x, y):
    for i, example in enumerate(generate(self, x, y)):
      if i == len(x) // 2:
        raise OSError("disk full (injected)")
      yield example

  monkeypatch.setattr(builders._LocalBuilder, "_generate_examples", fails_midway)  # pylint: disable=protected-access
  with pytest.raises(Exception, match="injected"):
    _load(src, data_dir)
  assert not list(data_dir.rglob("incomplete.*"))
  np.testing.assert_array_equal(_train_images(_load(None, data_dir, download=False)), old)


def test_cleanup_touches_only_partial_copies(tmp_path):
  folder = tmp_path / "lrjax_mnist" / "idx"
  (folder / "1.0.0").mkdir(parents=True)
  (folder / "1.0.0" / "dataset_info.json").write_text("{}")
  (folder / "incomplete.AB12CD_1.0.0" / "x").mkdir(parents=True)
  with preparing.exclusive(folder):
    removed = preparing.remove_partial_copies(folder)
  assert [p.name for p in removed] == ["incomplete.AB12CD_1.0.0"]
  assert (folder / "1.0.0" / "dataset_info.json").is_file()


def test_tfds_prints_go_to_stderr_not_stdout(tmp_path, capfd):
  src = tmp_path / "src"
  write_mnist(src)
  capfd.readouterr()
  _load(src, tmp_path / "tfds")
  captured = capfd.readouterr()
  assert captured.out == ""
  assert "Downloading and preparing dataset" in captured.err  # still shown, on stderr


def test_cli_stdout_holds_only_lrjax_output_when_preparing(tmp_path, capfd):
  from lrjax import cli
  src = tmp_path / "src"
  write_mnist(src)
  capfd.readouterr()
  assert cli.main(["sweep", "--dataset", "mnist", "--source-dir", str(src), "--data-dir",
                   str(tmp_path / "tfds"), "--model", "logistic", "--epochs", "1",
                   "--batch-size", "8", "--no-progress", "--out", str(tmp_path / "out")]) == 0
  captured = capfd.readouterr()
  assert captured.out.startswith("| Method |"), captured.out[:300]
  assert "Downloading and preparing" not in captured.out
  assert "Downloading and preparing" in captured.err


# -- a damaged prepared copy --------------------------------------------------------------

VERSION_DIR = DATASET_DIR + ("1.0.0",)
TRAIN_FILE = "lrjax_mnist-train.array_record-00000-of-00001"


def _flip(path: Path, at: float = 1 / 6, count: int = 64):
  raw = bytearray(path.read_bytes())
  start = int(len(raw) * at)
  raw[start:start + count] = bytes(b ^ 0xFF for b in raw[start:start + count])
  path.write_bytes(bytes(raw))


DAMAGE = {  # what an operator found: tfds / array_record said it in 37-63 lines, or nothing
    "truncated records": lambda d: (d / TRAIN_FILE).write_bytes(
        (d / TRAIN_FILE).read_bytes()[:30000]),
    "flipped bytes": lambda d: _flip(d / TRAIN_FILE),
    "flipped header (read back silently)": lambda d: _flip(d / TRAIN_FILE, at=0),
    "garbage dataset_info.json": lambda d: (d / "dataset_info.json").write_text("garbage{{"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_prepared_copy_is_one_line_without_its_source(tmp_path, damage):
  src, data_dir = tmp_path / "src", tmp_path / "tfds"
  write_mnist(src)
  _load(src, data_dir)
  copy = data_dir.joinpath(*VERSION_DIR)
  DAMAGE[damage](copy)
  before = sorted(p.name for p in copy.iterdir())
  with pytest.raises(data.CorruptPreparedCopyError) as info:
    _load(None, data_dir, download=False)
  message = str(info.value)
  assert "\n" not in message and len(message) < 500
  assert message.startswith(f"the prepared copy of mnist in {copy} is damaged (")
  assert "--source-dir" in message and f"or delete {copy}" in message
  assert sorted(p.name for p in copy.iterdir()) == before  # nothing deleted: the user decides


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_prepared_copy_is_prepared_again_from_its_source(tmp_path, damage, capfd):
  src, data_dir = tmp_path / "src", tmp_path / "tfds"
  images = write_mnist(src)
  _load(src, data_dir)
  DAMAGE[damage](data_dir.joinpath(*VERSION_DIR))
  capfd.readouterr()
  dataset = _load(src, data_dir)
  np.testing.assert_array_equal(_train_images(dataset), images)
  notices = [line for line in capfd.readouterr().err.splitlines() if line.startswith("lrjax:")]
  assert len(notices) == 1 and "is damaged" in notices[0] and "preparing it again from" in (
      notices[0]), notices
  # The new copy is whole: read back without a source, silently, and nothing set aside.
  np.testing.assert_array_equal(_train_images(_load(None, data_dir, download=False)), images)
  assert not [line for line in capfd.readouterr().err.splitlines() if line.startswith("lrjax:")]
  assert sorted(p.name for p in data_dir.joinpath(*DATASET_DIR).iterdir()
                if not p.name.startswith(".")) == ["1.0.0"]


def test_a_copy_without_checksums_damaged_is_still_caught_by_its_reader(tmp_path, capfd):
  """A copy prepared before the checksums were recorded: the reader's own error is the
  one line, and with the source it is prepared again."""
  import json
  src, data_dir = tmp_path / "src", tmp_path / "tfds"
  images = write_mnist(src)
  _load(src, data_dir)
  copy = data_dir.joinpath(*VERSION_DIR)
  record = json.loads((copy / builders.SOURCE_RECORD).read_text())
  del record["files"]
  (copy / builders.SOURCE_RECORD).write_text(json.dumps(record))
  _flip(copy / TRAIN_FILE)
  with pytest.raises(data.CorruptPreparedCopyError, match="it cannot be read: RuntimeError"):
    _load(None, data_dir, download=False)
  np.testing.assert_array_equal(_train_images(_load(src, data_dir)), images)


def test_cli_a_damaged_prepared_copy_is_one_line(tmp_path, capfd):
  from lrjax import cli
  src, data_dir = tmp_path / "src", tmp_path / "tfds"
  write_mnist(src)
  _load(src, data_dir)
  DAMAGE["truncated records"](data_dir.joinpath(*VERSION_DIR))
  capfd.readouterr()
  code = cli.main(["sweep", "--dataset", "mnist", "--data-dir", str(data_dir), "--model",
                   "logistic", "--epochs", "1", "--batch-size", "8", "--no-progress",
                   "--no-checkpoint", "--out", str(tmp_path / "out")])
  err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
  assert code == 1 and len(err) == 1, err
  assert err[0].startswith(f"lrjax: error: the prepared copy of mnist in "
                           f"{data_dir.joinpath(*VERSION_DIR)} is damaged")
