import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import up_or_down_sampling as resampling


def _upfirdn2d_reference(x, k, up, down, pad):
  """The definition, one output pixel at a time: zero-insert, pad, convolve, subsample."""
  b, h, w, c = x.shape
  upsampled = np.zeros((b, h * up, w * up, c))
  upsampled[:, ::up, ::up] = x
  p0, p1 = pad
  padded = np.zeros((b, h * up + p0 + p1, w * up + p0 + p1, c))
  src = upsampled[:, max(-p0, 0):h * up - max(-p1, 0), max(-p0, 0):w * up - max(-p1, 0)]
  padded[:, max(p0, 0):max(p0, 0) + src.shape[1], max(p0, 0):max(p0, 0) + src.shape[2]] = src
  kh, kw = k.shape
  out_h = (padded.shape[1] - kh) // down + 1
  out_w = (padded.shape[2] - kw) // down + 1
  flipped = k[::-1, ::-1]
  out = np.zeros((b, out_h, out_w, c))
  for i in range(out_h):
    for j in range(out_w):
      window = padded[:, i * down:i * down + kh, j * down:j * down + kw]
      out[:, i, j] = np.einsum('bhwc,hw->bc', window, flipped)
  return out


@pytest.mark.parametrize('up, down, pad', [(2, 1, (2, 1)), (1, 2, (1, 1)), (1, 1, (-1, 2)),
                                           (2, 2, (1, 2))])
def test_upfirdn2d_matches_its_definition(up, down, pad):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 7, 7, 3)).astype(np.float32)
  k = rng.standard_normal((4, 3)).astype(np.float32)  # asymmetric: catches a missing flip
  out = resampling.upfirdn2d(jnp.asarray(x), k, up=up, down=down, pad=pad)
  np.testing.assert_allclose(out, _upfirdn2d_reference(x, k, up, down, pad), atol=1e-5)


def test_fir_up_and_down_sampling_match_the_reference_filters():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
  k = resampling.setup_kernel([1, 3, 3, 1])
  np.testing.assert_allclose(resampling.upsample_2d(jnp.asarray(x)),
                             _upfirdn2d_reference(x, k * 4, 2, 1, (2, 1)), atol=1e-5)
  np.testing.assert_allclose(resampling.downsample_2d(jnp.asarray(x)),
                             _upfirdn2d_reference(x, k, 1, 2, (1, 1)), atol=1e-5)


def test_down_of_up_preserves_a_constant_image_away_from_the_border():
  constant = jnp.full((1, 16, 16, 2), 3.0)
  up = resampling.upsample_2d(constant)
  assert up.shape == (1, 32, 32, 2)
  np.testing.assert_allclose(up[:, 2:-2, 2:-2], 3.0, rtol=1e-6)
  roundtrip = resampling.downsample_2d(up)
  assert roundtrip.shape == constant.shape
  # Zero padding reaches two pixels in: up's border row, then down's own padding.
  np.testing.assert_allclose(roundtrip[:, 2:-2, 2:-2], 3.0, rtol=1e-6)


def test_fused_upsampling_conv_is_fir_upsampling_then_conv_in_the_interior():
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((1, 8, 8, 3)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32)
  fused = resampling.upsample_conv_2d(x, w)
  separate = jax.lax.conv_general_dilated(resampling.upsample_2d(x), w, (1, 1), 'SAME',
                                          dimension_numbers=resampling.NHWC)
  assert fused.shape == separate.shape == (1, 16, 16, 4)
  np.testing.assert_allclose(fused[:, 3:-3, 3:-3], separate[:, 3:-3, 3:-3], atol=1e-4)


@pytest.mark.parametrize('kernel_size, k', [(3, (1, 3, 3, 1)), (1, (1, 3, 3, 1)), (3, (1, 2, 1)),
                                            (1, (1, 1))])
def test_fused_upsampling_conv_is_the_transposed_conv_then_fir_everywhere(kernel_size, k):
  # StyleGAN2's definition: a transposed convolution (a full correlation of the
  # zero-inserted input with w), then upfirdn2d; values and both gradients.
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.standard_normal((2, 6, 6, 3)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((kernel_size, kernel_size, 3, 5)), jnp.float32)
  cotangent = jnp.asarray(rng.standard_normal((2, 12, 12, 5)), jnp.float32)

  def definition(x, w):
    fir = resampling.setup_kernel(k) * 4
    p = (fir.shape[0] - 2) - (kernel_size - 1)
    y = jax.lax.conv_general_dilated(x, w, (1, 1), ((kernel_size - 1, kernel_size - 1),) * 2,
                                     lhs_dilation=(2, 2), dimension_numbers=resampling.NHWC)
    return resampling.upfirdn2d(y, fir, pad=((p + 1) // 2 + 1, p // 2 + 1))

  def fused(x, w):
    return resampling.upsample_conv_2d(x, w, k)

  np.testing.assert_allclose(fused(x, w), definition(x, w), atol=1e-5)
  for got, expected in zip(jax.grad(lambda x, w: jnp.sum(fused(x, w) * cotangent), (0, 1))(x, w),
                           jax.grad(lambda x, w: jnp.sum(definition(x, w) * cotangent),
                                    (0, 1))(x, w)):
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_fused_downsampling_conv_is_fir_filtering_then_strided_conv():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.standard_normal((1, 16, 16, 3)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32)
  fused = resampling.conv_downsample_2d(x, w)
  k = resampling.setup_kernel([1, 3, 3, 1])
  filtered = resampling.upfirdn2d(x, k, pad=(2, 1))  # the same-size FIR blur
  separate = jax.lax.conv_general_dilated(filtered, w, (1, 1), 'SAME',
                                          dimension_numbers=resampling.NHWC)
  assert fused.shape == (1, 8, 8, 4)
  # The fused output pixel i sits at full-resolution pixel 2i + 1.
  np.testing.assert_allclose(fused[:, 1:-1, 1:-1], separate[:, 3:-2:2, 3:-2:2], atol=1e-4)
