"""score_sde's DDPM U-Net on CIFAR-10 with the VE SDE, trained on its 1000 discrete levels.

35,218,947 parameters. Song et al.'s score_sde: configs/ve/cifar10_ddpm.py

  python main.py --config configs/ve/cifar10_ddpm.py \
      --workdir workdir/ve/cifar10_ddpm --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.cifar10(config)
  networks.ddpm(config.model)
  config.model.scale_by_sigma = True
  config.model.ema_rate = 0.999

  config.sde.name = 'vesde'
  config.sampling.eps = 1e-5  # score_sde samples VE down to t = 1e-5 (VP, sub-VP: 1e-3)
  config.training.continuous = False
  config.sampling.predictor = 'reverse_diffusion'
  config.sampling.corrector = 'langevin'
  return config
