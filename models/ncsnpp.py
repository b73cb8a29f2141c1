"""NCSN++ and DDPM++ (Song et al. 2021), and the DDPM U-Net (Ho et al. 2020) as their special case.

One U-Net class covers all three: DDPM++ is NCSN++ without FIR resampling,
with positional time embeddings and without progressive paths; DDPM is
additionally built from DDPM residual blocks without skip rescaling. Every
option is a keyword argument.

Conditioning. `time_cond` [B] is what the embedding expects: sigma for
'fourier' (its log is embedded) or a (possibly fractional) timestep for
'positional'; `sde_lib.parameterization` supplies it. Optional inputs, each creating
its parameters only when used at init:
- `class_labels` [B] ints in [0, num_classes], num_classes being the null class
  used to drop the label for classifier-free guidance;
- `cond` [B, H, W, C'] channels concatenated to the input (low-resolution
  image, mask, ...);
- `context` [B, L, D] text token features (`models.TextEncoder`'s) and `context_mask`
  [B, L] bool (True on real tokens; None: all real): every attention block, down, middle
  and up, concatenates the tokens' keys and values, projected by its own 'encoder_kv'
  layer, to the pixels' (GLIDE, Nichol et al. 2021); masked tokens get no weight;
- `context_pooled` [B, D] the caption's pooled feature, projected by 'pooled_projection'
  to the embedding width and added to the time embedding (GLIDE);
- `aug_cond` [B] the time input (of the same kind as time_cond: for 'fourier' a sigma,
  positive) of a noise-conditioning augmentation level s (Ho et al. 2021, cascaded
  diffusion: a super-resolution network's low-resolution `cond` is diffused to level s),
  embedded as time_cond is but by its own layers ('aug_' + the time embedding's names) and
  added to the time embedding.
A network with conditional=False has no time embedding; class_labels, context_pooled and
aug_cond then form the embedding by themselves (the sum of those given).
"""

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from data import scaling
from models import layers
from models.layers import conv3x3, default_init, group_norm

ACTIVATIONS = {'swish': nn.swish, 'silu': nn.silu, 'relu': nn.relu, 'elu': nn.elu,
               'lrelu': functools.partial(nn.leaky_relu, negative_slope=0.2)}
PROGRESSIVE = ('none', 'output_skip', 'residual')
PROGRESSIVE_INPUT = ('none', 'input_skip', 'residual')


def check_choice(name: str, value: str, known: Sequence[str]) -> None:
  if value not in known:
    raise ValueError(f'unknown {name} {value!r}; known: {sorted(known)}')


class NCSNpp(nn.Module):
  """The NCSN++ / DDPM++ score network.

  Attributes:
    nf: base channel count.
    ch_mult: channel multiplier of each resolution.
    num_res_blocks: residual blocks per resolution on the way down (one more up).
    attn_resolutions: spatial sizes (feature-map heights, for images of any aspect ratio)
      at which self-attention is applied (and a context's tokens attended to).
    attn_head_channels: channels per attention head (ADM's num_head_channels: heads grow
      with the width); 0 is one head per block (Song et al.'s networks).
    attn_position: a position embedding of each pixel in the attention's queries and keys:
      'none', 'sinusoidal' or 'learned' (layers.AttnBlock).
    dropout: dropout rate inside residual blocks.
    resamp_with_conv: resample with a learned 3x3 convolution.
    conditional: condition on time (an MLP on the embedding feeds every block).
    fir: FIR ([1, 3, 3, 1]) resampling instead of nearest/average.
    fir_kernel: FIR taps.
    skip_rescale: divide residual sums by sqrt(2).
    resblock_type: 'ddpm' or 'biggan' (resampling inside residual blocks).
    progressive: output path: 'none', 'output_skip' or 'residual'.
    progressive_input: input path: 'none', 'input_skip' or 'residual'.
    progressive_combine: how the input path merges: 'sum' or 'cat'.
    embedding_type: 'fourier' (of log sigma) or 'positional' (of a timestep).
    fourier_scale: std of the Fourier frequencies.
    init_scale: init scale of every block's last layer (0 starts near zero).
    out_channels: channels of the output; 0 for the input's (a network with learned
      variances outputs twice those, sde_lib.parameterization).
    scale_shift_norm: the embedding scales and shifts each residual block's second
      GroupNorm (ADM's use_scale_shift_norm, as GLIDE and cascaded models) instead of being
      added before it (Song et al.).
    nonlinearity: one of ACTIVATIONS.
    centered: inputs already lie in [-1, 1]; otherwise [0, 1] is mapped there.
    num_classes: number of classes for label conditioning, or None.
  """

  nf: int = 128
  ch_mult: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 4
  attn_resolutions: Sequence[int] = (16,)
  attn_head_channels: int = 0
  attn_position: str = 'none'
  dropout: float = 0.1
  resamp_with_conv: bool = True
  conditional: bool = True
  fir: bool = True
  fir_kernel: Sequence[int] = (1, 3, 3, 1)
  skip_rescale: bool = True
  resblock_type: str = 'biggan'
  progressive: str = 'none'
  progressive_input: str = 'residual'
  progressive_combine: str = 'sum'
  embedding_type: str = 'fourier'
  fourier_scale: float = 16.0
  init_scale: float = 0.0
  out_channels: int = 0
  scale_shift_norm: bool = False
  nonlinearity: str = 'swish'
  centered: bool = True
  num_classes: int | None = None

  def _check(self) -> None:
    check_choice('progressive', self.progressive, PROGRESSIVE)
    check_choice('progressive_input', self.progressive_input, PROGRESSIVE_INPUT)
    check_choice('progressive_combine', self.progressive_combine, ('sum', 'cat'))
    check_choice('resblock_type', self.resblock_type, ('ddpm', 'biggan'))
    check_choice('embedding_type', self.embedding_type, ('fourier', 'positional'))
    check_choice('nonlinearity', self.nonlinearity, tuple(ACTIVATIONS))
    check_choice('attn_position', self.attn_position, layers.POSITIONS)

  @property
  def downsampling_factor(self) -> int:
    """f: the lowest resolution is f times smaller than the input along each spatial axis,
    which f must divide (the way up retraces the way down)."""
    return 2**(len(self.ch_mult) - 1)

  def attention_widths(self, height: int) -> set[int]:
    """The channel counts of this network's attention blocks on images `height` pixels
    high: every level whose height is in attn_resolutions, and the middle block."""
    return {self.nf * m for level, m in enumerate(self.ch_mult)
            if height // 2**level in self.attn_resolutions} | {self.nf * self.ch_mult[-1]}

  def _time_embedding(self, time_input: jax.Array, act, *,
                      prefix: str | None = None) -> jax.Array:
    """Embeds a time input [B] -> [B, 4 nf]: Fourier or sinusoidal features, then an MLP.

    Without a prefix its layers are auto-named (the time embedding of every checkpoint);
    with one they are the same layers with their own parameters, named prefix + those names.
    """
    name = lambda auto: None if prefix is None else prefix + auto
    if self.embedding_type == 'fourier':
      # A prefixed name keeps 'GaussianFourierProjection' in the path: models.apply keeps
      # such parameters float32 under a compute_dtype.
      emb = layers.GaussianFourierProjection(
          self.nf, self.fourier_scale, name=name('GaussianFourierProjection_0'))(
              jnp.log(time_input))
    else:
      emb = layers.sinusoidal_embedding(time_input, self.nf)
    emb = nn.Dense(self.nf * 4, kernel_init=default_init(), name=name('Dense_0'))(emb)
    return nn.Dense(self.nf * 4, kernel_init=default_init(), name=name('Dense_1'))(act(emb))

  def _embed(self, time_cond: jax.Array, act, *, class_labels: jax.Array | None,
             context_pooled: jax.Array | None, aug_cond: jax.Array | None) -> jax.Array | None:
    """The conditioning vector temb [B, 4 nf] shared by every residual block: the sum of the
    embeddings of time (if conditional) and of the optional inputs given; None if none."""
    embeddings = []
    if self.conditional:
      embeddings.append(self._time_embedding(time_cond, act))
    if class_labels is not None:
      if self.num_classes is None:
        raise ValueError('class_labels were given but the network has num_classes=None')
      embeddings.append(
          nn.Embed(self.num_classes + 1, self.nf * 4, name='label_embedding')(class_labels))
    if context_pooled is not None:
      embeddings.append(nn.Dense(self.nf * 4, kernel_init=default_init(),
                                 name='pooled_projection')(context_pooled))
    if aug_cond is not None:
      embeddings.append(self._time_embedding(aug_cond, act, prefix='aug_'))
    return functools.reduce(jnp.add, embeddings) if embeddings else None

  def _blocks(self, act):
    """(attention block, residual block, resampling options, skip sum) of this network."""
    attn = functools.partial(layers.AttnBlock, init_scale=self.init_scale,
                             skip_rescale=self.skip_rescale,
                             head_channels=self.attn_head_channels,
                             position=self.attn_position)
    resample = dict(fir=self.fir, fir_kernel=self.fir_kernel)
    if self.resblock_type == 'ddpm':
      resblock = functools.partial(layers.ResnetBlockDDPM, act=act, dropout=self.dropout,
                                   init_scale=self.init_scale, skip_rescale=self.skip_rescale,
                                   scale_shift=self.scale_shift_norm)
    else:
      resblock = functools.partial(layers.ResnetBlockBigGAN, act=act, dropout=self.dropout,
                                   init_scale=self.init_scale, skip_rescale=self.skip_rescale,
                                   scale_shift=self.scale_shift_norm, **resample)

    def skip_sum(a, b):
      return (a + b) / np.sqrt(2.0) if self.skip_rescale else a + b

    return attn, resblock, resample, skip_sum

  def encode(self, x: jax.Array, time_cond: jax.Array, *, train: bool,
             class_labels: jax.Array | None, cond: jax.Array | None,
             context: jax.Array | None, context_mask: jax.Array | None,
             context_pooled: jax.Array | None, aug_cond: jax.Array | None):
    """The encoder half: the embedding, the downsampling path and the middle blocks.

    Called from a compact method (the U-Net's, or the classifier's, which stops here). The
    inputs are __call__'s (see the module docstring).

    Returns:
      (h, the activations hs kept for the skip connections, temb).
    """
    self._check()
    act = ACTIVATIONS[self.nonlinearity]
    temb = self._embed(time_cond, act, class_labels=class_labels, context_pooled=context_pooled,
                       aug_cond=aug_cond)
    n_levels = len(self.ch_mult)
    attn, resblock, resample, skip_sum = self._blocks(act)

    x = scaling.to_centered(x, centered=self.centered)
    input_pyramid = x
    h = x if cond is None else jnp.concatenate([x, cond.astype(x.dtype)], axis=-1)

    # Downsampling path.
    hs = [conv3x3(self.nf)(h)]
    for level in range(n_levels):
      for _ in range(self.num_res_blocks):
        h = resblock(out_ch=self.nf * self.ch_mult[level])(hs[-1], temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = attn()(h, context, context_mask)
        hs.append(h)
      if level == n_levels - 1:
        continue
      if self.resblock_type == 'ddpm':
        h = layers.Downsample(with_conv=self.resamp_with_conv, **resample)(hs[-1])
      else:
        h = resblock(down=True)(hs[-1], temb, train)
      if self.progressive_input == 'input_skip':
        input_pyramid = layers.Downsample(with_conv=False, **resample)(input_pyramid)
        h = layers.Combine(method=self.progressive_combine)(input_pyramid, h)
      elif self.progressive_input == 'residual':
        input_pyramid = layers.Downsample(out_ch=h.shape[-1], with_conv=True,
                                          **resample)(input_pyramid)
        h = input_pyramid = skip_sum(input_pyramid, h)
      hs.append(h)

    h = hs[-1]
    h = resblock()(h, temb, train)
    h = attn()(h, context, context_mask)
    h = resblock()(h, temb, train)
    return h, hs, temb

  @nn.compact
  def __call__(self, x: jax.Array, time_cond: jax.Array, *, train: bool = False,
               class_labels: jax.Array | None = None, cond: jax.Array | None = None,
               context: jax.Array | None = None, context_mask: jax.Array | None = None,
               context_pooled: jax.Array | None = None,
               aug_cond: jax.Array | None = None) -> jax.Array:
    """Maps x [B, H, W, C] at time_cond [B] to an output [B, H, W, out_channels or C].

    The optional conditioning inputs are described in the module docstring.
    """
    h, hs, temb = self.encode(x, time_cond, train=train, class_labels=class_labels, cond=cond,
                              context=context, context_mask=context_mask,
                              context_pooled=context_pooled, aug_cond=aug_cond)
    act = ACTIVATIONS[self.nonlinearity]
    attn, resblock, resample, skip_sum = self._blocks(act)
    out_channels = self.out_channels or x.shape[-1]
    n_levels = len(self.ch_mult)

    # Upsampling path.
    pyramid = None
    for level in reversed(range(n_levels)):
      for _ in range(self.num_res_blocks + 1):
        h = resblock(out_ch=self.nf * self.ch_mult[level])(
            jnp.concatenate([h, hs.pop()], axis=-1), temb, train)
      if h.shape[1] in self.attn_resolutions:
        h = attn()(h, context, context_mask)

      if self.progressive == 'output_skip':
        out = conv3x3(out_channels, init_scale=self.init_scale)(act(group_norm(h.shape[-1])(h)))
        pyramid = out if pyramid is None else (
            layers.Upsample(with_conv=False, **resample)(pyramid) + out)
      elif self.progressive == 'residual':
        if pyramid is None:
          pyramid = conv3x3(h.shape[-1])(act(group_norm(h.shape[-1])(h)))
        else:
          pyramid = layers.Upsample(out_ch=h.shape[-1], with_conv=True, **resample)(pyramid)
          h = pyramid = skip_sum(pyramid, h)

      if level != 0:
        if self.resblock_type == 'ddpm':
          h = layers.Upsample(with_conv=self.resamp_with_conv, **resample)(h)
        else:
          h = resblock(up=True)(h, temb, train)

    if self.progressive == 'output_skip':
      return pyramid
    return conv3x3(out_channels, init_scale=self.init_scale)(act(group_norm(h.shape[-1])(h)))


class DDPM(NCSNpp):
  """The DDPM U-Net of Ho et al. (2020): NCSN++ with DDPM blocks and no FIR/progressive paths.

  Defaults are DDPM's CIFAR-10 network (35.7M parameters).
  """

  ch_mult: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  resblock_type: str = 'ddpm'
  fir: bool = False
  skip_rescale: bool = False
  progressive: str = 'none'
  progressive_input: str = 'none'
  embedding_type: str = 'positional'
