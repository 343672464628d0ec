"""Tests of `lrjax.adaptive` against closed forms and hand-computed steps.

References: on a quadratic L(w) = 0.5 w^T A w the line f(eta) = L(w - eta g) is a
parabola whose minimum is eta* = g.g / g^T A g (g = A w); the finite differences of
eq. 16 are exact on it up to rounding.  Hypergradient steps are checked against
eq. 6-8 (and Baydin et al.'s Adam-HD) written out in numpy.
"""

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
  np.testing.assert_allclose(float(state.loss), float(jnp.sum(batch * (w - 0.1 * 2 * batch * w) ** 2)),
                             rtol=1e-6)


def test_newton_five_losses_values():
  etas = jnp.asarray([0.1, 0.2, 0.3, 0.4, 0.5])
  p = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
  d = {"a": jnp.array([0.5, -1.0]), "b": jnp.array(1.0)}
  fn = lambda q: jnp.sum(q["a"] ** 2) + q["b"] ** 3
  got = adaptive.five_losses(fn, p, d, etas)
  want = [fn(jax.tree.map(lambda x, y: x - e * y, p, d)) for e in etas]
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
