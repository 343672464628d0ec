r"""Strategies: *when* to move to the next element of a learning-rate sequence.

The report (Yang & Huang 2019, section 3.2) separates a decaying *sequence*
``r_0, r_1, r_2, ...`` (``lrjax.schedules.seq1`` ... ``seq4``, or any ``n -> lr``
callable) from the *strategy* that decides when to pop its next element.  A strategy
here is an ``optax.GradientTransformationExtraArgs`` placed **after** the inner
optimizer; it multiplies the inner updates by ``-lr`` (the sign convention of
``optax.scale_by_learning_rate``), where ``lr = sequence(index)`` and ``index`` is the
sequence position ``n`` (0 at the start: ``lr = r_0``)::

  optax.chain(optax.scale_by_adam(), by_epoch(seq1(0.01)))   # Adam
  optax.chain(optax.trace(decay=0.9), by_epoch(seq1(0.01)))  # PyTorch-style momentum
  by_epoch(seq1(0.01))                                       # plain SGD

Why scaling after the inner transformation is exact
---------------------------------------------------
SGD (``p -= lr g``), PyTorch-style momentum (``b = mu b + g; p -= lr b``: the buffer
excludes the rate, as ``optax.trace`` does) and Adam / RMSprop / Adagrad
(``p -= lr m_hat / (sqrt(v_hat) + eps)``) all produce an update that is the rate times a
direction computed *without* the rate.  Multiplying the inner transformation's output by
the current rate is then exactly the optimizer run with that rate, even when the rate
changes between steps.  Optimizers whose state depends on the rate (Keras/TF-style
momentum ``v = mu v - lr g``, weight decay coupled as ``lr * wd``, line searches,
Prodigy/DoG/Mechanic, anything reading the rate inside its own update) are not linear in
it: use ``optax.inject_hyperparams`` with the rate as a hyperparameter for those.

Pitfall: the sign
-----------------
The strategy applies the minus.  ``optax.chain(optax.sgd(1.0), by_epoch(seq))`` applies
it twice and silently *ascends*; give the rate-free direction (``optax.identity()``,
``optax.trace``, ``optax.scale_by_adam``), or use the complete optimizers
``lrjax.strategies.sgd/adam/adamw/rmsprop/adagrad``, or `with_strategy`, which refuses
an inner that already descends (`lrjax.strategies.compose` says what it can detect).
Put it outside ``optax.apply_if_finite`` and use `lrjax.strategies.multi_steps` for
gradient accumulation (`lrjax.strategies.compose`).

Extra-args contract (the epoch-level signal)
--------------------------------------------
``update(updates, state, params=None, *, valid_loss=None, epoch_boundary=None,
initial_observation=None, **extra)``

* Between epoch boundaries the engine passes ``epoch_boundary=False`` (or nothing):
  index, rate and every statistic are kept.
* On the first step after an epoch the engine passes ``valid_loss`` = that epoch's
  validation loss and ``epoch_boundary=True`` (``epoch_boundary`` defaults to True when
  ``valid_loss`` is given and ``epoch_boundary`` is None).  The strategy first observes
  the loss, maybe advances (``index += 1``, ``lr = sequence(index)``), then scales *this
  step's* updates by the resulting rate.
* ``initial_observation=True`` (a bool array, default None = False) records
  ``valid_loss`` as ``loss_0``, the baseline: ``prev_loss = best_loss = loss_0``,
  ``c_0 = cutoff_fraction * |loss_0|``, plateau counters reset, ``num_observations``
  counted; no rule is evaluated, the index does not move, it is *not* a boundary
  (``epoch_boundary`` is ignored on that step) and the step's updates are scaled by the
  current rate as usual.  A NaN/inf initial loss sets no baseline (and sets the flag).
* All are (possibly traced) arrays; the decision is ``jnp.where`` arithmetic, so the
  same traced function serves every step of a ``lax.scan`` and every variant of a
  ``jax.vmap``.  ``epoch_boundary=True`` without ``valid_loss`` is a boundary with no
  loss: only rules that ignore the loss (``epoch``) advance.

Which loss is ``loss_0``
------------------------
The report's Algorithm 2 compares ``|valid loss_t - valid loss_{t-1}| < cutoff`` "for
t <- 1, 2, ..., n", right after "Run the model and update parameters with lr" once, and
"Cutoff is defined to be c_0 = loss_0 * 0.01, c_{t+1} = c_t * 0.2" (section 3.2).  At
t = 1 the comparison needs ``valid loss_0``, the loss *before* that first run: the
validation loss of the untrained model.  Both readings are supported:

* **before training** (the report's, the engine's default,
  ``SweepConfig.observe_untrained_loss=True``): pass the untrained model's validation
  loss with ``initial_observation=True`` on the first step; the first decision of
  ``cutoff``/``oscillate``/``plateau`` is at the first boundary (after epoch 1) and
  ``c_0`` is 1% of the untrained loss.
* **after the first epoch** (earlier lrjax versions, ``observe_untrained_loss=False``):
  no initial observation; the first finite boundary loss becomes ``loss_0`` and the
  first decision is at the second boundary.

NaN / inf
---------
* A NaN or inf validation loss sets the sticky ``state.nonfinite`` flag and leaves
  ``prev_loss``, ``best_loss``, ``cutoff`` and the plateau/cooldown counters untouched
  (it is not counted in ``num_observations``).  The loss rules do not advance on it;
  ``epoch`` does (Algorithm 1 advances at every epoch and never looks at the loss).
  Later finite losses continue from the last finite one.
* A sequence that gives a NaN/inf or negative rate (possible with traced
  hyperparameters, or extreme positions) is never applied: the index moves on, the
  strategy keeps its last good rate and sets ``nonfinite``.  A bad ``sequence(0)`` at
  ``init`` gives rate 0 and the flag.

Rules (``Rule`` codes; ``rule`` may be a string, a code, a traced int32 or a function)
--------------------------------------------------------------------------------------
* ``fixed`` (0): never advances (the benchmarks' constant rate).
* ``epoch`` (1, Algorithm 1): advances at every boundary.
* ``cutoff`` (2, Algorithm 2): advances when ``|loss_t - loss_{t-1}| < cutoff``, then
  ``cutoff *= cutoff_decay`` (report: ``c_0 = 0.01 loss_0``, ``c_{t+1} = 0.2 c_t``).
* ``oscillate`` (3, Algorithm 3): advances when ``loss_t - loss_{t-1} > 0``.
* ``plateau`` (4): the decision of ``optax.contrib.reduce_on_plateau`` with
  ``accumulation_size=1``: improvement iff ``loss < (1 - rtol) best - atol``; after
  ``patience`` observations without improvement the sequence advances (optax's
  "reduce") and ``cooldown`` observations are ignored.  ``on_plateau`` uses the
  sequence ``max(r_0 factor^n, min_lr)``, so ``lr = r_0 * scale`` of optax.
* any function ``Statistics -> bool`` (`lrjax.strategies.rules`): a user's rule, no
  lrjax edit needed; `lrjax.strategies.switch_rule` selects among several (built-in
  or not) by a traced index.

The bookkeeping of every statistic is kept whatever the rule; the rule only decides
whether ``index`` moves.  The cutoff decays when the sequence advances at a boundary
where the cutoff test held (under the ``cutoff`` rule: at each of its advances).  A
traced code selects the built-in rule with ``lax.switch``, so variants with different
rules *and* different sequences (``lrjax.schedules.switch(bank, seq_id)``) run as one
vmapped program.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _validation
from lrjax.errors import ArgumentError, ArgumentTypeError
from lrjax.strategies import rules

Sequence = Callable[[chex.Numeric], chex.Numeric]


class Rule(enum.IntEnum):
  """Codes of the strategies' rules (``Rule["EPOCH"] == Rule.EPOCH == 1``)."""

  FIXED = 0
  EPOCH = 1
  CUTOFF = 2
  OSCILLATE = 3
  PLATEAU = 4


RULES = tuple(r.name.lower() for r in Rule)


class StrategyState(NamedTuple):
  """State of `scale_by_strategy` (arrays only, the same for every rule).

  Attributes:
    index: int32, the sequence position ``n`` (0 at the start).
    lr: float32, ``sequence(index)``: the rate applied to the last update (computed
      at every update from the sequence, so a changed sequence applies at once).
    cutoff: float32, by-cutoff threshold (inf until ``loss_0`` sets ``c_0``).
    prev_loss: float32, last finite observed validation loss (inf before any).
    best_loss: float32, best finite observed loss in the plateau sense (inf before any).
    plateau_count: int32, observations without improvement (plateau rule).
    cooldown_count: int32, observations still ignored after a plateau advance.
    num_observations: int32, finite validation losses observed (``loss_0`` included).
    num_boundaries: int32, epoch boundaries seen (the initial observation is none).
    nonfinite: bool, sticky: a NaN/inf validation loss was observed, or the sequence
      gave a NaN/inf/negative rate (that rate was not applied).

  Dtypes follow the params, as ``optax.contrib.reduce_on_plateau``'s state does:
  ``lr`` has the highest float dtype of the params (float32 when they have none;
  each leaf's update casts it to the leaf's dtype, so every leaf gets the rate
  ``optax.sgd`` would use); the loss statistics have that dtype promoted to at least
  float32 (the cutoff compares loss differences of ~1e-4 of the loss, which bfloat16
  cannot hold); counters are int32.
  """

  index: jax.Array  # type: ignore[assignment]  # a field named like tuple's method, by design
  lr: jax.Array
  cutoff: jax.Array
  prev_loss: jax.Array
  best_loss: jax.Array
  plateau_count: jax.Array
  cooldown_count: jax.Array
  num_observations: jax.Array
  num_boundaries: jax.Array
  nonfinite: jax.Array


# The built-in rules, indexed by their `Rule` code.
BUILTIN_RULES = (rules.fixed, rules.epoch, rules.cutoff, rules.oscillate, rules.plateau)


def _rule_fn(rule: Any, code: Any) -> rules.RuleFn:
  """A user function as it is; a (traced) built-in code -> its rule."""
  if callable(rule):
    return rule
  return rules.switch_rule(BUILTIN_RULES, code)


def _state_dtypes(params: Any) -> tuple[Any, Any]:
  """(rate dtype, loss-statistics dtype) from the params' float leaves."""
  floats = [jnp.result_type(x) for x in jax.tree.leaves(params)
            if jnp.issubdtype(jnp.result_type(x), jnp.floating)]
  lr_dtype = jnp.result_type(*floats) if floats else jnp.dtype(jnp.float32)
  return lr_dtype, jnp.promote_types(lr_dtype, jnp.float32)


def _rule_code(rule: Any) -> Any:
  """A Python int / IntEnum / str -> checked int; a traced/array code -> int32 array."""
  if isinstance(rule, str):
    name = rule.lower()
    if name not in RULES:
      raise ArgumentError("rule", f"must be one of {RULES} or a `Rule` code, got {rule!r}.")
    return int(Rule[name.upper()])
  if isinstance(rule, (bool, np.bool_)):
    raise ArgumentError("rule", f"must be one of {RULES} or a `Rule` code, got {rule!r}.")
  if _validation.is_concrete(rule):
    try:
      arr = np.asarray(rule)
    except (TypeError, ValueError) as err:
      raise ArgumentError("rule", f"must be one of {RULES} or a `Rule` code, "
                          f"got {rule!r}.") from err
    if (arr.dtype.kind not in "iu" or arr.shape != ()
        or not 0 <= int(arr) <= max(Rule)):
      raise ArgumentError("rule", f"must be one of {RULES} or an integer `Rule` code "
                          f"in [0, {max(Rule)}], got {rule!r}.")
    if isinstance(rule, (int, np.integer)):
      return int(rule)
  return jnp.clip(jnp.asarray(rule, jnp.int32), 0, max(Rule))


def _check_sequence(sequence: Any) -> None:
  if not callable(sequence):
    raise ArgumentError("sequence", f"must be a callable n -> lr, got {sequence!r}.")
  lr0 = sequence(jnp.asarray(0, jnp.int32))
  if _validation.is_concrete(lr0):
    arr = np.asarray(lr0, np.float64)
    if arr.shape != () or not np.isfinite(arr) or arr <= 0:
      raise ArgumentError("sequence", "must give a finite scalar rate > 0 at index 0, "
                          f"got {lr0!r}.")


def scale_by_strategy(
    sequence: Sequence,
    rule: str | int | chex.Numeric,
    *,
    cutoff_fraction: chex.Numeric = 0.01,
    cutoff_decay: chex.Numeric = 0.2,
    patience: chex.Numeric = 10,
    cooldown: chex.Numeric = 0,
    rtol: chex.Numeric = 1e-4,
    atol: chex.Numeric = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Scales updates by ``-sequence(index)``, advancing ``index`` by ``rule``.

  At an epoch boundary with validation loss :math:`L_t` (previous :math:`L_{t-1}`) the
  rule advances :math:`n \leftarrow n + 1` when

  * ``epoch``: always;
  * ``cutoff``: :math:`|L_t - L_{t-1}| < c_t`, then :math:`c_{t+1} = \mathrm{decay}\,c_t`,
    :math:`c_0 = \mathrm{fraction}\,|L_0|`;
  * ``oscillate``: :math:`L_t - L_{t-1} > 0`;
  * ``plateau``: ``patience`` non-improving losses (:math:`L_t \ge (1 - rtol)
    L_{best} - atol`), outside ``cooldown`` (``optax.contrib.reduce_on_plateau``);
  * ``fixed``: never;

  and the step's updates are multiplied by :math:`-r_n`.  See the module docstring for
  the extra-args contract and the handling of NaN/inf losses.

  Sign: this multiplies by ``-lr``; chain it after a rate-free direction, never after
  ``optax.sgd(lr)``/``optax.adam(lr)`` (the minus twice: ascent).  The complete
  optimizers ``lrjax.strategies.sgd(sequence, rule)``/``adam(...)`` avoid it.

  Args:
    sequence: any ``n -> lr`` callable (an lrjax schedule, ``schedules.switch(...)`` or a
      lambda); ``n`` is an int32 array.  ``sequence(0)`` must be > 0.
    rule: one of ``"fixed", "epoch", "cutoff", "oscillate", "plateau"``, a `Rule`
      code (a Python int or a traced int32, e.g. vmapped over variants), or a function
      ``Statistics -> bool`` (`lrjax.strategies.rules`, `switch_rule`).
    cutoff_fraction: ``c_0 = cutoff_fraction * |loss_0|`` (report: 0.01), > 0.
    cutoff_decay: cutoff factor after each by-cutoff advance, in (0, 1] (report: 0.2).
    patience: plateau rule: non-improving observations before advancing, >= 0.
    cooldown: plateau rule: observations ignored after an advance, >= 0.
    rtol: plateau rule: relative improvement tolerance, in [0, 1].
    atol: plateau rule: absolute improvement tolerance, >= 0 (not both 0).

  Returns:
    An ``optax.GradientTransformationExtraArgs`` with `StrategyState`.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from lrjax.schedules import seq3
    >>> tx = optax.chain(optax.scale_by_adam(), scale_by_strategy(seq3(0.01), "epoch"))
    >>> params = jnp.zeros(3)
    >>> state = tx.init(params)
    >>> g = jnp.ones(3)
    >>> _, state = tx.update(g, state, params, valid_loss=1.0, epoch_boundary=True)
    >>> int(current_index(state)), round(float(current_lr(state)), 6)
    (1, 0.009)
  """
  _check_sequence(sequence)
  code = None if callable(rule) else _rule_code(rule)
  _validation.check_positive("cutoff_fraction", cutoff_fraction)
  _validation.check_in_range("cutoff_decay", cutoff_decay, 0.0, 1.0, low_open=True)
  _validation.check_non_negative_int("patience", patience)
  _validation.check_non_negative_int("cooldown", cooldown)
  _validation.check_in_range("rtol", rtol, 0.0, 1.0)
  _validation.check_non_negative("atol", atol)
  if (_validation.is_concrete(rtol) and _validation.is_concrete(atol)
      and np.all(np.asarray(rtol) == 0) and np.all(np.asarray(atol) == 0)):
    raise ValueError("At least one of `rtol` or `atol` must be > 0, got both 0.")

  rule_fn = _rule_fn(rule, code)

  def rate(index, dtype):
    return jnp.asarray(sequence(index)).astype(dtype).reshape(())

  def good_rate(lr):
    # A sequence may give NaN/inf or a negative rate for some (traced) hyperparameters
    # or at extreme positions: such a rate is never applied (see `StrategyState.lr`).
    return jnp.isfinite(lr) & (lr >= 0)

  def init_fn(params) -> StrategyState:
    lr_dtype, loss_dtype = _state_dtypes(params)
    index = jnp.zeros((), jnp.int32)
    lr0 = rate(index, lr_dtype)
    ok = good_rate(lr0)
    # Every leaf is its own buffer (jnp.full/jnp.zeros/jnp.array(copy=True) per field),
    # so the state can be donated (`jax.jit(..., donate_argnums=...)`).
    return StrategyState(
        index=index,
        lr=jnp.array(jnp.where(ok, lr0, jnp.zeros((), lr_dtype)), lr_dtype, copy=True),
        cutoff=jnp.full((), jnp.inf, loss_dtype),
        prev_loss=jnp.full((), jnp.inf, loss_dtype),
        best_loss=jnp.full((), jnp.inf, loss_dtype),
        plateau_count=jnp.zeros((), jnp.int32),
        cooldown_count=jnp.zeros((), jnp.int32),
        num_observations=jnp.zeros((), jnp.int32),
        num_boundaries=jnp.zeros((), jnp.int32),
        nonfinite=jnp.array(~ok, bool, copy=True))

  def observe(state: StrategyState, valid_loss, boundary, initial) -> StrategyState:
    loss_dtype = state.prev_loss.dtype
    if valid_loss is None:
      given = False
      loss = jnp.full((), jnp.inf, loss_dtype)
    else:
      given = True
      loss = jnp.asarray(valid_loss).astype(loss_dtype).reshape(())
    finite = jnp.isfinite(loss)
    has_loss = finite & given
    boundary = boundary & ~initial  # the initial observation is never a boundary
    baseline = initial & has_loss  # loss_0 observed before training (not a decision)
    obs = boundary & has_loss  # a finite loss observed at a boundary
    bad = (boundary | initial) & ~finite & given  # a NaN/inf loss arrived
    first = state.num_observations == 0
    counted = baseline | obs

    # reduce_on_plateau (accumulation_size = 1) with "reduce" = advance.
    improved = loss < ((1 - jnp.asarray(rtol, loss_dtype)) * state.best_loss
                       - jnp.asarray(atol, loss_dtype))
    best = jnp.where(improved, loss, state.best_loss)
    count = jnp.where(improved, 0, state.plateau_count + 1).astype(jnp.int32)
    in_cooldown = state.cooldown_count > 0
    hit = (~in_cooldown) & (count == patience)
    plateau_count = jnp.where(in_cooldown | hit, 0, count).astype(jnp.int32)
    cooldown_count = jnp.where(
        in_cooldown, state.cooldown_count - 1,
        jnp.where(hit, jnp.asarray(cooldown, jnp.int32), 0)).astype(jnp.int32)

    stats = rules.Statistics(
        loss=loss, has_loss=has_loss, prev_loss=state.prev_loss,
        best_loss=state.best_loss, cutoff=state.cutoff,
        num_observations=state.num_observations, num_boundaries=state.num_boundaries,
        index=state.index, plateau_reached=has_loss & hit)
    advance = boundary & rules.decide(rule_fn, stats)
    cutoff_met = rules.cutoff(stats)

    index = jnp.where(advance, state.index + 1, state.index).astype(jnp.int32)
    candidate = rate(index, state.lr.dtype)
    ok = good_rate(candidate)
    lr = jnp.where(advance & ok, candidate, state.lr)
    c_0 = jnp.asarray(cutoff_fraction, loss_dtype) * jnp.abs(loss)
    cutoff = jnp.where(
        baseline | (obs & first), c_0,
        jnp.where(advance & cutoff_met,
                  state.cutoff * jnp.asarray(cutoff_decay, loss_dtype), state.cutoff))
    # The baseline resets the plateau bookkeeping to loss_0 (best = loss_0, no count).
    zero = jnp.zeros((), jnp.int32)
    return StrategyState(
        index=index,
        lr=lr.astype(state.lr.dtype),
        cutoff=cutoff.astype(loss_dtype),
        prev_loss=jnp.where(counted, loss, state.prev_loss),
        best_loss=jnp.where(baseline, loss,
                            jnp.where(obs, best, state.best_loss)).astype(loss_dtype),
        plateau_count=jnp.where(baseline, zero,
                                jnp.where(obs, plateau_count, state.plateau_count)),
        cooldown_count=jnp.where(baseline, zero,
                                 jnp.where(obs, cooldown_count, state.cooldown_count)),
        num_observations=jnp.where(counted, state.num_observations + 1,
                                   state.num_observations).astype(jnp.int32),
        num_boundaries=jnp.where(boundary, state.num_boundaries + 1,
                                 state.num_boundaries).astype(jnp.int32),
        nonfinite=state.nonfinite | bad | (advance & ~ok),
    )

  def update_fn(updates, state: StrategyState, params=None, *, valid_loss=None,
                epoch_boundary=None, initial_observation=None, **extra_args):
    del params, extra_args
    if epoch_boundary is None:
      epoch_boundary = valid_loss is not None
    if initial_observation is None:
      initial_observation = False
    # Python False for both needs no traced bookkeeping.
    if epoch_boundary is not False or initial_observation is not False:
      boundary = jnp.asarray(epoch_boundary).astype(bool).reshape(())
      initial = jnp.asarray(initial_observation).astype(bool).reshape(())
      state = observe(state, valid_loss, boundary, initial)
    # The rate of the current position, from the sequence as it is now: a sweep that
    # changes the sequence's hyperparameters between epochs (r0, a decay) gets the new
    # rate from the next step (lrjax.train.engine.hyperparams).  A bad rate is never
    # applied (the last good one is kept), as when the sequence advances.
    candidate = rate(state.index, state.lr.dtype)
    state = state._replace(lr=jnp.where(good_rate(candidate), candidate, state.lr))
    step = -state.lr
    updates = jax.tree.map(lambda g: jnp.asarray(step, g.dtype) * g, updates)
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def by_epoch(sequence: Sequence) -> optax.GradientTransformationExtraArgs:
  """Algorithm 1: ``lr = r_0`` for the first epoch, then ``r_1, r_2, ...``.

  Sign: this multiplies by ``-lr``; chain it after a rate-free direction, never after
  ``optax.sgd(lr)``/``optax.adam(lr)`` (the minus twice: ascent).  The complete
  optimizers ``lrjax.strategies.sgd(sequence, rule)``/``adam(...)`` avoid it.

  Example:
    >>> from lrjax.schedules import seq3
    >>> tx = by_epoch(seq3(0.01))  # r_n = 0.9^n r_0 at epoch n
  """
  return scale_by_strategy(sequence, Rule.EPOCH)


def by_cutoff(sequence: Sequence, cutoff_fraction: chex.Numeric = 0.01,
              cutoff_decay: chex.Numeric = 0.2) -> optax.GradientTransformationExtraArgs:
  r"""Algorithm 2: advance when :math:`|L_t - L_{t-1}| < c_t`; :math:`c_{t+1} = 0.2 c_t`.

  :math:`c_0 = \mathrm{cutoff\_fraction} \cdot L_0` (report: 0.01).

  Sign: this multiplies by ``-lr``; chain it after a rate-free direction, never after
  ``optax.sgd(lr)``/``optax.adam(lr)`` (the minus twice: ascent).  The complete
  optimizers ``lrjax.strategies.sgd(sequence, rule)``/``adam(...)`` avoid it.

  Example:
    >>> from lrjax.schedules import seq4
    >>> tx = by_cutoff(seq4(0.01))
  """
  return scale_by_strategy(sequence, Rule.CUTOFF, cutoff_fraction=cutoff_fraction,
                           cutoff_decay=cutoff_decay)


def by_oscillate(sequence: Sequence) -> optax.GradientTransformationExtraArgs:
  r"""Algorithm 3: advance when the validation loss rose, :math:`L_t - L_{t-1} > 0`.

  Sign: this multiplies by ``-lr``; chain it after a rate-free direction, never after
  ``optax.sgd(lr)``/``optax.adam(lr)`` (the minus twice: ascent).  The complete
  optimizers ``lrjax.strategies.sgd(sequence, rule)``/``adam(...)`` avoid it.

  Example:
    >>> from lrjax.schedules import seq1
    >>> tx = by_oscillate(seq1(0.01))
  """
  return scale_by_strategy(sequence, Rule.OSCILLATE)


def on_plateau(learning_rate: chex.Numeric, factor: chex.Numeric = 0.1,
               patience: chex.Numeric = 10, cooldown: chex.Numeric = 0,
               rtol: chex.Numeric = 1e-4, atol: chex.Numeric = 0.0,
               min_lr: chex.Numeric = 0.0) -> optax.GradientTransformationExtraArgs:
  r"""Reduce-on-plateau: :math:`r_n = \max(r_0\,\mathrm{factor}^n, \mathrm{min\_lr})`.

  Same decisions as ``optax.chain(..., optax.contrib.reduce_on_plateau(factor,
  patience, rtol, atol, cooldown, accumulation_size=1))`` fed one validation loss per
  epoch, with ``lr = learning_rate * scale``; the validation loss arrives through the
  ``valid_loss`` extra arg instead of ``value``.

  Sign: this multiplies by ``-lr``; chain it after a rate-free direction, never after
  ``optax.sgd(lr)``/``optax.adam(lr)`` (the minus twice: ascent).  The complete
  optimizers ``lrjax.strategies.sgd(sequence, rule)``/``adam(...)`` avoid it.

  Example:
    >>> tx = on_plateau(0.1, factor=0.5, patience=3)
  """
  _validation.check_positive("learning_rate", learning_rate)
  _validation.check_in_range("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
  _validation.check_non_negative("min_lr", min_lr)

  def sequence(n):
    n = jnp.asarray(n, jnp.float32)
    lr = learning_rate * jnp.power(jnp.asarray(factor, jnp.float32), n)
    return jnp.maximum(lr, min_lr).astype(jnp.float32)

  return scale_by_strategy(sequence, Rule.PLATEAU, patience=patience, cooldown=cooldown,
                           rtol=rtol, atol=atol)


def fixed(learning_rate: chex.Numeric) -> optax.GradientTransformationExtraArgs:
  """A constant rate (the report's benchmarks): never advances.

  Sign: this multiplies by ``-lr``; chain it after a rate-free direction, never after
  ``optax.sgd(lr)``/``optax.adam(lr)`` (the minus twice: ascent).  The complete
  optimizers ``lrjax.strategies.sgd(sequence, rule)``/``adam(...)`` avoid it.

  Example:
    >>> tx = fixed(0.001)
  """
  _validation.check_positive("learning_rate", learning_rate)

  def sequence(n):
    return jnp.full(jnp.shape(n), learning_rate, jnp.float32)

  return scale_by_strategy(sequence, Rule.FIXED)


# The state types of lrjax's strategies, found by `strategy_state` in any optax state
# tree.  Each has an ``lr`` (the rate it applies now) and an ``index`` (its sequence
# position; for PyTorch's plateau rule, the reductions applied).  A strategy module
# with its own state class registers it (`register_state`) instead of this module
# knowing about it.
_STATE_TYPES: list[type] = [StrategyState]


def register_state(cls: type) -> type:
  """Makes `strategy_state`, `current_lr` and `current_index` find ``cls`` (a
  strategy's state class with ``lr`` and ``index`` attributes).  Returns ``cls``."""
  missing = [a for a in ("lr", "index") if not hasattr(cls, a)]
  if missing:
    raise ArgumentTypeError(
        "cls", "must have `lr` and `index` attributes to be a strategy state; "
        f"{cls.__name__} lacks {missing}.")
  if cls not in _STATE_TYPES:
    _STATE_TYPES.append(cls)
  return cls


def strategy_state(opt_state: Any):
  """The single lrjax strategy state inside an optax state tree (chains, wrappers):
  a `StrategyState`, or the `lrjax.strategies.torch_plateau.TorchPlateauState` of
  ``reduce_lr_on_plateau`` / ``from_torch("ReduceLROnPlateau", ...)``.

  Reads the tree's structure only, so it works under `jax.jit` and on states batched
  by `jax.vmap` (the fields then have the variant axis).

  Raises:
    ValueError: if there is none, or more than one.
  """
  types = tuple(_STATE_TYPES)
  if isinstance(opt_state, types):
    return opt_state
  found = [node for node in jax.tree_util.tree_leaves(
      opt_state, is_leaf=lambda x: isinstance(x, types)) if isinstance(node, types)]
  if len(found) != 1:
    names = ", ".join(t.__name__ for t in types)
    raise ValueError(f"expected exactly one lrjax strategy state ({names}) in the "
                     f"optimizer state, found {len(found)}.")
  return found[0]


def current_lr(opt_state: Any) -> jax.Array:
  """The rate the strategy inside ``opt_state`` applies now (its state's ``lr``)."""
  return strategy_state(opt_state).lr


def current_index(opt_state: Any) -> jax.Array:
  """The sequence position ``n`` of the strategy inside ``opt_state`` (for PyTorch's
  ``ReduceLROnPlateau``: the number of reductions applied, ``lr = max(lr0 factor^n,
  min_lr)``)."""
  return strategy_state(opt_state).index
