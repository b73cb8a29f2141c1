"""The latent-diffusion task (Rombach et al. 2022): a score model in a frozen autoencoder's
latent space."""

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from tasks.autoencoder import Autoencoder
from tasks.diffusion import Diffusion


@dataclasses.dataclass(frozen=True, eq=False)
class Latent(Diffusion):
  """A score network of latents z = scale * E(x) of images x: everything of `Diffusion`
  (labels, captions, their dropout) in the latent space of a frozen autoencoder.

  Each training batch is encoded on the device by the autoencoder (a sample of its
  posterior, as LDM's `get_first_stage_encoding`, or its mean) and scaled by `scale`, so
  that the latents have about unit variance, as the SDE's prior assumes (Stable Diffusion's
  0.18215 is such a number: 1 / std of its VAE's latents). Samples are drawn in the latent
  space and decoded, D(z / scale).

  Its parameter trees are the score network's ('score', and 'text' for a text encoder) and
  two frozen ones the job fills in: 'autoencoder', the first stage's weights (another job's
  or a converted PyTorch checkpoint's), and 'latent', {'scale': the scale}, estimated from
  the data when training starts or fixed; so a checkpoint holds all it samples with.

  Attributes:
    first_stage: the autoencoder's task, whose encode and decode this uses (its network
      and the data range).
    sample_posterior: encode to a sample of the posterior (LDM) rather than its mean.
  """

  first_stage: Autoencoder | None = None
  sample_posterior: bool = True

  name: ClassVar[str] = 'latent'
  frozen: ClassVar[tuple[str, ...]] = ('autoencoder', 'latent')
  metrics: ClassVar[tuple[str, ...]] = ('loss', 'fid', 'reconstruction')

  def __post_init__(self):
    super().__post_init__()
    if self.first_stage is None:
      raise ValueError('a latent diffusion task needs its first stage (an Autoencoder task)')

  def sample_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The latent shape [h, w, embed_dim] of images [H, W, C]."""
    f = self.first_stage.model.downsampling_factor
    height, width = image_shape[:2]
    if height % f or width % f:
      raise ValueError(f'the autoencoder downsamples by f = {f}, which does not divide the '
                       f'images\' {height}x{width}')
    return (height // f, width // f, self.first_stage.model.embed_dim)

  def init(self, rng: jax.Array, image_shape: tuple[int, ...]) -> dict[str, Any]:
    # The first stage's trees are stand-ins of the right shapes (the job replaces them).
    first_stage = self.first_stage.init(jax.random.fold_in(rng, 2), image_shape)
    return {**self._init(rng, self.sample_shape(image_shape), {}),
            'autoencoder': first_stage['autoencoder'],
            'latent': {'scale': jnp.ones((), jnp.float32)}}

  def unscaled_latents(self, params: dict, images: jax.Array, rng: jax.Array) -> jax.Array:
    """E(x) [B, h, w, c] of model-space images [B, H, W, C], before the scale."""
    return self.first_stage.encode(params, images, rng, sample=self.sample_posterior)

  def encode(self, params: dict, images: jax.Array, rng: jax.Array) -> jax.Array:
    """The latents z = scale E(x) the score network models, held out of differentiation."""
    latents = self.unscaled_latents(params, images, rng) * params['latent']['scale']
    return jax.lax.stop_gradient(latents)

  def reconstruct(self, params: dict, images: jax.Array) -> jax.Array:
    """The first stage's reconstructions of model-space images (its posterior mean)."""
    return self.first_stage.reconstruct(params, images)

  def to_images(self, params: dict, latents: jax.Array) -> jax.Array:
    """Model-space images D(z / scale) of latents [B, h, w, c]."""
    return self.first_stage.decode(params, latents / params['latent']['scale'])

  def loss(self, params: dict, batch: dict, rng: jax.Array, *, train: bool,
           weights: jax.Array | None = None, step: jax.Array | None = None) -> jax.Array:
    """The diffusion loss of the batch's images' latents."""
    latents = self.encode(params, batch['image'], jax.random.fold_in(rng, 4))
    return super().loss(params, {**batch, 'image': latents}, rng, train=train, weights=weights,
                        step=step)
