"""Flax NNX models in the engine: an `nnx.Module` presented as a Linen module.

The engine (`lrjax.train.engine.step`, `lrjax.sweep`) trains a Linen module through
``init(key, x, train=False) -> variables`` and ``apply(variables, x, train=, rngs=,
mutable=)``: pure functions of an explicit variables dict, which it stacks over the
variant axis with `jax.vmap`.  An NNX module is a stateful object instead.  `as_linen`
turns it into a Linen module with exactly that interface, so every part of the engine
(vmap over variants, scan over steps, evaluation, checkpoints of the `TrainState`) is
shared with Linen models, unchanged:

* ``nnx.split`` once gives the static graph definition; the state lives in the Linen
  variables, one collection per `nnx.Variable` type as Flax names them
  (`nnx.Param` -> ``params``, `nnx.BatchStat` -> ``batch_stats``, any other type ->
  its registered collection), keyed by the NNX attribute path (every path part a
  string, so that checkpoints restore the same tree).  Each call ``nnx.merge`` s the
  graph definition with the variables it is given, runs the model and hands the
  updated non-parameter state back as the mutable collections.
* ``train``: NNX modules switch mode with ``model.train()`` / ``model.eval()``
  (``deterministic`` of `nnx.Dropout`, ``use_running_average`` of `nnx.BatchNorm`, and
  any module with those attributes); every call sets the mode of the merged copy
  from the engine's ``train`` flag.  A model whose ``__call__`` has a ``train``
  parameter also receives it.  So in training BatchNorm normalises with the batch
  statistics and updates its running averages (returned in ``batch_stats``), Dropout
  drops; in evaluation BatchNorm uses the running averages and Dropout is the identity.
* RNG streams: `nnx.RngState` is not part of the variables.  On every training call
  each `nnx.RngStream` of the model is reseeded (`nnx.reseed`) from the engine's key
  for its stream name (``dropout`` for ``nnx.Rngs(params=..., dropout=...)``,
  ``default`` for ``nnx.Rngs(seed)``), which the engine draws per variant, epoch and
  step: dropout masks differ from step to step and between seeds, and a rerun repeats
  them exactly.  In evaluation the streams are not reseeded (nothing should draw).

The two forms of ``model``, and what a seed means for each:

* an ``nnx.Module`` instance: every variant starts from *its* parameters and batch
  statistics (the instance is not modified); seeds then vary only the data order and
  the random streams (dropout).  This is the form for comparing optimizers from one
  given initialisation, or for a model initialised or pre-trained elsewhere.
* a factory ``rngs -> nnx.Module``, called as ``factory(rngs=nnx.Rngs(key))`` (so a
  ``lambda rngs: Model(..., rngs=rngs)``, a ``functools.partial(Model, ...)`` or the
  class itself): each variant is initialised from its seed, as the Linen path's
  ``model.init``: ``key`` is drawn from the variant's initialisation stream, so the
  same seed gives the same initial parameters in every variant and every run (it is
  not the key of ``nnx.Rngs(seed)``).  The factory must build the same graph for every
  key (checked).

Why not `flax.nnx.bridge.ToLinen`: it takes a class and its arguments (no instance, so
no "start from these parameters"), passes ``train`` on to the NNX ``__call__`` (NNX
modules take the mode from ``.train()`` / ``.eval()``), builds the NNX module again
(its initialisers included) on every call, and gives the module at initialisation
``nnx.Rngs(params=...)`` only, so a model whose `nnx.Dropout` takes ``rngs`` fails
there ("No RngStream named 'dropout'"); and its RNG streams are dropped from the
variables without being reseeded, so an instance's dropout mask would repeat on
every step.  The bridge is the route the other way, for lrjax's
Linen models in NNX code: ``nnx.bridge.ToNNX(lrjax.models.MnistCNN(),
rngs=nnx.Rngs(0)).lazy_init(x, train=False)`` (tested in tests/test_nnx.py): the
built-in models keep one source of truth, in Linen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, traverse_util
from flax.nnx import (
  bridge,  # noqa: F401  (nnx.bridge, for ToNNX)
  variablelib,
)

from lrjax.errors import ArgumentError

NNXFactory = Callable[..., nnx.Module]


def _collection(variable) -> str:
  """The Linen collection of an `nnx.Variable` type (``params``, ``batch_stats``...)."""
  return variablelib.variable_name_from_type(type(variable), allow_register=True)


def _str_path(path) -> tuple[str, ...]:
  return tuple(str(part) for part in path)


def _collections(state) -> dict[str, dict]:
  """An NNX state -> ``{collection: nested str-keyed dict of arrays}`` (no RNG state)."""
  flat: dict[str, dict] = {}
  for path, variable in nnx.to_flat_state(state):
    if isinstance(variable, nnx.RngState):
      continue
    flat.setdefault(_collection(variable), {})[_str_path(path)] = variable.get_value()
  return {name: traverse_util.unflatten_dict(leaves) for name, leaves in flat.items()}


def _placeholder_rng(variable):
  """A fixed value for an RNG key / count, overwritten by `nnx.reseed` in training."""
  shape = jnp.shape(variable.get_value())
  if isinstance(variable, nnx.RngKey):
    key = jax.random.key(0)
    return jax.random.split(key, shape) if shape else key
  return jnp.zeros(shape, jnp.uint32)


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity
class _Source:
  """What `NNXAsLinen` needs of the NNX model, built once by `as_linen`."""

  graphdef: Any
  abstract: tuple  # ((path, nnx.Variable of ShapeDtypeStruct), ...) of the whole state
  streams: tuple[str, ...]  # the tags of the model's RngStreams
  takes_train: bool  # ``__call__`` has a ``train`` parameter
  initial: dict | None  # an instance's collections; None for a factory
  factory: NNXFactory | None
  description: str  # what `repr` shows: the same in every process for the same model

  def __repr__(self) -> str:
    # The run identity of a checkpoint records ``repr(model)``: the architecture with
    # its static attributes, and what the variants start from (no arrays, no addresses).
    return self.description


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _fingerprint(collections: dict) -> str:
  """SHA-256 of an instance's initial arrays (paths, dtypes, shapes, bytes)."""
  digest = hashlib.sha256()
  for path, value in sorted(traverse_util.flatten_dict(collections).items()):
    value = np.asarray(value)
    digest.update(repr((path, value.dtype.str, value.shape)).encode())
    digest.update(np.ascontiguousarray(value).tobytes())
  return digest.hexdigest()[:16]


def _description(graphdef, abstract, *, initial, factory) -> str:
  module = nnx.merge(graphdef, nnx.from_flat_state(list(abstract)))
  module.train()  # the mode is the engine's, whatever the instance's was
  start = (f"initial sha256:{_fingerprint(initial)}" if initial is not None else
           f"factory {getattr(factory, '__module__', '')}."
           f"{getattr(factory, '__qualname__', repr(factory))}")
  return _ADDRESS.sub("", f"NNX[{start}] {module!r}")


class NNXAsLinen(nn.Module):
  """An NNX model as a Linen module called ``model(x, train=...)`` (see the module doc).

  Build it with `as_linen`.  Its variables are the NNX state by collection
  (``params``, ``batch_stats``, ...); in training the non-parameter collections it is
  allowed to mutate come back updated, as from a Linen module.
  """

  source: _Source

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    source = self.source
    values: Mapping[str, Mapping[str, Any]]
    if self.is_initializing():
      values = self._initial_collections()
      for collection, tree in values.items():
        for name, subtree in tree.items():
          self.put_variable(collection, name, subtree)
    else:
      values = self.variables
    model = self._merge(values)
    if train:
      model.train()
      if source.streams:
        # One key per stream name from the engine (its `rngs`), per call: each
        # RngStream of the model restarts from a key derived from it.
        keys = {tag: self.make_rng(tag) for tag in source.streams}
        nnx.reseed(model, policy="match_shape", **keys)  # type: ignore[arg-type]  # by stream
    else:
      model.eval()
    outputs = model(x, train=train) if source.takes_train else model(x)
    if train:
      for collection, tree in _collections(nnx.state(model)).items():
        if collection != "params" and self.is_mutable_collection(collection):
          for name, subtree in tree.items():
            self.put_variable(collection, name, subtree)
    return outputs

  def _initial_collections(self) -> dict[str, dict]:
    source = self.source
    if source.initial is not None:
      return source.initial
    assert source.factory is not None  # a source is an instance's collections or a factory
    graphdef, state = nnx.split(source.factory(rngs=nnx.Rngs(self.make_rng("params"))))
    if graphdef != source.graphdef:
      raise ArgumentError("model", ": the NNX factory built a different model for another "
                          "key; it must build the same architecture for every `rngs`.")
    return _collections(state)

  def _merge(self, values) -> nnx.Module:
    flat = {name: traverse_util.flatten_dict(tree) for name, tree in values.items()}
    leaves = []
    for path, variable in self.source.abstract:
      if isinstance(variable, nnx.RngState):
        value = _placeholder_rng(variable)
      else:
        collection = _collection(variable)
        try:
          value = flat[collection][_str_path(path)]
        except KeyError:
          raise ValueError(
              f"The variables given to the NNX model lack {collection!r} "
              f"{'/'.join(_str_path(path))}: they must come from this model's init."
          ) from None
      leaves.append((path, variable.replace(value)))
    return nnx.merge(self.source.graphdef, nnx.from_flat_state(leaves))


def _takes_train(model: nnx.Module) -> bool:
  """``__call__`` has a ``train`` parameter (for `nnx.bridge.ToNNX`: its Linen module's)."""
  if isinstance(model, nnx.bridge.ToNNX):  # forwards its keywords to the Linen module
    model = model.to_nnx__module  # type: ignore[assignment]  # a Linen module
  try:
    return "train" in inspect.signature(type(model).__call__).parameters
  except (TypeError, ValueError):  # no signature to read
    return False


def _source(model: nnx.Module, *, initial: dict | None, factory) -> _Source:
  graphdef, state = nnx.split(model)
  abstract = tuple(
      (path, variable.replace(jax.ShapeDtypeStruct(jnp.shape(variable.get_value()),
                                                   variable.get_value().dtype)))
      for path, variable in nnx.to_flat_state(state))
  streams = sorted({variable.tag for _, variable in abstract
                    if isinstance(variable, nnx.RngKey)})
  return _Source(graphdef, abstract, tuple(streams), _takes_train(model), initial, factory,
                 _description(graphdef, abstract, initial=initial, factory=factory))


def is_nnx(model) -> bool:
  """Whether ``model`` is an NNX instance or factory (anything `as_linen` converts)."""
  if isinstance(model, nn.Module) or (isinstance(model, type) and issubclass(model, nn.Module)):
    return False
  return isinstance(model, nnx.Module) or callable(model)


def as_linen(model) -> nn.Module:
  """``model`` as a Linen module the engine can train: NNX models converted.

  Args:
    model: a `flax.linen.Module` (returned as is), an ``nnx.Module`` instance (every
      variant starts from its state) or a factory ``rngs -> nnx.Module`` called as
      ``factory(rngs=nnx.Rngs(key))`` (each variant initialised from its seed).

  Returns:
    a Linen module called ``model(x, train=...)``: `NNXAsLinen` for NNX models.

  Raises:
    TypeError: ``model`` is none of those, or the factory raised or returned
      something else than an ``nnx.Module``.
  """
  if isinstance(model, nn.Module):
    return model
  if isinstance(model, nnx.Module):
    _, state = nnx.split(model)
    return NNXAsLinen(_source(model, initial=_collections(state), factory=None))
  expected = ("`model` must be a flax.linen.Module, an nnx.Module or a factory "
              "rngs -> nnx.Module")
  if isinstance(model, type) and issubclass(model, nn.Module):
    raise TypeError(f"{expected}, got the Linen class {model.__name__} (an instance is "
                    f"needed: {model.__name__}(...)).")
  if not is_nnx(model):
    raise TypeError(f"{expected}, got {type(model).__name__}.")
  try:
    abstract = nnx.eval_shape(lambda: model(rngs=nnx.Rngs(0)))
  except Exception as err:
    raise TypeError(f"{expected}; called as a factory, model(rngs=nnx.Rngs(0)) raised "
                    f"{type(err).__name__}: {err}") from err
  if not isinstance(abstract, nnx.Module):
    raise TypeError(f"{expected}; called as a factory, model(rngs=nnx.Rngs(0)) returned "
                    f"{type(abstract).__name__}.")
  return NNXAsLinen(_source(abstract, initial=None, factory=model))
