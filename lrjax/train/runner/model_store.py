"""Trained variants on disk: saved with orbax, verified by checksum when loaded back.

``<out_dir>/models/`` holds one folder per kept variant (`lrjax.sweep`'s ``keep``),
named as its TensorBoard run (`lrjax.train.reports.writers.run_folders`), and
``index.json`` mapping each variant's name to its folder.  A folder holds the orbax
checkpoint of ``{"params": the evaluation weights, "model_state": BatchNorm statistics
...}`` and an integrity record (``lrjax_integrity.json``: per array its SHA-256, shape,
dtype; sealed by its own digest), written after orbax finished, as the sweep's
checkpoints are (`lrjax.train.runner.checkpoint`).  `load_variant` refuses a folder
whose record is missing, damaged or does not match what orbax reads, in one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orbax.checkpoint as ocp

from lrjax import _atomic
from lrjax.train.reports.writers import run_folders
from lrjax.train.runner import checkpoint as checkpoint_lib

MODELS_DIR = "models"
INDEX_FILE = "index.json"
FORMAT = 1


class ModelStoreError(ValueError):
  """A saved variant cannot be loaded as it is; the message is one line saying why."""


def save_variants(out_dir, variants: Mapping[str, Mapping[str, Any]]) -> Path:
  """Writes ``{name: {"params": ..., "model_state": ...}}`` under ``out_dir/models``;
  returns that folder.  A variant saved before under the same name is replaced.

  Raises:
    lrjax._atomic.OutputWriteError: the folder is full or cannot be written: one line
      naming it and the cause (orbax's own output is kept in a log file, not shown).
  """
  failure = None
  with checkpoint_lib._CapturedOutput() as capture:
    try:
      return _save(out_dir, variants)
    except Exception as err:  # noqa: BLE001  (one line; orbax's output logged)
      failure = checkpoint_lib.failure_cause(err)
      capture.failed = True
  log = capture.keep(f"saving the kept variants in {out_dir} failed: {failure}\n")
  where = f"; orbax's output is in {log}" if log else ""
  raise _atomic.OutputWriteError(
      f"writing the kept variants to {Path(out_dir).absolute() / MODELS_DIR} failed "
      f"({failure}){where}")


def _save(out_dir, variants) -> Path:
  root = Path(out_dir).absolute() / MODELS_DIR
  root.mkdir(parents=True, exist_ok=True)
  index_path = root / INDEX_FILE
  index = json.loads(index_path.read_text()) if index_path.exists() else {}
  names = list(variants)
  for name, folder in zip(names, run_folders(names), strict=True):
    tree = {"params": variants[name]["params"],
            "model_state": dict(variants[name].get("model_state") or {})}
    tree = {k: v for k, v in tree.items() if v or k == "params"}
    path = root / folder
    if path.exists():
      import shutil
      shutil.rmtree(path)
    checkpointer = _checkpointer()
    checkpointer.save(path / "state", tree)
    checkpointer.wait_until_finished()
    record = checkpoint_lib._seal({"format": FORMAT, "name": name,
                                   "leaves": checkpoint_lib._describe(tree)})
    _atomic.write_text(path / checkpoint_lib.RECORD_FILE, json.dumps(record))
    index[name] = folder
  _atomic.write_text(index_path, json.dumps(index, indent=1, sort_keys=True))
  return root


def saved_names(out_dir) -> list[str]:
  """The names of the variants saved under ``out_dir`` (none: an empty list)."""
  index_path = Path(out_dir) / MODELS_DIR / INDEX_FILE
  return sorted(json.loads(index_path.read_text())) if index_path.exists() else []


def load_variant(out_dir, name: str) -> dict[str, Any]:
  """``{"params": ..., "model_state": ...}`` of variant ``name`` saved in ``out_dir``
  by `lrjax.sweep(..., out_dir=out_dir, keep=...)`, verified by checksum: ready for
  ``model.apply({"params": v["params"], **v["model_state"]}, x, train=False)``.

  Raises:
    ModelStoreError: nothing saved under that name (the names saved are listed), or the
      saved copy does not verify (what to do is said).
  """
  root = Path(out_dir).absolute() / MODELS_DIR
  index_path = root / INDEX_FILE
  if not index_path.exists():
    raise ModelStoreError(f"{Path(out_dir).absolute()} holds no saved variants (no "
                          f"{MODELS_DIR}/{INDEX_FILE}); run the sweep with out_dir= and "
                          f"keep='best' or 'all'.")
  try:
    index = json.loads(index_path.read_text())
  except ValueError as err:
    raise ModelStoreError(f"{index_path} is damaged ({checkpoint_lib.one_line(err)}); "
                          f"run the sweep again to rewrite it.") from None
  if name not in index:
    raise ModelStoreError(f"no variant {name!r} saved in {root}; saved: "
                          f"{', '.join(sorted(index)) or 'none'}.")
  path = root / index[name]
  record_path = path / checkpoint_lib.RECORD_FILE
  damaged = f"the saved copy of {name!r} in {path} is damaged"
  try:
    record = json.loads(record_path.read_text())
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    if checkpoint_lib._seal(body) != record or record.get("name") != name:
      raise ValueError("its integrity record does not verify")
    restored = _checkpointer().restore(path / "state")
  except Exception as err:  # noqa: BLE001  (one line: what is wrong, what to do)
    raise ModelStoreError(f"{damaged} ({checkpoint_lib.one_line(err)}); run the sweep "
                          f"again with keep= to save it anew.") from None
  restored = {k: v for k, v in dict(restored).items()}
  reason = checkpoint_lib._mismatch(record["leaves"], restored)
  if reason is not None:
    raise ModelStoreError(f"{damaged} ({reason}); run the sweep again with keep= to save "
                          f"it anew.")
  restored = _numpy(restored)
  return {"params": restored["params"], "model_state": restored.get("model_state", {})}


def _checkpointer() -> ocp.StandardCheckpointer:
  """Orbax's checkpointer of this process alone: the kept variants are host arrays that
  process 0 writes (in a multi-process run the others do not wait for it)."""
  import jax
  me = jax.process_index()
  return ocp.StandardCheckpointer(multiprocessing_options=ocp.options.MultiprocessingOptions(
      primary_host=me, active_processes={me}))


def _numpy(tree):
  import jax
  return jax.tree.map(np.asarray, tree)
