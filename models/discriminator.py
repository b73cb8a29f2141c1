"""The PatchGAN discriminator of Latent Diffusion's autoencoder loss.

`NLayerDiscriminator` is taming-transformers' (Esser et al. 2021), after pix2pix (Isola et
al. 2017), which Latent Diffusion's `LPIPSWithDiscriminator` trains with a hinge loss. It
maps images [B, H, W, C] to one logit per overlapping patch, [B, H', W', 1] (30 x 30 patches
of a 256 x 256 image with the default three stride-2 layers, each patch seeing 70 x 70
pixels).

Normalisation layers use the statistics of the batch they are given, always. Latent
Diffusion's training steps run its discriminator in training mode, so BatchNorm's running
averages never enter training (only the validation losses it logs, computed in Lightning's
eval mode, read them); they are left out here, and the network is a pure function of its
params: `NLayerDiscriminator().apply({'params': params}, x)`, or `discriminator_fn(model,
params)(x)`. As Latent Diffusion does, call it on the real and on the generated batch
separately: batch statistics couple the images of one call, so concatenating the two
batches would change the logits.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def _normal(mean: float, stddev: float) -> nn.initializers.Initializer:
  def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    return mean + stddev * jax.random.normal(key, shape, dtype)

  return init


def _torch_conv_bias(fan_in: int) -> nn.initializers.Initializer:
  # taming's weights_init leaves conv biases alone, so they keep PyTorch's default,
  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  bound = fan_in**-0.5

  def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


class BatchNorm(nn.Module):
  """BatchNorm that always normalises with the batch's statistics (biased variance, as
  PyTorch's BatchNorm2d in training mode); params `scale` ~ N(1, 0.02) and `bias` = 0, as
  taming's weights_init. No running averages: see the module docstring."""

  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    scale = self.param('scale', _normal(1.0, 0.02), (channels,))
    bias = self.param('bias', nn.initializers.zeros, (channels,))
    axes = tuple(range(x.ndim - 1))
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axis=axes)
    var = jnp.mean(jnp.square(x32 - mean), axis=axes)  # two-pass: no E[x^2] - E[x]^2 cancellation
    return ((x32 - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias).astype(x.dtype)


class ActNorm(nn.Module):
  """taming's ActNorm (Glow's activation normalisation): scale * (x + loc) per channel.

  Data-dependent initialisation: `loc` = -mean and `scale` = 1 / (std + 1e-6) of the batch
  given to `init` (std unbiased, as torch.std), so that batch comes out with zero mean and
  unit variance per channel. taming initialises from the first training batch instead;
  pass a training batch to `init` to get the same.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    axes = tuple(range(x.ndim - 1))
    loc = self.param('loc', lambda _: -jnp.mean(x, axis=axes))
    scale = self.param('scale', lambda _: 1 / (jnp.std(x, axis=axes, ddof=1) + 1e-6))
    return scale * (x + loc)


class NLayerDiscriminator(nn.Module):
  """PatchGAN: images [B, H, W, C] -> patch logits [B, H', W', 1].

  Conv(ndf, 4, stride 2) + LeakyReLU(0.2); then n_layers - 1 blocks of Conv(ndf *
  min(2^n, 8), 4, stride 2) + norm + LeakyReLU; one more with stride 1; and a stride-1
  Conv(1, 4). Every conv pads by 1 on each side, as PyTorch's padding=1, so each stride-2
  layer halves an even side and each stride-1 layer takes 1 from it. The convolutions
  before a norm have no bias with BatchNorm (which has its own) and one with ActNorm, as
  taming's. The input channels are inferred from x.

  Initialisation as taming's `weights_init`: conv kernels N(0, 0.02), BatchNorm scale
  N(1, 0.02) and bias 0; the two conv biases keep PyTorch's default (see
  `_torch_conv_bias`). 2,765,633 params for RGB with the defaults, taming's count.

  Attributes:
    ndf: channels of the first layer.
    n_layers: number of stride-2 convolutions.
    use_actnorm: ActNorm instead of BatchNorm (initialised from the batch given to `init`).
  """

  ndf: int = 64
  n_layers: int = 3
  use_actnorm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    norm = ActNorm if self.use_actnorm else BatchNorm

    def conv(h: jax.Array, features: int, stride: int, *, use_bias: bool, name: str) -> jax.Array:
      return nn.Conv(features, (4, 4), strides=(stride, stride), padding=((1, 1), (1, 1)),
                     use_bias=use_bias, kernel_init=nn.initializers.normal(0.02),
                     bias_init=_torch_conv_bias(h.shape[-1] * 16), name=name)(h)

    x = nn.leaky_relu(conv(x, self.ndf, 2, use_bias=True, name='conv_in'), 0.2)
    for n in range(1, self.n_layers + 1):
      stride = 2 if n < self.n_layers else 1
      x = conv(x, self.ndf * min(2**n, 8), stride, use_bias=self.use_actnorm, name=f'conv{n}')
      x = nn.leaky_relu(norm(name=f'norm{n}')(x), 0.2)
    return conv(x, 1, 1, use_bias=True, name='conv_out')


def discriminator_fn(model: NLayerDiscriminator,
                     params: Any) -> Callable[[jax.Array], jax.Array]:
  """The discriminator as a function x [B, H, W, C] -> logits [B, H', W', 1].

  It closes over params, so jax.grad through it works for both the generator's loss
  (gradient with respect to x) and the discriminator's (wrap it in a function of params).
  """
  return lambda x: model.apply({'params': params}, x)
