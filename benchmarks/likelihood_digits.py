"""Likelihood of the digits' test split at their 17 grey levels: the probability-flow ODE
against DDPM's variational bound, fixed and learned variances, and an independent per-pixel
categorical model as the baseline a generative model must beat.

Two diffusion models of the bundled digits, trained first:
  vp       the default job (configs/digits/vp.py: DDPM++, VP SDE, continuous time, linear
           betas), scored by the probability-flow ODE (bpd_ode) and by the bound over the
           SDE's N = 200 discrete levels with Ho et al.'s two fixed variances, beta-tilde
           and beta (bpd_vlb);
  learned  improved DDPM (configs/digits/vp_learned.py: cosine schedule, discrete levels,
           learned variances, the hybrid loss), by the bound with its own variances and by
           the ODE.
Every number is run_lib's evaluator on the whole test split (300 digits), the ODE at the
job's tolerances (1e-4) with the Hutchinson estimator; the bound exact over all terms. The
baseline: for each of the 64 pixels a categorical over the 17 levels, fitted on the training
split with add-one smoothing, its test negative log-likelihood in bits/dim.

  python main.py --config configs/digits/vp.py --workdir workdir/digits --mode train
  python main.py --config configs/digits/vp_learned.py --workdir workdir/digits_iddpm \\
      --mode train
  python benchmarks/likelihood_digits.py --vp-workdir workdir/digits \\
      --learned-workdir workdir/digits_iddpm

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import run_lib  # noqa: E402
from configs.digits import vp, vp_learned  # noqa: E402
from data import scaling  # noqa: E402

LEVELS = 17


def _steps(workdir: str) -> int:
  lines = (pathlib.Path(workdir) / 'log.jsonl').read_text().splitlines()
  return json.loads(lines[-1])['step']


def independent_pixels(config, workdir: str) -> float:
  """Test bits/dim of per-pixel categoricals over the levels fitted on the train split."""
  data = run_lib.build(config, workdir).data

  def levels(split):
    images = data.examples(split, config.eval.batch_size)['image']
    return np.asarray(scaling.to_levels(images.reshape(len(images), -1),
                                        centered=config.data.centered, levels=LEVELS), int)

  train, test = levels('train'), levels('test')
  counts = np.stack([np.bincount(train[:, d], minlength=LEVELS) for d in range(train.shape[1])])
  probs = (counts + 1.0) / (counts.sum(1, keepdims=True) + LEVELS)  # [D, 17]
  log_p = np.log2(probs[np.arange(test.shape[1]), test])  # [N, D]
  return float(-log_p.mean())


def evaluate(model: str, workdir: str, metrics: tuple, variance: str, args) -> dict:
  config = (vp if model == 'vp' else vp_learned).get_config()
  config.eval.metrics = metrics
  config.eval.vlb_variance = variance
  if args.data_dir:
    config.data.data_dir = args.data_dir
  job = run_lib.build(config, workdir)
  state = job.restore()
  if state is None:
    raise SystemExit(f'error: no checkpoint in {workdir}; train it first')
  start = time.perf_counter()
  values = run_lib.Evaluation(job).metrics(state.ema_params, int(state.step))
  values['seconds'] = time.perf_counter() - start
  print(json.dumps({'model': model, 'variance': variance, **values}), file=sys.stderr,
        flush=True)
  return values


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--vp-workdir', required=True)
  parser.add_argument('--learned-workdir', required=True)
  parser.add_argument('--data-dir', default='')
  args = parser.parse_args()
  config = vp.get_config()
  if args.data_dir:
    config.data.data_dir = args.data_dir
  baseline = independent_pixels(config, args.vp_workdir)
  rows = []
  ode = evaluate('vp', args.vp_workdir, ('bpd_ode',), 'beta_tilde', args)
  rows.append(('vp (DDPM++, continuous, linear)', _steps(args.vp_workdir), 'probability-flow ODE',
               ode['bpd_ode'], ode['seconds']))
  for variance in ('beta_tilde', 'beta'):
    bound = evaluate('vp', args.vp_workdir, ('bpd_vlb',), variance, args)
    rows.append(('vp (DDPM++, continuous, linear)', _steps(args.vp_workdir),
                 f'bound, fixed {variance}', bound['bpd_vlb'], bound['seconds'],
                 bound['bpd_vlb_decoder'], bound['bpd_vlb_terms']))
  learned = evaluate('learned', args.learned_workdir, ('bpd_ode', 'bpd_vlb'), 'beta_tilde', args)
  rows.append(('learned (improved DDPM, cosine)', _steps(args.learned_workdir),
               'probability-flow ODE', learned['bpd_ode'], None))
  rows.append(('learned (improved DDPM, cosine)', _steps(args.learned_workdir),
               'bound, learned variances', learned['bpd_vlb'], learned['seconds'],
               learned['bpd_vlb_decoder'], learned['bpd_vlb_terms']))
  print('| model | trained steps | likelihood | bits/dim | decoder L_0 | KL terms | seconds |')
  print('|---|---|---|---|---|---|---|')
  print(f'| independent pixels (17-way categoricals) | | exact | {baseline:.3f} | | | |')
  for row in rows:
    name, steps, kind, bpd, seconds, *parts = row + (None,) * (7 - len(row))
    fmt = lambda v: '' if v is None else f'{v:.3f}'
    print(f'| {name} | {steps} | {kind} | {bpd:.3f} | {fmt(parts[0])} | {fmt(parts[1])} | '
          f'{"" if seconds is None else f"{seconds:.0f}"} |')


if __name__ == '__main__':
  main()
