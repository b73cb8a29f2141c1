"""scorelab's command line: train, evaluate or sample score-based generative models.

  python main.py --config configs/digits/ve.py --workdir workdir/digits_ve --mode train
  python main.py --config configs/digits/ve.py --workdir workdir/digits_ve --mode sample \
      --config.sampling.num_samples=64

Overrides use ml_collections syntax (--config.training.batch_size=8); the config
is locked, so a misspelt key fails. On several hosts, launch one process per
host: jax.distributed is initialised from the cluster environment.
"""

import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

import run_lib

MODES = ('train', 'eval', 'sample')

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and outputs.')
_MODE = flags.DEFINE_enum('mode', 'train', MODES, 'What to run.')
_MULTIHOST = flags.DEFINE_bool('multihost', False,
                               'Call jax.distributed.initialize() (one process per host).')
flags.mark_flags_as_required(['config', 'workdir'])


def _fail(message: str) -> None:
  print('error: ' + ' '.join(message.split()), file=sys.stderr)
  sys.exit(1)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with every bad flag or config override reported on one line."""
  try:
    rest = flags.FLAGS(argv)
    _CONFIG.value  # noqa: B018 (a config file that failed to load raises only when read)
  except (AttributeError, KeyError) as e:
    # ml_collections raises these, not a flags.Error, for a key the config lacks.
    key = re.findall(r"\w+", str(e))[0] if str(e) else '?'
    bad = [a.split('=')[0] for a in argv if a.startswith('--config.') and
           re.search(rf'\.{key}(\.|=|$)', a.split('=')[0])]
    hint = re.search(r'Did you mean "(\w+)"', str(e))
    _fail(f'unknown config key {bad[0] if bad else key}' +
          (f' (did you mean {hint.group(1)}?)' if hint else ''))
  except (flags.Error, TypeError, ValueError) as e:
    _fail(str(e))
  return rest


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


def main(argv):
  del argv
  _use_every_core(_CONFIG.value)
  if _MULTIHOST.value:
    import jax
    jax.distributed.initialize()
  logging.set_verbosity(logging.WARNING)
  run = {'train': run_lib.train, 'eval': run_lib.evaluate, 'sample': run_lib.sample}[_MODE.value]
  try:
    run(_CONFIG.value, _WORKDIR.value)
  except (run_lib.JobError, ValueError, OSError) as e:
    _fail(str(e))


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
