"""Train steps of paper-scale configurations on an accelerator: that they compile and fit,
their compile time, steps/s and images/s, and the device's peak memory.

For each config file of --configs (paths under configs/), the job's own step: the task,
optimiser and `init_state` that `run_lib.train` builds (a latent model's frozen autoencoder
from its autoencoder config file, as tests/configs/test_configs.py builds it: the weights do not
change the cost; an autoencoder's LPIPS with random weights, which none can download here),
jitted with run_lib's `make_train_step` and the state donated, on one device, at the
config's batch size or --batch. Batches are random images of the config's shape, already on
the device; the step counter is set past an autoencoder's disc_start so that its
PatchGAN and adaptive weight are in the step. Each program is compiled (timed), called
--warmup times, then timed over --steps calls, each ended by block_until_ready.

  python benchmarks/paper_steps.py --configs latent/kl_f8.py latent/celebahq256_ldm.py
  python benchmarks/paper_steps.py --configs latent/kl_f8.py --set autoencoder.disc_layers=0 \
      --no-lpips   # the loss of the PyTorch peer, benchmarks/peer_autoencoder_step.py

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import ast
import importlib
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import run_lib  # noqa: E402
from run_lib import builder  # noqa: E402
from run_lib.state import init_state  # noqa: E402
from run_lib.train import make_train_step  # noqa: E402


def load(path: str):
  return importlib.import_module('configs.' + path[:-3].replace('/', '.')).get_config()


def create_task(config):
  """The config's task as run_lib.build builds it; a latent one's first stage from the
  config file its default autoencoder workdir is named after (workdir/kl_f4: latent/kl_f4.py)."""
  first_stage = None
  if config.latent.autoencoder_workdir:
    name = pathlib.Path(config.latent.autoencoder_workdir).name
    first_stage = builder.first_stage_of(load(f'latent/{name}.py'), name)
  return builder.create_task(config, first_stage=first_stage)


def measure(path: str, args) -> dict:
  config = load(path)
  for item in args.set:  # key=value, the value a Python literal
    key, value = item.split('=', 1)
    section, name = key.rsplit('.', 1)
    config[section][name] = ast.literal_eval(value)
  if (config.training.task == 'autoencoder' and not config.autoencoder.lpips_weights
      and config.data.image_size >= 16 and args.lpips):
    config.autoencoder.lpips_weights = 'random'  # builds the LPIPS network into the loss
  task = create_task(config)
  batch = args.batch or config.training.batch_size
  shape = (config.data.image_size, config.data.image_size, config.data.num_channels)
  mesh = run_lib.create_mesh(jax.devices()[:1])
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  optimizer = builder.create_optimizer(config)
  state = init_state(task, optimizer, replicated, seed=0, image_shape=shape)
  start_step = getattr(task, 'disc_start', 0)  # an autoencoder's GAN terms on
  state = state.replace(step=jnp.asarray(start_step, jnp.int32))
  step = make_train_step(
      lambda params, b, rng, s: task.loss_terms(params, b, rng, train=True, step=s),
      optimizer, ema_rate=config.model.ema_rate, frozen=task.frozen)
  low, high = (-1.0, 1.0) if config.data.centered else (0.0, 1.0)
  images = jax.random.uniform(jax.random.key(1), (batch,) + shape, minval=low, maxval=high)
  inputs = {'image': images}
  if 'label' in task.batch_keys:
    inputs['label'] = jnp.zeros((batch,), jnp.int32)
  jitted = jax.jit(step, donate_argnums=0)
  started = time.perf_counter()
  compiled = jitted.lower(state, inputs, jax.random.key(0)).compile()
  compile_seconds = time.perf_counter() - started
  for i in range(args.warmup):
    state, metrics = compiled(state, inputs, jax.random.key(i))
  jax.block_until_ready(state)
  times = []
  for i in range(args.steps):
    started = time.perf_counter()
    state, metrics = compiled(state, inputs, jax.random.key(100 + i))
    jax.block_until_ready(state)
    times.append(time.perf_counter() - started)
  seconds = float(np.median(times))
  stats = jax.devices()[0].memory_stats() or {}
  row = {'config': path, 'task': task.name, 'batch': batch, 'image': shape,
         'parameters': sum(x.size for x in jax.tree.leaves(state.params)),
         'compile_s': compile_seconds, 'step_s': seconds, 'images_per_s': batch / seconds,
         'peak_gib': stats.get('peak_bytes_in_use', 0) / 2**30,
         'loss': float(metrics['loss'])}
  print(json.dumps(row), file=sys.stderr, flush=True)
  return row


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--configs', nargs='+', required=True)
  parser.add_argument('--batch', type=int, default=0, help="0: the config's")
  parser.add_argument('--set', nargs='*', default=[], help='config overrides, key=value')
  parser.add_argument('--no-lpips', dest='lpips', action='store_false',
                      help="no LPIPS in an autoencoder's loss")
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--warmup', type=int, default=2)
  args = parser.parse_args()
  rows = [measure(path, args) for path in args.configs]
  print(f'`python {" ".join(sys.argv)}` on {jax.devices()[0].device_kind} '
        f'(jax {jax.__version__})\n')
  print('| config | task | batch | parameters | compile (s) | step (ms) | images/s | peak memory '
        '(GiB) |')
  print('|---|---|---|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['config']} | {r['task']} | {r['batch']} | {r['parameters']:,} | "
          f"{r['compile_s']:.0f} | {1e3 * r['step_s']:.1f} | {r['images_per_s']:.1f} | "
          f"{r['peak_gib']:.1f} |")


if __name__ == '__main__':
  main()
