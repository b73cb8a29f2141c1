"""DDPM (Ho et al., 2020) on CIFAR-10 as the VP SDE's 1000 discrete levels.

35,218,947 parameters. Song et al.'s score_sde: configs/vp/ddpm/cifar10.py

score_sde's DDPM attends once per up-path level; Ho et al.'s network attends after
every up-path block at 16 px (2 more attention blocks, 35,746,307 parameters).

  python main.py --config configs/vp/ddpm/cifar10.py \
      --workdir workdir/vp/ddpm/cifar10 --mode train
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

  config.sde.name = 'vpsde'
  config.sampling.eps = 1e-3  # score_sde samples VP and sub-VP down to t = 1e-3
  config.training.continuous = False
  config.training.reduce_mean = True
  config.sampling.predictor = 'ancestral_sampling'
  config.sampling.corrector = 'none'
  return config
