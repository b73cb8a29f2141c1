"""NCSNv2 (Song & Ermon, 2020) on CIFAR-10: 232 noise levels from 50 down to 0.01.

29,694,083 parameters. Song et al.'s score_sde: configs/ve/ncsnv2/cifar10.py

The parameter count is NCSNv2's own (ermongroup/ncsnv2 and score_sde_pytorch);
score_sde's JAX copy widens its third RefineNet block (33,970,563).

  python main.py --config configs/ve/ncsnv2/cifar10.py \
      --workdir workdir/ve/ncsnv2/cifar10 --mode train
"""

import ml_collections

from configs import networks
from configs.ve.ncsnv2 import ncsnv2_config


def get_config() -> ml_collections.ConfigDict:
  return ncsnv2_config('cifar10', networks.ncsnv2, n_levels=232, corrector_steps=5, snr=0.176)
