"""NCSN++ (continuous) on CIFAR-10 with the sub-VP SDE.

62,693,251 parameters. Song et al.'s score_sde: configs/subvp/cifar10_ncsnpp_continuous.py

  python main.py --config configs/subvp/cifar10_ncsnpp_continuous.py \
      --workdir workdir/subvp/cifar10_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.vp import vp_config


def get_config() -> ml_collections.ConfigDict:
  return vp_config('cifar10', networks.ncsnpp, continuous=True, sde='subvpsde')
