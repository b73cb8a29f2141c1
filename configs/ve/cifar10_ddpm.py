"""score_sde's DDPM U-Net on CIFAR-10 with the VE SDE, trained on its 1000 discrete levels.

35,218,947 parameters. Song et al.'s score_sde: configs/ve/cifar10_ddpm.py

  python main.py --config configs/ve/cifar10_ddpm.py \
      --workdir workdir/ve/cifar10_ddpm --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  return ve_config('cifar10', networks.ddpm, continuous=False)
