"""Latent diffusion's first stage: the KL-regularised autoencoder (Rombach et al. 2022).

`AutoencoderKL` is the network of CompVis/latent-diffusion (`ldm/models/autoencoder.py`,
whose Encoder and Decoder are in `ldm/modules/diffusionmodules/model.py`); diffusers'
`AutoencoderKL` (Stable Diffusion's VAE) is the same network under other names. Images
are NHWC in [-1, 1]; the encoder maps an image [B, H, W, in_channels] to a diagonal
Gaussian posterior over latents [B, H/f, W/f, embed_dim], f = 2^(len(ch_mult) - 1).

Numerics follow PyTorch's: GroupNorm(eps=1e-6) with a two-pass variance (Flax's fast
E[x^2] - E[x]^2 loses digits when a group's mean is large against its spread), 3x3
convolutions padded by 1 on every side, LDM's downsampling pad of 0 before and 1 after
each spatial axis, and PyTorch's default initialisation of every convolution
(kaiming_uniform(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in)), for kernels and biases alike).

LDM's adaptive GAN weight needs gradients of two losses with respect to the decoder's
last layer (`params['decoder']['conv_out']['kernel']`). `AutoencoderKL.decode_features`
returns the activations that this layer reads and `apply_conv_out` applies it with given
parameters, so the reconstruction is a function of that kernel without a second decoder
pass; in a generator loss:

  features = model.apply({'params': params}, z, method='decode_features')
  conv_out = params['decoder']['conv_out']
  reconstruction = lambda kernel: apply_conv_out({**conv_out, 'kernel': kernel}, features)
  x_rec = reconstruction(conv_out['kernel'])  # == model.decode(z), same graph
  nll_grad = jax.grad(lambda k: nll_loss(reconstruction(k)))(conv_out['kernel'])
  g_grad = jax.grad(lambda k: g_loss(reconstruction(k)))(conv_out['kernel'])

`convert_state_dict` turns a PyTorch checkpoint of either layout (diffusers or CompVis)
into the options and parameters of this module; `read_safetensors` reads one from disk.
"""

import functools
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from flax import traverse_util

# LDM clips the posterior's log-variance to this range (DiagonalGaussianDistribution).
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
# PyTorch's default Conv2d / Linear initialisation, kaiming_uniform(a=sqrt(5)): the bound
# sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in), which variance_scaling(1/3) reaches.
_TORCH_KERNEL_INIT = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')
_PAD_SAME_3x3 = ((1, 1), (1, 1))


def _torch_bias_init(fan_in: int) -> nn.initializers.Initializer:
  """PyTorch's default bias initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1 / np.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound,
                                                                   bound)


def _conv(features: int, in_features: int, kernel_size: int, *, stride: int = 1,
          padding: Any = 'VALID', name: str | None = None) -> nn.Conv:
  return nn.Conv(features, (kernel_size, kernel_size), strides=(stride, stride), padding=padding,
                 kernel_init=_TORCH_KERNEL_INIT,
                 bias_init=_torch_bias_init(in_features * kernel_size**2), name=name)


def _conv3x3(features: int, in_features: int, *, name: str | None = None) -> nn.Conv:
  return _conv(features, in_features, 3, padding=_PAD_SAME_3x3, name=name)


def _dense(features: int, in_features: int, *, name: str | None = None) -> nn.Dense:
  return nn.Dense(features, kernel_init=_TORCH_KERNEL_INIT,
                  bias_init=_torch_bias_init(in_features), name=name)


def _group_norm(groups: int, *, name: str | None = None) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=groups, epsilon=1e-6, use_fast_variance=False, name=name)


class DiagonalGaussian(NamedTuple):
  """The encoder's posterior q(z | x) = N(mean, diag(exp(logvar))), a pytree.

  Build it with `from_moments` to get LDM's clipping of logvar to [-30, 20].

  Attributes:
    mean: [B, h, w, c].
    logvar: [B, h, w, c], the log-variance.
  """

  mean: jax.Array
  logvar: jax.Array

  @classmethod
  def from_moments(cls, moments: jax.Array) -> 'DiagonalGaussian':
    """Splits moments [B, h, w, 2c] into mean (first c channels) and logvar, clipped."""
    mean, logvar = jnp.split(moments, 2, axis=-1)
    return cls(mean, jnp.clip(logvar, LOGVAR_MIN, LOGVAR_MAX))

  @property
  def std(self) -> jax.Array:
    return jnp.exp(0.5 * self.logvar)

  @property
  def var(self) -> jax.Array:
    return jnp.exp(self.logvar)

  def sample(self, rng: jax.Array) -> jax.Array:
    """A draw z ~ q, [B, h, w, c]."""
    return self.mean + self.std * jax.random.normal(rng, self.mean.shape, self.mean.dtype)

  def mode(self) -> jax.Array:
    return self.mean

  def kl(self) -> jax.Array:
    """KL(q || N(0, I)) [B], summed over every latent dimension of an example (LDM's)."""
    terms = self.mean**2 + self.var - 1.0 - self.logvar
    return 0.5 * jnp.sum(terms, axis=tuple(range(1, terms.ndim)))

  def nll(self, x: jax.Array) -> jax.Array:
    """-log q(x) [B] of x [B, h, w, c], summed over every dimension of an example."""
    terms = np.log(2 * np.pi) + self.logvar + (x - self.mean)**2 / self.var
    return 0.5 * jnp.sum(terms, axis=tuple(range(1, terms.ndim)))


class ResnetBlock(nn.Module):
  """LDM's residual block without a time input: norm1, swish, conv1, norm2, swish, dropout,
  conv2, plus the input (through a 1x1 `nin_shortcut` when the width changes).

  Attributes:
    features: output channels.
    dropout: dropout rate before conv2.
    norm_groups: GroupNorm groups.
  """

  features: int
  dropout: float = 0.0
  norm_groups: int = 32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    c = x.shape[-1]
    h = _conv3x3(self.features, c, name='conv1')(nn.swish(_group_norm(self.norm_groups,
                                                                     name='norm1')(x)))
    h = nn.swish(_group_norm(self.norm_groups, name='norm2')(h))
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    h = _conv3x3(self.features, self.features, name='conv2')(h)
    if c != self.features:
      x = _conv(self.features, c, 1, name='nin_shortcut')(x)
    return x + h


class AttnBlock(nn.Module):
  """LDM's single-head self-attention over all pixels, with 1x1 q, k, v and proj_out (per-pixel
  linear maps, stored as Dense kernels) and a residual sum.

  Attributes:
    norm_groups: GroupNorm groups.
  """

  norm_groups: int = 32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, height, width, c = x.shape
    h = _group_norm(self.norm_groups, name='norm')(x).reshape(b, height * width, c)
    q, k, v = (_dense(c, c, name=name)(h) for name in ('q', 'k', 'v'))  # [B, N, C] each
    weights = jax.nn.softmax(jnp.einsum('bnc,bmc->bnm', q, k) * c**-0.5, axis=-1)
    h = _dense(c, c, name='proj_out')(jnp.einsum('bnm,bmc->bnc', weights, v))
    return x + h.reshape(x.shape)


class Downsample(nn.Module):
  """Halves the size: LDM's pad of (0, 1) on each spatial axis and a 3x3 stride-2 conv, or a
  2x2 average pool without a conv."""

  with_conv: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.with_conv:
      c = x.shape[-1]
      return _conv(c, c, 3, stride=2, padding=((0, 1), (0, 1)), name='conv')(x)
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class Upsample(nn.Module):
  """Doubles the size: nearest neighbours, then a 3x3 conv if with_conv."""

  with_conv: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return _conv3x3(x.shape[-1], x.shape[-1], name='conv')(x) if self.with_conv else x


class Encoder(nn.Module):
  """LDM's Encoder with double_z: an image [B, H, W, C] -> moments [B, H/f, W/f, 2 z_channels].

  Layer names are LDM's with '_' for '.': down_{level}_block_{i}, down_{level}_attn_{i},
  down_{level}_downsample, mid_block_1, mid_attn_1, mid_block_2, norm_out, conv_out.
  Attributes are AutoencoderKL's; attn_levels lists the levels (0: full size) with attention.
  """

  ch: int
  ch_mult: Sequence[int]
  num_res_blocks: int
  attn_levels: Sequence[int]
  mid_attention: bool
  z_channels: int
  dropout: float
  resamp_with_conv: bool
  norm_groups: int

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    groups = self.norm_groups
    h = _conv3x3(self.ch, x.shape[-1], name='conv_in')(x)
    for level, mult in enumerate(self.ch_mult):
      for i in range(self.num_res_blocks):
        h = ResnetBlock(self.ch * mult, self.dropout, groups, name=f'down_{level}_block_{i}')(
            h, train=train)
        if level in self.attn_levels:
          h = AttnBlock(groups, name=f'down_{level}_attn_{i}')(h)
      if level != len(self.ch_mult) - 1:
        h = Downsample(self.resamp_with_conv, name=f'down_{level}_downsample')(h)
    h = _middle(h, self, train)
    h = nn.swish(_group_norm(groups, name='norm_out')(h))
    return _conv3x3(2 * self.z_channels, h.shape[-1], name='conv_out')(h)


class Decoder(nn.Module):
  """LDM's Decoder (tanh_out off): a latent [B, h, w, z_channels] -> an image [B, f h, f w, C].

  Layer names as the Encoder's, with up_{level}_... for the upsampling path, whose levels
  are numbered as LDM's `decoder.up` (0: full size; the path runs from the last to 0) and
  hold num_res_blocks + 1 residual blocks each.
  """

  ch: int
  ch_mult: Sequence[int]
  num_res_blocks: int
  attn_levels: Sequence[int]
  mid_attention: bool
  out_channels: int
  dropout: float
  resamp_with_conv: bool
  norm_groups: int

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False,
               features_only: bool = False) -> jax.Array:
    """The image, or with features_only the activations that conv_out reads (which then is
    not called: initialise through the image)."""
    groups = self.norm_groups
    h = _conv3x3(self.ch * self.ch_mult[-1], z.shape[-1], name='conv_in')(z)
    h = _middle(h, self, train)
    for level in reversed(range(len(self.ch_mult))):
      for i in range(self.num_res_blocks + 1):
        h = ResnetBlock(self.ch * self.ch_mult[level], self.dropout, groups,
                        name=f'up_{level}_block_{i}')(h, train=train)
        if level in self.attn_levels:
          h = AttnBlock(groups, name=f'up_{level}_attn_{i}')(h)
      if level != 0:
        h = Upsample(self.resamp_with_conv, name=f'up_{level}_upsample')(h)
    h = nn.swish(_group_norm(groups, name='norm_out')(h))
    if features_only:
      return h
    return _conv3x3(self.out_channels, h.shape[-1], name='conv_out')(h)


def _middle(h: jax.Array, coder: Encoder | Decoder, train: bool) -> jax.Array:
  """The middle blocks of an encoder or decoder (called from its compact method)."""
  groups = coder.norm_groups
  h = ResnetBlock(h.shape[-1], coder.dropout, groups, name='mid_block_1')(h, train=train)
  if coder.mid_attention:
    h = AttnBlock(groups, name='mid_attn_1')(h)
  return ResnetBlock(h.shape[-1], coder.dropout, groups, name='mid_block_2')(h, train=train)


def apply_conv_out(conv_out_params: Mapping[str, jax.Array], features: jax.Array) -> jax.Array:
  """The decoder's last layer with the given parameters: the image from the features.

  Args:
    conv_out_params: {'kernel': [3, 3, C, out_channels], 'bias': [out_channels]}, as in
      params['decoder']['conv_out'].
    features: [B, H, W, C] from `AutoencoderKL.decode_features`.

  Returns:
    [B, H, W, out_channels], what `AutoencoderKL.decode` returns for these parameters.
  """
  _, _, c, out_channels = conv_out_params['kernel'].shape
  return _conv3x3(out_channels, c).apply({'params': conv_out_params}, features)


class AutoencoderKL(nn.Module):
  """LDM's KL autoencoder; the defaults are kl-f8, Stable Diffusion's VAE.

  Initialise through __call__ (`model.init(key, x, sample_posterior=False)`), then use
  encode, decode and decode_features as methods of `apply`. Any H, W divisible by f work;
  which levels attend is set by `resolution` and `attn_resolutions`, not by the input's
  size, so one parameter tree serves every size (as in LDM).

  Attributes:
    in_channels: image channels read by the encoder.
    out_channels: image channels written by the decoder.
    ch: base width.
    ch_mult: width of each level over ch; f = 2^(len(ch_mult) - 1).
    num_res_blocks: residual blocks per level in the encoder (the decoder has one more).
    resolution: the image size (height) attn_resolutions refers to (LDM's `resolution`).
    attn_resolutions: sizes, among resolution / 2^level, of the levels with self-attention
      after every residual block, in the encoder and the decoder.
    mid_attention: self-attention between the two middle residual blocks.
    z_channels: the encoder's latent channels (before quant_conv).
    embed_dim: channels of the latent z that the posterior is over.
    use_quant_conv: 1x1 convs quant_conv (2 z_channels -> 2 embed_dim) after the encoder
      and post_quant_conv (embed_dim -> z_channels) before the decoder; without them
      (diffusers' use_quant_conv=False VAEs) embed_dim must equal z_channels.
    dropout: dropout rate in the residual blocks (with train=True and a 'dropout' rng).
    resamp_with_conv: resample with learned convs, otherwise average pooling / nearest.
    norm_groups: GroupNorm groups (32 in LDM and diffusers); they divide every width.
  """

  in_channels: int = 3
  out_channels: int = 3
  ch: int = 128
  ch_mult: Sequence[int] = (1, 2, 4, 4)
  num_res_blocks: int = 2
  resolution: int = 256
  attn_resolutions: Sequence[int] = ()
  mid_attention: bool = True
  z_channels: int = 4
  embed_dim: int = 4
  use_quant_conv: bool = True
  dropout: float = 0.0
  resamp_with_conv: bool = True
  norm_groups: int = 32

  @property
  def downsampling_factor(self) -> int:
    """f: the latent is f times smaller than the image along each spatial axis."""
    return 2**(len(self.ch_mult) - 1)

  def attn_levels(self) -> tuple[int, ...]:
    """The levels (0: full size) whose sizes are in attn_resolutions; ValueError for a
    size that is no level's."""
    sizes = [self.resolution // 2**level for level in range(len(self.ch_mult))]
    unused = sorted(set(self.attn_resolutions) - set(sizes))
    if unused:
      raise ValueError(f'attn_resolutions {unused} are not among the levels\' sizes {sizes} '
                       f'(resolution {self.resolution})')
    return tuple(level for level, size in enumerate(sizes) if size in self.attn_resolutions)

  def setup(self):
    if not self.use_quant_conv and self.embed_dim != self.z_channels:
      raise ValueError(f'use_quant_conv=False needs embed_dim ({self.embed_dim}) == z_channels '
                       f'({self.z_channels})')
    shared = dict(ch=self.ch, ch_mult=tuple(self.ch_mult), num_res_blocks=self.num_res_blocks,
                  attn_levels=self.attn_levels(), mid_attention=self.mid_attention,
                  dropout=self.dropout, resamp_with_conv=self.resamp_with_conv,
                  norm_groups=self.norm_groups)
    self.encoder = Encoder(z_channels=self.z_channels, **shared)
    self.decoder = Decoder(out_channels=self.out_channels, **shared)
    if self.use_quant_conv:
      self.quant_conv = _conv(2 * self.embed_dim, 2 * self.z_channels, 1)
      self.post_quant_conv = _conv(self.z_channels, self.embed_dim, 1)

  def encode(self, x: jax.Array, *, train: bool = False) -> DiagonalGaussian:
    """The posterior q(z | x) of images x [B, H, W, in_channels] in [-1, 1]."""
    f = self.downsampling_factor
    if x.ndim != 4 or x.shape[1] % f or x.shape[2] % f:
      raise ValueError(f'images must be [B, H, W, C] with H and W divisible by {f}; got '
                       f'{x.shape}')
    moments = self.encoder(x, train=train)
    if self.use_quant_conv:
      moments = self.quant_conv(moments)
    return DiagonalGaussian.from_moments(moments)

  def decode_features(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    """The decoder's activations before its last layer, [B, f h, f w, ch * ch_mult[0]];
    `apply_conv_out(params['decoder']['conv_out'], features)` is decode(z)."""
    if self.use_quant_conv:
      z = self.post_quant_conv(z)
    return self.decoder(z, train=train, features_only=True)

  def decode(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    """Images [B, f h, f w, out_channels] from latents z [B, h, w, embed_dim]."""
    if self.use_quant_conv:
      z = self.post_quant_conv(z)
    return self.decoder(z, train=train)

  def __call__(self, x: jax.Array, rng: jax.Array | None = None, *,
               sample_posterior: bool = True,
               train: bool = False) -> tuple[jax.Array, DiagonalGaussian]:
    """Reconstructs x [B, H, W, in_channels] through a latent.

    Args:
      x: images in [-1, 1].
      rng: key of the posterior sample; unused with sample_posterior=False.
      sample_posterior: decode a sample of the posterior, otherwise its mean.
      train: dropout on (apply then needs rngs={'dropout': ...}).

    Returns:
      (reconstruction [B, H, W, out_channels], posterior).
    """
    posterior = self.encode(x, train=train)
    if sample_posterior:
      if rng is None:
        raise ValueError('sample_posterior=True needs an rng')
      z = posterior.sample(rng)
    else:
      z = posterior.mode()
    return self.decode(z, train=train), posterior


# --- PyTorch checkpoints ---------------------------------------------------------------------

# Flax names of this module -> the same layers' names in diffusers; CompVis/LDM names are
# this module's with '.' for '_' (see _torch_key).
_DIFFUSERS_NAMES = {'norm_out': 'conv_norm_out', 'nin_shortcut': 'conv_shortcut',
                    'mid_block_1': 'mid_block.resnets.0', 'mid_block_2': 'mid_block.resnets.1',
                    'mid_attn_1': 'mid_block.attentions.0', 'norm': 'group_norm',
                    'q': 'to_q', 'k': 'to_k', 'v': 'to_v', 'proj_out': 'to_out.0'}
# Older diffusers checkpoints name the attention layers so (diffusers renames them on load).
_OLD_DIFFUSERS_ATTENTION = {'q': 'query', 'k': 'key', 'v': 'value', 'proj_out': 'proj_attn'}
_LAYER = re.compile(r'(down|up)_(\d+)_(block|attn)_(\d+)$')
_RESAMPLE = re.compile(r'(down|up)_(\d+)_(downsample|upsample)$')
_LEAVES = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias'}
_AUTOENCODER_KEYS = ('encoder.', 'decoder.', 'quant_conv.', 'post_quant_conv.')


def _torch_key(path: Sequence[str], layout: str, *, num_levels: int = 0,
               old_attention: bool = False) -> str:
  """The PyTorch state-dict key of a Flax parameter path, in a layout ('diffusers' or
  'compvis'); num_levels is needed for the diffusers decoder's reversed up_blocks."""
  *modules, leaf = path
  names = []
  for name in modules:
    layer, resample = _LAYER.match(name), _RESAMPLE.match(name)
    if layout == 'compvis':
      if layer:
        name = '.'.join(layer.groups())
      elif resample:
        name = '.'.join(resample.groups())
      elif name.startswith('mid_'):
        name = 'mid.' + name[len('mid_'):]
    else:
      if layer or resample:
        direction, level = (layer or resample).group(1, 2)
        index = int(level) if direction == 'down' else num_levels - 1 - int(level)
        name = (f'{direction}_blocks.{index}.' +
                (f'{"resnets" if layer[3] == "block" else "attentions"}.{layer[4]}' if layer
                 else f'{resample[3]}rs.0'))
      elif old_attention and name in _OLD_DIFFUSERS_ATTENTION:
        name = _OLD_DIFFUSERS_ATTENTION[name]
      else:
        name = _DIFFUSERS_NAMES.get(name, name)
    names.append(name)
  return '.'.join(names + [_LEAVES[leaf]])


def _infer_options(tensors: Mapping[str, np.ndarray], key, *, norm_groups: int,
                   resolution: int) -> dict[str, Any]:
  """AutoencoderKL's options from a state dict's shapes; key(path) is a Flax path's key."""
  has = lambda *path: key(path) in tensors
  shape = lambda *path: tensors[key(path)].shape
  num_levels = 0
  while has('encoder', f'down_{num_levels}_block_0', 'conv1', 'kernel'):
    num_levels += 1
  num_res_blocks = 0
  while has('encoder', f'down_0_block_{num_res_blocks}', 'conv1', 'kernel'):
    num_res_blocks += 1
  for path in [('encoder', 'conv_in', 'kernel'), ('encoder', 'conv_out', 'kernel'),
               ('decoder', 'conv_out', 'kernel')]:
    if not has(*path):
      raise ValueError(f'missing key {key(path)!r}')
    if len(shape(*path)) != 4:
      raise ValueError(f'{key(path)!r} has shape {shape(*path)}; expected a conv weight')
  ch, in_channels = shape('encoder', 'conv_in', 'kernel')[:2]
  ch_mult = []
  for level in range(num_levels):
    width = shape('encoder', f'down_{level}_block_0', 'conv1', 'kernel')[0]
    if width % ch:
      raise ValueError(f'{key(("encoder", f"down_{level}_block_0", "conv1", "kernel"))!r} has '
                       f'{width} output channels, not a multiple of ch = {ch}')
    ch_mult.append(width // ch)
  moments = shape('encoder', 'conv_out', 'kernel')[0]
  if moments % 2:
    raise ValueError(f'{key(("encoder", "conv_out", "kernel"))!r} has {moments} output '
                     'channels; expected 2 * z_channels (mean and log-variance)')
  use_quant_conv = has('quant_conv', 'kernel') or has('post_quant_conv', 'kernel')
  if use_quant_conv and not has('post_quant_conv', 'kernel'):
    raise ValueError(f'missing key {key(("post_quant_conv", "kernel"))!r}')
  if use_quant_conv and len(shape('post_quant_conv', 'kernel')) != 4:
    raise ValueError(f'{key(("post_quant_conv", "kernel"))!r} has shape '
                     f'{shape("post_quant_conv", "kernel")}; expected a 1x1 conv weight')
  attn_levels = [level for level in range(num_levels)
                 if has('encoder', f'down_{level}_attn_0', 'norm', 'scale')]
  return dict(
      in_channels=int(in_channels), out_channels=int(shape('decoder', 'conv_out', 'kernel')[0]),
      ch=int(ch), ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks,
      resolution=resolution, attn_resolutions=tuple(resolution // 2**l for l in attn_levels),
      mid_attention=has('encoder', 'mid_attn_1', 'norm', 'scale'),
      z_channels=moments // 2,
      embed_dim=int(shape('post_quant_conv', 'kernel')[1]) if use_quant_conv else moments // 2,
      use_quant_conv=use_quant_conv,
      resamp_with_conv=num_levels == 1 or has('encoder', 'down_0_downsample', 'conv', 'kernel'),
      norm_groups=norm_groups)


def _to_flax(array: np.ndarray, flax_shape: tuple[int, ...], key: str) -> np.ndarray:
  """A PyTorch weight in Flax's layout: conv OIHW -> HWIO, Linear or 1x1 conv -> [in, out]."""
  if len(flax_shape) == 4:
    expected = [(flax_shape[3], flax_shape[2], flax_shape[0], flax_shape[1])]
    convert = lambda a: a.transpose(2, 3, 1, 0)
  elif len(flax_shape) == 2:
    expected = [flax_shape[::-1], flax_shape[::-1] + (1, 1)]
    convert = lambda a: a.reshape(a.shape[:2]).T
  else:
    expected, convert = [flax_shape], lambda a: a
  if array.shape not in expected:
    raise ValueError(f'{key!r} has shape {array.shape}; expected '
                     f'{" or ".join(map(str, expected))}')
  if not np.issubdtype(array.dtype, np.floating):
    raise ValueError(f'{key!r} has dtype {array.dtype}; expected floating point')
  return np.ascontiguousarray(convert(array), dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _parameter_shapes(options: tuple[tuple[str, Any], ...]) -> dict[tuple[str, ...],
                                                                     tuple[int, ...]]:
  """Flax path -> shape of AutoencoderKL(**dict(options))'s parameters, traced once (about a
  second for kl-f8) per architecture."""
  model = AutoencoderKL(**dict(options))
  f = model.downsampling_factor
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, f, f, model.in_channels)), sample_posterior=False))
  return {path: tuple(leaf.shape)
          for path, leaf in traverse_util.flatten_dict(shapes['params']).items()}


def convert_state_dict(tensors: Mapping[str, np.ndarray], *, norm_groups: int = 32,
                       resolution: int = 256,
                       prefix: str = '') -> tuple[dict[str, Any], dict[str, Any]]:
  """AutoencoderKL's options and parameters from a PyTorch AutoencoderKL state dict.

  Reads either layout, detected from the keys: diffusers' (`encoder.down_blocks.0.resnets.0.
  conv1.weight`, attention as Linear `to_q` or the older `query`, `decoder.up_blocks` from
  the smallest level up) or CompVis/LDM's (`encoder.down.0.block.0.conv1.weight`,
  attention as 1x1 convs `q`, `decoder.up` indexed by level, 0 the largest). Every option
  but these keywords' is read from the shapes. Keys outside the autoencoder (an LDM
  checkpoint's `loss.*`, other models' weights) are ignored; its own keys must all be used.

  Args:
    tensors: key -> array, e.g. from `read_safetensors`.
    norm_groups: GroupNorm groups (shapes do not tell them; 32 in every published VAE).
    resolution: the training image size that attn_resolutions is read against (256 for
      LDM's first stages); matters only when levels other than the middle attend.
    prefix: prefix of the autoencoder's keys, e.g. 'first_stage_model.' in a whole LDM or
      Stable Diffusion checkpoint.

  Returns:
    (options, params): `AutoencoderKL(**options)` and its 'params' collection, float32
    numpy arrays.

  Raises:
    ValueError: not an autoencoder's state dict, or one of its keys missing, unexpected or
      of the wrong shape (the message names it).
  """
  layouts = {'compvis': 'encoder.down.0.block.0.conv1.weight',
             'diffusers': 'encoder.down_blocks.0.resnets.0.conv1.weight'}
  found = [layout for layout, probe in layouts.items() if prefix + probe in tensors]
  if len(found) != 1:
    raise ValueError(f'not an AutoencoderKL state dict: expected exactly one of the keys '
                     f'{sorted(prefix + probe for probe in layouts.values())}')
  layout = found[0]
  old_attention = layout == 'diffusers' and any(k.startswith(prefix) and
                                                k.endswith('.query.weight') for k in tensors)
  key = lambda path, num_levels=0: prefix + _torch_key(
      path, layout, num_levels=num_levels, old_attention=old_attention)
  options = _infer_options(tensors, key, norm_groups=norm_groups, resolution=resolution)
  flat, used = {}, set()
  for path, shape in _parameter_shapes(tuple(sorted(options.items()))).items():
    name = key(path, len(options['ch_mult']))
    if name not in tensors:
      raise ValueError(f'missing key {name!r}')
    flat[path] = _to_flax(np.asarray(tensors[name]), shape, name)
    used.add(name)
  unexpected = sorted(k for k in tensors if k.startswith(prefix) and k not in used
                      and k[len(prefix):].startswith(_AUTOENCODER_KEYS))
  if unexpected:
    raise ValueError(f'unexpected key {unexpected[0]!r} (and {len(unexpected) - 1} more) for '
                     f'the architecture read from the shapes, {options}')
  return options, traverse_util.unflatten_dict(flat)


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The tensors of a .safetensors file as numpy arrays (no torch, no pickle).

  Raises:
    ValueError: the file is missing, is not a safetensors file, or holds bfloat16 (or other)
      tensors that numpy cannot represent: convert them to float32 first.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f'{path}: no such file')
  unreadable = (safetensors.SafetensorError, TypeError, OSError)
  try:
    with safetensors.safe_open(path, framework='np') as f:
      bf16 = sorted(name for name in f.keys() if f.get_slice(name).get_dtype() == 'BF16')
  except unreadable as e:
    raise ValueError(f'{path}: not a readable safetensors file ({e})') from e
  if bf16:
    raise ValueError(f'{path}: {len(bf16)} bfloat16 tensors (e.g. {bf16[0]!r}), which numpy '
                     'cannot hold; convert them to float32 first')
  try:
    return safetensors.numpy.load_file(path)
  except unreadable as e:
    raise ValueError(f'{path}: not a readable safetensors file ({e})') from e
