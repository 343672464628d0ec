"""lrjax: learning-rate schedules, strategies and adaptive rates for JAX/Optax."""

__version__ = "0.1.0"
