"""FD, KID and IS against closed forms, brute force and population values."""

import math

import numpy as np
import pytest
import scipy.linalg

from metrics import statistics
from metrics.statistics import EvaluationError


# ----------------------------------------------------------------------------------------------
# Frechet distance.


def _random_covariance(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def _trace_sqrt_product(sigma1, sigma2):
  """Tr((S1 S2)^{1/2}) = Tr((S1^{1/2} S2 S1^{1/2})^{1/2}), through symmetric eigensolvers."""
  w, v = np.linalg.eigh(sigma1)
  root1 = v @ np.diag(np.sqrt(w)) @ v.T
  return np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0, None)))


def test_feature_statistics_are_the_mean_and_unbiased_covariance():
  x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
  mu, sigma = statistics.feature_statistics(x)
  centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
  assert mu.dtype == sigma.dtype == np.float64
  np.testing.assert_allclose(mu, x.astype(np.float64).sum(axis=0) / 50, rtol=1e-12)
  np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-12)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  var1, var2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
  fd = statistics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
  assert fd == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_full_covariances_is_symmetric_and_matches_eigh():
  rng = np.random.default_rng(1)
  mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
  sigma1, sigma2 = _random_covariance(rng, 8), _random_covariance(rng, 8)
  expected = (np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
              - 2 * _trace_sqrt_product(sigma1, sigma2))
  assert statistics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)
  assert statistics.frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_samples_converges_to_the_population_value():
  rng = np.random.default_rng(2)
  mu1, mu2 = np.zeros(4), np.array([1.0, 0.0, -0.5, 0.0])
  sigma1, sigma2 = _random_covariance(rng, 4), _random_covariance(rng, 4)
  x = rng.multivariate_normal(mu1, sigma1, size=50_000)
  y = rng.multivariate_normal(mu2, sigma2, size=50_000)
  exact = statistics.frechet_distance(mu1, sigma1, mu2, sigma2)
  estimate = statistics.frechet_distance(*statistics.feature_statistics(x),
                                         *statistics.feature_statistics(y))
  assert estimate == pytest.approx(exact, rel=0.03)


@pytest.mark.parametrize('n', [500, 5])  # 5 < D: singular covariances
def test_frechet_distance_of_a_set_with_itself_is_zero(n):
  stats = statistics.feature_statistics(np.random.default_rng(3).normal(size=(n, 10)))
  assert abs(statistics.frechet_distance(*stats, *stats)) < 1e-6


def test_frechet_distance_retries_with_an_offset_when_sqrtm_fails(monkeypatch):
  sqrtm = scipy.linalg.sqrtm
  calls = []

  def failing_once(a):
    calls.append(a)
    return np.full_like(a, np.inf) if len(calls) == 1 else sqrtm(a)

  monkeypatch.setattr(scipy.linalg, 'sqrtm', failing_once)
  fd = statistics.frechet_distance(np.zeros(3), np.eye(3), np.ones(3), 4 * np.eye(3), eps=1e-6)
  assert len(calls) == 2
  assert fd == pytest.approx(3 + 3 * (2 - 1) ** 2, rel=1e-5)


def test_frechet_distance_rejects_non_covariances_and_mismatched_shapes():
  with pytest.raises(EvaluationError, match='imaginary component'):
    statistics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))
  with pytest.raises(EvaluationError, match='mismatched'):
    statistics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# ----------------------------------------------------------------------------------------------
# Kernel distance.


def _brute_force_mmd2(x, y):
  def k(a, b):
    return (a @ b / x.shape[1] + 1) ** 3

  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2 * xy


def test_kernel_distance_is_the_unbiased_polynomial_mmd_of_whole_small_sets():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(6, 3)), rng.normal(1.0, size=(5, 3))
  mean, std = statistics.kernel_distance(x, y, num_subsets=3)  # subsets clamp to all rows
  assert mean == pytest.approx(_brute_force_mmd2(x, y), rel=1e-12)
  assert std < 1e-9


def test_kernel_distance_estimates_the_population_mmd_without_bias():
  # d = 1: k(x, y) = (xy + 1)^3, so MMD^2 = sum_j c_j (E X^j - E Y^j)^2 with c = (3, 3, 1)
  # for j = 1, 2, 3. X ~ N(0, 1), Y ~ N(mu, 1): E Y = mu, E Y^2 = 1 + mu^2, E Y^3 = mu^3 + 3 mu.
  mu = 0.5
  exact = 3 * mu ** 2 + 3 * mu ** 4 + (mu ** 3 + 3 * mu) ** 2
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(100_000, 1)), rng.normal(mu, size=(100_000, 1))
  mean, std = statistics.kernel_distance(x, y, num_subsets=100, subset_size=1000)
  assert abs(mean - exact) < 4 * std / math.sqrt(100)
  assert std > 0


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_shifted():
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
  same, same_std = statistics.kernel_distance(x, y, num_subsets=20, subset_size=500)
  shifted, _ = statistics.kernel_distance(x, y + 0.3, num_subsets=20, subset_size=500)
  assert abs(same) < 3 * same_std
  assert shifted > 20 * same_std + abs(same)


# ----------------------------------------------------------------------------------------------
# Inception score.


def test_inception_score_of_identical_predictions_is_one():
  logits = np.tile(np.random.default_rng(0).normal(size=(1, 7)), (100, 1))
  mean, std = statistics.inception_score(logits, splits=10)
  assert mean == pytest.approx(1.0, abs=1e-12) and std < 1e-12


@pytest.mark.parametrize('classes_per_sample', [1, 2])
def test_inception_score_of_evenly_spread_confident_predictions(classes_per_sample):
  # Each sample is uniform over `classes_per_sample` of K classes, each chunk covers the K
  # classes evenly: KL = log K - log classes_per_sample. Logits of 1000 overflow a naive exp.
  k, n = 10, 200
  labels = np.arange(n) % k
  logits = np.zeros((n, k))
  for shift in range(classes_per_sample):
    logits[np.arange(n), (labels + shift) % k] = 1000.0
  mean, std = statistics.inception_score(logits, splits=10)
  assert mean == pytest.approx(k / classes_per_sample, rel=1e-12) and std < 1e-9


def test_pair_accuracy_counts_sides_duplicates_and_swaps():
  # Prompts (3, 7), (3, 7), (5, 5), (1, 2), (8, 9); guesses: right, duplicate 3, right,
  # swapped, left digit only.
  labels = np.array([37, 37, 55, 12, 89])
  guesses = np.array([37, 33, 55, 21, 80])
  logits = np.full((5, 100), -5.0)
  logits[np.arange(5), guesses] = 0.0
  found = statistics.pair_accuracy(logits, labels)
  assert found == pytest.approx({
      'prompt_accuracy': 2 / 5, 'left_accuracy': 4 / 5, 'right_accuracy': 2 / 5,
      # over the 4 prompts of two different digits: one duplicate, one swap
      'duplicate_rate': 1 / 4, 'swap_rate': 1 / 4})
  same = statistics.pair_accuracy(logits[2:3], labels[2:3])
  assert np.isnan(same['duplicate_rate']) and np.isnan(same['swap_rate'])
