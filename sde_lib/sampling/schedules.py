"""Time grids: where a sampler evaluates the score, as pure functions of the SDE.

Every schedule returns [n_steps + 1] decreasing times: n_steps of them from T down
to `eps`, spaced as the schedule says, then `sde.t_from_log_snr(inf)`, the time of
sigma = 0 (0 for VP and sub-VP, -inf for VE), so that a sampler's n_steps-th and
last step is the denoising step to the data (one evaluation of the denoiser at
`eps`), as in k-diffusion and EDM. sigma = std / alpha is Karras et al.'s noise level.
"""

import jax
import jax.numpy as jnp

from sde_lib.sde import SDE


def _check(sde: SDE, n_steps, eps) -> None:
  if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
    raise ValueError(f'n_steps must be a positive integer, got {n_steps!r}')
  with jax.ensure_compile_time_eval():  # eps is a number: check it while tracing, too
    positive = 0 <= eps < sde.T and float(sde.std(jnp.asarray(eps, jnp.float32))) > 0
  if not positive:
    raise ValueError(f'eps must lie in [0, T={sde.T}) with a noise std > 0 there, got {eps!r}')


def _finish(sde: SDE, ts: jax.Array, eps: float) -> jax.Array:
  # The ends exactly: grids built through log-SNR carry its round-off.
  ts = ts.at[0].set(sde.T).at[-1].set(eps) if ts.shape[0] > 1 else jnp.full((1,), sde.T)
  return jnp.append(ts, sde.t_from_log_snr(jnp.inf))


def _from_sigmas(sde: SDE, sigmas: jax.Array) -> jax.Array:
  return sde.t_from_log_snr(-jnp.log(sigmas))


def _sigma(sde: SDE, t: float) -> jax.Array:
  t = jnp.asarray(t, jnp.float32)
  return sde.std(t) / sde.alpha(t)


def uniform(sde: SDE, n_steps: int, *, eps: float) -> jax.Array:
  """Equal steps in t from T to eps (score_sde's PC and ODE grids)."""
  _check(sde, n_steps, eps)
  return _finish(sde, jnp.linspace(sde.T, eps, n_steps), eps)


def karras(sde: SDE, n_steps: int, *, eps: float, rho: float = 7.0) -> jax.Array:
  """Karras et al.'s sigma_i = (s_max^(1/rho) + i/(n-1) (s_min^(1/rho) - s_max^(1/rho)))^rho.

  s_max and s_min are sigma(T) and sigma(eps); rho = 7 is EDM's, larger rho puts
  more steps at low noise (rho -> inf is uniform in log sigma).
  """
  _check(sde, n_steps, eps)
  if not rho > 0:
    raise ValueError(f'rho must be positive, got {rho!r}')
  s_max, s_min = _sigma(sde, sde.T) ** (1.0 / rho), _sigma(sde, eps) ** (1.0 / rho)
  ramp = jnp.linspace(0.0, 1.0, n_steps)
  return _finish(sde, _from_sigmas(sde, (s_max + ramp * (s_min - s_max)) ** rho), eps)


def logsnr(sde: SDE, n_steps: int, *, eps: float) -> jax.Array:
  """Equal steps in log-SNR lambda = -log sigma (DPM-Solver's 'logSNR' grid)."""
  _check(sde, n_steps, eps)
  lam = jnp.linspace(sde.log_snr(jnp.asarray(sde.T, jnp.float32)),
                     sde.log_snr(jnp.asarray(eps, jnp.float32)), n_steps)
  return _finish(sde, sde.t_from_log_snr(lam), eps)


def quadratic(sde: SDE, n_steps: int, *, eps: float) -> jax.Array:
  """Equal steps in sqrt(t) (DDIM's quadratic grid, DPM-Solver's 'time_quadratic')."""
  _check(sde, n_steps, eps)
  return _finish(sde, jnp.linspace(sde.T**0.5, eps**0.5, n_steps) ** 2, eps)


SCHEDULES = {'uniform': uniform, 'karras': karras, 'logsnr': logsnr, 'quadratic': quadratic}


def get_schedule(name: str):
  if name not in SCHEDULES:
    raise ValueError(f'unknown schedule {name!r}; known: {sorted(SCHEDULES)}')
  return SCHEDULES[name]
