"""NCSN++ (continuous) on CIFAR-10 with the VE SDE.

62,758,915 parameters. Song et al.'s score_sde: configs/ve/cifar10_ncsnpp_continuous.py

  python main.py --config configs/ve/cifar10_ncsnpp_continuous.py \
      --workdir workdir/ve/cifar10_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  return ve_config('cifar10', networks.ncsnpp, continuous=True)
