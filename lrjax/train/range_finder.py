"""The learning-rate range test (Smith 2015; fastai's ``lr_find``) as library functions.

Two ways to ask "which rate?" of a model, a dataset and an optimizer ``lr -> tx``:

* `range_test`: one run whose rate grows exponentially after every mini-batch,
  ``lr_i = min_lr (max_lr / min_lr)^(i / (n - 1))`` (`lrjax.schedules.lr_range_test`).
  The mini-batch loss is smoothed as fastai does (an EMA
  with bias correction, `smooth`) and the run stops (the rest masked) once the
  smoothed loss is not finite or exceeds ``stop_factor`` (4) times its best.  The
  EMA's ``beta`` follows the test's length (`default_smoothing`): fastai's 0.98 has a
  time constant of 50 steps, half of its own default 100-step test, so the smoothed
  curve trails the rate (on a 100-step test its minimum came 6 steps, a factor 3 in
  rate, after the true one; at 0.8, 1 step).  1000 steps and more get fastai's 0.98.
* `range_test_vectorized`: K constant rates trained side by side from the same
  initialisation on the same batches; the loss of each rate is its mean training loss
  over the last steps.

Both curves go through the same pure `suggest`: fastai's four rules ``minimum``,
``steep``, ``valley`` and ``slide`` (fastai 2.7's ``lr_find`` suggestion functions),
and the rate of the lowest loss.  ``result.suggestion`` is ``valley``, fastai's
default (choose another with ``suggestion=``).  The range-test document's rule is
``minimum``: one order of magnitude below the rate of the lowest loss, "the value where
the loss is still decreasing"; it is also the document's choice of one-cycle's
``max_lr`` (with the lower bound 1/5 or 1/10 of it).  ``result.plot()`` draws the curve
(log rate) with the four suggestions marked, as ``lr_find`` shows it.

Both train through the sweep engine (`lrjax.train.api.run`: a sweep of one run, or of K
rates, one compiled program with the engine's plans, RNG streams and NNX adapter) on a
seeded random subset of the training set cut to whole epochs (`_train`); the rest of the
curve is pure functions of its per-step losses.  A diverged run is masked, not stopped:
it trains to the end of the test.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax.errors import ArgumentError
from lrjax.schedules.range_test import lr_range_test
from lrjax.train.frontends import inputs

# fastai's defaults: AvgSmoothLoss(beta=0.98); LRFinder stops at 4 x the best loss
DEFAULT_BETA = 0.98
DEFAULT_STOP_FACTOR = 4.0
# The EMA's time constant 1 / (1 - beta) as a fraction of the test's steps
# (`default_smoothing`): 5 steps of a 100-step test, fastai's 50 at 1000 steps.
SMOOTHING_FRACTION = 0.05
# fastai's `slide`: the interval (in points) and the threshold on the loss gradient
SLIDE_LR_DIFF = 15
SLIDE_THRESH = 0.005
# The default `RangeTestResult.suggestion`: fastai's default rule.
DEFAULT_SUGGESTION = "valley"


def default_smoothing(num_steps: int) -> float:
  """The EMA ``beta`` of a ``num_steps`` range test: a time constant ``1 / (1 - beta)``
  of 5% of the steps, ``1 - 1 / (0.05 num_steps)``, at most fastai's 0.98 (reached at
  1000 steps) and 0 (no smoothing) for tests of 20 steps or fewer.

  Example:
    >>> default_smoothing(100), default_smoothing(1000)
    (0.8, 0.98)
  """
  scale = SMOOTHING_FRACTION * num_steps
  return round(min(DEFAULT_BETA, max(0.0, 1.0 - 1.0 / scale)), 6) if scale > 0 else 0.0


class Suggestions(NamedTuple):
  """Rates suggested by one loss-vs-rate curve (float32 scalars, NaN if nothing kept).

  Attributes:
    minimum: the rate of the lowest loss / 10 (fastai's ``minimum``; the range-test
      document's rule, "one order lower than the rate where the loss is minimum").
    steep: the rate where the loss falls fastest per unit of log-rate (fastai's
      ``steep``: the left end of the steepest segment).
    valley: fastai's ``valley`` (its default): about halfway along the longest
      strictly decreasing subsequence of the curve, ``start + floor(L / 3) +
      floor(L / 6)`` with ``end`` its last index, ``start = end - length`` and
      ``L = end - start``.
    slide: fastai's ``slide``: with ``g`` the loss's gradient per point
      (``np.gradient``), an interval of ``lr_diff`` (15) points slides down from the
      end of the curve while ``|g[right] - g[left]| > thresh`` (0.005); the rate at
      its left end when it stopped (the last one where the gradients still differed).
    at_minimum: the rate of the lowest loss itself: the largest rate before the loss
      rises (for the constant-rate test: the best rate trained).
  """

  minimum: jax.Array | float  # arrays when traced, floats in a RangeTestResult
  steep: jax.Array | float
  valley: jax.Array | float
  slide: jax.Array | float
  at_minimum: jax.Array | float


class RangeTestResult(NamedTuple):
  """What the range tests return (numpy arrays).

  Attributes:
    lrs: ``[n]`` the rate of every step (`range_test`) or the K constant rates.
    losses: ``[n]`` the mini-batch loss of every step / the mean training loss of
      every rate over the last ``window`` steps; NaN where not ``kept``.
    smoothed: ``[n]`` the EMA-smoothed loss (for the vectorized test: ``losses``);
      NaN where not ``kept``.
    kept: ``[n]`` bool, the points before the divergence stop (a prefix).
    diverged: whether the curve was stopped (non-finite or > stop_factor x best).
    suggestions: the `Suggestions` of the kept curve.
    suggestion: the chosen rule's rate (``suggestions.valley`` unless the test was
      asked for another), as a float.
    valid_losses: ``[K]`` validation loss of every rate after training (vectorized
      test with validation data), else None.
    step_losses: ``[K, num_steps]`` every step's training loss (vectorized), else None.
  """

  lrs: np.ndarray
  losses: np.ndarray
  smoothed: np.ndarray
  kept: np.ndarray
  diverged: bool
  suggestions: Suggestions
  suggestion: float
  valid_losses: np.ndarray | None = None
  step_losses: np.ndarray | None = None
  suggested_by: str = DEFAULT_SUGGESTION
  smoothing: float | None = None

  def plot(self, path=None, ax=None, *, title: str = ""):
    """The loss against the rate (log axis) with the four suggestions marked, the
    chosen one first in the legend (`lrjax.train.reports.plotting.plot_range_test`).

    Args:
      path: a PNG file to write (its folder made); None: only draw.
      ax: matplotlib axes to draw in (default: a new figure).
      title: the axes' title.

    Returns:
      the path written, or the axes when ``path`` is None.
    """
    from lrjax.train.reports import plotting
    return plotting.plot_range_test(self, path, ax=ax, title=title)


# -- the pure curve pieces -----------------------------------------------------------

class _Tracker(NamedTuple):
  avg: jax.Array  # float32, the EMA before bias correction
  count: jax.Array  # type: ignore[assignment]  # int32, losses seen
  best: jax.Array  # float32, the lowest smoothed loss so far
  stopped: jax.Array  # bool, diverged at or before the last loss


def _tracker() -> _Tracker:
  return _Tracker(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32),
                  jnp.asarray(jnp.inf, jnp.float32), jnp.asarray(False))


def _track(tracker: _Tracker, loss, beta, stop_factor) -> tuple[_Tracker, jax.Array,
                                                                 jax.Array]:
  """One loss into the EMA and the stop rule: (tracker, smoothed, kept)."""
  loss = jnp.asarray(loss, jnp.float32)
  beta = jnp.asarray(beta, jnp.float32)
  count = tracker.count + 1
  avg = beta * tracker.avg + (1.0 - beta) * loss
  smoothed = avg / (1.0 - beta ** count.astype(jnp.float32))
  best = jnp.minimum(tracker.best, smoothed)
  bad = ~jnp.isfinite(smoothed)
  if stop_factor is not None:
    bad = bad | (smoothed > jnp.asarray(stop_factor, jnp.float32) * best)
  stopped = tracker.stopped | bad
  return _Tracker(avg, count, best, stopped), smoothed, ~stopped


def smooth(losses, *, beta: float = DEFAULT_BETA,
           stop_factor: float | None = DEFAULT_STOP_FACTOR) -> tuple[jax.Array, jax.Array]:
  r"""fastai's smoothing and divergence stop of a loss curve (pure, jittable).

  :math:`a_i = \beta a_{i-1} + (1 - \beta) \ell_i`, :math:`a_{-1} = 0`, smoothed
  :math:`s_i = a_i / (1 - \beta^{i+1})`.  Point ``i`` is kept while every
  :math:`s_j, j \le i` is finite and at most ``stop_factor`` times the lowest
  :math:`s` up to ``j`` (``None``: only the finiteness test).  ``beta = 0`` leaves the
  losses as they are.

  Returns:
    ``(smoothed, kept)``: float32 ``[n]`` and the bool prefix mask ``[n]``.
  """
  def body(tracker, loss):
    tracker, smoothed, kept = _track(tracker, loss, beta, stop_factor)
    return tracker, (smoothed, kept)

  _, (smoothed, kept) = jax.lax.scan(body, _tracker(), jnp.asarray(losses, jnp.float32))
  return smoothed, kept


def suggest(lrs, losses, kept=None, *, skip_start: int = 0, skip_end: int = 0,
            slide_lr_diff: int = SLIDE_LR_DIFF,
            slide_thresh: float = SLIDE_THRESH) -> Suggestions:
  """The suggested rates of a loss-vs-rate curve (pure, jittable, vmappable).

  Args:
    lrs: ``[n]`` increasing positive rates.
    losses: ``[n]`` the (smoothed) loss at each rate.
    kept: ``[n]`` bool prefix of usable points (default: the finite losses' prefix).
    skip_start, skip_end: points left out at the start (the EMA's warm-up; fastai
      leaves out ``n // 10``) and before the end of the kept points (fastai: 5).  At
      least one kept point is always used.
    slide_lr_diff, slide_thresh: fastai's ``slide`` interval and threshold.

  Returns:
    `Suggestions` (NaN where no point is kept).
  """
  lrs = jnp.asarray(lrs, jnp.float32)
  losses = jnp.asarray(losses, jnp.float32)
  n = lrs.shape[0]
  if n == 1:  # one point has no slope: every rule gives its rate (NaN if not kept)
    ok = jnp.isfinite(losses[0]) if kept is None else jnp.asarray(kept, bool)[0]
    rate = jnp.where(ok, lrs[0], jnp.nan).astype(jnp.float32)
    return Suggestions(rate / 10.0, rate, rate, rate, rate)
  if kept is None:
    kept = jnp.cumprod(jnp.isfinite(losses)).astype(bool)
  kept = jnp.asarray(kept, bool)
  idx = jnp.arange(n)
  num_kept = jnp.sum(kept)
  lo = jnp.minimum(skip_start, jnp.maximum(num_kept - 1, 0))
  hi = jnp.maximum(num_kept - skip_end, lo + 1)
  window = kept & (idx >= lo) & (idx < hi)
  nothing = num_kept == 0
  nan = jnp.asarray(jnp.nan, jnp.float32)

  i_min = jnp.argmin(jnp.where(window, losses, jnp.inf))
  at_minimum = lrs[i_min]

  log_lr = jnp.log(lrs)
  pair = window[:-1] & window[1:]
  slope = (losses[1:] - losses[:-1]) / (log_lr[1:] - log_lr[:-1])
  i_steep = jnp.argmin(jnp.where(pair, slope, jnp.inf))
  # a single point has no slope: its rate
  steep = jnp.where(jnp.any(pair), lrs[i_steep], at_minimum)

  # fastai's valley: lds[i], the longest strictly decreasing subsequence ending at i
  def longest(i, lds):
    before = window & (idx < i) & (losses > losses[i])
    here = jnp.where(window[i], 1 + jnp.max(jnp.where(before, lds, 0)), 0)
    return lds.at[i].set(here)

  lds = jax.lax.fori_loop(0, n, longest, jnp.zeros((n,), jnp.int32))
  end = jnp.argmax(lds)
  start = end - lds[end]
  sections = (end - start) // 3  # int((end - start) / 3) of non-negative numbers
  sixths = (end - start) // 6  # int(sections / 2) = floor((end - start) / 6)
  i_valley = jnp.clip(start + sections + sixths, lo, hi - 1)
  valley = lrs[i_valley]

  # fastai's slide, on the window's points: the gradient as np.gradient (one-sided at
  # the ends, central inside), then the interval [right - lr_diff, right] slides down
  # from right = hi - 1 for as long as the gradients at its ends differ by > thresh.
  nxt = jnp.take(losses, jnp.clip(idx + 1, 0, n - 1))
  prv = jnp.take(losses, jnp.clip(idx - 1, 0, n - 1))
  grad = jnp.where(idx == lo, nxt - losses,
                   jnp.where(idx == hi - 1, losses - prv, (nxt - prv) / 2.0))
  grad = jnp.where(hi - lo > 1, grad, 0.0)  # one point: no gradient
  shift = jnp.arange(n + 1)
  right = hi - 1 - shift
  left = right - slide_lr_diff
  differs = jnp.abs(jnp.take(grad, jnp.clip(right, 0, n - 1))
                    - jnp.take(grad, jnp.clip(left, 0, n - 1))) > slide_thresh
  moving = (left >= lo) & differs
  stop = jnp.argmax(~moving)  # how many slides ran
  i_slide = jnp.clip(hi - 1 - slide_lr_diff - jnp.maximum(stop - 1, 0), lo, hi - 1)
  slide = lrs[i_slide]

  out = Suggestions(at_minimum / 10.0, steep, valley, slide, at_minimum)
  return Suggestions(*(jnp.where(nothing, nan, v).astype(jnp.float32) for v in out))


# -- training: the sweep engine --------------------------------------------------------

class _Data(NamedTuple):
  """What the engine trains a range test on (`lrjax.data.Dataset`'s fields)."""

  train_x: Any
  train_y: Any
  valid_x: Any
  valid_y: Any
  test_x: Any
  test_y: Any
  name: str = "range_test"


def _plan(num_examples: int, batch_size: int, num_steps: int) -> tuple[int, int]:
  """(epochs, steps per epoch) covering ``num_steps`` steps with at most one epoch's
  worth of extra steps' fewer: the training set is cut to ``steps per epoch`` batches."""
  most = num_examples // batch_size
  epochs = -(-num_steps // most)
  return epochs, -(-num_steps // epochs)


def _train(model, dataset, optimizer_fn, hparams, *, num_steps: int, batch_size: int,
           seed: int, task, eval_batch_size: int, with_validation: bool):
  """``lrjax.sweep`` of ``optimizer_fn`` over ``hparams`` (one dict per run) from the
  same initialisation and batches (``seed``): ``(step losses [K, num_steps], step rates
  [K, num_steps], validation loss after the last epoch [K] or None)``.

  The run is ``epochs`` epochs of ``per_epoch`` steps (`_plan`) on a seeded random
  subset of ``per_epoch * batch_size`` training examples: ``num_steps`` when they fit
  one epoch, else at most ``epochs - 1`` steps more, whose losses are left out.
  """
  from lrjax.train import api  # local: the engine imports the range test's package
  epochs, per_epoch = _plan(len(dataset.train_x), batch_size, num_steps)
  keep = np.sort(np.random.default_rng(seed).permutation(len(dataset.train_x))[
      :per_epoch * batch_size])
  train_x, train_y = np.asarray(dataset.train_x)[keep], np.asarray(dataset.train_y)[keep]
  if with_validation:
    valid_x, valid_y = np.asarray(dataset.valid_x), np.asarray(dataset.valid_y)
  else:  # nothing to validate: the epoch's evaluation is one example
    valid_x, valid_y = train_x[:1], train_y[:1]
  data = _Data(train_x, train_y, valid_x, valid_y, valid_x[:1], valid_y[:1])
  spec = api.SweepSpec(model=model, optimizer_fn=optimizer_fn, hparams=hparams,
                       epochs=epochs, batch_size=batch_size, seeds=(seed,), task=task,
                       observe_untrained_loss=False, eval_batch_size=eval_batch_size)
  result = api.run(spec, data, progress=False, keep="none")
  losses = np.asarray(result.step_history["step_loss"], np.float64)  # [epochs, K, steps]
  rates = np.asarray(result.step_history["step_lr"], np.float64)
  flat = lambda a: a.transpose(1, 0, 2).reshape(a.shape[1], -1)[:, :num_steps]  # noqa: E731
  valid = result.history["valid_loss"][-1] if with_validation else None
  return flat(losses), flat(rates), valid


# -- the host functions --------------------------------------------------------------

_check_int = inputs.check_int


def _check_common(model, dataset, optimizer_fn, num_steps, batch_size, seed, beta,
                  stop_factor) -> nn.Module:
  model = inputs.check_model(model)  # an NNX instance or factory as `lrjax.sweep` takes it
  inputs.check_dataset(dataset, ("train_x", "train_y"), batch_size)
  inputs.check_optimizer_fn(optimizer_fn, "lr")
  _check_int("num_steps", num_steps, 2)
  _check_int("seed", seed, 0)
  if not (isinstance(beta, numbers.Real) and 0.0 <= float(beta) < 1.0):
    raise ArgumentError("smoothing", f"must be a number in [0, 1), got {beta!r}.")
  if stop_factor is not None and not (isinstance(stop_factor, numbers.Real)
                                      and float(stop_factor) > 1.0
                                      and math.isfinite(stop_factor)):
    raise ArgumentError("stop_factor", "must be a finite number > 1 or None, got "
                        f"{stop_factor!r}.")
  return model


def _no_finite_loss(what):
  return FloatingPointError(
      f"the training loss was not finite at {what}: nothing to suggest (check the data, "
      f"the model and `min_lr`).")


def _check_suggestion(suggestion) -> str:
  if suggestion not in Suggestions._fields:
    raise ArgumentError("suggestion", f"must be one of {', '.join(Suggestions._fields)}, got "
                        f"{suggestion!r}.")
  return suggestion


def _result(lrs, losses, smoothed, kept, suggestions, suggestion: str,
            **extra) -> RangeTestResult:
  kept = np.asarray(kept, bool)
  nan_out = lambda a: np.where(kept, np.asarray(a, np.float64), np.nan)
  suggestions = Suggestions(*(float(v) for v in jax.device_get(suggestions)))
  return RangeTestResult(np.asarray(lrs, np.float64), nan_out(losses), nan_out(smoothed),
                         kept, bool(not kept.all()), suggestions,
                         getattr(suggestions, suggestion), suggested_by=suggestion, **extra)


def range_test(model: nn.Module, dataset,
               optimizer_fn: Callable[[Any], optax.GradientTransformation], *,
               min_lr: float = 1e-7, max_lr: float = 10.0, num_steps: int = 100,
               batch_size: int = 64, seed: int = 0, smoothing: float | None = None,
               stop_factor: float | None = DEFAULT_STOP_FACTOR,
               skip_start: int | None = None, skip_end: int = 0,
               suggestion: str = DEFAULT_SUGGESTION,
               task: Any = "classification") -> RangeTestResult:
  """The LR range test: one run of exponentially growing rate (fastai's ``lr_find``).

  Step ``i`` of ``num_steps`` trains at ``min_lr (max_lr / min_lr)^(i / (num_steps -
  1))`` (`lrjax.schedules.lr_range_test` over ``num_steps - 1`` steps: the last step
  is at ``max_lr``), ``optimizer_fn(schedule)`` the optimizer, one compiled
  `lax.scan`.  The loss is smoothed and the run stopped as `smooth` says.

  Args:
    model: a `flax.linen.Module` called ``model(x, train=...)``, or an ``nnx.Module``
      instance or factory ``rngs -> nnx.Module`` (`lrjax.train.engine.nnx_adapter.as_linen`).
    dataset: a `lrjax.data.Dataset` (only ``train_x`` / ``train_y`` are used).
    optimizer_fn: ``lr -> optax.GradientTransformation``, e.g.
      ``lambda lr: optax.sgd(lr, momentum=0.9)``; ``lr`` is an optax schedule.
    min_lr, max_lr: the first and the last rate (fastai: 1e-7 and 10).
    num_steps: mini-batches of the test (fastai: 100), >= 2.
    batch_size: examples per mini-batch.
    seed: initialisation, batch order and dropout.
    smoothing: the EMA's ``beta`` (default `default_smoothing`: 0.8 at 100 steps;
      fastai: 0.98).
    stop_factor: stop once the smoothed loss exceeds this times its best (fastai: 4);
      None: only at a non-finite loss.
    skip_start, skip_end: points `suggest` leaves out (default ``num_steps // 10`` at
      the start, as fastai).
    suggestion: the rule whose rate is ``result.suggestion`` (``valley``, fastai's
      default; ``minimum``, the range-test document's; ``steep``, ``slide``,
      ``at_minimum``).
    task: the engine's task (``"classification"`` or ``"regression"``).

  Returns:
    a `RangeTestResult` (``result.plot()`` draws it).

  Raises:
    FloatingPointError: the very first loss is not finite.
  """
  _check_int("num_steps", num_steps, 2)
  smoothing = default_smoothing(num_steps) if smoothing is None else smoothing
  model = _check_common(model, dataset, optimizer_fn, num_steps, batch_size, seed,
                        smoothing, stop_factor)
  _check_suggestion(suggestion)
  for name, value in (("min_lr", min_lr), ("max_lr", max_lr)):
    if not (isinstance(value, numbers.Real) and 0.0 < value < math.inf):
      raise ArgumentError(name, f"must be a positive finite number, got {value!r}.")
  if not min_lr < max_lr:
    raise ArgumentError("min_lr", f"({min_lr!r}) must be < `max_lr` ({max_lr!r}).")
  schedule = lr_range_test(min_lr, max_lr, num_steps - 1)
  skip_start = num_steps // 10 if skip_start is None else skip_start
  _check_int("skip_start", skip_start, 0)
  _check_int("skip_end", skip_end, 0)
  losses, _, _ = _train(model, dataset, lambda h: optimizer_fn(schedule), [{}],
                        num_steps=num_steps, batch_size=batch_size, seed=seed, task=task,
                        eval_batch_size=64, with_validation=False)

  @jax.jit
  def curve(losses):
    smoothed, kept = smooth(losses, beta=smoothing, stop_factor=stop_factor)
    lrs = jax.vmap(schedule)(jnp.arange(num_steps))
    return lrs, smoothed, kept, suggest(lrs, smoothed, kept, skip_start=skip_start,
                                        skip_end=skip_end)

  losses = losses[0]
  lrs, smoothed, kept, suggestions = jax.device_get(curve(jnp.asarray(losses, jnp.float32)))
  if not kept[0]:
    raise _no_finite_loss(f"the first step (lr {float(lrs[0]):.3g})")
  return _result(lrs, losses, smoothed, kept, suggestions, suggestion,
                 smoothing=float(smoothing))


def range_test_vectorized(model: nn.Module, dataset,
                          optimizer_fn: Callable[[Any], optax.GradientTransformation], lrs,
                          *, num_steps: int = 200, batch_size: int = 64, seed: int = 0,
                          window: int | None = None,
                          stop_factor: float | None = DEFAULT_STOP_FACTOR,
                          eval_batch_size: int = 1000,
                          suggestion: str = DEFAULT_SUGGESTION,
                          task: Any = "classification") -> RangeTestResult:
  """K constant rates trained side by side in one vmapped program.

  Every rate starts from the same initialisation and sees the same batches
  (``seed``); its loss is the mean training loss of its last ``window`` steps
  (default ``max(1, num_steps // 10)``).  The curve over the (increasing) rates is
  cut at the first non-finite loss or loss above ``stop_factor`` times the best so
  far, and `suggest` gives the same rules as for `range_test` (here ``at_minimum`` is
  the best rate trained).  With validation data in ``dataset`` every rate's final
  validation loss is returned too (``valid_losses``, not masked).

  Args:
    lrs: the K rates, positive and strictly increasing.
    others: as `range_test`; ``optimizer_fn(lr)`` receives a traced scalar rate.

  Raises:
    FloatingPointError: the smallest rate's loss is not finite.
  """
  model = _check_common(model, dataset, optimizer_fn, num_steps, batch_size, seed, 0.0,
                        stop_factor)
  _check_suggestion(suggestion)
  lrs_np = np.asarray(lrs, np.float64)
  if (lrs_np.ndim != 1 or lrs_np.size == 0 or not np.all(np.isfinite(lrs_np))
      or not np.all(lrs_np > 0) or not np.all(np.diff(lrs_np) > 0)):
    raise ArgumentError("lrs", "must be a 1-D list of positive, strictly increasing rates, "
                        f"got {lrs!r}.")
  window = max(1, num_steps // 10) if window is None else window
  _check_int("window", window, 1)
  if window > num_steps:
    raise ArgumentError("window", f"({window}) exceeds `num_steps` ({num_steps}).")
  _check_int("eval_batch_size", eval_batch_size, 1)
  has_valid = hasattr(dataset, "valid_x") and len(getattr(dataset, "valid_x", ())) > 0
  # Each constant-rate run goes on after a divergence (the curve is masked after).
  step_losses, _, valid = _train(
      model, dataset, lambda h: optimizer_fn(h["lr"]), {"lr": [float(r) for r in lrs_np]},
      num_steps=num_steps, batch_size=batch_size, seed=seed, task=task,
      eval_batch_size=eval_batch_size, with_validation=has_valid)
  tail = step_losses[:, num_steps - window:]
  # inf where a step was not finite (a mean would keep an inf - inf NaN quiet)
  final = np.where(np.isfinite(tail).all(axis=1), tail.mean(axis=1), np.inf)

  @jax.jit
  def curve(lrs, final):
    _, kept = smooth(final, beta=0.0, stop_factor=stop_factor)
    return kept, suggest(lrs, final, kept)

  kept, suggestions = jax.device_get(curve(jnp.asarray(lrs_np, jnp.float32),
                                           jnp.asarray(final, jnp.float32)))
  if not kept[0]:
    raise _no_finite_loss(f"the smallest rate ({lrs_np[0]:.3g})")
  return _result(lrs_np, final, final, kept, suggestions, suggestion,
                 valid_losses=np.asarray(valid, np.float64) if has_valid else None,
                 step_losses=step_losses)


__all__ = ["RangeTestResult", "Suggestions", "default_smoothing", "range_test",
           "range_test_vectorized", "smooth", "suggest"]
