"""Text to image on the digit pairs: does a generated pair show the prompt's two digits,
in the prompt's order, against the guidance scale; a 100-class oracle that is given the pair
instead of its caption; and a cascade (8x8 base + 8 -> 16 upsampler) against a
single-stage 16x16 model.

Up to four workdirs, trained first (BENCHMARKS.md, "Text that is read" and "Text to image on
the digit pairs"):
  single  configs/text/digit_pairs_16.py (16x16, text, one stage: the recipe that reads);
  labels  configs/text/digit_pairs_16_labels.py (the same network given the label
          10 * left + right: how well it draws two digits in place, reading aside);
  base    configs/text/digit_pairs.py (8x8, text);
  sr      configs/text/digit_pairs_sr.py (8 -> 16, text, noise-conditioning augmentation).
For each scale of --scales (classifier-free guidance on the captions or labels; the
upsampler's own scale is --sr-scale, its augmentation level --aug-level, by default its
config's), each model draws one sample per held-out test caption (the first --num-samples
test examples, whose captions no training example has; the oracle draws the 100 pairs in
turn) with the sampler of --method / --n-steps / --schedule in every stage. --set KEY=VALUE
... gives every model's config the overrides its workdir was trained with (an ablation:
model.attn_position=none). The digits feature classifier (trained on the digits' train
split, as `--mode eval` does) reads each half of a 16x16 pair: 'prompt' is the fraction
whose two digits are both the prompt's in order (the base's 8x8 pairs are too blurred for
it: their FD only, in the features of their bilinear upsampling), 'left' and 'right' each
side alone, and over the prompts of two different digits 'duplicate' (one digit drawn on
both halves) and 'swap' (the two digits in the other order); 'shuffled' the same images
judged against the prompts of a random permutation (a control that must fall to chance,
~1%). A second table gives the accuracy per held-out phrasing at each text model's best
scale, and a line how often the judge reads real test pairs right (it must, >= 97%, for
the accuracy to measure the model).
FD is in those features (two halves side by side) against the test split; 'consistency' is
the cascade's mean squared error between its upsampled images, downsampled, and the base's
samples. Seconds per sample: a second (compiled) draw of --time-batch samples, all stages.
A last table says whether the upsampler reads its input: its error predicting x(0) of
test pairs given their own low-resolution images against another image's.

  python benchmarks/text_digits.py --models single labels --single-workdir workdir/pairs_16 \\
      --labels-workdir workdir/pairs_16_labels --plot benchmarks/text_read.png
  python benchmarks/text_digits.py --models base cascade single --base-workdir workdir/pairs \\
      --sr-workdir workdir/pairs_sr --single-workdir workdir/pairs_16

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import ast
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import models  # noqa: E402
import run_lib  # noqa: E402
from configs.text import (  # noqa: E402
    digit_pairs,
    digit_pairs_16,
    digit_pairs_16_labels,
    digit_pairs_sr,
)
from data import bundled, scaling  # noqa: E402
from metrics import statistics  # noqa: E402
from run_lib import builder  # noqa: E402
from run_lib.conditions import test_prompts  # noqa: E402
from run_lib.evaluate import Evaluation, consistency_mse  # noqa: E402
from run_lib.sample import draw_cascade, text_stage  # noqa: E402

CONFIGS = {'base': digit_pairs, 'cascade': digit_pairs_sr, 'single': digit_pairs_16,
           'labels': digit_pairs_16_labels}


def _config(model: str, args, scale: float):
  config = CONFIGS[model].get_config(args.variant)
  config.sampling.update(method=args.method, n_steps=args.n_steps, schedule=args.schedule,
                         guidance_scale=args.sr_scale if model == 'cascade' else scale)
  config.eval.num_samples = args.num_samples
  if model == 'labels':
    config.sampling.class_labels = ''  # the 100 pairs in turn
  if model == 'cascade':
    if args.aug_level is not None:
      config.conditioning.aug_level = args.aug_level
    config.sampling.cascade_from = args.base_workdir
    config.sampling.base_overrides = (
        f'sampling.guidance_scale={scale},sampling.method={args.method},'
        f'sampling.n_steps={args.n_steps},sampling.schedule={args.schedule}')
  if args.data_dir:
    config.data.data_dir = args.data_dir
  return builder.apply(config, dict(_setting(item) for item in args.set))


def _setting(item: str) -> tuple[str, object]:
  """'key=value' of --set, the value a Python literal or else a string."""
  key, sep, value = item.partition('=')
  if not sep:
    raise SystemExit(f'error: --set {item!r} is not key=value')
  try:
    return key, ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return key, value


def per_phrasing(logits: np.ndarray, labels: np.ndarray) -> dict[int, float]:
  """Both digits right, per template of the prompts (a test caption of the pair (l, r) is
  always in its held-out phrasing, bundled.held_out_template(l, r))."""
  labels = np.asarray(labels)
  templates = np.array([bundled.held_out_template(l // 10, l % 10) for l in labels])
  right = np.argmax(logits, axis=-1) == labels
  return {int(k): float(np.mean(right[templates == k])) for k in np.unique(templates)}


def _steps(workdir: str) -> int:
  """The training steps of a workdir's latest checkpoint, from its log."""
  lines = (pathlib.Path(workdir) / 'log.jsonl').read_text().splitlines()
  return json.loads(lines[-1])['step']


def measure(model: str, workdir: str, args) -> list[dict]:
  rows = []
  for scale in args.scales:
    config = _config(model, args, scale)
    job = run_lib.build(config, workdir)
    state = job.restore()
    if state is None:
      raise SystemExit(f'error: no checkpoint in {workdir}; train it first')
    evaluation = Evaluation(job)
    text_job = text_stage(job)
    prompts = None  # the oracle draws the 100 classes in turn
    if text_job.conditioning.text:
      prompts = test_prompts(text_job.data.parts('test', text_job.evaluation.batch_size),
                             args.num_samples, distinct=False,
                             tokenizer=text_job.data.tokenizer)
    done = draw_cascade(job, state.ema_params, jax.random.key(0), args.num_samples,
                        prompts=prompts)
    labels = done.final.labels
    network, real, _ = evaluation.features()
    fake, logits = (np.asarray(a) for a in network(scaling.from_uint8(done.final.images)))
    shuffled = np.random.default_rng(0).permutation(labels)
    metrics = statistics.feature_metrics(real, fake, logits, is_splits=10, seed=0,
                                         kid_subset_size=config.eval.kid_subset_size)
    row = {'model': model, 'scale': scale, 'fd': metrics['fd'],
           'nfe': ' + '.join(str(d.nfe) for d in done.stages + (done.final,))}
    if done.final.images.shape[1] == 16:  # the classifier cannot read 8x8 pairs
      judged = statistics.pair_accuracy(logits, labels)
      row.update(prompt=judged['prompt_accuracy'], left=judged['left_accuracy'],
                 right=judged['right_accuracy'], duplicate=judged['duplicate_rate'],
                 swap=judged['swap_rate'],
                 shuffled=statistics.pair_accuracy(logits, shuffled)['prompt_accuracy'])
      if prompts is not None:
        row['phrasings'] = per_phrasing(logits, labels)
    if done.stages:
      row['consistency'] = consistency_mse(done.final.images, done.stages[-1].images)
    start = time.perf_counter()
    draw_cascade(job, state.ema_params, jax.random.key(1), args.time_batch, prompts=prompts)
    row['seconds'] = (time.perf_counter() - start) / args.time_batch
    print(json.dumps(row), file=sys.stderr, flush=True)
    rows.append(row)
  return rows


def judge(workdir: str, args) -> str:
  """How the judging classifier reads the first --num-samples real 16x16 test pairs."""
  job = run_lib.build(_config('single', args, 1.0), workdir)
  network, _, _ = Evaluation(job).features()
  examples = job.data.examples('test', job.evaluation.batch_size, limit=args.num_samples)
  _, logits = network(scaling.to_unit(examples['image'], centered=job.data.centered))
  read = statistics.pair_accuracy(np.asarray(logits), examples['label'])
  return (f"The judge reads {100 * read['prompt_accuracy']:.1f}% of {len(logits)} real test "
          f"pairs right (left {100 * read['left_accuracy']:.1f}%, right "
          f"{100 * read['right_accuracy']:.1f}%).")


def reads_input(workdir: str, args, n: int = 200) -> str:
  """Whether the upsampler uses its low-resolution input: its squared error predicting x(0)
  of n test pairs from x(t) (t = 0.3 and 0.6 T) given their own low-resolution images
  against the batch's rolled by one, at augmentation levels 0 and the sampling one."""
  job = run_lib.build(_config('cascade', args, 1.0), workdir)
  params, task, sde = job.restore().ema_params, job.task, job.sde
  examples = job.data.examples('test', 200, limit=n)
  images, tokens = jnp.asarray(examples['image']), jnp.asarray(examples['tokens'])
  low = task.input_of(images)
  caption = task.encode_text(params, tokens)
  lines = ['| augmentation level s / T | t / T | own input | another image\'s input |',
           '|---|---|---|---|']
  for level in sorted({0.0, task.aug_level}):
    for t in (0.3, 0.6):
      errors = []
      for shift in (0, 1):
        condition = task.augment(jax.random.key(1), jnp.roll(low, shift, axis=0),
                                 jnp.full((n,), level * sde.T))
        net = models.net_fn(task.model, params['score'], **task.image_inputs(condition, (16, 16)),
                            **task._text_inputs(caption))  # noqa: SLF001
        times = jnp.full((n,), t * sde.T)
        mean, std = sde.marginal_prob(images, times)
        x = mean + std[:, None, None, None] * jax.random.normal(jax.random.key(2), images.shape)
        x0 = task.parameterization.denoise_fn(sde, net)(x, times)
        errors.append(float(jnp.mean(jnp.square(x0 - images))))
      lines.append(f'| {level:g} | {t:g} | {errors[0]:.4f} | {errors[1]:.4f} |')
  return '\n'.join(lines)


def table(rows: list[dict], trained: dict) -> str:
  lines = ['| model | trained | scale s | both right (prompt accuracy) | left | right | '
           'duplicate | swap | shuffled control | FD | consistency MSE | NFE | s / sample |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  percent = lambda r, key: f'{100 * r[key]:.1f}%' if key in r else ''
  for r in rows:
    consistency = f"{r['consistency']:.4f}" if 'consistency' in r else ''
    judged = ' | '.join(percent(r, k) for k in ('prompt', 'left', 'right', 'duplicate', 'swap',
                                                 'shuffled'))
    lines.append(f"| {r['model']} | {trained[r['model']]} | {r['scale']:g} | {judged} | "
                 f"{r['fd']:.2f} | {consistency} | {r['nfe']} | {r['seconds']:.4f} |")
  return '\n'.join(lines)


def phrasing_table(rows: list[dict]) -> str:
  """Both digits right per held-out phrasing, at each model's best scale."""
  best = {}
  for r in rows:
    if 'phrasings' in r and r['prompt'] > best.get(r['model'], {'prompt': -1})['prompt']:
      best[r['model']] = r
  lines = ['| phrasing | ' + ' | '.join(f'{m} (s = {r["scale"]:g})' for m, r in best.items())
           + ' |', '|---|' + '---|' * len(best)]
  for k, template in enumerate(bundled.PAIR_TEMPLATES):
    cells = ' | '.join(f"{100 * r['phrasings'][k]:.0f}%" if k in r['phrasings'] else ''
                       for r in best.values())
    lines.append(f'| `{template}` | {cells} |')
  return '\n'.join(lines)


def plot(rows: list[dict], path: str) -> None:
  import matplotlib  # noqa: PLC0415 (only for --plot)
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # noqa: PLC0415

  fig, (acc, fd) = plt.subplots(1, 2, figsize=(9, 3.6))
  labels = {'base': 'base alone (8x8)', 'cascade': 'cascade (8x8 -> 16x16)',
            'single': 'single stage (16x16)', 'labels': '100-class oracle (16x16)'}
  for model, label in labels.items():
    mine = [r for r in rows if r['model'] == model]
    if not mine:
      continue
    scales = [r['scale'] for r in mine]
    if 'prompt' in mine[0]:
      acc.plot(scales, [100 * r['prompt'] for r in mine], 'o-', label=label)
      acc.plot(scales, [100 * r['shuffled'] for r in mine], 'x:',
               color=acc.lines[-1].get_color())
    fd.plot(scales, [r['fd'] for r in mine], 'o-', label=label)
  acc.set(xlabel='guidance scale s', ylabel='both digits as prompted (%)',
          title='held-out captions (x: shuffled control)')
  fd.set(xlabel='guidance scale s', ylabel='FD (digit classifier, both halves)')
  acc.legend(fontsize=7)
  fd.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--base-workdir', default='workdir/pairs')
  parser.add_argument('--sr-workdir', default='workdir/pairs_sr')
  parser.add_argument('--single-workdir', default='workdir/pairs_16')
  parser.add_argument('--labels-workdir', default='workdir/pairs_16_labels',
                      help='the 100-class oracle (configs/text/digit_pairs_16_labels.py)')
  parser.add_argument('--data-dir', default='', help="data.data_dir ('': the workdir's)")
  parser.add_argument('--scales', type=float, nargs='+', default=[1, 2, 3, 5])
  parser.add_argument('--sr-scale', type=float, default=1.0,
                      help="the upsampler's guidance scale (GLIDE's notebook: 1)")
  parser.add_argument('--aug-level', type=float, default=None,
                      help="the upsampler's noise-conditioning augmentation level s / T "
                           "(default: its config's)")
  parser.add_argument('--num-samples', type=int, default=500)
  parser.add_argument('--time-batch', type=int, default=64)
  parser.add_argument('--method', default='dpm_solver_pp')
  parser.add_argument('--n-steps', type=int, default=20)
  parser.add_argument('--schedule', default='logsnr')
  parser.add_argument('--models', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
  parser.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE',
                      help='config overrides the workdirs were trained with, e.g. '
                           'model.attn_position=none')
  parser.add_argument('--plot', default='')
  parser.add_argument('--variant', default='', help="the configs' variant ('tiny': a smoke run)")
  args = parser.parse_args()
  workdirs = {'base': args.base_workdir, 'cascade': args.sr_workdir,
              'single': args.single_workdir, 'labels': args.labels_workdir}
  trained = {model: f'{_steps(workdirs[model])} steps' for model in args.models}
  if 'cascade' in trained:
    trained['cascade'] = f'{_steps(args.base_workdir)} + {trained["cascade"]}'
  rows = []
  for model in args.models:
    rows += measure(model, workdirs[model], args)
  print(f"`python {' '.join(sys.argv)}`\n")
  print(table(rows, trained))
  if 'single' in args.models:
    print('\n' + judge(args.single_workdir, args))
  if any('phrasings' in r for r in rows):
    print('\nBoth digits right per held-out phrasing (each pair\'s test captions have one):\n')
    print(phrasing_table(rows))
  if 'cascade' in args.models:
    print('\nThe upsampler\'s prediction of x(0), given its own or another image\'s input:\n')
    print(reads_input(args.sr_workdir, args))
  if args.plot:
    plot(rows, args.plot)


if __name__ == '__main__':
  main()
