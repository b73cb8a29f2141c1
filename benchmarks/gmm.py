"""The benchmark mixture: 8 well-separated modes in 64 dimensions, exact score."""

import numpy as np

from sde_lib import toy


def benchmark_mixture(dim: int = 64, n_modes: int = 8, seed: int = 0) -> toy.GaussianMixture:
  """Modes ~ N(0, 2^2 I) apart (about 22 apart in 64-D), stds in [0.3, 0.7], unequal weights."""
  rng = np.random.default_rng(seed)
  return toy.GaussianMixture(
      means=2.0 * rng.standard_normal((n_modes, dim)),
      stds=rng.uniform(0.3, 0.7, (n_modes, 1)),
      weights=rng.uniform(0.5, 1.5, n_modes))


def fit_errors(gmm: toy.GaussianMixture, x) -> dict[str, float]:
  """Mode-weight, mean and std errors of samples x against the mixture.

  weight_err: total variation between empirical and true mode weights;
  mean_err: worst mode's RMS (over dimensions) error of the mean;
  std_err: worst mode's relative error of the RMS std.
  """
  weights, means, variances = gmm.mode_statistics(x)
  std = np.sqrt(np.mean(variances, axis=1))
  true_std = np.sqrt(np.mean(gmm.stds**2, axis=1))
  return {
      'weight_err': 0.5 * float(np.abs(weights - gmm.weights).sum()),
      'mean_err': float(np.nanmax(np.sqrt(np.mean((means - gmm.means) ** 2, axis=1)))),
      'std_err': float(np.nanmax(np.abs(std - true_std) / true_std)),
  }
