r"""Complete optimizers driven by a strategy: ``sgd``, ``adam``, ``adamw``, ``rmsprop``,
``adagrad``.

Each is ``optax.chain(direction, scale_by_strategy(sequence, rule, ...))``: the optax
transformation that computes the update *direction* without the rate (``optax.trace``,
``optax.scale_by_adam``, ...), then the strategy, which multiplies by ``-lr``.  The
user never writes the sign, so the mistake these exist to prevent cannot happen::

  optax.chain(optax.sgd(1.0), by_epoch(seq1(0.01)))   # WRONG: ascends (minus twice)
  lrjax.strategies.sgd(seq1(0.01), "epoch")            # right: SGD, by epoch

At a constant sequence each equals the optax optimizer of the same name with that rate
(``sgd``, ``adam``, ``adamw``, ``adagrad`` step for step in float32; ``rmsprop`` up to
rounding, see there).  Extra keyword arguments go to `scale_by_strategy`
(``cutoff_fraction``, ``cutoff_decay``, ``patience``, ``cooldown``, ``rtol``, ``atol``).
"""

from __future__ import annotations

from typing import Any

import chex
import optax

from lrjax import _validation
from lrjax.strategies.strategy import Sequence, scale_by_strategy


def _check_momentum(momentum) -> None:
  if momentum is not None:
    _validation.check_in_range("momentum", momentum, 0.0, 1.0, high_open=True)


def _check_moment_decays(b1, b2, eps, eps_root) -> None:
  _validation.check_in_range("b1", b1, 0.0, 1.0, high_open=True)
  _validation.check_in_range("b2", b2, 0.0, 1.0, high_open=True)
  _validation.check_non_negative("eps", eps)
  _validation.check_non_negative("eps_root", eps_root)


def sgd(sequence: Sequence, rule: Any, *, momentum: chex.Numeric | None = None,
        nesterov: bool = False, accumulator_dtype: Any = None,
        **strategy_kwargs) -> optax.GradientTransformationExtraArgs:
  """SGD (optionally with PyTorch-style heavy-ball or Nesterov momentum) by a strategy.

  ``optax.sgd(lr, momentum, nesterov)`` with ``lr = sequence(index)`` moved by ``rule``;
  the momentum buffer excludes the rate (``optax.trace``, as ``torch.optim.SGD``), so a
  rate change applies to the whole buffer from the next step on.

  Example:
    >>> from lrjax.schedules import seq3
    >>> tx = sgd(seq3(0.01), "epoch", momentum=0.9)
  """
  _check_momentum(momentum)
  _validation.check_bool("nesterov", nesterov)
  _validation.check_float_dtype("accumulator_dtype", accumulator_dtype)
  direction = (optax.trace(decay=momentum, nesterov=nesterov,
                           accumulator_dtype=accumulator_dtype)
               if momentum is not None else optax.identity())
  return optax.chain(direction, scale_by_strategy(sequence, rule, **strategy_kwargs))


def adam(sequence: Sequence, rule: Any, *, b1: chex.Numeric = 0.9,
         b2: chex.Numeric = 0.999, eps: chex.Numeric = 1e-8,
         eps_root: chex.Numeric = 0.0, mu_dtype: Any = None, nesterov: bool = False,
         **strategy_kwargs) -> optax.GradientTransformationExtraArgs:
  """``optax.adam`` with its rate ``sequence(index)`` moved by ``rule``.

  Example:
    >>> from lrjax.schedules import seq1
    >>> tx = adam(seq1(0.001), "oscillate")
  """
  _check_moment_decays(b1, b2, eps, eps_root)
  _validation.check_bool("nesterov", nesterov)
  _validation.check_float_dtype("mu_dtype", mu_dtype)
  return optax.chain(
      optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                          nesterov=nesterov),
      scale_by_strategy(sequence, rule, **strategy_kwargs))


def adamw(sequence: Sequence, rule: Any, *, b1: chex.Numeric = 0.9,
          b2: chex.Numeric = 0.999, eps: chex.Numeric = 1e-8,
          eps_root: chex.Numeric = 0.0, mu_dtype: Any = None,
          weight_decay: chex.Numeric = 1e-4, mask: Any = None, nesterov: bool = False,
          **strategy_kwargs) -> optax.GradientTransformationExtraArgs:
  """``optax.adamw``: the decoupled decay is scaled by the strategy's rate, as there.

  Example:
    >>> from lrjax.schedules import seq2
    >>> tx = adamw(seq2(0.001), "cutoff", weight_decay=0.01)
  """
  _check_moment_decays(b1, b2, eps, eps_root)
  _validation.check_bool("nesterov", nesterov)
  _validation.check_float_dtype("mu_dtype", mu_dtype)
  _validation.check_non_negative("weight_decay", weight_decay)
  return optax.chain(
      optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                          nesterov=nesterov),
      optax.add_decayed_weights(weight_decay, mask),
      scale_by_strategy(sequence, rule, **strategy_kwargs))


def rmsprop(sequence: Sequence, rule: Any, *, decay: chex.Numeric = 0.9,
            eps: chex.Numeric = 1e-8, initial_scale: chex.Numeric = 0.0,
            eps_in_sqrt: bool = True, centered: bool = False,
            momentum: chex.Numeric | None = None, nesterov: bool = False,
            bias_correction: bool = False,
            **strategy_kwargs) -> optax.GradientTransformationExtraArgs:
  """RMSprop (``optax.rmsprop``'s options) with its rate moved by ``rule``.

  The momentum buffer excludes the rate, as in ``torch.optim.RMSprop``
  (``b = mu b + g / sqrt(v); p -= lr b``).  ``optax.rmsprop`` applies its momentum
  *after* the rate, so the two agree exactly only while the rate is constant (and then
  up to float rounding: ``trace(lr u) = lr trace(u)``).

  Example:
    >>> from lrjax.schedules import seq4
    >>> tx = rmsprop(seq4(0.001), "epoch", momentum=0.9)
  """
  _validation.check_in_range("decay", decay, 0.0, 1.0)
  _validation.check_non_negative("eps", eps)
  _validation.check_non_negative("initial_scale", initial_scale)
  _check_momentum(momentum)
  for name, flag in (("eps_in_sqrt", eps_in_sqrt), ("centered", centered),
                     ("nesterov", nesterov), ("bias_correction", bias_correction)):
    _validation.check_bool(name, flag)
  scale_by = optax.scale_by_stddev if centered else optax.scale_by_rms
  return optax.chain(
      scale_by(decay=decay, eps=eps, initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt,
               bias_correction=bias_correction),
      (optax.trace(decay=momentum, nesterov=nesterov) if momentum is not None
       else optax.identity()),
      scale_by_strategy(sequence, rule, **strategy_kwargs))


def adagrad(sequence: Sequence, rule: Any, *,
            initial_accumulator_value: chex.Numeric = 0.1, eps: chex.Numeric = 1e-7,
            **strategy_kwargs) -> optax.GradientTransformationExtraArgs:
  """``optax.adagrad`` with its rate moved by ``rule``.

  Example:
    >>> from lrjax.schedules import seq1
    >>> tx = adagrad(seq1(0.1), "epoch")
  """
  _validation.check_non_negative("initial_accumulator_value", initial_accumulator_value)
  _validation.check_non_negative("eps", eps)
  return optax.chain(
      optax.scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
      scale_by_strategy(sequence, rule, **strategy_kwargs))
