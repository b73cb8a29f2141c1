"""The digits classifiers: features for FD, KID and IS of scikit-learn's 8x8 digits and of
the digit pairs, from a small CNN trained from scratch, deterministically and in seconds
(`train_digits_classifier`), so no weights are shipped."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from data import bundled
from metrics import feature_classifier
from metrics.inception import PRECISION
from metrics.statistics import EvaluationError

DIGITS_STEPS = 1500
DIGITS_BATCH_SIZE = 64


class DigitsClassifier(nn.Module):
  """Images [B, 8, 8, 1] in [0, 1] -> (features [B, 64], logits [B, 10]); 38,282 params.

  Swish rather than ReLU: a third of ReLU's features were dead (always 0), which makes
  their covariance singular for the Frechet distance.
  """

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = nn.swish(nn.Conv(16, (3, 3), precision=PRECISION, name='conv1')(images))  # [B, 8, 8, 16]
    x = nn.swish(nn.Conv(32, (3, 3), precision=PRECISION, name='conv2')(x))  # [B, 8, 8, 32]
    x = nn.max_pool(x, (2, 2), strides=(2, 2))  # [B, 4, 4, 32]
    x = x.reshape(x.shape[0], -1)
    features = nn.swish(nn.Dense(64, precision=PRECISION, name='dense')(x))
    return features, nn.Dense(10, precision=PRECISION, name='logits')(features)


def train_digits_classifier(images: ArrayLike, labels: ArrayLike, *, seed: int = 0,
                            steps: int = DIGITS_STEPS,
                            batch_size: int = DIGITS_BATCH_SIZE) -> dict:
  """Trains `DigitsClassifier` from scratch, bit-for-bit reproducibly, in a few seconds.

  Recipe (`feature_classifier.train`): conv3x3(16)-swish, conv3x3(32)-swish, 2x2 max-pool,
  dense(64)-swish (the features), dense(10); softmax cross-entropy, adamw with a cosine
  decay from 3e-3 over `steps` steps of `batch_size` images, each image shifted by -1..1
  pixels per axis (zero fill): the only augmentation, worth ~2 points of accuracy on
  unseen writers. Train it on the split the score model is trained on, then compare
  held-out real digits with samples.

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
  if images.shape[1:] != (8, 8, 1):
    raise EvaluationError(f'need images [N, 8, 8, 1], got {images.shape}')
  return feature_classifier.train(DigitsClassifier(), images, labels, seed=seed, steps=steps,
                                  batch_size=batch_size, lr=3e-3, max_shift=1)


@jax.jit
def digits_features(params: dict, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Penultimate activations [N, 64] and logits [N, 10] of images [N, H, W, 1] in [0, 1];
  other sizes than 8x8 (a cascade's stages, other aspect ratios) are resized bilinearly
  to it first: a feature space for FD, not a reading of their digits."""
  images = jnp.asarray(images, jnp.float32)
  if images.shape[1:3] != (8, 8):
    images = jax.image.resize(images, (len(images), 8, 8, images.shape[3]), 'linear')
  return DigitsClassifier().apply({'params': params}, images)


def digit_pair_features(params: dict, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Features [N, 128] and logits [N, 100] of digit pairs [N, S, S, 1] in [0, 1]
  (data.bundled's digit pairs, S = 16, or resized to S): the digits classifier's
  features of the left and the right digit side by side, and the log-probabilities of
  the 100 ordered pairs, log p(left) + log p(right), label 10 * left + right.

  Pairs rendered smaller (a cascade's 8x8 base) are upsampled bilinearly: a feature space
  for FD, but the logits of their blurred halves are chance (1% of real 8x8 test pairs
  read right, against 99.5-100% of real test pairs at 16x16; tests/metrics/test_digits.py
  holds it to at least 97%, the text benchmark's judge)."""
  images = jnp.asarray(images, jnp.float32)
  size = bundled.DIGIT_PAIRS_SIZE
  if images.shape[1] != size:
    images = jax.image.resize(images, (len(images), size, size, 1), 'linear')
  rows = images[:, bundled.DIGIT_PAIRS_ROWS]
  return feature_classifier.read_pair(digits_features, params,
                                      rows[:, :, bundled.DIGIT_PAIRS_LEFT],
                                      rows[:, :, bundled.DIGIT_PAIRS_RIGHT])
