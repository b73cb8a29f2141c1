"""DDPM (Ho et al., 2020) on LSUN bedroom 256 px as the VP SDE's 1000 discrete levels.

111,569,923 parameters. Song et al.'s score_sde: configs/vp/ddpm/bedroom.py

score_sde's DDPM attends once per up-path level; Ho et al.'s network attends after
every up-path block at 16 px (2 more attention blocks, 113,673,219 parameters).

  python main.py --config configs/vp/ddpm/bedroom.py \
      --workdir workdir/vp/ddpm/bedroom --mode train
"""

import ml_collections

from configs.vp.ddpm import ddpm_256_config


def get_config() -> ml_collections.ConfigDict:
  return ddpm_256_config('lsun/bedroom')
