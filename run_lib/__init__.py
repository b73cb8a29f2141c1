"""The side effects of scorelab: build a job from a config, train, sample, evaluate, sweep.

Only `build` (run_lib.builder) reads the ConfigDict: it makes a `Job` of built parts, which
every loop takes; everything they call (`sde_lib`, `models`, `tasks`, `data`, `metrics`)
takes explicit arguments.

  builder     build(config, workdir) -> Job: SDE, parameterisation, task (a constructor per
              training.task), optimiser, sampler, conditions, evaluators, data; the parts
              taken from other workdirs
  job         the Job and its typed settings; how it opens its data
  conditions  what samples are conditioned on: classes, captions, completion masks; guidance
  stages      a guiding classifier, a cascade's base, a first stage; frozen trees' fillers
  state       TrainState and its orbax checkpoints
  mesh        the device mesh; gathering arrays from every host
  train       the pure train step, its sharded jit, the training loop
  sample      the compiled sampler, cascades, completion and --mode sample
  evaluate    the evaluators of eval.metrics (EVALUATORS) and --mode eval
  sweep       --mode sweep: grids of overrides, results table and plot
  io          PNG grids, trajectory strips, logs, JSON
"""

from run_lib.builder import Variants, build
from run_lib.errors import USER_ERRORS, JobError
from run_lib.evaluate import EVALUATORS, Evaluation, evaluate
from run_lib.io import image_grid, save_png, trajectory_strip
from run_lib.job import Job
from run_lib.mesh import check_divisible, create_mesh, gather
from run_lib.sample import draw, sample
from run_lib.state import TrainState, checkpoint_manager, init_state, restore_checkpoint
from run_lib.sweep import run as sweep
from run_lib.train import jit_train_step, make_multi_step, make_train_step, train

__all__ = [
    'EVALUATORS', 'USER_ERRORS', 'Evaluation', 'Job', 'JobError', 'TrainState', 'Variants',
    'build',
    'check_divisible', 'checkpoint_manager', 'create_mesh', 'draw', 'evaluate', 'gather',
    'image_grid', 'init_state', 'jit_train_step', 'make_multi_step', 'make_train_step',
    'restore_checkpoint', 'sample', 'save_png', 'sweep', 'train', 'trajectory_strip',
]
