"""The data's scales, in one place: uint8 pixels, [0, 1], and model space.

Model space is what the networks, losses and samplers see: [0, 1] (`centered=False`, Song
et al.'s default) or [-1, 1] (`centered=True`, DDPM's). Every conversion between the three
is a function here, so that `data.centered` means the same thing to the input pipeline,
the networks (which map their input to [-1, 1] themselves), the likelihoods (whose grey
levels live on [0, 1]), the autoencoder, the grids and the metrics.

The functions are plain arithmetic: they take NumPy or JAX arrays and trace under jit,
but for the uint8 ones, which work on the host.
"""

import jax.numpy as jnp
import numpy as np


def to_unit(x, *, centered: bool):
  """Model-space values -> [0, 1]."""
  return (x + 1.0) / 2.0 if centered else x


def from_unit(u, *, centered: bool):
  """[0, 1] -> model space."""
  return 2.0 * u - 1.0 if centered else u


def to_centered(x, *, centered: bool):
  """Model-space values -> [-1, 1], what a network or an autoencoder reads."""
  return x if centered else 2.0 * x - 1.0


def from_centered(y, *, centered: bool):
  """[-1, 1] (a network's or an autoencoder's output) -> model space."""
  return y if centered else (y + 1.0) / 2.0


def data_range(*, centered: bool) -> tuple[float, float]:
  """The bounds of model space."""
  return (-1.0, 1.0) if centered else (0.0, 1.0)


def from_uint8(images) -> np.ndarray:
  """uint8 pixels -> float32 in [0, 1]."""
  return np.asarray(images, np.float32) / 255.0


def to_uint8(x, *, centered: bool) -> np.ndarray:
  """Model-space images -> uint8 pixels, rounded and clipped."""
  u = to_unit(np.asarray(x, np.float32), centered=centered)
  return np.clip(np.round(u * 255.0), 0, 255).astype(np.uint8)


def uint8_to_model(images, *, centered: bool) -> np.ndarray:
  """uint8 pixels -> model space (float32)."""
  return from_unit(from_uint8(images), centered=centered)


def to_levels(x, *, centered: bool, levels: int):
  """Model-space values on the grid of `levels` grey levels -> their levels k in
  [0, levels - 1] (as floats, rounded to the nearest level)."""
  return jnp.round(to_unit(x, centered=centered) * (levels - 1))


def from_levels(k, *, centered: bool, levels: int):
  """Grey levels k in [0, levels - 1] -> their model-space values k / (levels - 1)."""
  return from_unit(k / (levels - 1), centered=centered)


def level_width(*, centered: bool, levels: int) -> float:
  """The distance between two neighbouring grey levels in model space."""
  return (2.0 if centered else 1.0) / (levels - 1)
