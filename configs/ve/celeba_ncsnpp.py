"""NCSN++ on CelebA 64 px with the VE SDE, trained on its 1000 discrete levels (SMLD).

62,693,251 parameters. Song et al.'s score_sde: configs/ve/celeba_ncsnpp.py

  python main.py --config configs/ve/celeba_ncsnpp.py \
      --workdir workdir/ve/celeba_ncsnpp --mode train
"""

import ml_collections

from configs import networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  # The published file also sets model.sigma_begin = 90, a key nothing reads; the
  # sigma_max = 90 in effect comes from the CelebA defaults.
  return ve_config('celeb_a', networks.ncsnpp, continuous=False)
