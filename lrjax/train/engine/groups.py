"""Which variants share one compiled program, and which RNG streams a model asks for.

A group is every variant whose optimizer state has the same structure (tree, leaf shapes
and dtypes: ``jax.eval_shape(tx.init, params)``) and whose non-numeric (static)
hyperparameters are equal: its variants' numbers are stacked per-variant arrays of one
program (`lrjax.train.engine.epoch.GroupTrainer`).  Grouping traces ``optimizer_fn``
(nothing runs).
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lrjax.errors import ArgumentError
from lrjax.train.engine import plan as plan_lib
from lrjax.train.engine.hyperparams import make_tx


def is_number(value) -> bool:
  """A real number (not a bool), or a 0-d integer / float array: traced per variant."""
  if isinstance(value, (bool, np.bool_)):
    return False
  if isinstance(value, numbers.Number):
    return isinstance(value, numbers.Real)
  if isinstance(value, (np.ndarray, jax.Array)):
    return value.ndim == 0 and (jnp.issubdtype(value.dtype, jnp.integer)
                                or jnp.issubdtype(value.dtype, jnp.floating))
  return False


def number_dtypes(settings: Sequence[dict]) -> dict[str, Any]:
  """Per numeric name, float32 if any setting gives a float there, else int32."""
  floating: dict[str, bool] = {}
  for h in settings:
    for name, value in h.items():
      if is_number(value):
        is_float = not jnp.issubdtype(np.asarray(value).dtype, jnp.integer)
        floating[name] = floating.get(name, False) or is_float
  return {name: jnp.float32 if f else jnp.int32 for name, f in floating.items()}


def split(h: dict, dtypes: dict) -> tuple[dict, dict]:
  """``h`` as (numeric, static) hyperparameters."""
  numeric = {k: v for k, v in h.items() if k in dtypes and is_number(v)}
  static = {k: v for k, v in h.items() if k not in numeric}
  return numeric, static


def same_static(a: dict, b: dict) -> bool:
  """Equal static hyperparameters (values compared by identity, else by ``==``)."""
  if a.keys() != b.keys():
    return False
  for name, x in a.items():
    y = b[name]
    if x is y:
      continue
    try:
      if type(x) is not type(y) or not bool(x == y):
        return False
    except Exception:  # e.g. arrays: ambiguous truth value; treat as different
      return False
  return True


@dataclasses.dataclass
class Group:
  """Variants sharing one compiled program.

  Attributes:
    index: position of the group in `SweepResult.groups`.
    static: the non-numeric hyperparameters of its variants.
    numeric: names of the hyperparameters passed as per-variant arrays.
    members: positions of its variants in the result.
    state_structure: ``str`` of the optimizer state's tree structure.
    dtypes: per numeric name, its array dtype.
    plan: the execution plan (variants per compiled call).
  """

  index: int
  static: dict
  numeric: tuple[str, ...]
  members: list[int]
  state_structure: str
  dtypes: dict = dataclasses.field(default_factory=dict)
  plan: plan_lib.ExecutionPlan | None = None

  def to_dict(self, describe: Callable[[Any], Any]) -> dict:
    return {"index": self.index, "static": {k: describe(v) for k, v in self.static.items()},
            "numeric": list(self.numeric), "members": list(self.members),
            "state_structure": self.state_structure,
            "plan": self.plan.to_dict() if self.plan else None}


def form_groups(settings: Sequence[dict], optimizer_fn: Callable, params_shape,
                run: dict | None = None) -> tuple[list[Group], list[int]]:
  """The groups of ``settings`` (one dict per variant) and each variant's group index
  (``run``: what ``optimizer_fn`` is told of the run, `hyperparams.run_info`).

  Raises ``ValueError`` naming the setting when ``optimizer_fn`` refuses it.
  """
  dtypes = number_dtypes(settings)
  groups: list[Group] = []
  keys: list[tuple] = []
  group_of = []
  for k, h in enumerate(settings):
    numeric, static = split(h, dtypes)
    try:
      state_shape = jax.eval_shape(make_tx(optimizer_fn, {**h, **(run or {})}).init,
                                   params_shape)
    except ArgumentError as err:  # e.g. an lrjax factory's check of a Python number
      if err.argument == "optimizer_fn":  # make_tx's check of what it returned: as it is
        raise
      # The same kind of error (an ArgumentTypeError stays a TypeError), naming the setting.
      raise type(err)("optimizer_fn", f"rejected hparams {h!r}: {err}") from err
    except ValueError as err:  # another library's check
      raise ArgumentError("optimizer_fn", f"rejected hparams {h!r}: {err}") from err
    structure = jax.tree.structure(state_shape)
    leaves = tuple((x.shape, x.dtype) for x in jax.tree.leaves(state_shape))
    key = (tuple(sorted(numeric)), structure, leaves)
    found = [g for g, kk in zip(groups, keys, strict=True)
             if kk == key and same_static(g.static, static)]
    if found:
      group = found[0]
    else:
      names = tuple(sorted(numeric))
      group = Group(len(groups), static, names, [], str(structure),
                    {n: dtypes[n] for n in names})
      groups.append(group)
      keys.append(key)
    group.members.append(k)
    group_of.append(group.index)
  return groups, group_of


_MISSING_RNG = re.compile(r"""PRNG (?:for|key for)\s+["']([^"']+)["']""")


def rng_streams(model: nn.Module, variables_shape, sample_x) -> tuple[str, ...]:
  """The RNG streams ``model`` asks for in training (always including ``dropout``).

  Found by tracing ``model.apply(..., train=True)`` (`jax.eval_shape`, nothing runs)
  with the streams known so far until no stream is missing.
  """
  streams = ["dropout"]
  params = variables_shape["params"]
  rest = {k: v for k, v in variables_shape.items() if k != "params"}
  for _ in range(16):
    rngs = {s: jax.random.PRNGKey(0) for s in streams}

    def apply(p, r, x, rngs=rngs):
      return model.apply({"params": p, **r}, x, train=True, rngs=rngs,
                         mutable=list(r) or False)

    try:
      jax.eval_shape(apply, params, rest, sample_x)
      return tuple(streams)
    except flax.errors.InvalidRngError as err:
      match = _MISSING_RNG.search(str(err))
      if not match or match.group(1) in streams:
        raise
      streams.append(match.group(1))
  return tuple(streams)
