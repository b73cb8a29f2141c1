"""Song et al.'s per-dataset defaults (score_sde's configs/default_*_configs.py), on our keys.

Each function applies one of score_sde's shared default blocks to a config from
`configs.default.get_default_config()`: the data, training, sampling, eval and
optimiser settings and the SDE constants, every published key set explicitly
(also where it equals our default) so that a change to configs/default.py
cannot silently change a paper configuration. Experiment files then set the
SDE, the network and what else differs, as score_sde's leaf configs do.

Key mapping: score_sde's `model.num_scales` -> `sde.N`, `model.sigma_*` and
`model.beta_*` -> `sde.*`, `data.dataset` -> a tfds name. score_sde keys we do
not have are dropped: `optim.amsgrad` (always False), `data.tfrecords_path`
(datasets come from tfds), `config.device`. `training.n_jitted_steps = 5` is
the JAX score_sde default (its PyTorch port has no such key).
"""

import ml_collections

# tfds has no FFHQ builder: provide one (any builder whose 'image' feature holds
# the images at this resolution) under data.data_dir.
FFHQ_256 = 'ffhq/256'
FFHQ_1024 = 'ffhq/1024'


def _score_sde_defaults(config: ml_collections.ConfigDict) -> None:
  """The keys whose values all of score_sde's default files share."""
  config.seed = 42

  training = config.training
  training.log_freq = 50
  training.eval_freq = 100
  training.snapshot_freq = 50_000
  training.snapshot_sampling = True
  training.likelihood_weighting = False
  training.continuous = True
  training.reduce_mean = False
  training.n_jitted_steps = 5

  sampling = config.sampling
  sampling.n_steps_each = 1
  sampling.noise_removal = True
  sampling.probability_flow = False

  evaluate = config.eval
  evaluate.num_samples = 50_000
  evaluate.enable_loss = True
  evaluate.enable_bpd = False
  evaluate.bpd_dataset = 'test'

  data = config.data
  data.random_flip = True
  data.uniform_dequantization = False
  data.centered = False
  data.num_channels = 3

  sde = config.sde
  sde.sigma_min = 0.01
  sde.beta_min = 0.1
  sde.beta_max = 20.0

  config.model.embedding_type = 'fourier'

  optim = config.optim
  optim.optimizer = 'adam'
  optim.lr = 2e-4
  optim.beta1 = 0.9
  optim.eps = 1e-8
  optim.weight_decay = 0.0
  optim.warmup = 5000
  optim.grad_clip = 1.0


def cifar10(config: ml_collections.ConfigDict) -> None:
  """default_cifar10_configs: CIFAR-10 at 32 px, sigma_max = 50, N = 1000."""
  _score_sde_defaults(config)
  config.training.batch_size = 128
  config.training.n_iters = 1_300_001
  config.training.snapshot_freq_for_preemption = 10_000
  config.sampling.snr = 0.16
  config.eval.begin_ckpt = 9
  config.eval.end_ckpt = 26
  config.eval.batch_size = 1024
  config.eval.enable_sampling = False
  config.data.dataset = 'cifar10'
  config.data.image_size = 32
  config.sde.sigma_max = 50.0
  config.sde.N = 1000
  config.model.dropout = 0.1


def celeba(config: ml_collections.ConfigDict) -> None:
  """default_celeba_configs: CelebA at 64 px, sigma_max = 90, N = 1000."""
  _score_sde_defaults(config)
  config.training.batch_size = 128
  config.training.n_iters = 1_300_001
  config.training.snapshot_freq_for_preemption = 10_000
  config.sampling.snr = 0.17
  config.eval.begin_ckpt = 1
  config.eval.end_ckpt = 26
  config.eval.batch_size = 1024
  config.eval.enable_sampling = True
  config.data.dataset = 'celeb_a'
  config.data.image_size = 64
  config.sde.sigma_max = 90.0
  config.sde.N = 1000
  config.model.dropout = 0.1


def lsun(config: ml_collections.ConfigDict, dataset: str) -> None:
  """default_lsun_configs: 256 px, sigma_max = 378, N = 2000, batch 64.

  score_sde builds its 256-px CelebA-HQ and FFHQ configs on these defaults too,
  so `dataset` is the tfds name: 'lsun/bedroom', 'lsun/church_outdoor',
  'celeb_a_hq/256' or FFHQ_256.
  """
  _score_sde_defaults(config)
  config.training.batch_size = 64
  config.training.n_iters = 2_400_001
  config.training.snapshot_freq_for_preemption = 5000
  config.sampling.snr = 0.075
  config.eval.begin_ckpt = 50
  config.eval.end_ckpt = 96
  config.eval.batch_size = 512
  config.eval.enable_sampling = True
  config.data.dataset = dataset
  config.data.image_size = 256
  config.sde.sigma_max = 378.0
  config.sde.N = 2000
  config.model.dropout = 0.0


def faces_1024(config: ml_collections.ConfigDict, dataset: str) -> None:
  """The 1024-px FFHQ / CelebA-HQ settings: sigma_max = 1348, N = 2000, batch 8.

  score_sde's two 1024-px files (ve/ffhq_ncsnpp_continuous, ve/celebahq_ncsnpp_
  continuous) are standalone copies of each other, not built on a defaults
  file; these are their shared values. They leave training.n_jitted_steps,
  eval.enable_* and eval.bpd_dataset undefined (score_sde's JAX run_lib would
  fail on them): those take the values of every other score_sde default file.

  Args:
    config: the config to update.
    dataset: the tfds name, 'celeb_a_hq/1024' or FFHQ_1024.
  """
  _score_sde_defaults(config)
  config.training.batch_size = 8
  config.training.n_iters = 2_400_001
  config.training.snapshot_freq_for_preemption = 5000
  config.sampling.snr = 0.15
  config.eval.begin_ckpt = 1
  config.eval.end_ckpt = 96
  config.eval.batch_size = 1024
  config.eval.enable_sampling = True
  config.data.dataset = dataset
  config.data.image_size = 1024
  config.sde.sigma_max = 1348.0
  config.sde.N = 2000
  config.model.dropout = 0.0
