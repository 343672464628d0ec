"""lrjax.models: architectures of the reference documents, counted and exercised."""

import functools
import inspect
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrjax import models

# Hand counts (weights + biases):
# MnistCNN: conv 3*3*1*20 + 20 = 200; fc1 3380*128 + 128 = 432_768; fc2 128*10 + 10 = 1_290.
MNIST_CNN_PARAMS = 200 + 432_768 + 1_290
# CifarCNN: 3*3*3*16+16, 3*3*16*32+32, 3*3*32*64+64, 1024*500+500, 500*10+10.
CIFAR_CNN_PARAMS = 448 + 4_640 + 18_496 + 512_500 + 5_010
# LeNet5: 5*5*3*6+6, 5*5*6*16+16, 400*120+120, 120*84+84, 84*10+10.
LENET5_PARAMS = 456 + 2_416 + 48_120 + 10_164 + 850


def _resnet18_params():
  """CIFAR ResNet-18 by hand: bias-free convs, BatchNorm scale + bias, Dense 512->10."""
  conv = lambda k, cin, cout: k * k * cin * cout
  bn = lambda c: 2 * c
  total = conv(3, 3, 64) + bn(64)
  cin = 64
  for cout in (64, 128, 256, 512):
    for _ in range(2):  # two blocks per stage
      total += conv(3, cin, cout) + bn(cout) + conv(3, cout, cout) + bn(cout)
      if cin != cout:
        total += conv(1, cin, cout) + bn(cout)
      cin = cout
  return total + 512 * 10 + 10


RESNET18_PARAMS = 11_173_962

TINY_RESNET = dict(num_filters=4, stage_sizes=(1, 1, 1, 1))

# name -> (kwargs, example shape): the documents' input shapes; a tiny ResNet.
CASES = {
    "mnist_cnn": ({}, (28, 28, 1)),
    "cifar_cnn": ({}, (32, 32, 3)),
    "lenet5": ({}, (32, 32, 3)),
    "resnet18": (dict(TINY_RESNET, dropout_rate=0.2), (16, 16, 3)),
    "linear": ({}, (13,)),
    "logistic": ({}, (28, 28, 1)),
}


def _key(seed):
  # XLA on CPU compiles the default threefry generator slowly (~10 s for a tiny ResNet
  # init on 2 cores); the 'rbg' generator keeps each compiled init to about a second.
  return jax.random.key(seed, impl="rbg")


def _batch(shape, n=4, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(n,) + shape), jnp.float32)


@functools.cache
def _jitted_init(model):
  return jax.jit(functools.partial(model.init, train=False))


@functools.cache
def _init_cached(model, shape, seed):
  return _jitted_init(model)(_key(seed), jnp.zeros((1,) + shape))


def _init(model, x, seed=0):
  """Variables of ``model`` for inputs like ``x``: one compiled init per model, cached."""
  return _init_cached(model, tuple(x.shape[1:]), seed)


def _apply(model, **kwargs):
  """model.apply(variables, x, **kwargs) compiled once (one XLA program, not op by op)."""
  return jax.jit(functools.partial(model.apply, **kwargs))


def _abstract_init(model, x):
  """Shapes of the variables, nothing computed (not cached: they are tracers inside)."""
  return jax.eval_shape(functools.partial(model.init, train=False), _key(0), x)


def _abstract_params(model, shape):
  return _abstract_init(model, jnp.zeros((1,) + shape))["params"]


# -- parameter counts (forward passes: tests/test_model_reference.py) ------------------

@pytest.mark.parametrize("name, shape, expected", [
    ("mnist_cnn", (28, 28, 1), MNIST_CNN_PARAMS),
    ("cifar_cnn", (32, 32, 3), CIFAR_CNN_PARAMS),
    ("lenet5", (32, 32, 3), LENET5_PARAMS),
    ("resnet18", (32, 32, 3), _resnet18_params()),  # the hand count above
    ("logistic", (28, 28, 1), 784 * 10 + 10),
    ("linear", (13,), 14),
])
def test_parameter_counts(name, shape, expected):
  assert models.count_params(_abstract_params(models.get_model(name), shape)) == expected


def test_flatten_sizes_of_the_report():
  mnist = _abstract_params(models.MnistCNN(), (28, 28, 1))
  assert mnist["conv1"]["kernel"].shape == (3, 3, 1, 20)
  assert mnist["fc1"]["kernel"].shape == (3380, 128)  # 13 * 13 * 20
  assert mnist["fc2"]["kernel"].shape == (128, 10)
  cifar = _abstract_params(models.CifarCNN(), (32, 32, 3))
  assert [cifar[f"conv{i}"]["kernel"].shape[-1] for i in (1, 2, 3)] == [16, 32, 64]
  assert cifar["fc1"]["kernel"].shape == (1024, 500)  # 4 * 4 * 64
  assert cifar["fc2"]["kernel"].shape == (500, 10)


def _conv_outputs(model, shape, names):
  x = jnp.zeros((2,) + shape)
  variables = _abstract_init(model, x)
  _, state = jax.eval_shape(lambda v: model.apply(v, x, capture_intermediates=True,
                                                  mutable=["intermediates"]), variables)
  return [state["intermediates"][n]["__call__"][0].shape for n in names]


def test_intermediate_shapes_of_the_report():
  assert _conv_outputs(models.MnistCNN(), (28, 28, 1), ["conv1"]) == [(2, 26, 26, 20)]
  assert _conv_outputs(models.CifarCNN(), (32, 32, 3), ["conv1", "conv2", "conv3"]) == [
      (2, 32, 32, 16), (2, 16, 16, 32), (2, 8, 8, 64)]  # SAME convs, each pooled after


def test_resnet18_full_shape_and_dropout_placement():
  model = models.ResNet18(dropout_rate=0.3)
  x = jnp.zeros((2, 32, 32, 3))
  variables = _abstract_init(model, x)
  assert models.count_params(variables["params"]) == RESNET18_PARAMS  # dropout: no params
  assert set(variables) == {"params", "batch_stats"}
  out = jax.eval_shape(
      lambda v: model.apply(v, x, train=True, rngs={"dropout": _key(0)},
                            mutable=["batch_stats"]), variables)
  assert out[0].shape == (2, 10)
  # Dropout modules right after stages 2 and 4 only.
  names = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.Dropout) or (
        isinstance(context.module, models.BasicBlock) and context.method_name == "__call__"):
      names.append(context.module.name)
    return next_fun(*args, **kwargs)

  tiny = models.ResNet18(dropout_rate=0.3, **TINY_RESNET)
  xt = jnp.zeros((1, 8, 8, 3))
  with nn.intercept_methods(record):
    jax.eval_shape(lambda: tiny.init(_key(0), xt, train=False))
  assert names == ["stage1_block1", "stage2_block1", "Dropout_0", "stage3_block1",
                   "stage4_block1", "Dropout_1"]


# -- train / eval behaviour --------------------------------------------------------------

@pytest.mark.parametrize("name", ["cifar_cnn", "resnet18"])
def test_dropout_only_in_train_mode(name):
  model = models.get_model(name, **CASES[name][0])
  assert model.dropout_rate > 0
  x = _batch(CASES[name][1])
  variables = _init(model, x)
  has_stats = "batch_stats" in variables

  @functools.partial(jax.jit, static_argnums=1)
  def run(seed, train):
    out = model.apply(variables, x, train=train, rngs={"dropout": _key(seed)},
                      mutable=["batch_stats"] if has_stats and train else False)
    return out[0] if has_stats and train else out

  a, b, a_again = run(1, True), run(2, True), run(1, True)
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(a, a_again)
  np.testing.assert_array_equal(run(1, False), run(2, False))
  jax.eval_shape(lambda v: model.apply(v, x), variables)  # eval mode needs no rng
  with pytest.raises(Exception, match="dropout"):  # train mode does
    jax.eval_shape(lambda v: model.apply(v, x, train=True, mutable=True), variables)


def test_cifar_dropout_rate_is_a_field():
  assert models.CifarCNN().dropout_rate == 0.25
  x = _batch((32, 32, 3))
  variables = _init(models.CifarCNN(), x)  # dropout has no parameters
  no_dropout = models.CifarCNN(dropout_rate=0.0)
  train = _apply(no_dropout, train=True, rngs={"dropout": _key(0)})(variables, x)
  np.testing.assert_allclose(train, _apply(no_dropout)(variables, x), rtol=1e-5, atol=1e-6)


def test_resnet_batch_stats_train_and_eval():
  # No dropout: train and eval outputs can then differ only through BatchNorm.
  model = models.get_model("resnet18", **TINY_RESNET)
  assert model.dropout_rate == 0.0
  x = _batch(CASES["resnet18"][1]) * 3.0 + 1.0
  variables = _init(model, x)
  assert set(variables) == {"params", "batch_stats"}
  out, updated = _apply(model, train=True, mutable=["batch_stats"],
                        rngs={"dropout": _key(0)})(variables, x)
  assert out.shape == (4, 10)
  before = jax.tree_util.tree_leaves(variables["batch_stats"])
  after = jax.tree_util.tree_leaves(updated["batch_stats"])
  assert len(before) == len(after) > 0
  assert all(not np.allclose(b, a) for b, a in zip(before, after, strict=True))
  # Eval uses the running averages: deterministic, differs from batch statistics.
  new_vars = {"params": variables["params"], **updated}
  evaluate = _apply(model, train=False)
  eval_out = evaluate(new_vars, x)
  np.testing.assert_array_equal(eval_out, evaluate(new_vars, x))
  assert not np.allclose(eval_out, out)
  with pytest.raises(Exception, match="batch_stats"):  # train mode needs it mutable
    jax.eval_shape(lambda v: model.apply(v, x, train=True, rngs={"dropout": _key(0)}),
                   variables)


@pytest.mark.parametrize("norm", ["group", "none"])
def test_resnet_without_batch_norm(norm):
  model = models.ResNet18(norm=norm, **TINY_RESNET)
  x = _batch((8, 8, 3))
  variables = _init(model, x)
  assert set(variables) == {"params"}
  assert ("bias" in variables["params"]["stage1_block1"]["conv1"]) == (norm == "none")
  # train and eval agree: no batch statistics (values: tests/test_model_reference.py)
  np.testing.assert_allclose(_apply(model, train=True)(variables, x),
                             _apply(model, train=False)(variables, x), rtol=1e-6)


# -- gradients and vmap over variants ---------------------------------------------------

def _forward(model, variables, x, key):
  """Train-mode logits (BatchNorm statistics updated and dropped)."""
  if "batch_stats" in variables:
    return model.apply(variables, x, train=True, rngs={"dropout": key},
                       mutable=["batch_stats"])[0]
  return model.apply(variables, x, train=True, rngs={"dropout": key})


@pytest.mark.parametrize("name", list(CASES))
def test_gradients_are_finite(name):
  model = models.get_model(name, **CASES[name][0])
  x = _batch(CASES[name][1])
  y = jnp.arange(4, dtype=jnp.float32) if name == "linear" else jnp.arange(4) % 10
  variables = _init(model, x)
  rest = {k: v for k, v in variables.items() if k != "params"}

  @jax.jit
  def loss_and_grad(params):
    def loss_fn(params):
      out = _forward(model, {"params": params, **rest}, x, _key(3))
      if name == "linear":
        return jnp.mean((out - y) ** 2)
      return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
    return jax.value_and_grad(loss_fn)(params)

  loss, grads = loss_and_grad(variables["params"])
  assert np.isfinite(loss)
  leaves = jax.tree_util.tree_leaves(grads)
  assert all(np.all(np.isfinite(g)) for g in leaves)
  assert all(np.any(g != 0) for g in leaves)  # every layer is reached


@pytest.mark.parametrize("name, kwargs", [(n, CASES[n][0]) for n in CASES] + [
    ("cifar_cnn", {"conv_impl": "im2col"})])
def test_vmap_over_parameter_sets_matches_loop(name, kwargs):
  model = models.get_model(name, **kwargs)
  x = _batch(CASES[name][1], n=2)
  stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves),
                         *[_init(model, x, seed=seed) for seed in (0, 1, 2)])
  # threefry: unlike 'rbg', its bits do not change under vmap (same dropout masks).
  dropout_keys = jax.random.split(jax.random.key(8), 3)
  forward = jax.jit(lambda v, k: _forward(model, v, x, k))
  vmapped = jax.jit(jax.vmap(lambda v, k: _forward(model, v, x, k)))(stacked, dropout_keys)
  for i in range(3):
    variables = jax.tree.map(lambda leaf, i=i: leaf[i], stacked)
    np.testing.assert_allclose(vmapped[i], forward(variables, dropout_keys[i]),
                               rtol=1e-3, atol=1e-4)
  assert not np.allclose(vmapped[0], vmapped[1], rtol=1e-2)  # distinct variants


@pytest.mark.parametrize("name", ["cifar_cnn", "lenet5"])  # SAME 3x3, VALID 5x5
def test_im2col_conv_impl_is_interchangeable(name):
  x = _batch(CASES[name][1], n=2)
  xla, im2col = models.get_model(name), models.get_model(name, conv_impl="im2col")
  variables = _init(xla, x)
  same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), variables, _init(im2col, x))
  assert all(jax.tree_util.tree_leaves(same))
  np.testing.assert_allclose(_apply(im2col)(variables, x), _apply(xla)(variables, x),
                             rtol=1e-4, atol=1e-5)


# -- registry, validation, cost -----------------------------------------------------------

def test_registry():
  assert set(models.MODELS) == {"mnist_cnn", "cifar_cnn", "lenet5", "resnet18", "linear",
                                "logistic"}
  assert isinstance(models.get_model("MNIST-CNN"), models.MnistCNN)
  assert models.get_model("resnet18", dropout_rate=0.1).dropout_rate == 0.1
  with pytest.raises(ValueError, match="`name`"):
    models.get_model("vgg16")
  with pytest.raises(ValueError, match="`dropout`"):
    models.get_model("cifar_cnn", dropout=0.5)


@pytest.mark.parametrize("make, arg", [
    (lambda: models.CifarCNN(dropout_rate=1.0), "dropout_rate"),
    (lambda: models.ResNet18(dropout_rate=-0.1), "dropout_rate"),
    (lambda: models.MnistCNN(conv_impl="cudnn"), "conv_impl"),
    (lambda: models.ResNet18(norm="layer"), "norm"),
    (lambda: models.ResNet18(stage_sizes=(2, 0)), "stage_sizes"),
    (lambda: models.LogisticRegression(num_classes=0), "num_classes"),
])
def test_invalid_options_name_the_argument(make, arg):
  with pytest.raises(ValueError, match=f"`{arg}`"):
    make()


# -- the injected layers: fields of lrjax.models.conv.ConvLayers / ConvPoolLayers --------

CONV_MODELS = {  # name -> (example shape, parameter names, the model's layer fields)
    "mnist_cnn": ((28, 28, 1), {"conv1", "fc1", "fc2"}, ("conv", "conv_impl", "pool")),
    "cifar_cnn": ((32, 32, 3), {"conv1", "conv2", "conv3", "fc1", "fc2"},
                  ("conv", "conv_impl", "pool")),
    "lenet5": ((32, 32, 3), {"conv1", "conv2", "fc1", "fc2", "fc3"},
               ("conv", "conv_impl", "pool")),
    "resnet18": ((8, 8, 3), {"stem_conv", "stem_norm", "stage1_block1", "stage2_block1", "fc"},
                 ("conv", "conv_impl")),
}


@pytest.mark.parametrize("name", sorted(CONV_MODELS))
def test_layer_fields_are_keyword_only_checked_and_keep_the_parameters(name):
  shape, names, layer_fields = CONV_MODELS[name]
  cls = models.MODELS[name]
  kwargs = dict(num_filters=4, stage_sizes=(1, 1)) if name == "resnet18" else {}
  # the model's own fields keep their positions; the layers are keyword-only
  assert list(inspect.signature(cls).parameters)[0] == "num_classes"
  assert cls(5, **kwargs).num_classes == 5
  kinds = {n: p.kind for n, p in inspect.signature(cls).parameters.items()}
  assert all(kinds[f] is inspect.Parameter.KEYWORD_ONLY for f in layer_fields)
  assert {f for f, k in kinds.items() if k is inspect.Parameter.KEYWORD_ONLY} == set(layer_fields)
  with pytest.raises(ValueError, match="`conv_impl`"):
    cls(conv_impl="cudnn", **kwargs)
  for layers in ({}, {"conv_impl": "im2col"}, {"conv_impl": "xla"}, {"conv": nn.Conv}):
    params = _abstract_params(cls(**kwargs, **layers), shape)
    assert set(params) == names, layers


@pytest.mark.parametrize("name", ["mnist_cnn", "cifar_cnn", "lenet5"])
def test_the_pool_field_is_the_pool_used(name):
  shape = CONV_MODELS[name][0]
  pooled = []

  def pool(x):
    pooled.append(x.shape)
    return nn.max_pool(x, (2, 2), strides=(2, 2))

  _abstract_params(models.get_model(name, pool=pool), shape)
  assert len(pooled) == {"mnist_cnn": 1, "cifar_cnn": 3, "lenet5": 2}[name]


def test_count_params_counts_arrays_and_shapes():
  tree = {"a": jnp.zeros((3, 4)), "b": [jnp.zeros(5), jax.ShapeDtypeStruct((2, 2), jnp.float32)]}
  assert models.count_params(tree) == 12 + 5 + 4


def test_flops_per_example():
  model = models.MnistCNN()
  # 2 x multiply-adds: conv 26*26*20 outputs x 9 taps, fc1 3380 x 128, fc2 128 x 10.
  analytic = 2 * (26 * 26 * 20 * 9 + 3380 * 128 + 128 * 10)
  assert models.flops_per_example(model, (28, 28, 1), method="analytic") == analytic
  assert models.flops_per_example(model, (28, 28, 1), method="analytic",
                                  batch_size=4) == analytic
  xla = models.flops_per_example(model, (28, 28, 1))
  assert analytic <= xla <= 1.2 * analytic  # plus bias adds, pooling, ReLU
  assert models.flops_per_example(models.LinearRegression(), (13,), method="analytic") == 26
  with pytest.raises(ValueError, match="`method`"):
    models.flops_per_example(model, (28, 28, 1), method="guess")


def test_resnet18_flops_are_the_known_cifar_figure():
  # CIFAR ResNet-18: ~0.56 G multiply-adds per 32x32 image.
  flops = models.flops_per_example(models.ResNet18(), (32, 32, 3), method="analytic")
  assert math.isclose(flops / 2, 0.556e9, rel_tol=0.01)
