"""Bits/dim on a 64-D, 8-mode Gaussian mixture with the exact score, against log_prob.

For each trace estimator and solver tolerance: the error of bits/dim against the
mixture's own -log2 p(x) / D (mean and worst point), NFE and wall time.

  python benchmarks/likelihood_gmm.py --sde vpsde
"""

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gmm import benchmark_mixture  # noqa: E402
from sde_lib import get_sde, likelihood  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--sde', default='vpsde', choices=['vpsde', 'subvpsde', 'vesde'])
  parser.add_argument('--n', type=int, default=256, help='data points')
  args = parser.parse_args()

  gmm = benchmark_mixture()
  sde = get_sde(args.sde)
  x = gmm.sample(jax.random.key(0), args.n)
  target = -np.asarray(gmm.log_prob(x)) / (gmm.dim * np.log(2))
  print(f'# {args.sde}, {gmm.dim}-D mixture of {len(gmm.weights)} modes, {args.n} points, '
        f'eps=1e-5, dopri5, {jax.devices()[0].platform} x{jax.device_count()}, '
        f'jax {jax.__version__}; true bits/dim average {target.mean():.4f}')
  header = ('estimator', 'rtol=atol', 'mean error', 'mean |error|', 'max |error|', 'NFE', 'time s')
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  for estimator in ['exact', 'rademacher', 'gaussian']:
    for tol in [1e-3, 1e-5]:
      fn = jax.jit(lambda rng, x, estimator=estimator, tol=tol: likelihood.bits_per_dim(
          rng, sde, gmm.score_fn(sde), x, estimator=estimator, rtol=tol, atol=tol))
      jax.block_until_ready(fn(jax.random.key(1), x))
      start = time.perf_counter()
      bpd, _, nfe = jax.block_until_ready(fn(jax.random.key(1), x))
      seconds = time.perf_counter() - start
      error = np.asarray(bpd) - target
      print(f'| {estimator} | {tol:g} | {error.mean():+.5f} | {np.abs(error).mean():.5f} | '
            f'{np.abs(error).max():.5f} | {int(nfe)} | {seconds:.2f} |', flush=True)


if __name__ == '__main__':
  main()
