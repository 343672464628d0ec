"""The host side of a run: the loop over epochs and what keeps a run safe.

`loop` sequences each group's compiled calls, applies the controller's decisions between
epochs and handles resume, signals and locks; `checkpoint` writes and verifies the orbax
checkpoints.

May import: `lrjax.train.engine`, `lrjax.train.search`, `lrjax.train.reports`,
`lrjax.distributed`, `lrjax._atomic`; never a front end or `lrjax.train.api`.
"""
