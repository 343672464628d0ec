"""Tests of `lrjax.adaptive` against closed forms and hand-computed steps.

References: on a quadratic L(w) = 0.5 w^T A w the line f(eta) = L(w - eta g) is a
parabola whose minimum is eta* = g.g / g^T A g (g = A w); the finite differences of
eq. 16 are exact on it up to rounding.  Hypergradient steps are checked against
eq. 6-8 (and Baydin et al.'s Adam-HD) written out in numpy.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrjax import adaptive
from lrjax.adaptive import _common


def spd(n, cond, seed=0, dtype=np.float64):
  """A random SPD matrix with eigenvalues spread over [1, cond]."""
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.normal(size=(n, n)))
  return ((q * np.geomspace(1.0, cond, n)) @ q.T).astype(dtype)


def quadratic(a):
  a = jnp.asarray(a)
  return lambda w: 0.5 * w @ (a @ w)


def eta_star(a, g):
  g = np.asarray(g, np.float64)
  return float(g @ g / (g @ np.asarray(a, np.float64) @ g))


def run_newton(tx, value_fn, w, num_steps):
  """Python loop: per step (g, lr after the step, loss after the step, w after)."""
  state = tx.init(w)
  out = []
  for _ in range(num_steps):
    g = jax.grad(value_fn)(w)
    updates, state = tx.update(g, state, w, value_fn=value_fn)
    w = optax.apply_updates(w, updates)
    out.append((np.asarray(g), float(state.lr), float(state.loss), w))
  return out, state


# ----------------------------------------------------------------- Newton (eq. 16)

def test_newton_first_step_is_line_minimum_float64():
  with jax.enable_x64(True):
    a = spd(5, 10.0)
    w = jnp.asarray(np.random.default_rng(1).normal(size=5))
    value_fn = quadratic(a)
    tx = adaptive.newton_lr(0.01, eps=1e-5)
    state = tx.init(w)
    g = jax.grad(value_fn)(w)
    updates, state = tx.update(g, state, w, value_fn=value_fn)
    assert state.lr.dtype == jnp.float64
    np.testing.assert_allclose(float(state.lr), eta_star(a, g), rtol=1e-6)
    # the update of this step uses eta^(k) = 0.01 (section 4.1) ...
    np.testing.assert_allclose(np.asarray(updates), -0.01 * np.asarray(g), rtol=1e-12)
    # ... and L^(k+1) = f(eta^(k)) is the loss after it.
    np.testing.assert_allclose(float(state.loss), float(value_fn(w - 0.01 * g)),
                               rtol=1e-12)
    assert int(state.num_smoothed) == 0 and not bool(state.nonfinite)


def test_newton_first_step_float32_with_larger_eps():
  a = spd(5, 10.0, dtype=np.float32)
  w = jnp.asarray(np.random.default_rng(1).normal(size=5), jnp.float32)
  value_fn = quadratic(a)
  tx = adaptive.newton_lr(0.01, eps=1e-2)
  state = tx.init(w)
  g = jax.grad(value_fn)(w)
  _, state = tx.update(g, state, w, value_fn=value_fn)
  assert state.lr.dtype == jnp.float32
  np.testing.assert_allclose(float(state.lr), eta_star(a, g), rtol=2e-3)


def test_newton_float32_paper_eps_denominator_is_rounding_noise():
  """Documented: with eps=1e-5 in float32 the second difference is below rounding,
  so it is treated as ~0 and smoothed by delta (a small first-order-like step)."""
  a = spd(5, 10.0, dtype=np.float32)
  w = jnp.asarray(np.random.default_rng(1).normal(size=5), jnp.float32)
  value_fn = quadratic(a)
  tx = adaptive.newton_lr(0.01, eps=1e-5)
  state = tx.init(w)
  g = jax.grad(value_fn)(w)
  _, state = tx.update(g, state, w, value_fn=value_fn)
  assert int(state.num_smoothed) == 1
  # a bounded step towards eta*, at most 4 eps^2 (g.g) / delta: no jump by noise
  max_step = 4 * 1e-10 * float(np.sum(np.asarray(g, np.float64) ** 2)) / 1e-6
  assert 0.01 < float(state.lr) <= 0.01 + 1.01 * max_step < eta_star(a, g)


def test_newton_tracks_line_minimum_and_beats_fixed_sgd():
  with jax.enable_x64(True):
    a = spd(8, 20.0, seed=2)
    w0 = jnp.asarray(np.random.default_rng(3).normal(size=8))
    value_fn = quadratic(a)
    steps, _ = run_newton(adaptive.newton_lr(0.01, eps=1e-5), value_fn, w0, 25)
    for g, lr, _, _ in steps:
      np.testing.assert_allclose(lr, eta_star(a, g), rtol=1e-5)
    newton_loss = float(value_fn(steps[-1][3]))

    def sgd_loss(eta):
      w = w0
      for _ in range(25):
        w = w - eta * jax.grad(value_fn)(w)
      return float(value_fn(w))

    # the same initial rate, and the best safe constant rate 1/lambda_max
    assert newton_loss < 1e-3 * sgd_loss(0.01)
    assert newton_loss < 0.1 * sgd_loss(1.0 / np.linalg.eigvalsh(a).max())


def test_newton_five_losses_in_one_vmapped_call():
  calls = []

  def value_fn(w, batch):
    calls.append(jnp.shape(w))
    return jnp.sum(batch * w ** 2)

  tx = adaptive.newton_lr(0.1, eps=1e-2)
  w = jnp.ones(3)
  state = tx.init(w)
  batch = jnp.arange(3.0)
  jaxpr = jax.make_jaxpr(
      lambda g, s, p, b: tx.update(g, s, p, value_fn=value_fn, batch=b,
                                   valid_loss=jnp.float32(1.0)))(w, state, w, batch)
  assert len(calls) == 1  # traced once, under vmap, not five times
  assert calls[0] == (3,)
  # value_fn's multiply by `batch` appears once in the program, batched over 5 rates
  muls = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "mul"
          and any(getattr(v.aval, "shape", None) == (5, 3) for v in e.outvars)]
  assert len(muls) >= 1
  # the engine's other extra args (`valid_loss`) are ignored, `batch` is forwarded
  calls.clear()
  _, state = tx.update(2 * batch * w, state, w, value_fn=value_fn, batch=batch,
                       valid_loss=jnp.float32(1.0), epoch_boundary=True)
  assert len(calls) == 1
  np.testing.assert_allclose(float(state.loss),
                             float(jnp.sum(batch * (w - 0.1 * 2 * batch * w) ** 2)), rtol=1e-6)


def test_newton_five_losses_values():
  etas = jnp.asarray([0.1, 0.2, 0.3, 0.4, 0.5])
  p = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
  d = {"a": jnp.array([0.5, -1.0]), "b": jnp.array(1.0)}
  fn = lambda q: jnp.sum(q["a"] ** 2) + q["b"] ** 3
  got = adaptive.five_losses(fn, p, d, etas)
  want = [fn(jax.tree.map(lambda x, y, e=e: x - e * y, p, d)) for e in etas]
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)


def test_newton_missing_value_fn_is_a_clear_error():
  tx = adaptive.newton_lr(0.1)
  w = jnp.ones(2)
  with pytest.raises(TypeError, match="value_fn"):
    tx.update(w, tx.init(w), w)
  with pytest.raises(TypeError, match="value_fn"):
    tx.update(w, tx.init(w), w, value_fn=3.0)
  with pytest.raises(ValueError, match="scalar"):
    tx.update(w, tx.init(w), w, value_fn=lambda p: p)


def test_newton_delta_smoothing_only_when_denominator_is_zero():
  with jax.enable_x64(True):
    c = jnp.asarray([1.0, -2.0, 0.5])
    linear = lambda w: c @ w  # f linear in eta: denominator == 0 (up to rounding)
    w = jnp.ones(3)
    eps, delta, lr0 = 1e-3, 1e-6, 0.1
    tx = adaptive.newton_lr(lr0, eps=eps, delta=delta)
    g = c
    _, state = tx.update(g, tx.init(w), w, value_fn=linear)
    assert int(state.num_smoothed) == 1
    numerator = -2 * eps * float(c @ g)  # f(eta+e) - f(eta-e)
    want = lr0 - 2 * eps * numerator / delta  # eq. 18 with a zero denominator
    np.testing.assert_allclose(float(state.lr), min(want, 10.0), rtol=1e-6)
    # a quadratic's denominator is far from 0: no smoothing, even with tol = 0
    a = spd(3, 5.0)
    for tol in (None, 0.0):
      tx = adaptive.newton_lr(lr0, eps=eps, denominator_tol=tol)
      _, state = tx.update(a @ w, tx.init(w), w, value_fn=quadratic(a))
      assert int(state.num_smoothed) == 0
    # delta = 0 on an exactly-zero denominator: inf/NaN proposal, rate kept, flagged
    tx = adaptive.newton_lr(lr0, eps=0.5, delta=0.0)
    _, state = tx.update(jnp.zeros(3), tx.init(w), w, value_fn=linear)
    assert float(state.lr) == lr0 and bool(state.nonfinite)


# ----------------------------------------------------------------- guards

def test_newton_nan_loss_keeps_rate_and_sets_sticky_flag():
  tx = adaptive.newton_lr(0.05, eps=1e-2)
  w = jnp.ones(2)
  state = tx.init(w)
  updates, state = tx.update(w, state, w, value_fn=lambda p: jnp.sum(p) * jnp.nan)
  assert float(state.lr) == pytest.approx(0.05)
  assert np.isfinite(float(state.lr)) and float(state.lr) > 0
  assert bool(state.nonfinite)
  np.testing.assert_allclose(np.asarray(updates), -0.05 * np.ones(2), rtol=1e-6)
  _, state = tx.update(w, state, w, value_fn=lambda p: 0.5 * jnp.sum(p ** 2))
  assert bool(state.nonfinite)  # sticky
  assert np.isfinite(float(state.lr)) and float(state.lr) > 0


def test_newton_huge_eps_negative_proposal_clipped_to_min_lr():
  # L(w) = 1 - cos(w): with eps = 10 the differences alias the periodic loss and
  # eq. 16 proposes eta = 0.1 + eps tan(x) / sin(eps g) < 0.
  value_fn = lambda w: jnp.sum(1.0 - jnp.cos(w))
  w = jnp.array([0.5])
  g = jax.grad(value_fn)(w)
  x = 0.5 - 0.1 * float(g[0])
  proposal = 0.1 + 10.0 * np.tan(x) / np.sin(10.0 * float(g[0]))
  assert proposal < 0
  tx = adaptive.newton_lr(0.1, eps=10.0, min_lr=1e-4)
  _, state = tx.update(g, tx.init(w), w, value_fn=value_fn)
  assert float(state.lr) == pytest.approx(1e-4)
  assert int(state.num_clipped) == 1 and not bool(state.nonfinite)
  # a small eps on the same loss gives a positive (unclipped) rate
  tx = adaptive.newton_lr(0.1, eps=1e-2, min_lr=1e-4)
  _, state = tx.update(g, tx.init(w), w, value_fn=value_fn)
  assert float(state.lr) > 0.5 and int(state.num_clipped) == 0


def test_newton_concave_and_huge_proposals_are_clipped():
  w = jnp.array([1.0, 2.0])
  concave = lambda p: -jnp.sum(p ** 2)  # Newton on eta jumps to eta = -1/2
  tx = adaptive.newton_lr(0.1, eps=1e-2, min_lr=1e-3, max_lr=2.0)
  _, state = tx.update(jax.grad(concave)(w), tx.init(w), w, value_fn=concave)
  assert float(state.lr) == pytest.approx(1e-3)
  # along a tiny direction the line minimum is far: eta* = 500 > max_lr
  tx = adaptive.newton_lr(0.1, eps=1.0, min_lr=1e-3, max_lr=2.0)
  sphere = lambda p: jnp.sum(p ** 2)
  _, state = tx.update(2e-3 * w, tx.init(w), w, value_fn=sphere)
  assert float(state.lr) == pytest.approx(2.0)
  assert int(state.num_clipped) == 1


def test_hypergradient_guards():
  tx = adaptive.hypergradient_sgd(0.1, hyper_lr=1.0, min_lr=1e-3, max_lr=1.0)
  w = jnp.ones(2)
  state = tx.init(w)
  _, state = tx.update(w, state)
  _, state = tx.update(-100.0 * w, state)  # h = 200: proposal 0.1 - 200 < 0
  assert float(state.lr) == pytest.approx(1e-3) and int(state.num_clipped) == 1
  _, state = tx.update(100.0 * w, state)  # h = 2e4 > 0 again: still min_lr
  _, state = tx.update(100.0 * w, state)  # h = -2e4: proposal huge -> max_lr
  assert float(state.lr) == pytest.approx(1.0)
  _, state = tx.update(jnp.array([jnp.nan, 1.0]), state)
  assert float(state.lr) == pytest.approx(1.0) and bool(state.nonfinite)
  _, state = tx.update(w, state)  # NaN stored as previous grad: rate held again
  _, state = tx.update(w, state)
  assert bool(state.nonfinite) and np.isfinite(float(state.lr))


# ----------------------------------------------------------------- hypergradient

def test_hypergradient_sgd_first_steps_by_hand():
  rng = np.random.default_rng(0)
  g0, g1, g2 = (rng.normal(size=4).astype(np.float32) for _ in range(3))
  lr0, beta = 0.05, 0.01
  tx = adaptive.hypergradient_sgd(lr0, hyper_lr=beta)
  state = tx.init(jnp.zeros(4))
  u0, state = tx.update(jnp.asarray(g0), state)
  assert float(state.lr) == pytest.approx(lr0)  # g_{-1} = 0: h_0 = 0
  np.testing.assert_allclose(np.asarray(u0), -lr0 * g0, rtol=1e-6)
  u1, state = tx.update(jnp.asarray(g1), state)
  lr1 = lr0 + beta * float(g1 @ g0)  # eta - alpha f', f' = -g_t . g_{t+1}
  assert float(state.lr) == pytest.approx(lr1, rel=1e-6)
  assert float(state.hypergradient) == pytest.approx(-float(g1 @ g0), rel=1e-6)
  np.testing.assert_allclose(np.asarray(u1), -lr1 * g1, rtol=1e-6)
  _, state = tx.update(jnp.asarray(g2), state)
  assert float(state.lr) == pytest.approx(lr1 + beta * float(g2 @ g1), rel=1e-5)
  assert int(state.count) == 3


def test_hypergradient_adam_first_steps_by_hand():
  rng = np.random.default_rng(1)
  g0, g1 = (rng.normal(size=4) for _ in range(2))
  lr0, beta, b1, b2, eps = 1e-2, 1e-3, 0.9, 0.999, 1e-8
  tx = adaptive.hypergradient_adam(lr0, beta, b1, b2, eps)
  state = tx.init(jnp.zeros(4))
  _, state = tx.update(jnp.asarray(g0, jnp.float32), state)
  assert float(state.lr) == pytest.approx(lr0)
  d0 = g0 / (np.abs(g0) + eps)  # m_hat_1 = g0, v_hat_1 = g0^2
  u1, state = tx.update(jnp.asarray(g1, jnp.float32), state)
  lr1 = lr0 + beta * float(g1 @ d0)  # h_1 = -g_1 . d_0
  assert float(state.lr) == pytest.approx(lr1, rel=1e-6)
  m = (1 - b1) * (b1 * g0 + g1)
  v = (1 - b2) * (b2 * g0 ** 2 + g1 ** 2)
  d1 = (m / (1 - b1 ** 2)) / (np.sqrt(v / (1 - b2 ** 2)) + eps)
  np.testing.assert_allclose(np.asarray(u1), -lr1 * d1, rtol=1e-4)  # float32 b2
  # with hyper_lr -> tiny, the direction is optax's Adam
  ref = optax.scale_by_adam(b1, b2, eps)
  rs = ref.init(jnp.zeros(4))
  d_ref, rs = ref.update(jnp.asarray(g0, jnp.float32), rs)
  d_ref, rs = ref.update(jnp.asarray(g1, jnp.float32), rs)
  np.testing.assert_allclose(np.asarray(state.prev_direction), np.asarray(d_ref),
                             rtol=1e-6)


def _quadratic_run(tx, a, w, num_steps):
  value_fn = quadratic(a)

  def step(carry, _):
    w, state = carry
    updates, state = tx.update(jax.grad(value_fn)(w), state, w)
    return (optax.apply_updates(w, updates), state), state.lr

  (w, state), lrs = jax.lax.scan(step, (w, tx.init(w)), None, length=num_steps)
  return np.asarray(lrs), state


@pytest.mark.parametrize("factory,lr0,beta", [
    (adaptive.hypergradient_sgd, 1e-3, 1e-2),
    (adaptive.hypergradient_adam, 1e-4, 1e-3),
])
def test_hypergradient_increases_a_too_small_rate(factory, lr0, beta):
  a = np.diag([1.0, 2.0, 3.0]).astype(np.float32)
  lrs, state = _quadratic_run(factory(lr0, beta), a, jnp.ones(3), 20)
  assert np.all(np.diff(lrs[1:]) > 0)  # consecutive gradients aligned: h < 0
  assert lrs[-1] > 1.5 * lr0
  assert not bool(state.nonfinite)


@pytest.mark.parametrize("factory,lr0,beta", [
    (adaptive.hypergradient_sgd, 0.9, 1e-2),  # 0.9 > 2 / lambda_max = 2/3: oscillates
    (adaptive.hypergradient_adam, 2.0, 1e-1),  # Adam's steps ~ lr: overshoots
])
def test_hypergradient_decreases_a_too_large_rate(factory, lr0, beta):
  a = np.diag([1.0, 2.0, 3.0]).astype(np.float32)
  lrs, state = _quadratic_run(factory(lr0, beta), a, jnp.ones(3), 20)
  assert lrs[1] < lr0  # anti-aligned consecutive gradients: h > 0
  assert lrs[-1] < 0.9 * lr0


# ----------------------------------------------------------------- transformations

FACTORIES = {
    "newton": lambda lr: adaptive.newton_lr(lr, eps=1e-2),
    "hd_sgd": lambda lr: adaptive.hypergradient_sgd(lr, 1e-3),
    "hd_adam": lambda lr: adaptive.hypergradient_adam(lr, 1e-4),
    "hd_rms": lambda lr: adaptive.hypergradient(optax.scale_by_rms(), lr, 1e-4),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_jit_vmap_over_initial_rates_and_scan(name):
  a = jnp.asarray(spd(4, 5.0, dtype=np.float32))
  value_fn = quadratic(a)
  w0 = jnp.ones(4)

  def train(lr):
    tx = FACTORIES[name](lr)  # lr traced: constructed inside the vmapped function

    def step(carry, _):
      w, state = carry
      updates, state = tx.update(jax.grad(value_fn)(w), state, w, value_fn=value_fn)
      return (optax.apply_updates(w, updates), state), value_fn(w)

    (w, state), losses = jax.lax.scan(step, (w0, tx.init(w0)), None, length=8)
    return adaptive.learned_lr(state), losses, state

  lrs = jnp.asarray([0.01, 0.05, 0.2])
  got_lr, got_losses, states = jax.jit(jax.vmap(train))(lrs)
  assert got_lr.shape == (3,) and got_losses.shape == (3, 8)
  assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(states))
  for i, lr in enumerate([0.01, 0.05, 0.2]):  # same as each rate alone, eagerly
    tx = FACTORIES[name](lr)
    w, state = w0, tx.init(w0)
    for _ in range(8):
      updates, state = tx.update(jax.grad(value_fn)(w), state, w, value_fn=value_fn)
      w = optax.apply_updates(w, updates)
    # float32 finite differences amplify fusion-order rounding (newton)
    np.testing.assert_allclose(float(got_lr[i]), float(state.lr), rtol=1e-3)
  assert np.all(np.isfinite(np.asarray(got_lr))) and np.all(np.asarray(got_lr) > 0)


def test_learned_lr_inside_chains_and_wrappers():
  w = jnp.ones(2)
  value_fn = lambda p: jnp.sum(p ** 2)
  tx = optax.apply_if_finite(optax.with_extra_args_support(
      optax.chain(optax.identity(), adaptive.newton_lr(0.1, eps=1e-2))), 10)
  state = tx.init(w)
  assert float(adaptive.learned_lr(state)) == pytest.approx(0.1)
  _, state = tx.update(2 * w, state, w, value_fn=value_fn,
                       valid_loss=jnp.float32(0.0), epoch_boundary=jnp.bool_(False))
  assert float(adaptive.learned_lr(state)) == pytest.approx(0.5, rel=1e-3)  # 1/lambda
  assert isinstance(adaptive.adaptive_state(state), adaptive.NewtonLRState)
  with pytest.raises(ValueError, match="adaptive"):
    adaptive.learned_lr(optax.sgd(0.1).init(w))
  two = optax.chain(adaptive.hypergradient_sgd(0.1), adaptive.hypergradient_sgd(0.2))
  with pytest.raises(ValueError, match="found 2"):
    adaptive.learned_lr(two.init(w))


def test_dtype_follows_params():
  for factory in FACTORIES.values():
    assert factory(0.1).init(jnp.ones(2)).lr.dtype == jnp.float32
    assert factory(0.1).init(jnp.ones(2, jnp.bfloat16)).lr.dtype == jnp.float32
  with jax.enable_x64(True):
    for factory in FACTORIES.values():
      state = factory(0.1).init(jnp.ones(2, jnp.float64))
      assert state.lr.dtype == jnp.float64
  assert _common.compute_dtype({}) == jnp.float32


# ----------------------------------------------------------------- arguments

@pytest.mark.parametrize("factory,kwargs,name", [
    (adaptive.newton_lr, dict(learning_rate=0.0), "learning_rate"),
    (adaptive.newton_lr, dict(learning_rate=-1.0), "learning_rate"),
    (adaptive.newton_lr, dict(learning_rate=float("nan")), "learning_rate"),
    (adaptive.newton_lr, dict(learning_rate=0.1, eps=0.0), "eps"),
    (adaptive.newton_lr, dict(learning_rate=0.1, eps=-1e-5), "eps"),
    (adaptive.newton_lr, dict(learning_rate=0.1, delta=-1e-6), "delta"),
    (adaptive.newton_lr, dict(learning_rate=0.1, min_lr=0.0), "min_lr"),
    (adaptive.newton_lr, dict(learning_rate=0.1, min_lr=-1.0), "min_lr"),
    (adaptive.newton_lr, dict(learning_rate=0.1, min_lr=1.0, max_lr=0.5), "min_lr"),
    (adaptive.newton_lr, dict(learning_rate=20.0), "max_lr"),
    (adaptive.newton_lr, dict(learning_rate=0.1, denominator_tol=-1.0), "denominator_tol"),
    (adaptive.hypergradient_sgd, dict(learning_rate=0.0), "learning_rate"),
    (adaptive.hypergradient_sgd, dict(learning_rate=0.1, hyper_lr=0.0), "hyper_lr"),
    (adaptive.hypergradient_sgd, dict(learning_rate=0.1, hyper_lr=-1.0), "hyper_lr"),
    (adaptive.hypergradient_sgd, dict(learning_rate=0.1, min_lr=2.0, max_lr=1.0), "min_lr"),
    (adaptive.hypergradient_sgd, dict(learning_rate=0.1, min_lr=0.0), "min_lr"),
    (adaptive.hypergradient_adam, dict(learning_rate=-0.1), "learning_rate"),
    (adaptive.hypergradient_adam, dict(learning_rate=0.1, hyper_lr=0.0), "hyper_lr"),
    (adaptive.hypergradient_adam, dict(learning_rate=0.1, b1=1.0), "b1"),
    (adaptive.hypergradient_adam, dict(learning_rate=0.1, b2=-0.1), "b2"),
    (adaptive.hypergradient_adam, dict(learning_rate=0.1, eps=0.0), "eps"),
    (adaptive.hypergradient_adam, dict(learning_rate=0.1, min_lr=1.0, max_lr=0.1), "min_lr"),
])
def test_bad_arguments_raise_naming_the_argument(factory, kwargs, name):
  with pytest.raises(ValueError, match=f"`{name}`"):
    factory(**kwargs)


# ----------------------------------------------------------------- Newton: eq. 18 exactly

# f(eta) = A (eta - 0) + B (eta - ETA0)^2 along the direction, evaluated at
# eta = ETA0 + j EPS: numerator f(+1) - f(-1) = 2 A EPS = -2.025e-3, denominator
# f(+2) + f(-2) - 2 f(0) = 8 B EPS^2 = -5e-7 (small and negative).  By hand:
#   paper  (eq. 18, den + delta):        0.1 - 2e-3 (-2.025e-3) / (5e-7)  = 8.2
#   robust (max(den, 0) + delta):        0.1 - 2e-3 (-2.025e-3) / (1e-6)  = 4.15
#   not smoothed (eq. 16, den itself):   0.1 - 2e-3 (-2.025e-3) / (-5e-7) = -8.0
ETA0, EPS, DELTA, A_COEF, B_COEF = 0.1, 1e-3, 1e-6, -1.0125, -0.0625
PAPER_LR, ROBUST_LR, NEWTON_LR = 8.2, 4.15, -8.0


def _small_negative_denominator_step(**kwargs):
  """One update where params = 0 and direction = -1, so moved params = eta."""
  value_fn = lambda w: jnp.sum(A_COEF * w + B_COEF * (w - ETA0) ** 2)
  w, g = jnp.zeros(1), -jnp.ones(1)
  tx = adaptive.newton_lr(ETA0, eps=EPS, delta=DELTA, **kwargs)
  update = jax.jit(lambda g, s, p: tx.update(g, s, p, value_fn=value_fn))
  return update(g, tx.init(w), w)[1]


def test_newton_smoothing_paper_and_robust_by_hand():
  with jax.enable_x64(True):
    for smoothing, want in [("paper", PAPER_LR), ("robust", ROBUST_LR),
                            (adaptive.paper_smoothing, PAPER_LR),
                            (lambda den, delta: den + delta, PAPER_LR)]:
      state = _small_negative_denominator_step(smoothing=smoothing, denominator_tol=1e-6)
      np.testing.assert_allclose(float(state.lr), want, rtol=1e-6)
      assert bool(state.smoothed) and int(state.num_smoothed) == 1
      assert int(state.num_clipped) == 0
    # the default is the robust rule
    state = _small_negative_denominator_step(denominator_tol=1e-6)
    np.testing.assert_allclose(float(state.lr), ROBUST_LR, rtol=1e-6)
    assert adaptive.SMOOTHING_RULES["paper"] is adaptive.paper_smoothing
    # on a positive ~0 denominator the two rules agree (max(den, 0) = den)
    den, delta = jnp.float64(3e-7), jnp.float64(1e-6)
    assert float(adaptive.paper_smoothing(den, delta)) == float(
        adaptive.robust_smoothing(den, delta))


def test_newton_smoothing_rule_vmaps_over_initial_rates():
  value_fn = lambda w: jnp.sum(A_COEF * w + B_COEF * (w - ETA0) ** 2)

  def one(lr):
    tx = adaptive.newton_lr(lr, eps=EPS, delta=DELTA, smoothing="paper",
                            denominator_tol=1e-6)
    w = jnp.zeros(1)
    return tx.update(-jnp.ones(1), tx.init(w), w, value_fn=value_fn)[1].lr

  with jax.enable_x64(True):
    got = jax.jit(jax.vmap(one))(jnp.asarray([ETA0, ETA0]))
    np.testing.assert_allclose(np.asarray(got), [PAPER_LR] * 2, rtol=1e-6)


@pytest.mark.parametrize("smoothing,error", [
    ("papers", ValueError), ("", ValueError), (1.0, TypeError), (None, TypeError)])
def test_newton_bad_smoothing_is_rejected_naming_it(smoothing, error):
  with pytest.raises(error, match="`smoothing`"):
    adaptive.newton_lr(0.1, smoothing=smoothing)


# ----------------------------------------------------------------- Newton: which branch

def _newton_branches(eps, num_steps=50):
  """Gradient descent with `newton_lr` on a float32 5-d quadratic, jitted and scanned:
  the branch (state.smoothed) of every step, and the final state."""
  a = jnp.asarray(spd(5, 10.0, dtype=np.float32))
  w0 = jnp.asarray(np.random.default_rng(1).normal(size=5), jnp.float32)
  value_fn = quadratic(a)
  tx = adaptive.newton_lr(0.01, eps=eps)

  def step(carry, _):
    w, state = carry
    updates, state = tx.update(jax.grad(value_fn)(w), state, w, value_fn=value_fn)
    return (optax.apply_updates(w, updates), state), state.smoothed

  (_, state), smoothed = jax.jit(
      lambda w: jax.lax.scan(step, (w, tx.init(w)), None, length=num_steps))(w0)
  return np.asarray(smoothed), state


def test_newton_float32_paper_eps_takes_the_smoothed_branch_every_step():
  smoothed, state = _newton_branches(1e-5)
  assert smoothed.dtype == np.bool_ and smoothed.shape == (50,)
  assert smoothed.all()  # documented: eps = 1e-5 in float32 never takes eq. 16
  assert int(state.num_smoothed) == 50 == int(state.count)
  smoothed, state = _newton_branches(1e-2)
  assert not smoothed.any()  # a larger eps: the Newton step (eq. 16) every time
  assert int(state.num_smoothed) == 0


def test_engine_newton_preset_takes_the_newton_branch():
  """The engine's Newton (no eps given) takes eq. 16 on most steps, in float32."""
  pytest.importorskip("flax")  # the engine's extra
  from lrjax import models
  from lrjax.train.engine import step as step_lib
  from lrjax.train.frontends import optimizers

  rng = np.random.default_rng(0)
  x = rng.normal(size=(512, 13)).astype(np.float32)
  y = x[:, :3].argmax(-1).astype(np.int32)
  model = models.LogisticRegression(num_classes=3)

  def branch_counts(optimizer_kwargs):
    spec = optimizers.GroupSpec("newton", tuple(sorted(optimizer_kwargs.items())), False,
                                (("constant", ()),))
    hyper = optimizers.GroupHyper(jnp.float32(0.01), jnp.int32(0), jnp.int32(0),
                                  jnp.int32(0))
    tx = optimizers.make_transform(spec, hyper)
    params = model.init(jax.random.PRNGKey(0), x[:2])["params"]
    state = step_lib.TrainState(params, {}, tx.init(params), jnp.float32(jnp.nan),
                                jnp.int32(0))
    one = jax.jit(lambda s, bx, by: step_lib.train_step(
        model, tx, "classification", s, bx, by, None, jnp.bool_(False))[0])
    for i in range(50):
      j = 32 * i % (512 - 32)
      state = one(state, x[j:j + 32], y[j:j + 32])
    newton = adaptive.adaptive_state(state.opt_state)
    assert not bool(newton.nonfinite)
    return int(newton.num_smoothed), int(newton.count)

  smoothed, count = branch_counts({})
  assert count == 50 and smoothed <= count // 4
  assert optimizers.NEWTON_PRESET["eps"] > 1e-5
  smoothed, count = branch_counts({"eps": 1e-5})  # the paper's eps, given explicitly
  assert smoothed == count == 50


# ----------------------------------------------------------------- no clip: the paper's rate

def test_newton_min_lr_none_follows_eq16_to_a_negative_rate():
  with jax.enable_x64(True):
    # no smoothing (float64 rounding tolerance): eq. 16 gives -8.0 (by hand, above)
    state = _small_negative_denominator_step(min_lr=None)
    np.testing.assert_allclose(float(state.lr), NEWTON_LR, rtol=1e-6)
    assert not bool(state.smoothed) and int(state.num_clipped) == 0
    # the guarded default clips the same proposal to min_lr
    state = _small_negative_denominator_step()
    assert float(state.lr) == pytest.approx(_common.DEFAULT_MIN_LR)
    assert int(state.num_clipped) == 1
  # the aliasing cosine of test_newton_huge_eps_negative_proposal_clipped_to_min_lr
  value_fn = lambda w: jnp.sum(1.0 - jnp.cos(w))
  w = jnp.array([0.5])
  g = jax.grad(value_fn)(w)
  x = 0.5 - 0.1 * float(g[0])
  proposal = 0.1 + 10.0 * np.tan(x) / np.sin(10.0 * float(g[0]))
  tx = adaptive.newton_lr(0.1, eps=10.0, min_lr=None)
  updates, state = tx.update(g, tx.init(w), w, value_fn=value_fn)
  np.testing.assert_allclose(float(state.lr), proposal, rtol=1e-4)
  assert float(state.lr) < 0
  # and the next update applies that negative rate (w + |eta| g: an ascent step)
  updates, state = tx.update(g, state, w, value_fn=value_fn)
  np.testing.assert_allclose(np.asarray(updates), -proposal * np.asarray(g), rtol=1e-4)


def test_max_lr_none_and_hypergradient_min_lr_none():
  w = jnp.array([1.0, 2.0])
  sphere = lambda p: jnp.sum(p ** 2)
  # along a tiny direction the line minimum is eta* = 500 (clipped at 2 in the guard test)
  with jax.enable_x64(True):  # float64: the differences are exact enough for 1e-6
    w64 = jnp.asarray(w, jnp.float64)
    tx = adaptive.newton_lr(0.1, eps=1.0, max_lr=None)
    _, state = tx.update(2e-3 * w64, tx.init(w64), w64, value_fn=sphere)
    assert float(state.lr) == pytest.approx(500.0, rel=1e-6)
    assert int(state.num_clipped) == 0
  # a learning_rate above the default max_lr is accepted without an upper bound
  assert float(adaptive.newton_lr(20.0, max_lr=None).init(w).lr) == 20.0
  # hypergradient: eta_1 = 0.1 - 1.0 * h, h = -g_1 . g_0 = 200: -199.9, kept
  tx = adaptive.hypergradient_sgd(0.1, hyper_lr=1.0, min_lr=None)
  _, state = tx.update(w / w, tx.init(w))
  _, state = tx.update(-100.0 * w / w, state)
  assert float(state.lr) == pytest.approx(0.1 - 200.0)
  assert int(state.num_clipped) == 0
  # NaN is still guarded without bounds
  _, state = tx.update(jnp.array([jnp.nan, 1.0]), state)
  assert float(state.lr) == pytest.approx(0.1 - 200.0) and bool(state.nonfinite)


@pytest.mark.parametrize("kwargs,name", [
    (dict(min_lr=None, max_lr=0.01), "max_lr"),  # learning_rate 0.1 > max_lr
    (dict(min_lr=1.0, max_lr=None), "min_lr"),  # min_lr > learning_rate
    (dict(min_lr=None, max_lr=-1.0), "max_lr"),
])
def test_one_sided_bounds_are_still_checked(kwargs, name):
  for factory in (adaptive.newton_lr, adaptive.hypergradient_sgd):
    with pytest.raises(ValueError, match=f"`{name}`"):
      factory(0.1, **kwargs)


# ----------------------------------------------------------------- one hypergradient wrapper

def test_hypergradient_wrapper_around_scale_by_rms_matches_reference():
  """RMSprop-HD by hand: nu = d nu + (1-d) g^2, dir = g / sqrt(nu + eps) (optax's
  scale_by_rms: eps inside the root, nu_0 = 0), h_t = -g_t . dir_{t-1}."""
  rng = np.random.default_rng(4)
  base = rng.normal(size=(2, 3))
  grads = [base + 0.5 * rng.normal(size=(2, 3)) for _ in range(4)]  # mostly aligned
  lr0, beta, decay, eps = 0.02, 1e-3, 0.9, 1e-8
  nu, prev, lr, want_lr, want_updates = np.zeros((2, 3)), np.zeros((2, 3)), lr0, [], []
  for g in grads:
    lr = lr - beta * -(g * prev).sum()
    nu = decay * nu + (1 - decay) * g ** 2
    prev = g / np.sqrt(nu + eps)
    want_lr.append(lr)
    want_updates.append(-lr * prev)
  assert min(want_lr) > 0 and want_lr[-1] > 1.2 * lr0  # inside the guard, and moving

  tx = adaptive.hypergradient(optax.scale_by_rms(decay=decay, eps=eps), lr0, beta)
  params = {"w": jnp.zeros((2, 3))}
  state = tx.init(params)
  update = jax.jit(tx.update)
  for g, lr_ref, u_ref in zip(grads, want_lr, want_updates, strict=True):
    updates, state = update({"w": jnp.asarray(g, jnp.float32)}, state, params)
    assert float(state.lr) == pytest.approx(lr_ref, rel=1e-5)
    np.testing.assert_allclose(np.asarray(updates["w"]), u_ref, rtol=1e-5, atol=1e-7)
  assert isinstance(state.inner_state, optax.ScaleByRmsState)
  assert int(state.count) == 4 and adaptive.learned_lr(state) is state.lr


def test_named_hypergradient_methods_are_the_wrapper():
  rng = np.random.default_rng(5)
  grads = [jnp.asarray(rng.normal(size=4), jnp.float32) for _ in range(5)]
  pairs = [(adaptive.hypergradient_sgd(0.05, 1e-2),
            adaptive.hypergradient(optax.identity(), 0.05, 1e-2)),
           (adaptive.hypergradient_adam(0.05, 1e-2, 0.8, 0.99, 1e-6),
            adaptive.hypergradient(optax.scale_by_adam(0.8, 0.99, 1e-6), 0.05, 1e-2))]
  for named, wrapped in pairs:
    s1, s2 = named.init(jnp.zeros(4)), wrapped.init(jnp.zeros(4))
    assert type(s1) is type(s2) is adaptive.HypergradientState
    for g in grads:
      u1, s1 = named.update(g, s1)
      u2, s2 = wrapped.update(g, s2)
      np.testing.assert_array_equal(np.asarray(u1), np.asarray(u2))
    jax.tree.map(np.testing.assert_array_equal, s1, s2)
  # the Adam form keeps optax's Adam state inside
  assert isinstance(pairs[1][0].init(jnp.zeros(4)).inner_state, optax.ScaleByAdamState)


def test_hypergradient_passes_extra_args_to_an_inner_that_takes_them():
  seen = []

  def init(params):
    return optax.EmptyState()

  def update(updates, state, params=None, *, scale=1.0, **extra):
    seen.append(scale)
    return jax.tree.map(lambda g: scale * g, updates), state

  inner = optax.GradientTransformationExtraArgs(init, update)
  tx = adaptive.hypergradient(inner, 0.1, 1e-3)
  w = jnp.ones(2)
  updates, _ = tx.update(w, tx.init(w), w, scale=3.0, valid_loss=jnp.float32(1.0))
  assert seen == [3.0]
  np.testing.assert_allclose(np.asarray(updates), -0.3 * np.ones(2), rtol=1e-6)
  # a plain GradientTransformation inner ignores the engine's extra args
  tx = adaptive.hypergradient(optax.scale_by_rms(), 0.1, 1e-3)
  tx.update(w, tx.init(w), w, valid_loss=jnp.float32(1.0), epoch_boundary=True)


@pytest.mark.parametrize("inner", [None, 0.1, optax.sgd])
def test_hypergradient_bad_inner_is_rejected_naming_it(inner):
  with pytest.raises(TypeError, match="`inner`"):
    adaptive.hypergradient(inner, 0.1, 1e-3)


# ----------------------------------------------------------------- states: donation, dtypes

def _value_fn(w):
  return sum(jnp.sum(x.astype(jnp.float32) ** 2) for x in jax.tree.leaves(w))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_state_is_donatable(name):
  tx = FACTORIES[name](0.05)
  params = {"a": jnp.ones(3), "b": jnp.ones(3)}  # equal leaves: zeros_like must not merge
  update = jax.jit(lambda g, s, p: tx.update(g, s, p, value_fn=_value_fn),
                   donate_argnums=1)
  for state in (tx.init(params), jax.jit(tx.init)(params)):
    leaves = jax.tree.leaves(state)
    assert len({x.unsafe_buffer_pointer() for x in leaves}) == len(leaves)
    grads = jax.tree.map(lambda p: 2 * p, params)
    for _ in range(3):  # fresh state, then states made by donated updates
      _, state = update(grads, state, params)
    assert np.isfinite(float(adaptive.learned_lr(state)))
    # an eager update's state does not alias the caller's gradient or params either
    g = jax.tree.map(lambda p: 2 * p, params)
    _, state = tx.update(g, state, params, value_fn=_value_fn)
    update(grads, state, params)
    assert not any(x.is_deleted() for x in jax.tree.leaves((g, params)))
  # nor the caller's learning_rate array
  lr = jnp.asarray(0.05, jnp.float32)
  state = FACTORIES[name](lr).init(params)
  update(jax.tree.map(lambda p: 2 * p, params), state, params)
  assert not lr.is_deleted()


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_keeps_half_precision_params_dtype(name, dtype):
  tx = FACTORIES[name](0.05)
  params = jnp.ones(4, dtype)
  state = tx.init(params)
  dtypes = jax.tree.map(lambda x: x.dtype, state)
  for x in jax.tree.leaves(state):
    if x.ndim:  # per-parameter leaves (directions, moments) in the params' dtype
      assert x.dtype == dtype
  assert state.lr.dtype == jnp.float32  # the scalar rate: at least float32

  def step(carry, _):
    w, s = carry
    updates, s = tx.update(jax.grad(_value_fn)(w), s, w, value_fn=_value_fn)
    return (optax.apply_updates(w, updates), s), None

  (w, state), _ = jax.jit(lambda w, s: jax.lax.scan(step, (w, s), None, length=3))(
      params, state)  # a scan carry: dtypes must not change across updates
  assert jax.tree.map(lambda x: x.dtype, state) == dtypes and w.dtype == dtype
  assert np.isfinite(float(state.lr)) and not bool(state.nonfinite)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_numpy_float64_params_without_x64_give_float32_state(name):
  assert not jax.config.jax_enable_x64
  params = np.ones(3)  # float64 numpy: JAX computes it in float32
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no "float64 requested but not available"
    state = FACTORIES[name](0.05).init(params)
    _, state = FACTORIES[name](0.05).update(2 * params, state, params, value_fn=_value_fn)
  for x in jax.tree.leaves(state):
    assert x.dtype in (jnp.float32, jnp.int32, jnp.bool_)


def test_learned_lr_of_every_method_in_any_chain():
  w = {"a": jnp.ones(2)}
  value_fn = lambda p: jnp.sum(p["a"] ** 2)
  for name, factory in sorted(FACTORIES.items()):
    chains = [
        factory(0.07),
        optax.chain(optax.clip_by_global_norm(1.0), factory(0.07)),
        optax.apply_if_finite(optax.with_extra_args_support(
            optax.chain(optax.identity(), factory(0.07))), 5),
        optax.chain(optax.add_decayed_weights(0.0),
                    optax.chain(optax.identity(), factory(0.07))),
    ]
    for tx in chains:
      tx = optax.with_extra_args_support(tx)
      state = tx.init(w)
      assert float(adaptive.learned_lr(state)) == pytest.approx(0.07), name
      _, state = tx.update(w, state, w, value_fn=value_fn)
      assert float(adaptive.learned_lr(state)) == float(adaptive.adaptive_state(state).lr)
