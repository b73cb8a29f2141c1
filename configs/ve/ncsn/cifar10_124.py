"""NCSN on CIFAR-10 with NCSNv2's techniques 1, 2 and 4: 232 levels from 50 down to 0.01.

39,750,659 parameters. Song et al.'s score_sde: configs/ve/ncsn/cifar10_124.py

  python main.py --config configs/ve/ncsn/cifar10_124.py \
      --workdir workdir/ve/ncsn/cifar10_124 --mode train
"""

import ml_collections

from configs.ve.ncsn import ncsn_config


def get_config() -> ml_collections.ConfigDict:
  return ncsn_config('cifar10', n_levels=232, sigma_max=None, ema_rate=0.0, corrector_steps=5,
                     snr=0.176)
