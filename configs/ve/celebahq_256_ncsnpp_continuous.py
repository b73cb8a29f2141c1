"""NCSN++ (continuous) on CelebA-HQ 256 px with the VE SDE.

65,574,549 parameters. Song et al.'s score_sde: configs/ve/celebahq_256_ncsnpp_continuous.py

celeb_a_hq needs a manual download: see tfds' celeb_a_hq page.
(The published file's docstring says "Church": it is CelebA-HQ.)

  python main.py --config configs/ve/celebahq_256_ncsnpp_continuous.py \
      --workdir workdir/ve/celebahq_256_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  config = ve_config('celeb_a_hq/256', networks.ncsnpp_256, continuous=True)
  config.sde.sigma_max = 348.0
  return config
