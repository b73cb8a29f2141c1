"""NCSN on CelebA with NCSNv2's techniques 1, 2 and 4: 500 levels from 90 down to 0.01.

51,379,715 parameters. Song et al.'s score_sde: configs/ve/ncsn/celeba_124.py

  python main.py --config configs/ve/ncsn/celeba_124.py \
      --workdir workdir/ve/ncsn/celeba_124 --mode train
"""

import ml_collections

from configs.ve.ncsn import ncsn_config


def get_config() -> ml_collections.ConfigDict:
  return ncsn_config('celeb_a', n_levels=500, sigma_max=None, ema_rate=0.0, corrector_steps=5,
                     snr=0.128)
