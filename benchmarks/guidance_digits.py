"""Class accuracy and FD of guided digits samples against the guidance scale.

Two guided models of the bundled digits, each at the scales of --scales:
  cfg         the class-conditional DDPM++ of configs/guided/digits_cfg.py under
              classifier-free guidance (s = 0: its unconditional model, 1: conditional);
  classifier  the unconditional DDPM++ of configs/digits/vp.py (the default job) guided
              by the noise-conditional classifier of configs/guided/digits_classifier.py
              (s = 0: unguided).
Each point draws --num-samples class-balanced samples with the sampler of --method,
--n-steps and --schedule (any of the job's; default DPM-Solver++(2M), 20 steps) and scores
them as `--mode eval` does (run_lib's Evaluation): FD, KID and IS in the digit
classifier's features, and the fraction of samples that classifier assigns to the class
they were drawn for (`metrics.statistics.class_metrics`). The seconds are those of one sampling
batch of the compiled sampler (median of --reps calls, after a warm-up call).

Train the three workdirs first (README, "Class-conditional models"), then

  python benchmarks/guidance_digits.py --cfg-workdir workdir/digits_cfg \\
      --uncond-workdir workdir/digits --classifier-workdir workdir/digits_clf \\
      --plot benchmarks/guidance_digits.png

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import json
import pathlib
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import run_lib  # noqa: E402
from configs.digits import vp as digits_vp  # noqa: E402
from configs.guided import digits_cfg  # noqa: E402
from run_lib.evaluate import Evaluation  # noqa: E402
from run_lib.sample import draw  # noqa: E402


def _config(kind: str, args, scale: float):
  if kind == 'cfg':
    config = digits_cfg.get_config(args.variant)
  else:
    config = digits_vp.get_config(args.variant)
    config.sampling.guidance = 'classifier'
    config.sampling.classifier_workdir = args.classifier_workdir
  config.sampling.guidance_scale = scale
  config.sampling.update(method=args.method, n_steps=args.n_steps, schedule=args.schedule)
  config.eval.num_samples = args.num_samples
  if args.data_dir:
    config.data.data_dir = args.data_dir
  return config


def measure(kind: str, workdir: str, args) -> list[dict]:
  rows = []
  for scale in args.scales:
    config = _config(kind, args, scale)
    config.eval.metrics = ('fid',)
    job = run_lib.build(config, workdir)
    state = job.restore()
    if state is None:
      raise SystemExit(f'error: no checkpoint in {workdir}; train it first')
    metrics = Evaluation(job).metrics(state.ema_params, int(state.step))
    key, batch = jax.random.key(0), job.sampling.batch_size
    draw(job, state.ema_params, key, batch)  # compiled and warm
    seconds = []
    for _ in range(args.reps):
      start = time.perf_counter()
      draw(job, state.ema_params, key, batch)
      seconds.append(time.perf_counter() - start)
    row = {'model': kind, 'scale': scale, 'accuracy': metrics['accuracy'], 'fd': metrics['fd'],
           'kid': metrics['kid'], 'is': metrics['is'], 'nfe': metrics['nfe'],
           'batch': batch, 'seconds': float(np.median(seconds)), 'step': int(state.step)}
    print(json.dumps(row), file=sys.stderr, flush=True)
    rows.append(row)
  return rows


def table(rows: list[dict]) -> str:
  lines = ['| model | step | scale s | accuracy | FD | KID | IS | NFE | batch | s / batch |',
           '|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f"| {r['model']} | {r['step']} | {r['scale']:g} | {100 * r['accuracy']:.1f}% | "
                 f"{r['fd']:.2f} | {r['kid']:.1f} | {r['is']:.2f} | {r['nfe']} | {r['batch']} | "
                 f"{r['seconds']:.2f} |")
  return '\n'.join(lines)


def plot(rows: list[dict], path: str) -> None:
  import matplotlib  # noqa: PLC0415 (only for --plot)
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # noqa: PLC0415

  fig, (acc, fd) = plt.subplots(1, 2, figsize=(9, 3.6))
  for kind, label in (('cfg', 'classifier-free (digits_cfg)'),
                      ('classifier', 'classifier guidance (digits + digits_classifier)')):
    mine = [r for r in rows if r['model'] == kind]
    if not mine:
      continue
    scales = [r['scale'] for r in mine]
    acc.plot(scales, [100 * r['accuracy'] for r in mine], 'o-', label=label)
    fd.plot(scales, [r['fd'] for r in mine], 'o-', label=label)
  acc.axhline(95, color='grey', lw=0.8, ls='--')
  acc.set(xlabel='guidance scale s', ylabel='class accuracy of samples (%)')
  fd.set(xlabel='guidance scale s', ylabel='FD (digit classifier features)')
  acc.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--cfg-workdir', default='workdir/digits_cfg')
  parser.add_argument('--uncond-workdir', default='workdir/digits')
  parser.add_argument('--classifier-workdir', default='workdir/digits_clf')
  parser.add_argument('--data-dir', default='', help="data.data_dir ('': the workdir's)")
  parser.add_argument('--scales', type=float, nargs='+', default=[0, 0.5, 1, 2, 3, 5])
  parser.add_argument('--num-samples', type=int, default=500)
  parser.add_argument('--reps', type=int, default=3)
  # DPM-Solver++(2M) at 20 steps matches the 200-level PC sampler's FD on this model
  # (BENCHMARKS.md, "Samplers on the trained digits model") at a tenth of the cost.
  parser.add_argument('--method', default='dpm_solver_pp')
  parser.add_argument('--n-steps', type=int, default=20)
  parser.add_argument('--schedule', default='logsnr')
  parser.add_argument('--models', nargs='+', default=['cfg', 'classifier'],
                      choices=['cfg', 'classifier'])
  parser.add_argument('--plot', default='')
  parser.add_argument('--variant', default='', help="the configs' variant ('tiny': a smoke run)")
  args = parser.parse_args()
  rows = []
  for kind in args.models:
    rows += measure(kind, args.cfg_workdir if kind == 'cfg' else args.uncond_workdir, args)
  print(f"`python {' '.join(sys.argv)}`\n")
  print(table(rows))
  if args.plot:
    plot(rows, args.plot)


if __name__ == '__main__':
  main()
