"""The MNIST classifier: features for FD, KID and IS of 28x28 MNIST digits, from a small
CNN trained from scratch on MNIST's training split, deterministically and in about a
minute on two CPU cores (`train_mnist_classifier`), so no weights are shipped."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from data import bundled
from metrics import feature_classifier
from metrics.inception import PRECISION
from metrics.statistics import EvaluationError

MNIST_SIZE = bundled.MNIST_SIZE
MNIST_STEPS = 1000
MNIST_BATCH_SIZE = 128


class MnistClassifier(nn.Module):
  """Images [B, 28, 28, 1] in [0, 1] -> (features [B, 128], logits [B, 10]); 426,122 params.

  Three 3x3 convolutions at 28, 14 and 7 pixels (16, 32, 64 channels, 2x2 max-pools
  between), then dense(128)-swish, the features. Swish, not ReLU, for the reason of the
  digits classifier: dead units make the features' covariance singular.
  """

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = nn.swish(nn.Conv(16, (3, 3), precision=PRECISION, name='conv1')(images))  # [B, 28, 28, 16]
    x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = nn.swish(nn.Conv(32, (3, 3), precision=PRECISION, name='conv2')(x))  # [B, 14, 14, 32]
    x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = nn.swish(nn.Conv(64, (3, 3), precision=PRECISION, name='conv3')(x))  # [B, 7, 7, 64]
    x = x.reshape(x.shape[0], -1)
    features = nn.swish(nn.Dense(128, precision=PRECISION, name='dense')(x))
    return features, nn.Dense(10, precision=PRECISION, name='logits')(features)


def train_mnist_classifier(images: ArrayLike, labels: ArrayLike, *, seed: int = 0,
                           steps: int = MNIST_STEPS,
                           batch_size: int = MNIST_BATCH_SIZE) -> dict:
  """Trains `MnistClassifier` from scratch, bit-for-bit reproducibly.

  Recipe (`feature_classifier.train`): softmax cross-entropy, adamw (weight decay 1e-4)
  with a cosine decay from 3e-3 over `steps` steps of `batch_size` images (by default
  1000 of 128: 2.1 epochs of the 60,000 training images), each image shifted by -2..2
  pixels per axis (zero fill). Test accuracy with the defaults and seed 0: see
  BENCHMARKS.md ("MNIST at 28x28").

  Args:
    images: [N, 28, 28, 1] in [0, 1].
    labels: [N] integer classes 0..9.
    seed: seed of the initialisation, the batch order and the shifts.
    steps: optimiser steps.
    batch_size: images per step.

  Returns:
    The classifier's params, for `mnist_features`.
  """
  images = np.asarray(images, np.float32)
  if images.shape[1:] != (MNIST_SIZE, MNIST_SIZE, 1):
    raise EvaluationError(f'need images [N, {MNIST_SIZE}, {MNIST_SIZE}, 1], got {images.shape}')
  return feature_classifier.train(MnistClassifier(), images, labels, seed=seed, steps=steps,
                                  batch_size=batch_size, lr=3e-3, max_shift=2)


def mnist_pair_features(params: dict, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Features [N, 256] and logits [N, 100] of MNIST pairs [N, 28, 56, 1] in [0, 1] (data.
  bundled's MNIST pairs; other sizes, a cascade's base, are resized to it): the MNIST
  classifier's features of the left and the right digit side by side, and the
  log-probabilities of the 100 ordered pairs (feature_classifier.read_pair)."""
  images = jnp.asarray(images, jnp.float32)
  height, width = bundled.MNIST_PAIRS_SHAPE
  if images.shape[1:3] != (height, width):
    images = jax.image.resize(images, (len(images), height, width, images.shape[3]), 'linear')
  return feature_classifier.read_pair(mnist_features, params, images[:, :, :width // 2],
                                      images[:, :, width // 2:])


@jax.jit
def mnist_features(params: dict, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Features [N, 128] and logits [N, 10] of images [N, H, W, 1] in [0, 1]; other sizes
  than 28x28 (a cascade's base) are resized bilinearly to it first."""
  images = jnp.asarray(images, jnp.float32)
  if images.shape[1:3] != (MNIST_SIZE, MNIST_SIZE):
    images = jax.image.resize(images, (len(images), MNIST_SIZE, MNIST_SIZE, images.shape[3]),
                              'linear')
  return MnistClassifier().apply({'params': params}, images)
