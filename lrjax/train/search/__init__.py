"""Search between epochs: search spaces and controllers.

May import: numpy, scipy; nothing else of lrjax.train (a controller sees plain numpy
arrays and dicts).
"""
