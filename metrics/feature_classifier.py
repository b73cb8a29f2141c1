"""What the digits' and MNIST's metric networks (metrics.digits, metrics.mnist) share:
training a small feature classifier from scratch, bit-for-bit reproducibly, and reading
two digits side by side with it."""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from metrics.statistics import EvaluationError


def random_shifts(images: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
  """Shifts each image [H, W, C] by -max_shift..max_shift pixels along each axis (drawn
  uniformly), filling with 0."""
  n, height, width = images.shape[:3]
  m = max_shift
  padded = np.pad(images, ((0, 0), (m, m), (m, m), (0, 0)))  # [B, H + 2m, W + 2m, C]
  dy, dx = rng.integers(0, 2 * m + 1, size=(2, n))
  rows = (dy[:, None] + np.arange(height))[:, :, None]  # [B, H, 1]
  cols = (dx[:, None] + np.arange(width))[:, None, :]  # [B, 1, W]
  return padded[np.arange(n)[:, None, None], rows, cols]


def train(module: nn.Module, images: ArrayLike, labels: ArrayLike, *, seed: int, steps: int,
          batch_size: int, lr: float, max_shift: int) -> dict:
  """Trains `module` (images -> (features, logits)) as a classifier of `labels`.

  Recipe: Flax's default initialisation from `jax.random.key(seed)`; softmax
  cross-entropy; optax.adamw (weight decay 1e-4) with a cosine decay of the learning rate
  from `lr` to 0 over `steps` steps of `batch_size` images. A `np.random.default_rng(seed)`
  draws the batches, which walk through successive permutations of the data, then each
  image's random shift by up to `max_shift` pixels per axis (zero fill), the only
  augmentation. Training runs in float32 on the CPU backend, so the classifier, and hence
  every metric built on it, does not depend on the accelerator the job runs on.

  Args:
    module: the network, returning (features [B, D], logits [B, K]).
    images: [N, H, W, C] in [0, 1].
    labels: [N] integer classes.
    seed: seed of the initialisation, the batch order and the shifts.
    steps, batch_size, lr, max_shift: the optimisation, as above.

  Returns:
    The module's params.
  """
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels, np.int32)
  if images.ndim != 4 or labels.shape != images.shape[:1]:
    raise EvaluationError(f'need images [N, H, W, C] and labels [N], got {images.shape} and '
                          f'{labels.shape}')
  rng = np.random.default_rng(seed)
  epochs = -(-steps * batch_size // len(images))
  order = np.concatenate([rng.permutation(len(images)) for _ in range(epochs)])
  batches = order[:steps * batch_size].reshape(steps, batch_size)  # [steps, B] indices

  with jax.default_device(jax.local_devices(backend='cpu')[0]):
    params = _init(module, seed, images.shape[1:])
    optimizer = _optimizer(steps, lr)
    opt_state = optimizer.init(params)
    for batch in batches:
      params, opt_state = _train_step(params, opt_state, random_shifts(images[batch], rng,
                                                                       max_shift),
                                      labels[batch], module=module, steps=steps, lr=lr)
  return params


def read_pair(features_fn: Callable, params: dict, left: jax.Array,
              right: jax.Array) -> tuple[jax.Array, jax.Array]:
  """A classifier's reading of pairs of digits: the features of the left and the right
  digit side by side [N, 2D], and the log-probabilities of the 100 ordered pairs [N, 100],
  log p(left) + log p(right), label 10 * left + right.

  Args:
    features_fn: (params, images) -> (features [N, D], logits [N, 10]).
    params: its parameters.
    left, right: the two digits' images [N, h, w, C].
  """
  left_features, left_logits = features_fn(params, left)
  right_features, right_logits = features_fn(params, right)
  pairs = (jax.nn.log_softmax(left_logits)[:, :, None]
           + jax.nn.log_softmax(right_logits)[:, None, :])
  return (jnp.concatenate([left_features, right_features], axis=-1),
          pairs.reshape(len(left), 100))


def _optimizer(steps: int, lr: float) -> optax.GradientTransformation:
  return optax.adamw(optax.cosine_decay_schedule(lr, steps), weight_decay=1e-4)


@functools.partial(jax.jit, static_argnames=('module', 'shape'))
def _init(module: nn.Module, seed: int, shape: tuple[int, ...]) -> dict:
  return module.init(jax.random.key(seed), jnp.zeros((1,) + tuple(shape)))['params']


# A Python loop over a jitted step: XLA:CPU runs these convolutions ~10x slower inside
# lax.scan's while loop. It runs thousands of times: compiled at XLA's full optimisation
# whatever the process's default (a test session's -O0 ran it at a third of the speed).
@functools.partial(jax.jit, static_argnames=('module', 'steps', 'lr'),
                   compiler_options={'xla_backend_optimization_level': '2'})
def _train_step(params: dict, opt_state: optax.OptState, images: jax.Array, labels: jax.Array,
                *, module: nn.Module, steps: int, lr: float) -> tuple[dict, optax.OptState]:
  def loss_fn(params):
    _, logits = module.apply({'params': params}, images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  updates, opt_state = _optimizer(steps, lr).update(jax.grad(loss_fn)(params), opt_state,
                                                    params)
  return optax.apply_updates(params, updates), opt_state
