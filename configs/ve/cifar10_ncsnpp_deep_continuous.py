"""NCSN++ (deep, continuous) on CIFAR-10 with the VE SDE.

107,587,075 parameters. Song et al.'s score_sde: configs/ve/cifar10_ncsnpp_deep_continuous.py

  python main.py --config configs/ve/cifar10_ncsnpp_deep_continuous.py \
      --workdir workdir/ve/cifar10_ncsnpp_deep_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  config = ve_config('cifar10', networks.ncsnpp_deep, continuous=True)
  config.training.n_iters = 950_001
  return config
