"""What the three digits configs share: the bundled 8x8 digits and a CPU-sized NCSN++."""

import ml_collections

from configs.default import get_default_config


def digits_config(variant: str = '') -> ml_collections.ConfigDict:
  """The shared digits settings; variant 'tiny' is a seconds-long smoke run (tests, CI)."""
  if variant not in ('', 'tiny'):
    raise ValueError(f"unknown config variant {variant!r}; known: ['', 'tiny']")
  config = get_default_config()
  config.data.dataset = 'digits'
  config.data.image_size = 8
  config.data.num_channels = 1
  config.data.centered = False
  config.data.levels = 17  # the digits' grey levels 0..16

  model = config.model
  model.nf = 32
  model.ch_mult = (1, 2)
  model.num_res_blocks = 2
  model.attn_resolutions = (4,)
  model.dropout = 0.0
  model.ema_rate = 0.999

  # Training is in continuous time; N only sets the PC sampler's levels, and 200
  # keeps sampling on a CPU to seconds.
  config.sde.N = 200

  training = config.training
  training.batch_size = 128
  training.n_iters = 3000
  training.max_minutes = 12.0  # the README's default job: stop early on slow machines
  training.log_freq = 50
  training.eval_freq = 250
  training.snapshot_freq = 1000
  training.snapshot_freq_for_preemption = 250
  training.n_jitted_steps = 1

  config.optim.warmup = 200
  config.optim.lr = 1e-3

  config.sampling.batch_size = 64
  config.sampling.num_samples = 64
  config.sampling.trajectory_frames = 12
  config.eval.batch_size = 160  # divides among 1, 2, 4, 8, 16 or 32 devices
  config.eval.num_samples = 500
  # KID's subsets: all 300 test digits against 300 of the samples. In the classifier's
  # feature space (norms ~33) the cubic kernel is noisy: real vs real gives 0 +- 9 here,
  # 0 +- 37 with subsets of 100.
  config.eval.kid_subset_size = 300
  # bits/dim at 1e-4 equal those at 1e-5 to 1e-3 in 40% of the time; 1e-3 is 0.2 off.
  config.eval.rtol = config.eval.atol = 1e-4
  if variant == 'tiny':
    shrink(config)
  return config


def shrink(config: ml_collections.ConfigDict) -> None:
  config.model.nf = 8
  config.model.ch_mult = (1,)
  config.model.num_res_blocks = 1
  config.model.attn_resolutions = ()
  config.sde.N = 10
  training = config.training
  training.batch_size = 8
  training.n_iters = 2
  training.max_minutes = 0.0
  training.log_freq = 1
  training.eval_freq = 1
  training.snapshot_freq = 2
  training.snapshot_freq_for_preemption = 1
  config.sampling.batch_size = 4
  config.sampling.num_samples = 4
  config.sampling.trajectory_frames = 3
  config.sampling.rtol = config.sampling.atol = 1e-3
  config.eval.batch_size = 100
  config.eval.num_samples = 8
