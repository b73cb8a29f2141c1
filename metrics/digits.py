"""The digits classifiers: features for FD, KID and IS of scikit-learn's 8x8 digits and of
the digit pairs, from a small CNN trained from scratch, deterministically and in seconds
(`train_digits_classifier`), so no weights are shipped."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from data import bundled
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
# lax.scan's while loop. It runs 1500 times: compiled at XLA's full optimisation whatever
# the process's default (a test session's -O0 ran it at a third of the speed).
@functools.partial(jax.jit, static_argnames='steps',
                   compiler_options={'xla_backend_optimization_level': '2'})
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
  left, left_logits = digits_features(params, rows[:, :, bundled.DIGIT_PAIRS_LEFT])
  right, right_logits = digits_features(params, rows[:, :, bundled.DIGIT_PAIRS_RIGHT])
  pairs = (jax.nn.log_softmax(left_logits)[:, :, None]
           + jax.nn.log_softmax(right_logits)[:, None, :])
  return jnp.concatenate([left, right], axis=-1), pairs.reshape(len(images), 100)
