"""NCSN++ (continuous) on LSUN church_outdoor 256 px with the VE SDE.

65,574,549 parameters. Song et al.'s score_sde: configs/ve/church_ncsnpp_continuous.py

  python main.py --config configs/ve/church_ncsnpp_continuous.py \
      --workdir workdir/ve/church_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  config = ve_config('lsun/church_outdoor', networks.ncsnpp_256, continuous=True)
  config.sde.sigma_max = 380.0
  return config
