"""DDIM (Song, Meng & Ermon 2021) on any SDE, in the alpha/std view.

From x_t with denoised x0 and noise eps = (x_t - alpha_t x0) / std_t, a step to s is
x_s = alpha_s x0 + std_s (sqrt(1 - c^2) eps + c z), c = eta sqrt(1 - e^{-2h}),
h = lambda_s - lambda_t. eta = 0 is the deterministic DDIM (the first-order
exponential integrator of the probability-flow ODE, Euler in sigma = std / alpha);
eta = 1 draws from the posterior q(x_s | x_t, x0) at the denoised x0, which on VP's
grid is ancestral DDPM with its posterior variance beta-tilde.
"""

import jax
import jax.numpy as jnp

from sde_lib.sampling.core import (Frames, Replace, SampleOutput, check_grid, coefficients, denoise,
                                   int32, replacer)
from sde_lib.sde import SDE, ScoreFn
from sde_lib.utils import normal


def ddim_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, *, ts: jax.Array,
                eta: float = 0.0, n_frames: int = 0,
                replace: Replace | None = None) -> SampleOutput:
  """DDIM along the grid ts; one score evaluation per step.

  Args:
    rng: PRNG key of the noise (used when eta > 0).
    sde: the forward SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    x_T: [B, ...] the starting point, a draw from the prior.
    ts: [n_steps + 1] decreasing times (see `schedules`).
    eta: 0 (deterministic) to 1 (ancestral).
    n_frames: if >= 2, also return a `Trajectory` of that many states.
    replace: a per-step hook (`core.Replace`), applied after every step.

  Returns:
    A `SampleOutput`.
  """
  if not 0.0 <= eta <= 1.0:
    raise ValueError(f'eta must lie in [0, 1], got {eta!r}')
  ts, n = check_grid(ts, x_T)
  grid = coefficients(sde, ts)
  recorder = Frames.make(n, n_frames)
  at = replacer(rng, replace)

  def body(i, carry):
    x, frames = carry
    frames = recorder.record(frames, i, x)
    x0 = denoise(sde, score_fn, x, ts[i])
    eps = (x - grid.alpha[i] * x0) / grid.std[i]
    fresh = eta * jnp.sqrt(-jnp.expm1(-2.0 * (grid.log_snr[i + 1] - grid.log_snr[i])))
    noise = jnp.sqrt(jnp.maximum(1.0 - fresh**2, 0.0)) * eps
    if eta:
      noise = noise + fresh * normal(jax.random.fold_in(rng, i), x.shape)
    return at(i + 1, grid.alpha[i + 1] * x0 + grid.std[i + 1] * noise, ts[i + 1]), frames

  x, frames = jax.lax.fori_loop(0, n, body, (at(0, jnp.asarray(x_T), ts[0]),
                                             recorder.init(x_T)))
  return SampleOutput(x, int32(n), recorder.trajectory(frames, ts, x))
