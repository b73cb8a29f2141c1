"""NCSN (Song & Ermon 2019) and NCSNv2 (2020): RefineNets with dilated residual blocks.

NCSNv2 is not conditioned on the noise level: its output is divided by sigma
(the 'score' parameterisation with `scale_by_sigma`, see `sde_lib.parameterization`).
Three depths exist, for images up to 64, 128 and 256 pixels; `get_model('ncsnv2_64' |
'ncsnv2_128' | 'ncsnv2_256')` picks one.

NCSN (v1, `get_model('ncsn')`) is the 64-px network conditioned on the noise
level instead: every InstanceNorm++ takes its scales from a table with one row
per level, and its refine blocks normalise before each convolution. The blocks
below serve both: given `num_classes`, they are NCSN's conditional blocks.
"""

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from data import scaling
from models.ncsnpp import ACTIVATIONS, check_choice


class NCSNConv(nn.Module):
  """A 'SAME' convolution with PyTorch's default initialisation, as NCSN uses it.

  Kernel and bias are uniform with bound 1/sqrt(fan_in) (times init_scale).
  """

  features: int
  kernel: int = 3
  use_bias: bool = True
  dilation: int = 1
  init_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init_scale = 1e-10 if self.init_scale == 0 else self.init_scale
    kernel_init = nn.initializers.variance_scaling(init_scale / 3, 'fan_in', 'uniform')
    kernel_shape = (self.kernel, self.kernel, x.shape[-1], self.features)
    # The bias shares the kernel's bound: draw a kernel of the same fan-in, keep a slice.
    bias_init = lambda key, shape, dtype=jnp.float32: kernel_init(key, kernel_shape, dtype)[0, 0, 0]
    return nn.Conv(self.features, (self.kernel, self.kernel), padding='SAME',
                   use_bias=self.use_bias, kernel_dilation=(self.dilation, self.dilation),
                   kernel_init=kernel_init, bias_init=bias_init)(x)


class InstanceNormPlus(nn.Module):
  """InstanceNorm++: instance norm that keeps the channel means' relative scale (alpha).

  out = gamma * (normalised x + alpha * normalised channel means) + beta, each
  [C]; with `num_classes`, NCSN's conditional InstanceNorm++: gamma, alpha and
  beta are the row of an embedding table [num_classes, 3C] picked by the label.
  """

  num_classes: int | None = None
  use_bias: bool = True
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Normalises x [B, H, W, C]; labels [B] (int) pick the row when conditional."""
    c = x.shape[-1]
    means = jnp.mean(x, axis=(1, 2))  # [B, C]
    means = (means - jnp.mean(means, -1, keepdims=True)) / jnp.sqrt(
        jnp.var(means, -1, keepdims=True) + self.epsilon)
    h = (x - jnp.mean(x, axis=(1, 2), keepdims=True)) / jnp.sqrt(
        jnp.var(x, axis=(1, 2), keepdims=True) + self.epsilon)
    if self.num_classes is None:
      init = lambda key, shape: 1.0 + 0.02 * jax.random.normal(key, shape)
      alpha = self.param('alpha', init, (c,))
      gamma = self.param('gamma', init, (c,))
      beta = self.param('beta', nn.initializers.zeros, (c,)) if self.use_bias else 0.0
    else:
      # Each row starts as the unconditional parameters do: scales ~ N(1, 0.02), beta 0.
      def init(key, shape, dtype=jnp.float32):
        scales = 1.0 + 0.02 * jax.random.normal(key, (shape[0], 2 * c), dtype)
        return jnp.concatenate([scales, jnp.zeros((shape[0], shape[1] - 2 * c), dtype)], -1)

      rows = nn.Embed(self.num_classes, (3 if self.use_bias else 2) * c,
                      embedding_init=init)(labels)[:, None, None, :]  # [B, 1, 1, 3C]
      gamma, alpha = rows[..., :c], rows[..., c:2 * c]
      beta = rows[..., 2 * c:] if self.use_bias else 0.0
    return gamma * (h + means[:, None, None, :] * alpha) + beta


def _refine_norm(x: jax.Array, labels: jax.Array | None, num_classes: int | None) -> jax.Array:
  # NCSN normalises (conditionally) before every convolution of its refine
  # blocks; NCSNv2 removed those norms.
  return x if num_classes is None else InstanceNormPlus(num_classes)(x, labels)


def _mean_pool(x: jax.Array) -> jax.Array:
  return (x[:, ::2, ::2] + x[:, 1::2, ::2] + x[:, ::2, 1::2] + x[:, 1::2, 1::2]) / 4.0


class ConvMeanPool(nn.Module):
  """Convolution, then 2x2 mean pooling; `adjust_padding` pads (1, 0) first (28-px images)."""

  features: int
  kernel: int = 3
  adjust_padding: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.adjust_padding:
      x = jnp.pad(x, ((0, 0), (1, 0), (1, 0), (0, 0)))
    return _mean_pool(NCSNConv(self.features, self.kernel)(x))


class ResidualBlock(nn.Module):
  """NCSN's pre-activation residual block; 'down' halves the size unless dilated.

  Its InstanceNorm++ are conditional on the labels [B] when `num_classes` is set.
  """

  output_dim: int
  act: callable
  resample: str | None = None
  dilation: int = 1
  adjust_padding: bool = False
  num_classes: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    input_dim = x.shape[-1]
    norm = lambda v: InstanceNormPlus(self.num_classes)(v, labels)
    h = NCSNConv(input_dim if self.resample == 'down' else self.output_dim,
                 dilation=self.dilation)(self.act(norm(x)))
    h = self.act(norm(h))
    if self.resample == 'down' and self.dilation == 1:
      h = ConvMeanPool(self.output_dim, adjust_padding=self.adjust_padding)(h)
      shortcut = lambda v: ConvMeanPool(self.output_dim, 1, self.adjust_padding)(v)
    else:
      h = NCSNConv(self.output_dim, dilation=self.dilation)(h)
      shortcut = (lambda v: NCSNConv(self.output_dim, dilation=self.dilation)(v)
                  if self.dilation > 1 else NCSNConv(self.output_dim, 1)(v))
    if self.output_dim == input_dim and self.resample is None:
      return x + h
    return shortcut(x) + h


class RCUBlock(nn.Module):
  """Residual conv units: n_blocks x (n_stages x (act, 3x3 conv without bias)) + skip.

  With `num_classes` (NCSN), a conditional InstanceNorm++ precedes each activation.
  """

  n_blocks: int
  n_stages: int
  act: callable
  num_classes: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    for _ in range(self.n_blocks):
      residual = x
      for _ in range(self.n_stages):
        x = NCSNConv(x.shape[-1], use_bias=False)(
            self.act(_refine_norm(x, labels, self.num_classes)))
      x = x + residual
    return x


class CRPBlock(nn.Module):
  """Chained residual pooling: repeated 5x5 max-pool + conv, each added to the input.

  With `num_classes` (NCSN), each stage normalises conditionally and average-pools
  (zero padding counted, as PyTorch's AvgPool2d does) instead of max-pooling.
  """

  n_stages: int
  act: callable
  num_classes: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    pool = nn.max_pool if self.num_classes is None else nn.avg_pool
    x = self.act(x)
    path = x
    for _ in range(self.n_stages):
      path = pool(_refine_norm(path, labels, self.num_classes), (5, 5), strides=(1, 1),
                  padding='SAME')
      path = NCSNConv(x.shape[-1], use_bias=False)(path)
      x = path + x
    return x


class RefineBlock(nn.Module):
  """RefineNet block: adapt each input, fuse at `output_shape`, pool, refine.

  With `num_classes`, NCSN's conditional refine block: every sub-block normalises
  conditionally, the fusion too before its convolutions.
  """

  output_shape: Sequence[int]
  features: int
  act: callable
  interpolation: str = 'bilinear'
  start: bool = False
  end: bool = False
  num_classes: int | None = None

  @nn.compact
  def __call__(self, xs: Sequence[jax.Array], labels: jax.Array | None = None) -> jax.Array:
    hs = [RCUBlock(2, 2, self.act, self.num_classes)(x, labels) for x in xs]
    if len(hs) > 1:  # multi-resolution fusion
      method = {'bilinear': 'bilinear', 'nearest_neighbor': 'nearest'}[self.interpolation]
      h = sum(jax.image.resize(NCSNConv(self.features)(_refine_norm(h, labels, self.num_classes)),
                               (h.shape[0], *self.output_shape, self.features), method)
              for h in hs)
    else:
      h = hs[0]
    h = CRPBlock(2, self.act, self.num_classes)(h, labels)
    return RCUBlock(3 if self.end else 1, 2, self.act, self.num_classes)(h, labels)


class NCSNv2(nn.Module):
  """NCSNv2 for images up to 64 px (CIFAR-10, CelebA 64).

  Attributes:
    nf: base channel count.
    stages: (channel multiplier, dilation) of each stage after the first. Each
      stage starts with a 'down' block, which halves the size unless dilated.
    nonlinearity: one of ACTIVATIONS ('elu' in the paper).
    interpolation: 'bilinear' or 'nearest_neighbor' in the fusion blocks.
    centered: inputs already in [-1, 1].
    adjust_padding: pad before the last downsampling, for 28-px images.
  """

  nf: int = 128
  stages: Sequence[tuple[int, int]] = ((2, 1), (2, 2), (2, 4))
  nonlinearity: str = 'elu'
  interpolation: str = 'bilinear'
  centered: bool = False
  adjust_padding: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, time_cond: jax.Array, *, train: bool = False) -> jax.Array:
    """Maps x [B, H, W, C] to an output [B, H, W, C]; time_cond is unused (the output is divided by sigma)."""
    del time_cond, train
    return self._refinenet(x, None, None)

  def _refinenet(self, x: jax.Array, labels: jax.Array | None,
                 num_classes: int | None) -> jax.Array:
    """The network, with NCSN's conditional norms when num_classes is set."""
    check_choice('nonlinearity', self.nonlinearity, tuple(ACTIVATIONS))
    check_choice('interpolation', self.interpolation, ('bilinear', 'nearest_neighbor'))
    act = ACTIVATIONS[self.nonlinearity]
    block = functools.partial(ResidualBlock, act=act, num_classes=num_classes)
    h = NCSNConv(self.nf)(scaling.to_centered(x, centered=self.centered))
    outputs = [block(self.nf)(block(self.nf)(h, labels), labels)]
    widths = [self.nf]
    for i, (mult, dilation) in enumerate(self.stages):
      adjust = self.adjust_padding and i == len(self.stages) - 1
      h = block(mult * self.nf, resample='down', dilation=dilation,
                adjust_padding=adjust)(outputs[-1], labels)
      outputs.append(block(mult * self.nf, dilation=dilation)(h, labels))
      widths.append(mult * self.nf)

    # RefineNet decoder: each block fuses a stage with the coarser result and
    # takes the width of the next shallower stage (the deepest keeps its own).
    deepest = len(outputs) - 1
    h = None
    for k in reversed(range(len(outputs))):
      width = widths[k] if k == deepest else widths[max(k - 1, 0)]
      inputs = [outputs[k]] if h is None else [outputs[k], h]
      h = RefineBlock(outputs[k].shape[1:3], width, act, self.interpolation,
                      start=k == deepest, end=k == 0, num_classes=num_classes)(inputs, labels)
    return NCSNConv(x.shape[-1])(act(InstanceNormPlus(num_classes)(h, labels)))


class NCSNv2_128(NCSNv2):  # the paper's name
  """NCSNv2 for 96-128 px images: one more downsampling stage, 4 nf channels deep."""

  stages: Sequence[tuple[int, int]] = ((2, 1), (2, 1), (4, 2), (4, 4))


class NCSNv2_256(NCSNv2):
  """NCSNv2 for 129-256 px images: two more downsampling stages than the 64-px network."""

  stages: Sequence[tuple[int, int]] = ((2, 1), (2, 1), (2, 1), (4, 2), (4, 4))


class NCSN(NCSNv2):
  """NCSN (v1): ermongroup/ncsn's CondRefineNetDilated, conditioned on the noise level.

  The NCSNv2 network of up to 64 px (same stages and widths) whose InstanceNorm++
  are conditional on the level, with norms before every refine-block convolution
  and average pooling in the chained residual pooling. It is trained on the
  discrete VE SDE only: `time_cond` is then NCSN's level index, 0 for the
  largest sigma (the 'ncsn_level' time input of `sde_lib.parameterization`), and
  labels the norms. The output is the score itself (score_sde's option to divide
  it by sigma, `model.scale_by_sigma`, is kept).

  Two conventions follow score_sde's JAX code rather than ermongroup/ncsn's
  PyTorch: the fusion's bilinear resize uses half-pixel centres (PyTorch:
  align_corners=True) and the channel means' variance is the biased one
  (torch.var is unbiased). With those two aligned, a port of ermongroup's
  network gives the same outputs to 2e-6.

  Attributes:
    num_levels: the number of noise levels, the SDE's N (each norm holds a
      [num_levels, 3C] table; a level outside it gives NaN outputs).
  """

  num_levels: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, time_cond: jax.Array, *, train: bool = False) -> jax.Array:
    """Maps x [B, H, W, C] and the level indices time_cond [B] to the score [B, H, W, C]."""
    del train
    if self.num_levels is None:
      raise ValueError('NCSN needs num_levels, the number of noise levels (the SDE N)')
    levels = jnp.round(time_cond).astype(jnp.int32)
    return self._refinenet(x, levels, self.num_levels)
