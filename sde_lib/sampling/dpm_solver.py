"""DPM-Solver++ (Lu et al. 2022b): multistep exponential integrators in data prediction.

In log-SNR lambda, the probability-flow ODE has the exact solution
x_s = (std_s / std_t) x_t + std_s int_t^s e^lambda x0(lambda) dlambda; DPM-Solver++
interpolates the denoised x0 through the last 1-3 steps' values (orders 1, 2, 3;
order 1 is DDIM) and integrates the polynomial exactly. Its SDE form (SDE-DPM-
Solver++, k-diffusion's dpmpp_*_sde) solves the reverse SDE the same way: the
data terms take 2h for h and fresh noise of std std_s sqrt(1 - e^{-2h}) is added.

Multistep: each step costs one evaluation, the first steps warm up at lower
order, and a step to sigma = 0 (the grid's last, see `schedules`) is the denoiser.

Third order. The order-3 step adds alpha_s h^3 phi_3(h) x0''(lambda) from a second
difference of the last three denoised states. The published multistep code
(DPM-Solver's `multistep_dpm_solver_third_update`, diffusers'
`multistep_dpm_solver_third_order_update`, k-diffusion's `sample_dpmpp_3m_sde`)
takes D2 = (D1_0 - D1_1) / (r0 + r1), which estimates h^2 x0'' / 2, against the
coefficient of h^2 x0'' (their single-step DPM-Solver-3 has the 2): it integrates a
quadratic x0(lambda) with half its curvature, and its "3M" converges at order 2.
Here D2 = 2 (D1_0 - D1_1) / (r0 + r1): the step is exact for quadratic x0 and 3M
converges at order 3 (tests/sde_lib/test_sampling.py checks that it is exact on a
quadratic where the published weight is not, and measures the order-3 slope).
"""

import jax
import jax.numpy as jnp

from sde_lib.sampling.core import (Frames, Replace, SampleOutput, check_grid, coefficients, denoise,
                                   int32, replacer)
from sde_lib.sde import SDE, ScoreFn
from sde_lib.utils import normal

ORDERS = (1, 2, 3)


def check_order(order) -> None:
  if isinstance(order, bool) or order not in ORDERS:
    raise ValueError(f'order must be one of {list(ORDERS)}, got {order!r}')


def step_orders(i: jax.Array, n: int, order: int, lower_order_final: bool) -> jax.Array:
  """The order of step i of n: warm-up from 1, and with lower_order_final down to 1 at the end."""
  p = jnp.minimum(order, i + 1)
  return jnp.minimum(p, n - i) if lower_order_final else p


def _sample(rng, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, *, ts: jax.Array, order: int,
            lower_order_final: bool, eta: float, n_frames: int,
            replace: Replace | None) -> SampleOutput:
  check_order(order)
  ts, n = check_grid(ts, x_T)
  grid = coefficients(sde, ts)
  lam = grid.log_snr
  recorder = Frames.make(n, n_frames)
  at = replacer(rng, replace)

  def body(i, carry):
    x, x0_1, x0_2, frames = carry  # x0_1, x0_2: the denoised states of steps i-1, i-2
    frames = recorder.record(frames, i, x)
    x0 = denoise(sde, score_fn, x, ts[i])
    alpha_s, std_s = grid.alpha[i + 1], grid.std[i + 1]
    h = lam[i + 1] - lam[i]
    h_eta = (1.0 + eta) * h
    phi_1 = jnp.expm1(-h_eta)
    # e^{-eta h} std_s / std_t; 0 at a final step to std_s = 0 (and h = inf). Every
    # quantity is finite where it is not used, so that gradients (w.r.t. ts) are too.
    finite = std_s > 0
    decay = jnp.where(finite, std_s / grid.std[i] * jnp.exp(-eta * jnp.where(finite, h, 0.0)),
                      0.0)
    x_s = decay * x - alpha_s * phi_1 * x0
    prev_1, prev_2 = jnp.maximum(i - 1, 0), jnp.maximum(i - 2, 0)
    r0 = (lam[i] - lam[prev_1]) / h
    r1 = (lam[prev_1] - lam[prev_2]) / h

    def second():
      return -0.5 * alpha_s * phi_1 * (x0 - x0_1) / r0

    def third():
      # d1 ~ h x0' and d2 ~ h^2 x0'' (x0 as a function of lambda); see the module doc
      # for the factor 2 that the published 3M code leaves out.
      d1_0, d1_1 = (x0 - x0_1) / r0, (x0_1 - x0_2) / r1
      d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
      d2 = 2.0 * (d1_0 - d1_1) / (r0 + r1)
      phi_2 = phi_1 / h_eta + 1.0
      phi_3 = phi_2 / h_eta - 0.5
      return alpha_s * (phi_2 * d1 - phi_3 * d2)

    p = jnp.where(std_s > 0, step_orders(i, n, order, lower_order_final), 1)
    x_s = x_s + jax.lax.switch(p - 1, [lambda: jnp.zeros_like(x), second, third][:order])
    if eta:
      x_s = x_s + std_s * jnp.sqrt(-jnp.expm1(-2.0 * eta * h)) * normal(
          jax.random.fold_in(rng, i), x.shape)
    return at(i + 1, x_s, ts[i + 1]), x0, x0_1, frames

  x = at(0, jnp.asarray(x_T), ts[0])
  x, *_, frames = jax.lax.fori_loop(0, n, body, (x, x, x, recorder.init(x)))
  return SampleOutput(x, int32(n), recorder.trajectory(frames, ts, x))


def dpm_solver_pp_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, *,
                         ts: jax.Array, order: int = 2, lower_order_final: bool = True,
                         n_frames: int = 0, replace: Replace | None = None) -> SampleOutput:
  """DPM-Solver++ (1, 2M, 3M) on the probability-flow ODE; one evaluation per step.

  Args:
    rng: the key of the `replace` hook's draws (the ODE itself is deterministic).
    sde: the forward SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    x_T: [B, ...] the starting point, a draw from the prior.
    ts: [n_steps + 1] decreasing times (see `schedules`).
    order: 1, 2 or 3.
    lower_order_final: drop the order at the last steps (step n-k at most order
      k), which steadies few-step sampling (Lu et al.).
    n_frames: if >= 2, also return a `Trajectory` of that many states.
    replace: a per-step hook (`core.Replace`), applied after every step.

  Returns:
    A `SampleOutput`.
  """
  return _sample(rng, sde, score_fn, x_T, ts=ts, order=order,
                 lower_order_final=lower_order_final, eta=0.0, n_frames=n_frames,
                 replace=replace)


def dpm_solver_pp_sde_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, *,
                             ts: jax.Array, order: int = 2, lower_order_final: bool = True,
                             n_frames: int = 0, replace: Replace | None = None) -> SampleOutput:
  """SDE-DPM-Solver++ (1, 2M, 3M) on the reverse SDE; one evaluation per step.

  Arguments as `dpm_solver_pp_sample`; rng draws the noise, one key per step.
  """
  return _sample(rng, sde, score_fn, x_T, ts=ts, order=order,
                 lower_order_final=lower_order_final, eta=1.0, n_frames=n_frames,
                 replace=replace)
