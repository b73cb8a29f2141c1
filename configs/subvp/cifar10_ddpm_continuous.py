"""score_sde's DDPM U-Net on CIFAR-10 with the sub-VP SDE (continuous).

35,218,947 parameters. Song et al.'s score_sde: configs/subvp/cifar10_ddpm_continuous.py

score_sde's DDPM attends once per up-path level; Ho et al.'s network attends after
every up-path block at 16 px (2 more attention blocks, 35,746,307 parameters).

  python main.py --config configs/subvp/cifar10_ddpm_continuous.py \
      --workdir workdir/subvp/cifar10_ddpm_continuous --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.cifar10(config)
  networks.ddpm(config.model)
  config.model.scale_by_sigma = False
  config.model.ema_rate = 0.9999
  config.data.centered = True

  config.sde.name = 'subvpsde'
  config.sampling.eps = 1e-3  # score_sde samples VP and sub-VP down to t = 1e-3
  config.training.continuous = True
  config.training.reduce_mean = True
  config.sampling.predictor = 'euler_maruyama'
  config.sampling.corrector = 'none'
  return config
