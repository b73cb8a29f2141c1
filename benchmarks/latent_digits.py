"""Latent against pixel diffusion on the bundled digits at equal wall time, the autoencoder's
time counted, and the ablation of the latent scale.

Two phases of training, two jobs at a time on this machine (so each pair shares it alike):
  1. pixel   the default job's DDPM++ (configs/digits/vp.py) for --minutes, beside
     ae + latent: the autoencoder (configs/latent/digits_ae.py) for --ae-minutes, then the
            latent DDPM++ (configs/latent/digits_ldm.py, latent.scale estimated) for the
            rest of --minutes;
  2. unscaled  the latent model with latent.scale = 1 (the latents as the encoder gives them)
     beside
     latent2   the scaled latent model again with another seed: the run-to-run spread;
     both for --minutes - --ae-minutes on the same autoencoder.
Then each model draws --num-samples samples with DPM-Solver++(2M), --n-steps steps, scored as
`--mode eval` does (FD, KID in the digits classifier's features, and for latent models the
autoencoder's reconstruction FD, rfd); training steps/s is steps over the training wall time
(compilation included), sampling seconds per image are a second, compiled draw of a batch.

  python benchmarks/latent_digits.py --root /tmp/latent_bench --plot benchmarks/latent_digits.png

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

import jax

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import run_lib  # noqa: E402
from configs.digits import vp  # noqa: E402
from configs.latent import digits_ldm  # noqa: E402
from run_lib.sample import draw  # noqa: E402


def _train(config: str, workdir: pathlib.Path, minutes: float, *overrides: str,
           data_dir: str) -> subprocess.Popen:
  command = [sys.executable, 'main.py', f'--config={config}', f'--workdir={workdir}',
             '--mode=train', f'--config.training.max_minutes={minutes}',
             '--config.training.n_iters=1000000', f'--config.data.data_dir={data_dir}',
             *overrides]
  log = open(workdir.with_suffix('.log'), 'w')  # noqa: SIM115 (closed with the process)
  print(' '.join(command), file=sys.stderr, flush=True)
  return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def _timed(*processes: subprocess.Popen) -> float:
  start = time.monotonic()
  for process in processes:
    if process.wait():
      raise SystemExit(f'error: {" ".join(process.args)} failed; see its log')
  return time.monotonic() - start


def train_all(args) -> dict[str, float]:
  root, data = pathlib.Path(args.root), args.data_dir or str(pathlib.Path(args.root) / 'data')
  root.mkdir(parents=True, exist_ok=True)
  seconds = {}
  rest = args.minutes - args.ae_minutes
  ae = root / 'ae'
  latent = ('configs/latent/digits_ldm.py', f'--config.latent.autoencoder_workdir={ae}')
  pixel = _train('configs/digits/vp.py', root / 'pixel', args.minutes, data_dir=data)
  start = time.monotonic()
  seconds['ae'] = _timed(_train('configs/latent/digits_ae.py', ae, args.ae_minutes, data_dir=data))
  seconds['latent'] = _timed(_train(latent[0], root / 'latent', rest, latent[1], data_dir=data))
  pixel.wait()
  seconds['pixel'] = time.monotonic() - start
  both = [_train(latent[0], root / 'unscaled', rest, latent[1], '--config.latent.scale=1.0',
                 data_dir=data),
          _train(latent[0], root / 'latent2', rest, latent[1], '--config.seed=7', data_dir=data)]
  seconds['unscaled'] = seconds['latent2'] = _timed(*both)
  return seconds


def measure(name: str, workdir: pathlib.Path, args) -> dict:
  module = vp if name == 'pixel' else digits_ldm
  config = module.get_config()
  config.data.data_dir = args.data_dir or str(pathlib.Path(args.root) / 'data')
  config.sampling.update(method='dpm_solver_pp', n_steps=args.n_steps, schedule='logsnr')
  config.eval.num_samples = args.num_samples
  config.eval.metrics = ('fid',) if name == 'pixel' else ('fid', 'reconstruction')
  if name != 'pixel':
    config.latent.autoencoder_workdir = str(pathlib.Path(args.root) / 'ae')
  if name == 'unscaled':
    config.latent.scale = 1.0
  if name == 'latent2':
    config.seed = 7
  job = run_lib.build(config, str(workdir))
  state = job.restore()
  metrics = run_lib.Evaluation(job).metrics(state.ema_params, int(state.step))
  batch = config.sampling.batch_size
  draw(job, state.ema_params, jax.random.key(0), batch)  # compiled
  start = time.perf_counter()
  draw(job, state.ema_params, jax.random.key(1), batch)
  row = {'model': name, 'steps': int(state.step), 'fd': metrics['fd'], 'kid': metrics['kid'],
         'rfd': metrics.get('rfd'), 'nfe': metrics['nfe'],
         'scale': float(state.params['latent']['scale']) if name != 'pixel' else None,
         'sample_seconds': (time.perf_counter() - start) / batch}
  print(json.dumps(row), file=sys.stderr, flush=True)
  return row


def plot(rows: list[dict], path: str) -> None:
  import matplotlib  # noqa: PLC0415 (only for --plot)
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # noqa: PLC0415

  fig, (fd, speed) = plt.subplots(1, 2, figsize=(9, 3.4))
  names = [r['model'] for r in rows]
  fd.bar(names, [r['fd'] for r in rows], color='tab:blue')
  fd.set_ylabel('FD (digits classifier features)')
  fd.set_title('sample quality at equal wall time')
  speed.bar(names, [1e3 * r['sample_seconds'] for r in rows], color='tab:orange')
  speed.set_ylabel('ms per sample')
  speed.set_title(f'sampling, {rows[0]["nfe"]} evaluations')
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--root', required=True, help='workdirs (and data) of the four models')
  parser.add_argument('--data-dir', default='')
  parser.add_argument('--minutes', type=float, default=12.0)
  parser.add_argument('--ae-minutes', type=float, default=4.0)
  parser.add_argument('--num-samples', type=int, default=500)
  parser.add_argument('--n-steps', type=int, default=20)
  parser.add_argument('--skip-training', action='store_true')
  parser.add_argument('--plot', default='')
  args = parser.parse_args()
  root = pathlib.Path(args.root)
  seconds_file = root / 'train_seconds.json'
  if args.skip_training:
    seconds = json.loads(seconds_file.read_text())
  else:
    seconds = train_all(args)
    seconds_file.write_text(json.dumps(seconds))
  rows = [measure(name, root / name, args) for name in ('pixel', 'latent', 'latent2',
                                                          'unscaled')]
  ae_steps = json.loads((root / 'ae' / 'finished.json').read_text())['step']
  print('| model | training (wall) | steps | steps/s | latent scale | FD | KID | '
        'reconstruction FD | NFE | ms / sample |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    wall = seconds[r['model']]
    trained = (f'{wall / 60:.1f} min' if r['model'] == 'pixel' else
               f'{seconds["ae"] / 60:.1f} min autoencoder ({ae_steps} steps) + '
               f'{wall / 60:.1f} min')
    scale = '' if r['scale'] is None else f"{r['scale']:.3f}"
    rfd = '' if r['rfd'] is None else f"{r['rfd']:.2f}"
    print(f"| {r['model']} | {trained} | {r['steps']} | {r['steps'] / wall:.2f} | {scale} | "
          f"{r['fd']:.2f} | {r['kid']:.2f} | {rfd} | {r['nfe']} | "
          f"{1e3 * r['sample_seconds']:.2f} |")
  if args.plot:
    plot(rows, args.plot)


if __name__ == '__main__':
  main()
