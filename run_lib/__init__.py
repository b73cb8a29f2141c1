"""The side effects of scorelab: build a job from a config, train, sample, evaluate, sweep.

Only `build` reads the ConfigDict; everything it calls (`sde_lib`, `models`,
`input_pipeline`, `evaluation`) takes explicit arguments.

  build     the config -> SDE, parameterisation, network, task, optimiser, sampler, data; Job
  state     TrainState and its orbax checkpoints
  mesh      the device mesh; gathering arrays from every host
  train     the pure train step, its sharded jit, the training loop
  sample    the compiled sampler and --mode sample
  evaluate  test loss, bits/dim, FD/KID/IS of checkpoints (--mode eval)
  sweep     --mode sweep: grids of overrides, results table and plot
  io        PNG grids, trajectory strips, logs, JSON
"""

from run_lib.build import (Job, SamplerSpec, create_dataset, create_loss_fn, create_model,
                           create_optimizer, create_parameterization, create_sampler,
                           create_sde, create_task, stream)
from run_lib.errors import JobError
from run_lib.evaluate import Evaluator, evaluate
from run_lib.io import image_grid, save_png, to_uint8_images, trajectory_strip
from run_lib.mesh import check_divisible, create_mesh, gather
from run_lib.sample import draw, sample
from run_lib.state import (TrainState, checkpoint_manager, init_state, replicated_abstract,
                           restore_checkpoint)
from run_lib.sweep import run as sweep
from run_lib.train import jit_train_step, make_multi_step, make_train_step, train

__all__ = [
    'Evaluator', 'Job', 'JobError', 'SamplerSpec', 'TrainState', 'check_divisible',
    'checkpoint_manager', 'create_dataset', 'create_loss_fn', 'create_mesh', 'create_model',
    'create_optimizer', 'create_parameterization', 'create_sampler', 'create_sde', 'create_task',
    'draw',
    'evaluate', 'gather', 'image_grid', 'init_state', 'jit_train_step', 'make_multi_step',
    'make_train_step', 'replicated_abstract', 'restore_checkpoint', 'sample', 'save_png',
    'stream', 'sweep', 'to_uint8_images', 'train', 'trajectory_strip',
]
