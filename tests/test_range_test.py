"""`lrjax.train.range_test` / `range_test_vectorized`: the LR range test as a library.

References: the closed form of the ramp (the range-test document), a numpy EMA written
here (fastai's AvgSmoothLoss), fastai's ``valley`` / ``steep`` / ``minimum`` transcribed
here as plain loops, curves with suggestions computed by hand, and K separate
constant-rate runs for the vectorized test.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrjax.data import synthetic
from lrjax.train import range_finder as rf
from lrjax.train import range_test, range_test_vectorized


class TinyMLP(nn.Module):
  @nn.compact
  def __call__(self, x, *, train):
    x = nn.relu(nn.Dense(16)(x.reshape((x.shape[0], -1))))
    x = nn.Dropout(0.1, deterministic=not train)(x)
    return nn.Dense(10)(x)


class TinyCNN(nn.Module):
  @nn.compact
  def __call__(self, x, *, train):
    x = nn.relu(nn.Conv(4, (3, 3))(x))
    x = nn.avg_pool(x, (2, 2), (2, 2))
    return nn.Dense(10)(x.reshape((x.shape[0], -1)))


def sgd(lr):
  return optax.sgd(lr, momentum=0.9)


@pytest.fixture(scope="module")
def data():
  return synthetic("tiny", num_train=320, num_test=40, seed=3)


# -- the pure curve pieces -------------------------------------------------------------

def numpy_ema(losses, beta, stop_factor):
  """fastai: AvgSmoothLoss (lerp + bias correction) and LRFinder's 4x-best stop."""
  smoothed, kept, avg, best, stopped = [], [], 0.0, np.inf, False
  for i, loss in enumerate(losses):
    avg = beta * avg + (1 - beta) * loss
    s = avg / (1 - beta ** (i + 1))
    best = min(best, s)
    stopped = stopped or not np.isfinite(s) or (stop_factor is not None
                                                 and s > stop_factor * best)
    smoothed.append(s)
    kept.append(not stopped)
  return np.array(smoothed), np.array(kept)


def test_smooth_equals_numpy_ema_under_jit():
  rng = np.random.default_rng(0)
  losses = np.concatenate([2.0 - np.linspace(0, 1.5, 60) + 0.1 * rng.normal(size=60),
                           np.linspace(0.5, 20.0, 30), [np.nan, 1.0]]).astype(np.float32)
  for beta, stop in ((0.98, 4.0), (0.9, None), (0.0, 4.0)):
    smooth = functools.partial(rf.smooth, beta=beta, stop_factor=stop)
    got_s, got_k = jax.jit(smooth)(losses)
    want_s, want_k = numpy_ema(losses.astype(np.float64), beta, stop)
    fin = np.isfinite(want_s)
    np.testing.assert_allclose(np.asarray(got_s)[fin], want_s[fin], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(got_k), want_k)
    assert not want_k[-1]  # the NaN, and everything after it, is masked
  # beta = 0: the losses themselves
  s, _ = rf.smooth(losses[:10], beta=0.0)
  np.testing.assert_array_equal(np.asarray(s), losses[:10])


def test_default_smoothing_does_not_lag_a_100_step_test():
  """A 100-step range-test curve (loss falling then exploding with the log rate, plus
  noise): the default EMA equals the numpy reference and its minimum sits at the true
  one, where fastai's 0.98 trails it by several steps."""
  n = 100
  log_lr = np.linspace(-7, 1, n)
  true = 2.3 - 1.8 / (1 + np.exp(-3 * (log_lr + 3.5))) + np.where(
      log_lr > -1.5, 3 * (log_lr + 1.5) ** 2, 0.0)
  losses = (true + 0.05 * np.random.default_rng(0).normal(size=n)).astype(np.float32)
  beta = rf.default_smoothing(n)
  assert beta == pytest.approx(1 - 1 / (0.05 * n))  # a 5-step time constant: 0.8
  got, kept = jax.jit(lambda l: rf.smooth(l, beta=beta, stop_factor=None))(losses)
  want, _ = numpy_ema(losses.astype(np.float64), beta, None)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
  assert np.asarray(kept).all()
  lag = abs(int(np.argmin(np.asarray(got))) - int(np.argmin(true)))
  fastai_lag = int(np.argmin(numpy_ema(losses, 0.98, None)[0])) - int(np.argmin(true))
  assert lag <= 2 and fastai_lag >= 5, (lag, fastai_lag)
  assert rf.default_smoothing(20) == 0.0 and rf.default_smoothing(1000) == 0.98 == \
      rf.default_smoothing(5000)


# A curve whose suggestions are computed by hand: lr doubles every point; the 4x stop
# ends it at point 10 (5.0 > 4 x 0.85).
CURVE_LRS = 1e-3 * 2.0 ** np.arange(12)
CURVE = np.array([2.0, 2.0, 1.95, 1.9, 1.85, 1.8, 1.2, 0.9, 0.85, 1.0, 5.0, np.nan])


def test_suggest_on_a_known_curve():
  _, kept = rf.smooth(CURVE, beta=0.0)
  np.testing.assert_array_equal(np.asarray(kept), np.arange(12) < 10)
  got = jax.jit(rf.suggest)(CURVE_LRS, CURVE, kept)
  # minimum: lowest loss 0.85 at point 8 -> 0.256, / 10
  np.testing.assert_allclose(float(got.at_minimum), 0.256, rtol=1e-6)
  np.testing.assert_allclose(float(got.minimum), 0.0256, rtol=1e-6)
  # steep: the largest fall per (equal) log step is 1.8 -> 1.2, from point 5
  np.testing.assert_allclose(float(got.steep), 0.032, rtol=1e-6)
  # valley: longest strictly decreasing subsequence 0, 2..8 (length 8, ends at 8),
  # start = 8 - 8 = 0, L = 8 -> 0 + floor(8/3) + floor(8/6) = 3
  np.testing.assert_allclose(float(got.valley), 0.008, rtol=1e-6)
  # skipping the first two points: subsequence 2..8 (length 7), start 1, L 7 -> 1+2+1
  skipped = rf.suggest(CURVE_LRS, CURVE, kept, skip_start=2)
  np.testing.assert_allclose(float(skipped.valley), 0.016, rtol=1e-6)
  # skipping 3 at the end: points 0..6, minimum 1.2 at point 6
  end = rf.suggest(CURVE_LRS, CURVE, kept, skip_end=3)
  np.testing.assert_allclose(float(end.at_minimum), 0.064, rtol=1e-6)
  # slide, interval 3, threshold 0.03: np.gradient of points 0..9 is
  # [0, -.025, -.05, -.05, -.05, -.325, -.45, -.175, .05, .15]; the pairs (9, 6), (8, 5),
  # ... (5, 2) differ by more than 0.03, (4, 1) by 0.025 does not: the last moving
  # interval's left end is point 2
  slid = rf.suggest(CURVE_LRS, CURVE, kept, slide_lr_diff=3, slide_thresh=0.03)
  np.testing.assert_allclose(float(slid.slide), 0.004, rtol=1e-6)
  # an interval longer than the curve starts (and stays) at its first point
  np.testing.assert_allclose(float(got.slide), 0.001, rtol=1e-6)


def fastai_slide(lrs, losses, lr_diff=15, thresh=0.005):
  """fastai 2.7 callback/schedule.py `slide` (adjust_value 1), negative indices and all."""
  loss_grad = np.gradient(losses)
  r_idx = -1
  l_idx = r_idx - lr_diff
  local_min_lr = lrs[l_idx]
  while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
    local_min_lr = lrs[l_idx]
    r_idx -= 1
    l_idx -= 1
  return local_min_lr


def fastai_suggestions(lrs, losses):
  """fastai 2.7 callback/schedule.py `valley`, `steep`, `minimum`, as plain loops."""
  n = len(losses)
  max_start, max_end, lds = 0, 0, [1] * n
  for i in range(1, n):
    for j in range(0, i):
      if losses[i] < losses[j] and lds[i] < lds[j] + 1:
        lds[i] = lds[j] + 1
      if lds[max_end] < lds[i]:
        max_end = i
        max_start = max_end - lds[max_end]
  sections = (max_end - max_start) / 3
  valley = lrs[max_start + int(sections) + int(sections / 2)]
  grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
  return lrs[np.argmin(losses)] / 10, lrs[np.argmin(grads)], valley


def test_suggest_equals_fastai_loops_and_vmaps():
  rng = np.random.default_rng(1)
  lrs = np.geomspace(1e-5, 1.0, 40)
  curves = np.stack([np.cumsum(rng.normal(-0.02, 0.1, size=40)) + 3 for _ in range(4)])
  got = jax.jit(jax.vmap(rf.suggest, in_axes=(None, 0)))(lrs, curves)
  for k, curve in enumerate(curves):
    minimum, steep, valley = fastai_suggestions(lrs, curve)
    np.testing.assert_allclose(float(got.minimum[k]), minimum, rtol=1e-5)
    np.testing.assert_allclose(float(got.steep[k]), steep, rtol=1e-5)
    np.testing.assert_allclose(float(got.valley[k]), valley, rtol=1e-5)
  # slide on smooth curves (the gradients settle) and rough ones, several thresholds,
  # with fastai's skipped ends (lrs[n // 10:-5])
  smooth_curves = np.stack([3 - np.tanh(np.linspace(-3, 3, 40) + 0.3 * i)
                            + 0.01 * rng.normal(size=40) for i in range(3)])
  suggest = jax.jit(rf.suggest)  # the skips and the threshold traced: one compile
  for thresh in (0.005, 0.05, 0.2):
    for curve in np.concatenate([curves, smooth_curves]):
      for skip_start, skip_end in ((0, 0), (4, 5)):
        got_one = suggest(lrs, curve, skip_start=skip_start, skip_end=skip_end,
                          slide_thresh=thresh)
        stop = len(curve) - skip_end
        want = fastai_slide(lrs[skip_start:stop], curve[skip_start:stop], thresh=thresh)
        np.testing.assert_allclose(float(got_one.slide), want, rtol=1e-5)


def test_suggest_with_nothing_kept_is_nan_and_one_point_is_its_rate():
  none = rf.suggest(CURVE_LRS[:3], np.full(3, np.nan))
  assert all(np.isnan(float(v)) for v in none)
  one = rf.suggest(CURVE_LRS[:3], np.array([1.0, np.nan, 2.0]))
  assert float(one.at_minimum) == float(one.steep) == float(one.valley) == \
      float(one.slide) == pytest.approx(1e-3)


# -- the range test ----------------------------------------------------------------------

def test_range_test_rates_are_the_closed_form_and_the_loss_falls(data):
  n = 60
  res = range_test(TinyMLP(), data, sgd, min_lr=1e-4, max_lr=1.0, num_steps=n,
                   batch_size=32, stop_factor=None)
  i = np.arange(n)
  np.testing.assert_allclose(res.lrs, 1e-4 * (1.0 / 1e-4) ** (i / (n - 1)), rtol=2e-6)
  assert res.kept.all() and not res.diverged
  # the EMA's time constant is 5% of the 60 steps: beta = 1 - 1 / 3
  assert res.smoothing == pytest.approx(2 / 3, abs=1e-6)
  np.testing.assert_allclose(res.smoothed, numpy_ema(res.losses, 2 / 3, None)[0], rtol=1e-5)
  assert res.smoothed[-10:].mean() < res.smoothed[:10].mean()  # it learned
  assert res.suggestion == res.suggestions.valley and res.suggested_by == "valley"
  assert 1e-5 <= res.suggestion <= 1.0
  fastai = range_test(TinyMLP(), data, sgd, min_lr=1e-4, max_lr=1.0, num_steps=n,
                      batch_size=32, stop_factor=None, smoothing=0.98, suggestion="minimum")
  np.testing.assert_allclose(fastai.losses, res.losses, rtol=1e-6)  # the same training
  np.testing.assert_allclose(fastai.smoothed, numpy_ema(res.losses, 0.98, None)[0],
                             rtol=1e-5)
  assert fastai.suggestion == fastai.suggestions.minimum


def test_range_test_masks_divergence_and_suggests_a_finite_rate(data):
  res = range_test(TinyCNN(), data, sgd, min_lr=1e-3, max_lr=1e4, num_steps=100,
                   batch_size=32)
  assert res.diverged
  stop = int(res.kept.sum())
  assert 10 < stop < 100 and res.kept[:stop].all() and not res.kept[stop:].any()
  assert np.isfinite(res.losses[:stop]).all() and np.isnan(res.losses[stop:]).all()
  assert np.isnan(res.smoothed[stop:]).all()
  for value in res.suggestions:
    assert np.isfinite(value) and res.lrs[0] / 10 <= value <= res.lrs[stop - 1]


# -- the vectorized test -------------------------------------------------------------------

def test_vectorized_equals_separate_constant_rate_runs(data):
  """K rates in one program equal each rate trained alone (the engine's sweep of one),
  from the same initialisation and batches."""
  rates = [1e-3, 3e-2, 0.3]
  steps, batch = 60, 32
  vec = range_test_vectorized(TinyCNN(), data, sgd, rates, num_steps=steps,
                              batch_size=batch, window=10, seed=4)
  assert vec.step_losses.shape == (3, steps)
  for k, lr in enumerate(rates):
    alone = range_test_vectorized(TinyCNN(), data, sgd, [lr], num_steps=steps,
                                  batch_size=batch, window=10, seed=4)
    np.testing.assert_allclose(vec.step_losses[k], alone.step_losses[0], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(vec.losses[k], alone.step_losses[0][-10:].mean(), rtol=1e-5)
    np.testing.assert_allclose(vec.valid_losses[k], alone.valid_losses[0], rtol=1e-5)
  # same initialisation and first batch for every rate
  np.testing.assert_allclose(vec.step_losses[:, 0], vec.step_losses[0, 0], rtol=1e-6)
  assert vec.kept.all()
  assert vec.suggestions.at_minimum == pytest.approx(rates[int(np.argmin(vec.losses))])


def test_range_tests_train_on_whole_epochs_of_a_seeded_subset(data):
  """60 steps of 32 out of 288 examples: 7 epochs of 9 steps (63: 3 left out)."""
  assert len(data.train_x) == 288 and rf._plan(288, 32, 60) == (7, 9)
  assert rf._plan(10_000, 64, 100) == (1, 100)  # fits one epoch: exactly the steps
  assert rf._plan(1000, 64, 100) == (7, 15)  # 105 steps, the last 5 left out


def test_vectorized_masks_diverged_rates(data):
  rates = [1e-2, 1e-1, 1e3, 1e4]
  vec = range_test_vectorized(TinyMLP(), data, sgd, rates, num_steps=40, batch_size=32)
  np.testing.assert_array_equal(vec.kept, [True, True, False, False])
  assert vec.diverged and np.isnan(vec.losses[2:]).all()
  assert np.isfinite(vec.suggestions).all()
  assert vec.suggestions.at_minimum in (pytest.approx(1e-2), pytest.approx(1e-1))


# -- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(min_lr=1.0, max_lr=0.1), "min_lr"),
    (dict(min_lr=-1.0), "min_lr"),
    (dict(num_steps=1), "num_steps"),
    (dict(batch_size=10_000), "batch_size"),
    (dict(smoothing=1.0), "smoothing"),
    (dict(stop_factor=0.5), "stop_factor"),
    (dict(suggestion="best"), "suggestion"),
])
def test_range_test_bad_input(data, kwargs, match):
  with pytest.raises(ValueError, match=match):
    range_test(TinyMLP(), data, sgd, **kwargs)


@pytest.mark.parametrize("lrs", [[0.1, 0.01], [0.0, 0.1], [], [[0.1]], [0.1, float("nan")]])
def test_vectorized_bad_rates(data, lrs):
  with pytest.raises(ValueError, match="lrs"):
    range_test_vectorized(TinyMLP(), data, sgd, lrs)


def test_bad_model_and_optimizer(data):
  with pytest.raises(TypeError, match="model"):
    range_test(lambda x: x, data, sgd)
  with pytest.raises(TypeError, match="optimizer_fn"):
    range_test(TinyMLP(), data, "sgd")


def test_plot_draws_the_kept_curve_on_a_log_axis_with_the_suggestions(data, tmp_path):
  from figures import capture_figures, lines
  res = range_test(TinyCNN(), data, sgd, min_lr=1e-3, max_lr=1e4, num_steps=100,
                   batch_size=32)
  assert res.diverged
  with capture_figures() as figures:
    assert res.plot(tmp_path / "lr_find.png", title="range test") == tmp_path / "lr_find.png"
  drawn = lines(figures["lr_find.png"])
  keep = res.kept
  curve = drawn[f"smoothed loss (EMA {res.smoothing:g})"]
  np.testing.assert_allclose(curve.x, res.lrs[keep])
  np.testing.assert_allclose(curve.y, res.smoothed[keep])
  np.testing.assert_allclose(drawn["loss per step"].y, res.losses[keep])
  marked = [label for label in drawn if ":" in label]
  assert marked[0] == f"valley: {res.suggestions.valley:.3g} (the suggestion)"
  assert {m.split(":")[0].split(" (")[0] for m in marked} == {"valley", "minimum", "steep",
                                                               "slide"}
  for label in marked:
    rule = label.split(":")[0].split(" (")[0]
    rate = getattr(res.suggestions, rule)
    np.testing.assert_allclose(drawn[label].x, [rate])
    np.testing.assert_allclose(drawn[label].y, np.interp(
        np.log(rate), np.log(res.lrs[keep]), res.smoothed[keep]), rtol=1e-6)
  ax = figures.saved["lr_find.png"].axes[0]
  assert ax.get_xscale() == "log" and ax.get_title() == "range test"
  # into the caller's axes, without writing a file
  import matplotlib.pyplot as plt
  fig, given = plt.subplots()
  assert res.plot(ax=given) is given and len(given.get_lines()) == 6
  plt.close(fig)


def test_range_tests_take_nnx_models_as_lrjax_sweep_does(data):
  from flax import nnx

  class NNXMLP(nnx.Module):
    def __init__(self, rngs):
      self.fc1 = nnx.Linear(int(np.prod(data.train_x.shape[1:])), 16, rngs=rngs)
      self.fc2 = nnx.Linear(16, 10, rngs=rngs)

    def __call__(self, x):
      return self.fc2(nnx.relu(self.fc1(x.reshape((x.shape[0], -1)))))

  instance = NNXMLP(nnx.Rngs(7))
  steps, batch, seed = 20, 32, 5
  vec = range_test_vectorized(instance, data, sgd, [1e-3, 0.1], num_steps=steps,
                              batch_size=batch, window=5, seed=seed)
  # The instance's own parameters are trained (not a fresh initialisation): the first
  # step's loss is the instance's loss on the first batch of the seed's order.
  from lrjax.train.engine import epoch as epoch_lib
  epochs, per_epoch = rf._plan(len(data.train_x), batch, steps)
  keep = np.sort(np.random.default_rng(seed).permutation(len(data.train_x))[
      :per_epoch * batch])  # the engine's subset, then its order of epoch 0
  order = jax.random.permutation(epoch_lib.variant_key(seed, epoch_lib._ORDER_SALT, 0),
                                 len(keep))[:batch]
  first = keep[np.asarray(order)]
  x, y = jnp.asarray(data.train_x)[first], jnp.asarray(data.train_y)[first]
  expected = optax.softmax_cross_entropy_with_integer_labels(instance(x), y).mean()
  np.testing.assert_allclose(vec.step_losses[:, 0], float(expected), rtol=1e-5)
  assert vec.step_losses[0, -1] != vec.step_losses[1, -1]  # the two rates trained
  # A factory rngs -> nnx.Module: one initialisation per seed, the curve learns.
  res = range_test(lambda rngs: NNXMLP(rngs), data, sgd, min_lr=1e-4, max_lr=1.0,
                   num_steps=40, batch_size=batch, stop_factor=None)
  assert np.isfinite(res.suggestion) and res.smoothed[-5:].mean() < res.smoothed[:5].mean()


def test_suggest_of_one_point_is_its_rate():
  one = rf.suggest(np.array([0.1]), np.array([1.0]))
  assert float(one.valley) == float(one.steep) == float(one.at_minimum) == pytest.approx(0.1)
  assert float(one.minimum) == pytest.approx(0.01)
  assert np.isnan(float(rf.suggest(np.array([0.1]), np.array([np.nan])).valley))
