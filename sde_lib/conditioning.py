"""Conditioning transforms of a training batch.

Classifier-free guidance needs one network that is both conditional and unconditional:
during training each example's condition is replaced by the null condition with
probability `rate` (Ho & Salimans 2021 use 0.1-0.2; GLIDE drops 20% of captions).
A super-resolution model is conditioned on a low-resolution image (`downsample`,
`upsample`), diffused to a level s first (`noise_augment`).
"""

from typing import Any

import jax
import jax.numpy as jnp

from sde_lib.sde import SDE
from sde_lib.utils import batch_broadcast


def drop(rng: jax.Array, cond: Any, null: Any, *, rate: float) -> Any:
  """Each example's condition, or with probability `rate` the null one.

  Args:
    rng: a key; example i's draw is a function of `fold_in(rng, i)`, so the result does
      not depend on how the batch is sharded.
    cond: a pytree of [B, ...] leaves.
    null: the null condition: the same structure, leaves broadcastable to cond's (the
      null class as a scalar, an empty caption's tokens [L]).
    rate: the probability of dropping, in [0, 1].
  """
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f'a drop rate must be in [0, 1], got {rate!r}')
  batch = jax.tree.leaves(cond)[0].shape[0]
  keys = jax.vmap(lambda i: jax.random.fold_in(rng, i))(jnp.arange(batch))
  dropped = jax.vmap(lambda k: jax.random.bernoulli(k, rate))(keys)

  def choose(c, n):
    n = jnp.broadcast_to(jnp.asarray(n, c.dtype), c.shape[1:])
    return jnp.where(dropped.reshape((-1,) + (1,) * (c.ndim - 1)), n, c)

  return jax.tree.map(choose, cond, null)


def drop_labels(rng: jax.Array, labels: jax.Array, *, num_classes: int, rate: float) -> jax.Array:
  """Class labels [B] with a fraction `rate` replaced by the null class, `num_classes`
  (the extra row of the networks' class embedding)."""
  return drop(rng, labels, jnp.asarray(num_classes, labels.dtype), rate=rate)


def downsample(images: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Images [B, H, W, C] -> [B, h, w, C] (size: (h, w)) by antialiased bilinear
  interpolation: the input pipeline's resize (data.transforms.resize, to float rounding),
  so that a super-resolution model's low-resolution inputs are distributed as a base
  model's training images of that size. A linear map of the images."""
  return jax.image.resize(images, images.shape[:1] + tuple(size) + images.shape[3:], 'linear',
                          antialias=True)


def upsample(images: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Images [B, h, w, C] -> [B, H, W, C] (size: (H, W)), bilinear: the
  low-resolution image as channels of the high-resolution input (Ho et al.'s cascades;
  GLIDE's upsampler)."""
  return jax.image.resize(images, images.shape[:1] + tuple(size) + images.shape[3:], 'linear')


def noise_augment(rng: jax.Array, sde: SDE, low: jax.Array, s: jax.Array) -> jax.Array:
  """Noise-conditioning augmentation (Ho et al. 2021, Cascaded Diffusion Models): the
  low-resolution image diffused by the SDE to time s [B], alpha(s) low + std(s) z.

  A super-resolution model trained on it, and told s, does not rely on details of the
  real low-resolution images that a base model's samples lack; sampling fixes s.
  """
  z = jax.random.normal(rng, low.shape, low.dtype)
  return batch_broadcast(sde.alpha(s), low) * low + batch_broadcast(sde.std(s), low) * z
