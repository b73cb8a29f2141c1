"""scorelab's command line: train, evaluate, sample or sweep score-based generative models.

  python main.py --config configs/digits/ve.py --workdir workdir/digits_ve --mode train
  python main.py --config configs/digits/ve.py --workdir workdir/digits_ve --mode sample \
      --config.sampling.method=dpm_solver_pp --config.sampling.n_steps=20
  python main.py --config configs/sweeps/digits_samplers.py --workdir workdir/digits \
      --mode sweep

Overrides use ml_collections syntax (--config.training.batch_size=8); the config
is locked, so a misspelt key fails. On several hosts, launch one process per
host with --multihost (jax.distributed finds the cluster itself on SLURM, Open
MPI, Cloud TPU and Kubernetes) or with --coordinator_address, --num_processes
and --process_id.
"""

import importlib.util
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

MODES = ('train', 'eval', 'sample', 'sweep')

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and outputs.')
_MODE = flags.DEFINE_enum('mode', 'train', MODES, 'What to run.')
_MULTIHOST = flags.DEFINE_bool('multihost', False,
                               'Call jax.distributed.initialize() (one process per host).')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None,
                                   'host:port of process 0, for jax.distributed.initialize '
                                   'where the cluster is not detected (implies --multihost).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in all (multi-host).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process, 0..num_processes-1.')
flags.mark_flags_as_required(['config', 'workdir'])


def _fail(message: str) -> None:
  print('error: ' + ' '.join(message.split()), file=sys.stderr)
  sys.exit(1)


def _config_file(argv: list[str]) -> str | None:
  """The config file named on the command line, --config=FILE or --config FILE (the last
  one counts), without its :variant."""
  named = None
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      named = arg.split('=', 1)[1]
    elif arg == '--config' and i + 1 < len(argv):
      named = argv[i + 1]
  return None if named is None else named.split(':')[0]


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with every bad flag, config file or override reported on one line."""
  path = _config_file(argv)
  if path is not None and not os.path.isfile(path):
    _fail(f'config file {path} not found')
  try:
    rest = flags.FLAGS(argv)
    # A config file that failed to load raises only when the config is read.
    _CONFIG.value.get('seed')
  except AttributeError as e:
    if "has no attribute 'get_config'" in str(e):
      _fail(f'config file {path} has no get_config() returning the config')
    _fail(_unknown_key(argv, e))
  except KeyError as e:  # ml_collections raises these, not a flags.Error, for unknown keys
    _fail(_unknown_key(argv, e))
  except (flags.Error, TypeError, ValueError) as e:
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    if any(line.startswith('Traceback') for line in lines):  # a config's get_config() raised
      _fail(f'{lines[0]} {lines[-1].strip()}')
    _fail(str(e))
  except OSError as e:  # a config file that raised while loading
    cause = e.__cause__ or e.__context__ or e
    lines = [line.strip() for line in str(cause).strip().splitlines() if line.strip()]
    _fail(f'config file {path} failed to load: {lines[-1] if lines else type(cause).__name__}')
  except Exception as e:  # noqa: BLE001 (the config file's own code raised while importing)
    _fail(f'config file {path} failed to load: {type(e).__name__}: {e}')
  return rest


def _unknown_key(argv: list[str], e: Exception) -> str:
  """The one line for an override of a key the config lacks."""
  key = re.findall(r"\w+", str(e))[0] if str(e) else '?'
  bad = [a.split('=')[0] for a in argv if a.startswith('--config.') and
         re.search(rf'\.{key}(\.|=|$)', a.split('=')[0])]
  hint = re.search(r'Did you mean "(\w+)"', str(e))
  return (f'unknown config key {bad[0] if bad else key}'
          + (f' (did you mean {hint.group(1)}?)' if hint else ''))


def _sweep_points():
  """The sweep() of the config file, imported the way config_flags loads it."""
  path = config_flags.get_config_filename(flags.FLAGS['config']).split(':')[0]
  spec = importlib.util.spec_from_file_location('_sweep_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not callable(getattr(module, 'sweep', None)):
    _fail(f'{path} has no sweep() listing the points; see configs/sweeps/')
  return module.sweep


def _use_every_core(config) -> None:
  """One XLA CPU device per core, as far as the batch sizes divide evenly among them.

  XLA's CPU convolutions use one core each, so the batch is sharded over one
  device per core. XLA reads the flag when jax first touches a device, which is
  after this; accelerators ignore it, and a device count the user set is kept.
  """
  if 'xla_force_host_platform_device_count' in os.environ.get('XLA_FLAGS', ''):
    return
  sizes = (config.training.batch_size, config.sampling.batch_size, config.eval.batch_size)
  devices = max(d for d in range(1, len(os.sched_getaffinity(0)) + 1)
                if all(size % d == 0 for size in sizes))
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             f' --xla_force_host_platform_device_count={devices}').strip()


# Warnings of the libraries that a user cannot act on: tfds decodes images with PIL where
# OpenCV is missing (the digits decode in microseconds either way), and orbax notes that the
# job registers its own jax.Array handler (run_lib.state, for faster CPU checkpoints).
_UNACTIONABLE = ('OpenCV is not installed', 'Type handler registry type')


def _quiet(record) -> bool:
  return not any(str(record.msg).startswith(prefix) for prefix in _UNACTIONABLE)


def main(argv):
  del argv
  # Imported once the command line is read: run_lib loads jax, tfds and orbax (3 s), which a
  # bad flag or config file need not wait for.
  import run_lib  # noqa: PLC0415

  logging.get_absl_logger().addFilter(_quiet)
  config = _CONFIG.value
  _use_every_core(config)
  explicit = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if _MULTIHOST.value or any(v is not None for v in explicit):
    import jax
    jax.distributed.initialize(*explicit)
  logging.set_verbosity(logging.WARNING)
  points = _sweep_points() if _MODE.value == 'sweep' else None
  try:
    job = run_lib.build(config, _WORKDIR.value)
    if points is not None:
      run_lib.sweep(job, points, run_lib.Variants(config))
    else:
      {'train': run_lib.train, 'eval': run_lib.evaluate, 'sample': run_lib.sample}[_MODE.value](job)
  except run_lib.USER_ERRORS as e:
    _fail(str(e))


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
