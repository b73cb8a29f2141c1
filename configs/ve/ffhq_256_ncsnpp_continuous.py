"""NCSN++ (continuous) on FFHQ 256 px with the VE SDE.

65,574,549 parameters. Song et al.'s score_sde: configs/ve/ffhq_256_ncsnpp_continuous.py

tfds has no FFHQ: provide a tfds builder named ffhq with a '256' config in data.data_dir
(--config.data.data_dir=...), or point --config.data.dataset at your own.
(The published file's docstring says "Church": it is FFHQ.)

  python main.py --config configs/ve/ffhq_256_ncsnpp_continuous.py \
      --workdir workdir/ve/ffhq_256_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  config = ve_config(datasets.FFHQ_256, networks.ncsnpp_256, continuous=True)
  config.sde.sigma_max = 348.0
  return config
