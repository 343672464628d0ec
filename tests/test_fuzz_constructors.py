"""Fuzz of every public constructor of `lrjax.schedules`, `.strategies`, `.adaptive`.

Each constructor is listed in `REGISTRY` with valid keyword arguments and the *kind* of
each argument; a kind is a pool of bad values (negative, zero, NaN, inf, float32
overflow, denormals, strings, None, lists, bools, complex, 2**31 and non-integer
floats for integers...) plus the values of that pool that are documented as legal.
Every (constructor, argument, value) case replaces one argument of the valid call and
is classified:

good outcomes
  * ``rejected``: ``ValueError``/``TypeError`` at construction naming the argument
    (in backticks, as every lrjax message does; `` `values[1]` `` names an element);
  * ``legal``: a value the kind declares legal, accepted, with good results.

bad outcomes (the test asserts there are none)
  * ``unnamed_error``: ``ValueError``/``TypeError`` that does not name the argument;
  * ``obscure_error``: any other exception at construction;
  * ``deferred_crash``: constructed, then an exception on the first use;
  * ``nonfinite``: constructed, then a NaN/inf rate or update;
  * ``negative``: constructed, then a negative rate;
  * ``bad_shape``: constructed, then a rate that is not one scalar per step;
  * ``accepted_bad``: a value the kind does not declare legal, silently accepted.

To cover a new constructor add one `Entry` to `REGISTRY` (its valid call, the kind of
each argument, and how to use what it builds: `use_schedule`, `use_strategy`,
`use_adaptive`); `test_registry_covers_every_public_constructor` lists any public name
that is missing.  ``python tests/test_fuzz_constructors.py`` prints the counts.

Counts of this harness on the code before its checks were added, 2361 cases: rejected 1538,
legal 33, accepted_bad 351, deferred_crash 266, nonfinite 80, unnamed_error 75,
obscure_error 12, bad_shape 6.  After: rejected 2326, legal 35, every bad class 0.

Counts of a second round, with the entries of the constructors merged since
(`lrjax.strategies` optimizers, `multi_steps`, `switch_rule`, `reduce_lr_on_plateau`
and `from_torch`; `lrjax.adaptive.hypergradient`, `newton_lr(smoothing=...)`, ``None``
bounds; the PyTorch/Keras schedules, warm-ups, momentum, `join`/`chained`,
`from_torch`/`from_keras`/`per_epoch` over representative names and the scalars of
``SequentialLR``/``ChainedScheduler`` parts; ``periodic=``, ``lr_cap=``), 6046 cases,
before the fixes: rejected 5488, legal 117, unnamed_error 293, accepted_bad 102,
deferred_crash 36, obscure_error 6, bad_shape 3, nonfinite 1 (and the valid calls of
`multi_step_lr`, `piecewise_constant_decay` and their ``MultiStepLR`` /
``PiecewiseConstantDecay`` ports raised: every list argument was refused as "not a
scalar").  After: rejected 5929, legal 117, every bad class 0.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax.adaptive as A
import lrjax.schedules as S
import lrjax.strategies as T

NAN, INF = float("nan"), float("inf")

# Bad values that every numeric argument is tried with.
NUMBER_POOL = [-1.0, -1e-45, 0.0, 1e-45, 1e-40, 1e39, -1e39, NAN, INF, -INF,
               np.float32(NAN), "0.1", "", None, [0.1, 0.2], (), True, False,
               0.1 + 0j, 1j, np.asarray([0.1, 0.2])]
# ... and every integer argument, in addition.
INT_POOL = NUMBER_POOL + [0, -1, 2 ** 31, 2 ** 40, 2.5, 10.5, "10", np.int64(2 ** 31)]


@dataclasses.dataclass(frozen=True)
class Kind:
  """The pool of values an argument is fuzzed with; ``legal`` holds the ``repr`` of
  the pool's values that are documented as legal for it."""

  pool: tuple
  legal: frozenset = frozenset()


def kind(pool, *legal) -> Kind:
  return Kind(tuple(pool), frozenset(legal))


def _nan_at(bad_index: int):
  def sequence(n):
    return jnp.where(jnp.asarray(n) >= bad_index, jnp.nan, 0.1).astype(jnp.float32)
  return sequence


SEQUENCE_POOL = [None, "seq1", 0.1, [S.seq1(0.1)], _nan_at(0),
                 lambda n: jnp.full(jnp.shape(n), -0.1, jnp.float32),
                 lambda n: jnp.zeros(jnp.shape(n), jnp.float32),
                 lambda n: jnp.ones((2,), jnp.float32)]

KINDS = {
    "positive": kind(NUMBER_POOL),
    "non_negative": kind(NUMBER_POOL, "0.0"),
    "unit_open_closed": kind(NUMBER_POOL + [1.5]),           # (0, 1]
    "unit_closed_open": kind(NUMBER_POOL + [1.0], "0.0"),    # [0, 1)
    "unit_closed": kind(NUMBER_POOL + [1.5], "0.0"),         # [0, 1]
    "unit_open": kind(NUMBER_POOL + [1.0]),                  # (0, 1)
    "at_least_one": kind(NUMBER_POOL + [0.5]),               # [1, inf)
    "optional_positive": kind(NUMBER_POOL, "None"),
    "optional_non_negative": kind(NUMBER_POOL, "None", "0.0"),
    "positive_int": kind(INT_POOL),
    "non_negative_int": kind(INT_POOL, "0", "0.0"),  # integral floats are legal
    "flag": kind(["True", "", None, 1, 0, 1.0, [True], np.asarray([True, False])]),
    "mode": kind(["nope", "", None, 1, 1.5, True, ["triangular"]]),
    "window": kind(["nope", "", None, 1, 1.5, True, ["triangular"]]),
    "anneal_strategy": kind(["exp", "", None, 1, True, ["cos"]]),
    "rule": kind(["nope", "", None, 1.5, True, [1], 5, -1, 2 ** 31, NAN, 1j]),
    "sequence": kind(SEQUENCE_POOL),
    "schedules": kind([[], None, "seq1", [None], [0.1], 0.1, S.seq1(0.1)]),
    "values": kind([None, "x", [], [NAN], [-1.0], [[0.1]], [1j], 0.1, ["0.1"], [1e39],
                    [True], [0.1, [0.2]]]),
    "index": kind([-1, 2, 2 ** 31, 2.5, 0.5, "0", None, True, NAN, [0], 1j]),
    "transformation": kind([None, "adam", 0.1, [], S.seq1(0.1), lambda g: g]),
    "choice": kind(["nope", "", None, 1, 1.5, True, ["linear"]]),
    "optional_momentum": kind(NUMBER_POOL + [1.0], "None", "0.0"),   # None or [0, 1)
    "optional_lr_cap": kind(NUMBER_POOL, "None"),
    "int_list": kind([None, "5", 5, [-1], [2.5], [2 ** 31], [True], [NAN], [[5]], [1j],
                      ["5"]]),
    "rate_list": kind([None, "x", 0.5, [NAN, 0.5], [-1.0, 0.5], [1e39, 0.5], [0.5],
                       ["0.5", 0.5], [True, 0.5], [1j, 0.5], [1e-45, 0.5]]),
    "factor_fn": kind([None, "x", 0.1, lambda t: NAN, lambda t: -1.0, lambda t: 1e39,
                       lambda t: "x"]),
    "schedule": kind([None, "seq1", 0.1, [S.seq1(0.1)]]),
    "rules": kind([[], None, [None], "epoch", [1], T.rules.epoch]),
    "dtype": kind(["nope", 1.5, True, [jnp.float32]]),
    "number": kind([NAN, INF, 1e39, 1e-45, "0.1", None, True, [0.1], 1j]),
    "optional_positive_int": kind(INT_POOL, "None"),
    "smoothing": kind(["nope", "", None, 1, 1.5, True, ["robust"]]),
}

PARAMS = jnp.asarray([1.0, -2.0, 0.5], jnp.float32)
STEPS = jnp.asarray([0, 1, 7, 1000, 2 ** 31 - 1], jnp.int32)


def _quadratic(w):
  return 0.5 * jnp.sum(w ** 2)


def _check_values(values, shape=None) -> str | None:
  """The bad class of a rate/updates array, or None."""
  arr = np.asarray(values)
  if shape is not None and arr.shape != shape:
    return "bad_shape"
  if not np.issubdtype(arr.dtype, np.floating):
    return "bad_shape"
  if not np.all(np.isfinite(arr)):
    return "nonfinite"
  return None


def use_schedule(schedule) -> str | None:
  """A schedule at a vector of steps up to 2**31 - 1 and at a Python int step."""
  for steps, shape in ((STEPS, STEPS.shape), (3, ())):
    values = schedule(steps)
    bad = _check_values(values, shape)
    if bad:
      return bad
    if np.any(np.asarray(values) < 0):
      return "negative"
  return None


def use_transformation(tx, lr_of, extra_args) -> str | None:
  """Three updates of a strategy/adaptive transformation on a quadratic (g = w)."""
  params = PARAMS
  state = tx.init(params)
  for k in range(3):
    updates, state = tx.update(params, state, params, **extra_args(k))
    bad = _check_values(updates, params.shape)
    if bad:
      return bad
    lr = lr_of(state)
    bad = _check_values(lr, ())
    if bad:
      return bad
    if float(lr) < 0:
      return "negative"
    params = params + updates
  return None


def use_strategy(tx) -> str | None:
  return use_transformation(
      tx, T.current_lr, lambda k: dict(valid_loss=1.0 - 0.1 * k, epoch_boundary=True))


def _plateau_lr(opt_state):
  """The rate of the `TorchPlateauState` inside an optax state tree."""
  found = [x for x in jax.tree_util.tree_leaves(
      opt_state, is_leaf=lambda x: isinstance(x, T.TorchPlateauState))
           if isinstance(x, T.TorchPlateauState)]
  assert len(found) == 1
  return found[0].lr


def use_torch_plateau(tx) -> str | None:
  return use_transformation(tx, _plateau_lr,
                            lambda k: dict(valid_loss=1.0 - 0.1 * k, epoch_boundary=True))


def use_adaptive(tx) -> str | None:
  return use_transformation(tx, A.learned_lr, lambda k: dict(value_fn=_quadratic))


@dataclasses.dataclass(frozen=True)
class Entry:
  """A constructor, a valid call of it, the kind of each fuzzed argument, its use."""

  fn: Callable[..., Any]
  valid: dict
  kinds: dict
  use: Callable[[Any], str | None]
  args: tuple = ()  # positional arguments (the scheduler name of from_torch/from_keras)
  covers: Callable[..., Any] | None = None  # the public function a wrapper fuzzes

  @property
  def name(self) -> str:
    fn = self.covers or self.fn
    label = f"{fn.__module__.split('.')[1]}.{fn.__name__}"
    return f"{label}{self.args!r}" if self.args else label


def _cyc(fn, **extra):
  kinds = dict(min_lr="non_negative", max_lr="positive", step_size="positive",
               step_size_down="optional_positive")
  kinds.update({k: v for k, v in extra.items()})
  valid = dict(min_lr=0.001, max_lr=0.01, step_size=5.0)
  if "gamma" in kinds:
    valid["gamma"] = 0.99
  return Entry(fn, valid, kinds, use_schedule)


def _sequential_lr(lr, start_factor, total_iters, T_max, milestones):  # noqa: N803
  """``SequentialLR`` of a linear warm-up and a cosine: fuzzes its parts' scalars."""
  return S.from_torch("SequentialLR", lr=lr, milestones=milestones, schedulers=[
      ("LinearLR", {"start_factor": start_factor, "total_iters": total_iters}),
      ("CosineAnnealingLR", {"T_max": T_max})])


def _chained_scheduler(lr, factor, total_iters, gamma):
  """``ChainedScheduler`` of ``ConstantLR`` and ``ExponentialLR``: its parts' scalars."""
  return S.from_torch("ChainedScheduler", lr=lr, schedulers=[
      ("ConstantLR", {"factor": factor, "total_iters": total_iters}),
      ("ExponentialLR", {"gamma": gamma})])


def use_rule(rule) -> str | None:
  """A rule inside a strategy (`scale_by_strategy` takes a rule function)."""
  return use_strategy(T.scale_by_strategy(S.seq3(0.01), rule, patience=1))


REGISTRY: list[Entry] = [
    # schedules
    Entry(S.constant, dict(learning_rate=0.1), dict(learning_rate="positive"), use_schedule),
    Entry(S.seq1, dict(r0=0.01), dict(r0="positive"), use_schedule),
    Entry(S.seq2, dict(r0=0.01), dict(r0="positive"), use_schedule),
    Entry(S.seq3, dict(r0=0.01, decay=0.9), dict(r0="positive", decay="unit_open_closed"),
          use_schedule),
    Entry(S.seq4, dict(r0=0.01, period=10), dict(r0="positive", period="positive_int"),
          use_schedule),
    Entry(S.step_decay, dict(r0=0.1, drop=0.5, step_size=10),
          dict(r0="positive", drop="unit_open_closed", step_size="positive"), use_schedule),
    Entry(S.keras_step_decay, dict(r0=0.1, drop=0.5, epochs_drop=10),
          dict(r0="positive", drop="unit_open_closed", epochs_drop="positive"),
          use_schedule),
    Entry(S.exponential_decay, dict(r0=0.1, k=0.05), dict(r0="positive", k="non_negative"),
          use_schedule),
    Entry(S.inverse_time_decay, dict(r0=0.1, k=0.05), dict(r0="positive", k="non_negative"),
          use_schedule),
    Entry(S.keras_time_based_decay, dict(learning_rate=0.1, decay=0.001),
          dict(learning_rate="positive", decay="non_negative"), use_schedule),
    Entry(S.polynomial_decay, dict(r0=0.1, total_steps=100, power=2.0, end_value=0.001),
          dict(r0="positive", total_steps="positive_int", power="positive",
               end_value="non_negative"), use_schedule),
    Entry(S.cosine_annealing, dict(max_lr=0.1, total_steps=100, min_lr=0.001),
          dict(max_lr="positive", total_steps="positive_int", min_lr="non_negative"),
          use_schedule),
    Entry(S.cosine_warm_restarts, dict(max_lr=0.1, first_cycle_steps=10, cycle_mult=2,
                                       min_lr=0.001),
          dict(max_lr="positive", first_cycle_steps="positive_int",
               cycle_mult="positive_int", min_lr="non_negative"), use_schedule),
    _cyc(S.cyclical, gamma="unit_open_closed", mode="mode", window="window"),
    _cyc(S.triangular),
    _cyc(S.triangular2),
    _cyc(S.exp_range, gamma="unit_open_closed"),
    _cyc(S.welch),
    _cyc(S.hann),
    Entry(S.one_cycle, dict(min_lr=0.08, max_lr=0.8, step_size=41, total_steps=95,
                            annihilation_factor=10.0),
          dict(min_lr="positive", max_lr="positive", step_size="positive_int",
               total_steps="positive_int", annihilation_factor="at_least_one"),
          use_schedule),
    Entry(S.one_cycle_torch, dict(max_lr=0.1, total_steps=95, pct_start=0.3,
                                  anneal_strategy="cos", div_factor=25.0,
                                  final_div_factor=1e4, three_phase=True),
          dict(max_lr="positive", total_steps="positive_int", pct_start="unit_closed",
               anneal_strategy="anneal_strategy", div_factor="positive",
               final_div_factor="positive", three_phase="flag"), use_schedule),
    Entry(S.lr_range_test, dict(init_lr=1e-4, max_lr=10.0, num_steps=100),
          dict(init_lr="positive", max_lr="positive", num_steps="positive_int"),
          use_schedule),
    Entry(S.switch, dict(schedules=[S.seq1(0.1), S.seq3(0.1)], index=1),
          dict(schedules="schedules", index="index"), use_schedule),
    Entry(S.from_values, dict(values=[0.1, 0.05, 0.01]), dict(values="values"),
          use_schedule),
    # options added to existing schedules
    Entry(S.exponential_decay, dict(r0=0.1, k=-0.05, lr_cap=1.0),
          dict(k="number", lr_cap="positive"), use_schedule),
    Entry(S.cosine_annealing, dict(max_lr=0.1, total_steps=100, min_lr=0.001, periodic=True),
          dict(periodic="flag", total_steps="positive_int", min_lr="non_negative"),
          use_schedule),
    Entry(S.cyclical, dict(min_lr=0.001, max_lr=0.01, step_size=5.0, mode="exp_range",
                           gamma=1.01, lr_cap=1.0),
          dict(gamma="positive", lr_cap="positive"), use_schedule),
    Entry(S.exp_range, dict(min_lr=0.001, max_lr=0.01, step_size=5.0, gamma=0.99),
          dict(lr_cap="optional_lr_cap"), use_schedule),
    # schedules: composition
    Entry(S.join, dict(schedules=[S.seq1(0.1), S.seq3(0.1)], boundaries=[5]),
          dict(schedules="schedules", boundaries="int_list"), use_schedule),
    Entry(S.chained, dict(lr=0.1, schedules=[S.seq1(1.0), S.seq3(1.0)]),
          dict(lr="positive", schedules="schedules"), use_schedule),
    Entry(S.per_epoch, dict(schedule=S.seq3(0.1), steps_per_epoch=10),
          dict(schedule="schedule", steps_per_epoch="positive_int"), use_schedule),
    # schedules: PyTorch's
    Entry(S.multi_step_lr, dict(lr=0.1, milestones=[2, 4], gamma=0.5),
          dict(lr="positive", milestones="int_list", gamma="positive"), use_schedule),
    Entry(S.linear_lr, dict(lr=0.1, start_factor=0.25, end_factor=1.0, total_iters=5),
          dict(lr="positive", start_factor="unit_open_closed", end_factor="unit_closed",
               total_iters="positive_int"), use_schedule),
    Entry(S.constant_lr, dict(lr=0.1, factor=0.5, total_iters=5),
          dict(lr="positive", factor="unit_open_closed", total_iters="non_negative_int"),
          use_schedule),
    Entry(S.lambda_lr, dict(lr=0.1, lr_lambda=lambda t: 0.5 ** jnp.minimum(t, 10)),
          dict(lr="positive", lr_lambda="factor_fn", num_steps="optional_positive_int"),
          use_schedule),
    Entry(S.lambda_lr, dict(lr=0.1, lr_lambda=lambda t: 0.9 ** t, num_steps=10),
          dict(lr_lambda="factor_fn"), use_schedule),
    Entry(S.multiplicative_lr, dict(lr=0.1, lr_lambda=lambda t: 0.9, num_steps=10),
          dict(lr="positive", lr_lambda="factor_fn", num_steps="positive_int"),
          use_schedule),
    Entry(S.exponential_lr, dict(lr=0.1, gamma=0.9),
          dict(lr="positive", gamma="positive", lr_cap="optional_lr_cap"), use_schedule),
    # schedules: Keras'
    Entry(S.piecewise_constant_decay, dict(boundaries=[3], values=[1.0, 0.5]),
          dict(boundaries="int_list", values="rate_list"), use_schedule),
    Entry(S.keras_cosine_decay, dict(initial_learning_rate=0.1, decay_steps=100, alpha=0.1),
          dict(initial_learning_rate="positive", decay_steps="positive_int",
               alpha="unit_closed", warmup_target="optional_positive",
               warmup_steps="non_negative_int"), use_schedule),
    Entry(S.keras_cosine_decay, dict(initial_learning_rate=0.0, decay_steps=100,
                                     warmup_target=0.1, warmup_steps=10),
          dict(initial_learning_rate="non_negative", warmup_steps="non_negative_int"),
          use_schedule),
    Entry(S.keras_cosine_decay_restarts, dict(initial_learning_rate=0.1, first_decay_steps=10,
                                              t_mul=2.0, m_mul=0.9, alpha=0.1),
          dict(initial_learning_rate="positive", first_decay_steps="positive",
               t_mul="at_least_one", m_mul="unit_closed", alpha="unit_closed"),
          use_schedule),
    Entry(S.keras_exponential_decay, dict(initial_learning_rate=0.1, decay_steps=10,
                                          decay_rate=0.9, staircase=False),
          dict(initial_learning_rate="positive", decay_steps="positive",
               decay_rate="positive", staircase="flag", lr_cap="optional_lr_cap"),
          use_schedule),
    Entry(S.keras_inverse_time_decay, dict(initial_learning_rate=0.1, decay_steps=10,
                                           decay_rate=0.5, staircase=False),
          dict(initial_learning_rate="positive", decay_steps="positive",
               decay_rate="non_negative", staircase="flag"), use_schedule),
    Entry(S.keras_polynomial_decay, dict(initial_learning_rate=0.1, decay_steps=10,
                                         end_learning_rate=1e-4, power=2.0, cycle=False),
          dict(initial_learning_rate="non_negative", decay_steps="positive",
               end_learning_rate="non_negative", power="positive", cycle="flag"),
          use_schedule),
    # schedules: warm-ups
    Entry(S.warmup, dict(schedule=S.seq3(0.1), warmup_steps=5, init_lr=0.0, kind="linear"),
          dict(schedule="schedule", warmup_steps="non_negative_int", init_lr="non_negative",
               kind="choice"), use_schedule),
    Entry(S.warmup_stable_decay, dict(peak_lr=0.1, warmup_steps=10, stable_steps=80,
                                      decay_steps=10, init_lr=0.0, final_lr=0.0),
          dict(peak_lr="positive", warmup_steps="non_negative_int",
               stable_steps="non_negative_int", decay_steps="positive_int",
               init_lr="non_negative", final_lr="non_negative", warmup_kind="choice",
               cooldown="choice"), use_schedule),
    Entry(S.inverse_sqrt, dict(peak_lr=0.1, warmup_steps=10),
          dict(peak_lr="positive", warmup_steps="positive_int"), use_schedule),
    # schedules: momentum
    Entry(S.one_cycle_momentum, dict(total_steps=100, pct_start=0.3, anneal_strategy="cos",
                                     base_momentum=0.85, max_momentum=0.95,
                                     three_phase=False),
          dict(total_steps="positive_int", pct_start="unit_closed",
               anneal_strategy="anneal_strategy", base_momentum="unit_closed",
               max_momentum="unit_closed", three_phase="flag"), use_schedule),
    Entry(S.one_cycle_linear_momentum, dict(step_size=41, total_steps=95,
                                            base_momentum=0.85, max_momentum=0.95),
          dict(step_size="positive_int", total_steps="positive_int",
               base_momentum="unit_closed", max_momentum="unit_closed"), use_schedule),
    Entry(S.cyclical_momentum, dict(step_size=5.0, mode="triangular", gamma=1.0,
                                    base_momentum=0.8, max_momentum=0.9),
          dict(step_size="positive", step_size_down="optional_positive", mode="mode",
               gamma="unit_open_closed", base_momentum="unit_closed",
               max_momentum="unit_closed"), use_schedule),
    # schedules: porting (representative names; composites over their parts' scalars)
    Entry(S.from_torch, dict(lr=0.1, step_size=3, gamma=0.5),
          dict(lr="positive", step_size="positive_int", gamma="unit_open_closed"),
          use_schedule, args=("StepLR",)),
    Entry(S.from_torch, dict(lr=0.1, T_max=10, eta_min=0.001),
          dict(T_max="positive_int", eta_min="non_negative"), use_schedule,
          args=("CosineAnnealingLR",)),
    Entry(S.from_torch, dict(lr=0.1, T_0=10, T_mult=2, eta_min=0.001),
          dict(T_0="positive_int", T_mult="positive_int", eta_min="non_negative"),
          use_schedule, args=("CosineAnnealingWarmRestarts",)),
    Entry(S.from_torch, dict(lr=0.1, base_lr=0.001, max_lr=0.01, step_size_up=5,
                             mode="exp_range", gamma=0.99),
          dict(base_lr="non_negative", max_lr="positive", step_size_up="positive",
               step_size_down="optional_positive", mode="mode", gamma="unit_open_closed",
               lr_cap="optional_lr_cap"), use_schedule, args=("CyclicLR",)),
    Entry(S.from_torch, dict(lr=0.1, max_lr=0.1, total_steps=100),
          dict(max_lr="positive", total_steps="positive_int", pct_start="unit_closed",
               div_factor="positive", final_div_factor="positive", three_phase="flag"),
          use_schedule, args=("OneCycleLR",)),
    Entry(S.from_torch, dict(lr=0.1, max_lr=0.1, epochs=10, steps_per_epoch=10),
          dict(epochs="positive_int", steps_per_epoch="positive_int"), use_schedule,
          args=("OneCycleLR",)),
    Entry(S.from_torch, dict(lr=0.1, total_iters=5, power=2.0),
          dict(total_iters="positive_int", power="positive"), use_schedule,
          args=("PolynomialLR",)),
    Entry(S.from_torch, dict(lr=0.1, gamma=0.9),
          dict(lr="positive", gamma="positive", lr_cap="optional_lr_cap"), use_schedule,
          args=("ExponentialLR",)),
    Entry(S.from_torch, dict(lr=0.1, milestones=[2, 4], gamma=0.5),
          dict(milestones="int_list", gamma="positive"), use_schedule,
          args=("MultiStepLR",)),
    Entry(_sequential_lr, dict(lr=0.1, start_factor=0.1, total_iters=5, T_max=20,
                               milestones=[5]),
          dict(lr="positive", start_factor="unit_open_closed", total_iters="positive_int",
               T_max="positive_int", milestones="int_list"), use_schedule,
          covers=S.from_torch),
    Entry(_chained_scheduler, dict(lr=0.1, factor=0.5, total_iters=2, gamma=0.9),
          dict(lr="positive", factor="unit_open_closed", total_iters="non_negative_int",
               gamma="positive"), use_schedule, covers=S.from_torch),
    Entry(S.from_keras, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.9),
          dict(initial_learning_rate="positive", decay_steps="positive",
               decay_rate="positive", staircase="flag"), use_schedule,
          args=("ExponentialDecay",)),
    Entry(S.from_keras, dict(initial_learning_rate=0.1, decay_steps=100),
          dict(initial_learning_rate="positive", decay_steps="positive_int",
               alpha="unit_closed"), use_schedule, args=("CosineDecay",)),
    Entry(S.from_keras, dict(boundaries=[3], values=[1.0, 0.5]),
          dict(boundaries="int_list", values="rate_list"), use_schedule,
          args=("PiecewiseConstantDecay",)),
    # strategies
    Entry(T.scale_by_strategy,
          dict(sequence=S.seq3(0.01), rule="plateau", cutoff_fraction=0.01,
               cutoff_decay=0.2, patience=1, cooldown=0, rtol=1e-4, atol=0.0),
          dict(sequence="sequence", rule="rule", cutoff_fraction="positive",
               cutoff_decay="unit_open_closed", patience="non_negative_int",
               cooldown="non_negative_int", rtol="unit_closed", atol="non_negative"),
          use_strategy),
    Entry(T.by_epoch, dict(sequence=S.seq3(0.01)), dict(sequence="sequence"), use_strategy),
    Entry(T.by_cutoff, dict(sequence=S.seq4(0.01), cutoff_fraction=0.01, cutoff_decay=0.2),
          dict(sequence="sequence", cutoff_fraction="positive",
               cutoff_decay="unit_open_closed"), use_strategy),
    Entry(T.by_oscillate, dict(sequence=S.seq1(0.01)), dict(sequence="sequence"),
          use_strategy),
    Entry(T.on_plateau, dict(learning_rate=0.1, factor=0.5, patience=1, cooldown=0,
                             rtol=1e-4, atol=0.0, min_lr=0.0),
          dict(learning_rate="positive", factor="unit_open", patience="non_negative_int",
               cooldown="non_negative_int", rtol="unit_closed", atol="non_negative",
               min_lr="non_negative"), use_strategy),
    Entry(T.fixed, dict(learning_rate=0.001), dict(learning_rate="positive"), use_strategy),
    Entry(T.with_strategy, dict(inner=optax.scale_by_adam(), strategy=T.by_epoch(S.seq3(0.01))),
          dict(inner="transformation", strategy="transformation"), use_strategy),
    Entry(T.with_strategy, dict(inner=optax.scale_by_adam(), strategy=T.by_epoch(S.seq3(0.01)),
                                check_sign=True),
          dict(check_sign="flag"), use_strategy),
    Entry(T.multi_steps, dict(opt=T.sgd(S.seq3(0.01), "epoch"), every_k_schedule=2),
          dict(opt="transformation", every_k_schedule="positive_int"), use_strategy),
    Entry(T.switch_rule, dict(rules=[T.rules.epoch, T.rules.plateau], index=1),
          dict(rules="rules", index="index"), use_rule),
    # strategies: complete optimizers
    Entry(T.sgd, dict(sequence=S.seq3(0.01), rule="epoch", momentum=0.9, nesterov=False),
          dict(sequence="sequence", rule="rule", momentum="optional_momentum",
               nesterov="flag", accumulator_dtype="dtype"), use_strategy),
    Entry(T.sgd, dict(sequence=S.seq3(0.01), rule="plateau", patience=1),
          dict(patience="non_negative_int", cutoff_fraction="positive"), use_strategy),
    Entry(T.adam, dict(sequence=S.seq3(0.01), rule="epoch"),
          dict(sequence="sequence", rule="rule", b1="unit_closed_open", b2="unit_closed_open",
               eps="non_negative", eps_root="non_negative", mu_dtype="dtype",
               nesterov="flag"), use_strategy),
    Entry(T.adamw, dict(sequence=S.seq3(0.01), rule="epoch"),
          dict(sequence="sequence", rule="rule", b1="unit_closed_open", b2="unit_closed_open",
               eps="non_negative", eps_root="non_negative", weight_decay="non_negative",
               nesterov="flag"), use_strategy),
    Entry(T.rmsprop, dict(sequence=S.seq3(0.01), rule="epoch", momentum=0.9),
          dict(sequence="sequence", rule="rule", decay="unit_closed", eps="non_negative",
               initial_scale="non_negative", eps_in_sqrt="flag", centered="flag",
               momentum="optional_momentum", nesterov="flag", bias_correction="flag"),
          use_strategy),
    Entry(T.adagrad, dict(sequence=S.seq3(0.01), rule="epoch"),
          dict(sequence="sequence", rule="rule", initial_accumulator_value="non_negative",
               eps="non_negative"), use_strategy),
    # strategies: PyTorch's ReduceLROnPlateau
    Entry(T.reduce_lr_on_plateau, dict(learning_rate=0.1, mode="min", factor=0.5, patience=1),
          dict(learning_rate="positive", mode="choice", factor="unit_closed_open",
               patience="non_negative_int", threshold="non_negative",
               threshold_mode="choice", cooldown="non_negative_int", min_lr="non_negative",
               eps="non_negative"), use_torch_plateau),
    Entry(T.from_torch, dict(lr=0.1, mode="max", patience=3),
          dict(lr="positive", mode="choice", patience="non_negative_int",
               factor="unit_closed_open"), use_torch_plateau, args=("ReduceLROnPlateau",)),
    # adaptive
    Entry(A.hypergradient_sgd, dict(learning_rate=0.1, hyper_lr=1e-3, min_lr=1e-8,
                                    max_lr=10.0),
          dict(learning_rate="positive", hyper_lr="positive", min_lr="optional_positive",
               max_lr="optional_positive"), use_adaptive),
    Entry(A.hypergradient_adam, dict(learning_rate=1e-3, hyper_lr=1e-7, b1=0.9, b2=0.999,
                                     eps=1e-8, min_lr=1e-8, max_lr=10.0),
          dict(learning_rate="positive", hyper_lr="positive", b1="unit_closed_open",
               b2="unit_closed_open", eps="positive", min_lr="optional_positive",
               max_lr="optional_positive"), use_adaptive),
    Entry(A.newton_lr, dict(learning_rate=0.1, eps=1e-2, delta=1e-6, min_lr=1e-8,
                            max_lr=10.0, denominator_tol=None),
          dict(learning_rate="positive", eps="positive", delta="non_negative",
               min_lr="optional_positive", max_lr="optional_positive",
               denominator_tol="optional_non_negative", smoothing="smoothing"),
          use_adaptive),
    Entry(A.hypergradient, dict(inner=optax.scale_by_adam(), learning_rate=1e-3,
                                hyper_lr=1e-7, min_lr=1e-8, max_lr=10.0),
          dict(inner="transformation", learning_rate="positive", hyper_lr="positive",
               min_lr="optional_positive", max_lr="optional_positive"), use_adaptive),
]

GOOD = ("rejected", "legal")
BAD = ("unnamed_error", "obscure_error", "deferred_crash", "nonfinite", "negative",
       "bad_shape", "accepted_bad")


@dataclasses.dataclass(frozen=True)
class Case:
  entry: Entry
  arg: str
  value: Any

  @property
  def legal(self) -> bool:
    return repr(self.value) in KINDS[self.entry.kinds[self.arg]].legal

  def __str__(self):
    return f"{self.entry.name}({self.arg}={self.value!r})"


def cases(registry=REGISTRY):
  for entry in registry:
    for arg, kind_name in entry.kinds.items():
      for value in KINDS[kind_name].pool:
        yield Case(entry, arg, value)


def classify(case: Case) -> tuple[str, str]:
  """(outcome class, detail) of one case."""
  kwargs = dict(case.entry.valid)
  kwargs[case.arg] = case.value
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
      built = case.entry.fn(*case.entry.args, **kwargs)
    except (ValueError, TypeError) as err:
      if re.search(rf"`{re.escape(case.arg)}(\[\d+\])?`", str(err)):
        return "rejected", str(err)
      return "unnamed_error", f"{type(err).__name__}: {err}"
    except Exception as err:  # pylint: disable=broad-except
      return "obscure_error", f"{type(err).__name__}: {err}"
    try:
      bad = case.entry.use(built)
    except Exception as err:  # pylint: disable=broad-except
      return "deferred_crash", f"{type(err).__name__}: {str(err)[:200]}"
  if bad:
    return bad, ""
  return ("legal", "") if case.legal else ("accepted_bad", "")


def fuzz(registry=REGISTRY, verbose: bool = False) -> collections.Counter:
  """Runs every case; returns the count per outcome class (and prints bad cases)."""
  counts = collections.Counter()
  for case in cases(registry):
    outcome, detail = classify(case)
    counts[outcome] += 1
    if verbose and outcome in BAD:
      print(f"{outcome:15s} {case}  {detail[:160]}")
  return counts


# Public functions of the three packages that build nothing from hyperparameters: each
# with the reason it is not fuzzed.  Classes, type aliases, modules and data (NamedTuple
# states, `Rule`, `Schedule`, registries such as `REPORT_SEQUENCES`, `RULES`,
# `SMOOTHING_RULES`) are not constructors and are skipped by type.
NOT_CONSTRUCTORS = {
    "strategy_state": "reads a state (an accessor)",
    "current_lr": "reads a state (an accessor)",
    "current_index": "reads a state (an accessor)",
    "adaptive_state": "reads a state (an accessor)",
    "learned_lr": "reads a state (an accessor)",
    "five_losses": "a pure helper of arrays (traced inputs), not a constructor",
    "robust_smoothing": "a smoothing rule of arrays (traced inputs), not a constructor",
    "paper_smoothing": "a smoothing rule of arrays (traced inputs), not a constructor",
}


def public_constructors() -> dict[str, Callable]:
  """``"package.name" -> function`` for every public function of ``__all__``."""
  found = {}
  for module in (S, T, A):
    for name in module.__all__:
      obj = getattr(module, name)
      if not inspect.isfunction(obj):  # a class, alias, module, dict or tuple
        continue
      if name in NOT_CONSTRUCTORS:
        continue
      found[f"{module.__name__.split('.')[1]}.{name}"] = obj
  return found


def test_registry_covers_every_public_constructor():
  covered = {id(e.covers or e.fn) for e in REGISTRY}
  missing = sorted(name for name, fn in public_constructors().items()
                   if id(fn) not in covered)
  assert not missing, f"constructors missing from REGISTRY: {missing}"
  # the skip list names real public functions (no stale entry hides a constructor)
  public = {n for m in (S, T, A) for n in m.__all__}
  assert set(NOT_CONSTRUCTORS) <= public
  assert "schedules.constant" in public_constructors()
  assert "schedules.Schedule" not in public_constructors()


def test_every_valid_call_is_good():
  for entry in REGISTRY:
    assert entry.use(entry.fn(*entry.args, **entry.valid)) is None, entry.name


def test_fuzz_has_no_bad_outcomes(capsys):
  counts = fuzz(verbose=True)
  with capsys.disabled():
    print("\nfuzz outcome counts:", dict(sorted(counts.items())))
  assert sum(counts.values()) > 1000
  assert counts["rejected"] > 0
  assert {k: counts[k] for k in BAD if counts[k]} == {}


_BANK = [S.seq1(0.1), S.seq3(0.1)]


@pytest.mark.parametrize("call,error,pattern", [
    (lambda: S.seq1("0.1"), TypeError, "`r0` must be a real number"),
    (lambda: S.constant(True), TypeError, "`learning_rate` must be a real number"),
    (lambda: S.seq1(None), TypeError, "`r0`"),
    (lambda: S.seq1([0.1, 0.2]), TypeError, "`r0` must be a scalar"),
    (lambda: S.seq1(0.1 + 1j), TypeError, "`r0`.*complex"),
    (lambda: S.seq1(1e39), ValueError, "`r0` overflows float32"),
    (lambda: S.seq1(1e-45), ValueError, "`r0` is below float32's smallest normal"),
    (lambda: S.exponential_decay(0.1, 1e-40), ValueError, "`k` is below float32"),
    (lambda: S.seq4(0.1, period=2 ** 31), ValueError, "`period` must fit in int32"),
    (lambda: S.cosine_annealing(0.1, 2.5), ValueError, "`total_steps` must be a positive int"),
    (lambda: S.cosine_annealing(0.1, True), TypeError, "`total_steps`"),
    # float32 comparison: 0.1000000001 and 0.1 are the same float32, so min_lr <= max_lr
    (lambda: S.cosine_annealing(0.1, 10, 0.1000001), ValueError, "`min_lr`"),
    (lambda: S.one_cycle_torch(0.1, 10, three_phase=1), TypeError, "`three_phase`"),
    (lambda: S.one_cycle_torch(1e10, 10, div_factor=1e-30), ValueError,
     "`max_lr` / `div_factor`"),
    (lambda: S.cyclical(0.0, 1.0, 2, mode=None), TypeError, "`mode`"),
    (lambda: S.switch(_BANK, 2), ValueError, "`index`"),
    (lambda: S.switch(_BANK, -1), ValueError, "`index`"),
    (lambda: S.switch(_BANK, 0.5), ValueError, "`index`"),
    (lambda: S.switch([S.seq1(0.1), None], 0), TypeError, "`schedules`"),
    (lambda: T.with_strategy("adam", T.fixed(0.1)), TypeError, "`inner`"),
    (lambda: T.scale_by_strategy(S.seq1(0.1), "epoch", patience=2 ** 31), ValueError,
     "`patience` must fit in int32"),
    (lambda: A.newton_lr(0.1, eps="1e-2"), TypeError, "`eps`"),
    # found by the fuzz of the constructors added since (each failed on main)
    (lambda: S.multi_step_lr(0.1, [2.5]), ValueError, r"`milestones\[0\]`"),
    (lambda: S.multi_step_lr(0.1, 3), TypeError, "`milestones` must be a list"),
    (lambda: S.piecewise_constant_decay([3], [NAN, 0.5]), ValueError, r"`values\[0\]`"),
    (lambda: S.join(_BANK, None), TypeError, "`boundaries`"),
    (lambda: S.cosine_annealing(0.1, 10, periodic=1), TypeError, "`periodic`"),
    (lambda: S.keras_exponential_decay(0.1, 10, 0.9, staircase="True"), TypeError,
     "`staircase`"),
    (lambda: S.keras_polynomial_decay(0.1, 10, cycle=None), TypeError, "`cycle`"),
    (lambda: S.one_cycle_momentum(10, three_phase=0), TypeError, "`three_phase`"),
    (lambda: S.lambda_lr(0.1, lambda t: jnp.ones(2)), ValueError, "`lr_lambda`"),
    (lambda: S.lambda_lr(0.1, lambda t: NAN), ValueError, "`lr_lambda`"),
    (lambda: S.lambda_lr(0.1, lambda t: 1e39), ValueError, "`lr_lambda`"),
    (lambda: S.lambda_lr(0.1, lambda t: 1e39, num_steps=3), ValueError, "`lr_lambda`"),
    (lambda: S.from_torch("CosineAnnealingLR", lr=0.1, T_max=0), ValueError, "`T_max`"),
    (lambda: S.from_torch("CosineAnnealingLR", lr=0.1, T_max=5, eta_min=-1.0), ValueError,
     "`eta_min`"),
    (lambda: S.from_torch("CosineAnnealingWarmRestarts", lr=0.1, T_0=5, T_mult=0),
     ValueError, "`T_mult`"),
    (lambda: S.from_torch("CyclicLR", lr=0.1, base_lr=-1.0, max_lr=0.1), ValueError,
     "`base_lr`"),
    (lambda: S.from_torch("CyclicLR", lr=0.1, base_lr=0.01, max_lr=0.1, step_size_up=0),
     ValueError, "`step_size_up`"),
    (lambda: S.from_torch("PolynomialLR", lr=0.1, total_iters=0), ValueError,
     "`total_iters`"),
    (lambda: S.from_torch("SequentialLR", lr=0.1, milestones=[2.5], schedulers=[
        ("ConstantLR", {}), ("ConstantLR", {})]), ValueError, r"`milestones\[0\]`"),
    (lambda: T.from_torch("ReduceLROnPlateau", lr=-1.0), ValueError, "`lr`"),
    (lambda: T.sgd(S.seq1(0.1), "epoch", momentum=0.9, nesterov=1), TypeError, "`nesterov`"),
    (lambda: T.sgd(S.seq1(0.1), "epoch", momentum=0.9, accumulator_dtype="nope"),
     TypeError, "`accumulator_dtype`"),
    (lambda: T.adam(S.seq1(0.1), "epoch", mu_dtype=jnp.int32), TypeError, "`mu_dtype`"),
    (lambda: T.rmsprop(S.seq1(0.1), "epoch", centered=None), TypeError, "`centered`"),
    (lambda: T.with_strategy(optax.identity(), T.fixed(0.1), check_sign=None), TypeError,
     "`check_sign`"),
    (lambda: T.multi_steps("adam", 2), TypeError, "`opt`"),
    (lambda: T.multi_steps(T.sgd(S.seq1(0.1), "epoch"), True), TypeError,
     "`every_k_schedule`"),
    (lambda: T.multi_steps(T.sgd(S.seq1(0.1), "epoch"), -1.0), ValueError,
     "`every_k_schedule`"),
    (lambda: T.switch_rule(None, 0), TypeError, "`rules`"),
])
def test_examples_of_rejections(call, error, pattern):
  with pytest.raises(error, match=pattern) as info:
    call()
  assert isinstance(info.value, ValueError)  # ArgumentTypeError is both


def test_legal_edge_values_work():
  """Values of the pools documented as legal, used for real."""
  assert float(S.exponential_decay(0.1, 0.0)(10 ** 9)) == pytest.approx(0.1)
  assert float(S.cosine_annealing(0.1, 10, min_lr=0.0)(10)) == 0.0
  assert float(S.cosine_annealing(0.1, 10.0)(5)) == pytest.approx(0.05)  # integral float
  assert float(S.cosine_annealing(0.1, 10, 0.1000000001)(5)) == pytest.approx(0.1)
  assert float(S.cyclical(0.0, 1.0, 2, step_size_down=None)(2)) == 1.0
  # pct_start = 0: PyTorch's first phase ends at -1, step 0 is at pct 0.1 of the second
  want = 0.1 * 1e-5 + (0.1 - 0.1 * 1e-5) / 2 * (1 + math.cos(math.pi * 0.1))
  assert float(S.one_cycle_torch(0.1, 10, pct_start=0.0)(0)) == pytest.approx(want, rel=1e-6)
  # a traced index cannot be checked: out of range, it is clamped (as lax.switch does)
  clamped = jax.jit(lambda i: S.switch(_BANK, i)(1))(jnp.asarray(7, jnp.int32))
  assert float(clamped) == pytest.approx(0.09)
  # list arguments (broken on main: every list was refused as "not a scalar")
  assert [round(float(S.multi_step_lr(0.1, [2, 4], 0.5)(t)), 6) for t in (0, 2, 4)] == [
      0.1, 0.05, 0.025]
  assert float(S.multi_step_lr(0.1, [])(100)) == pytest.approx(0.1)  # no milestone
  assert float(S.piecewise_constant_decay([3], [1.0, 0.0])(4)) == 0.0  # a rate of 0
  # a factor that ignores the step still gives one rate per step
  assert S.lambda_lr(0.1, lambda t: 0.5)(jnp.arange(3)).shape == (3,)
  # None is a legal dtype, momentum and bound (documented defaults)
  assert T.adam(S.seq1(0.1), "epoch", mu_dtype=jnp.bfloat16) is not None
  assert use_adaptive(A.hypergradient_sgd(0.1, min_lr=None, max_lr=None)) is None
  assert use_strategy(T.multi_steps(T.sgd(S.seq1(0.1), "epoch"), lambda step: 2)) is None


if __name__ == "__main__":
  print(dict(sorted(fuzz(verbose=True).items())))
