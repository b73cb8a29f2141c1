"""Throughput of the job's own train step and sampler on CPU host devices, 1 device against all.

Training: for each configuration, images/s of the train step that `run_lib.train`
runs, built by run_lib's own `jit_train_step` from the job's `Job` (SDE,
parameterisation, network, loss, optimiser) and `init_state`, on meshes from
`create_mesh`, and jitted as `run_lib.train` jits it: state and
keys replicated, images sharded over the mesh's 'data' axis, the state donated.
It runs once on a one-device mesh and once on run_lib's mesh of every device; the
images are fixed random batches already on the devices, so the input pipeline
and the per-step key folding of `run_lib.train` are not timed.

Sampling: for one digits configuration, the jitted program `run_lib.sample`
runs (`run_lib.sample.compiled_sampler` of its `Job`, with its shardings: parameters replicated,
the batch split over every device) against its fair peer, a jitted
`lax.fori_loop` of as many bare score evaluations on the same batch, devices and
sharding. The ratio sampler / bare loop is the cost of the sampler's own work
(noise, SDE coefficients, per-sample keys, the loop). Two more rows: the same
evaluations dispatched one jitted call at a time from Python (what running the
network inside a loop body costs on XLA:CPU), and the bare loop on one device.
Parameters are a fresh initialisation: the cost of a call does not depend on
training.

Every program is compiled first (jit lower + compile, reported), called once to
warm up, then timed `--reps` times, each call ended by `block_until_ready`; the
tables give the median. The programs compared in a table (one device and all;
the sampler and its peers) are timed round-robin, call by call, so that the load
of a shared machine falls on all alike. The one-device mesh lives in the same
process as the others (a separate `--devices 1` run gives the same numbers).
The script sets XLA_FLAGS=--xla_force_host_platform_device_count=N itself
(N = --devices, default: the cores it may run on, as main.py does).

  python benchmarks/train_throughput.py
  python benchmarks/train_throughput.py --quick
  python benchmarks/train_throughput.py --configs digits_vp cifar10_small --reps 20

The default run takes about 6 minutes on 2 idle cores, --quick about 2. The
ready-to-paste markdown (command, machine, tables) goes to stdout, progress to
stderr.
"""

import argparse
import functools
import importlib
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Each configuration: the config module and the keys changed from it. A CPU cannot
# time the CIFAR-10 network at its paper size; its config scans 5 steps per call
# (n_jitted_steps), which XLA:CPU runs ~20x slower per step than one step per call
# (convolutions inside a loop body), so the CPU-sized run takes 1 like the digits.
CONFIGS = {
    'digits_ve': {'module': 'configs.digits.ve', 'overrides': {}},
    'digits_vp': {'module': 'configs.digits.vp', 'overrides': {}},
    'digits_subvp': {'module': 'configs.digits.subvp', 'overrides': {}},
    'cifar10_small': {'module': 'configs.ve.cifar10_ncsnpp_continuous', 'overrides': {
        'model.nf': 32, 'model.num_res_blocks': 2, 'training.batch_size': 16,
        'training.n_jitted_steps': 1}},
}
SAMPLING_CONFIGS = ('digits_ve', 'digits_vp', 'digits_subvp')
DEVICE_FLAG = '--xla_force_host_platform_device_count'


def _log(*parts):
  print(*parts, file=sys.stderr, flush=True)


def _force_host_devices(n: int) -> None:
  """Sets XLA_FLAGS to n host devices; must run before jax is imported."""
  flags = os.environ.get('XLA_FLAGS', '')
  found = re.search(DEVICE_FLAG + r'=(\d+)', flags)
  if found and int(found.group(1)) != n:
    sys.exit(f'XLA_FLAGS already sets {found.group(0)}; unset it or pass --devices '
             f'{found.group(1)}')
  if not found:
    os.environ['XLA_FLAGS'] = f'{flags} {DEVICE_FLAG}={n}'.strip()


def _code_version() -> str:
  """The last commit that changed the code timed here, '+dirty' with uncommitted changes."""
  paths = ['run_lib', 'models', 'sde_lib', 'configs']
  try:
    commit = subprocess.run(['git', 'log', '-1', '--format=%h', '--', *paths], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--', *paths], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'
  return commit + ('+dirty' if dirty else '')


def _cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def load_config(name: str, overrides: dict | None = None):
  """The named configuration with its overrides (dotted keys), and {key: (old, new)}."""
  spec = CONFIGS[name]
  config = importlib.import_module(spec['module']).get_config()
  changed = {}
  for key, value in {**spec['overrides'], **(overrides or {})}.items():
    *parents, leaf = key.split('.')
    node = config
    for part in parents:
      node = node[part]
    if node[leaf] != value:
      changed[key] = (node[leaf], value)
      node[leaf] = value
  return config, changed


def _timed(call) -> float:
  start = time.perf_counter()
  call()
  return time.perf_counter() - start


def _compile(jitted, *args) -> float:
  """Seconds to lower and compile `jitted` for args; later calls reuse the executable."""
  start = time.perf_counter()
  jitted.lower(*args).compile()
  return time.perf_counter() - start


def _round_robin(calls: dict, *, warmup: int, reps: int) -> dict[str, list[float]]:
  """{name: seconds of each timed call}, taking one call of each in turn, so that the load
  of a shared machine falls on all alike."""
  seconds = {name: [] for name in calls}
  for i in range(warmup + reps):
    for name, call in calls.items():
      elapsed = _timed(call)
      if i >= warmup:
        seconds[name].append(elapsed)
  return seconds


def _meshes(n_dev: int) -> dict:
  """{'x1': a one-device mesh, 'xN': run_lib's mesh of every device} (N = n_dev > 1)."""
  import jax

  import run_lib
  meshes = {'x1': run_lib.create_mesh(jax.devices()[:1])}
  if n_dev > 1:
    meshes[f'x{n_dev}'] = run_lib.create_mesh()
  return meshes


# ----------------------------------------------------------------------------- training


def prepare_train(config, mesh) -> dict:
  """run_lib.train's step on `mesh`, compiled, and a call running it once (n_jitted_steps)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P

  import run_lib
  from data import scaling

  training = config.training
  with tempfile.TemporaryDirectory(prefix='train_throughput-') as workdir:
    job = run_lib.build(config, workdir)
  replicated = NamedSharding(mesh, P())
  state = run_lib.init_state(job.task, job.optimizer, replicated, seed=config.seed,
                             image_shape=job.image_shape)

  step_fn = run_lib.jit_train_step(job, mesh)
  batch_sharding = NamedSharding(mesh, P(None, 'data'))

  k = training.n_jitted_steps
  size, channels = config.data.image_size, config.data.num_channels
  local = np.random.default_rng(0).uniform(
      size=(k, training.batch_size, size, size, channels)).astype(np.float32)
  local = scaling.from_unit(local, centered=config.data.centered)
  batches = {'image': jax.make_array_from_process_local_data(batch_sharding, local)}  # [k, B, ...]
  train_key = job.stream('train')
  rngs = jnp.stack([jax.random.fold_in(train_key, s) for s in range(k)])

  compile_s = _compile(step_fn, state, batches, rngs)
  holder = {'state': state}

  def call():
    holder['state'], metrics = step_fn(holder['state'], batches, rngs)
    jax.block_until_ready((holder['state'], metrics))

  n_params = sum(math.prod(x.shape) for x in jax.tree.leaves(state.params))
  return {'compile': compile_s, 'call': call,
          'images_per_call': k * training.batch_size, 'params': n_params}


def run_training(names: list[str], *, n_dev: int, warmup: int, reps: int,
                 cifar_batch: int | None, n_jitted_steps: int | None) -> list[dict]:
  results = []
  for name in names:
    overrides = {}
    if name == 'cifar10_small' and cifar_batch:
      overrides['training.batch_size'] = cifar_batch
    if n_jitted_steps:
      overrides['training.n_jitted_steps'] = n_jitted_steps
    config, changed = load_config(name, overrides)
    _log(f'train {name}: batch {config.training.batch_size}, '
         f'{config.training.n_jitted_steps} step(s) per call')
    load = os.getloadavg()[0]
    runs = {}
    for label, mesh in _meshes(n_dev).items():
      if config.training.batch_size % mesh.size:
        sys.exit(f'{name}: batch {config.training.batch_size} is not divisible by {mesh.size} '
                 'devices')
      _log(f'  {label}: init and compile')
      runs[label] = prepare_train(config, mesh)
    _log(f'  timing {warmup} + {reps} calls each')
    seconds = _round_robin({label: run.pop('call') for label, run in runs.items()},
                           warmup=warmup, reps=reps)  # popped: frees the states afterwards
    for label, run in runs.items():
      run['seconds'] = seconds[label]
    results.append({'name': name, 'config': config, 'changed': changed, 'runs': runs,
                    'load': load})
  return results


def _network(config) -> str:
  m = config.model
  attn = ','.join(map(str, m.attn_resolutions)) or 'none'
  return (f'{m.name} nf={m.nf} ch_mult={tuple(m.ch_mult)} res_blocks={m.num_res_blocks} '
          f'attn@{attn}')


def train_table(results: list[dict], n_dev: int) -> str:
  xn = f'x{n_dev}' if n_dev > 1 else None
  headers = ['config', 'SDE', 'network', 'params', 'HxWxC', 'batch', 'steps/call',
             'compile s x1']
  if xn:
    headers += [f'compile s {xn}']
  headers += ['x1 img/s'] + ([f'{xn} img/s', f'{xn} / x1'] if xn else []) + ['load avg']
  rows = []
  for r in results:
    c, runs = r['config'], r['runs']
    ips = {label: run['images_per_call'] / statistics.median(run['seconds'])
           for label, run in runs.items()}
    row = [r['name'], c.sde.name, _network(c), f"{runs['x1']['params']:,}",
           f'{c.data.image_size}x{c.data.image_size}x{c.data.num_channels}',
           str(c.training.batch_size), str(c.training.n_jitted_steps),
           f"{runs['x1']['compile']:.1f}"]
    if xn:
      row += [f"{runs[xn]['compile']:.1f}"]
    row += [f"{ips['x1']:.1f}"]
    if xn:
      row += [f'{ips[xn]:.1f}', f"{ips[xn] / ips['x1']:.2f}"]
    row += [f"{r['load']:.2f}"]
    rows.append(row)
  notes = []
  for r in results:
    if r['changed']:
      what = ', '.join(f'{k} {old!r} -> {new!r}' for k, (old, new) in r['changed'].items())
      notes.append(f"- {r['name']}: `{CONFIGS[r['name']]['module'].replace('.', '/')}.py` "
                   f'with {what}; every other key as configured.')
  return _table(headers, rows) + ('\n\n' + '\n'.join(notes) if notes else '')


# ----------------------------------------------------------------------------- sampling


def prepare_sampling(config, workdir: str) -> dict:
  """run_lib's jitted sampler and its peers, compiled: a fori_loop of as many bare score
  evaluations on the same devices and sharding, the same evaluations as one jitted call
  each, and the fori_loop on one device."""
  import jax
  import jax.numpy as jnp

  import run_lib
  from run_lib.sample import compiled_sampler

  # run_lib.sample's own jitted program (draw() adds only the copy to uint8 on the host).
  job = run_lib.build(config, workdir)
  n = config.sampling.batch_size
  shape = (n, *job.image_shape)
  # run_lib.sample holds the restored EMA parameters replicated over the job's mesh.
  params = run_lib.init_state(job.task, job.optimizer, job.replicated, seed=config.seed,
                              image_shape=job.image_shape).ema_params
  rng = jax.random.fold_in(job.stream('sample'), 0)

  # run(params, classifier params (none: unguided), rng, number of the first sample, tokens
  # and low-resolution inputs (none))
  arguments = (params, None, rng, jnp.int32(0), None, None)
  sample = functools.partial(compiled_sampler(job, n, 0), *arguments)
  start = time.perf_counter()
  compiled = compiled_sampler(job, n, 0).lower(*arguments).compile()
  compile_s = {'sampler': time.perf_counter() - start}
  x_sharding = compiled.output_shardings[0]  # where run_lib's sampler keeps the batch

  score = job.task.score_fn
  nfe = int(sample().nfe)
  timesteps = jnp.linspace(job.sde.T, config.sampling.eps, nfe)

  def evaluate(params, x, t):  # one score evaluation, chained so that none is hoisted
    return x + 1e-6 * score(params)(x, jnp.full((n,), t))

  def bare_loop(params, x):
    return jax.lax.fori_loop(0, nfe, lambda i, x: evaluate(params, x, timesteps[i]), x)

  x = jax.device_put(job.sde.prior_sampling(jax.random.key(1), shape), x_sharding)
  ts = jax.device_put(list(timesteps), job.replicated)
  params1, x1 = jax.device_put((params, x), jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  bare = jax.jit(bare_loop)
  one_eval = jax.jit(evaluate)
  compile_s['bare_loop'] = _compile(bare, params, x)
  compile_s['python_loop'] = _compile(one_eval, params, x, ts[0])
  compile_s['bare_loop_x1'] = _compile(bare, params1, x1)

  def python_loop():
    y = x
    for t in ts:
      y = one_eval(params, y, t)
    return y

  calls = {'sampler': lambda: jax.block_until_ready(sample()),
           'bare_loop': lambda: jax.block_until_ready(bare(params, x)),
           'python_loop': lambda: jax.block_until_ready(python_loop()),
           'bare_loop_x1': lambda: jax.block_until_ready(bare(params1, x1))}
  spec = getattr(x_sharding, 'spec', None)
  placement = (f'{len(x_sharding.device_set)} devices, batch '
               + ('sharded' if spec and spec[0] else 'replicated'))
  return {'compile': compile_s, 'calls': calls, 'nfe': nfe, 'batch': n, 'placement': placement}


def run_sampling(name: str, *, warmup: int, reps: int, steps: int | None,
                 batch: int | None) -> dict:
  overrides = {}
  if steps:
    overrides['sde.N'] = steps
  if batch:
    overrides['sampling.batch_size'] = batch
  config, changed = load_config(name, overrides)
  s = config.sampling
  if s.method != 'pc':
    sys.exit(f'{name}: sampling.method is {s.method!r}; the bare loop needs the fixed NFE of pc')
  _log(f'sample {name}: {s.method} {s.predictor}+{s.corrector}, N={config.sde.N}, batch '
       f'{s.batch_size}; compiling')
  load = os.getloadavg()[0]
  with tempfile.TemporaryDirectory(prefix='train_throughput-') as workdir:
    run = prepare_sampling(config, workdir)
    _log(f'  timing {warmup} + {reps} calls each')
    run['seconds'] = _round_robin(run.pop('calls'), warmup=warmup, reps=reps)
  return {'name': name, 'config': config, 'changed': changed, 'run': run, 'load': load}


def sampling_table(result: dict) -> str:
  c, run = result['config'], result['run']
  s = c.sampling
  programs = [
      ('sampler', f'PC sampler {s.predictor}+{s.corrector} (run_lib.sample\'s jitted program)',
       run['placement']),
      ('bare_loop', 'bare score evaluations in a jitted lax.fori_loop', run['placement']),
      ('python_loop', 'bare score evaluations, one jitted call each from Python',
       run['placement']),
      ('bare_loop_x1', 'bare score evaluations in a jitted lax.fori_loop', '1 device'),
  ]
  headers = ['program', 'devices', 'NFE', 'compile s', 's per call', 'samples/s',
             'evaluations x images/s', '/ bare loop']
  bare = statistics.median(run['seconds']['bare_loop'])
  rows = []
  for key, what, where in programs:
    seconds = statistics.median(run['seconds'][key])
    rows.append([what, where, str(run['nfe']), f"{run['compile'][key]:.1f}", f'{seconds:.3f}',
                 f"{run['batch'] / seconds:.1f}", f"{run['batch'] * run['nfe'] / seconds:.0f}",
                 f'{seconds / bare:.2f}'])
  head = (f"{result['name']} ({c.sde.name}, {_network(c)}, "
          f'{c.data.image_size}x{c.data.image_size}x{c.data.num_channels}): batch '
          f'{s.batch_size}, N={c.sde.N}, load avg {result["load"]:.2f} at start')
  if result['changed']:
    head += '; changed: ' + ', '.join(f'{k} {old!r} -> {new!r}'
                                      for k, (old, new) in result['changed'].items())
  return head + '\n\n' + _table(headers, rows)


# ----------------------------------------------------------------------------- main


def _table(headers, rows) -> str:
  lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--devices', type=int, default=len(os.sched_getaffinity(0)),
                      help='host devices of the all-device runs (default: the usable cores)')
  parser.add_argument('--configs', nargs='*', choices=sorted(CONFIGS),
                      help='training configurations (default: all; none: skip training)')
  parser.add_argument('--reps', type=int, help='timed train calls per run (default 10)')
  parser.add_argument('--warmup', type=int, default=1, help='untimed calls before the timed ones')
  parser.add_argument('--cifar-batch', type=int,
                      help=f"cifar10_small's batch (default "
                           f"{CONFIGS['cifar10_small']['overrides']['training.batch_size']})")
  parser.add_argument('--n-jitted-steps', type=int,
                      help='train steps per compiled call (lax.scan) in every configuration '
                           "(default: the config's; 1 for cifar10_small)")
  parser.add_argument('--sample-config', default='digits_vp',
                      choices=[*SAMPLING_CONFIGS, 'none'], help="sampling part ('none': skip)")
  parser.add_argument('--sample-steps', type=int, help="the SDE's N (default: the config's)")
  parser.add_argument('--sample-batch', type=int,
                      help="samples per call (default: the config's sampling.batch_size)")
  parser.add_argument('--sample-reps', type=int, help='timed sampler calls (default 5)')
  parser.add_argument('--quick', action='store_true',
                      help='digits_vp and cifar10_small, 5 train reps, 3 sampler reps')
  args = parser.parse_args()
  if args.devices < 1:
    parser.error('--devices must be positive')
  _force_host_devices(args.devices)

  import jax

  n_dev = jax.device_count()
  names = args.configs if args.configs is not None else (
      ['digits_vp', 'cifar10_small'] if args.quick else list(CONFIGS))
  reps = args.reps or (5 if args.quick else 10)
  sample_reps = args.sample_reps or (3 if args.quick else 5)

  command = 'python benchmarks/train_throughput.py ' + shlex.join(sys.argv[1:])
  load_start = os.getloadavg()[0]
  start = time.perf_counter()
  training = run_training(names, n_dev=n_dev, warmup=args.warmup, reps=reps,
                          cifar_batch=args.cifar_batch, n_jitted_steps=args.n_jitted_steps)
  sampling = None
  if args.sample_config != 'none':
    sampling = run_sampling(args.sample_config, warmup=args.warmup, reps=sample_reps,
                            steps=args.sample_steps, batch=args.sample_batch)
  elapsed = time.perf_counter() - start
  load_end = os.getloadavg()[0]

  import flax
  timed = ([f'{reps} train calls'] if training else []) + (
      [f'{sample_reps} calls of each sampling program'] if sampling else [])
  machine = (f'{os.cpu_count()} cores ({_cpu_name()}), {n_dev} XLA host device(s), jax '
             f'{jax.__version__}, flax {flax.__version__}, python {platform.python_version()}; '
             f'code at {_code_version()}; {args.warmup} warm-up + {" and ".join(timed)} timed, '
             f'medians; load average {load_start:.2f} at start, {load_end:.2f} at end; '
             f'{elapsed:.0f} s in all')
  out = ['```', command.strip(), '```', '', machine]
  loads = [load_start, load_end] + [r['load'] for r in training] + (
      [sampling['load']] if sampling else [])
  if max(loads) > os.cpu_count() + 0.5:
    out.append(f'\n**The load average exceeded the {os.cpu_count()} cores: other processes '
               'shared the CPUs; the numbers are slower and noisier than on an idle machine.**')
  if training:
    out += ['', '#### Train step (run_lib.train\'s jitted, sharded, donating step), images/s', '',
            train_table(training, n_dev)]
  if sampling:
    out += ['', '#### Sampling: the PC sampler against bare network evaluations', '',
            sampling_table(sampling)]
  print('\n'.join(out))


if __name__ == '__main__':
  main()
