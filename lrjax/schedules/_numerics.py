"""Float32 numerics shared by the schedules (private helpers).

* ``exp_times`` / ``pow_f32``: ``exp(x t)`` and ``base ** t`` with split exponents.
* ``linear_weights`` / ``cosine_weights``: interpolation without cancellation.  A rate
  between ``start`` and ``end`` is ``start * w_start + end * w_end`` with both weights
  >= 0 computed from the elapsed and the remaining steps, so the float32 result keeps
  a relative error of a few ulps even where it approaches a small ``end``
  (``start + (end - start) * pct`` or ``1 + cos(pi * pct)`` lose digits there).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lrjax import _validation


def f32(value):
  """``value`` as a float32 array (a hyperparameter, concrete or traced)."""
  return jnp.asarray(value, jnp.float32)


def float_step(count):
  """The step as float32, negative steps read as 0 (every schedule's time axis)."""
  return jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)


def _split(x):
  """``x = hi + lo`` with ``hi`` keeping 9 significant bits, so ``t * hi`` is exact
  in float32 for integers ``t < 2**15``; ``x`` float64 (concrete) or float32."""
  xp = np if isinstance(x, np.ndarray) else jnp
  mantissa, exponent = xp.frexp(x)
  hi = xp.ldexp(xp.round(mantissa * 256.0) / 256.0, exponent)
  return hi, x - hi


def exp_times(x, t):
  """``exp(x * t)`` in float32 to a few ulps, ``x`` a hyperparameter, ``t`` the step.

  ``exp`` turns the absolute rounding error of its argument into a relative error
  of the result, and a float32 ``x * t`` carries ``|x t| * 2**-24`` of it (2e-6 at
  ``x t = -35``).  With ``x = hi + lo``, ``hi * t`` is exact and ``lo * t`` small, so
  ``exp(hi t) * (1 + expm1(lo t))`` keeps the error of ``exp`` itself (not
  ``exp(hi t) * exp(lo t)``: XLA rewrites that into ``exp(hi t + lo t)``).  A concrete
  ``x`` is split in float64, before its own rounding to float32.

  Wherever the result is a float32 number other than 0 or inf, ``|x t| < 104`` and,
  as ``|lo| <= 2**-8 |x|``, ``|lo t| < 0.41``.  ``lo t`` is therefore clipped to
  ``[-1, 1]``: that changes nothing there, and at large ``t`` (where ``exp(hi t)``
  underflows to 0 while ``expm1(lo t)`` would overflow to inf) it keeps the product
  ``0 * finite = 0`` instead of ``0 * inf = NaN``; an overflowing ``exp(hi t)`` gives
  inf, not ``inf - inf``.  The result is >= 0 (``expm1 >= -0.64``) for every ``t``.
  """
  if _validation.is_concrete(x):
    hi, lo = _split(np.asarray(x, np.float64))
    hi, lo = jnp.asarray(hi, jnp.float32), jnp.asarray(lo, jnp.float32)
  else:
    hi, lo = _split(jnp.asarray(x, jnp.float32))
  big = jnp.exp(hi * t)
  small = big * jnp.expm1(jnp.clip(lo * t, -1.0, 1.0))
  return jnp.where(jnp.isinf(big), big, big + small)


def log_f32(value):
  """``log(value)``: float64 (a NumPy array) when concrete, else a float32 array."""
  if _validation.is_concrete(value):
    return np.log(np.asarray(value, np.float64))
  return jnp.log(jnp.asarray(value, jnp.float32))


def pow_f32(base, t):
  """``base ** t`` as :func:`exp_times` ``(log(base), t)``.

  A float32 ``base`` close to 1 (0.9 -> 0.89999998) would otherwise carry its own
  rounding error ``t`` times (``t * 3e-8`` relative).
  """
  return exp_times(log_f32(base), t)


def _split_half(x):
  """``x = hi + lo`` (float32) with 12-bit ``hi`` and ``lo``: their products are exact."""
  mantissa, exponent = jnp.frexp(x)
  hi = jnp.ldexp(jnp.round(mantissa * 4096.0) / 4096.0, exponent)
  return hi, x - hi


def two_product(a, b):
  """``a * b = p + err`` exactly in float32 (Dekker), ``p`` the rounded product."""
  p = a * b
  a_hi, a_lo = _split_half(a)
  b_hi, b_lo = _split_half(b)
  err = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
  return p, err


def floor_frac(value, err=0.0):
  """``(floor(v), v - floor(v))`` of ``v = value + err`` (float32 pair, ``|err|`` below
  an ulp of ``value``); the fraction is in [0, 1) up to its own rounding."""
  fl = jnp.floor(value)
  fr = (value - fl) + err
  fl = jnp.where(fr < 0, fl - 1.0, jnp.where(fr >= 1.0, fl + 1.0, fl))
  fr = jnp.where(fr < 0, fr + 1.0, jnp.where(fr >= 1.0, fr - 1.0, fr))
  return fl, fr


def linear_weights(elapsed, length, remaining=None):
  """``(1 - p, p)`` with ``p = elapsed / length``; ``1 - p`` from the remaining steps
  (``remaining``, default ``length - elapsed``: pass it when it is known exactly)."""
  if remaining is None:
    remaining = length - elapsed
  return remaining / length, elapsed / length


def cosine_weights(elapsed, length, remaining=None):
  """``((1 + cos(pi p)) / 2, (1 - cos(pi p)) / 2)`` with ``p = elapsed / length``.

  Written ``(cos^2(pi p / 2), sin^2(pi p / 2))``, evaluated at the angle measured
  from the nearer end of the interval so that both weights are accurate
  (``remaining`` as in :func:`linear_weights`).
  """
  if remaining is None:
    remaining = length - elapsed
  first_half = 2.0 * elapsed <= length
  angle = 0.5 * jnp.pi * jnp.where(first_half, elapsed, remaining) / length
  c, s = jnp.cos(angle), jnp.sin(angle)
  return jnp.where(first_half, c, s) ** 2, jnp.where(first_half, s, c) ** 2
