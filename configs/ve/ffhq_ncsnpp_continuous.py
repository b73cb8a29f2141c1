"""NCSN++ (continuous) on FFHQ 1024 px with the VE SDE.

105,785,896 parameters. Song et al.'s score_sde: configs/ve/ffhq_ncsnpp_continuous.py

tfds has no FFHQ: provide a tfds builder named ffhq with a '1024' config in data.data_dir
(--config.data.data_dir=...), or point --config.data.dataset at your own.

  python main.py --config configs/ve/ffhq_ncsnpp_continuous.py \
      --workdir workdir/ve/ffhq_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.ve import ve_config


def get_config() -> ml_collections.ConfigDict:
  config = ve_config(datasets.FFHQ_1024, networks.ncsnpp_1024, continuous=True)
  config.model.ema_rate = 0.9999
  # As published; the CelebA-HQ 1024 file has reduce_mean = False.
  config.training.reduce_mean = True
  return config
