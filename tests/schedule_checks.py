"""Checks shared by tests/test_schedules.py and tests/test_schedules_porting.py.

Both files test schedules the same way (evaluated on a jitted int32 vector, compared
with reference values, run under jax.jit and jax.vmap over their hyperparameters);
the checks live here once, and each file passes its own tolerances.  Imported by
name (``import schedule_checks``), as pytest puts tests/ on sys.path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

RTOL = 1e-6
# The steps `check_jit_vector_and_vmap` evaluates a schedule at.
STEPS = np.arange(120)
# Scalar steps checked one by one, with a Python int and with a traced int32.
SCALAR_STEPS = (0, 1, 7, 33, 119)


def values(schedule, num_steps):
  """The schedule at steps 0..num_steps-1, one jitted call on an int32 vector."""
  return np.asarray(jax.jit(schedule)(jnp.arange(num_steps, dtype=jnp.int32)))


def f32(x):
  """The float32 value of a hyperparameter inside a schedule (1e-200 underflows to 0)."""
  return float(np.float32(x))


def assert_matches(schedule, reference, rtol=RTOL, *, atol_where_zero=0.0):
  """``schedule`` at steps 0..len(reference)-1 is float32 and equals ``reference``
  (float64) to ``rtol``; ``atol_where_zero`` is the absolute tolerance used when the
  reference holds an exact 0 (a relative one cannot be met there), else none."""
  got = values(schedule, len(reference))
  assert got.dtype == np.float32
  ref = np.asarray(reference, np.float64)
  atol = atol_where_zero if np.any(ref == 0) else 0
  np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


def rounded(kwargs):
  """Hyperparameters rounded to float32, the values a vmapped (traced) one has.

  `gamma ** t` (exp_range, seq3, step decays) carries the rounding of `gamma` t
  times, more than 1e-6 after ~40 steps for gamma = 0.9, so the traced and the
  concrete constructions are compared at the same float32 hyperparameters.
  """
  return {k: f32(v) if isinstance(v, float) else v for k, v in kwargs.items()}


def check_jit_vector_and_vmap(factory, static, variants, *, rtol, vmap_rtol, vmap_atol):
  """``factory(**variant, **static)`` agrees with its eager evaluation (op by op) on
  `STEPS` for every variant (at float32 hyperparameters, `rounded`): called with a
  Python int step, under jit with a traced int32 scalar and an int32 vector (float32
  scalars / vectors, to ``rtol``), and under jit(vmap) over all the numeric
  hyperparameters of ``variants`` at once (to ``vmap_rtol`` / ``vmap_atol``)."""
  variants = [rounded(kw) for kw in variants]
  expected = np.stack([np.asarray(factory(**kw, **static)(STEPS)) for kw in variants])
  sched = factory(**variants[0], **static)

  # a Python int step and, under jit, a traced int32 scalar step: float32 scalars
  jitted = jax.jit(sched)
  for t in SCALAR_STEPS:
    for out in (jnp.asarray(sched(t)), jitted(jnp.asarray(t, jnp.int32))):
      assert out.dtype == jnp.float32 and out.shape == ()
      np.testing.assert_allclose(float(out), expected[0, t], rtol=rtol)

  # a vector of int32 steps under jit
  out = jitted(jnp.asarray(STEPS, jnp.int32))
  assert out.dtype == jnp.float32 and out.shape == STEPS.shape
  np.testing.assert_allclose(np.asarray(out), expected[0], rtol=rtol)

  # vmap over all numeric hyperparameters at once (validation skipped for tracers)
  stacked = {k: jnp.asarray([kw[k] for kw in variants]) for k in variants[0]}
  run = jax.jit(jax.vmap(lambda hp: factory(**hp, **static)(jnp.asarray(STEPS))))
  got = run(stacked)
  assert got.dtype == jnp.float32 and got.shape == expected.shape
  np.testing.assert_allclose(np.asarray(got), expected, rtol=vmap_rtol, atol=vmap_atol)
