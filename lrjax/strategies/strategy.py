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

Extra-args contract (the epoch-level signal)
--------------------------------------------
``update(updates, state, params=None, *, valid_loss=None, epoch_boundary=None, **extra)``

* Between epoch boundaries the engine passes ``epoch_boundary=False`` (or nothing):
  index, rate and every statistic are kept.
* On the first step after an epoch the engine passes ``valid_loss`` = that epoch's
  validation loss and ``epoch_boundary=True`` (``epoch_boundary`` defaults to True when
  ``valid_loss`` is given and ``epoch_boundary`` is None).  The strategy first observes
  the loss, maybe advances (``index += 1``, ``lr = sequence(index)``), then scales *this
  step's* updates by the resulting rate.
* Both are (possibly traced) arrays; the decision is ``jnp.where`` arithmetic, so the
  same traced function serves every step of a ``lax.scan`` and every variant of a
  ``jax.vmap``.  ``epoch_boundary=True`` without ``valid_loss`` is a boundary with no
  loss: only the ``epoch`` rule advances.
* The first (finite) observed loss is the report's ``loss_0``: it sets the baseline and
  the cutoff ``c_0 = cutoff_fraction * |loss_0|``; ``cutoff`` and ``oscillate`` can
  first advance at the second boundary; ``epoch`` advances at every boundary.
* A NaN or inf validation loss never advances the sequence (whatever the rule, ``epoch``
  included), leaves ``prev_loss``, ``best_loss``, ``cutoff`` and the plateau/cooldown
  counters untouched (it is not counted in ``num_observations``), and sets the sticky
  ``state.nonfinite`` flag.  Later finite losses continue from the last finite one.

Rules (``Rule`` codes; ``rule`` may be a string, a code or a traced int32)
--------------------------------------------------------------------------
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

Every rule's decision is computed at every boundary (a handful of scalar ops) and the
rule code selects one, so variants with different rules *and* different sequences
(``lrjax.schedules.switch(bank, seq_id)``) run as one vmapped program.  The bookkeeping
of every rule is kept whatever the selected rule (``cutoff`` only decays under the
``cutoff`` rule); only the selected rule moves ``index``.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _validation

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
    lr: float32, ``sequence(index)``: the rate applied to the updates.
    cutoff: float32, by-cutoff threshold (inf until ``loss_0`` sets ``c_0``).
    prev_loss: float32, last finite observed validation loss (inf before any).
    best_loss: float32, best finite observed loss in the plateau sense (inf before any).
    plateau_count: int32, observations without improvement (plateau rule).
    cooldown_count: int32, observations still ignored after a plateau advance.
    num_observations: int32, finite validation losses observed.
    nonfinite: bool, sticky: a NaN/inf validation loss was observed.
  """

  index: jax.Array
  lr: jax.Array
  cutoff: jax.Array
  prev_loss: jax.Array
  best_loss: jax.Array
  plateau_count: jax.Array
  cooldown_count: jax.Array
  num_observations: jax.Array
  nonfinite: jax.Array


def _rule_code(rule: Any) -> Any:
  """A Python int / IntEnum / str -> checked int; a traced/array code -> int32 array."""
  if isinstance(rule, str):
    name = rule.lower()
    if name not in RULES:
      raise ValueError(f"`rule` must be one of {RULES} or a `Rule` code, got {rule!r}.")
    return int(Rule[name.upper()])
  if isinstance(rule, (bool, np.bool_)):
    raise ValueError(f"`rule` must be one of {RULES} or a `Rule` code, got {rule!r}.")
  if _validation.is_concrete(rule):
    try:
      arr = np.asarray(rule)
    except (TypeError, ValueError) as err:
      raise ValueError(f"`rule` must be one of {RULES} or a `Rule` code, "
                       f"got {rule!r}.") from err
    if (arr.dtype.kind not in "iu" or arr.shape != ()
        or not 0 <= int(arr) <= max(Rule)):
      raise ValueError(f"`rule` must be one of {RULES} or an integer `Rule` code "
                       f"in [0, {max(Rule)}], got {rule!r}.")
    if isinstance(rule, (int, np.integer)):
      return int(rule)
  return jnp.clip(jnp.asarray(rule, jnp.int32), 0, max(Rule))


def _check_sequence(sequence: Any) -> None:
  if not callable(sequence):
    raise ValueError(f"`sequence` must be a callable n -> lr, got {sequence!r}.")
  lr0 = sequence(jnp.asarray(0, jnp.int32))
  if _validation.is_concrete(lr0):
    arr = np.asarray(lr0, np.float64)
    if arr.shape != () or not np.isfinite(arr) or arr <= 0:
      raise ValueError(f"`sequence` must give a finite scalar rate > 0 at index 0, "
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

  Args:
    sequence: any ``n -> lr`` callable (an lrjax schedule, ``schedules.switch(...)`` or a
      lambda); ``n`` is an int32 array.  ``sequence(0)`` must be > 0.
    rule: one of ``"fixed", "epoch", "cutoff", "oscillate", "plateau"`` or a `Rule`
      code (a Python int or a traced int32, e.g. vmapped over variants).
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
  code = _rule_code(rule)
  _validation.check_positive("cutoff_fraction", cutoff_fraction)
  _validation.check_in_range("cutoff_decay", cutoff_decay, 0.0, 1.0, low_open=True)
  _validation.check_non_negative_int("patience", patience)
  _validation.check_non_negative_int("cooldown", cooldown)
  _validation.check_in_range("rtol", rtol, 0.0, 1.0)
  _validation.check_non_negative("atol", atol)
  if (_validation.is_concrete(rtol) and _validation.is_concrete(atol)
      and np.all(np.asarray(rtol) == 0) and np.all(np.asarray(atol) == 0)):
    raise ValueError("At least one of `rtol` or `atol` must be > 0, got both 0.")

  def rate(index):
    return jnp.asarray(sequence(index), jnp.float32).reshape(())

  def init_fn(params) -> StrategyState:
    del params
    index = jnp.asarray(0, jnp.int32)
    inf = jnp.asarray(jnp.inf, jnp.float32)
    zero = jnp.asarray(0, jnp.int32)
    return StrategyState(
        index=index, lr=rate(index), cutoff=inf, prev_loss=inf, best_loss=inf,
        plateau_count=zero, cooldown_count=zero, num_observations=zero,
        nonfinite=jnp.asarray(False))

  def observe(state: StrategyState, valid_loss, boundary) -> StrategyState:
    if valid_loss is None:
      has_loss = False
      loss = jnp.asarray(jnp.inf, jnp.float32)
    else:
      has_loss = True
      loss = jnp.asarray(valid_loss, jnp.float32).reshape(())
    finite = jnp.isfinite(loss)
    obs = boundary & finite & has_loss  # a finite loss is observed now
    bad = boundary & ~finite & has_loss  # a NaN/inf loss arrived at a boundary
    first = state.num_observations == 0
    f32 = jnp.float32

    # by-cutoff (Algorithm 2) and by-oscillate (Algorithm 3).
    delta = loss - state.prev_loss
    adv_cutoff = obs & ~first & (jnp.abs(delta) < state.cutoff)
    adv_oscillate = obs & ~first & (delta > 0)

    # reduce_on_plateau (accumulation_size = 1) with "reduce" = advance.
    improved = loss < (1 - jnp.asarray(rtol, f32)) * state.best_loss - jnp.asarray(atol, f32)
    best = jnp.where(improved, loss, state.best_loss)
    count = jnp.where(improved, 0, state.plateau_count + 1).astype(jnp.int32)
    in_cooldown = state.cooldown_count > 0
    hit = (~in_cooldown) & (count == patience)
    plateau_count = jnp.where(in_cooldown | hit, 0, count).astype(jnp.int32)
    cooldown_count = jnp.where(
        in_cooldown, state.cooldown_count - 1,
        jnp.where(hit, jnp.asarray(cooldown, jnp.int32), 0)).astype(jnp.int32)
    adv_plateau = obs & hit

    adv_epoch = boundary & (finite | (not has_loss))
    decisions = jnp.stack([jnp.asarray(False), adv_epoch, adv_cutoff, adv_oscillate,
                           adv_plateau])
    advance = decisions[code]
    is_cutoff_rule = jnp.asarray(code) == Rule.CUTOFF

    index = jnp.where(advance, state.index + 1, state.index).astype(jnp.int32)
    lr = jnp.where(advance, rate(index), state.lr)
    cutoff = jnp.where(
        obs & first, jnp.asarray(cutoff_fraction, f32) * jnp.abs(loss),
        jnp.where(adv_cutoff & is_cutoff_rule,
                  state.cutoff * jnp.asarray(cutoff_decay, f32), state.cutoff))
    return StrategyState(
        index=index,
        lr=lr.astype(jnp.float32),
        cutoff=cutoff.astype(jnp.float32),
        prev_loss=jnp.where(obs, loss, state.prev_loss),
        best_loss=jnp.where(obs, best, state.best_loss).astype(jnp.float32),
        plateau_count=jnp.where(obs, plateau_count, state.plateau_count),
        cooldown_count=jnp.where(obs, cooldown_count, state.cooldown_count),
        num_observations=jnp.where(obs, state.num_observations + 1,
                                   state.num_observations).astype(jnp.int32),
        nonfinite=state.nonfinite | bad,
    )

  def update_fn(updates, state: StrategyState, params=None, *, valid_loss=None,
                epoch_boundary=None, **extra_args):
    del params, extra_args
    if epoch_boundary is None:
      epoch_boundary = valid_loss is not None
    if epoch_boundary is not False:  # a Python False needs no traced bookkeeping
      boundary = jnp.asarray(epoch_boundary).astype(bool).reshape(())
      state = observe(state, valid_loss, boundary)
    step = -state.lr
    updates = jax.tree.map(lambda g: jnp.asarray(step, g.dtype) * g, updates)
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def by_epoch(sequence: Sequence) -> optax.GradientTransformationExtraArgs:
  """Algorithm 1: ``lr = r_0`` for the first epoch, then ``r_1, r_2, ...``.

  Example:
    >>> from lrjax.schedules import seq3
    >>> tx = by_epoch(seq3(0.01))  # r_n = 0.9^n r_0 at epoch n
  """
  return scale_by_strategy(sequence, Rule.EPOCH)


def by_cutoff(sequence: Sequence, cutoff_fraction: chex.Numeric = 0.01,
              cutoff_decay: chex.Numeric = 0.2) -> optax.GradientTransformationExtraArgs:
  r"""Algorithm 2: advance when :math:`|L_t - L_{t-1}| < c_t`; :math:`c_{t+1} = 0.2 c_t`.

  :math:`c_0 = \mathrm{cutoff\_fraction} \cdot L_0` (report: 0.01).

  Example:
    >>> from lrjax.schedules import seq4
    >>> tx = by_cutoff(seq4(0.01))
  """
  return scale_by_strategy(sequence, Rule.CUTOFF, cutoff_fraction=cutoff_fraction,
                           cutoff_decay=cutoff_decay)


def by_oscillate(sequence: Sequence) -> optax.GradientTransformationExtraArgs:
  r"""Algorithm 3: advance when the validation loss rose, :math:`L_t - L_{t-1} > 0`.

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

  Example:
    >>> tx = fixed(0.001)
  """
  _validation.check_positive("learning_rate", learning_rate)

  def sequence(n):
    return jnp.full(jnp.shape(n), learning_rate, jnp.float32)

  return scale_by_strategy(sequence, Rule.FIXED)


def with_strategy(inner: optax.GradientTransformation,
                  strategy: optax.GradientTransformationExtraArgs
                  ) -> optax.GradientTransformationExtraArgs:
  """``optax.chain(inner, strategy)``: the strategy scales the inner updates.

  Example:
    >>> import optax
    >>> from lrjax.schedules import seq1
    >>> tx = with_strategy(optax.scale_by_adam(), by_epoch(seq1(0.01)))
  """
  for name, tx in (("inner", inner), ("strategy", strategy)):
    if not isinstance(tx, optax.GradientTransformation):
      raise _validation.ArgumentTypeError(
          f"`{name}` must be an optax.GradientTransformation, got {tx!r}.")
  return optax.chain(inner, strategy)


def strategy_state(opt_state: Any) -> StrategyState:
  """The single `StrategyState` inside an optax state tree (chains, wrappers).

  Raises:
    ValueError: if there is none, or more than one.
  """
  if isinstance(opt_state, StrategyState):
    return opt_state
  found = optax.tree_utils.tree_get_all_with_path(
      opt_state, StrategyState.__name__,
      filtering=lambda path, value: isinstance(value, StrategyState))
  if len(found) != 1:
    raise ValueError(f"expected exactly one StrategyState in the optimizer state, "
                     f"found {len(found)}.")
  return found[0][1]


def current_lr(opt_state: Any) -> jax.Array:
  """The rate the strategy inside ``opt_state`` applies now (``state.lr``)."""
  return strategy_state(opt_state).lr


def current_index(opt_state: Any) -> jax.Array:
  """The sequence position ``n`` of the strategy inside ``opt_state``."""
  return strategy_state(opt_state).index
