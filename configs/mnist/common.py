"""What the MNIST configs share: tfds' `mnist` at its native 28x28 from a prepared data
directory, and the digits' CPU-sized DDPM++ (VP SDE, continuous time) grown to three
resolutions, 28, 14 and 7 (no padding to 32)."""

import ml_collections

from configs.digits import common, vp


def mnist_config(variant: str = '') -> ml_collections.ConfigDict:
  """The shared MNIST settings; variant 'tiny' is a seconds-long smoke run (tests, CI).

  The data directory is the user's: --config.data.data_dir=DIR, where tfds' `mnist` is
  prepared (array_record files); the job says how to prepare it when it is not there.
  """
  config = vp.get_config(variant)
  data = config.data
  data.dataset = 'mnist'
  data.image_size = 28
  data.num_channels = 1
  data.levels = 256
  model = config.model
  model.ch_mult = (1, 2, 2)  # 28, 14 and 7 pixels
  model.attn_resolutions = (7,)
  model.num_res_blocks = 1
  training = config.training
  training.batch_size = 64
  training.n_iters = 1_000_000  # the wall-time budget, training.max_minutes, ends it
  training.max_minutes = 20.0
  training.eval_freq = 500
  training.snapshot_freq = 2000
  training.snapshot_freq_for_preemption = 500
  config.sampling.method = 'dpm_solver_pp'
  config.sampling.n_steps = 20
  config.sampling.schedule = 'logsnr'
  config.eval.batch_size = 500
  config.eval.num_samples = 1000
  config.eval.kid_subset_size = 1000
  config.eval.metrics = ('loss', 'fid')
  if variant == 'tiny':
    common.shrink(config)
    config.eval.batch_size = 100
  return config
