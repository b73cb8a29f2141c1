"""One process of a two-process job on this machine (run by tests/run_lib/test_train.py).

  python tests/multihost_worker.py PROCESS_ID PORT WORKDIR DATA_DIR

Each process has two CPU devices; jax.distributed joins them into one mesh of four.
"""

import json
import os
import sys

# Two devices, at the test session's optimisation level.
os.environ['XLA_FLAGS'] = ' '.join(
    ['--xla_force_host_platform_device_count=2']
    + [flag for flag in os.environ.get('XLA_FLAGS', '').split()
       if not flag.startswith('--xla_force_host_platform_device_count')])

import jax

import run_lib
from configs.digits import ve


def main(process_id: int, port: str, workdir: str, data_dir: str) -> None:
  jax.distributed.initialize(f'localhost:{port}', num_processes=2, process_id=process_id)
  config = ve.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.n_iters = 6
  # Sampling and evaluation across hosts are checked by `sample` and `evaluate` below; the
  # snapshot grids, the strip and bits/dim would only add compilations.
  config.training.snapshot_sampling = False
  config.sampling.trajectory_frames = 0
  config.eval.metrics = ('loss', 'fid')
  job = run_lib.build(config, workdir)
  run_lib.train(job)
  images = run_lib.sample(job)
  metrics = run_lib.evaluate(job)[6]
  print('result ' + json.dumps({'devices': jax.device_count(), 'samples': images.tolist(),
                                'metrics': metrics}), flush=True)


if __name__ == '__main__':
  main(int(sys.argv[1]), *sys.argv[2:])
