"""The super-resolution task: the upsampling stage of a cascade (Ho et al. 2021; GLIDE)."""

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from sde_lib import conditioning
from tasks.diffusion import Diffusion


@dataclasses.dataclass(frozen=True, eq=False)
class SuperResolution(Diffusion):
  """A score network of high-resolution images given a low-resolution one of size
  `low_size`, upsampled (bilinear) and concatenated to its input: everything of
  `Diffusion` (labels, captions, their dropout) and this condition.

  Noise-conditioning augmentation: the low-resolution image is diffused by the same SDE
  to a level s, drawn uniformly in [0, aug_max T] for each training (and test-loss)
  example and fixed to `aug_level` T when sampling, and the network sees s through its
  own embedding (`aug_cond`), so that at sampling time it does not trust details that a
  base model's samples lack. A noisy input is learnt slowly: short runs read it only with
  light augmentation (aug_max around 0.05 on the digits; configs/cascade/digits_sr.py
  gives the measurements).

  The low-resolution image of a training image is `conditioning.downsample`, the input
  pipeline's resize: the distribution a base model of that size is trained on.

  Attributes:
    low_size: (height, width) of the low-resolution images.
    aug_level: s / T when sampling, in [0, 1].
    aug_max: the largest s / T of training, in [0, 1].
  """

  low_size: tuple[int, int] = (0, 0)
  aug_level: float = 0.0
  aug_max: float = 1.0

  name: ClassVar[str] = 'super_resolution'

  def __post_init__(self):
    super().__post_init__()
    if len(self.low_size) != 2 or min(self.low_size) < 1:
      raise ValueError(f'a super-resolution task needs a low_size (height, width) of at '
                       f'least 1 pixel, got {self.low_size}')
    for name in ('aug_level', 'aug_max'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'{name} must be in [0, 1] (a fraction of T), got '
                         f'{getattr(self, name)}')

  def init(self, rng: jax.Array, image_shape: tuple[int, ...]) -> dict[str, Any]:
    low = jnp.zeros((1,) + self.input_shape(image_shape))
    batch = {'low': low, 'aug_level': jnp.zeros((1,))}
    return self._init(rng, image_shape, self.image_inputs(batch, tuple(image_shape[:2])))

  def input_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    """[h, w, C]: the low-resolution image each sample is drawn given."""
    return tuple(self.low_size) + tuple(image_shape[2:])

  def input_of(self, images: jax.Array) -> jax.Array:
    """The low-resolution images [B, h, w, C] of model-space images [B, H, W, C], as a
    training image's: what the snapshots of a training run upsample."""
    return conditioning.downsample(images, self.low_size)

  def image_inputs(self, batch: dict,
                   size: tuple[int, int] | None = None) -> dict[str, jax.Array]:
    """cond: the (augmented) low-resolution image `low` upsampled to the network's size
    (H, W) (by default the batch's images'), and aug_cond: the time input of its level."""
    size = batch['image'].shape[1:3] if size is None else size
    return {'cond': conditioning.upsample(batch['low'], size),
            'aug_cond': self.parameterization.time_condition(self.sde, batch['aug_level'])}

  def augment(self, rng: jax.Array, low: jax.Array, s: jax.Array) -> dict[str, jax.Array]:
    """The condition of low-resolution images [B, h, w, C] diffused to times s [B]."""
    return {'low': conditioning.noise_augment(rng, self.sde, low, s), 'aug_level': s}

  def sampling_inputs(self, rng: jax.Array, low: jax.Array,
                      size: tuple[int, int]) -> dict[str, jax.Array]:
    """The network inputs of a sampling run of images of size (H, W) from low-resolution
    images [B, h, w, C] (a base model's samples): diffused to aug_level T once, for the
    whole run."""
    s = jnp.full(low.shape[:1], self.aug_level * self.sde.T, low.dtype)
    return self.image_inputs(self.augment(rng, low, s), size)

  def conditions(self, rng: jax.Array, batch: dict, *, train: bool) -> dict:
    batch = super().conditions(rng, batch, train=train)
    images = batch['image']
    s_rng, z_rng = jax.random.split(jax.random.fold_in(rng, 3))
    s = jax.random.uniform(s_rng, images.shape[:1], images.dtype, 0.0,
                           self.aug_max * self.sde.T)
    return {**batch, **self.augment(z_rng, self.input_of(images), s)}
