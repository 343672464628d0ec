"""Shared test fixtures: small generated data, never the shared datasets."""

import pytest


@pytest.fixture(scope="session")
def blobs():
  """A small learnable 10-class image dataset (Gaussian class templates + noise)."""
  from lrjax import data
  return data.synthetic("tiny", num_train=640, num_test=200, seed=0)
