"""NCSN (Song & Ermon, 2019) on CelebA: 10 noise levels from 1 down to 0.01, no EMA.

30,117,635 parameters. Song et al.'s score_sde: configs/ve/ncsn/celeba.py

The published file sets `training.loss = 'vesde'` (sic), a key nothing reads,
and no `training.sde`, which score_sde's run_lib needs: it means the VE SDE,
as in the other seven files, and so it is here. Images are score_sde's 64-px
CelebA; the NCSN paper trained on 32-px crops (the count does not change).

  python main.py --config configs/ve/ncsn/celeba.py \
      --workdir workdir/ve/ncsn/celeba --mode train
"""

import ml_collections

from configs.ve.ncsn import ncsn_config


def get_config() -> ml_collections.ConfigDict:
  return ncsn_config('celeb_a', n_levels=10, sigma_max=1.0, ema_rate=0.0, corrector_steps=100,
                     snr=0.316)
