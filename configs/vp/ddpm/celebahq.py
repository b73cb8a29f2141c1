"""DDPM (Ho et al., 2020) on CelebA-HQ 256 px as the VP SDE's 1000 discrete levels.

111,569,923 parameters. Song et al.'s score_sde: configs/vp/ddpm/celebahq.py

celeb_a_hq needs a manual download: see tfds' celeb_a_hq page.
(The published file's docstring says "bedrooms": it is CelebA-HQ.)
score_sde's DDPM attends once per up-path level; Ho et al.'s network attends after
every up-path block at 16 px (2 more attention blocks, 113,673,219 parameters).

  python main.py --config configs/vp/ddpm/celebahq.py \
      --workdir workdir/vp/ddpm/celebahq --mode train
"""

import ml_collections

from configs.vp.ddpm import ddpm_256_config


def get_config() -> ml_collections.ConfigDict:
  return ddpm_256_config('celeb_a_hq/256')
