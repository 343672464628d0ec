"""Shared test fixtures: small generated data, never the shared datasets."""

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def blobs():
  """A small learnable 10-class image dataset (Gaussian class templates + noise)."""
  from lrjax import data
  return data.synthetic("tiny", num_train=640, num_test=200, seed=0)
