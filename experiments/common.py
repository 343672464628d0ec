"""What every experiment shares: command-line flags, data with a quick fallback, output.

Each experiment is one command (``python experiments/<name>.py``) that trains all its
variants through the vmapped sweep engine and writes JSON/CSV, PNG figures and a
markdown table into ``--out``.  ``--quick`` runs a scaled-down version on a CPU in a
few minutes: real data (random subsets) when the standard files are found,
else a synthetic dataset of the same shape (said so in the output), so that CI, which
has no datasets, runs it too.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

# Make `python experiments/x.py` work from a checkout without installing anything else.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lrjax import data  # noqa: E402
from lrjax.train.reports import metrics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
                      help="use a random (seeded) N of the training examples")
  parser.add_argument("--test-size", type=int, default=None,
                      help="use a random (seeded) N of the validation and of the test "
                           "examples")
  parser.add_argument("--synthetic", action="store_true",
                      help="use synthetic data of the right shape (no files needed)")
  parser.add_argument("--no-progress", action="store_true")
  return parser


# ``--quick``: epochs, random training subset, validation/test examples per split.
QUICK_EPOCHS, QUICK_TRAIN, QUICK_TEST = 3, 2000, 500


def quick_dataset(name: str, args, *, quick_train: int = QUICK_TRAIN,
                  quick_test: int = QUICK_TEST, seed: int = 0):
  """`get_dataset` with ``--quick``'s subsets: ``quick_train`` training and
  ``quick_test`` validation/test examples (``--train-size`` still wins)."""
  return get_dataset(name, args, train_size=quick_train if args.quick else None,
                     test_size=quick_test if args.quick else None, seed=seed)


def _source_candidates(name: str, args) -> list:
  """Where to look: ``--source-dir``, else ../shared/data when it holds ``name``, else
  lrjax's own search ($LRJAX_SOURCE_DIR, the cache, /usr/share/datasets)."""
  if args.source_dir:
    return [Path(args.source_dir)]
  candidates = [None]
  if any((SHARED_DATA / d).exists() for d in (name, name.replace("_", "-"))):
    candidates.insert(0, SHARED_DATA)
  return candidates


def _random_subset(dataset, split: str, size: int, rng):
  x, y = getattr(dataset, f"{split}_x"), getattr(dataset, f"{split}_y")
  if size >= len(x):
    return dataset
  keep = np.sort(rng.permutation(len(x))[:size])
  return dataset._replace(**{f"{split}_x": x[keep], f"{split}_y": y[keep]})


def get_dataset(name: str, args, *, train_size: int | None = None,
                test_size: int | None = None, seed: int = 0) -> tuple[data.Dataset, str]:
  """The dataset for an experiment and a one-line note of what it is.

  ``args.train_size`` (else ``train_size``) cuts the training set and
  ``args.test_size`` (else ``test_size``) the validation and test sets, to *random* seeded
  subsets: the CIFAR-10 image-folder export is sorted by class, so its first N examples
  would be one class.  With ``--synthetic``, or with ``--quick`` when no files are found,
  a synthetic stand-in of the same shape is used (and said so).
  """
  train_size = args.train_size or train_size
  test_size = getattr(args, "test_size", None) or test_size
  dataset, note, error = None, "", None
  if not args.synthetic:
    for source in _source_candidates(name, args):
      try:
        dataset = data.load(name, source_dir=source, data_dir=args.data_dir, seed=seed)
        note = f"{name} (real files)"
        break
      except FileNotFoundError as err:
        error = err
    if dataset is None:
      if not args.quick:
        raise error
      note = f"{name} not found ({str(error).splitlines()[0]}); synthetic stand-in"
  if dataset is None:
    dataset = data.synthetic(name, num_train=train_size or 2000, num_test=test_size or 500,
                             seed=seed)
    note = note or f"synthetic stand-in shaped like {name}"
  rng = np.random.default_rng(seed)
  if train_size is not None and train_size < len(dataset.train_x):
    dataset = _random_subset(dataset, "train", train_size, rng)
    note += f", random {train_size} training examples"
  if test_size is not None and test_size < max(len(dataset.valid_x), len(dataset.test_x)):
    for split in ("valid", "test"):
      dataset = _random_subset(dataset, split, test_size, rng)
    note += f", random {test_size} validation/test examples"
  print(f"using: {note}: train/valid/test = {len(dataset.train_x)}/{len(dataset.valid_x)}/"
        f"{len(dataset.test_x)}", flush=True)
  return dataset, note


def jsonable(obj):
  """``obj`` with numpy values made plain and NaN/inf as None (strict JSON)."""
  if isinstance(obj, dict):
    return {k: jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [jsonable(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return jsonable(obj.tolist())
  if isinstance(obj, (float, np.floating)):
    return float(obj) if np.isfinite(obj) else None
  if isinstance(obj, np.integer):
    return int(obj)
  if isinstance(obj, np.bool_):
    return bool(obj)
  return obj


def write_json(path: Path, payload) -> Path:
  """Writes ``payload`` as strict JSON (see `jsonable`)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(jsonable(payload), indent=1, default=float))
  return path


def write_csv(path: Path, rows, fields) -> Path:
  """``rows`` (dicts) as CSV, the columns ``fields`` in that order."""
  with path.open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(fields)
    for r in rows:
      writer.writerow([r[k] for k in fields])
  return path


# ------------------------------------------------------------------- seeds of a setting
def _identity(variant) -> str:
  """A variant's setting: its configuration without its name and seed."""
  d = {k: v for k, v in variant.to_dict().items() if k not in ("name", "seed")}
  return json.dumps(d, sort_keys=True, default=repr)


def setting_names(result, named_settings) -> list[str]:
  """Per variant of ``result`` (a `run_sweep` result), the name of its setting.

  ``named_settings``: the experiment's variants of one seed, each named after its
  setting; a variant of the result belongs to the one with the same configuration
  apart from name and seed (its identity; labels are never parsed)."""
  names = {_identity(v): v.name for v in named_settings}
  out = []
  for v in result.config.variants:
    key = _identity(v)
    if key not in names:
      raise ValueError(f"variant {v.name!r} matches none of the settings "
                       f"{[s.name for s in named_settings]}.")
    out.append(names[key])
  return out


def seed_aggregates(result, named_settings) -> dict[str, dict]:
  """Setting name -> its `lrjax.train.reports.metrics.aggregate_seeds` row (mean, std, min, max
  over the seeds of each summary measure, ``per_seed``, ``names``, ``nonfinite_seeds``)."""
  rows = metrics.aggregate_seeds(result.summary, setting_names(result, named_settings))
  return {r["setting"]: r for r in rows}


def setting_columns(result, named_settings) -> dict[str, list[int]]:
  """Setting name -> the columns of ``result.history`` holding its seeds."""
  columns: dict[str, list[int]] = {}
  for k, name in enumerate(setting_names(result, named_settings)):
    columns.setdefault(name, []).append(k)
  return columns


def stat(row: dict, field: str, which: str = "mean") -> float:
  """``row[f"{field}_{which}"]``, NaN where no seed had a number."""
  value = row.get(f"{field}_{which}")
  return float("nan") if value is None else value


def mean_std_text(mean, std, seeds, digits, integer=False) -> str:
  """A table cell: ``mean ± std`` over several seeds, the value for one, n/a for none."""
  if mean is None or not math.isfinite(mean):
    return "n/a"
  text = f"{mean:.1f}" if integer and seeds > 1 else (
      f"{mean:.0f}" if integer else f"{mean:.{digits}f}")
  if seeds > 1:
    text += f" ± {std:.1f}" if integer else f" ± {std:.{digits}f}"
  return text
