"""The probability-flow ODE in t, solved with diffrax (Song et al. 2021, Sec. 4.3)."""

import jax
import jax.numpy as jnp

from sde_lib.ode import get_solver, solve_ode
from sde_lib.sampling.core import (Frames, Replace, SampleOutput, check_grid, coefficients,
                                   denoise, int32, replacer, vec)
from sde_lib.sde import SDE, ScoreFn, reverse
from sde_lib.utils import batch_broadcast


def ode_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, *, ts: jax.Array,
               solver: str = 'dopri5', rtol: float = 1e-5, atol: float = 1e-5,
               max_steps: int = 4096, n_frames: int = 0,
               replace: Replace | None = None) -> SampleOutput:
  """Solves the probability-flow ODE from ts[0] to ts[-2], then takes one last DDIM step.

  Fixed-step methods ('euler', 'heun') step along ts[:-1]; adaptive ones ('dopri5',
  'tsit5') only use its ends, unless a `replace` hook is given: then each interval of
  ts[:-1] is a solve of its own (one step of a fixed-step method) and the hook applies
  at its end. The last interval, ts[-2] -> ts[-1], is one
  first-order exponential-integrator (DDIM) step, which on a grid ending at
  sigma = 0 (every schedule's) is the denoiser's output: one evaluation.

  Args:
    rng: the key of the `replace` hook's draws (the ODE itself is deterministic).
    sde: the forward SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    x_T: [B, ...] the starting point, a draw from the prior.
    ts: [n_steps + 1] decreasing times.
    solver: 'dopri5', 'tsit5' (adaptive), 'heun' or 'euler' (fixed step).
    rtol, atol: tolerances of the adaptive methods.
    max_steps: cap on the adaptive solver's steps.
    n_frames: if >= 2, also return a `Trajectory` of that many states.
    replace: a per-step hook (`core.Replace`), applied at every time of ts.

  Returns:
    A `SampleOutput`.
  """
  adaptive = get_solver(solver).adaptive
  ts, n = check_grid(ts, x_T)
  recorder = Frames.make(n, n_frames)
  at = replacer(rng, replace)
  x = at(0, jnp.asarray(x_T), ts[0])
  frames = recorder.init(x)
  nfe = int32(0)
  rsde = reverse(sde, score_fn, probability_flow=True)
  field = lambda t, y: rsde.sde(y, vec(t, y))[0]
  if n > 1 and replace is not None:

    def body(i, carry):
      x, nfe, frames = carry
      frames = recorder.record(frames, i, x)
      x, evals = solve_ode(field, x, ts[i], ts[i + 1], method=solver, rtol=rtol, atol=atol,
                           n_steps=1, max_steps=max_steps)
      return at(i + 1, x, ts[i + 1]), nfe + evals, frames

    x, nfe, frames = jax.lax.fori_loop(0, n - 1, body, (x, nfe, frames))
    frames = recorder.record(frames, n - 1, x)
  elif n > 1:
    # The frames' times, then ts[-2]: the end of the solve is the last saved state.
    save = jnp.append(ts[recorder.indices[:-1]], ts[-2]) if n_frames else None
    x, nfe = solve_ode(field, x, ts[0], ts[-2],
                       method=solver, rtol=rtol, atol=atol, n_steps=n - 1, max_steps=max_steps,
                       step_ts=None if adaptive else ts[:-1], save_ts=save)
    if n_frames:
      frames, x = x[:-1], x[-1]
  elif n_frames:  # one step: every frame but the last is x_T
    frames = jnp.broadcast_to(x[None], frames.shape)
  x = at(n, _ddim_step(sde, score_fn, x, ts[-2], ts[-1]), ts[-1])
  return SampleOutput(x, int32(nfe) + 1, recorder.trajectory(frames, ts, x))


def _ddim_step(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array, s: jax.Array):
  """x(s) from x(t) by one deterministic DDIM step; the denoiser's output when std(s) = 0."""
  grid = coefficients(sde, jnp.stack([t, s]))
  x0 = denoise(sde, score_fn, x, t)
  return (batch_broadcast(grid.alpha[1], x) * x0
          + batch_broadcast(grid.std[1] / grid.std[0], x) * (x - grid.alpha[0] * x0))
