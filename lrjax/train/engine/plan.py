"""The execution plan of a group: how many of its variants one compiled call trains.

A group of K variants can run as one vmapped program over all K (one call per epoch),
as K calls of a one-variant program (sequential), or in chunks in between.  Every plan
computes the same numbers (each variant's arithmetic does not depend on its
neighbours; tested to 1e-5), and every plan compiles ONE program per group: a chunk's
hyperparameters are inputs of that program, and the last chunk is padded with copies of
the group's last variant (trained, then dropped from the results).

Which plan is fastest depends on the backend:

* On an accelerator one small model cannot fill the device, and the vmapped program
  over all K is several times faster than K calls (2.6x measured by the issue on an
  H100 with im2col convolutions): the plan is always one program per group.
* On a CPU the step of one model of the report's size already keeps every core busy,
  so vmapping saves no arithmetic, and XLA:CPU runs the variant-batched forms of the
  layers (batched matrix products, grouped convolutions) and their K-fold working set
  slower than K plain calls: MNIST CNN, 13 SGD variants, batch 64, 2-core CPU, one
  call over all 13 took 24.0 s per epoch, chunks of 2 took 14.2 s, 13 calls of one
  5.5 s.  For very small models the opposite holds: the loop and call overheads
  dominate a step of a few microseconds, and logistic regression on 8x8 images ran 8x
  faster vmapped (0.036 s vs 0.29 s); the MNIST CNN on 8x8 images (3.7 MiB per step)
  was even.  The rule therefore vmaps as many variants as fit a budget of
  `VMAP_BUDGET_BYTES` of one-step working set (`step_bytes`, read off the traced step:
  no compile, no timing), at least one.  `benchmarks/sweep_benchmark.py` times the
  automatic plan against every forced one.

The user overrides the rule with ``SweepConfig.variants_per_call`` (``lrjax sweep
--variants-per-call``); the plan used is reported in the results.

On a CPU the calls of an epoch also run side by side, one per core
(``concurrent_calls``): XLA:CPU gets little from a second core on one small model's
step (MNIST CNN: 4.5-5.2 ms per step on one core, 3.4-5.5 on two), so two one-variant
calls at once do more.  14 report settings, MNIST CNN, 4,096 images, 2-core CPU, six
interleaved rounds: 2.90 s per epoch with two calls at once, 3.38 s one after another
(1.17x), the same numbers.  Each call is still the group's one compiled program; a
call's results do not depend on what runs beside it (tested bit-equal).  In a sweep the
calls of all groups share the threads (`lrjax.train.runner.loop`), so groups of one call (a
grid over optimizers, one variant each) run side by side too: SGD + Adam, one variant
each, MNIST CNN, 1.08x and 1.16x over each group on its own (two A/Bs of five rounds); the
report's 13 SGD + 1 Adam calls run as 7 pairs, even within noise (0.98x).  The user sets
the number of calls at once with ``SweepConfig.concurrent_calls`` (``lrjax sweep
--concurrent-calls``; 1: one after another).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import jax
from jax.extend import core as jex_core

from lrjax.errors import ArgumentError

# One-step working set (all variants of a call together) up to which vmapping wins on
# CPU: between the measured 0.08 MiB (vmapping 8x faster) and 3.7 MiB (even).
VMAP_BUDGET_BYTES = 2 * 2**20


@dataclasses.dataclass(frozen=True)
class ExecutionPlan:
  """How a group of ``num_variants`` variants is run.

  Attributes:
    num_variants: the group's real variants.
    chunk: variants trained by one compiled call.
    reason: why this chunk (printed in the results).
    concurrent_calls: compiled calls run at once in an epoch (threads; 1: one after
      another): this group's calls, and in a sweep the other groups' calls with them
      (`lrjax.train.runner.loop`), so a group of one call may run beside another group's.
  """

  num_variants: int
  chunk: int
  reason: str
  concurrent_calls: int = 1

  @property
  def num_calls(self) -> int:
    """Compiled calls per epoch."""
    return -(-self.num_variants // self.chunk)

  @property
  def padded(self) -> int:
    """Variants trained per epoch, padding of the last call included."""
    return self.num_calls * self.chunk

  def to_dict(self) -> dict:
    return {"num_variants": self.num_variants, "variants_per_call": self.chunk,
            "calls_per_epoch": self.num_calls, "concurrent_calls": self.concurrent_calls,
            "reason": self.reason}


def cpu_cores() -> int:
  """The cores this process may run on."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def with_concurrency(plan: ExecutionPlan, backend: str,
                     requested: int | None = None) -> ExecutionPlan:
  """Calls at once: ``requested``, else on a CPU one per core (module docstring);
  elsewhere the device runs one program at a time.  Not cut to the group's own calls:
  in a sweep the other groups' calls run beside them."""
  if requested:
    return dataclasses.replace(plan, concurrent_calls=requested,
                               reason=f"{plan.reason}; {requested} at once (requested)")
  if backend != "cpu":
    return plan
  return dataclasses.replace(plan, concurrent_calls=cpu_cores())


def _check_request(name: str, value) -> None:
  if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                            or value < 0):
    raise ArgumentError(name, "must be a non-negative integer (0: automatic), "
                        f"got {value!r}.")


def step_bytes(fn, *args) -> int:
  """Bytes of every intermediate value of ``fn(*args)``, read from its jaxpr.

  An upper bound of one variant's working set in a training step (XLA fuses some of
  them away); only tracing is done, nothing is compiled or run.
  """
  closed = jax.make_jaxpr(fn)(*args)
  total = 0

  def visit(jaxpr):
    nonlocal total
    for eqn in jaxpr.eqns:
      for var in eqn.outvars:
        aval: Any = getattr(var, "aval", None)
        if hasattr(aval, "shape") and hasattr(aval, "dtype"):
          total += math.prod(aval.shape) * aval.dtype.itemsize
      for sub in jex_core.jaxprs_in_params(eqn.params):
        visit(sub)

  visit(closed.jaxpr)
  return int(total)


def choose_chunk(num_variants: int, *, backend: str,
                 variant_bytes: int | None) -> tuple[int, str]:
  """The automatic rule (see the module docstring): (variants per call, reason)."""
  if backend != "cpu":
    return num_variants, f"{backend}: one vmapped program over the whole group"
  if num_variants == 1:
    return 1, "cpu: a single variant"
  if not variant_bytes:
    return 1, "cpu: one variant per call (working set unknown)"
  chunk = max(1, min(num_variants, VMAP_BUDGET_BYTES // variant_bytes))
  return chunk, (f"cpu: {chunk} variant(s) per call ({variant_bytes / 2**20:.2f} MiB per "
                 f"step each; vmapped up to {VMAP_BUDGET_BYTES / 2**20:.0f} MiB)")


def check_concurrent_calls(value: int | None, devices: int = 1) -> None:
  """``concurrent_calls`` as the user gave it: a non-negative integer, at most 1 when the
  group is sharded over several devices (see `make_plan`)."""
  _check_request("concurrent_calls", value)
  if devices > 1 and value and value > 1:
    raise ArgumentError("concurrent_calls", "must be 0 or 1 when the variants are sharded "
                        f"over {devices} devices (their calls run one at a time), got {value}.")


def make_plan(num_variants: int, requested: int | None = None, *,
              backend: str | None = None, variant_bytes: int | None = None,
              multiple: int = 1, concurrent_calls: int | None = None) -> ExecutionPlan:
  """The plan of a group.

  Args:
    num_variants: the group's variants.
    requested: variants per call forced by the user (None or 0: automatic). Values
      above ``num_variants`` are cut to it.
    backend: JAX's default backend if None.
    variant_bytes: one variant's step working set (`step_bytes`), for the CPU rule.
    multiple: the chunk is rounded up to a multiple of this (the device count, when
      the variant axis is sharded over devices).
    concurrent_calls: calls of an epoch run at once, forced by the user (None or 0:
      automatic).  A sharded group runs one call at a time: its calls are collectives over
      every device (and every process), which must start in the same order everywhere.
  """
  _check_request("variants_per_call", requested)
  check_concurrent_calls(concurrent_calls, devices=multiple)
  backend = backend or jax.default_backend()
  if multiple > 1:
    # Sharded over devices: every device takes its slice of one program's variants.
    chunk = -(-num_variants // multiple) * multiple
    reason = f"{multiple} devices: one program over the group, sharded"
    if requested:
      chunk = min(chunk, -(-requested // multiple) * multiple)
      reason = f"requested {requested}, rounded to a multiple of {multiple} devices"
    return ExecutionPlan(num_variants, chunk, reason)
  if requested:
    return with_concurrency(
        ExecutionPlan(num_variants, min(requested, num_variants), f"requested {requested}"),
        backend, concurrent_calls)
  chunk, reason = choose_chunk(num_variants, backend=backend, variant_bytes=variant_bytes)
  return with_concurrency(ExecutionPlan(num_variants, chunk, reason), backend,
                          concurrent_calls)


# Evaluation batch per backend.  On a CPU a batch of 1000 images streams its
# activations from memory (MNIST CNN: 54 MB for the first convolution alone); 200 keeps
# them near the cache and was about 1.5x faster (benchmarks/sweep_benchmark.py,
# --eval-batch-sizes).  Accelerators want large batches.
EVAL_BATCH_SIZE = {"cpu": 200}
EVAL_BATCH_SIZE_ELSEWHERE = 1000


def eval_batch_size(requested: int | None = None, backend: str | None = None) -> int:
  """The evaluation batch: ``requested`` if positive, else the backend's default."""
  if requested:
    return int(requested)
  backend = backend or jax.default_backend()
  return EVAL_BATCH_SIZE.get(backend, EVAL_BATCH_SIZE_ELSEWHERE)
