"""Predictor-corrector sampling (Song et al. 2021, Alg. 1-5).

Predictors and correctors are built from (sde, score_fn, options) into steps
`step(rng, x, t) -> (x, x_mean)`, score_sde's update_fn shape: x_mean is the
state before the step's last noise was added. A predictor steps one of the SDE's
N levels down (Euler-Maruyama with dt = -T/N, or the reverse of DDPM's / SMLD's
discretisation); `pc_sample` runs them on an SDE with as many levels as its grid
has steps.
"""

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sde_lib.sampling.core import Frames, Replace, SampleOutput, check_grid, int32, replacer, vec
from sde_lib.sde import SDE, VESDE, VPSDE, ScoreFn, SubVPSDE, reverse
from sde_lib.utils import batch_broadcast, normal

Update = tuple[jax.Array, jax.Array]
"""(x, x_mean): the next state and its mean before the last noise was added."""
Step = Callable[[jax.Array, jax.Array, jax.Array], Update]
"""step(rng, x [B, ...], t [B]) -> (x, x_mean)."""


# Predictors: make(sde, score_fn, probability_flow) -> step


def euler_maruyama(sde: SDE, score_fn: ScoreFn, probability_flow: bool) -> Step:
  """Euler-Maruyama steps of the reverse SDE (or probability-flow ODE) with dt = -T/N."""
  rsde = reverse(sde, score_fn, probability_flow)
  dt = -sde.T / sde.N

  def step(rng, x, t):
    drift, diffusion = rsde.sde(x, t)
    x_mean = x + drift * dt
    return x_mean + batch_broadcast(diffusion, x) * jnp.sqrt(-dt) * normal(rng, x.shape), x_mean

  return step


def reverse_diffusion(sde: SDE, score_fn: ScoreFn, probability_flow: bool) -> Step:
  """Steps of the reverse of the forward discretisation (DDPM/SMLD/Euler-Maruyama)."""
  rsde = reverse(sde, score_fn, probability_flow)

  def step(rng, x, t):
    rev_f, rev_G = rsde.discretize(x, t)
    x_mean = x - rev_f
    return x_mean + batch_broadcast(rev_G, x) * normal(rng, x.shape), x_mean

  return step


def _ancestral_coefficients(sde: SDE, t: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(a, v, var) for the step x_s = (x_t + v score) / a + sqrt(var) z, s one level below t.

  With x_t = a x_s + sqrt(v) noise, (x_t + v score) / a is the mean of
  q(x_s | x_t, x_0) at Tweedie's estimate of x_0. VE and VP use their discrete
  schedules as in SMLD and DDPM (DDPM's variance is beta, not the posterior's);
  any other SDE uses its continuous marginals at t and t - T/N and the posterior
  variance.
  """
  if isinstance(sde, VESDE):
    sigma, adjacent = sde.discrete_sigma_pair(t)
    v = sigma**2 - adjacent**2
    return jnp.ones_like(sigma), v, v * adjacent**2 / sigma**2
  if isinstance(sde, VPSDE):
    beta = jnp.asarray(sde.discrete_betas)[sde.timestep(t)]
    return jnp.sqrt(1.0 - beta), beta, beta
  s = jnp.maximum(t - sde.T / sde.N, 0.0)
  a = sde.alpha(t) / sde.alpha(s)
  v = sde.std(t) ** 2 - a**2 * sde.std(s) ** 2
  return a, v, v * sde.std(s) ** 2 / sde.std(t) ** 2


def ancestral_sampling(sde: SDE, score_fn: ScoreFn, probability_flow: bool) -> Step:
  """Ancestral steps: draws from the discrete-time posterior (DDPM, SMLD)."""
  if probability_flow:
    raise ValueError('ancestral_sampling has no probability-flow form; use '
                     "'euler_maruyama' or 'reverse_diffusion' with probability_flow=True")

  def step(rng, x, t):
    a, v, var = _ancestral_coefficients(sde, t)
    x_mean = (x + batch_broadcast(v, x) * score_fn(x, t)) / batch_broadcast(a, x)
    return x_mean + batch_broadcast(jnp.sqrt(var), x) * normal(rng, x.shape), x_mean

  return step


def no_predictor(sde: SDE, score_fn: ScoreFn, probability_flow: bool) -> Step:
  """Leaves x unchanged (corrector-only sampling, e.g. annealed Langevin dynamics)."""
  del sde, score_fn, probability_flow
  return lambda rng, x, t: (x, x)


# Correctors: make(sde, score_fn, snr, n_steps) -> step


def _langevin_alpha(sde: SDE, t: jax.Array) -> jax.Array:
  # Song et al. scale the step by alpha_i = 1 - beta_i for the beta schedules;
  # sub-VP shares VP's betas (the original code crashed here looking them up).
  if isinstance(sde, (VPSDE, SubVPSDE)):
    return jnp.asarray(sde.alphas)[sde.timestep(t)]
  return jnp.ones_like(t)


def _langevin_loop(rng, x, t, score_fn: ScoreFn, n_steps: int,
                   step_size_fn: Callable[[jax.Array, jax.Array], jax.Array]) -> Update:
  """n_steps of x <- x + eps grad + sqrt(2 eps) z with eps = step_size_fn(grad, z) [B]."""

  def body(i, carry):
    x, _ = carry
    grad = score_fn(x, t)
    z = normal(jax.random.fold_in(rng, i), x.shape)
    step_size = batch_broadcast(step_size_fn(grad, z), x)
    x_mean = x + step_size * grad
    return x_mean + jnp.sqrt(2.0 * step_size) * z, x_mean

  return jax.lax.fori_loop(0, n_steps, body, (x, x))


def _mean_norm(v: jax.Array) -> jax.Array:
  return jnp.mean(jnp.linalg.norm(v.reshape(v.shape[0], -1), axis=-1))


def langevin(sde: SDE, score_fn: ScoreFn, snr: float, n_steps: int) -> Step:
  """Langevin MCMC with the step size set by the signal-to-noise ratio `snr` (Alg. 4/5).

  eps = 2 alpha (snr ||z|| / ||score||)^2 with both norms averaged over the
  batch, as in Song et al.'s code: per-example norms give heavy-tailed steps in
  low dimensions, where ||score|| nears zero at the modes. The step therefore
  depends on the rest of the batch, the one sampler choice that does.
  """

  def step(rng, x, t):
    alpha = _langevin_alpha(sde, t)
    return _langevin_loop(
        rng, x, t, score_fn, n_steps,
        lambda grad, z: 2.0 * alpha * (snr * _mean_norm(z) / _mean_norm(grad)) ** 2)

  return step


def ald(sde: SDE, score_fn: ScoreFn, snr: float, n_steps: int) -> Step:
  """Annealed Langevin dynamics of NCSN: eps = 2 alpha (snr std(t))^2."""

  def step(rng, x, t):
    step_size = 2.0 * _langevin_alpha(sde, t) * (snr * sde.std(t)) ** 2
    return _langevin_loop(rng, x, t, score_fn, n_steps, lambda grad, z: step_size)

  return step


def no_corrector(sde: SDE, score_fn: ScoreFn, snr: float, n_steps: int) -> Step:
  """Leaves x unchanged (predictor-only sampling)."""
  del sde, score_fn, snr, n_steps
  return lambda rng, x, t: (x, x)


class _Method(NamedTuple):
  make: Callable[..., Step]
  evaluates_score: bool


PREDICTORS = {
    'euler_maruyama': _Method(euler_maruyama, True),
    'reverse_diffusion': _Method(reverse_diffusion, True),
    'ancestral_sampling': _Method(ancestral_sampling, True),
    'none': _Method(no_predictor, False),
}
CORRECTORS = {
    'langevin': _Method(langevin, True),
    'ald': _Method(ald, True),
    'none': _Method(no_corrector, False),
}


def _lookup(table: dict, kind: str, name: str) -> _Method:
  if name not in table:
    raise ValueError(f'unknown {kind} {name!r}; known: {sorted(table)}')
  return table[name]


def pc_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, *, ts: jax.Array,
              predictor: str = 'reverse_diffusion', corrector: str = 'langevin',
              snr: float = 0.16, corrector_steps: int = 1, probability_flow: bool = False,
              denoise: bool = True, n_frames: int = 0,
              replace: Replace | None = None) -> SampleOutput:
  """Predictor-corrector sampling: a corrector, then a predictor, at each of ts[:-1].

  The predictors step one level of `sde` with as many levels as the grid has
  steps, so ts must be the uniform grid (`schedules.uniform`); its last time is
  where the last predictor step lands.

  Args:
    rng: PRNG key of the sampler's noise.
    sde: the forward SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    x_T: [B, ...] the starting point, a draw from the prior.
    ts: [n_steps + 1] the uniform grid from T; n_steps >= 2 levels.
    predictor: one of PREDICTORS.
    corrector: one of CORRECTORS.
    snr: the corrector's signal-to-noise ratio.
    corrector_steps: corrector steps per level.
    probability_flow: predict along the probability-flow ODE instead of the reverse SDE.
    denoise: return the last step's mean, without its noise (score_sde's noise removal).
    n_frames: if >= 2, also return a `Trajectory` of that many states.
    replace: a per-step hook (`core.Replace`), applied after every corrector and
      predictor step, as score_sde's inpainter and colorizer do.

  Returns:
    A `SampleOutput`.
  """
  predictor_method = _lookup(PREDICTORS, 'predictor', predictor)
  corrector_method = _lookup(CORRECTORS, 'corrector', corrector)
  if isinstance(corrector_steps, bool) or not isinstance(corrector_steps, int) or (
      corrector_steps < 1):
    raise ValueError(f'corrector_steps must be a positive integer, got {corrector_steps!r}')
  ts, n = check_grid(ts, x_T)
  if n < 2:
    raise ValueError(f'pc needs at least 2 levels (n_steps >= 2), got {n}')
  levels = sde if sde.N == n else dataclasses.replace(sde, N=n)
  predictor_step = predictor_method.make(levels, score_fn, probability_flow)
  corrector_step = corrector_method.make(levels, score_fn, snr, corrector_steps)
  recorder = Frames.make(n, n_frames)
  at = replacer(rng, replace)
  x = at(0, jnp.asarray(x_T), ts[0])

  def body(i, carry):
    x, _, frames = carry
    frames = recorder.record(frames, i, x)
    t = vec(ts[i], x)
    step_rng = jax.random.fold_in(rng, i)
    x, x_mean = corrector_step(jax.random.fold_in(step_rng, 0), x, t)
    x = at(i, x, ts[i])
    x, x_mean = predictor_step(jax.random.fold_in(step_rng, 1), x, t)
    return at(i + 1, x, ts[i + 1]), x_mean, frames

  x, x_mean, frames = jax.lax.fori_loop(0, n, body, (x, x, recorder.init(x)))
  nfe = n * (int(predictor_method.evaluates_score) +
             corrector_steps * int(corrector_method.evaluates_score))
  x = x_mean if denoise else x
  return SampleOutput(x, int32(nfe), recorder.trajectory(frames, ts, x))
