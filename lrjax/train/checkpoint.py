"""Orbax checkpoints of a sweep: every group's state, the history so far, the epoch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

_CONFIG_FILE = "sweep_config.json"


class SweepCheckpointer:
  """Saves and restores ``{"states": [...], "history": {...}}`` keyed by epoch.

  The sweep's config is written beside the checkpoints; resuming with a different config
  raises instead of mixing two sweeps.
  """

  def __init__(self, directory: str | Path, config_dict: dict[str, Any], max_to_keep: int = 2):
    self.directory = Path(directory).absolute()
    self.directory.mkdir(parents=True, exist_ok=True)
    config_path = self.directory / _CONFIG_FILE
    if config_path.exists():
      saved = json.loads(config_path.read_text())
      if saved != json.loads(json.dumps(config_dict)):
        raise ValueError(
            f"checkpoint directory {self.directory} holds a different sweep; "
            "use another `checkpoint_dir` or delete it.")
    else:
      config_path.write_text(json.dumps(config_dict, indent=1))
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep))

  def latest_epoch(self) -> int | None:
    return self.manager.latest_step()

  def save(self, epoch: int, tree) -> None:
    self.manager.save(epoch, args=ocp.args.StandardSave(tree))
    self.manager.wait_until_finished()

  def restore(self, epoch: int, target):
    return self.manager.restore(epoch, args=ocp.args.StandardRestore(target))

  def close(self):
    self.manager.close()
