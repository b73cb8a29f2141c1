"""The data's scales: model space, [0, 1], uint8 pixels and grey levels, both ways, for
centered and uncentered data, on NumPy and under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data import scaling


@pytest.mark.parametrize('centered, low', [(False, 0.0), (True, -1.0)])
def test_model_space_is_the_unit_interval_or_its_centred_copy(centered, low):
  u = np.linspace(0.0, 1.0, 11, dtype=np.float32)
  x = scaling.from_unit(u, centered=centered)
  np.testing.assert_allclose(x, low + (1.0 - low) * u, rtol=0, atol=1e-7)
  np.testing.assert_allclose(scaling.to_unit(x, centered=centered), u, atol=1e-7)
  assert scaling.data_range(centered=centered) == (low, 1.0)
  # What a network reads is [-1, 1] whatever the data's space.
  np.testing.assert_allclose(scaling.to_centered(x, centered=centered), 2 * u - 1, atol=1e-7)
  np.testing.assert_allclose(scaling.from_centered(2 * u - 1, centered=centered), x, atol=1e-7)


@pytest.mark.parametrize('centered', [False, True])
def test_uint8_round_trips_every_pixel_value_and_rounds_and_clips(centered):
  pixels = np.arange(256, dtype=np.uint8)
  model = scaling.uint8_to_model(pixels, centered=centered)
  assert model.dtype == np.float32
  np.testing.assert_array_equal(scaling.to_uint8(model, centered=centered), pixels)
  np.testing.assert_array_equal(scaling.from_uint8(pixels), pixels / np.float32(255))
  low, high = scaling.data_range(centered=centered)
  outside = np.array([low - 0.5, high + 0.5, low + (high - low) * 0.6 / 255])
  np.testing.assert_array_equal(scaling.to_uint8(outside, centered=centered), [0, 255, 1])


@pytest.mark.parametrize('centered', [False, True])
@pytest.mark.parametrize('levels', [2, 17, 256])
def test_grey_levels_are_the_grid_k_over_levels_minus_one(centered, levels):
  k = np.arange(levels, dtype=np.float32)
  x = scaling.from_levels(k, centered=centered, levels=levels)
  np.testing.assert_allclose(np.diff(x), scaling.level_width(centered=centered, levels=levels),
                             rtol=1e-5)
  assert (x[0], x[-1]) == pytest.approx(scaling.data_range(centered=centered))
  # Rounding to the nearest level, also a third of a level off and under jit.
  width = scaling.level_width(centered=centered, levels=levels)
  off = jax.jit(lambda x: scaling.to_levels(x, centered=centered, levels=levels))(
      jnp.asarray(x + width / 3))
  np.testing.assert_array_equal(np.asarray(off), k)
