"""DDPM (Ho et al., 2020) on CIFAR-10 as the VP SDE's 1000 discrete levels.

35,218,947 parameters. Song et al.'s score_sde: configs/vp/ddpm/cifar10.py

score_sde's DDPM attends once per up-path level; Ho et al.'s network attends after
every up-path block at 16 px (2 more attention blocks, 35,746,307 parameters).

  python main.py --config configs/vp/ddpm/cifar10.py \
      --workdir workdir/vp/ddpm/cifar10 --mode train
"""

import ml_collections

from configs import networks
from configs.vp import vp_config


def get_config() -> ml_collections.ConfigDict:
  return vp_config('cifar10', networks.ddpm, continuous=False)
