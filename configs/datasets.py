"""Song et al.'s per-dataset defaults (score_sde's configs/default_*_configs.py), on our keys.

`cifar10`, `celeba`, `lsun` and `faces_1024` each apply one of score_sde's
shared default blocks to a config from `configs.default.get_default_config()`:
the data, training, sampling, eval and optimiser settings and the SDE
constants, every published key set explicitly (also where it equals our
default) so that a change to configs/default.py cannot silently change a paper
configuration. `apply_defaults(config, dataset)` picks the block that
score_sde's configs for a dataset build on. The family functions in configs/ve
and configs/vp then set the SDE, the network and what else differs, as
score_sde's leaf configs do.

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

# The datasets of score_sde's 256-px configs (all on its LSUN defaults) and of its 1024-px ones.
LSUN_256 = ('lsun/bedroom', 'lsun/church_outdoor', 'celeb_a_hq/256', FFHQ_256)
FACES_1024 = ('celeb_a_hq/1024', FFHQ_1024)


def apply_defaults(config: ml_collections.ConfigDict, dataset: str) -> None:
  """Applies the score_sde defaults file that its configs for `dataset` build on.

  Args:
    config: the config to update.
    dataset: the tfds name: 'cifar10', 'celeb_a', one of LSUN_256 or one of FACES_1024.

  Raises:
    ValueError: for a dataset no score_sde config uses.
  """
  if dataset == 'cifar10':
    cifar10(config)
  elif dataset == 'celeb_a':
    celeba(config)
  elif dataset in LSUN_256:
    lsun(config, dataset)
  elif dataset in FACES_1024:
    faces_1024(config, dataset)
  else:
    known = sorted(('cifar10', 'celeb_a', *LSUN_256, *FACES_1024))
    raise ValueError(f'no score_sde defaults for dataset {dataset!r}; known: {known}')


def cifar10(config: ml_collections.ConfigDict) -> None:
  """default_cifar10_configs: CIFAR-10 at 32 px, sigma_max = 50, N = 1000."""
  _score_sde_defaults(
      config, dataset='cifar10', image_size=32, sigma_max=50.0, n_levels=1000, dropout=0.1,
      batch_size=128, n_iters=1_300_001, snapshot_freq_for_preemption=10_000, snr=0.16,
      eval_ckpts=(9, 26), eval_batch_size=1024, eval_sampling=False)


def celeba(config: ml_collections.ConfigDict) -> None:
  """default_celeba_configs: CelebA at 64 px, sigma_max = 90, N = 1000."""
  _score_sde_defaults(
      config, dataset='celeb_a', image_size=64, sigma_max=90.0, n_levels=1000, dropout=0.1,
      batch_size=128, n_iters=1_300_001, snapshot_freq_for_preemption=10_000, snr=0.17,
      eval_ckpts=(1, 26), eval_batch_size=1024, eval_sampling=True)


def lsun(config: ml_collections.ConfigDict, dataset: str) -> None:
  """default_lsun_configs: 256 px, sigma_max = 378, N = 2000, batch 64.

  score_sde builds its 256-px CelebA-HQ and FFHQ configs on these defaults too,
  so `dataset` is one of LSUN_256.
  """
  _score_sde_defaults(
      config, dataset=dataset, image_size=256, sigma_max=378.0, n_levels=2000, dropout=0.0,
      batch_size=64, n_iters=2_400_001, snapshot_freq_for_preemption=5000, snr=0.075,
      eval_ckpts=(50, 96), eval_batch_size=512, eval_sampling=True)


def faces_1024(config: ml_collections.ConfigDict, dataset: str) -> None:
  """The 1024-px FFHQ / CelebA-HQ settings: sigma_max = 1348, N = 2000, batch 8.

  score_sde's two 1024-px files (ve/ffhq_ncsnpp_continuous, ve/celebahq_ncsnpp_
  continuous) are standalone copies of each other, not built on a defaults
  file; these are their shared values. They leave training.n_jitted_steps,
  eval.enable_* (here eval.metrics) and eval.bpd_dataset undefined (score_sde's JAX
  run_lib would fail on them): those take the values of every other score_sde default
  file.

  Args:
    config: the config to update.
    dataset: one of FACES_1024.
  """
  _score_sde_defaults(
      config, dataset=dataset, image_size=1024, sigma_max=1348.0, n_levels=2000, dropout=0.0,
      batch_size=8, n_iters=2_400_001, snapshot_freq_for_preemption=5000, snr=0.15,
      eval_ckpts=(1, 96), eval_batch_size=1024, eval_sampling=True)


def _score_sde_defaults(config: ml_collections.ConfigDict, *, dataset: str, image_size: int,
                        sigma_max: float, n_levels: int, dropout: float, batch_size: int,
                        n_iters: int, snapshot_freq_for_preemption: int, snr: float,
                        eval_ckpts: tuple[int, int], eval_batch_size: int,
                        eval_sampling: bool) -> None:
  """Sets the keys all of score_sde's default files share, then those given.

  The keyword arguments are the values in which the files differ: `n_levels`
  is sde.N, `eval_ckpts` (eval.begin_ckpt, eval.end_ckpt) and `eval_sampling`
  score_sde's eval.enable_sampling (with its enable_loss=True, enable_bpd=False: our
  eval.metrics); the rest are the keys of the same name.
  """
  config.seed = 42

  training = config.training
  training.batch_size = batch_size
  training.n_iters = n_iters
  training.log_freq = 50
  training.eval_freq = 100
  training.snapshot_freq = 50_000
  training.snapshot_freq_for_preemption = snapshot_freq_for_preemption
  training.snapshot_sampling = True
  training.loss_weighting = 'noise'
  training.continuous = True
  training.reduce_mean = False
  training.n_jitted_steps = 5

  sampling = config.sampling
  sampling.corrector_steps = 1
  sampling.denoise = True
  sampling.probability_flow = False
  sampling.snr = snr

  evaluate = config.eval
  evaluate.begin_ckpt, evaluate.end_ckpt = eval_ckpts
  evaluate.batch_size = eval_batch_size
  evaluate.metrics = ('loss', 'fid') if eval_sampling else ('loss',)
  evaluate.num_samples = 50_000
  evaluate.bpd_dataset = 'test'

  data = config.data
  data.dataset = dataset
  data.image_size = image_size
  data.random_flip = True
  data.uniform_dequantization = False
  data.centered = False
  data.num_channels = 3

  sde = config.sde
  sde.N = n_levels
  sde.sigma_min = 0.01
  sde.sigma_max = sigma_max
  sde.beta_min = 0.1
  sde.beta_max = 20.0

  config.model.embedding_type = 'fourier'
  config.model.dropout = dropout

  optim = config.optim
  optim.optimizer = 'adam'
  optim.lr = 2e-4
  optim.beta1 = 0.9
  optim.eps = 1e-8
  optim.weight_decay = 0.0
  optim.warmup = 5000
  optim.grad_clip = 1.0
