"""Samplers of every SDE, behind one contract.

Every sampler is

  sampler(rng, sde, score_fn, x_T, *, ts, **options) -> SampleOutput(x, nfe, trajectory)

with `ts` [n_steps + 1] the decreasing times it steps through (a `schedules` grid,
or any other), `nfe` an int32 array counting every score evaluation (the final
denoising step included) and `trajectory` None unless `n_frames` >= 2 was asked
for. The caller draws (and shards) x_T, e.g. `sde.prior_sampling(key, shape)`.
Every sampler also takes `replace`, a per-step hook (`core.Replace`) that it applies to
x_T and to its state after each step: `controllable.Replacement` uses it for inpainting
and colorization.
Each sampler compiles to one XLA program (one `lax.fori_loop` or diffrax solve),
draws the noise of example i from `fold_in(key, i)` and never mixes examples
(the Langevin corrector's batch-averaged step size is the one exception), so it
runs data-parallel when x_T is sharded.

`sample(method, ...)` names a sampler of SAMPLERS and builds its grid:

  sample('dpm_solver_pp', rng, sde, score_fn, x_T, n_steps=20, schedule='logsnr', order=3)
"""

from sde_lib.sampling import schedules
from sde_lib.sampling.core import Replace, SampleOutput, Trajectory
from sde_lib.sampling.ddim import ddim_sample
from sde_lib.sampling.dpm_solver import (check_order, dpm_solver_pp_sample,
                                         dpm_solver_pp_sde_sample)
from sde_lib.sampling.edm import edm_heun_sample
from sde_lib.sampling.flow import ode_sample
from sde_lib.sampling.pc import CORRECTORS, PREDICTORS, pc_sample
from sde_lib.sampling.schedules import SCHEDULES
from sde_lib.sampling.unipc import unipc_sample
from sde_lib.ode import SOLVERS, get_solver

SAMPLERS = {
    'pc': pc_sample,
    'ode': ode_sample,
    'ddim': ddim_sample,
    'dpm_solver_pp': dpm_solver_pp_sample,
    'dpm_solver_pp_sde': dpm_solver_pp_sde_sample,
    'unipc': unipc_sample,
    'edm_heun': edm_heun_sample,
}


def fitting_schedules(method: str, **options) -> tuple[str, ...]:
  """The schedules a sampler can use: PC's predictors step the SDE's own uniform
  levels, and an adaptive ODE solver ignores a grid's inner times."""
  if method == 'pc' or (method == 'ode' and SOLVERS[options.get('solver', 'dopri5')].adaptive):
    return ('uniform',)
  return tuple(SCHEDULES)


def check(method: str, *, n_steps, schedule: str, **options) -> None:
  """Raises a ValueError naming the bad value and the allowed ones."""
  if method not in SAMPLERS:
    raise ValueError(f'unknown sampler {method!r}; known: {sorted(SAMPLERS)}')
  if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
    raise ValueError(f'n_steps must be a positive integer, got {n_steps!r}')
  if schedule not in SCHEDULES:
    raise ValueError(f'unknown schedule {schedule!r}; known: {sorted(SCHEDULES)}')
  if method == 'ode':
    get_solver(options.get('solver', 'dopri5'))
    if n_steps < 2:
      # Its grid [T, 0] would leave the solver nothing to integrate: one denoising of x_T.
      raise ValueError(f'ode solves from T to eps, then denoises: n_steps must be at least 2, '
                       f'got {n_steps} (one step is ddim with n_steps=1)')
  fitting = fitting_schedules(method, **options)
  if schedule not in fitting:
    raise ValueError(f'schedule {schedule!r} does not fit sampler {method!r}'
                     + (f" (ODE solver {options.get('solver', 'dopri5')!r})"
                        if method == 'ode' else '') + f'; allowed: {list(fitting)}')
  if 'order' in options:
    check_order(options['order'])


def sample(method: str, rng, sde, score_fn, x_T, *, n_steps: int, schedule: str = 'uniform',
           eps: float = 1e-3, rho: float = 7.0, **options) -> SampleOutput:
  """Samples with SAMPLERS[method] on the grid `schedule` of n_steps steps.

  Args:
    method: a name of SAMPLERS.
    rng, sde, score_fn, x_T: as the samplers take them.
    n_steps: the number of time steps; for 'pc' the number of noise levels.
    schedule: a name of `schedules.SCHEDULES` that fits the method.
    eps: the last time before the final denoising step to sigma = 0.
    rho: the 'karras' schedule's exponent.
    **options: the sampler's own keyword arguments (order, eta, n_frames, ...).

  Returns:
    The sampler's `SampleOutput`.
  """
  check(method, n_steps=n_steps, schedule=schedule, **options)
  grid = SCHEDULES[schedule]
  ts = grid(sde, n_steps, eps=eps, rho=rho) if schedule == 'karras' else grid(sde, n_steps,
                                                                            eps=eps)
  return SAMPLERS[method](rng, sde, score_fn, x_T, ts=ts, **options)


__all__ = ['CORRECTORS', 'PREDICTORS', 'Replace', 'SAMPLERS', 'SCHEDULES', 'SOLVERS',
           'SampleOutput', 'Trajectory', 'check', 'ddim_sample', 'dpm_solver_pp_sample',
           'dpm_solver_pp_sde_sample', 'edm_heun_sample', 'fitting_schedules', 'ode_sample',
           'pc_sample', 'sample', 'schedules', 'unipc_sample']
