"""NCSN on CelebA with NCSNv2's technique 5 only: an EMA of the parameters.

30,117,635 parameters. Song et al.'s score_sde: configs/ve/ncsn/celeba_5.py

  python main.py --config configs/ve/ncsn/celeba_5.py \
      --workdir workdir/ve/ncsn/celeba_5 --mode train
"""

import ml_collections

from configs.ve.ncsn import ncsn_config


def get_config() -> ml_collections.ConfigDict:
  return ncsn_config('celeb_a', n_levels=10, sigma_max=1.0, ema_rate=0.999, corrector_steps=100,
                     snr=0.316)
