"""Optuna as the source of trials: an ``optuna.Study``'s trials trained K at a time.

`OptunaSearch` is a controller (`lrjax.train.search.controller`): it asks the study for
``at_once`` trials (``study.ask`` with the search space as Optuna distributions), which
train together as the slots of one compiled sweep; after every epoch each running
trial reports its monitored validation value (``trial.report(value, step=epochs it
trained)``) and Optuna's own pruner decides (``trial.should_prune()``): a pruned trial
is told PRUNED and its slot restarts with a newly asked trial (a fresh initialisation)
while trials remain, else stops.  A trial that trained ``epochs`` epochs is told
COMPLETE with its last value.  Optuna's samplers (TPE, random, QMC, ...) and pruners
(MedianPruner, SuccessiveHalvingPruner, HyperbandPruner, ...) are used unchanged; the
study's storage (e.g. ``sqlite:///study.db``) holds every trial, its parameters and
intermediate values.

The sweep runs ``ceil(n_trials / at_once) * epochs`` epochs at most (`sweep_epochs`) and
ends when no trial is left.  Interrupted and resumed (the sweep's checkpoint holds each
slot's state and trial number), it loses no trial and trains none twice: every trial it
asks is tagged with its order (``lrjax_order``), so the resumed controller finds the
trials the interrupted one had already asked instead of asking new ones, reports a step
only once and tells a finished trial nothing.

Needs ``pip install "lrjax[optuna]"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lrjax.errors import ArgumentError, UsageError
from lrjax.train.search import space as space_lib
from lrjax.train.search.controller import Setup, View

ORDER_ATTR = "lrjax_order"  # the trial's position in the order this search asked them
SLOT_ATTR = "lrjax_slot"


def _optuna():
  try:
    import optuna
  except ImportError as err:
    raise ImportError("the Optuna search needs optuna: pip install \"lrjax[optuna]\" (from "
                      "a clone: pip install -c constraints.txt -e \".[optuna]\")") from err
  return optuna


def to_distributions(space: space_lib.SearchSpace) -> dict[str, Any]:
  """The searched dimensions of ``space`` as Optuna distributions (fixed values are
  added to every trial's configuration as they are)."""
  optuna = _optuna()
  d = optuna.distributions
  out = {}
  for name, dist in space.distributions.items():
    if isinstance(dist, space_lib.LogUniform):
      out[name] = d.FloatDistribution(dist.low, dist.high, log=True)
    elif isinstance(dist, space_lib.Uniform):
      out[name] = d.FloatDistribution(dist.low, dist.high)
    elif isinstance(dist, space_lib.IntUniform):
      out[name] = d.IntDistribution(dist.low, dist.high)
    elif isinstance(dist, space_lib.Choice):
      out[name] = d.CategoricalDistribution(dist.options)
    else:
      raise UsageError(f"the search space's {name} ({type(dist).__name__}) has no Optuna "
                       f"distribution.")
  return out


def from_distributions(distributions: Mapping[str, Any], **fixed) -> space_lib.SearchSpace:
  """An lrjax `SearchSpace` of Optuna distributions (``FloatDistribution`` with or
  without ``log``, ``IntDistribution``, ``CategoricalDistribution``; no ``step``), for
  ``lrjax.sweep``'s ``hparams`` with an `OptunaSearch`."""
  optuna = _optuna()
  d = optuna.distributions
  dims: dict[str, space_lib.Distribution] = {}
  for name, dist in distributions.items():
    if isinstance(dist, d.FloatDistribution) and dist.step is None:
      dims[name] = (space_lib.log_uniform if dist.log else space_lib.uniform)(dist.low,
                                                                             dist.high)
    elif isinstance(dist, d.IntDistribution) and dist.step == 1 and not dist.log:
      dims[name] = space_lib.int_uniform(dist.low, dist.high)
    elif isinstance(dist, d.CategoricalDistribution):
      dims[name] = space_lib.choice(list(dist.choices))
    else:
      raise ArgumentError(f"distributions[{name!r}]", f": {dist!r} has no lrjax counterpart "
                          "(a float or int range without step or log-int, or a categorical).")
  return space_lib.search_space(**dims, **fixed)  # type: ignore[arg-type]


class OptunaSearch:
  """The controller (module docstring); `optuna_search` builds one.

  Args:
    study: the ``optuna.Study`` (its direction must agree with the task's: maximize an
      accuracy, minimize a loss).
    n_trials: trials to train in all.
    at_once: trials trained together (the sweep's slots).
  """

  def __init__(self, study, n_trials: int, at_once: int):
    _optuna()
    for name, value in (("n_trials", n_trials), ("at_once", at_once)):
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(name, f"must be a positive integer, got {value!r}.")
    if at_once > n_trials:
      raise ArgumentError("at_once", f"({at_once}) exceeds `n_trials` ({n_trials}).")
    self.study, self.n_trials, self.at_once = study, n_trials, at_once
    self._trials: dict[int, Any] = {}  # this process's Trial objects, by order

  def __repr__(self) -> str:  # the run's identity: the study and the budget
    sampler, pruner = type(self.study.sampler).__name__, type(self.study.pruner).__name__
    return (f"OptunaSearch(study={self.study.study_name!r}, sampler={sampler}, "
            f"pruner={pruner}, n_trials={self.n_trials}, at_once={self.at_once})")

  def sweep_epochs(self, epochs: int) -> int:
    """The sweep's length for trials of ``epochs`` epochs: every slot busy throughout."""
    return math.ceil(self.n_trials / self.at_once) * epochs

  # -- the study's side -----------------------------------------------------------------
  def _trial(self, order: int, distributions):
    """The ``order``-th trial of this search: the one already asked (a resumed search),
    else a new one."""
    if order in self._trials:
      return self._trials[order]
    optuna = _optuna()
    for frozen in self.study.get_trials(deepcopy=False):
      if frozen.user_attrs.get(ORDER_ATTR) == order:
        trial = optuna.trial.Trial(self.study, frozen._trial_id)  # noqa: SLF001 (re-attach)
        break
    else:
      trial = self.study.ask(distributions)
      trial.set_user_attr(ORDER_ATTR, order)
    self._trials[order] = trial
    return trial

  def _configuration(self, trial, fixed: Mapping[str, Any]) -> dict:
    return {**dict(fixed), **trial.params}

  def _frozen(self, trial):
    """The trial as the storage holds it now (its state, intermediate values)."""
    return self.study._storage.get_trial(trial._trial_id)  # noqa: SLF001

  def _finished(self, order: int) -> bool:
    optuna = _optuna()
    return self._frozen(self._trials[order]).state != optuna.trial.TrialState.RUNNING

  # -- the controller ---------------------------------------------------------------------
  def init(self, setup: Setup):
    if setup.space is None:
      raise UsageError("the Optuna search draws from a search space: give "
                       "hparams=lrjax.train.search_space(...) (or "
                       "lrjax.train.search.optuna_search.from_distributions(...)).")
    if setup.num_seeds != 1:
      raise UsageError("the Optuna search trains one seed per trial: give one seed.")
    self._check_direction(setup)
    self._distributions = to_distributions(setup.space)
    self._fixed = setup.space.fixed()
    configurations = [self._configuration(self._trial(k, self._distributions), self._fixed)
                      for k in range(self.at_once)]
    state = {"order": np.arange(self.at_once, dtype=np.int32),  # each slot's trial
             "start": np.zeros(self.at_once, np.int32),  # the epoch it started at
             "asked": np.asarray(self.at_once, np.int32),
             "trial_epochs": np.asarray(setup.epochs, np.int32)}
    return configurations, state

  def decide(self, state, view: View):
    optuna = _optuna()
    if not hasattr(self, "_distributions"):  # resumed: init ran with the same space
      assert view.space is not None  # init refuses a sweep without one
      self._distributions = to_distributions(view.space)
      self._fixed = view.space.fixed()
    order, start = np.array(state["order"]), np.array(state["start"])
    asked, trial_epochs = int(state["asked"]), int(state["trial_epochs"])
    monitored = view.history[view.monitor]
    decisions = view.keep()
    for slot in np.flatnonzero(view.alive):
      trial = self._trial(int(order[slot]), self._distributions)
      trained = view.epoch - int(start[slot])
      value = float(monitored[-1, slot])
      if self._finished(int(order[slot])):
        done = True
      else:
        if trained not in self._frozen(trial).intermediate_values:  # reported once
          trial.report(value if math.isfinite(value) else float("nan"), step=trained)
        if trained >= trial_epochs:
          self.study.tell(trial, value if math.isfinite(value) else None,
                          state=(optuna.trial.TrialState.COMPLETE if math.isfinite(value)
                                 else optuna.trial.TrialState.FAIL), skip_if_finished=True)
          done = True
        elif trial.should_prune():
          self.study.tell(trial, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
          done = True
        else:
          done = False
      if not done:
        continue
      if asked < self.n_trials:  # refill the slot with the next trial
        new = self._trial(asked, self._distributions)
        new.set_user_attr(SLOT_ATTR, int(slot))
        decisions.restart_slot(int(slot), self._configuration(new, self._fixed))
        order[slot], start[slot] = asked, view.epoch
        asked += 1
      else:
        decisions.stop(int(slot))
    return ({"order": order.astype(np.int32), "start": start.astype(np.int32),
             "asked": np.asarray(asked, np.int32),
             "trial_epochs": np.asarray(trial_epochs, np.int32)}, decisions)

  def _check_direction(self, view: View | Setup) -> None:
    optuna = _optuna()
    maximize = self.study.direction == optuna.study.StudyDirection.MAXIMIZE
    higher = view.higher_is_better
    if maximize != higher:
      raise UsageError(f"the study {self.study.study_name!r} is to "
                       f"{'maximize' if maximize else 'minimize'}, but the sweep reports "
                       f"{view.monitor} ({'higher' if higher else 'lower'} is better): "
                       f"create it with direction="
                       f"{'maximize' if higher else 'minimize'!r}.")

  def finish(self, state, view: View) -> None:
    """Tells the study the trials still running when the sweep ends (COMPLETE with
    their last value: they trained every epoch the sweep had)."""
    optuna = _optuna()
    if not hasattr(self, "_distributions"):  # a resumed run that had nothing left to do
      assert view.space is not None  # init refuses a sweep without one
      self._distributions = to_distributions(view.space)
    order, start = np.asarray(state["order"]), np.asarray(state["start"])
    for slot in np.flatnonzero(view.alive):
      trial = self._trial(int(order[slot]), self._distributions)
      if not self._finished(int(order[slot])):
        value = float(view.history[view.monitor][-1, slot])
        trained = view.epoch - int(start[slot])
        if trained not in self._frozen(trial).intermediate_values:
          trial.report(value if math.isfinite(value) else float("nan"), step=trained)
        self.study.tell(trial, value if math.isfinite(value) else None,
                        state=(optuna.trial.TrialState.COMPLETE if math.isfinite(value)
                               else optuna.trial.TrialState.FAIL), skip_if_finished=True)


def optuna_search(study, *, n_trials: int, at_once: int) -> OptunaSearch:
  """An `OptunaSearch` of ``study``: ``n_trials`` trials, ``at_once`` of them trained
  together in one compiled sweep."""
  return OptunaSearch(study, n_trials, at_once)


# The sweep file's `[search] method = "optuna"`: its sampler and pruner by name.
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "qmc": "QMCSampler"}
PRUNERS = {"median": "MedianPruner", "successive_halving": "SuccessiveHalvingPruner",
           "hyperband": "HyperbandPruner", "none": "NopPruner"}


def optuna_study(*, n_trials: int, at_once: int, sampler: str = "tpe",
                 pruner: str = "median", seed: int = 0, storage: str | None = None,
                 study_name: str | None = None, direction: str = "maximize") -> OptunaSearch:
  """An `OptunaSearch` of a study made here (the sweep file's ``method = "optuna"``):
  ``sampler`` one of `SAMPLERS` (seeded by ``seed``), ``pruner`` one of `PRUNERS`
  (Optuna's defaults), ``storage`` an Optuna storage URL (``sqlite:///study.db``; the
  same study is loaded again on a resume) or None (in memory)."""
  optuna = _optuna()
  if sampler not in SAMPLERS:
    raise ArgumentError("sampler", f"must be one of {', '.join(SAMPLERS)}, got {sampler!r}.")
  if pruner not in PRUNERS:
    raise ArgumentError("pruner", f"must be one of {', '.join(PRUNERS)}, got {pruner!r}.")
  if direction not in ("maximize", "minimize"):
    raise ArgumentError("direction", f"must be 'maximize' or 'minimize', got {direction!r}.")
  study = optuna.create_study(
      storage=storage, study_name=study_name, direction=direction, load_if_exists=True,
      sampler=getattr(optuna.samplers, SAMPLERS[sampler])(seed=seed),
      pruner=getattr(optuna.pruners, PRUNERS[pruner])())
  return OptunaSearch(study, n_trials, at_once)
