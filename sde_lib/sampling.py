"""Samplers: predictor-corrector (Song et al. 2021, Alg. 1-5) and probability-flow ODE.

Every sampler has the signature `sample(rng, sde, score_fn, shape, *, ...) ->
(x, nfe)` with `nfe` the number of score evaluations, and compiles to a single
XLA program: the time loop is a `lax.fori_loop` (PC) or a diffrax solve (ODE).
Noise for example i comes from `fold_in(key, i)`, so a sample does not depend on
the batch it was drawn in (except through the Langevin corrector's step size).
With `n_frames > 0` a sampler also returns a `Trajectory` of intermediate states.
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from sde_lib.sde import SDE, VESDE, VPSDE, ScoreFn, SubVPSDE, reverse
from sde_lib.utils import batch_broadcast, normal

Update = tuple[jax.Array, jax.Array]
"""(x, x_mean): the next state and its mean before the last noise was added."""


class Trajectory(NamedTuple):
  """States of a sampler on its way from the prior to the data.

  Attributes:
    t: [F] decreasing times from t[0] = T (the prior draw) to t[-1], the time of
      the returned sample: eps after the ODE, 0 after a final step from eps
      (a PC sampler's last predictor step, or the ODE's denoising step).
    x: [F, B, ...] the states at those times; x[-1] is the returned sample.
  """

  t: jax.Array
  x: jax.Array


def _check_n_frames(n_frames) -> None:
  if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames == 1 or n_frames < 0:
    raise ValueError(f'n_frames must be 0 (no trajectory) or an integer >= 2, got {n_frames!r}')


def _vec(t: jax.Array, x: jax.Array) -> jax.Array:
  return jnp.full((x.shape[0],), t, x.dtype)


# Predictors: predictor(rng, x, t, sde, score_fn, probability_flow) -> (x, x_mean)


def euler_maruyama(rng, x, t, sde: SDE, score_fn: ScoreFn, probability_flow: bool) -> Update:
  """One Euler-Maruyama step of the reverse SDE (or probability-flow ODE) with dt = -T/N."""
  dt = -sde.T / sde.N
  drift, diffusion = reverse(sde, score_fn, probability_flow).sde(x, t)
  x_mean = x + drift * dt
  return x_mean + batch_broadcast(diffusion, x) * jnp.sqrt(-dt) * normal(rng, x.shape), x_mean


def reverse_diffusion(rng, x, t, sde: SDE, score_fn: ScoreFn, probability_flow: bool) -> Update:
  """One step of the reverse of the forward discretisation (DDPM/SMLD/Euler-Maruyama)."""
  rev_f, rev_G = reverse(sde, score_fn, probability_flow).discretize(x, t)
  x_mean = x - rev_f
  return x_mean + batch_broadcast(rev_G, x) * normal(rng, x.shape), x_mean


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
  ones = jnp.ones((t.shape[0], 1), t.dtype)
  (m_t, std_t), (m_s, std_s) = sde.marginal_prob(ones, t), sde.marginal_prob(ones, s)
  a = m_t[:, 0] / m_s[:, 0]
  v = std_t**2 - a**2 * std_s**2
  return a, v, v * std_s**2 / std_t**2


def ancestral_sampling(rng, x, t, sde: SDE, score_fn: ScoreFn, probability_flow: bool) -> Update:
  """One ancestral step: a draw from the discrete-time posterior (DDPM, SMLD)."""
  if probability_flow:
    raise ValueError('ancestral_sampling has no probability-flow form; use '
                     "'euler_maruyama' or 'reverse_diffusion' with probability_flow=True")
  a, v, var = _ancestral_coefficients(sde, t)
  x_mean = (x + batch_broadcast(v, x) * score_fn(x, t)) / batch_broadcast(a, x)
  return x_mean + batch_broadcast(jnp.sqrt(var), x) * normal(rng, x.shape), x_mean


def no_predictor(rng, x, t, sde, score_fn, probability_flow) -> Update:
  """Leaves x unchanged (corrector-only sampling, e.g. annealed Langevin dynamics)."""
  del rng, t, sde, score_fn, probability_flow
  return x, x


# Correctors: corrector(rng, x, t, sde, score_fn, snr, n_steps) -> (x, x_mean)


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


def langevin(rng, x, t, sde: SDE, score_fn: ScoreFn, snr: float, n_steps: int) -> Update:
  """Langevin MCMC with the step size set by the signal-to-noise ratio `snr` (Alg. 4/5).

  eps = 2 alpha (snr ||z|| / ||score||)^2 with both norms averaged over the
  batch, as in Song et al.'s code: per-example norms give heavy-tailed steps in
  low dimensions, where ||score|| nears zero at the modes. The step therefore
  depends on the rest of the batch, the one sampler choice that does.
  """
  alpha = _langevin_alpha(sde, t)
  return _langevin_loop(rng, x, t, score_fn, n_steps,
                        lambda grad, z: 2.0 * alpha * (snr * _mean_norm(z) / _mean_norm(grad)) ** 2)


def ald(rng, x, t, sde: SDE, score_fn: ScoreFn, snr: float, n_steps: int) -> Update:
  """Annealed Langevin dynamics of NCSN: eps = 2 alpha (snr std(t))^2."""
  alpha = _langevin_alpha(sde, t)
  std = sde.marginal_prob(x, t)[1]
  step_size = 2.0 * alpha * (snr * std) ** 2
  return _langevin_loop(rng, x, t, score_fn, n_steps, lambda grad, z: step_size)


def no_corrector(rng, x, t, sde, score_fn, snr, n_steps) -> Update:
  """Leaves x unchanged (predictor-only sampling)."""
  del rng, t, sde, score_fn, snr, n_steps
  return x, x


class _Method(NamedTuple):
  update: Callable[..., Update]
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


def _initial_state(rng, sde: SDE, shape: Sequence[int], x_T: jax.Array | None) -> jax.Array:
  shape = tuple(shape)
  if len(shape) < 2:
    raise ValueError(f'shape must be [batch, ...] with at least 2 axes, got {shape}')
  if x_T is None:
    return sde.prior_sampling(rng, shape)
  if tuple(x_T.shape) != shape:
    raise ValueError(f'x_T has shape {tuple(x_T.shape)} but shape is {shape}')
  return jnp.asarray(x_T)


def _check_n_steps(n_steps) -> None:
  if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
    raise ValueError(f'n_steps must be a positive integer, got {n_steps!r}')


def _check_eps(sde: SDE, eps: float) -> None:
  if not 0 < eps < sde.T:
    raise ValueError(f'eps must lie in (0, T={sde.T}), got {eps!r}')


def pc_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, shape: Sequence[int], *,
              predictor: str = 'reverse_diffusion', corrector: str = 'langevin',
              snr: float = 0.16, n_steps: int = 1, probability_flow: bool = False,
              denoise: bool = True, eps: float = 1e-3,
              x_T: jax.Array | None = None, n_frames: int = 0):
  """Predictor-corrector sampling over the N levels of `sde`, from T down to eps.

  Args:
    rng: PRNG key.
    sde: the forward SDE; its N sets the number of predictor steps.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    shape: [B, ...] of the samples.
    predictor: one of PREDICTORS.
    corrector: one of CORRECTORS.
    snr: the corrector's signal-to-noise ratio.
    n_steps: corrector steps per noise level.
    probability_flow: predict along the probability-flow ODE instead of the reverse SDE.
    denoise: return the last step's mean, without its noise (Tweedie-like denoising).
    eps: the last time, in (0, T); avoids the singular score at t = 0.
    x_T: optional starting point [B, ...]; drawn from the prior if None.
    n_frames: if >= 2, also record the returned sample and the state at the
      start of n_frames - 1 evenly spaced levels, the first being x_T.

  Returns:
    (samples [B, ...], number of score evaluations), and with n_frames a
    `Trajectory` as a third element; recording leaves the samples as they are.
  """
  predictor_method = _lookup(PREDICTORS, 'predictor', predictor)
  corrector_method = _lookup(CORRECTORS, 'corrector', corrector)
  _check_n_steps(n_steps)
  _check_eps(sde, eps)
  _check_n_frames(n_frames)
  prior_rng, loop_rng = jax.random.split(rng)
  x = _initial_state(prior_rng, sde, shape, x_T)
  timesteps = jnp.linspace(sde.T, eps, sde.N)
  # Levels whose starting state is a frame; the output, after level N - 1, is the last.
  frame_levels = np.round(np.linspace(0, sde.N, max(n_frames, 2))[:-1]).astype(np.int32)
  frames = jnp.zeros((max(n_frames - 1, 0),) + x.shape, x.dtype)

  def body(i, carry):
    x, _, frames = carry
    if n_frames:
      hit = batch_broadcast(jnp.asarray(frame_levels) == i, frames)
      frames = jnp.where(hit, x[None], frames)
    t = _vec(timesteps[i], x)
    step_rng = jax.random.fold_in(loop_rng, i)
    x, x_mean = corrector_method.update(
        jax.random.fold_in(step_rng, 0), x, t, sde, score_fn, snr, n_steps)
    x, x_mean = predictor_method.update(
        jax.random.fold_in(step_rng, 1), x, t, sde, score_fn, probability_flow)
    return x, x_mean, frames

  x, x_mean, frames = jax.lax.fori_loop(0, sde.N, body, (x, x, frames))
  nfe = sde.N * (int(predictor_method.evaluates_score) +
                 n_steps * int(corrector_method.evaluates_score))
  x = x_mean if denoise else x
  if not n_frames:
    return x, nfe
  return x, nfe, Trajectory(jnp.append(timesteps[frame_levels], 0.0),
                            jnp.concatenate([frames, x[None]]))


class _Solver(NamedTuple):
  make: Callable[[], diffrax.AbstractSolver]
  adaptive: bool
  evals_per_step: int
  first_same_as_last: bool


SOLVERS = {
    'dopri5': _Solver(diffrax.Dopri5, True, 6, True),
    'tsit5': _Solver(diffrax.Tsit5, True, 6, True),
    'heun': _Solver(diffrax.Heun, False, 2, False),
    'euler': _Solver(diffrax.Euler, False, 1, False),
}


def solve_ode(vector_field: Callable, y0, t0: float, t1: float, *, method: str,
              rtol: float, atol: float, n_steps: int, max_steps: int,
              ts: jax.Array | None = None):
  """Solves dy/dt = vector_field(t, y) from t0 to t1 with diffrax.

  Adaptive methods start from the step (t1 - t0) / n_steps and control the error
  with rtol/atol; fixed-step methods take exactly n_steps steps.

  Returns:
    (y(t1), number of vector-field evaluations); with `ts` (times from t0 to t1,
    ending at t1), y at each of them, stacked on a leading axis, instead of y(t1).
  """
  solver = _lookup(SOLVERS, 'ODE method', method)
  _check_n_steps(n_steps)
  controller = (diffrax.PIDController(rtol=rtol, atol=atol) if solver.adaptive
                else diffrax.ConstantStepSize())
  sol = diffrax.diffeqsolve(
      diffrax.ODETerm(lambda t, y, args: vector_field(t, y)), solver.make(),
      t0=t0, t1=t1, dt0=(t1 - t0) / n_steps, y0=y0,
      stepsize_controller=controller,
      saveat=diffrax.SaveAt(t1=True) if ts is None else diffrax.SaveAt(ts=ts),
      max_steps=max(max_steps, n_steps))
  nfe = sol.stats['num_steps'] * solver.evals_per_step + int(solver.first_same_as_last)
  return (sol.ys if ts is not None else jax.tree.map(lambda y: y[-1], sol.ys)), nfe


def ode_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, shape: Sequence[int], *,
               rtol: float = 1e-5, atol: float = 1e-5, method: str = 'dopri5',
               eps: float = 1e-3, denoise: bool = False, x_T: jax.Array | None = None,
               n_steps: int = 100, max_steps: int = 4096, n_frames: int = 0):
  """Samples by solving the probability-flow ODE from T to eps with diffrax.

  Args:
    rng: PRNG key (prior draw; unused when x_T is given).
    sde: the forward SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    shape: [B, ...] of the samples.
    rtol, atol: tolerances of the adaptive methods.
    method: one of SOLVERS: 'dopri5', 'tsit5' (adaptive), 'heun', 'euler' (fixed step).
    eps: the last time, in (0, T).
    denoise: finish with one reverse-diffusion mean step at eps (one more evaluation).
    x_T: optional initial noise [B, ...]; drawn from the prior if None.
    n_steps: number of steps of the fixed-step methods; initial step of the others.
    max_steps: cap on the adaptive solver's steps.
    n_frames: if >= 2, also record the solution at n_frames evenly spaced times
      from T to eps, and with `denoise` the denoised sample in place of the last.

  Returns:
    (samples [B, ...], number of score evaluations as a scalar array), and with
    n_frames a `Trajectory` as a third element; recording leaves the samples as they are.
  """
  _check_eps(sde, eps)
  _check_n_frames(n_frames)
  x = _initial_state(rng, sde, shape, x_T)
  rsde = reverse(sde, score_fn, probability_flow=True)
  ts = jnp.linspace(sde.T, eps, n_frames) if n_frames else None
  x, nfe = solve_ode(lambda t, y: rsde.sde(y, _vec(t, y))[0], x, sde.T, eps,
                     method=method, rtol=rtol, atol=atol, n_steps=n_steps,
                     max_steps=max_steps, ts=ts)
  frames, x = (x, x[-1]) if n_frames else (None, x)
  if denoise:
    _, x = reverse_diffusion(rng, x, _vec(eps, x), sde, score_fn, False)
    nfe = nfe + 1
  if not n_frames:
    return x, nfe
  return x, nfe, Trajectory(ts.at[-1].set(0.0) if denoise else ts, frames.at[-1].set(x))
