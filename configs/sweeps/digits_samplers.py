"""Every sampler at 10, 20, 50 and 100 score evaluations on the default digits checkpoint,
against the 1000-level PC sampler: FD, KID and IS in the digit classifier's features.

Run the README's default job first (it trains workdir/digits), then

  python main.py --config configs/sweeps/digits_samplers.py --workdir workdir/digits \\
      --mode sweep

Only sampling.* changes, so every point evaluates the checkpoint in the workdir; the
table and the plot of FD against NFE land in workdir/digits/sweep/.
"""

from configs.digits import vp

NFES = (10, 20, 50, 100)
# (sampling overrides, evaluations per step)
SAMPLERS = [
    ({'sampling.method': 'ddim', 'sampling.schedule': 'logsnr'}, 1),
    ({'sampling.method': 'dpm_solver_pp', 'sampling.order': 2, 'sampling.schedule': 'logsnr'},
     1),
    ({'sampling.method': 'dpm_solver_pp', 'sampling.order': 3, 'sampling.schedule': 'logsnr'},
     1),
    ({'sampling.method': 'dpm_solver_pp_sde', 'sampling.order': 2,
      'sampling.schedule': 'logsnr'}, 1),
    ({'sampling.method': 'unipc', 'sampling.order': 3, 'sampling.schedule': 'logsnr'}, 1),
    ({'sampling.method': 'edm_heun', 'sampling.schedule': 'karras'}, 2),
    ({'sampling.method': 'ode', 'sampling.ode_method': 'heun'}, 2),
]


def get_config():
  config = vp.get_config()
  # Sample quality only: the test loss and bits/dim do not depend on the sampler.
  config.eval.metrics = ('fid',)
  config.sweep.metric = 'fd'
  config.sweep.x = 'nfe'
  return config


def sweep():
  points = [{'sampling.method': 'pc', 'sampling.n_steps': 1000}]
  for overrides, per_step in SAMPLERS:
    for nfe in NFES:
      # Heun-type samplers spend 2 n - 1 evaluations on n steps.
      points.append({**overrides, 'sampling.n_steps': nfe if per_step == 1 else (nfe + 1) // 2})
  return points
