"""How much a trained upsampler reads its low-resolution input: its prediction of x(0) from
x(t) of test images given each image's own low-resolution input, against given another
test image's (the batch rolled by one), at a few diffusion times. An upsampler that ignores
its input predicts as well either way; one that reads it is far better given its own, most
of all at high noise, where x(t) itself says little.

The input is augmented to the task's sampling level (conditioning.aug_level), as in a
cascade; captions, when the task has them, are each image's own in both cases. Squared
error in model units, the EMA parameters of the latest checkpoint.

  python benchmarks/upsampler_reads.py --config configs/mnist/sr28.py --workdir W \\
      --config.data.data_dir=../shared/data/tfds
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import run_lib  # noqa: E402
import sde_lib  # noqa: E402
import tasks  # noqa: E402

config_flags.DEFINE_config_file('config', None, 'the upsampler config', lock_config=False)
flags.DEFINE_string('workdir', None, 'the upsampler workdir')
flags.DEFINE_integer('num_images', 200, 'test images')
flags.DEFINE_multi_float('t', [0.2, 0.5, 0.8], 'diffusion times, fractions of T')
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def x0_errors(job, params, batch: dict, t_frac: float, rng: jax.Array) -> tuple[float, float]:
  """Mean squared x(0) error at t = t_frac T given the images' own inputs and given the
  inputs of the batch rolled by one."""
  task = job.task
  images = jnp.asarray(batch['image'])
  n = images.shape[0]
  t = jnp.full((n,), t_frac * task.sde.T)
  alpha, std = task.sde.alpha(t)[:, None, None, None], task.sde.std(t)[:, None, None, None]
  noise_rng, aug_rng = jax.random.split(rng)
  x = alpha * images + std * jax.random.normal(noise_rng, images.shape)
  low = task.input_of(images)
  s = jnp.full((n,), task.aug_level * task.sde.T)
  errors = []
  for inputs in (low, jnp.roll(low, 1, axis=0)):
    conditioned = {**batch, 'image': images, **task.augment(aug_rng, inputs, s)}
    x0 = sde_lib.denoiser(task.sde, task.conditional_score_fn(params, conditioned), x, t)
    errors.append(float(jnp.mean((x0 - images) ** 2)))
  return errors[0], errors[1]


def main(argv):
  del argv
  job = run_lib.build(FLAGS.config, FLAGS.workdir)
  if not isinstance(job.task, tasks.SuperResolution):
    raise SystemExit(f'error: {FLAGS.workdir} is not an upsampler\'s workdir '
                     f'(training.task={FLAGS.config.training.task!r})')
  state = job.restore()
  batch = job.data.examples('test', FLAGS.config.eval.batch_size, limit=FLAGS.num_images)
  print(f'{FLAGS.workdir}, step {int(state.step)}, {len(batch["image"])} test images, '
        f'input at aug_level {job.task.aug_level}')
  print('| t / T | own input | another image\'s | ratio |')
  print('|---|---|---|---|')
  for k, t_frac in enumerate(FLAGS.t):
    own, other = x0_errors(job, state.ema_params, batch, t_frac, jax.random.key(k))
    print(f'| {t_frac:g} | {own:.4f} | {other:.4f} | {other / own:.2f} |')


if __name__ == '__main__':
  app.run(main)
