"""What comes out of a sweep: summaries (`metrics`), results files (`results`), plots.

May import: `lrjax.train.engine` (the task), numpy, matplotlib, `lrjax._atomic`.
"""
