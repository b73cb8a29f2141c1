"""NCSN on CIFAR-10 with NCSNv2's techniques 1, 2, 4 and 5: 232 levels from 50, with EMA.

39,750,659 parameters. Song et al.'s score_sde: configs/ve/ncsn/cifar10_1245.py

The published file also defines local variables (step_size, ckpt_id,
noise_removal = False, ...) that it never stores in the config: sampling.denoise
(score_sde's noise_removal) stays True.

  python main.py --config configs/ve/ncsn/cifar10_1245.py \
      --workdir workdir/ve/ncsn/cifar10_1245 --mode train
"""

import ml_collections

from configs.ve.ncsn import ncsn_config


def get_config() -> ml_collections.ConfigDict:
  return ncsn_config('cifar10', n_levels=232, sigma_max=None, ema_rate=0.999, corrector_steps=5,
                     snr=0.176)
