import numpy as np
import pytest

from sde_lib import toy


@pytest.fixture(scope='session')
def gmm() -> toy.GaussianMixture:
  """Three well-separated 2-D modes of unequal weights and widths."""
  return toy.GaussianMixture(
      means=np.array([[-2.0, -2.0], [2.0, 2.0], [2.0, -2.0]]),
      stds=np.array([[0.3], [0.5], [0.4]]),
      weights=np.array([0.5, 0.3, 0.2]))
