"""What to train, said three ways and turned into `lrjax.sweep`'s arguments.

The checks of a user's arguments (`inputs`), the report's settings (`config`,
`optimizers`, `presets`) and the TOML sweep file (`sweep_file`).

May import: `lrjax.train.engine`, `lrjax.train.search`, `lrjax.models`, `lrjax.data`,
the schedules, strategies and adaptive rates; never the runner, the reports or
`lrjax.train.api` (which calls them, not the other way round).
"""
