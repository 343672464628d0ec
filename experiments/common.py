"""What every experiment shares: command-line flags, data with a quick fallback, output.

Each experiment is one command (``python experiments/<name>.py``) that trains all its
variants through the vmapped sweep engine and writes JSON/CSV, PNG figures and a
markdown table into ``--out``.  ``--quick`` runs a scaled-down version on a CPU in a
few minutes: real data (cut to ``--train-size``) when the standard files are found,
else a synthetic dataset of the same shape (said so in the output), so that CI, which
has no datasets, runs it too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Make `python experiments/x.py` work from a checkout without installing anything else.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lrjax import data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SOURCE_NAMES = {"mnist": "mnist", "cifar10": "cifar10", "fashion_mnist": "fashion_mnist",
                "boston_housing": "boston_housing"}


def base_parser(description: str, default_out: str) -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--quick", action="store_true",
                      help="scaled-down run for a CPU (a few minutes)")
  parser.add_argument("--out", default=default_out, help="results folder")
  parser.add_argument("--source-dir", default=None,
                      help="folder holding the datasets' standard files "
                           "(default: $LRJAX_SOURCE_DIR, then ../shared/data if present)")
  parser.add_argument("--data-dir", default=None, help="prepared-dataset cache")
  parser.add_argument("--seeds", type=int, default=None, help="seeds per setting")
  parser.add_argument("--epochs", type=int, default=None, help="override the epochs")
  parser.add_argument("--train-size", type=int, default=None,
                      help="use only the first N training examples")
  parser.add_argument("--synthetic", action="store_true",
                      help="use synthetic data of the right shape (no files needed)")
  parser.add_argument("--no-progress", action="store_true")
  return parser


def _source_dir(args) -> Path | None:
  if args.source_dir:
    return Path(args.source_dir)
  if SHARED_DATA.exists():
    return SHARED_DATA
  return None


def get_dataset(name: str, args, *, quick_train_size: int = 2000, quick_test_size: int = 500,
                seed: int = 0) -> tuple[data.Dataset, str]:
  """The dataset for an experiment and a one-line note of what it is."""
  train_size = args.train_size or (quick_train_size if args.quick else None)
  dataset = None
  note = ""
  if not args.synthetic:
    try:
      dataset = data.load(name, source_dir=_source_dir(args), data_dir=args.data_dir,
                          seed=seed)
      note = f"{name} (real files)"
    except FileNotFoundError as err:
      if not args.quick:
        raise
      note = f"{name} not found ({str(err).splitlines()[0]}); synthetic stand-in"
  if dataset is None:
    n_train = train_size or 2000
    dataset = data.synthetic(name, num_train=n_train, num_test=quick_test_size, seed=seed)
    note = note or f"synthetic stand-in shaped like {name}"
  if train_size is not None and dataset.train_x.shape[0] > train_size:
    dataset = dataset._replace(train_x=dataset.train_x[:train_size],
                               train_y=dataset.train_y[:train_size])
    note += f", first {train_size} training examples"
  if args.quick and dataset.test_x.shape[0] > quick_test_size:
    dataset = dataset._replace(valid_x=dataset.valid_x[:quick_test_size],
                               valid_y=dataset.valid_y[:quick_test_size],
                               test_x=dataset.test_x[:quick_test_size],
                               test_y=dataset.test_y[:quick_test_size])
  print(f"data: {note}: train/valid/test = {len(dataset.train_x)}/{len(dataset.valid_x)}/"
        f"{len(dataset.test_x)}", flush=True)
  return dataset, note


def write_json(path: Path, payload) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(payload, indent=1, default=float))
  return path
