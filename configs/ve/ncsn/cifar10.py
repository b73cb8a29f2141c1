"""NCSN (Song & Ermon, 2019) on CIFAR-10: 10 noise levels from 1 down to 0.01, no EMA.

30,117,635 parameters. Song et al.'s score_sde: configs/ve/ncsn/cifar10.py

  python main.py --config configs/ve/ncsn/cifar10.py \
      --workdir workdir/ve/ncsn/cifar10 --mode train
"""

import ml_collections

from configs.ve.ncsn import ncsn_config


def get_config() -> ml_collections.ConfigDict:
  return ncsn_config('cifar10', n_levels=10, sigma_max=1.0, ema_rate=0.0, corrector_steps=100,
                     snr=0.316)
