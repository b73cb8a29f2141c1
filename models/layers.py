"""Layers of the DDPM, DDPM++ and NCSN++ networks (Ho et al. 2020; Song et al. 2021).

Initialisation follows the original implementations: variance scaling with
fan_avg and a uniform distribution, scaled by `init_scale` (0 stands for 1e-10,
so that a block's last layer starts as an almost-zero residual).
"""

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models import up_or_down_sampling as resampling

Activation = Callable[[jax.Array], jax.Array]


def default_init(scale: float = 1.0) -> nn.initializers.Initializer:
  """DDPM's initialiser: variance_scaling(scale, 'fan_avg', 'uniform'), scale 0 -> 1e-10."""
  return nn.initializers.variance_scaling(1e-10 if scale == 0 else scale, 'fan_avg', 'uniform')


def conv3x3(features: int, *, stride: int = 1, init_scale: float = 1.0, use_bias: bool = True,
            dilation: int = 1) -> nn.Conv:
  return nn.Conv(features, (3, 3), strides=(stride, stride), padding='SAME',
                 kernel_dilation=(dilation, dilation), use_bias=use_bias,
                 kernel_init=default_init(init_scale))


def conv1x1(features: int, *, init_scale: float = 1.0, use_bias: bool = True) -> nn.Conv:
  return nn.Conv(features, (1, 1), use_bias=use_bias, kernel_init=default_init(init_scale))


def group_norm(channels: int) -> nn.GroupNorm:
  """GroupNorm with min(channels // 4, 32) groups, as in the original code."""
  return nn.GroupNorm(num_groups=min(channels // 4, 32), epsilon=1e-6)


class NIN(nn.Module):
  """Network-in-network: a per-pixel linear map of the channels (a 1x1 conv)."""

  features: int
  init_scale: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return nn.Dense(self.features, kernel_init=default_init(self.init_scale))(x)


def sinusoidal_embedding(timesteps: jax.Array, dim: int, max_positions: int = 10_000) -> jax.Array:
  """Transformer-style embedding of (possibly fractional) timesteps [B] -> [B, dim]."""
  half = dim // 2
  frequencies = jnp.exp(-math.log(max_positions) / (half - 1) * jnp.arange(half))
  angles = timesteps.astype(jnp.float32)[:, None] * frequencies[None, :]
  embedding = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
  return jnp.pad(embedding, ((0, 0), (0, dim % 2)))


class GaussianFourierProjection(nn.Module):
  """Random Fourier features of log-sigma, [B] -> [B, 2 * embedding_size] (NCSN++).

  The frequencies W ~ N(0, scale^2) are a fixed parameter: created at init,
  never trained (the original stops their gradient too).
  """

  embedding_size: int = 256
  scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.param('W', nn.initializers.normal(stddev=self.scale), (self.embedding_size,))
    projection = x[:, None] * jax.lax.stop_gradient(w)[None, :] * 2 * np.pi
    return jnp.concatenate([jnp.sin(projection), jnp.cos(projection)], axis=-1)


def _residual(x: jax.Array, h: jax.Array, skip_rescale: bool) -> jax.Array:
  return (x + h) / np.sqrt(2.0) if skip_rescale else x + h


def attention(q: jax.Array, k: jax.Array, v: jax.Array,
              key_mask: jax.Array | None = None, heads: int = 1) -> jax.Array:
  """Dot-product attention; q [B, N, C], k and v [B, M, C], key_mask [B, M] bool.

  `heads` split the C channels into heads of C / heads channels, each with its own softmax
  (scaled by its own width), as ADM's QKVAttention; their outputs are concatenated back.
  Keys where key_mask is False get zero weight. A large negative logit rather than -inf
  masks them, so that a row whose keys are all masked gets uniform weights, not NaNs.
  """
  split = lambda a: a.reshape(a.shape[:2] + (heads, a.shape[-1] // heads))
  q, k, v = split(q), split(k), split(v)
  logits = jnp.einsum('bnhc,bmhc->bhnm', q, k) / np.sqrt(q.shape[-1])
  if key_mask is not None:
    logits = jnp.where(key_mask[:, None, None, :], logits, jnp.finfo(logits.dtype).min)
  weights = jax.nn.softmax(logits, axis=-1)
  out = jnp.einsum('bhnm,bmhc->bnhc', weights, v)
  return out.reshape(out.shape[:2] + (-1,))


def sinusoidal_position_2d(height: int, width: int, channels: int) -> np.ndarray:
  """Fixed 2-D position features [height * width, channels]: the first half of the channels
  are sinusoidal features of the row, the second of the column (the transformer's
  1-D embedding per axis, as MAE's and DiT's 2-D sin-cos embeddings)."""
  if channels % 4:
    raise ValueError(f'a 2-D sinusoidal position embedding needs channels divisible by 4, '
                     f'got {channels}')
  quarter = channels // 4
  frequencies = 1.0 / 10000 ** (np.arange(quarter) / quarter)

  def axis(n):
    angles = np.arange(n)[:, None] * frequencies[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # [n, channels / 2]

  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return np.concatenate([axis(height)[rows.ravel()], axis(width)[cols.ravel()]],
                        axis=1).astype(np.float32)


POSITIONS = ('none', 'sinusoidal', 'learned')


class AttnBlock(nn.Module):
  """Self-attention over all pixels; with a context, over the text tokens too.

  A context [B, L, D] (a text encoder's token features) is projected by the block's own
  1x1 layer 'encoder_kv' to L keys and L values of the block's width, which are
  concatenated to the pixels' keys and values: every pixel attends to all pixels and all
  real text tokens in one softmax. This is GLIDE's choice (Nichol et al. 2021, `QKVAttention`
  with `encoder_kv`), not a separate cross-attention layer; without a context the block
  and its parameters are the plain self-attention block's.

  Attention by itself does not know where a pixel is: "the digit on the left" can reach a
  pixel only through what the convolutions' zero padding left in its features. `position`
  adds a position embedding of the pixel to the input of the pixels' queries and keys (not
  to their values, as DETR), so that a pixel's query can ask for a word by where the pixel
  is and pixels can find each other by place.

  Attributes:
    skip_rescale: divide the residual sum by sqrt(2) (NCSN++/DDPM++).
    init_scale: initial scale of the output projection (0 for a near-identity block).
    head_channels: channels per attention head (ADM's num_head_channels); 0 is one head of
      every channel (Song et al.'s and DDPM's block).
    position: 'none', 'sinusoidal' (fixed 2-D sin-cos features, no parameters) or 'learned'
      (a [H * W, C] parameter 'position', initialised at std 0.02).
  """

  skip_rescale: bool = False
  init_scale: float = 0.0
  head_channels: int = 0
  position: str = 'none'

  @nn.compact
  def __call__(self, x: jax.Array, context: jax.Array | None = None,
               context_mask: jax.Array | None = None) -> jax.Array:
    """Maps x [B, H, W, C] to [B, H, W, C].

    Args:
      x: the feature map.
      context: [B, L, D] text tokens to attend to as well, or None.
      context_mask: [B, L] bool, True for real tokens; the others get no attention
        weight. None: every token is real.

    Returns:
      x plus the attention's output.
    """
    b, height, width, c = x.shape
    if self.head_channels < 0 or (self.head_channels and c % self.head_channels):
      raise ValueError(f'attention head_channels={self.head_channels} must divide the '
                       f'{c} channels of a {height}x{width} attention layer')
    if self.position not in POSITIONS:
      raise ValueError(f'unknown attention position {self.position!r}; known: '
                       f'{list(POSITIONS)}')
    h = group_norm(c)(x).reshape(b, height * width, c)
    where = h
    if self.position == 'sinusoidal':
      where = h + jnp.asarray(sinusoidal_position_2d(height, width, c), h.dtype)
    elif self.position == 'learned':
      where = h + self.param('position', nn.initializers.normal(0.02),
                             (height * width, c)).astype(h.dtype)
    q, k, v = NIN(c)(where), NIN(c)(where), NIN(c)(h)
    key_mask = None
    if context is not None:
      text_k, text_v = jnp.split(NIN(2 * c, name='encoder_kv')(context.astype(x.dtype)), 2,
                                 axis=-1)  # [B, L, C] each
      k = jnp.concatenate([k, text_k], axis=1)
      v = jnp.concatenate([v, text_v], axis=1)
      if context_mask is not None:
        key_mask = jnp.concatenate(
            [jnp.ones((b, height * width), bool), context_mask.astype(bool)], axis=1)
    elif context_mask is not None:
      raise ValueError('context_mask was given without a context')
    heads = c // self.head_channels if self.head_channels else 1
    h = NIN(c, init_scale=self.init_scale)(attention(q, k, v, key_mask, heads))
    return _residual(x, h.reshape(x.shape), self.skip_rescale)


class Combine(nn.Module):
  """Merges a progressive-path tensor x into h: a 1x1 conv of x, then 'cat' or 'sum'."""

  method: str = 'cat'

  @nn.compact
  def __call__(self, x: jax.Array, h: jax.Array) -> jax.Array:
    x = conv1x1(h.shape[-1])(x)
    if self.method == 'cat':
      return jnp.concatenate([x, h], axis=-1)
    if self.method == 'sum':
      return x + h
    raise ValueError(f"unknown combine method {self.method!r}; known: ['cat', 'sum']")


class Upsample(nn.Module):
  """2x upsampling: nearest (+ 3x3 conv) or FIR (fused with the 3x3 conv when with_conv)."""

  out_ch: int | None = None
  with_conv: bool = False
  fir: bool = False
  fir_kernel: Sequence[int] = (1, 3, 3, 1)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out_ch = self.out_ch or x.shape[-1]
    if not self.fir:
      h = resampling.naive_upsample_2d(x)
      return conv3x3(out_ch)(h) if self.with_conv else h
    if not self.with_conv:
      return resampling.upsample_2d(x, self.fir_kernel)
    return resampling.Conv2d(out_ch, 3, up=True, resample_kernel=self.fir_kernel,
                             kernel_init=default_init())(x)


class Downsample(nn.Module):
  """2x downsampling: stride-2 3x3 conv or average pooling, or FIR (+ fused conv)."""

  out_ch: int | None = None
  with_conv: bool = False
  fir: bool = False
  fir_kernel: Sequence[int] = (1, 3, 3, 1)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out_ch = self.out_ch or x.shape[-1]
    if not self.fir:
      # SAME padding of a stride-2 conv on even sizes pads (0, 1), as the original.
      return conv3x3(out_ch, stride=2)(x) if self.with_conv else resampling.naive_downsample_2d(x)
    if not self.with_conv:
      return resampling.downsample_2d(x, self.fir_kernel)
    return resampling.Conv2d(out_ch, 3, down=True, resample_kernel=self.fir_kernel,
                             kernel_init=default_init())(x)


def _condition(h: jax.Array, temb: jax.Array | None, act: Activation,
               scale_shift: bool) -> jax.Array:
  """A residual block's GroupNorm after its first convolution, conditioned on the embedding
  temb [B, E]: Song et al.'s h + Dense(temb) before the norm, or ADM's scale-shift norm
  GroupNorm(h) (1 + scale) + shift (Dhariwal & Nichol 2021; GLIDE's and the cascades'
  blocks), which lets the embedding gate features multiplicatively, e.g. mute a
  super-resolution input whose noise level it carries."""
  out_ch = h.shape[-1]
  if temb is None:
    return group_norm(out_ch)(h)
  if not scale_shift:
    h = h + nn.Dense(out_ch, kernel_init=default_init())(act(temb))[:, None, None, :]
    return group_norm(out_ch)(h)
  scale, shift = jnp.split(
      nn.Dense(2 * out_ch, kernel_init=default_init())(act(temb))[:, None, None, :], 2, axis=-1)
  return group_norm(out_ch)(h) * (1.0 + scale) + shift


class ResnetBlockDDPM(nn.Module):
  """DDPM's residual block (also DDPM++'s, with skip_rescale).

  GroupNorm -> act -> conv3x3 -> + Dense(temb) -> GroupNorm -> act -> dropout ->
  conv3x3 (init_scale), plus a NIN or 3x3-conv shortcut when channels change. With
  scale_shift the embedding scales and shifts the second GroupNorm's output instead
  (`_condition`).
  """

  act: Activation
  out_ch: int | None = None
  conv_shortcut: bool = False
  dropout: float = 0.1
  skip_rescale: bool = False
  init_scale: float = 0.0
  scale_shift: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array | None = None, train: bool = True):
    c = x.shape[-1]
    out_ch = self.out_ch or c
    h = conv3x3(out_ch)(self.act(group_norm(c)(x)))
    h = _condition(h, temb, self.act, self.scale_shift)
    h = nn.Dropout(self.dropout)(self.act(h), deterministic=not train)
    h = conv3x3(out_ch, init_scale=self.init_scale)(h)
    if c != out_ch:
      x = conv3x3(out_ch)(x) if self.conv_shortcut else NIN(out_ch)(x)
    return _residual(x, h, self.skip_rescale)


class ResnetBlockBigGAN(nn.Module):
  """BigGAN's residual block as in NCSN++: resampling inside the block, 1x1 shortcut; the
  embedding enters as in ResnetBlockDDPM."""

  act: Activation
  up: bool = False
  down: bool = False
  out_ch: int | None = None
  dropout: float = 0.1
  fir: bool = False
  fir_kernel: Sequence[int] = (1, 3, 3, 1)
  skip_rescale: bool = True
  init_scale: float = 0.0
  scale_shift: bool = False

  def _resample(self, x: jax.Array) -> jax.Array:
    if self.up:
      return (resampling.upsample_2d(x, self.fir_kernel) if self.fir
              else resampling.naive_upsample_2d(x))
    if self.down:
      return (resampling.downsample_2d(x, self.fir_kernel) if self.fir
              else resampling.naive_downsample_2d(x))
    return x

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array | None = None, train: bool = True):
    c = x.shape[-1]
    out_ch = self.out_ch or c
    h = self._resample(self.act(group_norm(c)(x)))
    x = self._resample(x)
    h = conv3x3(out_ch)(h)
    h = _condition(h, temb, self.act, self.scale_shift)
    h = nn.Dropout(self.dropout)(self.act(h), deterministic=not train)
    h = conv3x3(out_ch, init_scale=self.init_scale)(h)
    if c != out_ch or self.up or self.down:
      x = conv1x1(out_ch)(x)
    return _residual(x, h, self.skip_rescale)
