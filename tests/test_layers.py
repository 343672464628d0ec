"""lrjax.models.layers: the fast convolution and max pool equal Flax's, gradients too."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrjax import models
from lrjax.models import layers

# (input H, W, Cin), kernel, strides, padding: the shapes of the report's CNNs, LeNet-5
# and ResNet-18 (stride-2 3x3 and 1x1 projections), odd sizes, explicit pads.
CONV_CASES = [
    ((9, 9, 1), (3, 3), 1, "VALID"),
    ((9, 9, 1), (3, 3), 2, ((0, 1), (1, 0))),
    ((8, 8, 3), (3, 3), 1, "SAME"),
    ((10, 10, 2), (5, 5), 1, "VALID"),
    ((8, 8, 3), (3, 3), 2, 1),
    ((9, 8, 3), (3, 3), 2, "SAME"),
    ((8, 8, 4), (1, 1), 2, "VALID"),
    ((7, 7, 3), (3, 3), 1, ((2, 1), (0, 2))),
    # Cin >= 8: the kernel gradient's gather path (layers._GATHER_MIN_CIN).
    ((9, 9, 8), (3, 3), 2, "SAME"),
    ((7, 7, 8), (3, 3), 1, ((2, 1), (0, 2))),
]
CONVS = [layers.Conv, models.Im2ColConv]


def _x(shape, n=2, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(n,) + shape), jnp.float32)


def _loss_and_grads(module, variables, x, g):
  def loss(params, x):
    return jnp.sum(module.apply({"params": params}, x) * g)
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(variables["params"], x)


@pytest.mark.parametrize("conv", CONVS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape, kernel, strides, padding", CONV_CASES)
def test_conv_equals_flax_conv_values_and_gradients(conv, shape, kernel, strides, padding):
  x = _x(shape)
  ref = nn.Conv(5, kernel, strides=strides, padding=padding)
  mine = conv(features=5, kernel_size=kernel, strides=strides, padding=padding)
  key = jax.random.PRNGKey(3)
  variables = ref.init(key, x)
  # Same parameter names, shapes and initial values (same initialisers).
  same = jax.tree.map(np.array_equal, variables, mine.init(key, x))
  assert all(jax.tree_util.tree_leaves(same))
  out = ref.apply(variables, x)
  np.testing.assert_allclose(mine.apply(variables, x), out, rtol=1e-5, atol=1e-5)
  g = _x(out.shape[1:], seed=1)
  (l_ref, (dp_ref, dx_ref)) = _loss_and_grads(ref, variables, x, g)
  (l_mine, (dp_mine, dx_mine)) = _loss_and_grads(mine, variables, x, g)
  np.testing.assert_allclose(l_mine, l_ref, rtol=1e-5)
  np.testing.assert_allclose(dx_mine, dx_ref, rtol=1e-4, atol=1e-5)
  for name in ("kernel", "bias"):
    np.testing.assert_allclose(dp_mine[name], dp_ref[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cin", [3, 8])  # both ways of building the kernel gradient
def test_conv_gradients_under_vmap_and_inside_scan(cin):
  x = _x((8, 8, cin), n=4)
  ref, mine = nn.Conv(4, (3, 3)), layers.Conv(4, (3, 3))
  stacked = jax.vmap(lambda k: ref.init(k, x))(jax.random.split(jax.random.PRNGKey(0), 3))

  def grads(module):
    def loss(params, xb):
      return jnp.sum(jnp.tanh(module.apply({"params": params}, xb)))

    def epoch(params):  # two SGD steps in a scan, the engine's shape
      def body(p, xb):
        g = jax.grad(loss)(p, xb)
        return jax.tree.map(lambda a, b: a - 0.1 * b, p, g), None
      return jax.lax.scan(body, params, x.reshape(2, 2, 8, 8, cin))[0]

    return jax.jit(jax.vmap(epoch))(stacked["params"])

  a, b = grads(ref), grads(mine)
  for leaf_a, leaf_b in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b),
                            strict=True):
    np.testing.assert_allclose(leaf_b, leaf_a, rtol=1e-5, atol=1e-6)


def test_conv_rejects_an_unknown_padding():
  with pytest.raises(ValueError, match="`padding`"):
    layers.Conv(4, (3, 3), padding="CIRCULAR").init(jax.random.PRNGKey(0), _x((8, 8, 1)))


def _flax_pool(x):
  return nn.max_pool(x, (2, 2), strides=(2, 2))


def _pool_grads(pool, x, g):
  return jax.jit(jax.grad(lambda x: jnp.sum(pool(x) * g)))(x)


@pytest.mark.parametrize("shape", [(6, 6, 3), (7, 9, 2), (26, 26, 4)])
def test_max_pool_is_bit_identical_to_flax_ties_included(shape):
  rng = np.random.default_rng(0)
  # Small integers: most windows hold ties, often all four equal (ReLU zeros do that).
  tied = jnp.asarray(rng.integers(0, 3, size=(3,) + shape), jnp.float32)
  relu = jnp.maximum(_x(shape, n=3), 0.0)
  for x in (tied, relu, _x(shape, n=3)):
    y = _flax_pool(x)
    np.testing.assert_array_equal(layers.max_pool_2x2(x), y)
    g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    np.testing.assert_array_equal(_pool_grads(layers.max_pool_2x2, x, g),
                                  _pool_grads(_flax_pool, x, g))


def test_max_pool_gradient_goes_to_the_first_maximum():
  x = jnp.asarray([[1.0, 1.0], [1.0, 1.0]]).reshape(1, 2, 2, 1)
  grad = jax.grad(lambda x: jnp.sum(layers.max_pool_2x2(x)))(x)
  np.testing.assert_array_equal(grad.reshape(2, 2), [[1.0, 0.0], [0.0, 0.0]])
  x = jnp.asarray([[0.0, 2.0], [2.0, 1.0]]).reshape(1, 2, 2, 1)
  grad = jax.grad(lambda x: jnp.sum(layers.max_pool_2x2(x)))(x)
  np.testing.assert_array_equal(grad.reshape(2, 2), [[0.0, 1.0], [0.0, 0.0]])


def test_max_pool_gradients_under_vmap_and_inside_scan():
  xs = jnp.asarray(np.random.default_rng(1).integers(0, 4, size=(3, 2, 4, 8, 8, 2)),
                   jnp.float32)

  def run(pool):
    def body(acc, x):
      return acc + jax.grad(lambda x: jnp.sum(pool(x) ** 2))(x), None
    return jax.jit(jax.vmap(lambda x: jax.lax.scan(body, jnp.zeros_like(x[0]), x)[0]))(xs)

  np.testing.assert_array_equal(run(layers.max_pool_2x2), run(_flax_pool))


# -- the models take the layers as fields -------------------------------------------------

@pytest.mark.parametrize("name, shape", [("mnist_cnn", (28, 28, 1)), ("cifar_cnn", (32, 32, 3)),
                                         ("lenet5", (32, 32, 3))])
def test_models_with_the_fast_layers_have_flax_gradients(name, shape):
  x = _x(shape, n=3)
  y = jnp.arange(3) % 10
  flax_model = models.get_model(name, conv=nn.Conv, pool=_flax_pool)
  variables = flax_model.init(jax.random.PRNGKey(0), x)

  def grads(model):
    def loss(params):
      logits = model.apply({"params": params}, x)
      return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(3), y])
    return jax.jit(jax.grad(loss))(variables["params"])

  ref = grads(flax_model)
  for impl in ("canonical", "im2col"):
    got = grads(models.get_model(name, conv_impl=impl))
    for a, b in zip(jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(got), strict=True):
      np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5, err_msg=impl)


def test_resnet_takes_the_conv_and_keeps_its_parameters():
  tiny = dict(num_filters=4, stage_sizes=(1, 1), norm="none")
  x = _x((8, 8, 3), n=2)
  ref = models.ResNet18(conv=nn.Conv, **tiny)
  variables = ref.init(jax.random.PRNGKey(0), x)
  for impl in ("canonical", "im2col"):
    model = models.ResNet18(conv_impl=impl, **tiny)
    same = jax.tree.map(np.array_equal, variables, model.init(jax.random.PRNGKey(0), x))
    assert all(jax.tree_util.tree_leaves(same))

    def grads(m):
      return jax.jit(jax.grad(lambda p: jnp.sum(m.apply({"params": p}, x) ** 2)))(
          variables["params"])

    for a, b in zip(jax.tree_util.tree_leaves(grads(ref)),
                    jax.tree_util.tree_leaves(grads(model)), strict=True):
      np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5, err_msg=impl)


def test_default_layers_are_chosen_per_backend():
  assert models.default_conv_impl("cpu") == "canonical"
  assert models.default_conv_impl("gpu") == "im2col"
  assert models.default_conv_impl("tpu") == "im2col"
  x = _x((28, 28, 1))
  seen = []

  def record(next_fun, args, kwargs, context):
    if context.method_name == "__call__":  # not the layers' helper methods
      seen.append(type(context.module))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(functools.partial(models.MnistCNN().init, train=False),
                   jax.random.PRNGKey(0), x)
  convs = [c for c in seen if c in set(models.CONVS.values())]
  assert convs == [models.CONVS[models.default_conv_impl()]]
