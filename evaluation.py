"""Sample-quality metrics: FID, KID and Inception Score, on Inception or digits features.

The statistics are plain float64 numpy functions of feature arrays:
`feature_statistics` and `frechet_distance` (FID, Heusel et al. 2017, as computed by
TTUR and pytorch-fid), `kernel_distance` (KID, Binkowski et al. 2018) and
`inception_score` (Salimans et al. 2016). Two feature extractors feed them:

- `InceptionV3`: the FID variant of Inception-v3 (TensorFlow's 2015-12-05 graph as ported
  by pytorch-fid), returning the 2048-d pool3 features and the 1008 logits.
- `DigitsClassifier`: a small CNN for scikit-learn's 8x8 digits, trained from scratch,
  deterministically and in seconds by `train_digits_classifier`, so no weights are shipped.

Inception weights cannot be downloaded at run time. They live in an .npz file whose keys
are the Flax variable paths joined by '/', e.g. `params/Mixed_5b/branch1x1/conv/kernel`
(HWIO) and `batch_stats/Mixed_5b/branch1x1/bn/mean`. Convert pytorch-fid's weights once,
on a machine with torch:

  import torch, evaluation
  # The file at evaluation.PYTORCH_FID_WEIGHTS_URL; or, with pytorch-fid installed,
  # state_dict = pytorch_fid.inception.fid_inception_v3().state_dict().
  state_dict = torch.load('pt_inception-2015-12-05-6726825d.pth', map_location='cpu')
  variables = evaluation.convert_pytorch_fid_state_dict(
      {name: value.numpy() for name, value in state_dict.items()})
  evaluation.save_inception_params(variables, 'inception_fid.npz')

then `variables = load_inception_params('inception_fid.npz')` and
`features, logits = inception_features(variables, images)` for images in [-1, 1].
"""

import functools
import os
import zipfile
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.linalg
import scipy.special
from flax import traverse_util
from jax.typing import ArrayLike

import input_pipeline

Variables = dict[str, dict]


class EvaluationError(ValueError):
  """A metric cannot be computed: missing or malformed weights, degenerate inputs."""


# Metric values must not depend on an accelerator's reduced-precision float32 default (TF32).
_PRECISION = jax.lax.Precision.HIGHEST


# ----------------------------------------------------------------------------------------------
# Statistics and distances (numpy, float64).


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


# ----------------------------------------------------------------------------------------------
# Inception-v3, FID variant (pytorch-fid's fid_inception_v3), NHWC.

INCEPTION_CLASSES = 1008
PYTORCH_FID_WEIGHTS = 'pt_inception-2015-12-05-6726825d.pth'
PYTORCH_FID_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
                           + PYTORCH_FID_WEIGHTS)


class BasicConv2d(nn.Module):
  """Convolution without bias, BatchNorm (eps 1e-3, running statistics), ReLU."""

  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)  # (rows, columns) on both sides, as torch's Conv2d

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pad_h, pad_w = self.padding
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides,
                padding=((pad_h, pad_h), (pad_w, pad_w)), use_bias=False, precision=_PRECISION,
                name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  # TensorFlow's average pool leaves the zero padding out of the count (pytorch-fid's patch).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: jax.Array, stride: int) -> jax.Array:
  padding = 'VALID' if stride == 2 else ((1, 1), (1, 1))
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=padding)


class InceptionA(nn.Module):
  """Mixed_5b/c/d: 1x1, 5x5, double 3x3 and pooled branches."""

  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch1x1 = BasicConv2d(64, (1, 1), name='branch1x1')(x)
    branch5x5 = BasicConv2d(48, (1, 1), name='branch5x5_1')(x)
    branch5x5 = BasicConv2d(64, (5, 5), padding=(2, 2), name='branch5x5_2')(branch5x5)
    branch3x3dbl = BasicConv2d(64, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(branch3x3dbl)
    branch_pool = BasicConv2d(self.pool_features, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a: grid reduction 35 -> 17."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch3x3 = BasicConv2d(384, (3, 3), strides=2, name='branch3x3')(x)
    branch3x3dbl = BasicConv2d(64, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = BasicConv2d(96, (3, 3), strides=2, name='branch3x3dbl_3')(branch3x3dbl)
    return jnp.concatenate([branch3x3, branch3x3dbl, _max_pool_3x3(x, 2)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b/c/d/e: factorised 7x7 branches."""

  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    branch1x1 = BasicConv2d(192, (1, 1), name='branch1x1')(x)
    branch7x7 = BasicConv2d(c7, (1, 1), name='branch7x7_1')(x)
    branch7x7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(branch7x7)
    branch7x7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7_3')(branch7x7)
    dbl = BasicConv2d(c7, (1, 1), name='branch7x7dbl_1')(x)
    dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(dbl)
    dbl = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(dbl)
    dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(dbl)
    dbl = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(dbl)
    branch_pool = BasicConv2d(192, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch7x7, dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a: grid reduction 17 -> 8."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch3x3 = BasicConv2d(192, (1, 1), name='branch3x3_1')(x)
    branch3x3 = BasicConv2d(320, (3, 3), strides=2, name='branch3x3_2')(branch3x3)
    branch7x7x3 = BasicConv2d(192, (1, 1), name='branch7x7x3_1')(x)
    branch7x7x3 = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(branch7x7x3)
    branch7x7x3 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(branch7x7x3)
    branch7x7x3 = BasicConv2d(192, (3, 3), strides=2, name='branch7x7x3_4')(branch7x7x3)
    return jnp.concatenate([branch3x3, branch7x7x3, _max_pool_3x3(x, 2)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b/c: expanded 3x3 branches. The FID graph max-pools in Mixed_7c (`max_pool`)."""

  max_pool: bool

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch1x1 = BasicConv2d(320, (1, 1), name='branch1x1')(x)
    branch3x3 = BasicConv2d(384, (1, 1), name='branch3x3_1')(x)
    branch3x3 = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(branch3x3),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(branch3x3)], axis=-1)
    dbl = BasicConv2d(448, (1, 1), name='branch3x3dbl_1')(x)
    dbl = BasicConv2d(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(dbl)
    dbl = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(dbl),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(dbl)], axis=-1)
    pooled = _max_pool_3x3(x, 1) if self.max_pool else _avg_pool_3x3(x)
    branch_pool = BasicConv2d(192, (1, 1), name='branch_pool')(pooled)
    return jnp.concatenate([branch1x1, branch3x3, dbl, branch_pool], axis=-1)


class InceptionV3(nn.Module):
  """The FID Inception-v3: images [B, H, W, C] in [-1, 1] -> (pool3 [B, 2048], logits [B, 1008]).

  As pytorch-fid's `InceptionV3(resize_input=True, normalize_input=True)`, whose 2x - 1
  maps [0, 1] to the [-1, 1] expected here: a bilinear resize to `resize_to` (no
  antialiasing, half-pixel centres, i.e. torch's `align_corners=False`; it commutes
  with the affine normalisation). Grey images (C = 1) are repeated to RGB.
  Submodule names are those of the PyTorch model (`Mixed_6e/branch7x7_2/conv`), which
  `convert_pytorch_fid_state_dict` relies on. The logits omit the final layer's bias, as
  the Inception Score's reference code (and torch-fidelity's `logits_unbiased`) does.

  Attributes:
    resize_to: side of the network's input; 299 for FID, smaller (>= 75) only in tests.
  """

  resize_to: int = 299

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    if images.shape[-1] == 1:
      images = jnp.repeat(images, 3, axis=-1)
    size = self.resize_to
    x = jax.image.resize(images.astype(jnp.float32), (images.shape[0], size, size, 3),
                         'bilinear', antialias=False)
    x = BasicConv2d(32, (3, 3), strides=2, name='Conv2d_1a_3x3')(x)  # [B, 149, 149, 32]
    x = BasicConv2d(32, (3, 3), name='Conv2d_2a_3x3')(x)  # [B, 147, 147, 32]
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3(x, 2)  # [B, 73, 73, 64]
    x = BasicConv2d(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = BasicConv2d(192, (3, 3), name='Conv2d_4a_3x3')(x)  # [B, 71, 71, 192]
    x = _max_pool_3x3(x, 2)  # [B, 35, 35, 192]
    x = InceptionA(32, name='Mixed_5b')(x)
    x = InceptionA(64, name='Mixed_5c')(x)
    x = InceptionA(64, name='Mixed_5d')(x)  # [B, 35, 35, 288]
    x = InceptionB(name='Mixed_6a')(x)  # [B, 17, 17, 768]
    x = InceptionC(128, name='Mixed_6b')(x)
    x = InceptionC(160, name='Mixed_6c')(x)
    x = InceptionC(160, name='Mixed_6d')(x)
    x = InceptionC(192, name='Mixed_6e')(x)
    x = InceptionD(name='Mixed_7a')(x)  # [B, 8, 8, 1280]
    x = InceptionE(max_pool=False, name='Mixed_7b')(x)
    x = InceptionE(max_pool=True, name='Mixed_7c')(x)  # [B, 8, 8, 2048]
    features = jnp.mean(x, axis=(1, 2))
    logits = nn.Dense(INCEPTION_CLASSES, use_bias=False, precision=_PRECISION, name='fc')(features)
    return features, logits


@functools.partial(jax.jit, static_argnames='resize_to')
def _inception_apply(variables: Variables, images: jax.Array,
                     resize_to: int) -> tuple[jax.Array, jax.Array]:
  return InceptionV3(resize_to=resize_to).apply(variables, images)


def inception_features(variables: Variables, images: ArrayLike, *, batch_size: int = 100,
                       resize_to: int = 299) -> tuple[np.ndarray, np.ndarray]:
  """Pool3 features [N, 2048] and logits [N, 1008] of images [N, H, W, C] in [-1, 1].

  Runs `InceptionV3` on batches of `batch_size` (the last one padded, so that it compiles
  once) and gathers the results on the host, in float32.

  Args:
    variables: from `load_inception_params` (or `convert_pytorch_fid_state_dict`).
    images: [N, H, W, C] with C = 1 or 3, in [-1, 1].
    batch_size: images per forward pass.
    resize_to: the network's input side; keep 299 for FID.
  """
  images = np.asarray(images, np.float32)
  batch_size = min(batch_size, len(images))
  variables = jax.device_put(variables)  # once, not at every batch
  features, logits = [], []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    padded = np.pad(chunk, [(0, batch_size - len(chunk))] + [(0, 0)] * 3)
    batch_features, batch_logits = jax.device_get(_inception_apply(variables, padded, resize_to))
    features.append(batch_features[:len(chunk)])
    logits.append(batch_logits[:len(chunk)])
  return np.concatenate(features), np.concatenate(logits)


@functools.cache
def _inception_shapes() -> dict[str, tuple[int, ...]]:
  """Flat '/'-joined variable paths of InceptionV3 -> shapes, without computing anything."""
  dummy = jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32)
  shapes = jax.eval_shape(InceptionV3(resize_to=75).init, jax.random.key(0), dummy)
  return {path: tuple(leaf.shape)
          for path, leaf in traverse_util.flatten_dict(shapes, sep='/').items()}


def _unflatten(flat: Mapping[str, np.ndarray], source: str) -> Variables:
  """Checks flat variables against InceptionV3's and nests them; `source` names them in errors."""
  expected = _inception_shapes()
  missing, unexpected = sorted(set(expected) - set(flat)), sorted(set(flat) - set(expected))
  if missing or unexpected:
    raise EvaluationError(
        f'{source} does not hold FID Inception-v3 weights: {len(missing)} missing (e.g. '
        f'{missing[:1]}), {len(unexpected)} unexpected (e.g. {unexpected[:1]}); convert '
        f"pytorch-fid's {PYTORCH_FID_WEIGHTS} with convert_pytorch_fid_state_dict")
  for path, shape in expected.items():
    if tuple(flat[path].shape) != shape:
      raise EvaluationError(f'{source}: {path} has shape {tuple(flat[path].shape)}, expected '
                            f'{shape}; convert {PYTORCH_FID_WEIGHTS} with '
                            f'convert_pytorch_fid_state_dict')
  return traverse_util.unflatten_dict(
      {path: np.asarray(value, np.float32) for path, value in flat.items()}, sep='/')


_BATCH_NORM_NAMES = {'weight': 'params/{}/scale', 'bias': 'params/{}/bias',
                     'running_mean': 'batch_stats/{}/mean', 'running_var': 'batch_stats/{}/var'}


def convert_pytorch_fid_state_dict(state_dict: Mapping[str, np.ndarray]) -> Variables:
  """Maps pytorch-fid's FID Inception state dict to `InceptionV3` variables.

  Names keep their module path ('Mixed_5b.branch1x1.conv.weight' ->
  'Mixed_5b/branch1x1/conv/kernel'). Convolution weights go from OIHW to HWIO, the linear
  layer from [out, in] to [in, out]; BatchNorm's weight and bias become params `scale`
  and `bias` and its running mean and variance the `batch_stats` `mean` and `var`.
  `num_batches_tracked` counters and the fc bias (unused by the Inception Score) are dropped.

  Args:
    state_dict: name -> numpy array of pt_inception-2015-12-05-6726825d.pth, e.g.
      `{k: v.numpy() for k, v in torch.load(path, map_location='cpu').items()}`.

  Returns:
    {'params': ..., 'batch_stats': ...} for `InceptionV3().apply`.

  Raises:
    EvaluationError: if the names or shapes are not those of the FID Inception.
  """
  flat = {}
  for name, value in state_dict.items():
    *module, leaf = name.split('.')
    prefix, value = '/'.join(module), np.asarray(value)
    if leaf == 'num_batches_tracked' or name == 'fc.bias':
      continue
    if leaf == 'weight' and value.ndim == 4:
      flat[f'params/{prefix}/kernel'] = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif leaf == 'weight' and value.ndim == 2:
      flat[f'params/{prefix}/kernel'] = value.T  # [out, in] -> [in, out]
    else:
      # Unknown names are kept as they are, so that the check below reports them.
      flat[_BATCH_NORM_NAMES[leaf].format(prefix) if leaf in _BATCH_NORM_NAMES else name] = value
  return _unflatten(flat, 'the state dict')


def save_inception_params(variables: Variables, path: str | os.PathLike) -> None:
  """Writes InceptionV3 variables to an .npz keyed by '/'-joined paths (the only file I/O)."""
  flat = traverse_util.flatten_dict(jax.device_get(variables), sep='/')
  np.savez(path, **{name: np.asarray(value) for name, value in flat.items()})


def load_inception_params(path: str | os.PathLike) -> Variables:
  """Reads InceptionV3 variables written by `save_inception_params`.

  Raises:
    EvaluationError: if the file is missing, unreadable, or does not hold the FID
      Inception's variables with their shapes; the message says how to produce it.
  """
  if not os.path.isfile(path):
    raise EvaluationError(
        f'Inception weights not found at {os.fspath(path)!r}: convert pytorch-fid\'s '
        f'{PYTORCH_FID_WEIGHTS} once with evaluation.convert_pytorch_fid_state_dict and '
        f'save_inception_params (see the evaluation module docstring)')
  try:
    with np.load(path, allow_pickle=False) as data:
      flat = {name: data[name] for name in data.files}
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise EvaluationError(f'cannot read Inception weights {os.fspath(path)!r} as .npz ({e}); '
                          f'write them with evaluation.save_inception_params') from e
  return _unflatten(flat, repr(os.fspath(path)))


# ----------------------------------------------------------------------------------------------
# The digits classifier: features for FID/KID/IS on scikit-learn's 8x8 digits.

DIGITS_STEPS = 1500
DIGITS_BATCH_SIZE = 64


class DigitsClassifier(nn.Module):
  """Images [B, 8, 8, 1] in [0, 1] -> (features [B, 64], logits [B, 10]); 38,282 params.

  Swish rather than ReLU: a third of ReLU's features were dead (always 0), which makes
  their covariance singular for the Frechet distance.
  """

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = nn.swish(nn.Conv(16, (3, 3), precision=_PRECISION, name='conv1')(images))  # [B, 8, 8, 16]
    x = nn.swish(nn.Conv(32, (3, 3), precision=_PRECISION, name='conv2')(x))  # [B, 8, 8, 32]
    x = nn.max_pool(x, (2, 2), strides=(2, 2))  # [B, 4, 4, 32]
    x = x.reshape(x.shape[0], -1)
    features = nn.swish(nn.Dense(64, precision=_PRECISION, name='dense')(x))
    return features, nn.Dense(10, precision=_PRECISION, name='logits')(features)


def _random_shifts(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Shifts each image [8, 8, 1] by -1, 0 or 1 pixel along each axis, filling with 0."""
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))  # [B, 10, 10, 1]
  dy, dx = rng.integers(0, 3, size=(2, len(images)))
  rows = (dy[:, None] + np.arange(8))[:, :, None]  # [B, 8, 1]
  cols = (dx[:, None] + np.arange(8))[:, None, :]  # [B, 1, 8]
  return padded[np.arange(len(images))[:, None, None], rows, cols]


def train_digits_classifier(images: ArrayLike, labels: ArrayLike, *, seed: int = 0,
                            steps: int = DIGITS_STEPS,
                            batch_size: int = DIGITS_BATCH_SIZE) -> dict:
  """Trains `DigitsClassifier` from scratch, bit-for-bit reproducibly, in a few seconds.

  Recipe: conv3x3(16)-swish, conv3x3(32)-swish, 2x2 max-pool, dense(64)-swish (the
  features), dense(10); Flax's default initialisation from `jax.random.key(seed)`;
  softmax cross-entropy; optax.adamw (weight decay 1e-4) with a cosine decay of the
  learning rate from 3e-3 to 0 over `steps` steps of `batch_size` images. A
  `np.random.default_rng(seed)` draws the batches, which walk through successive
  permutations of the data, then each image's random shift by -1..1 pixels per axis
  (zero fill): the only augmentation, worth ~2 points of accuracy on unseen writers.
  Training runs in float32 on the CPU backend, so the classifier, and hence every metric
  built on it, does not depend on the accelerator the job runs on. Train it on the split
  the score model is trained on, then compare held-out real digits with samples.

  Args:
    images: [N, 8, 8, 1] grey levels in [0, 1] (load_digits' 0..16 divided by 16).
    labels: [N] integer classes 0..9.
    seed: seed of the initialisation, the batch order and the shifts.
    steps: optimiser steps.
    batch_size: images per step.

  Returns:
    The classifier's params, for `digits_features`.
  """
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels, np.int32)
  if images.shape[1:] != (8, 8, 1) or labels.shape != images.shape[:1]:
    raise EvaluationError(f'need images [N, 8, 8, 1] and labels [N], got {images.shape} '
                          f'and {labels.shape}')
  rng = np.random.default_rng(seed)
  epochs = -(-steps * batch_size // len(images))
  order = np.concatenate([rng.permutation(len(images)) for _ in range(epochs)])
  batches = order[:steps * batch_size].reshape(steps, batch_size)  # [steps, B] indices

  with jax.default_device(jax.local_devices(backend='cpu')[0]):
    params = _digits_init(seed)
    opt_state = _digits_optimizer(steps).init(params)
    for batch in batches:
      params, opt_state = _digits_train_step(params, opt_state, _random_shifts(images[batch], rng),
                                             labels[batch], steps=steps)
  return params


def _digits_optimizer(steps: int) -> optax.GradientTransformation:
  return optax.adamw(optax.cosine_decay_schedule(3e-3, steps), weight_decay=1e-4)


@jax.jit
def _digits_init(seed: int) -> dict:
  return DigitsClassifier().init(jax.random.key(seed), jnp.zeros((1, 8, 8, 1)))['params']


# A Python loop over a jitted step: XLA:CPU runs these convolutions ~10x slower inside
# lax.scan's while loop.
@functools.partial(jax.jit, static_argnames='steps')
def _digits_train_step(params: dict, opt_state: optax.OptState, images: jax.Array,
                       labels: jax.Array, *, steps: int) -> tuple[dict, optax.OptState]:
  def loss_fn(params):
    _, logits = DigitsClassifier().apply({'params': params}, images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  updates, opt_state = _digits_optimizer(steps).update(jax.grad(loss_fn)(params), opt_state,
                                                       params)
  return optax.apply_updates(params, updates), opt_state


@jax.jit
def digits_features(params: dict, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Penultimate activations [N, 64] and logits [N, 10] of images [N, 8, 8, 1] in [0, 1]."""
  return DigitsClassifier().apply({'params': params}, jnp.asarray(images, jnp.float32))


def digit_pair_features(params: dict, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Features [N, 128] and logits [N, 100] of digit pairs [N, S, S, 1] in [0, 1]
  (input_pipeline's digit_pairs, S = 16, or resized to S): the digits classifier's
  features of the left and the right digit side by side, and the log-probabilities of
  the 100 ordered pairs, log p(left) + log p(right), label 10 * left + right.

  Pairs rendered smaller (a cascade's 8x8 base) are upsampled bilinearly: a feature space
  for FD, but the logits of their blurred halves are chance (1% of real 8x8 test pairs
  read right, against 90% at 16x16)."""
  images = jnp.asarray(images, jnp.float32)
  if images.shape[1] != 16:
    images = jax.image.resize(images, (len(images), 16, 16, 1), 'linear')
  rows = images[:, input_pipeline.DIGIT_PAIRS_ROWS]
  left, left_logits = digits_features(params, rows[:, :, input_pipeline.DIGIT_PAIRS_LEFT])
  right, right_logits = digits_features(params, rows[:, :, input_pipeline.DIGIT_PAIRS_RIGHT])
  pairs = (jax.nn.log_softmax(left_logits)[:, :, None]
           + jax.nn.log_softmax(right_logits)[:, None, :])
  return jnp.concatenate([left, right], axis=-1), pairs.reshape(len(images), 100)


def pair_accuracy(pair_logits: ArrayLike, labels: ArrayLike) -> dict[str, float]:
  """How often both digits of generated pairs are the prompt's ('prompt_accuracy'), and
  each side alone, from `digit_pair_features`' logits [N, 100] and the prompts' pair
  labels [N] (10 * left + right)."""
  guess = np.argmax(np.asarray(pair_logits), axis=-1)
  labels = np.asarray(labels)
  return {'prompt_accuracy': float(np.mean(guess == labels)),
          'left_accuracy': float(np.mean(guess // 10 == labels // 10)),
          'right_accuracy': float(np.mean(guess % 10 == labels % 10))}

