"""Few-step samplers on the 64-D, 8-mode mixture with the exact score: scorelab against
k-diffusion and diffusers, driven by the same exact denoiser from the same x_T.

For every sampler, schedule and NFE: the RMSE to the exact probability-flow endpoint
(a float64 dopri5 solve at rtol = atol = 1e-10 of dx/dsigma = -sigma score in
k-diffusion's variables x / alpha, down to sigma = 0), the fraction of samples that end
in another mode than it, the mode-weight error and the wall time of the compiled
sampler. Settings: 'edm' is the VE SDE with sigma from 80 to 0.002 (EDM's), then 0;
'vp' the VP SDE of Song et al. from t = 1 to 1e-3, then sigma = 0. Besides the fixed
schedules, scorelab's samplers also run on grids fitted to them and to the mixture
(`schedules.fit`, 200 Adam steps on --fit draws of another seed than the test's).

  python benchmarks/fast_samplers.py --setting edm --peer-python ~/peervenv/bin/python
  python benchmarks/fast_samplers.py --setting vp --peer-python ~/peervenv/bin/python \\
      --plot benchmarks/fast_samplers_vp.png
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gmm import benchmark_mixture, fit_errors  # noqa: E402
from sde_lib import VESDE, VPSDE, sampling  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = {
    'edm': (lambda: VESDE(sigma_min=0.002, sigma_max=80.0), 0.0),
    'vp': (lambda: VPSDE(), 1e-3),
}
# (label, method, options, schedule, options of the schedule)
OURS = [
    ('ode heun (diffrax, in t)', 'ode', {'solver': 'heun'}, 'uniform', {}),
    ('ddim', 'ddim', {}, 'logsnr', {}),
    ('edm_heun', 'edm_heun', {}, 'karras', {}),
    ('dpm_solver_pp 2M', 'dpm_solver_pp', {'order': 2}, 'karras', {}),
    ('dpm_solver_pp 2M', 'dpm_solver_pp', {'order': 2}, 'logsnr', {}),
    ('dpm_solver_pp 3M', 'dpm_solver_pp', {'order': 3}, 'karras', {}),
    ('dpm_solver_pp 3M', 'dpm_solver_pp', {'order': 3}, 'logsnr', {}),
    ('unipc 2', 'unipc', {'order': 2}, 'karras', {}),
    ('unipc 2', 'unipc', {'order': 2}, 'logsnr', {}),
    ('unipc 3', 'unipc', {'order': 3}, 'karras', {}),
    ('unipc 3', 'unipc', {'order': 3}, 'logsnr', {}),
]
# Grids fitted to the sampler and the mixture (schedules.fit) on other draws than the
# test's: (label, method, options, the schedule fitting starts from).
FITTED = [
    ('unipc 3', 'unipc', {'order': 3}, 'karras'),
    ('unipc 2', 'unipc', {'order': 2}, 'karras'),
    ('dpm_solver_pp 3M', 'dpm_solver_pp', {'order': 3}, 'logsnr'),
]


def sigma_of(sde, t):
  t = jnp.asarray(t)  # float64 inside jax.enable_x64
  return sde.std(t) / sde.alpha(t)


def reference_endpoint(gmm, sde, x_tilde_T):
  """x at sigma = 0 on the probability-flow ODE through x_tilde_T, in float64."""
  ve = VESDE(sigma_min=1e-3, sigma_max=1e3)  # only to read the mixture's score at a sigma
  score = gmm.score_fn(ve)

  def field(s, y, args):
    t = ve.t_from_log_snr(-jnp.log(jnp.full((y.shape[0],), s)))
    return -s * score(y, t)

  sol = diffrax.diffeqsolve(
      diffrax.ODETerm(field), diffrax.Dopri5(), t0=float(sigma_of(sde, sde.T)), t1=0.0,
      dt0=-1.0, y0=jnp.asarray(x_tilde_T, jnp.float64), max_steps=100_000,
      stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-10))
  return np.asarray(sol.ys[-1])


def run_ours(gmm, sde, eps, x_T, nfes):
  score_fn = gmm.score_fn(sde)
  for label, method, options, schedule, schedule_options in OURS:
    for nfe in nfes:
      n_steps = (nfe + 1) // 2 if method in ('edm_heun', 'ode') else nfe  # Heun: 2 n - 1
      run = jax.jit(lambda x: sampling.sample(method, None, sde, score_fn, x, n_steps=n_steps,
                                              schedule=schedule, eps=eps, **options,
                                              **schedule_options))
      jax.block_until_ready(run(x_T))
      start = time.perf_counter()
      out = jax.block_until_ready(run(x_T))
      yield (f'scorelab {label}', schedule, nfe, np.asarray(out.x), int(out.nfe),
             time.perf_counter() - start)


def run_fitted(gmm, sde, eps, x_T, nfes, n_fit):
  """Our samplers on grids fitted with schedules.fit to n_fit draws of another seed."""
  score_fn = gmm.score_fn(sde)
  x_fit = sde.prior_sampling(jax.random.key(7), (n_fit, gmm.dim))
  with jax.enable_x64(True):
    x_0 = jnp.asarray(reference_endpoint(
        gmm, sde, np.asarray(x_fit) / float(sde.alpha(jnp.asarray(sde.T)))), jnp.float32)
  for label, method, options, start in FITTED:
    for nfe in nfes:
      begin = time.perf_counter()
      ts = sampling.schedules.fit(sampling.SAMPLERS[method], sde, score_fn, x_fit, x_0,
                                  sampling.schedules.SCHEDULES[start](sde, nfe, eps=eps),
                                  **options)
      fit_seconds = time.perf_counter() - begin
      run = jax.jit(lambda x, ts: sampling.SAMPLERS[method](None, sde, score_fn, x, ts=ts,
                                                            **options))
      jax.block_until_ready(run(x_T, ts))
      begin = time.perf_counter()
      out = jax.block_until_ready(run(x_T, ts))
      sigmas = ', '.join(f'{s:.3g}' for s in np.asarray(sde.std(ts) / sde.alpha(ts)))
      print(f'# fitted {label} at {nfe} NFE from {start} in {fit_seconds:.0f} s: sigmas '
            f'{sigmas}', flush=True)
      yield (f'scorelab {label}', f'fitted ({start})', nfe, np.asarray(out.x), int(out.nfe),
             time.perf_counter() - begin)


def run_peers(peer_python, gmm, sde, eps, x_tilde_T, nfes):
  with tempfile.TemporaryDirectory() as tmp:
    in_path, out_path = os.path.join(tmp, 'in.npz'), os.path.join(tmp, 'out.npz')
    with jax.enable_x64(True):
      train_sigmas = np.asarray(sigma_of(sde, jnp.linspace(eps, sde.T, 1000)))
      sigma_min, sigma_max = float(sigma_of(sde, eps)), float(sigma_of(sde, sde.T))
    np.savez(in_path, means=gmm.means, stds=gmm.stds, weights=gmm.weights,
             x_tilde_T=np.asarray(x_tilde_T), sigma_min=sigma_min, sigma_max=sigma_max,
             rho=7.0, nfes=np.asarray(nfes), train_sigmas=train_sigmas)
    subprocess.run([peer_python, os.path.join(HERE, 'peer_samplers.py'), in_path, out_path],
                   check=True)
    with np.load(out_path) as out:
      meta = json.loads(str(out['meta']))
      for run in meta['runs']:
        yield (run['sampler'], 'karras' if 'karras' in run['sampler'] or 'k-diff' in
               run['sampler'] else 'trailing', run['target_nfe'], out[run['key']],
               run['nfe'], run['seconds'])
  print(f"# peers: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--setting', default='edm', choices=sorted(SETTINGS))
  parser.add_argument('--n', type=int, default=20000,
                      help='test samples; with fewer, one trajectory that changes mode can '
                      'make most of the RMSE')
  parser.add_argument('--nfe', type=int, nargs='+', default=[10, 20, 50, 100])
  parser.add_argument('--peer-python', help='interpreter with torch, diffusers, k-diffusion')
  parser.add_argument('--plot', help='write RMSE against NFE (log-log) to this PNG')
  parser.add_argument('--json', help='write every row to this JSON file')
  parser.add_argument('--fit', type=int, default=2048,
                      help='draws to fit grids on (schedules.fit); 0: no fitted grids')
  parser.add_argument('--fit-nfe', type=int, nargs='+', default=[10, 20, 50],
                      help='the NFEs to fit grids at (a fit at 100 takes ~8 minutes)')
  args = parser.parse_args()

  gmm = benchmark_mixture()
  make_sde, eps = SETTINGS[args.setting]
  sde = make_sde()
  x_T = sde.prior_sampling(jax.random.key(1), (args.n, gmm.dim))
  x_tilde_T = np.asarray(x_T) / float(sde.alpha(jnp.asarray(sde.T)))
  print(f'# {args.setting}: {type(sde).__name__} sigma {float(sigma_of(sde, sde.T)):.4g} -> '
        f'{float(sigma_of(sde, eps)):.4g} -> 0, {gmm.dim}-D mixture of {len(gmm.weights)} modes, '
        f'{args.n} samples, {jax.devices()[0].platform} x{jax.device_count()}, jax '
        f'{jax.__version__}')
  with jax.enable_x64(True):
    start = time.perf_counter()
    reference = reference_endpoint(gmm, sde, x_tilde_T)
    seconds = time.perf_counter() - start
    print(f'# reference: float64 dopri5 rtol=atol=1e-10 in sigma, {seconds:.0f} s')
  reference_modes = np.asarray(gmm.assign(reference))

  rows = []
  runs = [run_ours(gmm, sde, eps, x_T, args.nfe)]
  if args.fit:
    runs.append(run_fitted(gmm, sde, eps, x_T, args.fit_nfe, args.fit))
  if args.peer_python:
    runs.append(run_peers(args.peer_python, gmm, sde, eps, x_tilde_T, args.nfe))
  header = ('sampler', 'schedule', 'NFE', 'RMSE to ODE', 'mode flips', 'weight err', 'time s')
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  for source in runs:
    for label, schedule, target, x, nfe, seconds in source:
      rmse = float(np.sqrt(np.mean((x - reference) ** 2)))
      flips = float(np.mean(np.asarray(gmm.assign(x)) != reference_modes))
      weight = fit_errors(gmm, x)['weight_err']
      rows.append({'sampler': label, 'schedule': schedule, 'target_nfe': target, 'nfe': nfe,
                   'rmse': rmse, 'flips': flips, 'weight_err': weight, 'seconds': seconds})
      print(f'| {label} | {schedule} | {nfe} | {rmse:.3g} | {flips:.4f} | {weight:.3f} | '
            f'{seconds:.3f} |', flush=True)

  print('\n| NFE | best scorelab | RMSE | best peer | RMSE | peer / scorelab |')
  print('|---|---|---|---|---|---|')
  for target in args.nfe:
    at = [r for r in rows if r['nfe'] <= target and r['target_nfe'] == target]
    ours = min((r for r in at if r['sampler'].startswith('scorelab')), key=lambda r: r['rmse'])
    peers = [r for r in at if not r['sampler'].startswith('scorelab')]
    if not peers:
      print(f"| {target} | {ours['sampler']} ({ours['schedule']}) | {ours['rmse']:.3g} | | | |")
      continue
    peer = min(peers, key=lambda r: r['rmse'])
    print(f"| {target} | {ours['sampler']} ({ours['schedule']}, {ours['nfe']}) | "
          f"{ours['rmse']:.3g} | {peer['sampler']} ({peer['nfe']}) | {peer['rmse']:.3g} | "
          f"{peer['rmse'] / ours['rmse']:.1f} |")
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'setting': args.setting, 'rows': rows}, f, indent=1)
  if args.plot:
    plot(rows, args.plot, title=f'{args.setting}: RMSE to the exact probability-flow endpoint')


def _category(row) -> str:
  if not row['sampler'].startswith('scorelab'):
    return 'peers (k-diffusion, diffusers)'
  return 'scorelab, fitted grids' if row['schedule'].startswith('fitted') else 'scorelab'


def plot(rows, path, *, title):
  """Every sampler thin; the best of each category at each NFE bold."""
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  colors = {'scorelab': 'tab:blue', 'scorelab, fitted grids': 'tab:green',
            'peers (k-diffusion, diffusers)': 'tab:red'}
  figure, axes = plt.subplots(figsize=(8, 5.5))
  lines = {}
  for r in rows:
    lines.setdefault((_category(r), r['sampler'], r['schedule']), []).append((r['nfe'], r['rmse']))
  for (category, _, _), xy in lines.items():
    xs, ys = zip(*sorted(xy), strict=True)
    axes.plot(xs, ys, color=colors[category], alpha=0.25, linewidth=0.8,
              linestyle='--' if category.startswith('peers') else '-')
  for category, color in colors.items():
    best = {}
    for r in rows:
      if _category(r) == category and r['rmse'] < best.get(r['target_nfe'], (np.inf,))[0]:
        best[r['target_nfe']] = (r['rmse'], r['nfe'])
    if best:
      ys, xs = zip(*(best[n] for n in sorted(best)), strict=True)
      peers = category.startswith('peers')  # dashed: scorelab's fixed-grid best often equals it
      axes.plot(xs, ys, color=color, marker='o', linewidth=1.6 if peers else 3.0,
                linestyle='--' if peers else '-', label=f'best of {category}', zorder=3)
  axes.set_xscale('log')
  axes.set_yscale('log')
  axes.set_xlabel('score evaluations (NFE)')
  axes.set_ylabel('RMSE to the exact endpoint')
  axes.set_title(title + ' (thin: each sampler and schedule)', fontsize=10)
  axes.grid(True, which='both', alpha=0.3)
  axes.legend(fontsize=9)
  figure.tight_layout()
  figure.savefig(path, dpi=130)
  plt.close(figure)


if __name__ == '__main__':
  main()
