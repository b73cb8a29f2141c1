"""MNIST at 28x28: latent diffusion and a cascade against one pixel stage, and text on
MNIST pairs in one stage and as a cascade, each model at equal wall time on this machine
(every training alone, one after another; a model's earlier stages, an autoencoder or a
base, run their config's budget and its last stage the rest of --minutes).

  pixel         configs/mnist/pixel.py: DDPM++ at 28, 14, 7 pixels;
  pixel_small   the same at nf = 16: is a smaller pixel model better in the same time?
  latent        configs/mnist/ae.py (LDM's KL autoencoder, f = 4), then configs/mnist/ldm.py
                on its 7x7x3 latents (the scale estimated);
  cascade       configs/mnist/base14.py (14x14), then configs/mnist/sr28.py (14 -> 28,
                noise-conditioning augmentation);
  text          configs/text/mnist_pairs.py: text to 28x56 MNIST pairs, one stage;
  text_cascade  configs/text/mnist_pairs_14.py (14x28), then configs/text/mnist_pairs_sr.py;
  real, real_pairs   nothing trained: --num-samples real training images (pairs: the test
                pairs) in place of samples, the floor of each number in these features
                (for the pairs: how often the judge reads real pairs right).

Each model draws --num-samples samples with its config's sampler (DPM-Solver++(2M), 20
steps, log-SNR grid, in every stage; text models one per held-out test caption at their
config's guidance scale), scored as `--mode eval` does: FD, KID and IS in the MNIST
classifier's features (metrics/mnist.py, trained on the training split; for pairs both
halves) against the test split, and for text the fraction of samples showing both
prompted digits in order. A latent model also gets its autoencoder's reconstruction FD
(rfd), a cascade its base's own FD (its samples resized to the final size). Sampling ms
per image: a second, compiled draw of one sampling batch through every stage.

  python benchmarks/mnist_stages.py --root /tmp/mnist_stages --data-dir ../shared/data/tfds \\
      --plot benchmarks/mnist_stages.png

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import dataclasses
import importlib
import json
import pathlib
import subprocess
import sys
import time

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import run_lib  # noqa: E402
from data import scaling  # noqa: E402
from metrics import statistics  # noqa: E402
from run_lib import builder  # noqa: E402
from run_lib.sample import draw_cascade  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Stage:
  """One training job of a model: its config under configs/ ('mnist/pixel'), its workdir
  under --root, dotted overrides ('{root}' is --root), and the stage it upsamples."""

  config: str
  workdir: str
  overrides: tuple[tuple[str, object], ...] = ()
  cascade_from: str = ''

  def get_config(self, root: pathlib.Path, data_dir: str):
    config = importlib.import_module('configs.' + self.config.replace('/', '.')).get_config()
    point = {k: v.format(root=root) if isinstance(v, str) else v for k, v in self.overrides}
    if config.data.dataset == 'mnist_pairs':
      data_dir = _pairs_data_dir(root, data_dir)
    config = builder.apply(config, {**point, 'data.data_dir': data_dir})
    if self.cascade_from:
      config.sampling.cascade_from = str(root / self.cascade_from)
    return config


def _pairs_data_dir(root: pathlib.Path, data_dir: str) -> str:
  """A data directory of --root whose mnist is --data-dir's (a link), where the MNIST pairs
  are built on first use: the benchmark writes nothing into --data-dir."""
  pairs_dir = root / 'tfds'
  pairs_dir.mkdir(parents=True, exist_ok=True)
  link = pairs_dir / 'mnist'
  if not link.exists():
    link.symlink_to(pathlib.Path(data_dir).absolute() / 'mnist')
  return str(pairs_dir)


MODELS = {
    'pixel': (Stage('mnist/pixel', 'pixel'),),
    'pixel_small': (Stage('mnist/pixel', 'pixel_small', (('model.nf', 16),)),),
    'latent': (Stage('mnist/ae', 'ae'),
               Stage('mnist/ldm', 'ldm', (('latent.autoencoder_workdir', '{root}/ae'),))),
    'cascade': (Stage('mnist/base14', 'base14'), Stage('mnist/sr28', 'sr28', (), 'base14')),
    'text': (Stage('text/mnist_pairs', 'text'),),
    'text_cascade': (Stage('text/mnist_pairs_14', 'text14'),
                     Stage('text/mnist_pairs_sr', 'text_sr', (), 'text14')),
}
# Real images scored as samples, with the config of the model whose data they are.
REAL = {'real': Stage('mnist/pixel', 'real'), 'real_pairs': Stage('text/mnist_pairs', 'real')}


def _train(stage: Stage, root: pathlib.Path, minutes: float, data_dir: str) -> float:
  """Trains one stage alone for `minutes`; its wall time in seconds."""
  config = stage.get_config(root, data_dir)
  overrides = [f'--config.{k}={v.format(root=root) if isinstance(v, str) else v}'
               for k, v in stage.overrides]
  command = [sys.executable, 'main.py', f'--config=configs/{stage.config}.py',
             f'--workdir={root / stage.workdir}', '--mode=train',
             f'--config.training.max_minutes={minutes}',
             f'--config.data.data_dir={config.data.data_dir}', *overrides]
  print(' '.join(command), file=sys.stderr, flush=True)
  start = time.monotonic()
  with open(root / f'{stage.workdir}.log', 'w') as log:
    if subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode:
      raise SystemExit(f'error: {" ".join(command)} failed; see {log.name}')
  return time.monotonic() - start


def train(name: str, root: pathlib.Path, args) -> dict[str, float]:
  """Seconds of each training stage of a model: the earlier ones their config's budget,
  the last the rest of --minutes."""
  seconds, left = {}, args.minutes
  for stage in MODELS[name][:-1]:
    minutes = stage.get_config(root, args.data_dir).training.max_minutes
    seconds[stage.workdir] = _train(stage, root, minutes, args.data_dir)
    left -= minutes
  last = MODELS[name][-1]
  seconds[last.workdir] = _train(last, root, left, args.data_dir)
  return seconds


def _quality(stage: Stage, root: pathlib.Path, args) -> tuple[dict, float]:
  """`--mode eval`'s sample-quality metrics of a stage (a cascade's through its bases) and
  the ms per image of a second draw of one sampling batch through every stage."""
  config = stage.get_config(root, args.data_dir)
  config.eval.num_samples = args.num_samples
  config.eval.metrics = tuple(m for m in ('fid', 'reconstruction') if m in config.eval.metrics)
  job = run_lib.build(config, str(root / stage.workdir))
  state = job.restore()
  metrics = run_lib.Evaluation(job).metrics(state.ema_params, int(state.step))
  batch = config.sampling.batch_size
  draw_cascade(job, state.ema_params, jax.random.key(0), batch)  # compiled
  start = time.perf_counter()
  draw_cascade(job, state.ema_params, jax.random.key(1), batch)
  return metrics, 1e3 * (time.perf_counter() - start) / batch


def _real(stage: Stage, root: pathlib.Path, args) -> dict:
  """Real images scored as samples are: training images against the test split, or the
  test pairs read by the judge (their prompt accuracy; FD against themselves is 0)."""
  config = stage.get_config(root, args.data_dir)
  job = run_lib.build(config, str(root / stage.workdir))
  network, real, real_labels = run_lib.Evaluation(job).features()
  pairs = config.data.dataset == 'mnist_pairs'
  split = 'test' if pairs else 'train'
  examples = job.data.examples(split, config.eval.batch_size, limit=args.num_samples)
  features, logits = network(scaling.to_unit(examples['image'], centered=config.data.centered))
  metrics = statistics.feature_metrics(real, features, logits, seed=job.seed,
                                       kid_subset_size=config.eval.kid_subset_size)
  return {**metrics, **network.label_metrics(real, real_labels, np.asarray(features),
                                             np.asarray(logits), examples['label'])}


def measure(name: str, root: pathlib.Path, args, seconds: dict[str, float]) -> dict:
  row = {'model': name, 'seconds': seconds, 'ms': float('nan'), 'nfe': 0}
  if name in REAL:
    return {**row, 'steps': {}, **_real(REAL[name], root, args)}
  stages = MODELS[name]
  metrics, row['ms'] = _quality(stages[-1], root, args)
  row['steps'] = {s.workdir: json.loads((root / s.workdir / 'finished.json').read_text())['step']
                  for s in stages}
  row.update({k: metrics.get(k) for k in ('fd', 'kid', 'is', 'rfd', 'prompt_accuracy',
                                          'consistency_mse')})
  row['nfe'] = metrics['nfe'] + metrics.get('nfe_stage0', 0)
  if stages[-1].cascade_from:
    base = next(s for s in stages if s.workdir == stages[-1].cascade_from)
    row['base_fd'] = _quality(base, root, args)[0]['fd']
  print(json.dumps(row), file=sys.stderr, flush=True)
  return row


def plot(rows: list[dict], path: str) -> None:
  import matplotlib  # noqa: PLC0415 (only for --plot)
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # noqa: PLC0415

  fig, (fd, speed) = plt.subplots(1, 2, figsize=(10, 3.6))
  names = [r['model'] for r in rows]
  fd.bar(names, [r['fd'] for r in rows], color='tab:blue')
  fd.set_ylabel('FD (MNIST classifier features)')
  fd.set_title('MNIST at equal training time')
  speed.bar(names, [r['ms'] for r in rows], color='tab:orange')
  speed.set_ylabel('ms per sample (all stages)')
  speed.set_title('sampling')
  for axis in (fd, speed):
    axis.tick_params(axis='x', labelrotation=30)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def _cell(value, spec: str) -> str:
  return '' if value is None else format(value, spec)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--root', required=True, help='the workdirs of every stage')
  parser.add_argument('--data-dir', required=True, help="where tfds' mnist is prepared")
  parser.add_argument('--models', nargs='+', default=['pixel', 'latent', 'cascade'],
                      choices=[*MODELS, *REAL])
  parser.add_argument('--minutes', type=float, default=20.0, help="each model's budget")
  parser.add_argument('--num-samples', type=int, default=1000)
  parser.add_argument('--skip-training', action='store_true',
                      help='measure the workdirs trained by an earlier run')
  parser.add_argument('--plot', default='')
  args = parser.parse_args()
  root = pathlib.Path(args.root).absolute()
  root.mkdir(parents=True, exist_ok=True)
  seconds_file = root / 'train_seconds.json'
  seconds = json.loads(seconds_file.read_text()) if seconds_file.exists() else {}
  if not args.skip_training:
    for name in args.models:
      if name in MODELS:
        seconds[name] = train(name, root, args)
        seconds_file.write_text(json.dumps(seconds))
  rows = [measure(name, root, args, seconds.get(name, {})) for name in args.models]
  print('| model | training (wall, steps) | FD | KID | IS | both digits | reconstruction FD | '
        'base FD | NFE | ms / sample |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    trained = ' + '.join(f'{stage} {s / 60:.1f} min ({r["steps"][stage]} steps)'
                         for stage, s in r['seconds'].items())
    print(f"| {r['model']} | {trained} | {r['fd']:.2f} | {r['kid']:.4g} | {r['is']:.2f} | "
          f"{_cell(r.get('prompt_accuracy'), '.1%')} | {_cell(r.get('rfd'), '.2f')} | "
          f"{_cell(r.get('base_fd'), '.2f')} | {r['nfe']} | {r['ms']:.1f} |")
  if args.plot:
    plot([r for r in rows if r['model'] not in REAL], args.plot)


if __name__ == '__main__':
  main()
