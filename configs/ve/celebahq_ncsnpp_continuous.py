"""NCSN++ (continuous) on CelebA-HQ 1024 px with the VE SDE.

105,785,896 parameters. Song et al.'s score_sde: configs/ve/celebahq_ncsnpp_continuous.py

celeb_a_hq needs a manual download: see tfds' celeb_a_hq page.

  python main.py --config configs/ve/celebahq_ncsnpp_continuous.py \
      --workdir workdir/ve/celebahq_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  config = ve_config('celeb_a_hq/1024', networks.ncsnpp_1024, continuous=True)
  config.model.ema_rate = 0.9999
  # As published; the FFHQ 1024 file has reduce_mean = True.
  config.training.reduce_mean = False
  return config
