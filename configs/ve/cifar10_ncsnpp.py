"""NCSN++ on CIFAR-10 with the VE SDE, trained on its 1000 discrete levels (SMLD).

62,693,251 parameters. Song et al.'s score_sde: configs/ve/cifar10_ncsnpp.py

  python main.py --config configs/ve/cifar10_ncsnpp.py \
      --workdir workdir/ve/cifar10_ncsnpp --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  return ve_config('cifar10', networks.ncsnpp, continuous=False)
