"""FIR up/down-sampling (StyleGAN2's upfirdn2d), written in JAX for NHWC arrays.

NCSN++ resamples with the binomial kernel [1, 3, 3, 1] instead of nearest
neighbours or average pooling (Song et al. 2021, App. H). The convolutions that
resample (`Conv2d(up=True)` / `Conv2d(down=True)`) fuse the kernel with a
strided or transposed convolution as StyleGAN2 does.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

NHWC = ('NHWC', 'HWIO', 'NHWC')


def setup_kernel(k: Sequence[float]) -> np.ndarray:
  """A separable 2-D kernel normalised to sum to one; 1-D taps give their outer product."""
  k = np.asarray(k, dtype=np.float32)
  if k.ndim == 1:
    k = np.outer(k, k)
  return k / np.sum(k)


def upfirdn2d(x: jax.Array, k: np.ndarray, *, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> jax.Array:
  """Upsample by zero insertion, pad, convolve with k, then keep every `down`-th pixel.

  Args:
    x: [B, H, W, C].
    k: 2-D FIR kernel [kh, kw].
    up, down: integer factors.
    pad: (before, after) padding of both spatial axes after upsampling; negative crops.

  Returns:
    [B, (H * up + pad0 + pad1 - kh) // down + 1, ..., C].
  """
  # Zero insertion leaves up - 1 zeros after every pixel, the last one included.
  spatial = (pad[0], pad[1] + up - 1, up - 1)
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), spatial, spatial, (0, 0, 0)))
  # A true convolution (flipped kernel) as a sum of shifted, strided slices: a
  # depthwise conv does the same work but runs several times slower on XLA:CPU.
  kh, kw = k.shape
  out_h = (x.shape[1] - kh) // down + 1
  out_w = (x.shape[2] - kw) // down + 1
  flipped = np.asarray(k)[::-1, ::-1]
  taps = [(a, b) for a in range(kh) for b in range(kw) if flipped[a, b] != 0]
  return sum(
      float(flipped[a, b]) * x[:, a:a + (out_h - 1) * down + 1:down,
                               b:b + (out_w - 1) * down + 1:down]
      for a, b in taps)


def upsample_2d(x: jax.Array, k: Sequence[float] = (1, 3, 3, 1), factor: int = 2,
                gain: float = 1.0) -> jax.Array:
  """Upsamples [B, H, W, C] to [B, H * factor, W * factor, C] with the FIR kernel k."""
  k = setup_kernel(k) * (gain * factor**2)
  p = k.shape[0] - factor
  return upfirdn2d(x, k, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample_2d(x: jax.Array, k: Sequence[float] = (1, 3, 3, 1), factor: int = 2,
                  gain: float = 1.0) -> jax.Array:
  """Downsamples [B, H, W, C] to [B, H // factor, W // factor, C] with the FIR kernel k."""
  k = setup_kernel(k) * gain
  p = k.shape[0] - factor
  return upfirdn2d(x, k, down=factor, pad=((p + 1) // 2, p // 2))


def naive_upsample_2d(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling [B, H, W, C] -> [B, H * factor, W * factor, C]."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def naive_downsample_2d(x: jax.Array, factor: int = 2) -> jax.Array:
  """Average pooling [B, H, W, C] -> [B, H // factor, W // factor, C]."""
  b, h, w, c = x.shape
  return jnp.mean(x.reshape(b, h // factor, factor, w // factor, factor, c), axis=(2, 4))


def upsample_conv_2d(x: jax.Array, w: jax.Array, k: Sequence[float] = (1, 3, 3, 1),
                     factor: int = 2, gain: float = 1.0) -> jax.Array:
  """Transposed convolution by w [kh, kw, in, out] with stride `factor`, then FIR filtering.

  StyleGAN2 and score_sde compute exactly this as a transposed convolution of
  the zero-inserted input followed by `upfirdn2d`. Here both are folded into one
  ordinary convolution to factor^2 output phases, then interleaved (depth to
  space): the same numbers, but XLA:CPU computes the weight gradient of a
  dilated-input convolution over 10x slower than that of a plain one.
  """
  kernel_size = w.shape[0]
  k = setup_kernel(k) * (gain * factor**2)
  p = (k.shape[0] - factor) - (kernel_size - 1)
  shift = (p + 1) // 2 + factor - 1 + kernel_size - 1
  size = k.shape[0] + kernel_size - 1
  # The composite kernel on the zero-inserted grid, sum_{t + j = s} flip(k)[t] w[j],
  # as a constant map from w's taps j to the composite's taps s.
  place = np.zeros((size, size, kernel_size, kernel_size), np.float32)
  for j1 in range(kernel_size):
    for j2 in range(kernel_size):
      place[j1:j1 + k.shape[0], j2:j2 + k.shape[1], j1, j2] = k[::-1, ::-1]
  # Output phase a reads composite tap s at input offset (a + s - shift) / factor,
  # when that is a whole number.
  taps = [(a, s, (a + s - shift) // factor) for a in range(factor) for s in range(size)
          if (a + s - shift) % factor == 0]
  lo = min(offset for _, _, offset in taps)
  n = max(offset for _, _, offset in taps) - lo + 1
  pick = np.zeros((factor, n, size), np.float32)
  for a, s, offset in taps:
    pick[a, offset - lo, s] = 1.0
  kernel = jnp.einsum('apx,bqy,xyuv,uvio->pqiabo', pick, pick, place, w)
  kernel = kernel.reshape(n, n, w.shape[2], factor * factor * w.shape[3])
  y = jax.lax.conv_general_dilated(x, kernel, (1, 1), [(-lo, n - 1 + lo)] * 2,
                                   dimension_numbers=NHWC)
  b, h, width, _ = y.shape
  y = y.reshape(b, h, width, factor, factor, w.shape[3]).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, h * factor, width * factor, w.shape[3])


def conv_downsample_2d(x: jax.Array, w: jax.Array, k: Sequence[float] = (1, 3, 3, 1),
                       factor: int = 2, gain: float = 1.0) -> jax.Array:
  """FIR filtering, then convolution by w [kh, kw, in, out] with stride `factor`."""
  kernel_size = w.shape[0]
  k = setup_kernel(k) * gain
  p = (k.shape[0] - factor) + (kernel_size - 1)
  x = upfirdn2d(x, k, pad=((p + 1) // 2, p // 2))
  return jax.lax.conv_general_dilated(x, w, window_strides=(factor, factor), padding='VALID',
                                      dimension_numbers=NHWC)


class Conv2d(nn.Module):
  """A k x k convolution that optionally up- or downsamples by 2 with a FIR kernel.

  Attributes:
    features: output channels.
    kernel: odd kernel size.
    up, down: resample by a factor of 2 (at most one of them).
    resample_kernel: FIR taps.
    use_bias: add a bias.
    kernel_init: initialiser of the [k, k, in, out] weight.
  """

  features: int
  kernel: int
  up: bool = False
  down: bool = False
  resample_kernel: Sequence[float] = (1, 3, 3, 1)
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.up and self.down:
      raise ValueError('Conv2d resamples up or down, not both')
    if self.kernel < 1 or self.kernel % 2 == 0:
      raise ValueError(f'kernel must be odd and positive, got {self.kernel}')
    w = self.param('kernel', self.kernel_init,
                   (self.kernel, self.kernel, x.shape[-1], self.features))
    w = w.astype(x.dtype)
    if self.up:
      x = upsample_conv_2d(x, w, self.resample_kernel)
    elif self.down:
      x = conv_downsample_2d(x, w, self.resample_kernel)
    else:
      x = jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME', dimension_numbers=NHWC)
    if self.use_bias:
      x = x + self.param('bias', nn.initializers.zeros, (self.features,)).astype(x.dtype)
    return x
