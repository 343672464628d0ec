"""Model size and compute: parameter counts and forward FLOPs per example.

`flops_per_example` asks XLA: ``jax.jit(f).lower(...).compile().cost_analysis()``
returns a dict (a list of one dict in older jax) whose ``"flops"`` counts every
floating-point operation of the compiled forward pass (multiply-adds as 2, plus bias
adds, activations, pooling, normalisation; XLA on CPU leaves out the multiplications
by the zero padding of a "SAME" convolution).  Where the backend gives no count, it
falls back to an analytic count of the matrix products alone: 2 x (multiply-adds) of every
`Dense` layer and of every convolution of `lrjax.models.conv.CONVS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lrjax.errors import ArgumentError
from lrjax.models.conv import CONVS

FLOPS_METHODS = ("xla", "analytic")


def count_params(params: Any) -> int:
  """Number of scalars in a pytree (arrays or `jax.ShapeDtypeStruct` leaves).

  Pass ``variables["params"]`` for trainable parameters only (BatchNorm statistics
  live in the 'batch_stats' collection).
  """
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))


def _abstract_variables(model: nn.Module, x: jax.ShapeDtypeStruct):
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(x.shape, x.dtype),
                                           train=False))


def _forward(model: nn.Module):
  def forward(variables, x):
    return model.apply(variables, x, train=False)
  return forward


def _xla_flops(model: nn.Module, x: jax.ShapeDtypeStruct) -> float | None:
  variables = _abstract_variables(model, x)
  try:
    cost = jax.jit(_forward(model)).lower(variables, x).compile().cost_analysis()
  except Exception:  # noqa: BLE001 - a backend without cost analysis
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  flops = (cost or {}).get("flops")
  if flops is None or not math.isfinite(flops) or flops <= 0:
    return None
  return float(flops)


def _analytic_flops(model: nn.Module, x: jax.ShapeDtypeStruct) -> float:
  total = [0]

  def count(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    module = context.module
    has_kernel = isinstance(module, (nn.Dense, *CONVS.values()))
    if context.method_name == "__call__" and has_kernel:
      kernel = module.variables["params"]["kernel"]
      # every output element is a dot product over the kernel's input extent
      total[0] += 2 * math.prod(out.shape) * math.prod(kernel.shape[:-1])
    return out

  variables = _abstract_variables(model, x)

  def forward(variables, x):
    with nn.intercept_methods(count):
      return _forward(model)(variables, x)

  jax.eval_shape(forward, variables, x)
  return float(total[0])


def flops_per_example(model: nn.Module, input_shape: Sequence[int], *,
                      batch_size: int = 1, method: str = "xla",
                      dtype: Any = jnp.float32) -> float:
  """Estimated FLOPs of one forward pass (``train=False``) for one example.

  Args:
    model: a Flax module called as ``model.apply(variables, x, train=False)``.
    input_shape: shape of one example, e.g. (28, 28, 1) (no batch axis).
    batch_size: batch the forward pass is compiled for; the count is divided by it.
    method: "xla" (XLA's cost analysis of the compiled forward pass, falling back to
      "analytic" where the backend gives none) or "analytic" (2 x multiply-adds of the
      Dense and Conv layers).
    dtype: input dtype.
  """
  if method not in FLOPS_METHODS:
    raise ArgumentError("method", f"must be one of {FLOPS_METHODS}, got {method!r}.")
  if int(batch_size) < 1:
    raise ArgumentError("batch_size", f"must be a positive integer, got {batch_size!r}.")
  x = jax.ShapeDtypeStruct((int(batch_size),) + tuple(int(d) for d in input_shape), dtype)
  flops = _xla_flops(model, x) if method == "xla" else None
  if flops is None:
    flops = _analytic_flops(model, x)
  return flops / int(batch_size)
