"""lrjax.train.engine.plan: every execution plan gives the same results, one compile per group."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from lrjax.train import SweepConfig, Variant, run_sweep
from lrjax.train.engine import epoch as epoch_lib
from lrjax.train.engine import plan as plan_lib
from lrjax.train.frontends import optimizers
from lrjax.train.reports import results

# Five SGD variants on two seeds (so the data orders differ inside a chunk) + one Adam.
VARIANTS = tuple(
    Variant(f"v{i}", "seq" + str(1 + i % 4), ("epoch", "cutoff", "oscillate")[i % 3],
            0.1 * (1 + i), seed=i % 2) for i in range(5)) + (
    Variant("adam", "constant", "fixed", 0.01, "adam"),)
FIELDS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "lr", "index")


def _config(**kw):
  return SweepConfig(**{"model": "mnist_cnn", "variants": VARIANTS, "epochs": 2,
                        "batch_size": 32, **kw})


@pytest.fixture(scope="module")
def sequential(blobs):
  return run_sweep(_config(variants_per_call=1), blobs, progress=False)


@pytest.mark.parametrize("per_call", [2, 5])  # 2: the last chunk padded; 5: all at once
def test_vmapped_plans_equal_sequential(blobs, sequential, per_call):
  result = run_sweep(_config(variants_per_call=per_call), blobs, progress=False)
  assert result.plans[0]["variants_per_call"] == per_call
  assert result.plans[0]["calls_per_epoch"] == -(-5 // per_call)
  for field in FIELDS:
    np.testing.assert_allclose(result.history[field], sequential.history[field],
                               rtol=1e-5, atol=1e-6, err_msg=field)
  np.testing.assert_allclose(result.step_history["step_loss"],
                             sequential.step_history["step_loss"], rtol=1e-5, atol=1e-6)


def test_plans_are_reported_in_the_results(sequential, tmp_path):
  plans = sequential.plans
  assert [p["variants"] for p in plans] == [[f"v{i}" for i in range(5)], ["adam"]]
  assert plans[0]["calls_per_epoch"] == 5 and plans[0]["reason"] == "requested 1"
  assert plans[0]["eval_batch_size"] == plan_lib.eval_batch_size()
  results.save(sequential, tmp_path)
  assert json.loads((tmp_path / "results.json").read_text())["plans"] == plans
  assert "1 per compiled call, 5 call(s) per epoch" in (tmp_path / "summary.md").read_text()


def test_one_compiled_program_serves_every_chunk(blobs):
  data = epoch_lib.put_data(blobs)
  ((spec, hyper, _),) = optimizers.group_variants(VARIANTS[:5])
  from lrjax import models
  trainer = epoch_lib.GroupTrainer(models.get_model("logistic"), spec, hyper,
                                   task="classification", batch_size=32, eval_batch_size=100,
                                   variants_per_call=2)
  assert trainer.plan.num_calls == 3 and trainer.plan.padded == 6
  state = trainer.init(data.train_x[:1])
  trainer.compile(state, data)
  for epoch in range(2):
    state, metrics = trainer.run_epoch(state, data, epoch)
  assert metrics.valid_loss.shape == (5,)
  assert jax.tree_util.tree_leaves(state)[0].shape[0] == 6
  # Every call went through the one ahead-of-time program: jit never traced again.
  assert trainer._epoch_fn._cache_size() == 0


def test_automatic_rule():
  gpu = plan_lib.make_plan(14, backend="gpu", variant_bytes=10**9)
  assert (gpu.chunk, gpu.num_calls) == (14, 1)
  assert plan_lib.make_plan(14, backend="tpu").chunk == 14
  big = plan_lib.make_plan(14, backend="cpu", variant_bytes=30 * 2**20)
  assert (big.chunk, big.num_calls, big.padded) == (1, 14, 14)
  small = plan_lib.make_plan(14, backend="cpu", variant_bytes=2**16)
  assert small.chunk == 14  # 14 x 64 KiB fit the budget
  middle = plan_lib.make_plan(14, backend="cpu", variant_bytes=plan_lib.VMAP_BUDGET_BYTES // 4)
  assert (middle.chunk, middle.num_calls, middle.padded) == (4, 4, 16)
  assert plan_lib.make_plan(14, backend="cpu").chunk == 1  # unknown working set
  assert "cpu" in big.reason and "MiB" in big.reason


def test_requested_plan_and_devices():
  assert plan_lib.make_plan(14, 3, backend="gpu").chunk == 3
  assert plan_lib.make_plan(4, 10, backend="cpu").chunk == 4
  sharded = plan_lib.make_plan(6, backend="cpu", multiple=8)
  assert (sharded.chunk, sharded.num_calls) == (8, 1)
  assert plan_lib.make_plan(20, 3, backend="cpu", multiple=8).chunk == 8
  for bad in (-1, 1.5, True):
    with pytest.raises(ValueError, match="`variants_per_call`"):
      plan_lib.make_plan(4, bad)
  with pytest.raises(ValueError, match="`variants_per_call`"):
    _config(variants_per_call=-2)


def test_cpu_calls_run_one_per_core(monkeypatch):
  monkeypatch.setattr(plan_lib, "cpu_cores", lambda: 4)
  assert plan_lib.make_plan(14, 1, backend="cpu").concurrent_calls == 4
  assert plan_lib.make_plan(14, backend="cpu", variant_bytes=30 * 2**20).concurrent_calls == 4
  # Not cut to the group's own calls: in a sweep other groups' calls run beside them.
  assert plan_lib.make_plan(14, 5, backend="cpu").concurrent_calls == 4  # 3 calls
  assert plan_lib.make_plan(14, 14, backend="cpu").concurrent_calls == 4  # 1 call
  # An accelerator, or the variants sharded over devices: one at a time.
  assert plan_lib.make_plan(14, 1, backend="gpu").concurrent_calls == 1
  assert plan_lib.make_plan(20, 3, backend="cpu", multiple=8).concurrent_calls == 1
  monkeypatch.setattr(plan_lib, "cpu_cores", lambda: 1)
  assert plan_lib.make_plan(14, 1, backend="cpu").concurrent_calls == 1
  assert plan_lib.make_plan(3, 1, backend="cpu").to_dict()["concurrent_calls"] == 1


def test_calls_at_once_requested(monkeypatch):
  monkeypatch.setattr(plan_lib, "cpu_cores", lambda: 2)
  one = plan_lib.make_plan(14, 1, backend="cpu", concurrent_calls=1)
  assert (one.num_calls, one.concurrent_calls) == (14, 1)
  assert one.reason == "requested 1; 1 at once (requested)"
  # More than the cores or the group's calls is the user's call.
  assert plan_lib.make_plan(14, 1, backend="cpu", concurrent_calls=4).concurrent_calls == 4
  assert plan_lib.make_plan(14, 5, backend="cpu", concurrent_calls=9).concurrent_calls == 9
  assert plan_lib.make_plan(14, 1, backend="gpu", concurrent_calls=2).concurrent_calls == 2
  auto = plan_lib.make_plan(14, backend="cpu", variant_bytes=30 * 2**20, concurrent_calls=0)
  assert auto.concurrent_calls == 2 and "at once" not in auto.reason
  # Sharded: 0 and 1 are accepted (one at a time), more is refused by name.
  assert plan_lib.make_plan(20, 3, backend="cpu", multiple=8,
                            concurrent_calls=1).concurrent_calls == 1
  with pytest.raises(ValueError, match="`concurrent_calls` must be 0 or 1 .* 8 devices"):
    plan_lib.make_plan(20, 3, backend="cpu", multiple=8, concurrent_calls=2)
  for bad in (-1, 1.5, True):
    with pytest.raises(ValueError, match="`concurrent_calls` must be a non-negative"):
      plan_lib.make_plan(4, 1, concurrent_calls=bad)
  with pytest.raises(ValueError, match="`concurrent_calls`"):
    _config(concurrent_calls=-1)


@pytest.mark.parametrize("per_call", [1, 5])  # 5: each group is one call
def test_groups_side_by_side_equal_one_call_at_a_time(blobs, per_call):
  """The sweep runs all groups' calls on shared threads (the SGD group's and the Adam
  group's together): the numbers are bit-identical to one call after another."""
  runs = [run_sweep(_config(variants_per_call=per_call, concurrent_calls=at_once), blobs,
                    progress=False) for at_once in (1, 2)]
  assert [p["concurrent_calls"] for p in runs[1].plans] == [2, 2]
  assert "1 call(s) per epoch (up to 2 calls at once, every group's together)" in (
      results.plan_lines(runs[1]))
  assert [p["calls_per_epoch"] for p in runs[1].plans] == [-(-5 // per_call), 1]
  for field in FIELDS:
    np.testing.assert_array_equal(runs[1].history[field], runs[0].history[field],
                                  err_msg=field)
  for field in ("step_loss", "step_lr"):
    np.testing.assert_array_equal(runs[1].step_history[field], runs[0].step_history[field])
  seconds = runs[1].history["group_seconds"]
  assert np.all(seconds > 0) and np.all(seconds <= np.asarray(runs[1].epoch_seconds)[:, None])


def test_calls_at_once_change_no_checkpointed_run(blobs, tmp_path, capsys):
  """A run resumed with another number of calls at once continues (the numbers are the
  same); one asked for another plan of variants per call is another run."""
  from lrjax.train.runner import checkpoint as checkpoint_lib
  config = dict(variants=VARIANTS[:3], epochs=1, variants_per_call=1)
  run_sweep(_config(**config, concurrent_calls=1), blobs, progress=False,
            checkpoint_dir=tmp_path)
  capsys.readouterr()
  resumed = run_sweep(_config(**dict(config, epochs=2), concurrent_calls=2), blobs,
                      progress=False, checkpoint_dir=tmp_path)
  assert "resumed from epoch 1 of 2" in capsys.readouterr().err
  assert resumed.plans[0]["concurrent_calls"] == 2
  with pytest.raises(checkpoint_lib.DifferentSweepError, match="variants_per_call"):
    run_sweep(_config(**dict(config, epochs=2, variants_per_call=3)), blobs,
              progress=False, checkpoint_dir=tmp_path)


def test_calls_side_by_side_equal_one_after_another(blobs):
  """Threads running the chunks' calls at once give bit-identical states and metrics,
  through the one compiled program."""
  from lrjax import models
  data = epoch_lib.put_data(blobs)
  ((spec, hyper, _),) = optimizers.group_variants(VARIANTS[:5])
  runs = []
  for at_once in (1, 3):
    trainer = epoch_lib.GroupTrainer(models.get_model("mnist_cnn"), spec, hyper,
                                     task="classification", batch_size=32,
                                     eval_batch_size=100, variants_per_call=1,
                                     concurrent_calls=at_once)
    assert trainer.plan.concurrent_calls == at_once
    state = trainer.init(data.train_x[:1])
    trainer.compile(state, data)
    epochs = []
    for epoch in range(2):
      state, metrics = trainer.run_epoch(state, data, epoch)
      epochs.append(jax.device_get(metrics))
    assert trainer._epoch_fn._cache_size() == 0  # never traced again: one compile
    runs.append((jax.device_get(state), epochs))
  (state_a, epochs_a), (state_b, epochs_b) = runs
  jax.tree.map(np.testing.assert_array_equal, state_a, state_b)
  jax.tree.map(np.testing.assert_array_equal, epochs_a, epochs_b)


def test_eval_batch_per_backend():
  assert plan_lib.eval_batch_size(backend="cpu") == 200
  assert plan_lib.eval_batch_size(backend="gpu") == 1000
  assert plan_lib.eval_batch_size(64, backend="cpu") == 64
  assert _config().eval_batch_size == 0  # automatic by default
  with pytest.raises(ValueError, match="`eval_batch_size`"):
    _config(eval_batch_size=-1)


def test_step_bytes_reads_the_traced_step():
  import jax.numpy as jnp
  x = jax.ShapeDtypeStruct((64, 100), jnp.float32)
  assert plan_lib.step_bytes(lambda a: jnp.sin(a) * 2.0, x) == 2 * 4 * 64 * 100
  assert plan_lib.step_bytes(lambda a: jnp.sum(a, axis=1), x) == 4 * 64


_SHARDED = r"""
import json, sys
import jax
from lrjax import data
from lrjax.train import SweepConfig, Variant, run_sweep
devices, per_calls = int(sys.argv[1]), [int(a) for a in sys.argv[2:]]
assert jax.device_count() == devices
blobs = data.synthetic("tiny", num_train=640, num_test=200, seed=0)
variants = tuple(Variant(f"v{i}", "seq" + str(1 + i % 4), "epoch", 0.1 * (1 + i), seed=i % 2)
                 for i in range(6))
out = {}
for per_call in per_calls:
  r = run_sweep(SweepConfig(model="logistic", variants=variants, epochs=2, batch_size=32,
                            variants_per_call=per_call), blobs, progress=False)
  out[per_call] = {"plan": r.plans[0], "valid_loss": r.history["valid_loss"].tolist()}
print(json.dumps(out))
"""


# devices, variants_per_call asked -> (variants per call, calls per epoch) of the 6:
# 8 devices: one program sharded over all of them, whatever is asked; 2 devices and 2
# per call: 3 sharded calls per epoch, each a slice of the variant-stacked state placed
# on both devices (the compile once refused such a slice).
SHARDED_CASES = [(8, {"0": (8, 1), "1": (8, 1)}), (2, {"2": (2, 3), "0": (6, 1)})]


@pytest.fixture(scope="module")
def one_device_alone(blobs):
  """The sharded runs' sweep on this process's one device, one variant per call (shared
  by both cases: only read)."""
  variants = tuple(Variant(f"v{i}", "seq" + str(1 + i % 4), "epoch", 0.1 * (1 + i), seed=i % 2)
                   for i in range(6))
  return run_sweep(SweepConfig(model="logistic", variants=variants, epochs=2, batch_size=32,
                               variants_per_call=1), blobs, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("devices, expected", SHARDED_CASES, ids=["8-devices", "2-devices"])
def test_sharded_path_compiles_once_and_equals_one_device(one_device_alone, devices,
                                                          expected):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join([  # + conftest's flags
      os.environ.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={devices}"]))
  proc = subprocess.run([sys.executable, "-c", _SHARDED, str(devices), *expected],
                        env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  alone = one_device_alone
  for per_call, (chunk, calls) in expected.items():
    plan = out[per_call]["plan"]
    assert (plan["variants_per_call"], plan["calls_per_epoch"]) == (chunk, calls)
    np.testing.assert_allclose(out[per_call]["valid_loss"], alone.history["valid_loss"],
                               rtol=1e-5)
