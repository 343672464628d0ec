"""Between epochs: what the sweep records of every variant, and what a controller does.

Before every epoch the loop asks `Control` for the history rows of the epoch about to
train (which variants train, the variant each continued from, the hyperparameters in
force) and, when a controller steers the run (`lrjax.train.search`), calls it with the
run so far and carries out its decisions on the device (`GroupTrainer.apply`).  The
decisions are checked first (a variant may continue only from one of its own group,
and only its numeric hyperparameters can change); the controller runs in process 0
alone (an Optuna study is asked and told once) and its decisions and state are sent to
every process (`lrjax.distributed.broadcast`), so every process applies the same ones.

History fields (``[epochs, variants]``, float64 like the others):

* ``alive``: 1 where the variant trained in that epoch, else 0 (its metrics are NaN);
* ``parent``: the variant whose state it started that epoch from (itself when none
  was copied);
* ``started``: 1 where it started a configuration from a fresh initialisation (epoch 0,
  and a controller's restart);
* ``hparams.<name>``: each numeric hyperparameter in force (NaN for variants that have
  none of that name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from lrjax import distributed
from lrjax.train.engine.hyperparams import VariantHyper
from lrjax.train.search.controller import Decisions, View

HPARAMS_PREFIX = "hparams."
TRACK_FIELDS = ("alive", "parent", "started")


class DecisionError(ValueError):
  """A controller asked for something the sweep cannot do (the message says what)."""


def pack(tree) -> dict[str, np.ndarray]:
  """A controller state as ``{"0": leaf, "1": leaf, ...}`` of numpy arrays (orbax saves
  it with the checkpoint; ``"n"`` holds the leaf count, so an empty state saves too)."""
  leaves = jax.tree.leaves(tree)
  out = {str(i): np.asarray(leaf) for i, leaf in enumerate(leaves)}
  out["n"] = np.asarray(len(leaves), np.int32)
  return out


def unpack(packed: dict, like) -> Any:
  """The controller state of `pack` ed leaves, in the structure of ``like``."""
  treedef = jax.tree.structure(like)
  return jax.tree.unflatten(treedef, [np.asarray(packed[str(i)])
                                      for i in range(treedef.num_leaves)])  # type: ignore[attr-defined]


class Control:
  """The variants' bookkeeping between epochs, and a controller's decisions.

  Args:
    controller: the controller, or None (a plain sweep: nothing is decided).
    trainers: one `GroupTrainer` per group.
    groups: the `lrjax.train.engine.groups.Group` s (members, static, numeric names).
    variants: per variant, its record (``name``, ``seed``, ``hparams``).
    task: the `Task` (its monitored field scores the variants).
    epochs: epochs of the run.
    space: the search space, or None.
  """

  def __init__(self, controller, trainers, groups, variants: Sequence[dict], *, task,
               epochs: int, space=None):
    self.controller = controller
    self.trainers, self.groups, self.variants = trainers, groups, list(variants)
    self.task, self.epochs, self.space = task, epochs, space
    self.num_variants = len(self.variants)
    self.group_of = np.zeros(self.num_variants, int)
    for g in groups:
      self.group_of[g.members] = g.index
    names: list[str] = []
    for g in groups:
      names += [n for n in g.numeric if n not in names]
    self.hparam_names = names
    self.state = None

  # -- what a run records ---------------------------------------------------------------
  def history_fields(self) -> tuple[str, ...]:
    return TRACK_FIELDS + tuple(HPARAMS_PREFIX + n for n in self.hparam_names)

  def current(self, states) -> tuple[np.ndarray, list[dict]]:
    """Every variant's alive flag and numeric hyperparameters in force (host copies of
    the states' own)."""
    alive = np.zeros(self.num_variants, bool)
    numeric: list[dict] = [{} for _ in range(self.num_variants)]
    for g, state in zip(self.groups, states, strict=True):
      hyper, flags = distributed.fetch((state.hyper, state.alive))
      k = len(g.members)
      alive[g.members] = np.asarray(flags, bool)[:k]
      for j, slot in enumerate(g.members):
        numeric[slot] = {n: np.asarray(hyper.h[n])[j].item() for n in g.numeric}
    return alive, numeric

  def record(self, history, epoch: int, states, parent=None, started=None) -> None:
    """Writes the rows of ``epoch`` (about to train) of the tracking fields."""
    alive, numeric = self.current(states)
    history["alive"][epoch] = alive
    history["parent"][epoch] = np.arange(self.num_variants) if parent is None else parent
    history["started"][epoch] = (np.ones if epoch == 0 else np.zeros)(self.num_variants) \
        if started is None else started
    for name in self.hparam_names:
      history[HPARAMS_PREFIX + name][epoch] = [h.get(name, np.nan) for h in numeric]

  # -- a controller's turn --------------------------------------------------------------
  def view(self, epoch: int, history, states) -> View:
    alive, numeric = self.current(states)
    field = self.task.monitor_field
    done = {k: np.asarray(v[:epoch]) for k, v in history.items()}
    monitored = done.get(field, done["valid_loss"])
    score = monitored if self.task.higher_is_better else -monitored
    score = np.where(done["alive"] > 0, score, np.nan)
    hparams = []
    for slot, v in enumerate(self.variants):
      g = self.groups[self.group_of[slot]]
      hparams.append({**{k: x for k, x in v["hparams"].items() if k not in g.numeric},
                      **numeric[slot]})
    return View(epoch=epoch, epochs=self.epochs, history=done, score=score, monitor=field,
                alive=alive,
                hparams=hparams, numeric=[self.groups[self.group_of[s]].numeric
                                          for s in range(self.num_variants)],
                groups=self.group_of.copy(),
                seeds=np.asarray([v["seed"] for v in self.variants]),
                names=[v["name"] for v in self.variants], space=self.space,
                higher_is_better=bool(self.task.higher_is_better))

  def decide(self, epoch: int, history, states, data):
    """The controller's decisions before ``epoch``, applied: ``(states, parent,
    started)`` (``parent`` / ``started`` for the history rows of ``epoch``)."""
    view = self.view(epoch, history, states)
    decided = None
    if distributed.is_writer():  # the controller runs in process 0 (its side effects too)
      state, decisions = self.controller.decide(self.state, view)
      if not isinstance(decisions, Decisions):
        raise DecisionError(f"the controller {type(self.controller).__name__} returned "
                            f"{type(decisions).__name__} from decide(); return "
                            f"(state, decisions) with decisions from view.keep().")
      decided = (state, self._checked(decisions, view))
    # Every process applies process 0's decisions and keeps its state.
    state, plan = distributed.broadcast(decided)
    self.state = state
    alive, source, restart, hparams = plan
    states = list(states)
    for g, trainer in enumerate(self.trainers):
      members = self.groups[g].members
      local = {slot: j for j, slot in enumerate(members)}
      moved = any(source[s] != s or restart[s] or hparams[s] != view.hparams[s]
                  for s in members)
      if moved:
        numeric = self.groups[g].numeric
        hyper = VariantHyper(
            h={n: np.asarray([hparams[s][n] for s in members]) for n in numeric},
            seed=np.asarray([self.variants[s]["seed"] for s in members], np.int32))
        states[g] = trainer.apply(states[g], source=[local[source[s]] for s in members],
                                  restart=restart[members], hyper=hyper,
                                  alive=alive[members], data=data)
      elif (alive[members] != view.alive[members]).any():
        states[g] = trainer.set_alive(states[g], alive[members])
    return states, source, restart.astype(np.float64)

  def finish(self, epoch: int, history, states) -> None:
    """The controller's ``finish(state, view)`` after the last epoch, if it has one."""
    finish = getattr(self.controller, "finish", None)
    if callable(finish) and distributed.is_writer():  # process 0's side effects only
      finish(self.state, self.view(epoch, history, states))

  def any_alive(self, states) -> bool:
    return bool(self.current(states)[0].any())

  def _checked(self, d: Decisions, view: View):
    """``d`` as plain arrays, after refusing what cannot be done."""
    who = type(self.controller).__name__
    alive = np.asarray(d.alive, bool).reshape(-1)
    source = np.asarray(d.source, int).reshape(-1)
    restart = np.asarray(d.restart, bool).reshape(-1)
    k = self.num_variants
    if not (alive.shape == source.shape == restart.shape == (k,)) or len(d.hparams) != k:
      raise DecisionError(f"controller {who}: decisions must have one entry per variant "
                          f"({k}).")
    for slot in range(k):
      src = int(source[slot])
      if not 0 <= src < k:
        raise DecisionError(f"controller {who}: variant {slot} continues from variant {src}, "
                            f"which does not exist.")
      if self.group_of[src] != self.group_of[slot]:
        raise DecisionError(
            f"controller {who}: variant {slot} ({view.names[slot]!r}) cannot continue from "
            f"variant {src} ({view.names[src]!r}): their optimizer states differ (groups "
            f"{self.group_of[slot]} and {self.group_of[src]}); choose a source of the same "
            f"group (view.groups).")
      before, after = view.hparams[slot], d.hparams[slot]
      if set(after) != set(before):
        raise DecisionError(
            f"controller {who}: variant {slot} has hyperparameters {sorted(before)}, the "
            f"decision gives {sorted(after)}; only their values may change.")
      numeric = self.groups[self.group_of[slot]].numeric
      for name, value in after.items():
        if name in numeric:
          if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
              or not np.isfinite(value):
            raise DecisionError(f"controller {who}: variant {slot}'s {name} must be a "
                                f"finite number, got {value!r}.")
        elif not _same(value, before[name]):
          raise DecisionError(
              f"controller {who}: variant {slot}'s {name} is not a number ({before[name]!r}:"
              f" it selects the compiled program) and cannot change to {value!r}.")
    hparams = [{n: (float(v) if n in self.groups[self.group_of[s]].numeric else v)
                for n, v in d.hparams[s].items()} for s in range(k)]
    return alive, source, restart, hparams


def _same(a, b) -> bool:
  try:
    return a is b or (type(a) is type(b) and bool(a == b))
  except Exception:  # noqa: BLE001  (an object without a truth value: not the same)
    return False
