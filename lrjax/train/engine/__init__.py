"""The compiled engine: pure functions of arrays, traced into one XLA program per group.

The per-variant training step and evaluation (`step`), the task (`task`), one epoch as a
`lax.scan` vmapped over a group's variants (`epoch`), how many variants one call trains
(`plan`), what a sweep reads of an optimizer state (`readouts`) and the NNX adapter
(`nnx_adapter`).

May import: jax, optax, flax, numpy, `lrjax.schedules` / `strategies` / `adaptive`, and
this package.  Nothing here touches files, the host loop or the search.
"""
