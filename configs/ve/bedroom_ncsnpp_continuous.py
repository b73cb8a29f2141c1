"""NCSN++ (continuous) on LSUN bedroom 256 px with the VE SDE.

65,574,549 parameters. Song et al.'s score_sde: configs/ve/bedroom_ncsnpp_continuous.py

  python main.py --config configs/ve/bedroom_ncsnpp_continuous.py \
      --workdir workdir/ve/bedroom_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  return ve_config('lsun/bedroom', networks.ncsnpp_256, continuous=True)
