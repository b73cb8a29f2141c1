"""scorelab's command line: train, evaluate or sample score-based generative models.

  python main.py --config configs/digits/ve.py --workdir workdir/digits_ve --mode train
  python main.py --config configs/digits/ve.py --workdir workdir/digits_ve --mode sample \
      --config.sampling.num_samples=64

Overrides use ml_collections syntax (--config.training.batch_size=8); the config
is locked, so a misspelt key fails. On several hosts, launch one process per
host: jax.distributed is initialised from the cluster environment.
"""

import os
import sys

# XLA's CPU convolutions use one core each: give every core its own CPU device so
# that the batch is sharded over all of them (accelerator devices are unaffected).
if 'xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_'
                             f'device_count={len(os.sched_getaffinity(0))}').strip()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import run_lib  # noqa: E402

MODES = ('train', 'eval', 'sample')

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and outputs.')
_MODE = flags.DEFINE_enum('mode', 'train', MODES, 'What to run.')
_MULTIHOST = flags.DEFINE_bool('multihost', False,
                               'Call jax.distributed.initialize() (one process per host).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  if _MULTIHOST.value:
    import jax
    jax.distributed.initialize()
  logging.set_verbosity(logging.WARNING)
  run = {'train': run_lib.train, 'eval': run_lib.evaluate, 'sample': run_lib.sample}[_MODE.value]
  try:
    run(_CONFIG.value, _WORKDIR.value)
  except (run_lib.JobError, ValueError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
