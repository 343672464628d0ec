"""Tests of lrjax.strategies: the report's Algorithms 1-3 and reduce-on-plateau.

Expected index/rate lists below are written by hand from the algorithms, not produced by
the code under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrjax import schedules
from lrjax import strategies as S

HALVING = lambda n: 0.1 * 0.5 ** jnp.asarray(n, jnp.float32)  # r_n = 0.1 / 2^n
HALVING_RATES = [0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125]

# A validation-loss trace, one value per epoch boundary.
TRACE = [1.0, 0.9, 0.8995, 0.95, 0.94, 0.9399, 0.9398, 0.9397, 0.96, 0.96, 0.97]
# Index after each boundary of TRACE, by hand:
# epoch: +1 at every boundary.
EPOCH_IDX = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
# cutoff (c0 = 0.01 * 1.0 = 0.01, *0.2 after each advance):
#  0.9: |-.1| !< .01 ; 0.8995: .0005 < .01 -> 1, c=.002 ; 0.95: .0505 ; 0.94: .01 !< .002
#  0.9399: .0001 < .002 -> 2, c=.0004 ; 0.9398: .0001 < .0004 -> 3, c=.00008
#  0.9397: .0001 !< .00008 ; 0.96: .0203 ; 0.96: 0 < .00008 -> 4, c=.000016 ; 0.97: .01
CUTOFF_IDX = [0, 0, 1, 1, 1, 2, 3, 3, 3, 4, 4]
CUTOFF_VALUES = [0.01, 0.01, 0.002, 0.002, 0.002, 0.0004, 0.00008, 0.00008, 0.00008,
                 0.000016, 0.000016]
# oscillate: advance when the loss rose: 0.95 > 0.8995, 0.96 > 0.9397, 0.97 > 0.96.
OSCILLATE_IDX = [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 3]


def scan_steps(tx, losses, boundaries, params=None):
  """Runs ``tx`` under jit + lax.scan with unit gradients; returns per-step states/updates."""
  params = jnp.ones(2) if params is None else params
  losses = jnp.asarray(losses, jnp.float32)
  boundaries = jnp.asarray(boundaries, bool)

  @jax.jit
  def go(losses, boundaries):
    def body(state, xs):
      loss, boundary = xs
      updates, state = tx.update(jnp.ones_like(params), state, params,
                                 valid_loss=loss, epoch_boundary=boundary)
      return state, (S.strategy_state(state), updates)

    _, out = jax.lax.scan(body, tx.init(params), (losses, boundaries))
    return out

  return jax.tree.map(np.asarray, go(losses, boundaries))


def engine_steps(per_boundary_losses, steps_per_epoch=3):
  """Per-step (valid_loss, epoch_boundary) as the engine feeds them (first epoch: none)."""
  losses, flags = [], []
  for epoch in range(len(per_boundary_losses) + 1):
    carried = np.inf if epoch == 0 else per_boundary_losses[epoch - 1]
    for step in range(steps_per_epoch):
      losses.append(carried)
      flags.append(epoch > 0 and step == 0)
  return np.asarray(losses, np.float32), np.asarray(flags)


def per_step(expected_after_boundary, steps_per_epoch=3, initial=0):
  return np.repeat([initial] + list(expected_after_boundary), steps_per_epoch)


@pytest.mark.parametrize("factory,expected", [
    (S.by_epoch, EPOCH_IDX),
    (S.by_cutoff, CUTOFF_IDX),
    (S.by_oscillate, OSCILLATE_IDX),
    (lambda seq: S.scale_by_strategy(seq, "fixed"), [0] * len(TRACE)),
])
def test_replayed_trace_changes_index_exactly_at_expected_boundaries(factory, expected):
  losses, flags = engine_steps(TRACE)
  states, updates = scan_steps(factory(HALVING), losses, flags)
  np.testing.assert_array_equal(states.index, per_step(expected))
  # Index changes only at boundary steps.
  changed = np.flatnonzero(np.diff(np.concatenate([[0], states.index])))
  assert set(changed) <= set(np.flatnonzero(flags))
  rates = np.asarray([0.1 * 0.5 ** n for n in per_step(expected)], np.float32)
  np.testing.assert_allclose(states.lr, rates, rtol=1e-6)
  # Observe first, then scale: the boundary step already uses the new rate.
  np.testing.assert_allclose(updates, -rates[:, None] * np.ones((1, 2)), rtol=1e-6)


def test_cutoff_values_and_baseline():
  states, _ = scan_steps(S.by_cutoff(HALVING), TRACE, [True] * len(TRACE))
  np.testing.assert_allclose(states.cutoff, CUTOFF_VALUES, rtol=1e-5)
  np.testing.assert_array_equal(states.prev_loss, np.float32(TRACE))
  np.testing.assert_array_equal(states.num_observations, np.arange(1, len(TRACE) + 1))


def test_cutoff_custom_fraction_and_decay():
  # c0 = 0.1 * 2.0 = 0.2; 1.9: .1 < .2 -> 1, c=.1; 1.85: .05 < .1 -> 2, c=.05;
  # 1.8: .05 !< .05 ; 1.79: .01 < .05 -> 3, c=.025
  tx = S.by_cutoff(HALVING, cutoff_fraction=0.1, cutoff_decay=0.5)
  states, _ = scan_steps(tx, [2.0, 1.9, 1.85, 1.8, 1.79], [True] * 5)
  np.testing.assert_array_equal(states.index, [0, 1, 2, 2, 3])
  np.testing.assert_allclose(states.cutoff, [0.2, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)


def test_report_sequence_rates_by_cutoff_seq1():
  states, _ = scan_steps(S.by_cutoff(schedules.seq1(0.01)), TRACE, [True] * len(TRACE))
  # seq1: r_n = 0.01 / n, r_0 = 0.01.
  by_index = {0: 0.01, 1: 0.01, 2: 0.005, 3: 0.01 / 3, 4: 0.0025}
  np.testing.assert_allclose(states.lr, [by_index[i] for i in CUTOFF_IDX], rtol=1e-6)


# Plateau, patience=2, cooldown=1, rtol=1e-4, by hand (optax reduce_on_plateau logic):
#  1.0 improves (best inf); 0.9 improves; 0.9 count 1; 0.9 count 2 == 2 -> advance, cd 1;
#  0.9 cooldown; 0.9 count 1; 0.8 improves; 0.8 count 1; 0.8 count 2 -> advance, cd 1;
#  0.8 cooldown; 0.8 count 1; 0.8 count 2 -> advance.
PLATEAU_TRACE = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
PLATEAU_IDX = [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 3]


def test_plateau_hand_trace():
  tx = S.on_plateau(0.1, factor=0.5, patience=2, cooldown=1)
  losses, flags = engine_steps(PLATEAU_TRACE, steps_per_epoch=2)
  states, _ = scan_steps(tx, losses, flags)
  np.testing.assert_array_equal(states.index, per_step(PLATEAU_IDX, 2))
  np.testing.assert_allclose(states.lr, [HALVING_RATES[i] for i in per_step(PLATEAU_IDX, 2)],
                             rtol=1e-6)


def _optax_plateau_scales(losses, **kw):
  tx = optax.contrib.reduce_on_plateau(accumulation_size=1, **kw)

  @jax.jit
  @jax.vmap
  def go(trace):
    def body(state, loss):
      _, state = tx.update(jnp.zeros(()), state, value=loss)
      return state, state.scale

    return jax.lax.scan(body, tx.init(jnp.zeros(())), trace)[1]

  return np.asarray(go(jnp.asarray(losses, jnp.float32)))


def _lrjax_plateau(losses, **kw):
  tx = S.on_plateau(0.1, **kw)

  @jax.jit
  @jax.vmap
  def go(trace):
    def body(state, loss):
      _, state = tx.update(jnp.zeros(()), state, valid_loss=loss)
      return state, (state.index, state.lr)

    return jax.lax.scan(body, tx.init(jnp.zeros(())), trace)[1]

  return jax.tree.map(np.asarray, go(jnp.asarray(losses, jnp.float32)))


def _plateau_traces():
  rng = np.random.default_rng(0)
  walk = np.round(3.0 - np.cumsum(rng.normal(0.02, 0.1, (10, 40)), axis=1), 1)
  return np.concatenate([np.asarray([PLATEAU_TRACE + [0.8] * 28], np.float32), walk])


@pytest.mark.parametrize("kw", [
    dict(factor=0.5, patience=2, cooldown=1),
    dict(factor=0.1, patience=3, cooldown=0),
    dict(factor=0.5, patience=1, cooldown=2, rtol=0.0, atol=0.05),
    dict(factor=0.3, patience=0, cooldown=0),
])
def test_on_plateau_matches_optax_reduce_on_plateau(kw):
  traces = _plateau_traces()
  scales = _optax_plateau_scales(traces, **kw)
  index, lr = _lrjax_plateau(traces, **kw)
  reductions = np.cumsum(np.diff(np.concatenate([np.ones((len(traces), 1)), scales], 1),
                                 axis=1) < 0, axis=1)
  assert reductions.max() > 0
  np.testing.assert_array_equal(index, reductions)
  np.testing.assert_allclose(lr, 0.1 * scales, rtol=1e-6)


def test_on_plateau_min_lr_matches_optax_min_scale():
  traces = _plateau_traces()
  kw = dict(factor=0.5, patience=1, cooldown=0)
  scales = _optax_plateau_scales(traces, min_scale=0.2, **kw)
  _, lr = _lrjax_plateau(traces, min_lr=0.02, **kw)
  assert scales.min() == np.float32(0.2)
  np.testing.assert_allclose(lr, 0.1 * scales, rtol=1e-6)


# ----------------------------------------------------------------- one vmapped program

VARIANT_TRACE = [2.3, 1.9, 1.7, 1.75, 1.6, 1.59, 1.62, 1.5, 1.499, 1.49, 1.52, 1.45, 1.449]


def _report_variants():
  """The report's 14 settings: (name, r0, seq_id, rule string)."""
  out = []
  for rule in ("epoch", "cutoff", "oscillate"):
    for seq_id in range(4):
      out.append((f"seq{seq_id + 1}-{rule}", 0.01, seq_id, rule))
  out.append(("sgd-fixed", 0.001, 4, "fixed"))
  out.append(("adam-fixed", 0.001, 4, "fixed"))
  return out


def _bank(r0):
  return [schedules.seq1(r0), schedules.seq2(r0), schedules.seq3(r0), schedules.seq4(r0),
          schedules.constant(r0)]


def test_fourteen_variants_in_one_vmapped_jitted_update_match_separate_runs():
  variants = _report_variants()
  assert len(variants) == 14
  r0 = jnp.asarray([v[1] for v in variants], jnp.float32)
  seq_id = jnp.asarray([v[2] for v in variants], jnp.int32)
  rule_id = jnp.asarray([int(S.Rule[v[3].upper()]) for v in variants], jnp.int32)
  params = jnp.ones(3)
  grads = jnp.asarray([0.5, -1.0, 2.0])

  def make(r0, seq_id, rule_id):
    return S.scale_by_strategy(schedules.switch(_bank(r0), seq_id), rule_id)

  init = jax.jit(jax.vmap(lambda r, s, k: make(r, s, k).init(params)))
  traces = {"n": 0}

  @jax.jit
  @jax.vmap
  def update(r, s, k, state, loss, boundary):
    traces["n"] += 1
    return make(r, s, k).update(grads, state, params, valid_loss=loss,
                                epoch_boundary=boundary)

  losses, flags = engine_steps(VARIANT_TRACE, steps_per_epoch=2)
  state = init(r0, seq_id, rule_id)
  got_index, got_lr, got_upd = [], [], []
  for loss, flag in zip(losses, flags, strict=True):
    upd, state = update(r0, seq_id, rule_id, state, jnp.full(14, loss), jnp.full(14, flag))
    got_index.append(state.index)
    got_lr.append(state.lr)
    got_upd.append(upd)
  assert traces["n"] == 1  # one program for every variant and step
  got_index, got_lr, got_upd = map(np.asarray, (got_index, got_lr, got_upd))

  seq_factories = [schedules.seq1, schedules.seq2, schedules.seq3, schedules.seq4]
  for k, (name, r, sid, rule) in enumerate(variants):
    tx = S.fixed(r) if rule == "fixed" else S.scale_by_strategy(seq_factories[sid](r), rule)
    step = jax.jit(tx.update)
    st = tx.init(params)
    for t, (loss, flag) in enumerate(zip(losses, flags, strict=True)):
      upd, st = step(grads, st, params, valid_loss=loss, epoch_boundary=flag)
      assert int(st.index) == got_index[t, k], (name, t)
      np.testing.assert_allclose(float(st.lr), got_lr[t, k], atol=1e-7, rtol=0,
                                 err_msg=f"{name} step {t}")
      np.testing.assert_allclose(upd, got_upd[t, k], atol=1e-7, rtol=0)
  # The trace moves every non-fixed rule: by-epoch reaches seq4's second cycle.
  assert got_index[-1, :4].tolist() == [len(VARIANT_TRACE)] * 4
  assert (got_index[-1, 4:12] > 0).all() and (got_index[-1, 12:] == 0).all()


# ------------------------------------------------------------- chained with optimizers

A = np.asarray([1.0, 2.0, 0.5])
X0 = np.asarray([1.0, -1.0, 2.0])
EPOCHS, STEPS = 3, 2
LR_PER_STEP = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]  # by_epoch(HALVING), by hand


def _run_quadratic(tx, num_steps=EPOCHS * STEPS):
  """Minimises 0.5 * sum(A x^2) with ``tx``; a boundary opens every epoch after the 1st."""
  x = jnp.asarray(X0, jnp.float32)
  state = tx.init(x)
  for t in range(num_steps):
    boundary = t > 0 and t % STEPS == 0
    updates, state = tx.update(jnp.asarray(A, jnp.float32) * x, state, x,
                               valid_loss=1.0 / (t + 1), epoch_boundary=boundary)
    x = optax.apply_updates(x, updates)
  return np.asarray(x)


def test_chained_sgd_matches_hand_computation():
  x = X0.copy()
  for lr in LR_PER_STEP:
    x = x - lr * A * x
  for tx in (S.by_epoch(HALVING), S.with_strategy(optax.identity(), S.by_epoch(HALVING))):
    np.testing.assert_allclose(_run_quadratic(tx), x, rtol=1e-6)


def test_chained_momentum_matches_pytorch_convention():
  x, buf = X0.copy(), np.zeros(3)
  for lr in LR_PER_STEP:  # torch.optim.SGD(momentum=0.9, dampening=0)
    buf = 0.9 * buf + A * x
    x = x - lr * buf
  tx = optax.chain(optax.trace(decay=0.9), S.by_epoch(HALVING))
  np.testing.assert_allclose(_run_quadratic(tx), x, rtol=1e-6)


def test_chained_adam_matches_hand_computation():
  x, m, v = X0.copy(), np.zeros(3), np.zeros(3)
  b1, b2, eps = 0.9, 0.999, 1e-8
  for t, lr in enumerate(LR_PER_STEP, start=1):
    g = A * x
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    x = x - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
  tx = optax.chain(optax.scale_by_adam(), S.by_epoch(HALVING))
  np.testing.assert_allclose(_run_quadratic(tx), x, rtol=1e-5)


@pytest.mark.parametrize("reference,inner", [
    (optax.sgd(0.01), optax.identity()),
    (optax.sgd(0.01, momentum=0.9), optax.trace(decay=0.9)),
    (optax.adam(0.01), optax.scale_by_adam()),
])
def test_fixed_strategy_equals_optax_optimizer_bitwise(reference, inner):
  got = _run_quadratic(S.with_strategy(inner, S.fixed(0.01)), num_steps=5)
  want = _run_quadratic(optax.with_extra_args_support(reference), num_steps=5)
  np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------- NaN / inf losses

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_loss_advances_only_by_epoch_and_sets_sticky_flag(bad):
  # oscillate: 1.0 base; bad ignored (prev stays 1.0); 0.9 < 1.0; bad; 0.95 > 0.9 -> 1.
  states, _ = scan_steps(S.by_oscillate(HALVING), [1.0, bad, 0.9, bad, 0.95], [True] * 5)
  np.testing.assert_array_equal(states.index, [0, 0, 0, 0, 1])
  np.testing.assert_array_equal(states.nonfinite, [False, True, True, True, True])
  np.testing.assert_array_equal(states.prev_loss, np.float32([1.0, 1.0, 0.9, 0.9, 0.95]))
  # cutoff: a bad first loss sets no baseline; 1.0 is loss_0 (c0 = .01); bad keeps
  # prev = 1.0 and c = .01; 0.995: .005 < .01 -> 1.
  states, _ = scan_steps(S.by_cutoff(HALVING), [bad, 1.0, bad, 0.995], [True] * 4)
  np.testing.assert_array_equal(states.index, [0, 0, 0, 1])
  np.testing.assert_allclose(states.cutoff, [np.inf, 0.01, 0.01, 0.002], rtol=1e-6)
  assert states.nonfinite.tolist() == [True] * 4
  # epoch (Algorithm 1 never looks at the loss): advances at the bad boundary too,
  # and the sticky flag is still set.
  states, _ = scan_steps(S.by_epoch(HALVING), [1.0, bad, 0.9], [True] * 3)
  np.testing.assert_array_equal(states.index, [1, 2, 3])
  np.testing.assert_array_equal(states.nonfinite, [False, True, True])
  np.testing.assert_allclose(states.lr, [0.05, 0.025, 0.0125], rtol=1e-6)
  # plateau (patience 1): bad losses are not "no improvement" (optax would reduce).
  states, _ = scan_steps(S.on_plateau(0.1, patience=1), [1.0, bad, bad, 0.5, 0.5],
                         [True] * 5)
  np.testing.assert_array_equal(states.index, [0, 0, 0, 0, 1])
  np.testing.assert_array_equal(states.best_loss, np.float32([1.0, 1.0, 1.0, 0.5, 0.5]))
  np.testing.assert_array_equal(states.num_observations, [1, 1, 1, 2, 3])


def test_nonfinite_loss_off_boundary_is_ignored():
  states, _ = scan_steps(S.by_epoch(HALVING), [1.0, np.nan, 0.9], [True, False, True])
  np.testing.assert_array_equal(states.index, [1, 1, 2])
  assert not states.nonfinite.any()


# ------------------------------------------------------------- extra-args contract

def test_extra_args_defaults():
  tx = S.by_epoch(HALVING)
  g = jnp.ones(2)
  state = tx.init(g)
  assert int(state.index) == 0 and float(state.lr) == np.float32(0.1)
  upd, state = tx.update(g, state)  # nothing passed: between boundaries
  assert int(state.index) == 0
  np.testing.assert_allclose(upd, [-0.1, -0.1], rtol=1e-7)
  _, state = tx.update(g, state, valid_loss=1.0)  # boundary defaults to True
  assert int(state.index) == 1
  _, state = tx.update(g, state, valid_loss=1.0, epoch_boundary=False)
  assert int(state.index) == 1
  _, state = tx.update(g, state, epoch_boundary=True)  # boundary without a loss
  assert int(state.index) == 2
  assert int(state.num_observations) == 1
  tx = S.by_oscillate(HALVING)
  state = tx.init(g)
  _, state = tx.update(g, state, epoch_boundary=True)
  assert int(state.index) == 0 and int(state.num_observations) == 0
  _, state = tx.update(g, state, other_engine_arg=3)  # unknown extra args are ignored
  assert int(state.index) == 0


def test_state_is_arrays_only_with_documented_dtypes():
  state = S.by_cutoff(HALVING).init({"w": jnp.ones((2, 3)), "b": jnp.zeros(3, jnp.bfloat16)})
  assert isinstance(state, S.StrategyState)
  assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(state))
  assert len(jax.tree.leaves(state)) == len(S.StrategyState._fields)
  dtypes = {k: getattr(state, k).dtype for k in S.StrategyState._fields}
  assert dtypes == dict(index=jnp.int32, lr=jnp.float32, cutoff=jnp.float32,
                        prev_loss=jnp.float32, best_loss=jnp.float32,
                        plateau_count=jnp.int32, cooldown_count=jnp.int32,
                        num_observations=jnp.int32, num_boundaries=jnp.int32,
                        nonfinite=jnp.bool_)
  assert float(state.prev_loss) == np.inf and not bool(state.nonfinite)


def test_updates_keep_their_dtype_and_tree():
  tx = S.by_epoch(HALVING)
  params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3, jnp.bfloat16)}
  upd, _ = jax.jit(tx.update)(params, tx.init(params), valid_loss=1.0)
  assert upd["b"].dtype == jnp.bfloat16 and upd["w"].dtype == jnp.float32
  np.testing.assert_allclose(upd["w"], -0.05 * np.ones((2, 3)), rtol=1e-6)


def test_traced_rule_and_boundary_under_jit():
  @jax.jit
  def run(rule, loss, boundary):
    tx = S.scale_by_strategy(HALVING, rule)
    state = tx.init(jnp.ones(1))
    for first in (1.0, 0.5):  # baseline, then a drop
      _, state = tx.update(jnp.ones(1), state, valid_loss=first, epoch_boundary=True)
    return tx.update(jnp.ones(1), state, valid_loss=loss, epoch_boundary=boundary)[1].index

  # After 1.0, 0.5 (epoch: 2 advances; cutoff: |.5| !< .01), a rise to 0.6 then:
  assert [int(run(k, 0.6, True)) for k in range(5)] == [0, 3, 0, 1, 0]
  assert [int(run(k, 0.6, False)) for k in range(5)] == [0, 2, 0, 0, 0]
  assert int(run(jnp.int32(S.Rule.CUTOFF), 0.5001, True)) == 1


def test_current_lr_and_index_find_state_in_wrapped_chains():
  tx = optax.apply_if_finite(optax.with_extra_args_support(
      optax.chain(optax.scale_by_adam(), S.by_epoch(HALVING))), 5)
  params = jnp.ones(2)
  state = tx.init(params)
  assert int(S.current_index(state)) == 0
  _, state = tx.update(params, state, params, valid_loss=1.0, epoch_boundary=True)
  assert int(S.current_index(state)) == 1
  assert float(S.current_lr(state)) == np.float32(0.05)
  assert S.current_lr(S.strategy_state(state)) is S.strategy_state(state).lr
  batched = jax.vmap(tx.init)(jnp.ones((4, 2)))
  assert S.current_lr(batched).shape == (4,)
  with pytest.raises(ValueError, match="StrategyState"):
    S.current_lr(optax.adam(0.1).init(params))
  with pytest.raises(ValueError, match="StrategyState"):
    S.current_lr(optax.chain(S.fixed(0.1), S.fixed(0.1)).init(params))


# ------------------------------------------------------------------------- validation

@pytest.mark.parametrize("make,name", [
    (lambda: S.by_cutoff(HALVING, cutoff_fraction=0.0), "cutoff_fraction"),
    (lambda: S.by_cutoff(HALVING, cutoff_fraction=-0.01), "cutoff_fraction"),
    (lambda: S.by_cutoff(HALVING, cutoff_decay=0.0), "cutoff_decay"),
    (lambda: S.by_cutoff(HALVING, cutoff_decay=1.2), "cutoff_decay"),
    (lambda: S.on_plateau(0.1, patience=-1), "patience"),
    (lambda: S.scale_by_strategy(HALVING, "plateau", patience=1.5), "patience"),
    (lambda: S.on_plateau(0.1, cooldown=-1), "cooldown"),
    (lambda: S.on_plateau(0.1, factor=1.0), "factor"),
    (lambda: S.on_plateau(0.1, factor=0.0), "factor"),
    (lambda: S.on_plateau(0.1, factor=2.0), "factor"),
    (lambda: S.on_plateau(0.1, rtol=0.0, atol=0.0), "rtol"),
    (lambda: S.on_plateau(0.1, atol=-1.0), "atol"),
    (lambda: S.on_plateau(0.1, min_lr=-1.0), "min_lr"),
    (lambda: S.on_plateau(0.0), "learning_rate"),
    (lambda: S.fixed(-0.001), "learning_rate"),
    (lambda: S.scale_by_strategy(HALVING, "by_magic"), "rule"),
    (lambda: S.scale_by_strategy(HALVING, 5), "rule"),
    (lambda: S.scale_by_strategy(HALVING, -1), "rule"),
    (lambda: S.scale_by_strategy(HALVING, 1.0), "rule"),
    (lambda: S.scale_by_strategy(0.01, "epoch"), "sequence"),
    (lambda: S.by_epoch(lambda n: 0.0 * n), "sequence"),
    (lambda: S.by_epoch(lambda n: -0.01), "sequence"),
    (lambda: S.by_epoch(lambda n: jnp.nan), "sequence"),
])
def test_bad_arguments_raise_at_construction(make, name):
  with pytest.raises(ValueError, match=f"`{name}`"):
    make()


def test_good_edge_arguments_are_accepted():
  S.by_cutoff(HALVING, cutoff_decay=1.0)
  S.on_plateau(0.1, patience=0, cooldown=0, rtol=0.0, atol=0.1)
  S.scale_by_strategy(HALVING, S.Rule.PLATEAU)
  S.scale_by_strategy(HALVING, "EPOCH")
  assert S.Rule["OSCILLATE"] == 3 and S.RULES[S.Rule.CUTOFF] == "cutoff"


# ------------------------------------------------- loss_0: the initial observation
# (Algorithm 2's loss_0 is the validation loss *before* training, not after epoch 1.)

def scan_with_initial(tx, losses, boundaries, initials, params=None):
  """`scan_steps` with an ``initial_observation`` flag per step."""
  params = jnp.ones(2) if params is None else params

  @jax.jit
  def go(losses, boundaries, initials):
    def body(state, xs):
      loss, boundary, initial = xs
      updates, state = tx.update(jnp.ones_like(params), state, params, valid_loss=loss,
                                 epoch_boundary=boundary, initial_observation=initial)
      return state, (S.strategy_state(state), updates)

    return jax.lax.scan(body, tx.init(params), (losses, boundaries, initials))[1]

  return jax.tree.map(np.asarray, go(jnp.asarray(losses, jnp.float32),
                                     jnp.asarray(boundaries, bool),
                                     jnp.asarray(initials, bool)))


def engine_steps_with_loss0(loss0, per_boundary_losses, steps_per_epoch=3):
  """Per-step (valid_loss, epoch_boundary, initial_observation) as the engine feeds them
  under the before-training reading: the untrained loss on the first step."""
  losses, flags = engine_steps(per_boundary_losses, steps_per_epoch)
  losses[:steps_per_epoch] = loss0
  initials = np.zeros_like(flags)
  initials[0] = True
  return losses, flags, initials


# Algorithm 2 by hand, loss_0 = 2.0 (untrained), boundary losses:
LOSS0, CUT_TRACE = 2.0, [1.99, 1.95, 1.948, 1.9479, 1.9]
#  before training: c0 = .02; 1.99: .01 < .02 -> 1, c=.004; 1.95: .04 ; 1.948: .002 < .004
#  -> 2, c=.0008; 1.9479: .0001 < .0008 -> 3, c=.00016; 1.9: .0479.
CUT_BEFORE_IDX = [1, 1, 2, 3, 3]
CUT_BEFORE_C = [0.004, 0.004, 0.0008, 0.00016, 0.00016]
#  after the first epoch: loss_0 = 1.99, c0 = .0199; 1.95: .04 ; 1.948: .002 < .0199 -> 1,
#  c=.00398; 1.9479: .0001 < .00398 -> 2, c=.000796; 1.9: .0479.
CUT_AFTER_IDX = [0, 0, 1, 2, 2]
CUT_AFTER_C = [0.0199, 0.0199, 0.00398, 0.000796, 0.000796]


def test_cutoff_trace_with_loss0_before_training_matches_algorithm_2_by_hand():
  losses, flags, initials = engine_steps_with_loss0(LOSS0, CUT_TRACE)
  states, updates = scan_with_initial(S.by_cutoff(HALVING), losses, flags, initials)
  np.testing.assert_array_equal(states.index, per_step(CUT_BEFORE_IDX))
  np.testing.assert_allclose(states.cutoff, per_step(CUT_BEFORE_C, initial=0.02), rtol=1e-5)
  # The initial observation is the baseline, not a boundary and not a decision; the
  # first step's update uses r_0.
  assert states.index[0] == 0 and states.num_boundaries[0] == 0
  assert states.num_observations[0] == 1 and states.prev_loss[0] == np.float32(LOSS0)
  np.testing.assert_allclose(updates[0], [-0.1, -0.1], rtol=1e-7)
  np.testing.assert_array_equal(states.num_boundaries[-1], len(CUT_TRACE))
  rates = np.float32([0.1 * 0.5 ** n for n in per_step(CUT_BEFORE_IDX)])
  np.testing.assert_allclose(updates, -rates[:, None] * np.ones((1, 2)), rtol=1e-6)
  assert not states.nonfinite.any()


def test_cutoff_trace_with_loss0_after_first_epoch_is_the_old_reading():
  losses, flags = engine_steps(CUT_TRACE)
  states, _ = scan_steps(S.by_cutoff(HALVING), losses, flags)
  np.testing.assert_array_equal(states.index, per_step(CUT_AFTER_IDX))
  np.testing.assert_allclose(states.cutoff[3:], per_step(CUT_AFTER_C)[3:], rtol=1e-5)


def test_initial_observation_lets_oscillate_and_plateau_decide_at_the_first_boundary():
  # oscillate: 2.0 untrained, 2.1 > 2.0 at the first boundary -> 1 (old reading: 0).
  losses, flags, initials = engine_steps_with_loss0(2.0, [2.1, 2.05], 1)
  states, _ = scan_with_initial(S.by_oscillate(HALVING), losses, flags, initials)
  np.testing.assert_array_equal(states.index, [0, 1, 1])
  states, _ = scan_steps(S.by_oscillate(HALVING), *engine_steps([2.1, 2.05], 1))
  np.testing.assert_array_equal(states.index, [0, 0, 0])
  # plateau, patience 1: 1.0 untrained is best; 1.0 does not improve -> advance.
  losses, flags, initials = engine_steps_with_loss0(1.0, [1.0, 0.5], 1)
  states, _ = scan_with_initial(S.on_plateau(0.1, patience=1), losses, flags, initials)
  np.testing.assert_array_equal(states.index, [0, 1, 1])
  np.testing.assert_array_equal(states.best_loss, np.float32([1.0, 1.0, 0.5]))


def test_initial_observation_is_not_a_boundary_for_any_rule():
  for rule in range(5):
    tx = S.scale_by_strategy(HALVING, rule)
    g = jnp.ones(2)
    # Even with epoch_boundary=True on the same step: the initial observation wins.
    for boundary in (None, False, True):
      _, st = jax.jit(lambda s, b=boundary, tx=tx, g=g: tx.update(
          g, s, valid_loss=3.0, epoch_boundary=b, initial_observation=True))(tx.init(g))
      assert int(st.index) == 0 and int(st.num_boundaries) == 0, (rule, boundary)
      assert float(st.cutoff) == np.float32(0.03) and int(st.num_observations) == 1


def test_nonfinite_initial_observation_sets_flag_and_falls_back_to_first_boundary():
  losses, flags, initials = engine_steps_with_loss0(np.nan, CUT_TRACE)
  states, _ = scan_with_initial(S.by_cutoff(HALVING), losses, flags, initials)
  np.testing.assert_array_equal(states.index, per_step(CUT_AFTER_IDX))
  assert states.nonfinite.all()


# ------------------------------------------------------------ donatable states

def _all_strategy_transformations():
  """name -> factory (built lazily: one failing constructor fails only its own test)."""
  seq = schedules.seq1(0.1)
  return {
      "by_epoch": lambda: S.by_epoch(seq), "by_cutoff": lambda: S.by_cutoff(seq),
      "by_oscillate": lambda: S.by_oscillate(seq), "on_plateau": lambda: S.on_plateau(0.1),
      "fixed": lambda: S.fixed(0.1),
      "user_rule": lambda: S.scale_by_strategy(seq, lambda s: s.has_loss),
      "switch_rule": lambda: S.scale_by_strategy(seq, S.switch_rule(S.BUILTIN_RULES, 2)),
      "traced_rule": lambda: S.scale_by_strategy(seq, jnp.int32(3)),
      "sgd": lambda: S.sgd(seq, "epoch", momentum=0.9), "adam": lambda: S.adam(seq, "cutoff"),
      "adamw": lambda: S.adamw(seq, "oscillate"),
      "rmsprop": lambda: S.rmsprop(seq, "epoch", momentum=0.5),
      "adagrad": lambda: S.adagrad(seq, "plateau"),
      "with_strategy": lambda: S.with_strategy(optax.scale_by_adam(), S.by_epoch(seq)),
      "multi_steps": lambda: S.multi_steps(S.sgd(seq, "epoch"), 2),
  }


TRANSFORMATION_NAMES = ["by_epoch", "by_cutoff", "by_oscillate", "on_plateau", "fixed",
                        "user_rule", "switch_rule", "traced_rule", "sgd", "adam", "adamw",
                        "rmsprop", "adagrad", "with_strategy", "multi_steps"]


def test_donation_test_covers_every_transformation():
  assert sorted(TRANSFORMATION_NAMES) == sorted(_all_strategy_transformations())


@pytest.mark.parametrize("name", TRANSFORMATION_NAMES)
def test_fresh_state_is_donatable(name):
  tx = _all_strategy_transformations()[name]()
  params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
  update = jax.jit(tx.update, donate_argnums=(1,))
  state = tx.init(params)
  for t in range(3):  # fresh, then states returned by the donated update itself
    updates, state = update(params, state, params, valid_loss=jnp.float32(1.0 / (t + 1)),
                            epoch_boundary=jnp.asarray(t > 0))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(updates))


# --------------------------------------------------- complete optimizers vs optax

CONSTANT = lambda n: jnp.full(jnp.shape(n), 0.01, jnp.float32)


@pytest.mark.parametrize("ours,reference", [
    (lambda: S.sgd(CONSTANT, "epoch"), lambda: optax.sgd(0.01)),
    (lambda: S.sgd(CONSTANT, "cutoff", momentum=0.9), lambda: optax.sgd(0.01, momentum=0.9)),
    (lambda: S.sgd(CONSTANT, "oscillate", momentum=0.9, nesterov=True),
     lambda: optax.sgd(0.01, momentum=0.9, nesterov=True)),
    (lambda: S.adam(CONSTANT, "epoch", b1=0.8, b2=0.99, eps=1e-6),
     lambda: optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-6)),
    (lambda: S.adamw(CONSTANT, "plateau", weight_decay=0.1),
     lambda: optax.adamw(0.01, weight_decay=0.1)),
    (lambda: S.rmsprop(CONSTANT, "epoch", decay=0.8), lambda: optax.rmsprop(0.01, decay=0.8)),
    (lambda: S.rmsprop(CONSTANT, "epoch", centered=True),
     lambda: optax.rmsprop(0.01, centered=True)),
    (lambda: S.adagrad(CONSTANT, "epoch"), lambda: optax.adagrad(0.01)),
])
def test_complete_optimizer_equals_optax_optimizer_at_a_fixed_rate(ours, reference):
  got = _run_quadratic(ours(), num_steps=6)
  want = _run_quadratic(optax.with_extra_args_support(reference()), num_steps=6)
  np.testing.assert_array_equal(got, want)
  assert np.sum(A * got**2) < np.sum(A * X0**2)  # it descends


def test_rmsprop_momentum_equals_optax_at_a_fixed_rate_up_to_rounding():
  got = _run_quadratic(S.rmsprop(CONSTANT, "epoch", momentum=0.9), num_steps=6)
  want = _run_quadratic(optax.with_extra_args_support(optax.rmsprop(0.01, momentum=0.9)),
                        num_steps=6)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_complete_sgd_momentum_with_a_moving_rate_is_pytorch_sgd():
  x, buf = X0.copy(), np.zeros(3)
  for lr in LR_PER_STEP:  # torch.optim.SGD(momentum=0.9, nesterov=False), by hand
    buf = 0.9 * buf + A * x
    x = x - lr * buf
  np.testing.assert_allclose(_run_quadratic(S.sgd(HALVING, "epoch", momentum=0.9)), x,
                             rtol=1e-6)


def test_chaining_a_whole_optax_optimizer_ascends_and_with_strategy_refuses_it():
  wrong = optax.chain(optax.sgd(1.0), S.by_epoch(HALVING))  # the documented pitfall
  assert np.sum(A * _run_quadratic(wrong) ** 2) > np.sum(A * X0**2)
  for inner in (optax.sgd(1.0), optax.sgd(0.1, momentum=0.9), optax.adam(1e-3),
                optax.rmsprop(1e-3), optax.scale(-1.0), optax.scale_by_learning_rate(0.1)):
    with pytest.raises(ValueError, match="`inner` already scales"):
      S.with_strategy(inner, S.by_epoch(HALVING))
  for inner in (optax.identity(), optax.trace(0.9), optax.scale_by_adam(),
                optax.scale_by_rms(), optax.scale(0.5)):
    S.with_strategy(inner, S.by_epoch(HALVING))
  # An inner the scalar probe cannot run is checked on the real params at init.
  tree_inner = optax.multi_transform({"a": optax.sgd(1.0)}, {"w": "a"})
  tx = S.with_strategy(tree_inner, S.by_epoch(HALVING))
  with pytest.raises(ValueError, match="`inner` already scales"):
    tx.init({"w": jnp.ones(2)})
  # Documented limit: a first update of zero (warm-up from 0) cannot be told apart.
  S.with_strategy(optax.sgd(optax.linear_schedule(0.0, 1.0, 10)), S.by_epoch(HALVING))
  S.with_strategy(optax.sgd(1.0), S.by_epoch(HALVING), check_sign=False)


@pytest.mark.parametrize("make,name", [
    (lambda: S.sgd(HALVING, "epoch", momentum=-0.1), "momentum"),
    (lambda: S.sgd(HALVING, "epoch", momentum=1.0), "momentum"),
    (lambda: S.adam(HALVING, "epoch", b1=1.0), "b1"),
    (lambda: S.adam(HALVING, "epoch", b2=-0.5), "b2"),
    (lambda: S.adam(HALVING, "epoch", eps=-1e-8), "eps"),
    (lambda: S.adamw(HALVING, "epoch", weight_decay=-1.0), "weight_decay"),
    (lambda: S.rmsprop(HALVING, "epoch", decay=1.5), "decay"),
    (lambda: S.adagrad(HALVING, "epoch", initial_accumulator_value=-1.0),
     "initial_accumulator_value"),
    (lambda: S.sgd(HALVING, "by_magic"), "rule"),
])
def test_complete_optimizers_reject_bad_arguments(make, name):
  with pytest.raises(ValueError, match=f"`{name}`"):
    make()


# ------------------------------------------------------ MultiSteps / apply_if_finite

def _index_after(tx, calls):
  params = jnp.ones(2)
  state = tx.init(params)
  out = []
  for grad, kwargs in calls:
    updates, state = tx.update(jnp.full(2, grad), state, params, **kwargs)
    out.append((int(S.current_index(state)), np.asarray(updates)))
  return out


def test_multisteps_loses_a_boundary_on_a_micro_step_and_multi_steps_carries_it():
  # every 2 micro-steps; the boundary arrives on micro-step 0 (not emitting).
  calls = [(1.0, dict(valid_loss=1.0, epoch_boundary=True)),
           (1.0, dict(valid_loss=1.0, epoch_boundary=False)),
           (1.0, dict(valid_loss=1.0, epoch_boundary=False)),
           (1.0, dict(valid_loss=1.0, epoch_boundary=False))]
  plain = _index_after(optax.MultiSteps(S.sgd(HALVING, "epoch"), 2), calls)
  assert [i for i, _ in plain] == [0, 0, 0, 0]  # lost
  carried = _index_after(S.multi_steps(S.sgd(HALVING, "epoch"), 2), calls)
  assert [i for i, _ in carried] == [0, 1, 1, 1]
  np.testing.assert_allclose(carried[1][1], [-0.05, -0.05], rtol=1e-6)  # r_1 on the emit
  np.testing.assert_allclose(carried[3][1], [-0.05, -0.05], rtol=1e-6)  # not again
  # On the emitting micro-step both see it; two boundaries collapse into one.
  calls[1] = (1.0, dict(valid_loss=1.0, epoch_boundary=True))
  assert [i for i, _ in _index_after(optax.MultiSteps(S.sgd(HALVING, "epoch"), 2),
                                     calls)] == [0, 1, 1, 1]
  assert [i for i, _ in _index_after(S.multi_steps(S.sgd(HALVING, "epoch"), 2),
                                     calls)] == [0, 1, 1, 1]


def test_multi_steps_carries_the_initial_observation_and_its_loss():
  calls = [(1.0, dict(valid_loss=2.0, epoch_boundary=False, initial_observation=True)),
           (1.0, dict(valid_loss=2.0, epoch_boundary=False)),
           (1.0, dict(valid_loss=2.1, epoch_boundary=True)),  # rose: oscillate advances
           (1.0, dict(valid_loss=2.1, epoch_boundary=False))]
  tx = S.multi_steps(S.sgd(HALVING, "oscillate"), 2)
  assert [i for i, _ in _index_after(tx, calls)] == [0, 0, 0, 1]
  state = tx.init(jnp.ones(2))
  for _, kw in calls[:2]:
    _, state = tx.update(jnp.ones(2), state, jnp.ones(2), **kw)
  assert float(S.strategy_state(state).prev_loss) == np.float32(2.0)


def test_apply_if_finite_outside_the_strategy_drops_a_nan_steps_boundary():
  calls = [(np.nan, dict(valid_loss=1.0, epoch_boundary=True)),
           (1.0, dict(valid_loss=1.0, epoch_boundary=False))]
  outside = optax.apply_if_finite(optax.with_extra_args_support(
      S.sgd(HALVING, "epoch")), 10)
  assert [i for i, _ in _index_after(outside, calls)] == [0, 0]  # boundary lost
  recommended = optax.chain(optax.apply_if_finite(optax.identity(), 10),
                            S.by_epoch(HALVING))  # the engine's layout
  got = _index_after(recommended, calls)
  assert [i for i, _ in got] == [1, 1]
  np.testing.assert_array_equal(got[0][1], [0.0, 0.0])  # the NaN step is skipped
  np.testing.assert_allclose(got[1][1], [-0.05, -0.05], rtol=1e-6)


# ------------------------------------------------------------- bad sequence rates

@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.01])
def test_bad_rate_from_the_sequence_keeps_the_last_good_rate_and_sets_the_flag(bad):
  seq = lambda n: jnp.where(n == 2, jnp.float32(bad), 0.1 * 0.5 ** jnp.asarray(n, jnp.float32))
  states, updates = scan_steps(S.by_epoch(seq), [1.0] * 4, [True] * 4)
  np.testing.assert_array_equal(states.index, [1, 2, 3, 4])
  np.testing.assert_allclose(states.lr, [0.05, 0.05, 0.0125, 0.00625], rtol=1e-6)
  np.testing.assert_array_equal(states.nonfinite, [False, True, True, True])
  assert np.isfinite(updates).all()


def test_bad_initial_rate_of_a_traced_hyperparameter_gives_zero_rate_and_flag():
  @jax.jit
  @jax.vmap
  def first_update(r0):
    tx = S.by_epoch(lambda n: r0 * 0.5 ** jnp.asarray(n, jnp.float32))
    upd, state = tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
    return upd, state.lr, state.nonfinite

  upd, lr, flag = first_update(jnp.asarray([0.1, -0.1, jnp.nan], jnp.float32))
  np.testing.assert_allclose(upd[0], [-0.1, -0.1], rtol=1e-7)
  np.testing.assert_array_equal(upd[1:], 0.0)
  np.testing.assert_allclose(lr, [0.1, 0.0, 0.0], rtol=1e-7)
  assert flag.tolist() == [False, True, True]


# -------------------------------------------------------------------- user rules

def every_other_boundary(stats):
  return stats.num_boundaries % 2 == 1


def big_improvement(stats):
  return stats.has_loss & (stats.num_observations > 0) & (stats.loss < 0.9 * stats.prev_loss)


def test_user_rules_without_editing_lrjax():
  states, _ = scan_steps(S.scale_by_strategy(HALVING, every_other_boundary),
                         [1.0] * 6, [True] * 6)
  np.testing.assert_array_equal(states.index, [0, 1, 1, 2, 2, 3])
  # 1.0 base; .95 (no); .8 < .855 -> 1; .79 (no); nan (no, flag); .5 < .711 -> 2.
  states, _ = scan_steps(S.scale_by_strategy(HALVING, big_improvement),
                         [1.0, 0.95, 0.8, 0.79, np.nan, 0.5], [True] * 6)
  np.testing.assert_array_equal(states.index, [0, 0, 1, 1, 1, 2])
  assert states.nonfinite.tolist() == [False] * 4 + [True] * 2
  with pytest.raises(ValueError, match="boolean scalar"):
    tx = S.scale_by_strategy(HALVING, lambda s: jnp.ones(3, bool))
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)), valid_loss=1.0)


def test_user_and_builtin_rules_vmap_in_one_program_with_switch_rule():
  bank = (S.rules.epoch, S.rules.cutoff, every_other_boundary, S.rules.oscillate,
          big_improvement, S.rules.fixed)
  losses, flags = engine_steps(VARIANT_TRACE, steps_per_epoch=2)
  params = jnp.ones(2)
  traces = {"n": 0}

  @jax.jit
  @jax.vmap
  def run(rule_id):
    traces["n"] += 1
    tx = S.scale_by_strategy(HALVING, S.switch_rule(bank, rule_id))

    def body(state, xs):
      loss, flag = xs
      _, state = tx.update(jnp.ones(2), state, params, valid_loss=loss, epoch_boundary=flag)
      return state, state.index

    return jax.lax.scan(body, tx.init(params), (jnp.asarray(losses), jnp.asarray(flags)))[1]

  got = np.asarray(run(jnp.arange(len(bank), dtype=jnp.int32)))
  assert traces["n"] == 1
  for k, rule in enumerate(bank):
    alone, _ = scan_steps(S.scale_by_strategy(HALVING, rule), losses, flags)
    np.testing.assert_array_equal(got[k], alone.index, err_msg=str(rule))
  assert len({tuple(row) for row in got}) == len(bank)  # the rules really differ
  with pytest.raises(ValueError, match="`index`"):
    S.switch_rule(bank, len(bank))
  with pytest.raises(ValueError, match="`rules`"):
    S.switch_rule((), 0)


def test_state_dtypes_follow_the_params():
  bf16 = S.by_cutoff(HALVING).init({"w": jnp.ones(3, jnp.bfloat16)})
  assert bf16.lr.dtype == jnp.bfloat16 and bf16.prev_loss.dtype == jnp.float32
  with jax.enable_x64(True):
    seq = lambda n: 0.1 / (1.0 + jnp.asarray(n, jnp.float64))
    tx = S.by_epoch(seq)
    params = jnp.ones(2, jnp.float64)
    state = tx.init(params)
    assert state.lr.dtype == jnp.float64 and state.cutoff.dtype == jnp.float64
    upd, state = jax.jit(tx.update)(params, state, valid_loss=1.0)
    assert upd.dtype == jnp.float64
    assert float(state.lr) == 0.05 and float(upd[0]) == -0.05  # exact in float64
    assert S.by_epoch(seq).init(jnp.ones(2, jnp.float32)).lr.dtype == jnp.float32
