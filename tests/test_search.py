"""Search inside the compiled sweep (`lrjax.train.search`, `lrjax.train.runner.control`).

Hyperparameters are state: a controller stops variants, continues them from others'
states with new hyperparameters, restarts them with new configurations, between
epochs, with no recompile.  Each guarantee is checked against an independent
reference: a copied state against its parent's bytes, a hyperparameter change against
the same optimizer built with a schedule that changes the value at that step (no
controller), a rung of successive halving against a numpy ranking of the recorded
metrics, a resumed search against an uninterrupted one.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import adaptive, models, schedules, strategies
from lrjax.data import synthetic
from lrjax.train import search
from lrjax.train.engine import epoch as epoch_lib
from lrjax.train.engine.hyperparams import Transform, VariantHyper
from lrjax.train.runner.checkpoint import DifferentSweepError
from lrjax.train.runner.control import DecisionError

BATCH = 32


@pytest.fixture(scope="module")
def data():
  return synthetic("tiny", num_train=192, num_test=64, seed=3)


@pytest.fixture(scope="module")
def logistic():
  return models.get_model("logistic")


class NormNet(nn.Module):
  """BatchNorm (a mutable collection) and dropout (an RNG stream): every part of a
  variant's state that a copy must carry."""

  @nn.compact
  def __call__(self, x, *, train):
    x = nn.Dense(8, use_bias=False)(x.reshape((x.shape[0], -1)))
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.Dropout(0.3, deterministic=not train)(nn.relu(x))
    return nn.Dense(10)(x)


def run(model, data, optimizer_fn, hparams, **kw):
  kw = {"epochs": 4, "batch_size": BATCH, "progress": False, **kw}
  return lrjax.sweep(model, data, optimizer_fn, hparams, **kw)


def steps_of(data) -> int:
  return data.train_x.shape[0] // BATCH


def piecewise(before, after, at_step):
  """``before`` until step ``at_step``, then ``after``: the reference of a change."""
  return lambda count: jnp.where(count < at_step, before, after)


# -- controllers written here, as a user would (no lrjax edit) --------------------------

@dataclasses.dataclass(frozen=True)
class SetAt:
  """Before epoch ``at``, every variant continues with ``changes``."""

  at: int
  changes: tuple

  def init(self, setup):
    return None, {}

  def decide(self, state, view):
    decisions = view.keep()
    if view.epoch == self.at:
      for slot in range(view.num_slots):
        decisions.set_hparams(slot, dict(self.changes))
    return state, decisions


@dataclasses.dataclass(frozen=True)
class CopyAt:
  """Before epoch ``at``, variant ``dst`` continues from variant ``src`` (its state and
  hyperparameters)."""

  at: int
  dst: int
  src: int

  def init(self, setup):
    return None, {}

  def decide(self, state, view):
    decisions = view.keep()
    if view.epoch == self.at:
      decisions.exploit(self.dst, self.src)
    return state, decisions


@dataclasses.dataclass(frozen=True)
class StopAt:
  at: int
  slots: tuple

  def init(self, setup):
    return None, {}

  def decide(self, state, view):
    decisions = view.keep()
    if view.epoch == self.at:
      decisions.stop(list(self.slots))
    return state, decisions


@dataclasses.dataclass(frozen=True)
class RefillWorst:
  """A user's asynchronous search: before each epoch from ``start`` on, the worst
  variant is restarted with the next configuration of the space's sequence."""

  samples: int
  start: int = 2
  seed: int = 0

  def init(self, setup):
    return setup.space.sample(self.samples, seed=self.seed), {"drawn": np.asarray(self.samples)}

  def decide(self, state, view):
    decisions = view.keep()
    if view.epoch < self.start:
      return state, decisions
    worst = int(view.ranking()[-1])
    drawn = int(state["drawn"])
    (config,) = view.space.sample(1, seed=self.seed, skip=drawn)
    decisions.restart_slot(worst, config)
    return {"drawn": np.asarray(drawn + 1)}, decisions


# -- the engine's decisions -----------------------------------------------------------------

def _trainer(model, optimizer_fn, hparams, data, variants_per_call=None):
  names = sorted(hparams[0])
  hyper = VariantHyper(h={n: np.asarray([h[n] for h in hparams], np.float32) for n in names},
                       seed=np.zeros(len(hparams), np.int32))
  device_data = epoch_lib.put_data(data)
  trainer = epoch_lib.GroupTrainer(model, Transform(optimizer_fn, {}), hyper,
                                   task="classification", batch_size=BATCH,
                                   eval_batch_size=64, observe_untrained_loss=True,
                                   variants_per_call=variants_per_call,
                                   sample_x=device_data.train_x[:1])
  return trainer, device_data


def _slot(tree, k):
  return jax.tree.map(lambda a: np.asarray(a)[k], jax.device_get(tree))


def _assert_tree_equal(a, b, what):
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b),
                          strict=True):
    np.testing.assert_array_equal(x, y, err_msg=f"{what} {jax.tree_util.keystr(path)}")


def adam(h):
  return optax.adam(h["learning_rate"])


def test_exploit_copies_parameters_model_and_optimizer_state_bit_for_bit(data):
  trainer, device_data = _trainer(NormNet(), adam, [{"learning_rate": 0.01},
                                                    {"learning_rate": 0.002}], data)
  state = trainer.init(device_data.train_x[:1], device_data)
  trainer.compile(state, device_data, apply=True)
  for epoch in range(2):
    state, _ = trainer.run_epoch(state, device_data, epoch)
  parent = _slot(state.train, 0)
  assert parent.model_state["batch_stats"]  # there is model state to copy
  state = trainer.apply(state, source=[0, 0], restart=[False, False],
                        hyper=VariantHyper(h={"learning_rate": np.asarray([0.01, 0.03])},
                                           seed=np.zeros(2, np.int32)),
                        alive=[True, True], data=device_data)
  child = _slot(state.train, 1)
  _assert_tree_equal(child.params, parent.params, "params")
  _assert_tree_equal(child.model_state, parent.model_state, "model state")
  # optax.adam keeps no copy of its rate: its whole state is the parent's (moments, count).
  _assert_tree_equal(child.opt_state, parent.opt_state, "optimizer state")
  np.testing.assert_array_equal(_slot(state.hyper, 1).h["learning_rate"], np.float32(0.03))


def test_restart_is_a_fresh_initialisation_with_its_untrained_loss(data):
  trainer, device_data = _trainer(NormNet(), adam, [{"learning_rate": 0.01},
                                                    {"learning_rate": 0.002}], data)
  fresh = trainer.init(device_data.train_x[:1], device_data)
  expected = _slot(fresh.train, 1)
  state = trainer.init(device_data.train_x[:1], device_data)
  state, _ = trainer.run_epoch(state, device_data, 0)
  state = trainer.apply(state, source=[0, 1], restart=[False, True],
                        hyper=VariantHyper(h={"learning_rate": np.asarray([0.01, 0.002])},
                                           seed=np.zeros(2, np.int32)),
                        alive=[True, True], data=device_data)
  restarted = _slot(state.train, 1)
  for part in ("params", "model_state", "opt_state", "epoch"):
    _assert_tree_equal(getattr(restarted, part), getattr(expected, part), f"restarted {part}")
  # Its loss_0 is the untrained model's validation loss again (evaluated afresh).
  np.testing.assert_allclose(restarted.valid_loss, expected.valid_loss, rtol=1e-6)


@pytest.mark.parametrize("variants_per_call", [1, 2], ids=["one-per-call", "vmapped"])
def test_a_copied_variant_trains_on_exactly_as_its_parent(data, variants_per_call):
  """End to end: after the copy (same seed, so the same data order and dropout keys)
  the child's every metric equals its parent's, bit for bit, on the CPU plan and in one
  vmapped program."""
  result = run(NormNet(), data, adam, [{"learning_rate": 0.01}, {"learning_rate": 0.002}],
               controller=CopyAt(at=2, dst=1, src=0), variants_per_call=variants_per_call)
  assert not np.array_equal(result.history["valid_loss"][:2, 0],
                            result.history["valid_loss"][:2, 1])
  for field in ("train_loss", "valid_loss", "valid_acc", "test_loss", "lr"):
    np.testing.assert_array_equal(result.history[field][2:, 1], result.history[field][2:, 0],
                                  err_msg=field)
  np.testing.assert_array_equal(result.history["parent"][:, 1], [1, 1, 0, 1])
  np.testing.assert_array_equal(result.history["hparams.learning_rate"][:, 1],
                                np.float32([0.002, 0.002, 0.01, 0.01]))
  np.testing.assert_array_equal(result.lineage(1), [0, 0, 1, 1])


# -- a change takes effect from the next step, for every optimizer form ---------------------

FORMS = {
    # name: (optimizer_fn of h, before, after, reference optimizer with a schedule)
    "plain optax": (
        lambda h: optax.sgd(h["lr"], momentum=0.9), 0.2, 0.02,
        lambda a, b, at: optax.sgd(piecewise(a, b, at), momentum=0.9)),
    "inject_hyperparams": (
        lambda h: optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=h["lr"]),
        0.9, 0.0,
        lambda a, b, at: optax.inject_hyperparams(optax.sgd)(learning_rate=0.1,
                                                             momentum=piecewise(a, b, at))),
    "lrjax strategy": (  # a fixed rule: the index never moves, the sequence's r0 does
        lambda h: strategies.sgd(schedules.seq3(h["lr"]), "fixed", momentum=0.9), 0.2, 0.02,
        lambda a, b, at: optax.sgd(piecewise(a, b, at), momentum=0.9)),
    "adaptive rate": (  # the hypergradient's step size; the learned rate goes on
        lambda h: adaptive.hypergradient_sgd(0.05, hyper_lr=h["lr"]), 1e-3, 1e-1,
        lambda a, b, at: optax.inject_hyperparams(adaptive.hypergradient_sgd)(
            learning_rate=0.05, hyper_lr=piecewise(a, b, at))),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_new_hyperparameters_take_effect_from_the_next_step(data, logistic, form):
  optimizer_fn, before, after, reference = FORMS[form]
  at = 2
  steered = run(logistic, data, optimizer_fn, [{"lr": before}],
                controller=SetAt(at=at, changes=(("lr", after),)))
  plain = run(logistic, data, lambda h: reference(before, after, at * steps_of(data)),
              [{"form": form}])
  fields = ["train_loss", "valid_loss", "test_loss"]
  if np.isfinite(plain.history["lr"]).all():  # where the reference keeps its rate
    fields.append("lr")
  for field in fields:
    np.testing.assert_allclose(steered.history[field], plain.history[field], rtol=2e-6,
                               atol=1e-7, err_msg=field)
  np.testing.assert_allclose(steered.step_history["step_loss"],
                             plain.step_history["step_loss"], rtol=2e-6, atol=1e-7)
  # The change did change something (the reference is not the run without it).
  unchanged = run(logistic, data, optimizer_fn, [{"lr": before}])
  assert not np.allclose(unchanged.history["valid_loss"][at:],
                         steered.history["valid_loss"][at:], rtol=1e-4)
  np.testing.assert_array_equal(steered.history["hparams.lr"][:, 0],
                                np.float32([before] * at + [after] * (4 - at)))


def test_an_adaptive_rate_restarts_at_a_new_learning_rate_and_keeps_it_otherwise(data, logistic):
  fn = lambda h: adaptive.hypergradient_sgd(h["learning_rate"], hyper_lr=h["beta"])  # noqa: E731
  trainer, device_data = _trainer(logistic, fn, [{"learning_rate": 0.05, "beta": 1e-2}] * 2,
                                  data)
  state = trainer.init(device_data.train_x[:1], device_data)
  state, _ = trainer.run_epoch(state, device_data, 0)
  learned = np.asarray(adaptive.learned_lr(_slot(state.train, 0).opt_state))
  assert learned != np.float32(0.05)  # it learned something
  state = trainer.apply(state, source=[0, 1], restart=[False, False],
                        hyper=VariantHyper(h={"learning_rate": np.float32([0.05, 0.2]),
                                              "beta": np.float32([1e-3, 1e-2])},
                                           seed=np.zeros(2, np.int32)),
                        alive=[True, True], data=device_data)
  kept = adaptive.learned_lr(_slot(state.train, 0).opt_state)  # only beta changed
  restarted = adaptive.learned_lr(_slot(state.train, 1).opt_state)
  np.testing.assert_array_equal(kept, learned)
  np.testing.assert_array_equal(restarted, np.float32(0.2))


# -- stopping ------------------------------------------------------------------------------

@pytest.mark.parametrize("variants_per_call", [1, 3], ids=["one-per-call", "vmapped"])
def test_a_stopped_variant_keeps_its_state_and_on_the_cpu_plan_is_not_run(
    data, logistic, variants_per_call):
  sgd = lambda h: optax.sgd(h["learning_rate"])  # noqa: E731
  trainer, device_data = _trainer(logistic, sgd, [{"learning_rate": r} for r in
                                                  (0.3, 0.1, 0.03)], data,
                                  variants_per_call=variants_per_call)
  state = trainer.init(device_data.train_x[:1], device_data)
  trainer.compile(state, device_data)
  state, _ = trainer.run_epoch(state, device_data, 0)
  state = trainer.set_alive(state, [True, False, True])
  before = jax.device_get(state.train)
  calls, join = trainer.epoch_calls(state, device_data, 1)
  assert len(calls) == (2 if variants_per_call == 1 else 1)  # the stopped call is not made
  state, metrics = join([call() for call in calls])
  after = jax.device_get(state.train)
  _assert_tree_equal(_slot(after, 1), _slot(before, 1), "stopped variant")
  for k in (0, 2):
    assert not np.array_equal(_slot(after, k).params["linear"]["kernel"],
                              _slot(before, k).params["linear"]["kernel"])


def test_stopped_variants_record_no_metrics_and_are_summarised_where_they_stopped(data,
                                                                                 logistic):
  result = run(logistic, data, lambda h: optax.sgd(h["learning_rate"]),
               {"learning_rate": [0.3, 0.1, 0.03]}, controller=StopAt(at=2, slots=(1,)))
  np.testing.assert_array_equal(result.history["alive"][:, 1], [1, 1, 0, 0])
  assert np.isnan(result.history["valid_loss"][2:, 1]).all()
  assert np.isfinite(result.history["valid_loss"][:, [0, 2]]).all()
  row = result.summary[1]
  assert row["epochs_trained"] == 2
  assert row["final_valid_loss"] == result.history["valid_loss"][1, 1]
  assert result.trained_epochs(1) == 2 and result.trained_epochs(0) == 4


# -- successive halving, Hyperband, median stopping, PBT ------------------------------------

def _halving_reference(history, rungs, reduction):
  """Who trains after each rung: the top floor(n / reduction) by the monitored metric at
  that rung (numpy: ties to the lower index)."""
  alive = np.ones(history["valid_acc"].shape[1], bool)
  expected = {}
  for rung in rungs:
    score = np.where(alive, history["valid_acc"][rung - 1], -np.inf)
    slots = np.flatnonzero(alive)
    order = slots[np.lexsort((slots, -score[slots]))]
    keep = max(1, slots.size // reduction)
    alive = np.zeros_like(alive)
    alive[order[:keep]] = True
    expected[rung] = alive.copy()
  return expected


SPACE = search.search_space(learning_rate=search.log_uniform(1e-3, 1.0),
                            momentum=search.uniform(0.0, 0.9))


def sgd_momentum(h):
  return optax.sgd(h["learning_rate"], momentum=h["momentum"])


def test_successive_halving_keeps_exactly_the_top_fraction_at_each_rung(data, logistic):
  result = run(logistic, data, sgd_momentum, SPACE, epochs=5,
               controller=search.successive_halving(27, reduction=3, min_epochs=1))
  alive = result.history["alive"] > 0
  np.testing.assert_array_equal(alive.sum(axis=1), [27, 9, 9, 3, 3])
  expected = _halving_reference(result.history, rungs=(1, 3), reduction=3)
  np.testing.assert_array_equal(alive[1], expected[1])
  np.testing.assert_array_equal(alive[3], expected[3])
  np.testing.assert_array_equal(alive[2], alive[1])


def test_the_issues_halving_example_trains_9_then_the_best_3(data, logistic):
  result = run(logistic, data, sgd_momentum, SPACE, epochs=6,
               controller=search.successive_halving(9, reduction=3, min_epochs=2))
  np.testing.assert_array_equal((result.history["alive"] > 0).sum(axis=1), [9, 9, 3, 3, 3, 3])


def test_hyperband_brackets_match_the_paper_and_halve_independently(data, logistic):
  assert search.hyperband(reduction=3, min_epochs=1).bracket_sizes(81) == [81, 34, 15, 8, 5]
  result = run(logistic, data, sgd_momentum, SPACE, epochs=6,
               controller=search.hyperband(reduction=3, min_epochs=2))
  alive = result.history["alive"] > 0  # bracket 0: 3 cut to 1 after epoch 2; bracket 1: 2
  assert alive.shape[1] == 5
  np.testing.assert_array_equal(alive[:2].sum(axis=1), [5, 5])
  np.testing.assert_array_equal(alive[2:, 3:], True)
  assert (alive[2:, :3].sum(axis=1) == 1).all()
  ranked = np.lexsort((np.arange(3), -result.history["valid_acc"][1, :3]))
  assert alive[2, ranked[0]]


def test_median_stopping_follows_optunas_rule(data, logistic):
  rates = [1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 2.0]
  result = run(logistic, data, lambda h: optax.sgd(h["learning_rate"]),
               {"learning_rate": rates}, epochs=5,
               controller=search.median_stopping(warmup_epochs=1, min_variants=3))
  alive = result.history["alive"] > 0
  score = np.where(alive, result.history["valid_acc"], np.nan)
  running = np.ones(len(rates), bool)
  for epoch in range(2, 5):  # the rule before each epoch after the warm-up
    now = score[epoch - 1]
    best = np.nanmax(np.where(np.isfinite(score[:epoch]), score[:epoch], -np.inf), axis=0)
    stop = [k for k in np.flatnonzero(running)
            if np.isfinite(np.delete(now, k)).sum() >= 3
            and best[k] < np.median(np.delete(now, k)[np.isfinite(np.delete(now, k))])]
    running[stop] = False
    np.testing.assert_array_equal(alive[epoch], running, err_msg=f"epoch {epoch}")
  assert 0 < alive[-1].sum() < len(rates)


def test_pbt_replaces_the_bottom_from_the_top_and_explores_inside_the_space(data, logistic):
  space = search.search_space(learning_rate=search.log_uniform(1e-3, 1.0))
  result = run(logistic, data, lambda h: optax.inject_hyperparams(optax.sgd)(
      learning_rate=h["learning_rate"], momentum=0.9), space, epochs=6,
      controller=search.pbt(8, interval=2, fraction=0.25, resample_probability=0.0))
  h = result.history
  for epoch in (2, 4):
    score = h["valid_acc"][epoch - 1]
    order = np.lexsort((np.arange(8), -score))
    top, bottom = set(order[:2]), set(order[-2:])
    moved = np.flatnonzero(h["parent"][epoch] != np.arange(8))
    assert set(moved) == bottom, epoch
    for k in moved:
      source = int(h["parent"][epoch, k])
      assert source in top
      rate = h["hparams.learning_rate"][epoch, k]
      parent_rate = h["hparams.learning_rate"][epoch - 1, source]
      explored = [np.float32(np.clip(parent_rate * f, 1e-3, 1.0)) for f in (0.8, 1.2)]
      assert np.float32(rate) in explored, (epoch, k, rate, explored)
    np.testing.assert_array_equal(h["parent"][epoch - 1], np.arange(8))
  # The rate the optimizer applied is the one in force (inject_hyperparams' copy written).
  np.testing.assert_allclose(h["lr"], h["hparams.learning_rate"], rtol=1e-6)


def test_a_discovered_schedule_retrains_with_plain_optax(data, logistic):
  """A PBT line's rates, replayed by plain optax from the same start (the same seed:
  initialisation, data order), reproduce the line's curve."""
  space = search.search_space(learning_rate=search.log_uniform(1e-2, 1.0))
  result = run(logistic, data, lambda h: optax.inject_hyperparams(optax.sgd)(
      learning_rate=h["learning_rate"], momentum=0.9), space, epochs=6,
      controller=search.pbt(6, interval=2, fraction=0.34))
  moved = [k for k in range(6) if (result.lineage(k) != k).any()]
  assert moved  # at least one line went through another variant
  k = moved[0]
  line = result.lineage(k)
  replay = run(logistic, data, lambda h: optax.inject_hyperparams(optax.sgd)(
      learning_rate=result.lr_schedule(k), momentum=0.9), [{"replay": k}], epochs=6)
  np.testing.assert_allclose(replay.step_history["step_lr"][:, 0],
                             np.stack([result.step_history["step_lr"][e, s]
                                       for e, s in enumerate(line)]), rtol=1e-6)
  np.testing.assert_allclose(replay.history["valid_loss"][:, 0],
                             [result.history["valid_loss"][e, s] for e, s in enumerate(line)],
                             rtol=1e-5)


def test_from_values_is_a_pure_schedule():
  schedule = schedules.from_values([0.3, 0.2, 0.1])
  np.testing.assert_allclose(jax.jit(schedule)(jnp.asarray(1)), 0.2)
  np.testing.assert_allclose(jax.vmap(schedule)(jnp.arange(-1, 5)),
                             [0.3, 0.3, 0.2, 0.1, 0.1, 0.1], rtol=1e-6)
  for bad, says in (([], "non-empty"), ([0.1, -1.0], "at step 1"), ([[0.1]], "1-D"),
                    ([0.1, float("nan")], "finite"), ([0.1, 1e39], "finite")):
    with pytest.raises((ValueError, TypeError), match=says):
      schedules.from_values(bad)


# -- resume, identity, a user's controller ----------------------------------------------------

class Interrupt(Exception):
  pass


def _interrupt_after(epoch):
  def hook(e, history):
    if e == epoch:
      raise Interrupt
  return hook


def _assert_same_history(a, b):
  assert a.history.keys() == b.history.keys()
  for field in a.history:
    if field == "group_seconds":
      continue
    np.testing.assert_array_equal(a.history[field], b.history[field], err_msg=field)
  np.testing.assert_array_equal(a.step_history["step_loss"], b.step_history["step_loss"])


@pytest.mark.parametrize("controller, stop_after", [
    (search.pbt(6, interval=2, resample_probability=0.5), 2),  # exploits before epoch 4
    (search.successive_halving(9, reduction=3, min_epochs=2), 0),  # the rung before 2
], ids=["pbt", "successive-halving"])
def test_an_interrupted_search_resumes_bit_identical(data, tmp_path, controller, stop_after):
  model = NormNet()  # dropout: a resumed run must derive the same keys
  space = search.search_space(learning_rate=search.log_uniform(1e-3, 0.3))
  fn = lambda h: optax.inject_hyperparams(optax.adam)(learning_rate=h["learning_rate"])  # noqa: E731
  kw = dict(epochs=6, controller=controller)
  straight = run(model, data, fn, space, **kw)
  with pytest.raises(Interrupt):
    run(model, data, fn, space, checkpoint_dir=tmp_path / "ck",
        on_epoch_end=_interrupt_after(stop_after), **kw)
  resumed = run(model, data, fn, space, checkpoint_dir=tmp_path / "ck", **kw)
  _assert_same_history(resumed, straight)
  acted = ((resumed.history["parent"] != np.arange(resumed.history["parent"].shape[1]))
           | (resumed.history["alive"] == 0))
  assert acted[stop_after + 1:].any()  # the controller acted after the resume
  # Another controller is another run: refused, naming what differs.
  with pytest.raises(DifferentSweepError, match=r"search\.controller"):
    run(model, data, fn, space, checkpoint_dir=tmp_path / "ck", epochs=6,
        controller=dataclasses.replace(controller, seed=5))


@pytest.fixture
def compiles():
  """How many XLA programs were compiled so far (a one-element list, live)."""
  count = [0]

  def listener(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
      count[0] += 1

  jax.monitoring.register_event_duration_secs_listener(listener)
  yield count
  jax.monitoring.unregister_event_duration_listener(listener)


@pytest.mark.parametrize("variants_per_call", [1, 4], ids=["one-per-call", "vmapped"])
def test_a_users_controller_refills_slots_without_recompiling(data, logistic, compiles,
                                                              variants_per_call):
  space = search.search_space(learning_rate=search.log_uniform(1e-3, 1.0),
                              momentum=search.uniform(0.0, 0.9))
  count = compiles
  seen = {}
  result = run(logistic, data, sgd_momentum, space, epochs=5,
               controller=RefillWorst(samples=4), variants_per_call=variants_per_call,
               on_epoch_end=lambda e, h: seen.setdefault(e, count[0]))
  assert seen[4] == seen[0]  # decisions at epochs 2, 3, 4: no program compiled for them
  started = result.history["started"]
  assert started[0].all() and (started[1] == 0).all()
  assert (started[2:].sum(axis=1) == 1).all()  # one restart before each epoch from 2 on
  drawn = space.sample(7, seed=0)
  for epoch in range(2, 5):
    (slot,) = np.flatnonzero(started[epoch])
    np.testing.assert_allclose(result.history["hparams.learning_rate"][epoch, slot],
                               drawn[4 + epoch - 2]["learning_rate"], rtol=1e-6)
  for slot in np.flatnonzero(started[2:].any(axis=0)):  # a line begins at its last start
    last = 2 + int(np.flatnonzero(started[2:, slot])[-1])
    line = result.lineage(slot)
    assert (line[:last] == -1).all() and (line[last:] == slot).all(), line
  assert int(result.controller_state["drawn"]) == 7


def test_decisions_the_sweep_cannot_do_are_refused_naming_the_controller(data, logistic):
  @dataclasses.dataclass(frozen=True)
  class AcrossGroups:
    def init(self, setup):
      return None, {}

    def decide(self, state, view):
      decisions = view.keep()
      decisions.exploit(1, 0)  # variant 0 is an Adam, variant 1 an SGD: other states
      return state, decisions

  def fn(h):
    return optax.adam(h["learning_rate"]) if h["kind"] == "adam" else optax.sgd(h["learning_rate"])

  with pytest.raises(DecisionError, match=r"AcrossGroups.*cannot continue from"):
    run(logistic, data, fn, [{"kind": "adam", "learning_rate": 0.01},
                             {"kind": "sgd", "learning_rate": 0.1}], controller=AcrossGroups())

  @dataclasses.dataclass(frozen=True)
  class NewStatic:
    def init(self, setup):
      return None, {}

    def decide(self, state, view):
      return state, view.keep().set_hparams(0, {"kind": "sgd"})

  with pytest.raises(DecisionError, match=r"kind is not a number"):
    run(logistic, data, fn, [{"kind": "adam", "learning_rate": 0.01}], controller=NewStatic())
  with pytest.raises(ValueError, match="give a `controller`"):
    run(logistic, data, fn, SPACE)
  with pytest.raises(TypeError, match="`controller` must have init"):
    run(logistic, data, fn, [{"kind": "adam", "learning_rate": 0.01}], controller=object())


# -- search spaces ---------------------------------------------------------------------------

def test_search_spaces_draw_quasi_random_points_deterministically():
  from scipy.stats import qmc
  space = search.search_space(a=search.uniform(-1.0, 1.0), b=search.log_uniform(1e-4, 1.0),
                              n=search.int_uniform(2, 5), kind=search.choice(["x", "y"]),
                              fixed=0.5)
  drawn = space.sample(16, seed=3)
  u = qmc.Halton(4, scramble=True, seed=3).random(16)  # the independent reference
  np.testing.assert_allclose([c["a"] for c in drawn], -1 + 2 * u[:, 0])
  np.testing.assert_allclose([c["b"] for c in drawn], np.exp(np.log(1e-4) + u[:, 1] * np.log(1e4)))
  assert [c["n"] for c in drawn] == [int(2 + np.floor(x * 4)) for x in u[:, 2]]
  assert [c["kind"] for c in drawn] == [["x", "y"][int(x * 2)] for x in u[:, 3]]
  assert all(c["fixed"] == 0.5 for c in drawn)
  assert space.sample(4, seed=3, skip=12) == drawn[12:]
  assert space.sample(16, seed=3) == drawn and space.sample(16, seed=4) != drawn
  assert space.static_names() == ["kind"]
  for sampler in ("sobol", "random"):
    other = dataclasses.replace(space, sampler=sampler).sample(8, seed=0)
    assert all(-1 <= c["a"] <= 1 and 1e-4 <= c["b"] <= 1 for c in other)


@pytest.mark.parametrize("make, says", [
    (lambda: search.uniform(1.0, 1.0), "`low` must be below `high`"),
    (lambda: search.log_uniform(0.0, 1.0), "0 < low < high"),
    (lambda: search.int_uniform(1.5, 3), "`low` must be an integer"),
    (lambda: search.choice([]), "`options` must be a non-empty list"),
    (lambda: search.search_space(), "at least one hyperparameter"),
    (lambda: search.search_space(a=search.uniform(0, 1), sampler="grid"), "`sampler`"),
    (lambda: search.successive_halving(9, reduction=1), "`reduction`"),
    (lambda: search.pbt(8, fraction=0.7), "`fraction`"),
    (lambda: search.pbt(8, perturb=(0.8, -1.0)), "`perturb`"),
    (lambda: search.median_stopping(warmup_epochs=-1), "`warmup_epochs`"),
    (lambda: search.random_search(0), "`samples`"),
])
def test_bad_search_arguments_are_refused_naming_them(make, says):
  with pytest.raises(ValueError, match=says):
    make()


# -- the accelerator plan: one program over the group, sharded over devices ------------------

_SHARDED = r"""
import json, sys
import numpy as np, optax, lrjax, jax
from lrjax import models
from lrjax.data import synthetic
from lrjax.train import search
assert len(jax.devices()) == int(sys.argv[1])
data = synthetic("tiny", num_train=192, num_test=64, seed=3)
space = search.search_space(learning_rate=search.log_uniform(1e-3, 1.0))
fn = lambda h: optax.inject_hyperparams(optax.sgd)(learning_rate=h["learning_rate"],
                                                   momentum=0.9)
out = {}
for name, controller in (("pbt", search.pbt(6, interval=2)),
                         ("halving", search.successive_halving(6, reduction=3))):
  result = lrjax.sweep(models.get_model("logistic"), data, fn, space, epochs=4,
                       batch_size=32, controller=controller, progress=False)
  out[name] = {"plan": result.plans[0],
               "history": {k: np.nan_to_num(v, nan=-9.0).tolist()
                           for k, v in result.history.items() if k != "group_seconds"}}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_search_sharded_over_devices_equals_one_device(data, logistic):
  """On several devices a group is one program sharded over them (the accelerators'
  plan): decisions gather across devices and give the one-device run's search."""
  import json
  import os
  import subprocess
  import sys
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join([
      os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=4"]))
  proc = subprocess.run([sys.executable, "-c", _SHARDED, "4"], env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  sharded = json.loads(proc.stdout.strip().splitlines()[-1])
  space = search.search_space(learning_rate=search.log_uniform(1e-3, 1.0))
  fn = lambda h: optax.inject_hyperparams(optax.sgd)(learning_rate=h["learning_rate"],  # noqa: E731
                                                     momentum=0.9)
  for name, controller in (("pbt", search.pbt(6, interval=2)),
                           ("halving", search.successive_halving(6, reduction=3))):
    got = sharded[name]
    assert got["plan"]["calls_per_epoch"] == 1 and got["plan"]["variants_per_call"] == 8
    alone = run(logistic, data, fn, space, controller=controller, variants_per_call=1)
    for field in ("alive", "parent", "started"):
      np.testing.assert_array_equal(got["history"][field], alone.history[field],
                                    err_msg=f"{name} {field}")
    for field in ("valid_loss", "train_loss", "lr", "hparams.learning_rate"):
      np.testing.assert_allclose(got["history"][field],
                                 np.nan_to_num(alone.history[field], nan=-9.0), rtol=1e-5,
                                 atol=1e-6, err_msg=f"{name} {field}")


def test_readme_search_example_runs_in_at_most_15_lines(capsys):
  import re
  from pathlib import Path
  readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
  match = re.search(r"<!-- search-example -->\s*```python\n(.*?)```", readme, re.S)
  assert match, "README.md lost its `<!-- search-example -->` block"
  code = match.group(1)
  assert len(code.strip().splitlines()) <= 15
  namespace: dict = {}
  exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
  result, best = namespace["result"], namespace["best"]
  assert (result.history["parent"] != np.arange(8)).any()  # PBT copied states
  assert isinstance(namespace["replay"], optax.GradientTransformation)
  assert result.lr_values(best).size == 6 * (1080 // 64)
  assert result.names[best] in capsys.readouterr().out


def test_pytorchs_plateau_rule_reports_its_reductions_as_the_index(data, logistic):
  result = run(logistic, data, lambda h: optax.chain(
      optax.trace(0.9), strategies.reduce_lr_on_plateau(h["lr"], factor=0.5, patience=0)),
      [{"lr": 0.3}], epochs=4)
  index = result.history["index"][:, 0]
  lr = result.history["lr"][:, 0]
  assert (index >= 0).all()  # read from num_reductions, not -1
  np.testing.assert_allclose(lr, 0.3 * 0.5 ** index, rtol=1e-6)


def test_optimizer_fn_is_told_the_runs_length(data, logistic, tmp_path):
  seen = []

  def fn(h):
    seen.append((h["total_steps"], h["steps_per_epoch"], h["epochs"]))
    return optax.inject_hyperparams(optax.sgd)(
        learning_rate=optax.cosine_decay_schedule(h["learning_rate"], h["total_steps"]))

  result = run(logistic, data, fn, [{"learning_rate": 0.1}], epochs=3)
  steps = steps_of(data)
  assert set(seen) == {(3 * steps, steps, 3)}
  rates = result.step_history["step_lr"][:, 0].reshape(-1)
  np.testing.assert_allclose(rates, optax.cosine_decay_schedule(0.1, 3 * steps)(
      np.arange(3 * steps)), rtol=1e-5, atol=1e-8)
  assert rates[-1] > 0  # the schedule ends with the run, not before it
  with pytest.raises(ValueError, match="may not name total_steps"):
    run(logistic, data, fn, [{"learning_rate": 0.1, "total_steps": 5}])
  # The sweep file: total_steps = "auto" is the run's length.
  from lrjax.train.frontends import sweep_file
  path = tmp_path / "auto.toml"
  path.write_text('epochs = 2\n[schedule]\nname = "cosine_annealing"\nmax_lr = 0.1\n'
                  'total_steps = "auto"\n[grid]\nmomentum = [0.0]\n')
  spec = sweep_file.load(path)
  tx = spec.optimizer_fn({"momentum": 0.0, "total_steps": 7, "steps_per_epoch": 7,
                          "epochs": 1})
  state = tx.init({"w": jnp.zeros(2)})
  for _ in range(7):
    _, state = tx.update({"w": jnp.ones(2)}, state, {"w": jnp.zeros(2)})
  np.testing.assert_allclose(float(state.hyperparams["learning_rate"]),
                             float(schedules.cosine_annealing(0.1, 7)(6)), rtol=1e-6)


def test_schedule_free_sweeps_are_evaluated_at_optaxs_evaluation_weights(data, logistic):
  """optax's schedule-free SGD trains y and is evaluated at schedule_free_eval_params:
  the engine's validation loss is the model's at those weights (compared by hand)."""
  from lrjax.train.engine.step import evaluate
  result = run(logistic, data, lambda h: optax.contrib.schedule_free_sgd(h["learning_rate"]),
               [{"learning_rate": 0.5}], epochs=2, keep="all")
  kept = result.trained_state(0)
  want = optax.contrib.schedule_free_eval_params(kept["opt_state"], kept["train_params"])
  loss, _ = evaluate(logistic, "classification", want, {}, data.valid_x, data.valid_y, 64)
  np.testing.assert_allclose(result.history["valid_loss"][-1, 0], loss, rtol=1e-5)
  trained, _ = evaluate(logistic, "classification", kept["train_params"], {}, data.valid_x,
                        data.valid_y, 64)
  assert abs(float(trained) - float(loss)) > 1e-4  # the raw weights would report otherwise
  jax.tree.map(np.testing.assert_allclose, result.params(0), want)


# -- after the sweep: the model back, divergence said at once ------------------------------

def test_the_best_model_comes_back_in_memory_and_from_disk(data, tmp_path):
  model = NormNet()
  result = run(model, data, adam, {"learning_rate": [0.03, 0.003, 0.0003]}, epochs=2,
               out_dir=tmp_path / "out", keep="all")
  best = result.best()
  accs = [row["final_valid_acc"] for row in result.summary]
  assert best["index"] == int(np.argmax(accs)) and best["name"] == result.names[best["index"]]
  assert result.best("final_valid_loss")["index"] == int(np.argmin(
      [row["final_valid_loss"] for row in result.summary]))
  x = jnp.asarray(data.valid_x[:16])
  from lrjax.train import load_variant
  for name in result.names:
    logits = model.apply(result.variables(name), x, train=False)
    loaded = load_variant(tmp_path / "out", name)  # checksum-verified
    again = model.apply({"params": loaded["params"], **loaded["model_state"]}, x, train=False)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(logits))
  # The recorded validation accuracy is that of these weights.
  from lrjax.train.engine.step import evaluate
  _, acc = evaluate(model, "classification", result.params(best["name"]),
                    result.model_state(best["name"]), data.valid_x, data.valid_y, 64)
  np.testing.assert_allclose(acc, accs[best["index"]], rtol=1e-6)
  # keep="best" (the default) keeps the best alone; a damaged copy is refused in one line.
  only = run(model, data, adam, {"learning_rate": [0.03, 0.003]}, epochs=1,
             out_dir=tmp_path / "one")
  assert list(only.models) == [only.best()["index"]]
  with pytest.raises(KeyError, match="was not kept"):
    only.params(1 - only.best()["index"])
  from lrjax.train import ModelStoreError
  with pytest.raises(ModelStoreError, match="no variant 'nope' saved"):
    load_variant(tmp_path / "one", "nope")
  folder = next(p for p in (tmp_path / "one" / "models").iterdir() if p.is_dir())
  biggest = max((p for p in folder.rglob("*") if p.is_file() and "lrjax" not in p.name),
                key=lambda p: p.stat().st_size)
  raw = bytearray(biggest.read_bytes())
  raw[len(raw) // 2] ^= 0xFF
  biggest.write_bytes(bytes(raw))
  with pytest.raises(ModelStoreError, match="is damaged"):
    load_variant(tmp_path / "one", only.best()["name"])
  with pytest.raises(ValueError, match="`keep`"):
    run(model, data, adam, [{"learning_rate": 0.1}], keep="some")


def test_a_diverging_variant_is_warned_the_epoch_it_happens(data, logistic):
  with pytest.warns(lrjax.train.DivergenceWarning,
                    match=r"variant 'learning_rate=1e\+38,seed=0' diverged in epoch 1") as seen:
    run(logistic, data, lambda h: optax.sgd(h["learning_rate"]),
        {"learning_rate": [0.1, 1e38]}, epochs=3)
  assert len([w for w in seen if issubclass(w.category, lrjax.train.DivergenceWarning)]) == 1


def test_every_injected_hyperparameter_is_recorded_per_epoch(data, logistic):
  """As Lightning's LearningRateMonitor: the rate, and every other hyperparameter
  optax.inject_hyperparams holds (here b1, weight decay: fixed and swept)."""
  result = run(logistic, data, lambda h: optax.inject_hyperparams(optax.adamw)(
      learning_rate=optax.linear_schedule(0.01, 0.001, 3 * steps_of(data)), b1=0.8,
      weight_decay=h["wd"]), {"wd": [1e-4, 1e-2]}, epochs=3)
  h = result.history
  np.testing.assert_allclose(h["opt.b1"], 0.8, rtol=1e-6)
  np.testing.assert_allclose(h["opt.weight_decay"], [[1e-4, 1e-2]] * 3, rtol=1e-6)
  assert "opt.learning_rate" not in h and np.all(np.diff(h["lr"][:, 0]) < 0)  # the schedule
