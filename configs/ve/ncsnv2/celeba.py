"""NCSNv2 (Song & Ermon, 2020) on CelebA 64 px: 500 noise levels from 90 down to 0.01.

29,694,083 parameters. Song et al.'s score_sde: configs/ve/ncsnv2/celeba.py

The parameter count is NCSNv2's own (ermongroup/ncsnv2 and score_sde_pytorch);
score_sde's JAX copy widens its third RefineNet block (33,970,563).

  python main.py --config configs/ve/ncsnv2/celeba.py \
      --workdir workdir/ve/ncsnv2/celeba --mode train
"""

import ml_collections

from configs import networks
from configs.ve.ncsnv2 import ncsnv2_config


def get_config() -> ml_collections.ConfigDict:
  # The published file also defines local variables (step_size, ckpt_id,
  # noise_removal = False, ...) that it never stores in the config: sampling.denoise
  # (score_sde's noise_removal) stays True.
  return ncsnv2_config('celeb_a', networks.ncsnv2, n_levels=500, corrector_steps=5, snr=0.128)
