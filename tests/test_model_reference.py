"""Every model's forward pass against an independent numpy computation (float64).

The numpy layers below are written from the architectures' descriptions (the report's
appendix 6.2, LeNet-5, CIFAR ResNet-18), not from Flax: convolution as a sum over the
kernel taps, max pooling, ReLU/ELU, dense, BatchNorm.  The Flax models are run with
their own parameters (or, for the full-size ResNet-18, parameters and BatchNorm
statistics filled from a numpy generator) and must agree to float32 rounding.  The
ResNet's gradients are checked against central finite differences of the numpy loss
on a few entries.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrjax import models

RTOL, ATOL = 1e-4, 1e-5


# ------------------------------------------------------------------- numpy layers

def conv(x, kernel, bias=None, *, stride=1, pad=0):
  """NHWC convolution, kernel (kh, kw, cin, cout), symmetric zero padding ``pad``."""
  kh, kw = kernel.shape[:2]
  x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  h = (x.shape[1] - kh) // stride + 1
  w = (x.shape[2] - kw) // stride + 1
  out = np.zeros((x.shape[0], h, w, kernel.shape[3]))
  for i in range(kh):
    for j in range(kw):
      patch = x[:, i:i + stride * (h - 1) + 1:stride, j:j + stride * (w - 1) + 1:stride, :]
      out += patch @ kernel[i, j]
  return out if bias is None else out + bias


def max_pool(x):
  """2x2, stride 2, floor."""
  n, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def relu(x):
  return np.maximum(x, 0.0)


def elu(x):
  return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def dense(x, p):
  return x @ p["kernel"] + p["bias"]


def flat(x):
  return x.reshape(x.shape[0], -1)


def as64(tree):
  return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


# --------------------------------------------------------- the small models, in numpy

def mnist_cnn(p, x):
  """d20 (3x3 conv VALID, maxpool 2, ReLU), f3380-128, ReLU, f128-10."""
  x = relu(max_pool(conv(x, p["conv1"]["kernel"], p["conv1"]["bias"])))
  return dense(relu(dense(flat(x), p["fc1"])), p["fc2"])


def cifar_cnn(p, x):
  """d16, d32, d64 (3x3 conv pad 1, ELU, maxpool 2), f1024-500, ELU, f500-10."""
  for name in ("conv1", "conv2", "conv3"):
    x = max_pool(elu(conv(x, p[name]["kernel"], p[name]["bias"], pad=1)))
  return dense(elu(dense(flat(x), p["fc1"])), p["fc2"])


def lenet5(p, x):
  """(5x5 conv VALID, ReLU, maxpool 2) x 2, 120, ReLU, 84, ReLU, 10."""
  for name in ("conv1", "conv2"):
    x = max_pool(relu(conv(x, p[name]["kernel"], p[name]["bias"])))
  x = relu(dense(flat(x), p["fc1"]))
  return dense(relu(dense(x, p["fc2"])), p["fc3"])


def linear(p, x):
  return dense(flat(x), p["linear"])[:, 0]


def logistic(p, x):
  return dense(flat(x), p["linear"])


SMALL = {  # name -> (numpy forward, input shape, model kwargs)
    "mnist_cnn": (mnist_cnn, (28, 28, 1), {}),
    "mnist_cnn/im2col": (mnist_cnn, (28, 28, 1), {"conv_impl": "im2col"}),
    "cifar_cnn": (cifar_cnn, (32, 32, 3), {}),
    "lenet5": (lenet5, (32, 32, 3), {}),
    "lenet5/im2col": (lenet5, (32, 32, 3), {"conv_impl": "im2col"}),
    "linear": (linear, (13,), {}),
    "logistic": (logistic, (28, 28, 1), {}),
}


def _input(shape, n=2, seed=0):
  return np.random.default_rng(seed).normal(size=(n,) + shape).astype(np.float32)


@pytest.mark.parametrize("case", list(SMALL))
def test_small_models_match_a_numpy_forward_pass(case):
  forward, shape, kwargs = SMALL[case]
  model = models.get_model(case.split("/")[0], **kwargs)
  x = _input(shape)
  # 'rbg' keys: XLA on CPU compiles threefry initialisers of large kernels slowly.
  variables = jax.jit(functools.partial(model.init, train=False))(
      jax.random.key(1, impl="rbg"), x)
  out = jax.jit(functools.partial(model.apply, train=False))(variables, x)
  want = forward(as64(variables["params"]), x.astype(np.float64))
  assert out.shape == want.shape
  np.testing.assert_allclose(out, want, rtol=RTOL, atol=ATOL)
  assert np.std(want) > 1e-3  # not a degenerate (all-zero) comparison


# -------------------------------------------------------------------- ResNet in numpy

def batch_norm(x, p, stats, *, train, eps=1e-5):
  """Eval: running averages; train: biased batch statistics over N, H, W."""
  if train:
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  else:
    mean, var = stats["mean"], stats["var"]
  return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def group_norm(x, p, stats=None, *, train=False, eps=1e-5):
  """gcd(32, C) groups; statistics over H, W and the group's channels."""
  del stats, train
  n, h, w, c = x.shape
  g = np.gcd(32, c)
  xg = x.reshape(n, h, w, g, c // g)
  mean = xg.mean(axis=(1, 2, 4), keepdims=True)
  var = xg.var(axis=(1, 2, 4), keepdims=True)
  return ((xg - mean) / np.sqrt(var + eps)).reshape(x.shape) * p["scale"] + p["bias"]


def no_norm(x, p=None, stats=None, *, train=False):
  return x


def _conv(p, x, **kw):
  return conv(x, p["kernel"], p.get("bias"), **kw)


def basic_block(p, s, x, *, strides, train, norm=batch_norm):
  y = relu(norm(_conv(p["conv1"], x, stride=strides, pad=1), p.get("norm1"), s.get("norm1"),
                train=train))
  y = norm(_conv(p["conv2"], y, pad=1), p.get("norm2"), s.get("norm2"), train=train)
  if "shortcut_conv" in p:
    x = norm(_conv(p["shortcut_conv"], x, stride=strides), p.get("shortcut_norm"),
             s.get("shortcut_norm"), train=train)
  return relu(x + y)


def resnet(p, s, x, stage_sizes, *, train=False, norm=batch_norm):
  """CIFAR ResNet: 3x3 stem, stages of BasicBlocks (stride 2 from stage 2), mean, dense."""
  x = relu(norm(_conv(p["stem_conv"], x, pad=1), p.get("stem_norm"), s.get("stem_norm"),
                train=train))
  for i, blocks in enumerate(stage_sizes):
    for j in range(blocks):
      name = f"stage{i + 1}_block{j + 1}"
      x = basic_block(p[name], s.get(name, {}), x, strides=2 if i > 0 and j == 0 else 1,
                      train=train, norm=norm)
  return dense(x.mean(axis=(1, 2)), p["fc"])


def _random_variables(model, shape, seed):
  """Parameters and BatchNorm statistics from numpy (no Flax initialiser involved)."""
  abstract = jax.eval_shape(functools.partial(model.init, train=False),
                            jax.random.PRNGKey(0), jnp.zeros((1,) + shape))
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = jax.tree_util.keystr(path)
    if "var" in name:
      return rng.uniform(0.5, 2.0, leaf.shape).astype(np.float32)
    if "scale" in name:
      return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
    fan_in = np.prod(leaf.shape[:-1]) if leaf.ndim > 1 else 4.0
    return (rng.normal(size=leaf.shape) / np.sqrt(fan_in)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(fill, abstract)


def test_full_size_resnet18_matches_numpy_in_eval_mode():
  """The real configuration (64 filters, 2-2-2-2 blocks, projection shortcuts) on small
  inputs, with running statistics that are not the identity."""
  model = models.ResNet18()
  variables = _random_variables(model, (8, 8, 3), seed=0)
  x = _input((8, 8, 3))
  out = jax.jit(functools.partial(model.apply, train=False))(variables, x)
  want = resnet(as64(variables["params"]), as64(variables["batch_stats"]),
                x.astype(np.float64), (2, 2, 2, 2))
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
  assert np.std(want) > 1e-2


@pytest.mark.parametrize("norm, forward", [("group", group_norm), ("none", no_norm)])
def test_resnet_without_batch_norm_matches_numpy(norm, forward):
  model = models.ResNet18(norm=norm, num_filters=8, stage_sizes=(1, 2))
  variables = _random_variables(model, (8, 8, 3), seed=3)
  x = _input((8, 8, 3))
  out = jax.jit(functools.partial(model.apply, train=True))(variables, x)
  want = resnet(as64(variables["params"]), {}, x.astype(np.float64), (1, 2), norm=forward)
  np.testing.assert_allclose(out, want, rtol=RTOL, atol=ATOL)


TINY = dict(num_filters=4, stage_sizes=(1, 1, 1))


@pytest.fixture(scope="module")
def tiny_resnet():
  model = models.ResNet18(**TINY)
  variables = _random_variables(model, (8, 8, 3), seed=1)
  x = _input((8, 8, 3), n=3, seed=2)
  y = np.array([1, 4, 7])

  @jax.jit
  def grads(params):
    def loss(params):
      logits, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                              x, train=True, mutable=["batch_stats"])
      return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
    return jax.grad(loss)(params)

  return model, variables, x, y, grads(variables["params"])


def test_tiny_resnet_train_mode_uses_batch_statistics_and_updates_running_ones(tiny_resnet):
  model, variables, x, _, _ = tiny_resnet
  out, updated = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))(
      variables, x)
  p, s = as64(variables["params"]), as64(variables["batch_stats"])
  np.testing.assert_allclose(out, resnet(p, s, x.astype(np.float64), TINY["stage_sizes"],
                                         train=True), rtol=RTOL, atol=ATOL)
  # Running mean <- 0.9 mean + 0.1 batch mean (PyTorch's momentum 0.1), for the stem.
  stem = conv(x.astype(np.float64), p["stem_conv"]["kernel"], pad=1)
  np.testing.assert_allclose(updated["batch_stats"]["stem_norm"]["mean"],
                             0.9 * s["stem_norm"]["mean"] + 0.1 * stem.mean(axis=(0, 1, 2)),
                             rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(updated["batch_stats"]["stem_norm"]["var"],
                             0.9 * s["stem_norm"]["var"] + 0.1 * stem.var(axis=(0, 1, 2)),
                             rtol=RTOL, atol=ATOL)


def _np_loss(model_params, stats, x, y):
  logits = resnet(model_params, stats, x, TINY["stage_sizes"], train=True)
  logits = logits - logits.max(axis=1, keepdims=True)
  logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  return -logp[np.arange(len(y)), y].mean()


@pytest.mark.parametrize("leaf", [("stem_conv", "kernel", (1, 2, 0, 3)),
                                  ("stage2_block1", "conv2", "kernel", (0, 1, 3, 5)),
                                  ("stage3_block1", "shortcut_norm", "scale", (7,)),
                                  ("fc", "kernel", (9, 4))])
def test_tiny_resnet_gradients_match_finite_differences(tiny_resnet, leaf):
  _, variables, x, y, g = tiny_resnet
  *path, index = leaf
  for key in path:
    g = g[key]
  params, stats = as64(variables["params"]), as64(variables["batch_stats"])
  target = params
  for key in path:
    target = target[key]
  h = 1e-5
  target[index] += h
  up = _np_loss(params, stats, x.astype(np.float64), y)
  target[index] -= 2 * h
  down = _np_loss(params, stats, x.astype(np.float64), y)
  numeric = (up - down) / (2 * h)
  assert abs(numeric) > 1e-4  # an entry that matters
  np.testing.assert_allclose(np.asarray(g)[index], numeric, rtol=2e-3, atol=1e-6)
