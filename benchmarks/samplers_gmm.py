"""Samplers on a 64-D, 8-mode Gaussian mixture with the exact score (no network error).

For each sampler and step count: score evaluations (NFE), RMSE to a tightly
solved probability-flow ODE endpoint from the same x_T and the fraction of
samples that land in another mode than that endpoint (deterministic samplers
only; the few trajectories that start near a boundary between modes dominate
the RMSE), mode-weight and moment errors, and wall time of the compiled sampler.
The ODE rows end with the samplers' common final step, the denoiser at eps, and
fast_samplers.py compares the few-step samplers with k-diffusion and diffusers.

  python benchmarks/samplers_gmm.py --sde vpsde
  python benchmarks/samplers_gmm.py --sde vesde --n 4000
"""

import argparse
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gmm import benchmark_mixture, fit_errors  # noqa: E402
from sde_lib import get_sde, sampling  # noqa: E402

EPS = 1e-3


def _timed(fn, *args):
  """(result, seconds) of a compiled call, compiled beforehand."""
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  result = jax.block_until_ready(fn(*args))
  return result, time.perf_counter() - start


def _samplers(quick: bool):
  """(label, levels N, deterministic, make(sde, score_fn) -> fn(rng, x_T))."""
  levels = [100, 1000] if quick else [100, 250, 1000]
  fixed_steps = [25, 100] if quick else [25, 50, 100, 250]
  for n in levels:
    for predictor, corrector, pf in [('reverse_diffusion', 'langevin', False),
                                     ('euler_maruyama', 'none', False),
                                     ('ancestral_sampling', 'none', False),
                                     ('reverse_diffusion', 'none', True),
                                     ('euler_maruyama', 'none', True)]:
      label = f'pc {predictor}+{corrector}' + (' (pf)' if pf else '')
      make = functools.partial(_pc, predictor=predictor, corrector=corrector, pf=pf)
      yield label, n, pf, make
  for method in ['euler', 'heun']:
    for n in fixed_steps:
      yield f'ode {method}', n, True, functools.partial(_ode, solver=method, n_steps=n)
  for method in ['dopri5', 'tsit5']:
    for tol in [1e-3, 1e-5]:
      yield f'ode {method} tol={tol:g}', None, True, functools.partial(
          _ode, solver=method, rtol=tol, atol=tol)


def _pc(sde, score_fn, *, predictor, corrector, pf):
  return jax.jit(lambda rng, x_T: sampling.sample(
      'pc', rng, sde, score_fn, x_T, n_steps=sde.N, eps=EPS, predictor=predictor,
      corrector=corrector, probability_flow=pf, denoise=not pf))


def _ode(sde, score_fn, *, n_steps=2, **options):
  return jax.jit(lambda rng, x_T: sampling.sample(
      'ode', rng, sde, score_fn, x_T, n_steps=n_steps, eps=EPS, **options))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--sde', default='vpsde', choices=['vpsde', 'subvpsde', 'vesde'])
  parser.add_argument('--n', type=int, default=2000, help='samples per sampler')
  parser.add_argument('--quick', action='store_true', help='fewer step counts')
  args = parser.parse_args()

  gmm = benchmark_mixture()
  shape = (args.n, gmm.dim)
  print(f'# {args.sde}, {gmm.dim}-D mixture of {len(gmm.weights)} modes, {args.n} samples, '
        f'eps={EPS}, {jax.devices()[0].platform} x{jax.device_count()}, jax {jax.__version__}')
  rng = jax.random.key(0)
  base = get_sde(args.sde)
  x_T = base.prior_sampling(jax.random.key(1), shape)
  reference = _ode(base, gmm.score_fn(base), rtol=1e-7, atol=1e-7)(rng, x_T).x
  data = fit_errors(gmm, gmm.sample(jax.random.key(2), args.n))
  print(f'# reference: dopri5 rtol=atol=1e-7. Errors of {args.n} exact mixture samples '
        f"(the floor): weight {data['weight_err']:.3f}, mean {data['mean_err']:.3f}, "
        f"std {data['std_err']:.3f}")
  reference_modes = gmm.assign(reference)
  header = ('sampler', 'N', 'NFE', 'RMSE to ODE', 'mode flips', 'weight err', 'mean err',
            'std err', 'time s')
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  for label, n, deterministic, make in _samplers(args.quick):
    sde = get_sde(args.sde, N=n) if n else base
    (x, nfe, _), seconds = _timed(make(sde, gmm.score_fn(sde)), rng, x_T)
    if deterministic:
      rmse = f'{float(jnp.sqrt(jnp.mean((x - reference) ** 2))):.4f}'
      flips = f'{float(jnp.mean(gmm.assign(x) != reference_modes)):.4f}'
    else:
      rmse = flips = '-'
    errors = fit_errors(gmm, x)
    print(f"| {label} | {n or '-'} | {int(nfe)} | {rmse} | {flips} | {errors['weight_err']:.3f} | "
          f"{errors['mean_err']:.3f} | {errors['std_err']:.3f} | {seconds:.2f} |", flush=True)


if __name__ == '__main__':
  main()
