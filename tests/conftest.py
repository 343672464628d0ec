"""Shared test fixtures: small generated data, never the shared datasets."""

import tempfile

import jax
import pytest

# Many tests build the same programs again (a new closure per `lrjax.sweep` call, so
# `jax.jit`'s in-memory cache misses); XLA's persistent cache keys on the compiled
# program itself, so the second build is a load.  A fresh folder per session: nothing
# is kept between runs, and no test sees another run's cache.
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="lrjax_tests_xla_"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture(scope="session")
def blobs():
  """A small learnable 10-class image dataset (Gaussian class templates + noise)."""
  from lrjax import data
  return data.synthetic("tiny", num_train=640, num_test=200, seed=0)
