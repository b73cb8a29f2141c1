"""EDM's Heun sampler (Karras et al. 2022, Algorithms 1 and 2) on any SDE.

EDM works with x / alpha and sigma = std / alpha, in which every SDE's
probability-flow ODE is dx/dsigma = (x - D(x; sigma)) / sigma. Each step is Heun's
method from sigma_i to sigma_{i+1}, and Euler's when sigma_{i+1} = 0. With
`s_churn` > 0 it first raises the noise to sigma_hat = (1 + gamma) sigma_i by adding
fresh noise (gamma = min(s_churn / n_steps, sqrt(2) - 1) for sigma_i in [s_min,
s_max], else 0): Algorithm 2, the stochastic sampler; s_churn = 0 is Algorithm 1.
"""

import math

import jax
import jax.numpy as jnp

from sde_lib.sampling.core import (Frames, Replace, SampleOutput, check_grid, coefficients, denoise,
                                   int32, replacer)
from sde_lib.sde import SDE, ScoreFn
from sde_lib.utils import normal


def edm_heun_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, *,
                    ts: jax.Array, s_churn: float = 0.0, s_min: float = 0.0,
                    s_max: float = math.inf, s_noise: float = 1.0,
                    n_frames: int = 0, replace: Replace | None = None) -> SampleOutput:
  """EDM's Heun sampler along the grid ts (use the 'karras' schedule for EDM's).

  Args:
    rng: PRNG key of the churn noise.
    sde: the forward SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    x_T: [B, ...] the starting point, a draw from the prior.
    ts: [n_steps + 1] decreasing times (see `schedules`).
    s_churn: total stochasticity; 0 is the deterministic sampler.
    s_min, s_max: the range of sigma where noise is added.
    s_noise: scale of the added noise (EDM: slightly above 1 offsets the
      denoiser's loss of detail).
    n_frames: if >= 2, also return a `Trajectory` of that many states.
    replace: a per-step hook (`core.Replace`), applied after every step.

  Returns:
    A `SampleOutput`; NFE = 2 n_steps - 1 on a grid ending at sigma = 0.
  """
  if not s_churn >= 0 or not s_noise >= 0 or not 0 <= s_min <= s_max:
    raise ValueError(f'need s_churn >= 0, s_noise >= 0 and 0 <= s_min <= s_max, got '
                     f's_churn={s_churn!r}, s_noise={s_noise!r}, s_min={s_min!r}, s_max={s_max!r}')
  ts, n = check_grid(ts, x_T)
  grid = coefficients(sde, ts)
  sigma = grid.sigma
  recorder = Frames.make(n, n_frames)
  gamma = min(s_churn / n, math.sqrt(2.0) - 1.0)
  at = replacer(rng, replace)

  def derivative(x, t, s):
    """dx/dsigma at x (= x(t) / alpha(t)) and sigma s = sigma(t)."""
    alpha = sde.alpha(t)
    return (x - denoise(sde, score_fn, alpha * x, t)) / s

  def body(i, carry):
    x, frames = carry
    frames = recorder.record(frames, i, x)
    y = x / grid.alpha[i]
    s, s_next, t = sigma[i], sigma[i + 1], ts[i]
    if gamma > 0:
      churn = (s_min <= s) & (s <= s_max)
      z = normal(jax.random.fold_in(rng, i), x.shape)
      # sqrt(s_hat^2 - s^2), written so that no rounding can make it imaginary.
      y = y + jnp.where(churn, s * math.sqrt((1.0 + gamma) ** 2 - 1.0), 0.0) * s_noise * z
      s_hat = jnp.where(churn, (1.0 + gamma) * s, s)
      t = jnp.where(churn, sde.t_from_log_snr(-jnp.log(s_hat)), t)
      s = s_hat
    d = derivative(y, t, s)
    euler = y + (s_next - s) * d

    def heun():
      return y + (s_next - s) * 0.5 * (d + derivative(euler, ts[i + 1], s_next))

    y = jax.lax.cond(s_next > 0, heun, lambda: euler)
    return at(i + 1, grid.alpha[i + 1] * y, ts[i + 1]), frames

  x, frames = jax.lax.fori_loop(0, n, body, (at(0, jnp.asarray(x_T), ts[0]),
                                             recorder.init(x_T)))
  nfe = n + jnp.sum(sigma[1:] > 0)
  return SampleOutput(x, int32(nfe), recorder.trajectory(frames, ts, x))
