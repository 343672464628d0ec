"""The controller protocol: what acts on a sweep between its epochs.

A controller is an object passed as ``lrjax.sweep(..., controller=...)``.  It has two
methods, both of plain Python and numpy (nothing is traced):

* ``init(setup) -> (configurations, state)``: the configurations the sweep starts with
  (a list of hyperparameter dicts; ``None`` keeps the ones given as ``hparams``) and the
  controller's initial state;
* ``decide(state, view) -> (state, decisions)``: called before every epoch after the
  first with a `View` of the run so far (every slot's metrics, its hyperparameters in
  force, whether it is alive); returns the new state and the `Decisions` for the next
  epoch.

Two optional methods: ``sweep_epochs(epochs) -> int``, the sweep's length when it is not
``epochs`` (an Optuna search of several trials per slot), and ``finish(state, view)``,
called once after the last epoch (to report what the last epoch gave).  A run ends early
when a decision leaves no slot alive.

A *slot* is one variant of the compiled program: its state (parameters, model state,
optimizer state) and its hyperparameters.  Per slot, a decision is one of

* continue (the default), maybe with new hyperparameters (`Decisions.set_hparams`);
* stop (`Decisions.stop`): the slot no longer trains; its state and metrics are kept;
* exploit and explore (`Decisions.exploit`): continue from another slot's state
  (parameters, model state and optimizer state copied on the device) with new
  hyperparameters;
* restart (`Decisions.restart`): start a new configuration from a fresh initialisation
  (a stopped slot refilled, e.g. with a configuration newly drawn from the space).

The state is the controller's own (its random draws, rung bookkeeping): a pytree of
numbers and numpy arrays that the sweep checkpoints with the training state, so that a
search interrupted and resumed decides exactly as an uninterrupted one.  A controller
must be deterministic given its state and the view; its ``repr`` is part of the run's
identity (frozen dataclasses give one for free), so a resume with another controller
is refused.

Decisions are applied inside a group (variants whose optimizer states share a
structure): a slot may continue only from a slot of its own group, and its
non-numeric hyperparameters cannot change.  A user writes a controller without editing
lrjax, e.g. one that stops every slot whose validation accuracy is below chance::

  @dataclasses.dataclass(frozen=True)
  class StopBelow:
    threshold: float
    def init(self, setup):
      return None, {}
    def decide(self, state, view):
      decisions = view.keep()
      decisions.stop(np.flatnonzero(view.alive & (view.last_score() < self.threshold)))
      return state, decisions
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from lrjax.errors import ArgumentTypeError, UsageError
from lrjax.train.search.space import SearchSpace


@dataclasses.dataclass(frozen=True)
class Setup:
  """What a controller knows before the sweep starts.

  Attributes:
    space: the search space (``hparams`` given as a `SearchSpace`), or None.
    configurations: the hyperparameter dicts given as ``hparams`` (a grid or a list),
      or None when a space is given.
    epochs: epochs the sweep is asked for.
    num_seeds: every configuration is trained once per seed (slots = configurations x
      seeds, configuration-major).
    monitor, higher_is_better: the task's monitored history field and its direction
      (`View.score` is oriented by it).
  """

  space: SearchSpace | None
  configurations: list[dict] | None
  epochs: int
  num_seeds: int = 1
  monitor: str = "valid_acc"
  higher_is_better: bool = True


@dataclasses.dataclass(frozen=True)
class View:
  """A run as a controller sees it before epoch ``epoch`` (0-based: ``epoch`` epochs are
  done).  Arrays have one entry per slot (the last axis), epochs first.

  Attributes:
    epoch: epochs completed.
    epochs: epochs the sweep is asked for.
    history: field -> ``[epoch, slots]`` float64 arrays: the engine's per-epoch fields
      (``valid_loss``, ``valid_acc``, ``lr``, ...; NaN where a slot did not train) and
      ``alive``, ``parent``, ``started``, ``hparams.<name>``.
    score: ``[epoch, slots]``, the task's monitored validation metric with higher
      better (the accuracy; minus the loss when the loss is monitored); NaN where the
      slot did not train or diverged.
    monitor: the name of the monitored history field (``valid_acc``, ``valid_loss``).
    alive: ``[slots]`` bool, the slots that trained in the last epoch and have not been
      stopped.
    hparams: per slot, its hyperparameters in force (numbers as Python numbers).
    numeric: per slot, the names of its numeric (changeable) hyperparameters.
    groups: ``[slots]`` int, each slot's group (decisions stay inside a group).
    seeds: ``[slots]`` int, each slot's seed.
    names: per slot, its name.
    space: the search space, or None.
    higher_is_better: whether the monitored field is better higher (an accuracy) or
      lower (a loss); ``score`` is oriented so that higher is better either way.
  """

  epoch: int
  epochs: int
  history: Mapping[str, np.ndarray]
  score: np.ndarray
  monitor: str
  alive: np.ndarray
  hparams: Sequence[Mapping[str, Any]]
  numeric: Sequence[Sequence[str]]
  groups: np.ndarray
  seeds: np.ndarray
  names: Sequence[str]
  space: SearchSpace | None = None
  higher_is_better: bool = True

  @property
  def num_slots(self) -> int:
    return len(self.names)

  def keep(self) -> Decisions:
    """Decisions that change nothing (every slot continues as it is)."""
    return Decisions(self)

  def last_score(self) -> np.ndarray:
    """``score`` of the last completed epoch (NaN for slots that did not train)."""
    return self.score[-1] if self.epoch else np.full(self.num_slots, np.nan)

  def ranking(self, slots: Sequence[int] | np.ndarray | None = None,
              score: np.ndarray | None = None) -> np.ndarray:
    """``slots`` (default: the alive ones) best first by ``score`` (default
    `last_score`); NaN ranks last and ties go to the lower slot index."""
    slots = np.flatnonzero(self.alive) if slots is None else np.asarray(slots, int)
    values = self.last_score() if score is None else np.asarray(score, np.float64)
    values = np.where(np.isfinite(values), values, -np.inf)[slots]
    return slots[np.lexsort((slots, -values))]


class Decisions:
  """Per slot: stop, continue (maybe with new hyperparameters), continue from another
  slot's state, or restart from a fresh initialisation.  Start from `View.keep`.

  Attributes:
    alive: ``[slots]`` bool, the slots that train in the next epoch.
    source: ``[slots]`` int, the slot whose state each slot continues from (itself
      when none is copied).
    restart: ``[slots]`` bool, the slots that start afresh from a new initialisation.
    hparams: per slot, its hyperparameters from the next epoch on.
  """

  def __init__(self, view: View):
    self.view = view
    self.alive = np.asarray(view.alive, bool).copy()
    self.source = np.arange(view.num_slots)
    self.restart = np.zeros(view.num_slots, bool)
    self.hparams = [dict(h) for h in view.hparams]

  def _slots(self, slots) -> np.ndarray:
    slots = np.atleast_1d(np.asarray(slots, int))
    bad = [int(s) for s in slots if not 0 <= s < self.view.num_slots]
    if bad:
      raise UsageError(f"slot(s) {bad} out of range: the sweep has {self.view.num_slots} "
                       f"slots.")
    return slots

  def stop(self, slots) -> Decisions:
    """The ``slots`` stop training (their state and metrics are kept as they are)."""
    self.alive[self._slots(slots)] = False
    return self

  def set_hparams(self, slot: int, hparams: Mapping[str, Any]) -> Decisions:
    """``slot`` continues with ``hparams`` (updating its numeric hyperparameters)."""
    (slot,) = self._slots(slot)
    self.hparams[slot] = {**self.hparams[slot], **dict(hparams)}
    return self

  def exploit(self, slot: int, source: int, hparams: Mapping[str, Any] | None = None
              ) -> Decisions:
    """``slot`` continues from ``source``'s state (copied) with ``source``'s
    hyperparameters updated by ``hparams`` (the explored values); it trains again if it
    had been stopped."""
    slot, source = self._slots([slot, source])
    self.source[slot] = source
    self.restart[slot] = False
    self.alive[slot] = True
    self.hparams[slot] = {**self.view.hparams[source], **dict(hparams or {})}
    return self

  def restart_slot(self, slot: int, hparams: Mapping[str, Any]) -> Decisions:
    """``slot`` starts ``hparams`` afresh (a new initialisation from its seed)."""
    (slot,) = self._slots(slot)
    self.source[slot] = slot
    self.restart[slot] = True
    self.alive[slot] = True
    self.hparams[slot] = {**self.view.hparams[slot], **dict(hparams)}
    return self

  restart_with = restart_slot

  def changed(self) -> np.ndarray:
    """``[slots]`` bool: the slots whose state or hyperparameters change on the device."""
    moved = self.source != np.arange(self.view.num_slots)
    new_h = np.array([h != dict(old)
                      for h, old in zip(self.hparams, self.view.hparams, strict=True)])
    return moved | self.restart | new_h


class Controller(Protocol):
  """The protocol (see the module docstring)."""

  def init(self, setup: Setup) -> tuple[list[dict] | None, Any]:
    ...

  def decide(self, state: Any, view: View) -> tuple[Any, Decisions]:
    ...


def check_controller(controller) -> None:
  """Raises ``TypeError`` naming ``controller`` unless it has ``init`` and ``decide``."""
  missing = [m for m in ("init", "decide") if not callable(getattr(controller, m, None))]
  if missing:
    raise ArgumentTypeError("controller", "must have init(setup) and decide(state, view) methods "
                            f"(lrjax.train.search.controller); {type(controller).__name__} has no "
                            f"{' or '.join(missing)}.")
