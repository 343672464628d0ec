"""Which convolution and pooling layers a model uses, injected as module fields.

The models take ``conv: ModuleDef`` and ``pool`` fields, as Flax's imagenet example
does; ``None`` (the default) picks the layers fastest on the backend that runs them.
`ConvLayers` / `ConvPoolLayers` hold those fields, their check and their resolution
once, for every model that convolves.
A configuration file or the command line cannot hold a class, so ``conv_impl`` names
one of `CONVS` instead; ``"auto"`` is the per-backend default of `default_conv_impl`.
Every convolution creates a ``kernel`` (kh, kw, cin, features) and ``bias`` under the
same module name with `flax.linen.Conv`'s initialisers, so a parameter tree serves any.

* ``"xla"``: `flax.linen.Conv`, a native XLA convolution.
* ``"canonical"``: `lrjax.models.layers.Conv`, whose input gradient is a canonical-layout
  convolution and kernel gradient a batch of per-tap matrix products (fast inside
  `lax.scan` on CPU, where JAX's own gradient is not).
* ``"im2col"``: `lrjax.models.im2col.Im2ColConv` (strided slices + one matrix
  product): under `jax.vmap` over variants a batched matrix product instead of a
  grouped convolution, the shape accelerators are built for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax

from lrjax.errors import ArgumentError
from lrjax.models.im2col import Im2ColConv
from lrjax.models.layers import Conv, max_pool_2x2

ModuleDef = Any

CONVS: dict[str, ModuleDef] = {"xla": nn.Conv, "canonical": Conv, "im2col": Im2ColConv}
CONV_IMPLS = ("auto",) + tuple(CONVS)

# Per backend: CPU runs one variant per compiled call (see lrjax.train.engine.plan), where the
# canonical-gradient convolution is the fastest (benchmarks/sweep_benchmark.py);
# accelerators vmap the whole group, where im2col's batched GEMMs win.
_DEFAULT_CONV = {"cpu": "canonical"}
_DEFAULT_CONV_ELSEWHERE = "im2col"


def default_conv_impl(backend: str | None = None) -> str:
  """The `CONVS` name used by ``conv_impl="auto"`` on ``backend`` (default: JAX's)."""
  backend = backend or jax.default_backend()
  return _DEFAULT_CONV.get(backend, _DEFAULT_CONV_ELSEWHERE)


def check_conv_impl(conv_impl: str) -> None:
  """Raises ``ValueError`` naming ``conv_impl`` unless it is one of `CONV_IMPLS`."""
  if conv_impl not in CONV_IMPLS:
    raise ArgumentError("conv_impl", f"must be one of {CONV_IMPLS}, got {conv_impl!r}.")


def resolve_conv(conv: ModuleDef | None, conv_impl: str = "auto") -> ModuleDef:
  """The convolution class a model uses: ``conv`` if given, else `CONVS[conv_impl]`."""
  if conv is not None:
    return conv
  check_conv_impl(conv_impl)
  return CONVS[default_conv_impl() if conv_impl == "auto" else conv_impl]


def resolve_pool(pool: Callable | None) -> Callable:
  """The 2x2 / stride-2 max pool a model uses: ``pool`` if given, else `max_pool_2x2`.

  `max_pool_2x2` is bit-identical to `nn.max_pool` (gradient included) and its gradient
  is elementwise, fast on every backend, so it is the default everywhere.
  """
  return max_pool_2x2 if pool is None else pool


class ConvLayers(nn.Module, kw_only=True):
  """Base of a model whose convolution is injected: the ``conv`` / ``conv_impl`` fields.

  The fields are keyword-only, so a subclass's own fields (``num_classes`` ...) keep
  their positions in its constructor; `__post_init__` checks ``conv_impl``.

  Attributes:
    conv: the convolution class (`nn.Conv`'s signature); None: ``conv_impl``.
    conv_impl: a name in `lrjax.models.conv.CONVS`, or "auto" (fastest on the backend).
  """

  conv: ModuleDef | None = None
  conv_impl: str = "auto"

  def __post_init__(self):
    check_conv_impl(self.conv_impl)
    super().__post_init__()

  @nn.nowrap
  def conv_layer(self) -> ModuleDef:
    """The convolution class this model uses (`resolve_conv`)."""
    return resolve_conv(self.conv, self.conv_impl)


class ConvPoolLayers(ConvLayers, kw_only=True):
  """`ConvLayers` plus the injected 2x2 / stride-2 max pool: the ``pool`` field.

  Attributes:
    pool: the 2x2 / stride-2 max pool; None: `lrjax.models.layers.max_pool_2x2`.

  Example (a model of one's own that takes the layers as the built-in ones do):
    >>> import flax.linen as nn
    >>> class Tiny(ConvPoolLayers):
    ...   features: int = 4
    ...   @nn.compact
    ...   def __call__(self, x, *, train: bool = False):
    ...     conv, pool = self.layers()
    ...     return pool(conv(features=self.features, kernel_size=(3, 3), name="conv1")(x))
    >>> Tiny(8, conv_impl="im2col").conv_layer().__name__
    'Im2ColConv'
  """

  pool: Callable | None = None

  @nn.nowrap
  def layers(self) -> tuple[ModuleDef, Callable]:
    """``(conv, pool)``: the convolution class and pool this model uses."""
    return self.conv_layer(), resolve_pool(self.pool)
