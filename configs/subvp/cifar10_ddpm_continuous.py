"""score_sde's DDPM U-Net on CIFAR-10 with the sub-VP SDE (continuous).

35,218,947 parameters. Song et al.'s score_sde: configs/subvp/cifar10_ddpm_continuous.py

score_sde's DDPM attends once per up-path level; Ho et al.'s network attends after
every up-path block at 16 px (2 more attention blocks, 35,746,307 parameters).

  python main.py --config configs/subvp/cifar10_ddpm_continuous.py \
      --workdir workdir/subvp/cifar10_ddpm_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.vp import vp_config


def get_config() -> ml_collections.ConfigDict:
  return vp_config('cifar10', networks.ddpm, continuous=True, sde='subvpsde')
