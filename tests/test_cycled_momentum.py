"""One cycle with cycled momentum and weight decay through optax and `lrjax.sweep`.

The optimizer is optax's (``add_decayed_weights`` + ``inject_hyperparams(sgd)``); the
lrjax pieces are the schedules `one_cycle` and `one_cycle_linear_momentum`.  Reference:
PyTorch 2.13.0 ``OneCycleLR(cycle_momentum=True)`` and ``SGD(weight_decay=...)``
values, written here as constants.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import schedules
from lrjax.data import synthetic

# torch 2.13.0+cpu: p = Parameter(zeros(1)); opt = SGD([p], lr=0.8, momentum=0.9,
#   weight_decay=1e-4); OneCycleLR(opt, max_lr=0.8, total_steps=12, pct_start=5/12,
#   anneal_strategy="linear", three_phase=True, div_factor=10, final_div_factor=10,
#   base_momentum=0.85, max_momentum=0.95, cycle_momentum=True): param_groups[0]
#   "lr" and "momentum" before each of the 12 steps.  That is Smith's one cycle with
#   s = 4, T = 11 (phase ends pct_start * 12 - 1 = 4, 2 * 4 = 8, 11).
TORCH_LR = [0.08, 0.26, 0.44, 0.62, 0.8, 0.62, 0.44, 0.26, 0.08, 0.056, 0.032, 0.008]
TORCH_MOMENTUM = [0.95, 0.925, 0.9, 0.875, 0.85, 0.875, 0.9, 0.925, 0.95, 0.95, 0.95, 0.95]

# torch 2.13.0+cpu, float64: p = Parameter([1., -2., 0.5]), loss = sum(0.5 a p^2 + b p),
#   a = [1, 0.5, 2], b = [0.1, -0.2, 0.3]; SGD(lr=0.8, momentum=0.9, weight_decay=0.01)
#   with the OneCycleLR above; p after each of 11 steps.
TORCH_PARAMS = [
    [0.9112, -1.9024, 0.3956], [0.37896388, -1.30473176, -0.20299306],
    [-0.64408422, -0.0136552491, -1.06716927], [-1.56413049, 1.70650119, -0.988752916],
    [-1.38939606, 3.0568719, 0.447166811], [-0.462864459, 3.13000914, 0.677640596],
    [0.290617203, 2.56234855, 0.0935410897], [0.600147353, 1.96430302, -0.352606964],
    [0.63413349, 1.72534615, -0.450320272], [0.615267682, 1.52836394, -0.481411572],
    [0.581940791, 1.40288784, -0.476925314]]


def one_cycle_sgd(min_lr=0.08, max_lr=0.8, step_size=4, total_steps=11, weight_decay=0.01):
  """Smith's one-cycle SGD: written from optax pieces and two lrjax schedules."""
  return optax.chain(
      optax.add_decayed_weights(weight_decay),
      optax.inject_hyperparams(optax.sgd)(
          learning_rate=schedules.one_cycle(min_lr, max_lr, step_size, total_steps, 10.0),
          momentum=schedules.one_cycle_linear_momentum(step_size, total_steps)))


def test_rate_and_momentum_equal_torch_one_cycle_under_jit_and_vmap():
  lr = schedules.one_cycle(0.08, 0.8, 4, 11, 10.0)
  momentum = schedules.one_cycle_linear_momentum(4, 11)
  steps = jnp.arange(12)
  np.testing.assert_allclose(jax.jit(jax.vmap(lr))(steps), TORCH_LR, rtol=1e-6)
  np.testing.assert_allclose(jax.jit(jax.vmap(momentum))(steps), TORCH_MOMENTUM, rtol=1e-6)
  # held at max_momentum after the cycle
  assert float(momentum(100)) == pytest.approx(0.95)


def test_linear_momentum_the_document_cycle_and_bounds():
  m = schedules.one_cycle_linear_momentum(41, 95, base_momentum=0.8, max_momentum=0.9)
  t = np.arange(96)
  want = np.where(t <= 41, 0.9 - 0.1 * t / 41,
                  np.where(t <= 82, 0.8 + 0.1 * (t - 41) / 41, 0.9))
  got = np.asarray(jax.vmap(m)(t))
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert got.min() >= np.float32(0.8) and got.max() <= np.float32(0.9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(step_size=0, total_steps=10), "step_size"),
    (dict(step_size=6, total_steps=10), "total_steps"),
    (dict(step_size=4, total_steps=10, base_momentum=0.99), "base_momentum"),
    (dict(step_size=4, total_steps=10, max_momentum=1.5), "max_momentum"),
])
def test_linear_momentum_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    schedules.one_cycle_linear_momentum(**kwargs)


def test_optax_one_cycle_sgd_with_weight_decay_equals_torch_sgd():
  a = jnp.array([1.0, 0.5, 2.0])
  b = jnp.array([0.1, -0.2, 0.3])
  grad = jax.grad(lambda p: jnp.sum(0.5 * a * p ** 2 + b * p))
  tx = one_cycle_sgd()

  @jax.jit
  def train(p):
    def step(carry, _):
      p, state = carry
      updates, state = tx.update(grad(p), state, p)
      p = optax.apply_updates(p, updates)
      return (p, state), (p, state[1].hyperparams)
    (_, _), (ps, hyper) = jax.lax.scan(step, (p, tx.init(p)), None, length=11)
    return ps, hyper

  ps, hyper = train(jnp.array([1.0, -2.0, 0.5]))
  np.testing.assert_allclose(ps, TORCH_PARAMS, rtol=2e-5, atol=1e-6)
  np.testing.assert_allclose(hyper["learning_rate"], TORCH_LR[:11], rtol=1e-6)
  np.testing.assert_allclose(hyper["momentum"], TORCH_MOMENTUM[:11], rtol=1e-6)


class Tiny(nn.Module):
  @nn.compact
  def __call__(self, x, *, train):
    return nn.Dense(10)(nn.relu(nn.Dense(8)(x.reshape((x.shape[0], -1)))))


def test_sweep_reads_the_cycled_rate_per_epoch():
  data = synthetic("tiny", num_train=80, num_test=20, seed=0)  # 72 train -> 4 steps of 16
  epochs, steps = 3, 4
  total = epochs * steps - 1

  def optimizer_fn(h):
    return optax.chain(
        optax.add_decayed_weights(h["weight_decay"]),
        optax.inject_hyperparams(optax.sgd)(
            learning_rate=schedules.one_cycle(h["max_lr"] / 10, h["max_lr"], 5, total),
            momentum=schedules.one_cycle_linear_momentum(5, total)))

  result = lrjax.sweep(Tiny(), data, optimizer_fn,
                       {"max_lr": [0.5, 0.1], "weight_decay": [1e-4, 0.0]},
                       epochs=epochs, batch_size=16, progress=False)
  for k, peak in enumerate((0.5, 0.1)):
    lr = schedules.one_cycle(peak / 10, peak, 5, total)
    # the rate of the last step of every epoch (inject_hyperparams keeps the rate used)
    want = [float(lr(steps * (e + 1) - 1)) for e in range(epochs)]
    np.testing.assert_allclose(result.history["lr"][:, k], want, rtol=1e-6)
  assert np.isfinite(result.history["train_loss"]).all()
