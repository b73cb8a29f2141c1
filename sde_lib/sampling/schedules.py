"""Time grids: where a sampler evaluates the score, as pure functions of the SDE.

Every schedule returns [n_steps + 1] decreasing times: n_steps of them from T down
to `eps`, spaced as the schedule says, then `sde.t_from_log_snr(inf)`, the time of
sigma = 0 (0 for VP and sub-VP, -inf for VE), so that a sampler's n_steps-th and
last step is the denoising step to the data (one evaluation of the denoiser at
`eps`), as in k-diffusion and EDM. sigma = std / alpha is Karras et al.'s noise level.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from sde_lib.sde import SDE, ScoreFn


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


def fit(sampler: Callable, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, x_0: jax.Array,
        ts: jax.Array, *, steps: int = 200, learning_rate: float = 0.05,
        **options) -> jax.Array:
  """A grid fitted to a sampler and a score: the inner times of ts moved to make
  sampler(x_T) land on x_0, as in Watson et al.'s learned schedules and Sabour et al.'s
  Align Your Steps.

  x_0 are accurate endpoints of the same x_T (e.g. `sampling.ode_sample` at tight
  tolerances, or many steps of any sampler); fit on draws that the fitted grid will
  not be judged on. ts[0], ts[-2] and ts[-1] stay; the inner times move in log-SNR,
  as a softmax of their spacings (so they stay ordered), by Adam on the gradient of the
  mean squared error through the sampler (every sampler is differentiable in ts).

  Args:
    sampler: one of `sampling.SAMPLERS`, called with ts and the options.
    sde, score_fn: as for the sampler.
    x_T: [B, ...] draws from the prior; x_0: [B, ...] their accurate endpoints.
    ts: [n_steps + 1] the grid to start from (e.g. `karras` or `logsnr`).
    steps: Adam steps; learning_rate: its step size.
    **options: the sampler's keyword arguments.

  Returns:
    The fitted grid, [n_steps + 1].
  """
  ts = jnp.asarray(ts, x_T.dtype)
  if ts.shape[0] < 4:
    return ts
  lam_start, lam_end = sde.log_snr(ts[0]), sde.log_snr(ts[-2])

  def grid(w):
    fraction = jnp.concatenate([jnp.zeros(1), jnp.cumsum(jax.nn.softmax(w))])
    inner = sde.t_from_log_snr(lam_start + fraction * (lam_end - lam_start))
    return jnp.concatenate([ts[:1], inner[1:-1], ts[-2:]])

  def loss(w):
    x = sampler(None, sde, score_fn, x_T, ts=grid(w), **options).x
    return jnp.mean(jnp.square(x - x_0))

  w = jnp.log(jnp.diff(sde.log_snr(ts[:-1])) / (lam_end - lam_start))
  optimizer = optax.adam(learning_rate)
  state = optimizer.init(w)

  @jax.jit
  def update(w, state):
    updates, state = optimizer.update(jax.grad(loss)(w), state)
    return optax.apply_updates(w, updates), state

  for _ in range(steps):
    w, state = update(w, state)
  return grid(w)
