"""Sample-quality statistics: plain float64 NumPy functions of feature arrays.

`feature_statistics` and `frechet_distance` (FID, Heusel et al. 2017, as computed by TTUR
and pytorch-fid), `kernel_distance` (KID, Binkowski et al. 2018), `inception_score`
(Salimans et al. 2016), and the per-class and prompt metrics of conditional samples.
"""

import numpy as np
import scipy.linalg
import scipy.special
from jax.typing import ArrayLike


class EvaluationError(ValueError):
  """A metric cannot be computed: missing or malformed weights, degenerate inputs."""


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Mean [D] and unbiased covariance [D, D] of features [N, D], in float64."""
  features = np.asarray(features, dtype=np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise EvaluationError(f'need features of shape [N >= 2, D], got {features.shape}')
  return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, *,
                     eps: float = 1e-6) -> float:
  """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), as pytorch-fid computes it.

  ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}). When the product is
  singular enough for sqrtm to fail, eps * I is added to both covariances; the imaginary
  part that round-off leaves in the square root is dropped, unless it is large (> 1e-3 on
  the diagonal), which means the inputs are not covariances.

  Args:
    mu1, sigma1: mean [D] and covariance [D, D] of the first set of features.
    mu2, sigma2: those of the second set.
    eps: diagonal offset used only when the product is singular.

  Returns:
    The squared Frechet distance (FID when the features are Inception's pool3).
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise EvaluationError(f'mismatched statistics: means {mu1.shape}, {mu2.shape}, '
                          f'covariances {sigma1.shape}, {sigma2.shape}')
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
  if not np.isfinite(covmean).all():
    offset = eps * np.eye(sigma1.shape[0])
    covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise EvaluationError(f'sqrtm(sigma1 sigma2) has a large imaginary component '
                            f'{np.max(np.abs(covmean.imag)):.3g}')
    covmean = covmean.real
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _cubic_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  linear = a @ b.T / a.shape[1] + 1
  return linear * linear * linear  # 25x faster than numpy's ** 3


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 of x [m, d] and y [n, d] under k(a, b) = (a.b / d + 1)^3."""
  m, n = x.shape[0], y.shape[0]
  k_xx, k_yy, k_xy = _cubic_kernel(x, x), _cubic_kernel(y, y), _cubic_kernel(x, y)
  # Dropping the diagonals k(x_i, x_i) is what makes the within-set terms unbiased.
  return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
               + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
               - 2 * k_xy.sum() / (m * n))


def kernel_distance(features1: ArrayLike, features2: ArrayLike, *, num_subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """Kernel Inception Distance (Binkowski et al. 2018): mean and std of MMD^2 over subsets.

  Each of `num_subsets` rounds draws `subset_size` rows of each set without replacement
  (all rows when a set is smaller) and computes the unbiased MMD^2 with the cubic
  polynomial kernel k(x, y) = (x.y / d + 1)^3, as the authors' code and torch-fidelity do.
  The estimate is unbiased, so it can be slightly negative for equal distributions.

  Args:
    features1: features [N1, D] (e.g. of real images).
    features2: features [N2, D] (e.g. of samples).
    num_subsets: number of random subsets.
    subset_size: rows per subset, clamped to each set's size.
    seed: seed of the numpy generator that draws the subsets.

  Returns:
    (mean, std) of the per-subset MMD^2 estimates (std with ddof=0, as the references).
  """
  x = np.asarray(features1, dtype=np.float64)
  y = np.asarray(features2, dtype=np.float64)
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
    raise EvaluationError(f'need features [N >= 2, D] with equal D, got {x.shape} and {y.shape}')
  m, n = min(subset_size, len(x)), min(subset_size, len(y))
  rng = np.random.default_rng(seed)
  mmds = [_polynomial_mmd2(x[rng.choice(len(x), m, replace=False)],
                           y[rng.choice(len(y), n, replace=False)]) for _ in range(num_subsets)]
  return float(np.mean(mmds)), float(np.std(mmds))


def inception_score(logits: ArrayLike, *, splits: int = 10) -> tuple[float, float]:
  """Inception Score exp(E_x KL(p(y|x) || p(y))), mean and std over `splits` chunks.

  As in Salimans et al.'s code, the rows are cut, in order, into `splits` contiguous
  chunks, p(y) is the mean prediction within a chunk, and the std has ddof=0. Everything
  is done in log space from the logits, in float64, so confident predictions do not
  produce log(0).

  Args:
    logits: unnormalised class scores [N, K] of the generated samples (for Inception, the
      1008 logits without the final bias, as the reference implementations use).
    splits: number of chunks.

  Returns:
    (mean, std) of the per-chunk scores; between 1 and K.
  """
  logits = np.asarray(logits, dtype=np.float64)
  if logits.ndim != 2 or logits.shape[0] < splits:
    raise EvaluationError(f'need logits [N >= splits={splits}, K], got {logits.shape}')
  log_p = scipy.special.log_softmax(logits, axis=1)  # log p(y|x) [N, K]
  n = logits.shape[0]
  scores = []
  for i in range(splits):
    part = log_p[i * n // splits:(i + 1) * n // splits]
    log_marginal = scipy.special.logsumexp(part, axis=0) - np.log(len(part))  # log p(y) [K]
    kl = np.sum(np.exp(part) * (part - log_marginal), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def feature_metrics(real_features: ArrayLike, fake_features: ArrayLike, fake_logits: ArrayLike,
                    *, kid_subset_size: int = 1000, is_splits: int = 10,
                    seed: int = 0) -> dict[str, float]:
  """FD, KID and IS of samples in one call: the three numbers the eval job reports.

  Args:
    real_features: features [N, D] of real (held-out) images.
    fake_features: features [M, D] of generated samples.
    fake_logits: classifier logits [M, K] of the same samples.
    kid_subset_size: see `kernel_distance`.
    is_splits: see `inception_score`.
    seed: seed of KID's subsets.

  Returns:
    {'fd', 'kid', 'kid_std', 'is', 'is_std'}.
  """
  fd = frechet_distance(*feature_statistics(real_features), *feature_statistics(fake_features))
  kid, kid_std = kernel_distance(real_features, fake_features, subset_size=kid_subset_size,
                                 seed=seed)
  score, score_std = inception_score(fake_logits, splits=is_splits)
  return {'fd': fd, 'kid': kid, 'kid_std': kid_std, 'is': score, 'is_std': score_std}


def class_metrics(real_features: ArrayLike, real_labels: ArrayLike, fake_features: ArrayLike,
                  fake_labels: ArrayLike, fake_logits: ArrayLike | None = None
                  ) -> dict[str, float]:
  """Per-class quality of class-conditional samples.

  Args:
    real_features, real_labels: features [N, D] of real images and their classes [N].
    fake_features, fake_labels: features [M, D] of samples and the class each was drawn
      for [M].
    fake_logits: [M, K] logits of the samples from a classifier of the same K classes
      (the digits feature network; Inception's ImageNet logits are not), or None.

  Returns:
    'fd_class{k}': FD between the samples drawn for class k and the real images of class
    k (for each drawn class with at least 2 of both); with fake_logits, 'accuracy': the
    fraction of samples classified as the class they were drawn for, and
    'accuracy_class{k}' per drawn class.
  """
  real_features, fake_features = np.asarray(real_features), np.asarray(fake_features)
  real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
  metrics = {}
  if fake_logits is not None:
    hits = np.argmax(np.asarray(fake_logits), axis=-1) == fake_labels
    metrics['accuracy'] = float(hits.mean())
  for k in np.unique(fake_labels):
    drawn, real = fake_labels == k, real_labels == k
    if fake_logits is not None:
      metrics[f'accuracy_class{k}'] = float(hits[drawn].mean())
    if drawn.sum() >= 2 and real.sum() >= 2:
      metrics[f'fd_class{k}'] = frechet_distance(*feature_statistics(real_features[real]),
                                                 *feature_statistics(fake_features[drawn]))
  return metrics


def pair_accuracy(pair_logits: ArrayLike, labels: ArrayLike) -> dict[str, float]:
  """How generated pairs of digits match their prompts, from `digit_pair_features`' logits
  [N, 100] and the prompts' pair labels [N] (10 * left + right).

  Returns:
    'prompt_accuracy' (both digits, in order), 'left_accuracy' and 'right_accuracy' (each
    side alone) over every prompt; over the prompts naming two different digits,
    'duplicate_rate' (the same digit drawn twice: the model knew a digit but not where it
    goes) and 'swap_rate' (both digits, in the other order). Rates are NaN without such
    prompts.
  """
  guess = np.argmax(np.asarray(pair_logits), axis=-1)
  labels = np.asarray(labels)
  different = labels // 10 != labels % 10
  rate = lambda hits: float(np.mean(hits[different])) if different.any() else float('nan')
  return {'prompt_accuracy': float(np.mean(guess == labels)),
          'left_accuracy': float(np.mean(guess // 10 == labels // 10)),
          'right_accuracy': float(np.mean(guess % 10 == labels % 10)),
          'duplicate_rate': rate(guess // 10 == guess % 10),
          'swap_rate': rate(guess == 10 * (labels % 10) + labels // 10)}

