"""PyTorch's step-function schedulers that lrjax did not have, as pure ``step -> lr``.

Every function takes PyTorch's constructor arguments (``lr`` is the optimizer's initial
rate) and returns ``schedule`` with ``schedule(i)`` = the rate PyTorch uses after ``i``
calls of ``scheduler.step()``, i.e. for the ``i``-th update when stepped per update
(optax's count).  The closed forms are those of PyTorch's ``_get_closed_form_lr``;
PyTorch's recursive updates agree with them to ~1e-15.  The other schedulers are in
``decay`` (``StepLR`` = ``step_decay``, ``ExponentialLR``, ``PolynomialLR``), ``cosine``,
``cyclical`` and ``one_cycle``; ``porting.from_torch`` maps every name.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lrjax import _validation
from lrjax.errors import ArgumentError
from lrjax.schedules import _growth
from lrjax.schedules._numerics import f32 as _f32
from lrjax.schedules._numerics import float_step as _step
from lrjax.schedules._numerics import linear_weights, pow_f32
from lrjax.schedules.base import Schedule
from lrjax.schedules.decay import exponential_decay


def multi_step_lr(lr: float, milestones, gamma: float = 0.1) -> Schedule:
  r"""PyTorch's ``MultiStepLR``: :math:`lr\,\gamma^{\#\{m \in milestones : m \le t\}}`.

  A milestone listed twice multiplies by ``gamma`` twice, as in PyTorch (a ``Counter``).

  Args:
    lr: initial rate, > 0.
    milestones: steps (non-negative ints, any order) where the rate is multiplied by
      ``gamma``; a list or a (possibly traced) int array.
    gamma: factor per milestone, > 0 (``gamma > 1`` grows, bounded by the milestones).

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.multi_step_lr(0.1, [2, 4], 0.5)(t)), 6) for t in (0, 2, 4)]
    [0.1, 0.05, 0.025]
  """
  _validation.check_positive("lr", lr)
  _validation.check_positive("gamma", gamma)
  if _validation.is_concrete(milestones):
    _validation.check_non_negative_int_list("milestones", milestones, allow_empty=True)
    marks = np.asarray(milestones)
    if marks.size and _validation.is_concrete(lr) and _validation.is_concrete(gamma):
      top = float(np.max(np.asarray(lr, np.float64) * np.maximum(
          np.asarray(gamma, np.float64), 1.0) ** marks.size))
      if not top < float(np.finfo(np.float32).max):
        raise ArgumentError("gamma", f"({gamma!r}) ** len(milestones) overflows float32.")

  def schedule(count):
    t = _step(count)
    marks = _f32(milestones).reshape(-1)
    passed = jnp.sum((t[..., None] >= marks).astype(jnp.float32), axis=-1)
    return (_f32(lr) * pow_f32(gamma, passed)).astype(jnp.float32)

  return schedule


def linear_lr(lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
              total_iters: int = 5) -> Schedule:
  r"""PyTorch's ``LinearLR``: the factor goes linearly from ``start_factor`` to
  ``end_factor`` over ``total_iters`` steps, then stays:

  .. math:: lr \Bigl(s + (e - s)\frac{\min(t, T)}{T}\Bigr)

  Args:
    lr: base rate, > 0.
    start_factor: factor at step 0, in (0, 1] (PyTorch's range).
    end_factor: factor from step ``total_iters`` on, in [0, 1].
    total_iters: ``T``, positive int.

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.linear_lr(0.1, 0.1, 1.0, 5)(t)), 6) for t in (0, 1, 5, 9)]
    [0.01, 0.028, 0.1, 0.1]
  """
  _validation.check_positive("lr", lr)
  _validation.check_in_range("start_factor", start_factor, 0.0, 1.0, low_open=True)
  _validation.check_in_range("end_factor", end_factor, 0.0, 1.0)
  _validation.check_positive_int("total_iters", total_iters)

  def schedule(count):
    total = _f32(total_iters)
    w_start, w_end = linear_weights(jnp.minimum(_step(count), total), total)
    factor = _f32(start_factor) * w_start + _f32(end_factor) * w_end
    return (_f32(lr) * factor).astype(jnp.float32)

  return schedule


def constant_lr(lr: float, factor: float = 1.0 / 3, total_iters: int = 5) -> Schedule:
  """PyTorch's ``ConstantLR``: ``lr * factor`` for ``t < total_iters``, then ``lr``.

  Args:
    lr: base rate, > 0.
    factor: factor during the first ``total_iters`` steps, in (0, 1].
    total_iters: number of steps at the reduced rate, int >= 0.

  Example:
    >>> import lrjax.schedules as s
    >>> [round(float(s.constant_lr(0.1, 0.25, 4)(t)), 6) for t in (0, 3, 4)]
    [0.025, 0.025, 0.1]
  """
  _validation.check_positive("lr", lr)
  _validation.check_in_range("factor", factor, 0.0, 1.0, low_open=True)
  _validation.check_non_negative_int("total_iters", total_iters)

  def schedule(count):
    t = _step(count)
    base = _f32(lr)
    return jnp.where(t < _f32(total_iters), base * _f32(factor), base).astype(jnp.float32)

  return schedule


def _tabulate(name: str, fn: Callable, num_steps, first: int) -> np.ndarray:
  """``[fn(first), ..., fn(num_steps)]`` as float64, evaluated in Python (any function)."""
  _validation.check_positive_int("num_steps", num_steps)
  try:
    table = np.asarray([float(fn(k)) for k in range(first, int(num_steps) + 1)], np.float64)
  except Exception as err:  # the user's function: say which argument failed
    raise ArgumentError(name, f"could not be evaluated at the steps {first}.."
                        f"{int(num_steps)}: {err}") from err
  if not (np.all(np.isfinite(table)) and np.all(table >= 0)
          and np.all(table <= _validation.F32_MAX)):
    raise ArgumentError(name, "must give finite (float32) factors >= 0 at every step "
                        f"{first}..{int(num_steps)}.")
  return table


def _probe(name: str, fn: Callable, lr) -> None:
  """Checks a jax.numpy factor function at construction: one real scalar per step
  (checked on shapes only, ``jax.eval_shape``) and, unless it depends on a traced
  value, a finite factor >= 0 at step 0 with ``lr * factor`` finite in float32.  Later
  steps are the user's function."""
  try:
    out = jax.eval_shape(fn, jax.ShapeDtypeStruct((), jnp.int32))
    factor = fn(jnp.zeros((), jnp.int32))
  except Exception as err:  # the user's function: say which argument failed
    raise ArgumentError(name, "must be a jax.numpy function of the int32 step (or pass "
                        f"`num_steps` to evaluate it in Python): {type(err).__name__}: "
                        f"{err}") from err
  if (not isinstance(out, jax.ShapeDtypeStruct) or out.shape != ()
      or not (jnp.issubdtype(out.dtype, jnp.floating)
              or jnp.issubdtype(out.dtype, jnp.integer))):
    raise ArgumentError(name, "must return one real number per step, got "
                        f"{getattr(out, 'shape', out)!r} for a scalar step.")
  if not _validation.is_concrete(factor):  # closes over a traced (vmapped) value
    return
  factor = np.asarray(factor, np.float64)
  top = (factor * np.asarray(lr, np.float64) if _validation.is_concrete(lr) else factor)
  if not (np.isfinite(factor) and 0 <= factor < _validation.F32_MAX
          and abs(top) < _validation.F32_MAX):
    raise ArgumentError(name, "must give a finite factor >= 0 (with lr * factor finite "
                        f"in float32), got {float(factor)!r} at step 0.")


def _lookup(table: np.ndarray, count):
  index = jnp.clip(jnp.asarray(count, jnp.int32), 0, table.shape[0] - 1)
  return jnp.asarray(table, jnp.float32)[index]


def lambda_lr(lr: float, lr_lambda: Callable, num_steps: int | None = None) -> Schedule:
  r"""PyTorch's ``LambdaLR``: :math:`lr \cdot \mathrm{lr\_lambda}(t)`, any function of the step.

  Without ``num_steps``, ``lr_lambda`` is called with the (possibly traced) int32 step,
  so it must be written with ``jax.numpy`` (``lambda t: 0.95 ** t`` works, a Python
  ``if`` on ``t`` does not).  With ``num_steps``, ``lr_lambda`` is evaluated in Python
  at ``0..num_steps`` once, at construction (any Python function), and the rate holds
  its last value after ``num_steps``.  The rate is the user's function: its factors
  must be finite and >= 0 (checked at every step when tabulated; without ``num_steps``,
  its output shape and its factor at step 0 are checked at construction).

  Example:
    >>> import lrjax.schedules as s
    >>> round(float(s.lambda_lr(0.1, lambda t: 1.0 / (1.0 + t))(3)), 6)
    0.025
    >>> sched = s.lambda_lr(0.1, lambda e: 0.5 if e < 5 else 0.1, num_steps=10)
    >>> [round(float(sched(t)), 6) for t in (4, 5)]
    [0.05, 0.01]
  """
  _validation.check_positive("lr", lr)
  if not callable(lr_lambda):
    raise ArgumentError("lr_lambda", f"must be a callable step -> factor, got {lr_lambda!r}.")
  if num_steps is not None:
    table = _tabulate("lr_lambda", lr_lambda, num_steps, first=0)
    if _validation.is_concrete(lr) and not np.max(table) * float(lr) < _validation.F32_MAX:
      raise ArgumentError("lr_lambda", ": lr times its largest factor overflows float32.")

    def tabulated(count):
      return (_f32(lr) * _lookup(table, count)).astype(jnp.float32)

    return tabulated
  _probe("lr_lambda", lr_lambda, lr)

  def schedule(count):
    t = jnp.maximum(jnp.asarray(count, jnp.int32), 0)
    # broadcast: a factor that ignores the step (``lambda t: 0.5``) still gives one
    # rate per step
    return jnp.broadcast_to(_f32(lr) * _f32(lr_lambda(t)), t.shape).astype(jnp.float32)

  return schedule


def multiplicative_lr(lr: float, lr_lambda: Callable, num_steps: int) -> Schedule:
  r"""PyTorch's ``MultiplicativeLR``: :math:`lr \prod_{k=1}^{t} \mathrm{lr\_lambda}(k)`.

  The running product is a function of the step only through the whole history, so it
  is tabulated once at construction for ``t <= num_steps`` (``lr_lambda`` may be any
  Python function; its factors must be finite and >= 0) and holds its last value
  after ``num_steps``.  A constant factor ``gamma`` is ``ExponentialLR``: use
  :func:`exponential_lr`, which needs no table.

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.multiplicative_lr(0.1, lambda e: 0.9 if e % 3 else 1.1, num_steps=20)
    >>> [round(float(sched(t)), 6) for t in (0, 2, 3)]
    [0.1, 0.081, 0.0891]
  """
  _validation.check_positive("lr", lr)
  if not callable(lr_lambda):
    raise ArgumentError("lr_lambda", f"must be a callable step -> factor, got {lr_lambda!r}.")
  factors = _tabulate("lr_lambda", lr_lambda, num_steps, first=1)
  table = np.concatenate([[1.0], np.cumprod(factors)])
  top = np.max(table) * (np.max(np.asarray(lr, np.float64))
                         if _validation.is_concrete(lr) else 1.0)
  if not top < np.finfo(np.float32).max:
    raise ArgumentError("lr_lambda",
                        ": lr times the product of its factors overflows float32.")

  def schedule(count):
    return (_f32(lr) * _lookup(table, count)).astype(jnp.float32)

  return schedule


def exponential_lr(lr: float, gamma: float, *, lr_cap: float | None = None) -> Schedule:
  r"""PyTorch's ``ExponentialLR``: :math:`lr\,\gamma^t`, growth included.

  ``gamma`` in (0, 1] decays (:func:`exponential_decay` with ``k = -log(gamma)``);
  ``gamma > 1`` grows and needs ``lr_cap``: the rate is ``min(lr gamma^t, lr_cap)``,
  finite at every step (PyTorch's float64 rate would reach inf).  Without ``lr_cap`` the
  cap is ``lr`` (a traced ``gamma > 1`` then holds ``lr``).

  Example:
    >>> import lrjax.schedules as s
    >>> sched = s.exponential_lr(0.01, 1.2, lr_cap=1.0)
    >>> [round(float(sched(t)), 6) for t in (0, 1, 2, 100)]
    [0.01, 0.012, 0.0144, 1.0]
  """
  _validation.check_positive("lr", lr)
  _validation.check_positive("gamma", gamma)
  if lr_cap is None and _validation.is_concrete(gamma) and np.any(np.asarray(gamma) > 1):
    raise ArgumentError("gamma", f"= {gamma!r} > 1 makes the rate grow without bound: pass "
                        "`lr_cap`, the largest rate allowed.")
  if lr_cap is None:  # a decay: capped at lr, which costs nothing and stops the clock
    lr_cap = lr       # where gamma ** t underflows (finite at every int32 step)
  else:
    _growth.check_cap("lr_cap", lr_cap, "lr", lr)
  return exponential_decay(lr, -_growth.log_of(gamma), lr_cap=lr_cap)


__all__ = ["multi_step_lr", "linear_lr", "constant_lr", "lambda_lr", "multiplicative_lr",
           "exponential_lr"]
