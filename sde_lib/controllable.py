"""Controllable generation by replacement: inpainting and colorization (Song et al.
2021, Sec. 5 and App. I; score_sde's `get_pc_inpainter` / `get_pc_colorizer`).

The known part of an image is a set of coordinates in an orthonormal basis of pixel
space: the pixels themselves for inpainting, or per pixel a rotation of the colour
channels whose first axis is the grey level, (r + g + b) / sqrt(3), for colorization.
After every step of a sampler the known coordinates of the state x(t) are replaced by
a fresh draw of the forward process from the data, alpha(t) y + std(t) z, and the
sampler's own step moves the others. In an orthonormal basis the forward noise is
still N(0, std^2 I), so drawing it in the basis is drawing it in pixel space.

Replacement is an approximation of sampling p(x | known part): the unknown
coordinates follow the unconditional score at a known part that is an independent
draw of x_t given y, not the one that the unknown part's past is consistent with,
which biases them toward the prior wherever known and unknown coordinates are
strongly correlated (Lugmayr et al.'s RePaint and Chung et al.'s manifold-constraint
papers study this). The samples still carry the known part exactly (`paste`).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sde_lib.sde import SDE
from sde_lib.utils import batch_broadcast, normal


def grey_basis(num_channels: int) -> np.ndarray:
  """An orthonormal [C, C] basis of the colour channels whose first column is the grey
  axis ones / sqrt(C) (the Helmert matrix). Replacement only depends on the span of the
  other columns, the plane orthogonal to grey, so it equals score_sde's colorization
  with its own 3 x 3 matrix."""
  if num_channels < 2:
    raise ValueError(f'colorization needs at least 2 colour channels, got {num_channels}')
  basis = np.zeros((num_channels, num_channels))
  basis[:, 0] = 1.0 / np.sqrt(num_channels)
  for k in range(1, num_channels):
    basis[:k, k] = 1.0
    basis[k, k] = -k
    basis[:, k] /= np.sqrt(k * (k + 1))
  return basis


@dataclasses.dataclass(frozen=True, eq=False)
class Replacement:
  """The known part of the images to complete, and the per-step replacement hook.

  Attributes:
    sde: the forward SDE the sampler reverses.
    y: [B, ...] the images whose known part is kept (the rest is ignored), in model
      space (as the network sees data).
    mask: 1 where a coordinate is known, 0 where it is generated; broadcastable to y's
      coordinates in `basis` (e.g. [H, W, 1] for a pixel mask, or [C] = (1, 0, 0) for
      the grey level of an RGB image).
    basis: an orthonormal [C, C] change of the channel basis (coordinates = x @ basis),
      or None for the pixels themselves.
  """

  sde: SDE
  y: jax.Array
  mask: jax.Array
  basis: np.ndarray | None = None

  def coordinates(self, x: jax.Array) -> jax.Array:
    return x if self.basis is None else x @ jnp.asarray(self.basis, x.dtype)

  def image(self, c: jax.Array) -> jax.Array:
    return c if self.basis is None else c @ jnp.asarray(self.basis, c.dtype).T

  def _merge(self, x: jax.Array, known: jax.Array) -> jax.Array:
    mask = jnp.asarray(self.mask, x.dtype)
    return self.image(self.coordinates(x) * (1.0 - mask) + known * mask)

  def __call__(self, rng: jax.Array, x: jax.Array, t: jax.Array) -> jax.Array:
    """x [B, ...] at the scalar time t with its known coordinates drawn from x(t) | y."""
    t = jnp.full(x.shape[:1], t, x.dtype)
    alpha, std = batch_broadcast(self.sde.alpha(t), x), batch_broadcast(self.sde.std(t), x)
    known = alpha * self.coordinates(self.y) + std * normal(rng, x.shape, x.dtype)
    return self._merge(x, known)

  def paste(self, x: jax.Array) -> jax.Array:
    """x with its known coordinates set to y's exactly."""
    return self._merge(x, self.coordinates(self.y))

  def observed(self, fill: float = 0.0) -> jax.Array:
    """What is known of y, as an image: the unknown coordinates set to `fill`."""
    return self._merge(jnp.full_like(self.y, fill), self.coordinates(self.y))


def inpainting(sde: SDE, y: jax.Array, mask: jax.Array) -> Replacement:
  """Keeps y's pixels where mask [H, W] (or [H, W, C]) is 1 and generates the rest."""
  mask = jnp.asarray(mask)
  return Replacement(sde, y, mask[..., None] if mask.ndim == y.ndim - 2 else mask)


def colorization(sde: SDE, y: jax.Array) -> Replacement:
  """Keeps the grey level of y (the mean over its channels, up to sqrt(C)) and generates
  the colours."""
  c = y.shape[-1]
  return Replacement(sde, y, jnp.asarray(np.eye(c)[0]), grey_basis(c))
