"""NCSNv2 (Song & Ermon, 2020) on LSUN bedroom 128 px: 1086 noise levels from 190 down to 0.01.

83,445,379 parameters. Song et al.'s score_sde: configs/ve/ncsnv2/bedroom.py

  python main.py --config configs/ve/ncsnv2/bedroom.py \
      --workdir workdir/ve/ncsnv2/bedroom --mode train
"""

import ml_collections

from configs import networks
from configs.ve.ncsnv2 import ncsnv2_config


def get_config() -> ml_collections.ConfigDict:
  config = ncsnv2_config('lsun/bedroom', networks.ncsnv2_128, n_levels=1086, corrector_steps=3,
                         snr=0.095)
  config.model.ema_rate = 0.9999
  config.data.image_size = 128
  config.sde.sigma_max = 190.0
  config.training.batch_size = 128
  # The published file sets `training.continuouse = False` (sic), a key nothing
  # reads: training.continuous keeps the LSUN default, True, and so it is here.
  config.training.continuous = True
  return config
