"""NCSNv2 (Song & Ermon 2020): a RefineNet with dilated residual blocks and InstanceNorm++.

NCSNv2 is not conditioned on the noise level: its output is divided by sigma
(`scale_by_sigma`, applied by `models.get_score_fn`). Three depths exist, for
images up to 64, 128 and 256 pixels; `get_model('ncsnv2_64' | 'ncsnv2_128' |
'ncsnv2_256')` picks one.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.ncsnpp import ACTIVATIONS, _check_choice


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
  """InstanceNorm++: instance norm that keeps the channel means' relative scale (alpha)."""

  use_bias: bool = True
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    means = jnp.mean(x, axis=(1, 2))  # [B, C]
    means = (means - jnp.mean(means, -1, keepdims=True)) / jnp.sqrt(
        jnp.var(means, -1, keepdims=True) + self.epsilon)
    h = (x - jnp.mean(x, axis=(1, 2), keepdims=True)) / jnp.sqrt(
        jnp.var(x, axis=(1, 2), keepdims=True) + self.epsilon)
    init = lambda key, shape: 1.0 + 0.02 * jax.random.normal(key, shape)
    alpha = self.param('alpha', init, (c,))
    gamma = self.param('gamma', init, (c,))
    h = gamma * (h + means[:, None, None, :] * alpha)
    return h + self.param('beta', nn.initializers.zeros, (c,)) if self.use_bias else h


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
  """NCSN's pre-activation residual block; 'down' halves the size unless dilated."""

  output_dim: int
  act: callable
  resample: str | None = None
  dilation: int = 1
  adjust_padding: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    input_dim = x.shape[-1]
    h = NCSNConv(input_dim if self.resample == 'down' else self.output_dim,
                 dilation=self.dilation)(self.act(InstanceNormPlus()(x)))
    h = self.act(InstanceNormPlus()(h))
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
  """Residual conv units: n_blocks x (n_stages x (act, 3x3 conv without bias)) + skip."""

  n_blocks: int
  n_stages: int
  act: callable

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for _ in range(self.n_blocks):
      residual = x
      for _ in range(self.n_stages):
        x = NCSNConv(x.shape[-1], use_bias=False)(self.act(x))
      x = x + residual
    return x


class CRPBlock(nn.Module):
  """Chained residual pooling: repeated 5x5 max-pool + conv, each added to the input."""

  n_stages: int
  act: callable

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.act(x)
    path = x
    for _ in range(self.n_stages):
      path = nn.max_pool(path, (5, 5), strides=(1, 1), padding='SAME')
      path = NCSNConv(x.shape[-1], use_bias=False)(path)
      x = path + x
    return x


class RefineBlock(nn.Module):
  """RefineNet block: adapt each input, fuse at `output_shape`, pool, refine."""

  output_shape: Sequence[int]
  features: int
  act: callable
  interpolation: str = 'bilinear'
  start: bool = False
  end: bool = False

  @nn.compact
  def __call__(self, xs: Sequence[jax.Array]) -> jax.Array:
    hs = [RCUBlock(2, 2, self.act)(x) for x in xs]
    if len(hs) > 1:  # multi-resolution fusion
      method = {'bilinear': 'bilinear', 'nearest_neighbor': 'nearest'}[self.interpolation]
      h = sum(jax.image.resize(NCSNConv(self.features)(h),
                               (h.shape[0], *self.output_shape, self.features), method)
              for h in hs)
    else:
      h = hs[0]
    h = CRPBlock(2, self.act)(h)
    return RCUBlock(3 if self.end else 1, 2, self.act)(h)


class NCSNv2(nn.Module):
  """NCSNv2 for images up to 64 px (CIFAR-10, CelebA 64).

  Attributes:
    nf: base channel count.
    stages: (channel multiplier, dilation) of each stage after the first. Each
      stage starts with a 'down' block, which halves the size unless dilated.
    nonlinearity: one of ACTIVATIONS ('elu' in the paper).
    interpolation: 'bilinear' or 'nearest_neighbor' in the fusion blocks.
    centered: inputs already in [-1, 1].
    scale_by_sigma: divide the output by sigma (always, in the paper).
    adjust_padding: pad before the last downsampling, for 28-px images.
  """

  nf: int = 128
  stages: Sequence[tuple[int, int]] = ((2, 1), (2, 2), (2, 4))
  nonlinearity: str = 'elu'
  interpolation: str = 'bilinear'
  centered: bool = False
  scale_by_sigma: bool = True
  adjust_padding: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, time_cond: jax.Array, *, train: bool = False) -> jax.Array:
    """Maps x [B, H, W, C] to an output [B, H, W, C]; time_cond is unused (see scale_by_sigma)."""
    del time_cond, train
    _check_choice('nonlinearity', self.nonlinearity, tuple(ACTIVATIONS))
    _check_choice('interpolation', self.interpolation, ('bilinear', 'nearest_neighbor'))
    act = ACTIVATIONS[self.nonlinearity]
    h = NCSNConv(self.nf)(x if self.centered else 2 * x - 1.0)
    outputs = [ResidualBlock(self.nf, act)(ResidualBlock(self.nf, act)(h))]
    widths = [self.nf]
    for i, (mult, dilation) in enumerate(self.stages):
      adjust = self.adjust_padding and i == len(self.stages) - 1
      h = ResidualBlock(mult * self.nf, act, resample='down', dilation=dilation,
                        adjust_padding=adjust)(outputs[-1])
      outputs.append(ResidualBlock(mult * self.nf, act, dilation=dilation)(h))
      widths.append(mult * self.nf)

    # RefineNet decoder: each block fuses a stage with the coarser result and
    # takes the width of the next shallower stage (the deepest keeps its own).
    deepest = len(outputs) - 1
    h = None
    for k in reversed(range(len(outputs))):
      width = widths[k] if k == deepest else widths[max(k - 1, 0)]
      inputs = [outputs[k]] if h is None else [outputs[k], h]
      h = RefineBlock(outputs[k].shape[1:3], width, act, self.interpolation,
                      start=k == deepest, end=k == 0)(inputs)
    return NCSNConv(x.shape[-1])(act(InstanceNormPlus()(h)))


class NCSNv2_128(NCSNv2):  # noqa: N801  (the paper's name)
  """NCSNv2 for 96-128 px images: one more downsampling stage, 4 nf channels deep."""

  stages: Sequence[tuple[int, int]] = ((2, 1), (2, 1), (4, 2), (4, 4))


class NCSNv2_256(NCSNv2):  # noqa: N801
  """NCSNv2 for 129-256 px images: two more downsampling stages than the 64-px network."""

  stages: Sequence[tuple[int, int]] = ((2, 1), (2, 1), (2, 1), (4, 2), (4, 4))
