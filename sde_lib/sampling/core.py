"""What every sampler shares: its output, its trajectory, its grid and its checks."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sde_lib.sde import SDE, ScoreFn, denoiser
from sde_lib.utils import batch_broadcast


class Trajectory(NamedTuple):
  """States of a sampler on its way from the prior to the data.

  Attributes:
    t: [F] decreasing times from t[0] = T (the prior draw) to t[-1], the time of
      the returned sample: the grid's last time, `sde.t_from_log_snr(inf)` (sigma
      = 0: 0 for VP and sub-VP, -inf for VE) when the sampler ends by denoising.
    x: [F, B, ...] the states at those times; x[-1] is the returned sample.
  """

  t: jax.Array
  x: jax.Array


class SampleOutput(NamedTuple):
  """What every sampler returns.

  Attributes:
    x: [B, ...] the samples.
    nfe: int32 scalar array, the number of score evaluations each sample cost,
      the final denoising step included.
    trajectory: a `Trajectory` when frames were asked for (n_frames >= 2), else None.
  """

  x: jax.Array
  nfe: jax.Array
  trajectory: Trajectory | None = None


def check_n_frames(n_frames) -> None:
  if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames == 1 or n_frames < 0:
    raise ValueError(f'n_frames must be 0 (no trajectory) or an integer >= 2, got {n_frames!r}')


def check_grid(ts: jax.Array, x_T: jax.Array) -> tuple[jax.Array, int]:
  """The grid as an array and its number of steps n; ts must be [n + 1], n >= 1."""
  ts = jnp.asarray(ts, x_T.dtype)
  if ts.ndim != 1 or ts.shape[0] < 2:
    raise ValueError(f'ts must be a 1-D grid of at least 2 times, got shape {ts.shape}')
  if x_T.ndim < 2:
    raise ValueError(f'x_T must be [batch, ...] with at least 2 axes, got shape {x_T.shape}')
  return ts, ts.shape[0] - 1


def check_choice(name: str, value, allowed) -> None:
  if value not in allowed:
    raise ValueError(f'{name} must be one of {list(allowed)}, got {value!r}')


def vec(t: jax.Array, x: jax.Array) -> jax.Array:
  """A scalar time as the per-example times [B] of a batch x."""
  return jnp.full((x.shape[0],), t, x.dtype)


def denoise(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array) -> jax.Array:
  """D(x; t) = E[x(0) | x(t) = x] at a scalar time t."""
  return denoiser(sde, score_fn, x, vec(t, x))


class Grid(NamedTuple):
  """The coefficients of x(t) = alpha x(0) + std z on a grid, [n + 1] each."""

  alpha: jax.Array
  std: jax.Array
  log_snr: jax.Array

  @property
  def sigma(self) -> jax.Array:
    """Karras et al.'s noise level std / alpha, 0 at the final time of a denoising grid."""
    return self.std / self.alpha


def coefficients(sde: SDE, ts: jax.Array) -> Grid:
  return Grid(sde.alpha(ts), sde.std(ts), sde.log_snr(ts))


class Frames(NamedTuple):
  """Records the state before grid steps at F - 1 evenly spaced indices, then the result.

  Built outside a sampler's loop; `record` runs inside it at every step i (state
  x at time ts[i]) and `trajectory` turns the buffer into a `Trajectory`.
  """

  indices: np.ndarray  # [F] grid indices, the last being n (the returned sample)

  @classmethod
  def make(cls, n_steps: int, n_frames: int) -> 'Frames':
    check_n_frames(n_frames)
    if not n_frames:
      return cls(np.zeros((0,), np.int32))
    indices = np.round(np.linspace(0, n_steps, n_frames)).astype(np.int32)
    # More frames than grid points repeat states rather than leave empty slots.
    indices[:-1] = np.minimum(indices[:-1], n_steps - 1)
    return cls(indices)

  def init(self, x: jax.Array) -> jax.Array:
    return jnp.zeros((max(len(self.indices) - 1, 0),) + x.shape, x.dtype)

  def record(self, frames: jax.Array, i: jax.Array, x: jax.Array) -> jax.Array:
    if not len(self.indices):
      return frames
    hit = batch_broadcast(jnp.asarray(self.indices[:-1]) == i, frames)
    return jnp.where(hit, x[None], frames)

  def trajectory(self, frames: jax.Array, ts: jax.Array, x: jax.Array) -> Trajectory | None:
    if not len(self.indices):
      return None
    return Trajectory(ts[self.indices], jnp.concatenate([frames, x[None]]))


Replace = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
"""replace(rng, x [B, ...], t) -> x: a per-step hook that every sampler applies to its
state at each grid time t after a step (and to x_T), e.g. `controllable.Replacement`,
which sets the known part of an image to a draw of x(t) given the data."""


def replacer(rng: jax.Array, replace: Replace | None) -> Callable:
  """at(i, x, t): `replace` applied to the state x at grid point i (time t) with the key
  of that point, or the identity when there is no hook."""
  if replace is None:
    return lambda i, x, t: x
  # A key of its own, apart from the fold_in(rng, i) of the samplers' step noise.
  key = jax.random.fold_in(rng, np.iinfo(np.int32).max)
  return lambda i, x, t: replace(jax.random.fold_in(key, i), x, t)


def int32(n) -> jax.Array:
  return jnp.asarray(n, jnp.int32)
