"""The diffrax solve shared by the probability-flow sampler and the likelihood."""

from collections.abc import Callable
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp


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


def get_solver(method: str) -> _Solver:
  if method not in SOLVERS:
    raise ValueError(f'unknown ODE method {method!r}; known: {sorted(SOLVERS)}')
  return SOLVERS[method]


def solve_ode(vector_field: Callable, y0, t0, t1, *, method: str, rtol: float, atol: float,
              n_steps: int, max_steps: int, step_ts: jax.Array | None = None,
              save_ts: jax.Array | None = None):
  """Solves dy/dt = vector_field(t, y) from t0 to t1 with diffrax.

  Adaptive methods start from the step (t1 - t0) / n_steps and control the error
  with rtol/atol; fixed-step methods take n_steps equal steps, or step along
  `step_ts` (times from t0 to t1, both included) when it is given.

  Returns:
    (y(t1), number of vector-field evaluations); with `save_ts` (times in [t0, t1]
    in the direction of integration), y at each of them, stacked on a leading
    axis, instead of y(t1).
  """
  solver = get_solver(method)
  if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
    raise ValueError(f'n_steps must be a positive integer, got {n_steps!r}')
  if solver.adaptive:
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
  elif step_ts is not None:
    controller = diffrax.StepTo(ts=step_ts)
  else:
    controller = diffrax.ConstantStepSize()
  solver_state = None
  if solver.first_same_as_last:
    # diffrax's FSAL solvers evaluate the first stage again after every rejected
    # first step, which no statistic counts; handing them f(t0, y0) makes the
    # cost exactly 1 + 6 per step attempt.
    solver_state = (jnp.array(False), vector_field(t0, y0))
  sol = diffrax.diffeqsolve(
      diffrax.ODETerm(lambda t, y, args: vector_field(t, y)), solver.make(),
      t0=t0, t1=t1, dt0=None if step_ts is not None and not solver.adaptive
      else (t1 - t0) / n_steps, y0=y0, stepsize_controller=controller,
      saveat=diffrax.SaveAt(t1=True) if save_ts is None else diffrax.SaveAt(ts=save_ts),
      max_steps=max(max_steps, n_steps), solver_state=solver_state)
  nfe = sol.stats['num_steps'] * solver.evals_per_step + int(solver.first_same_as_last)
  return (sol.ys if save_ts is not None else jax.tree.map(lambda y: y[-1], sol.ys)), nfe
